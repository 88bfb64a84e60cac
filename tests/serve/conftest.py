"""Serving fixtures: a real tiny router (trained here), a real search engine over demo clips, and the app."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from vidroute.records import LabelRecord, TeacherInfo

API_KEY = "test-key-0123456789"

# Small hand-labelled set: clear dominant signal per group, so even a tiny head learns the split.
_GROUPS = {
    "visual": [
        "a red car driving through the desert",
        "close up of a cat jumping off a table",
        "drone shot of a snowy mountain at sunrise",
        "people dancing in colourful costumes",
        "a green fractal zooming in slowly",
        "a man in a blue suit walking down the stairs",
        "slow motion of a wave crashing on rocks",
        "a dog catching a frisbee in the park",
        "fireworks exploding over a city skyline",
        "a chef slicing vegetables on a wooden board",
        "kids riding bicycles on a sunny street",
        "black and white footage of a train station",
    ],
    "audio": [
        "the sound of a dog barking loudly",
        "a siren wailing in the distance",
        "thunder rumbling during a storm",
        "crowd cheering and applause",
        "a steady high pitched beep tone",
        "birds chirping in the morning",
        "glass shattering on the floor",
        "an engine revving and tires screeching",
        "heavy rain falling on a tin roof",
        "a baby crying in the next room",
        "piano music playing softly",
        "low rumbling brown noise",
    ],
    "transcription": [
        "where she says we are running out of time",
        "the part where he explains the recipe step by step",
        "someone saying welcome back to the show",
        "the quote ask not what your country can do for you",
        "when the teacher talks about photosynthesis",
        "the speaker mentions climate change and carbon",
        "he says every point is tested to see whether it escapes",
        "the line simple rules surprising patterns",
        "interview where they discuss the budget deficit",
        "the narrator explains how volcanoes form",
        "she tells the story about her grandmother",
        "the coach shouting instructions to the team",
    ],
    "metadata": [
        "Math Corner episode about the Mandelbrot set",
        "TED talk by Brene Brown 2010",
        "videos uploaded in March 2021",
        "the Casablanca 1942 trailer",
        "BBC documentary series Planet Earth",
        "interview with Barack Obama",
        "news clips from CNN last week",
        "the 2019 Champions League final highlights",
        "Taylor Swift music video",
        "episode 3 of the cooking show season 2",
        "videos tagged with tutorial",
        "the Lex Fridman podcast with Elon Musk",
    ],
}
SIGNALS = ["visual", "audio", "transcription", "metadata"]


def label_records() -> list[LabelRecord]:
    teacher = TeacherInfo(backend="hand", model_id="tests/serve", mode="imported")
    out = []
    for signal, queries in _GROUPS.items():
        for i, q in enumerate(queries):
            weights = {s: (0.7 if s == signal else 0.1) for s in SIGNALS}
            out.append(LabelRecord(id=f"{signal}-{i}", query=q, intent=signal, weights=weights, teacher=teacher))
    return out


@pytest.fixture(scope="session")
def labelled_queries() -> list[tuple[str, str]]:
    return [(q, signal) for signal, queries in _GROUPS.items() for q in queries]


@pytest.fixture(scope="session")
def router_dir(tmp_path_factory) -> Path:
    """A frozen-encoder student trained on 48 hand labels (seconds; ONNX export off to stay quick)."""
    from vidroute.students import train_student

    out = tmp_path_factory.mktemp("router")
    train_student(label_records(), out, student="frozen", max_epochs=60, patience=10, onnx=False, threads=1)
    return out


@pytest.fixture(scope="session")
def router(router_dir):
    from vidroute.router import Router

    return Router.load(router_dir)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    """The ingest stage's synthetic demo clips (generated with ffmpeg, sidecars included)."""
    from vidroute.ingest import make_demo_clips

    folder = tmp_path_factory.mktemp("media")
    make_demo_clips(folder)
    return folder


@pytest.fixture(scope="session")
def engine(tmp_path_factory, media_dir, router):
    """A real engine on an in-process store holding the first demo clip (real ingest: scenes, keyframes, MiniLM)."""
    from vidroute.ingest import IngestConfig
    from vidroute.search.engine import SearchEngine

    keyframes = tmp_path_factory.mktemp("keyframes")
    eng = SearchEngine.open(f"memory://serve-{uuid.uuid4().hex[:8]}", router=router)
    eng.ingest_config = IngestConfig(keyframe_dir=keyframes, asr=False)
    first = sorted(p for p in media_dir.iterdir() if p.suffix == ".mp4")[0]
    report = eng.index_paths([first])
    assert report.indexed, report
    yield eng
    eng.close()


@pytest.fixture()
def settings(tmp_path, media_dir):
    from vidroute.serve.config import Settings

    return Settings(
        _env_file=None,
        api_keys=API_KEY,
        media_roots=[str(media_dir)],
        uploads_dir=tmp_path / "uploads",
        request_timeout_s=20,
    )


@pytest.fixture()
def client(settings, router, engine):
    from fastapi.testclient import TestClient

    from vidroute.serve.app import create_app

    app = create_app(settings, router=router, engine=engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        assert app.state.service.wait_loaded(30)
        yield c


@pytest.fixture()
def live_url(settings, router, engine):
    """The app under a real uvicorn server on a free loopback port, in a thread."""
    import socket
    import threading
    import time

    import uvicorn

    from vidroute.serve.app import create_app

    app = create_app(settings, router=router, engine=engine)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def api_key() -> str:
    return API_KEY


@pytest.fixture()
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture()
def signals() -> list[str]:
    return list(SIGNALS)
