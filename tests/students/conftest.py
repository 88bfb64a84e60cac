"""Fixtures for the student tests: a small, separable hand-made label set, a tiny Premier loader, trained models."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from vidroute.records import LabelRecord, TeacherInfo

SIGNALS = ["visual", "audio", "transcription", "metadata"]
TOY_TEACHER = TeacherInfo(backend="handmade", model_id="toy-v1", mode="imported")

# Each intent: query templates, fillers, and the soft label a teacher would give (not one-hot: KD needs mass
# on the other signals too).
_TOY = {
    "visual": (
        ["a {c} {o} parked by the road", "close-up of a {c} {o}", "a {o} painted {c} in a sunny field"],
        {"c": ["red", "blue", "green", "yellow", "white", "black"], "o": ["car", "bicycle", "boat", "door", "kite"]},
        [0.75, 0.05, 0.05, 0.15],
    ),
    "audio": (
        ["the sound of a {a} {s}", "loud {a} {s} in the distance", "{a} {s} noise with no music"],
        {"a": ["dog", "siren", "engine", "crowd", "bird", "drum"], "s": ["barking", "wailing", "roaring", "humming"]},
        [0.15, 0.7, 0.05, 0.1],
    ),
    "transcription": (
        ['someone says "{q}"', "the speaker explains {t}", 'narrator says "{q}" about {t}'],
        {"q": ["we shall never surrender", "ask not what", "time is money", "hello world"], "t": ["taxes", "gravity"]},
        [0.05, 0.05, 0.75, 0.15],
    ),
    "metadata": (
        ["{n} interview from {y}", "{y} {n} documentary", "videos uploaded by {n} in {y}"],
        {"n": ["Taylor Swift", "BBC News", "Lionel Messi", "NASA", "Oprah"], "y": ["1999", "2008", "2015", "2021"]},
        [0.15, 0.05, 0.1, 0.7],
    ),
    # Ambiguous on purpose: visual and audio nearly tied, so the noise flips the dominant signal and the
    # student makes real mistakes that calibration can learn from.
    "mixed": (
        ["a {c} {o} with {a} {s}", "{a} {s} next to a {c} {o}"],
        {
            "c": ["red", "blue", "green"],
            "o": ["car", "boat", "kite"],
            "a": ["dog", "engine", "bird"],
            "s": ["barking", "roaring"],
        },
        [0.42, 0.4, 0.03, 0.15],
    ),
}
_NOISE = {"mixed": 0.08}


def toy_records(n_per_intent: int = 30, *, seed: int = 0) -> list[LabelRecord]:
    """Deterministic separable label records (with a little label noise) for training smoke tests."""
    rng = random.Random(seed)
    out: list[LabelRecord] = []
    for intent, (templates, fills, label) in _TOY.items():
        for i in range(n_per_intent):
            tpl = rng.choice(templates)
            query = tpl.format(**{k: rng.choice(v) for k, v in fills.items()})
            noise = _NOISE.get(intent, 0.03)
            noisy = [max(0.0, w + rng.uniform(-noise, noise)) for w in label]
            total = sum(noisy)
            weights = {s: w / total for s, w in zip(SIGNALS, noisy, strict=True)}
            rec = LabelRecord(id=f"{intent}-{i}", query=query, intent=intent, weights=weights, teacher=TOY_TEACHER)
            out.append(rec)
    return out


def premier_records(path: Path, limit: int) -> list[LabelRecord]:
    """The first `limit` records of the reference's Bedrock conversation JSONL, as LabelRecords."""
    info = TeacherInfo(backend="import:bedrock", model_id="amazon.nova-premier-v1:0", mode="imported")
    out = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if len(out) >= limit:
                break
            row = json.loads(line)
            query = row["messages"][0]["content"][0]["text"]
            answer = json.loads(row["messages"][1]["content"][0]["text"])
            weights = {s: float(answer[s]) for s in SIGNALS}
            out.append(LabelRecord(id=f"premier-{i}", query=query, weights=weights, teacher=info))
    return out


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Embedding/token-table caches go to a temp dir, so tests exercise the cold path and leave no files."""
    mp = pytest.MonkeyPatch()
    mp.setenv("VIDROUTE_CACHE", str(tmp_path_factory.mktemp("vidroute-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def toy() -> list[LabelRecord]:
    return toy_records()


@pytest.fixture(scope="session")
def toy_factory():
    """`toy_records(n_per_intent, seed=...)` for tests that need another toy set."""
    return toy_records


@pytest.fixture(scope="session")
def premier_loader():
    """`premier_records(path, limit)`: a tiny in-test reader of the reference's Bedrock JSONL."""
    return premier_records


@pytest.fixture(scope="session")
def frozen_dir(tmp_path_factory: pytest.TempPathFactory, toy: list[LabelRecord]) -> Path:
    """A frozen-encoder student trained on the toy set and exported to ONNX (fp32 + int8)."""
    from vidroute.students import train_student

    out = tmp_path_factory.mktemp("frozen")
    train_student(
        toy, out, student="frozen", seed=0, val_fraction=0.2, max_epochs=150, patience=20, int8="yes", threads=1
    )
    return out
