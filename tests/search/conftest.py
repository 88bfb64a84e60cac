"""Fixtures for the search tests: structured random segments and an opener for every store backend."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from vidroute.search.base import StoreConfig
from vidroute.search.fusion import Layout
from vidroute.search.stores import drop_memory_store, open_store
from vidroute.search.types import Segment

SIGNALS = ["visual", "audio", "transcription", "metadata"]
DIM = 24
BACKENDS = ["memory", "lancedb", "qdrant"]
_names = itertools.count()


def make_segments(n_videos: int = 30, per_video: int = 10, *, dim: int = DIM, seed: int = 0) -> list[list[Segment]]:
    """Videos of segments clustered around a few topics, ~15 % of vectors missing, varied metadata."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, len(SIGNALS), dim))
    people = [["Alice Smith"], ["Bob"], ["alice smith", "Carol"], []]
    genres = ["News", "Sport", "Music"]
    videos = []
    for v in range(n_videos):
        topic = centres[rng.integers(len(centres))]
        segs = []
        for j in range(per_video):
            vectors = {
                s: None if rng.random() < 0.15 else (topic[i] + rng.normal(scale=0.8, size=dim)).tolist()
                for i, s in enumerate(SIGNALS)
            }
            segs.append(
                Segment(
                    segment_id=f"vid{v:03d}:{j:05d}",
                    video_id=f"vid{v:03d}",
                    path=f"/media/vid{v:03d}.mp4",
                    start=10.0 * j,
                    end=10.0 * j + 10.0,
                    title=f"episode {v}",
                    transcript=f"segment {j} of episode {v} where someone talks",
                    people=people[v % len(people)],
                    genre=genres[v % len(genres)],
                    date="" if v % 7 == 6 else f"2021-{v % 12 + 1:02d}-{v % 28 + 1:02d}",
                    vectors=vectors,
                )
            )
        videos.append(segs)
    return videos


@pytest.fixture(scope="module")
def videos() -> list[list[Segment]]:
    return make_segments()


@pytest.fixture
def open_backend(tmp_path):
    """open_backend(kind) → an empty, configured store of that backend (closed after the test)."""
    opened = []

    def _open(kind: str, *, dim: int = DIM, configure: bool = True, path=None):
        name = f"t{next(_names)}"
        int8 = kind == "lancedb-int8"  # the LanceDB store with its int8 first pass on, whatever the table size
        kind = "lancedb" if int8 else kind
        uri = {
            "memory": f"memory://{name}",
            "lancedb": f"lancedb://{path or tmp_path / name}",
            "qdrant": f"qdrant://{path or tmp_path / name}",
        }[kind]
        store = open_store(uri)
        if int8:
            store.int8_min_rows = 1
        if configure and store.config is None:
            store.configure(StoreConfig(layout=Layout(signals=SIGNALS, dims=dict.fromkeys(SIGNALS, dim))))
        opened.append((kind, name, store))
        return store

    yield _open
    for kind, name, store in opened:
        store.close()
        if kind == "memory":
            drop_memory_store(name)


@pytest.fixture
def fill():
    """fill(store, videos): upsert every video."""

    def _fill(store, videos) -> None:
        for segs in videos:
            store.upsert_video(segs[0].video_id, segs)

    return _fill


@pytest.fixture
def segment_factory():
    return make_segments
