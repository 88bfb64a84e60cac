"""SearchEngine with the real MiniLM embedder: routing + embedding, weights, reopen from config, CLI search."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from vidroute.errors import ConfigError, StoreError
from vidroute.router import RouteResult
from vidroute.search.engine import SearchEngine
from vidroute.search.types import Filters, Segment

DOCS = [
    ("Bread at home", "first you knead the sourdough and let the dough rise overnight", ["Paul"], "cooking"),
    ("Transfer window", "the striker scored twice in the second half of the derby", ["Maria Lopez"], "sport"),
    ("Deep sea", "these jellyfish glow in the dark water two kilometres down", [], "nature"),
    ("Budget night", "the minister announced a new tax on sugary drinks", ["Maria Lopez"], "news"),
    ("Garage band", "turn the amplifier up and play the guitar solo again", ["Sam"], "music"),
]


class FixedRouter:
    """A stand-in router (the router has its own tests): fixed weights, and a delay to show concurrency."""

    def __init__(self, weights: dict[str, float], delay: float = 0.0) -> None:
        self.weights = weights
        self.delay = delay
        self.model = "fixed"

    def route(self, query: str) -> RouteResult:
        time.sleep(self.delay)
        dom = max(self.weights, key=self.weights.get)
        return RouteResult(weights=self.weights, dominant=dom, confidence=0.9, model=self.model, latency_ms=0.1)


@pytest.fixture(scope="module")
def minilm():
    from vidroute.ingest.embedders.text import TextEmbedder

    return TextEmbedder(signal="transcription")


@pytest.fixture(scope="module")
def embedders(minilm):
    from vidroute.ingest.embedders.text import TextEmbedder

    return {"transcription": minilm, "metadata": TextEmbedder(signal="metadata")}


def _segments(minilm) -> list[Segment]:
    transcripts = minilm.embed_texts([d[1] for d in DOCS])
    metas = minilm.embed_texts([f"{d[0]}. {', '.join(d[2])}. {d[3]}" for d in DOCS])
    return [
        Segment(
            segment_id=f"v{i}:00000",
            video_id=f"v{i}",
            path=f"/media/v{i}.mp4",
            start=0.0,
            end=8.0,
            title=d[0],
            transcript=d[1],
            people=d[2],
            genre=d[3],
            date=f"202{i}-05-01",
            vectors={"transcription": transcripts[i].tolist(), "metadata": metas[i].tolist()},
        )
        for i, d in enumerate(DOCS)
    ]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory, embedders, minilm):
    path = tmp_path_factory.mktemp("engine") / "store"
    with SearchEngine.open(str(path), embedders=embedders) as engine:
        for seg in _segments(minilm):
            engine.index_segments(seg.video_id, [seg])
        engine.store.optimize()
    return path


def test_search_finds_spoken_and_metadata_matches(store_path, embedders):
    with SearchEngine.open(str(store_path), embedders=embedders) as engine:
        assert engine.signals == ["transcription", "metadata"]
        res = engine.search("how to make sourdough bread", k=3)
        assert res.hits[0].video_id == "v0"
        assert res.weights_source == "uniform" and res.weights == pytest.approx({"transcription": 0.5, "metadata": 0.5})
        assert set(res.hits[0].scores) == {"transcription", "metadata", "bm25"}
        assert {"embed_ms", "search_ms", "total_ms"} <= set(res.timings)
        # A metadata-heavy query by name: BM25 + metadata vector, restricted by filters.
        res = engine.search("Maria Lopez", k=5, weights={"metadata": 1.0}, filters=Filters(genre="news"))
        assert [h.video_id for h in res.hits] == ["v3"]
        assert res.weights_source == "user" and res.weights == {"metadata": 1.0}


def test_router_weights_are_used_and_run_concurrently(store_path, embedders):
    router = FixedRouter({"visual": 0.5, "audio": 0.02, "transcription": 0.38, "metadata": 0.1}, delay=0.3)
    with SearchEngine.open(str(store_path), embedders=embedders, router=router) as engine:
        engine.search("warm up")  # loads the model outside the timing
        res = engine.search("the guitar solo is loud", k=2)
    assert res.route is not None and res.weights_source == "router"
    # visual has no embedder here and audio is under 0.05: the rest are renormalised.
    assert res.weights == pytest.approx({"transcription": 0.38 / 0.48, "metadata": 0.1 / 0.48})
    assert res.hits[0].video_id == "v4"
    # Routing (300 ms) and embedding overlap: the total is well under their sum.
    assert res.timings["route_ms"] >= 290
    assert res.timings["total_ms"] < res.timings["route_ms"] + res.timings["embed_ms"] + res.timings["search_ms"]


def test_open_rebuilds_embedders_from_store_config(store_path):
    with SearchEngine.open(str(store_path)) as engine:
        assert engine.store.config.embedders == {"transcription": "minilm", "metadata": "minilm"}
        assert sorted(engine.embedders) == ["metadata", "transcription"]
        assert engine.search("jellyfish glowing deep in the ocean", k=1).hits[0].video_id == "v2"


class TinyEmbedder:
    name = "tiny"
    dim = 8

    def embed_texts(self, texts):
        return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)


def test_mismatched_embedder_dims_are_refused(store_path):
    with pytest.raises(StoreError, match="8-d"):
        SearchEngine.open(str(store_path), embedders={"transcription": TinyEmbedder()})


def test_bad_queries_and_weights(store_path, embedders):
    with SearchEngine.open(str(store_path), embedders=embedders) as engine:
        with pytest.raises(ConfigError, match="empty"):
            engine.search("   ")
        with pytest.raises(ConfigError, match="unknown signals"):
            engine.search("x", weights={"smell": 1.0})
        with pytest.raises(ConfigError, match="fusion"):
            engine.search("x", fusion="avg")


def test_cli_search_json_and_table(store_path):
    from vidroute.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["search", "striker scored in the derby", "--store", str(store_path), "--json", "-k", "2"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["hits"][0]["video_id"] == "v1" and len(out["hits"]) == 2
    assert set(out["weights"]) == {"transcription", "metadata"} and out["route"] is None
    res = runner.invoke(
        app,
        ["search", "tax", "--store", str(store_path), "--weights", "metadata=1", "--person", "maria lopez"],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    assert "Budget night" in res.stdout and "weights (user): metadata 1.00" in res.stdout
    res = runner.invoke(app, ["search", "tax", "--store", str(store_path), "--weights", "metadata"])
    assert res.exit_code != 0
