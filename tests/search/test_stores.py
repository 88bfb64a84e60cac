"""Store backends (memory, LanceDB, Qdrant local): round trips, exact fusion, filters, BM25, failures."""

from __future__ import annotations

import time

import numpy as np
import pytest

from vidroute.errors import StoreError
from vidroute.search.base import matches
from vidroute.search.fusion import Layout, brute_force, concat_query, normalise_query
from vidroute.search.stores import open_store
from vidroute.search.types import Filters, Segment

SIGNALS = ["visual", "audio", "transcription", "metadata"]
BACKENDS = ["memory", "lancedb", "qdrant"]
WEIGHTS = [
    {"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1},
    {"visual": 0.25, "audio": 0.25, "transcription": 0.25, "metadata": 0.25},
    {"visual": 0.0, "audio": 0.0, "transcription": 1.0, "metadata": 0.0},
    {"visual": 0.5, "audio": 0.03, "transcription": 0.3, "metadata": 0.17},  # audio < 0.05 is skipped
]


def _query(seed: int, dim: int = 24) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + seed)
    return {s: rng.normal(size=dim) for s in SIGNALS}


def _packed(videos, layout):
    segs = [s for v in videos for s in v]
    return segs, np.stack([layout.pack(s.vectors)[0] for s in segs])


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_replace_and_delete(backend, open_backend, videos, fill):
    store = open_backend(backend)
    fill(store, videos[:5])
    assert store.count() == 50 and store.has_video("vid002") and not store.has_video("vid009")
    # Re-indexing a video replaces it: the old segments are gone, the new ones are searchable.
    new = [
        s.model_copy(update={"segment_id": f"vid002:new{j}", "title": "replaced"}) for j, s in enumerate(videos[2][:3])
    ]
    store.upsert_video("vid002", new)
    assert store.count() == 43
    hits = store.search(_query(0), None, k=50, filters=Filters(video_id="vid002"))
    assert sorted(h.segment_id for h in hits) == ["vid002:new0", "vid002:new1", "vid002:new2"]
    assert all(h.title == "replaced" for h in hits)
    stats = store.stats()
    assert stats["segments"] == 43 and stats["videos"] == 5 and stats["signals"] == SIGNALS
    assert store.delete_video("vid002") == 3
    assert store.delete_video("vid002") == 0
    assert store.count() == 40 and not store.has_video("vid002")
    store.upsert_video("vid003", [])  # an empty replacement removes the video
    assert store.count() == 30


@pytest.mark.parametrize("backend", [*BACKENDS, "lancedb-int8"])
def test_raw_fusion_matches_numpy_brute_force(backend, open_backend, videos, fill):
    store = open_backend(backend)
    fill(store, videos)
    layout = store.layout
    segs, packed = _packed(videos, layout)
    for i, w in enumerate(WEIGHTS):
        qv = _query(i)
        _q, eff, legs = store.plan(qv, w, text=None)
        assert "audio" not in eff or w["audio"] >= 0.05
        idx, scores = brute_force(layout, packed, normalise_query(layout, qv), legs, 10)
        hits = store.search(qv, w, k=10)
        assert [h.segment_id for h in hits] == [segs[j].segment_id for j in idx]
        assert [h.score for h in hits] == pytest.approx(list(scores), abs=1e-4)
        # The per-signal breakdown recombines into the fused score.
        for h in hits:
            assert sum(legs[s] * h.scores[s] for s in legs) == pytest.approx(h.score, abs=1e-5)
    if backend == "lancedb-int8":
        assert store._exact_snapshot()[-1].approximate  # the int8 first pass did serve these searches


def test_minmax_and_rrf_agree_across_backends(open_backend, videos, fill):
    stores = {b: open_backend(b) for b in BACKENDS}
    for store in stores.values():
        fill(store, videos)
    for fusion in ("minmax", "rrf"):
        for i, w in enumerate(WEIGHTS[:2]):
            results = {b: s.search(_query(i), w, k=10, fusion=fusion) for b, s in stores.items()}
            ref = results["memory"]
            for b in ("lancedb", "qdrant"):
                assert [h.segment_id for h in results[b]] == [h.segment_id for h in ref], (fusion, b)
                assert [h.score for h in results[b]] == pytest.approx([h.score for h in ref], abs=1e-6)


def test_minmax_scores_are_normalised_and_fused(open_backend, videos, fill):
    store = open_backend("memory")
    fill(store, videos)
    w = WEIGHTS[0]
    hits = store.search(_query(1), w, k=300, fusion="minmax", candidates=300)
    assert len(hits) == 300  # candidate depth covers the whole store: every segment is rescored
    for s in SIGNALS:
        vals = [h.scores[s] for h in hits]
        assert min(vals) == pytest.approx(0.0) and max(vals) == pytest.approx(1.0)
    _q, eff, _legs = store.plan(_query(1), w, text=None)
    for h in hits[:10]:
        assert h.score == pytest.approx(sum(eff[s] * h.scores[s] for s in eff))
    # Min-max is not a monotone transform of raw fusion: the two rankings differ on this data.
    raw = store.search(_query(1), w, k=10, fusion="raw")
    assert [h.segment_id for h in raw] != [h.segment_id for h in hits[:10]]


def test_rrf_uses_weighted_reciprocal_ranks(open_backend, videos, fill):
    store = open_backend("memory")
    fill(store, videos)
    hits = store.search(_query(2), {"visual": 1.0}, k=3, fusion="rrf")
    assert [h.score for h in hits] == pytest.approx([1 / 61, 1 / 62, 1 / 63])


def test_weight_under_min_changes_nothing(open_backend, videos, fill):
    store = open_backend("lancedb")
    fill(store, videos)
    with_small = store.search(_query(3), {"visual": 0.6, "audio": 0.04, "transcription": 0.36}, k=10)
    without = store.search(_query(3), {"visual": 0.6, "transcription": 0.36}, k=10)
    assert [h.segment_id for h in with_small] == [h.segment_id for h in without]
    assert [h.score for h in with_small] == pytest.approx([h.score for h in without], abs=1e-6)


FILTERS = [
    Filters(date_from="2021-03-01", date_to="2021-06-30"),
    Filters(date_to="2021-02"),
    Filters(people=["ALICE SMITH", "nobody"]),
    Filters(genre="sport"),
    Filters(people=["Carol"], genre="News", date_from="2021"),
]


@pytest.mark.parametrize("backend", [*BACKENDS, "lancedb-int8"])
def test_filters(backend, open_backend, videos, fill):
    store = open_backend(backend)
    fill(store, videos)
    layout = store.layout
    segs, packed = _packed(videos, layout)
    rows = [{"date": s.date, "people": s.people, "genre": s.genre, "video_id": s.video_id} for s in segs]
    qv = _query(4)
    for f in FILTERS:
        allowed = np.array([matches(r, f) for r in rows])
        assert 0 < allowed.sum() < len(rows), f
        hits = store.search(qv, WEIGHTS[1], k=10, filters=f)
        q = concat_query(layout, normalise_query(layout, qv), WEIGHTS[1])
        scores = np.where(allowed, packed @ q, -np.inf)
        expect = [segs[j].segment_id for j in np.argsort(-scores)[: min(10, allowed.sum())]]
        assert [h.segment_id for h in hits] == expect, f
    # Inclusive bounds: "2021-02" as date_to includes the whole of February.
    feb = store.search(qv, None, k=300, filters=Filters(date_from="2021-02-01", date_to="2021-02"))
    assert feb and {s.date for s in segs if s.segment_id in {h.segment_id for h in feb}} <= {
        s.date for s in segs if s.date.startswith("2021-02")
    }


@pytest.mark.parametrize("backend", [*BACKENDS, "lancedb-int8"])
def test_bm25_finds_an_exact_title(backend, open_backend, videos, fill):
    store = open_backend(backend)
    fill(store, videos)
    special = [
        s.model_copy(update={"title": "The Chilean Embassy Affair", "vectors": {}})
        for s in videos[5][:1]  # no vectors at all: only the lexical leg can find it
    ]
    store.upsert_video("vid005", special)
    qv = _query(5)
    hits = store.search(qv, {"visual": 0.1, "metadata": 0.9}, k=5, text="chilean embassy")
    assert hits[0].segment_id == special[0].segment_id
    assert hits[0].scores["bm25"] == pytest.approx(1.0)
    assert all(h.scores["bm25"] < 1.0 for h in hits[1:])
    # Without text the same query cannot reach it (it has no vectors).
    assert special[0].segment_id not in {h.segment_id for h in store.search(qv, WEIGHTS[1], k=10)}


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_upsert_leaves_store_unchanged(backend, open_backend, videos, fill):
    store = open_backend(backend)
    fill(store, videos[:3])
    before = [h.segment_id for h in store.search(_query(6), None, k=10)]
    bad = [s.model_copy() for s in videos[1]]
    bad[-1] = bad[-1].model_copy(update={"vectors": {"visual": [0.1] * 7}})  # wrong dimension, last segment
    with pytest.raises(StoreError, match="dimension 7"):
        store.upsert_video("vid001", bad)
    wrong_video = [videos[2][0].model_copy(update={"video_id": "other"})]
    with pytest.raises(StoreError, match="belongs to video"):
        store.upsert_video("vid002", wrong_video)
    with pytest.raises(StoreError, match="duplicate"):
        store.upsert_video("vid002", [videos[2][0], videos[2][0]])
    assert store.count() == 30
    assert [h.segment_id for h in store.search(_query(6), None, k=10)] == before


@pytest.mark.parametrize("backend", ["lancedb", "qdrant"])
def test_store_persists_and_refuses_other_dims(backend, open_backend, videos, fill, tmp_path):
    from vidroute.search.base import StoreConfig

    path = tmp_path / "persist"
    store = open_backend(backend, path=path)
    fill(store, videos[:4])
    expected = [h.segment_id for h in store.search(_query(7), None, k=10)]
    store.close()
    again = open_store(f"{backend}://{path}")
    try:
        assert again.count() == 40 and again.signals == SIGNALS
        assert [h.segment_id for h in again.search(_query(7), None, k=10)] == expected
        other = StoreConfig(layout=Layout(signals=SIGNALS, dims=dict.fromkeys(SIGNALS, 12)))
        with pytest.raises(StoreError, match="dims"):
            again.configure(other)
        with pytest.raises(StoreError, match="dimension"):
            again.search({"visual": np.ones(12)}, None)
    finally:
        again.close()


def test_corrupt_and_invalid_inputs(tmp_path, open_backend):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "vidroute_store.json").write_text("{not json")
    with pytest.raises(StoreError, match="not a valid vidroute store config"):
        open_store(str(bad))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("hello")
    with pytest.raises(StoreError, match="not a vidroute store"):
        open_store(f"lancedb://{other}")
    for uri in ("ftp://x", "", "lancedb://", "lancedb:///tmp/x?nprobes=abc", "memory://x?bogus=1"):
        with pytest.raises(StoreError):
            open_store(uri)
    store = open_backend("memory")
    store.upsert_video("v", [Segment(segment_id="v:0", video_id="v", path="p", start=0, end=1)])
    with pytest.raises(StoreError, match="ISO date"):
        store.search(_query(0), None, filters=Filters(date_from="last tuesday"))
    with pytest.raises(StoreError, match="after"):
        store.search(_query(0), None, filters=Filters(date_from="2022-01-01", date_to="2021-01-01"))
    with pytest.raises(StoreError, match="fusion"):
        store.search(_query(0), None, fusion="max")
    with pytest.raises(StoreError, match="start"):
        store.upsert_video("v", [Segment(segment_id="v:0", video_id="v", path="p", start=5, end=1)])
    with pytest.raises(StoreError, match="NaN"):
        store.upsert_video(
            "v", [Segment(segment_id="v:0", video_id="v", path="p", start=0, end=1, vectors={"audio": [np.nan] * 24})]
        )


def test_empty_and_unconfigured_stores_return_nothing(tmp_path):
    store = open_store(str(tmp_path / "new"))
    assert store.config is None and store.count() == 0
    assert store.search({"visual": np.ones(3)}, None) == []
    assert not (tmp_path / "new").exists()  # opening to read creates nothing
    with pytest.raises(StoreError, match="no layout"):
        store.upsert_video("v", [])


def test_lance_indexed_search_rescores_the_candidate_union(open_backend, segment_factory, fill):
    """With per-signal IVF indexes probed completely, the union + exact rescoring equals brute force."""
    many = segment_factory(n_videos=120, per_video=25, seed=1)
    store = open_backend("lancedb")
    fill(store, many)
    store.create_vector_index(index_type="IVF_FLAT", num_partitions=8)
    assert store.has_vector_index() and not store.approximate  # small tables stay on the exact in-memory scan
    store.exact_limit = 0  # this test is about the indexed path
    assert store.approximate
    segs, packed = _packed(many, store.layout)
    store.nprobes, store.refine_factor = 8, None
    for i, w in enumerate(WEIGHTS[:2]):
        qv = _query(10 + i)
        _q, _eff, legs = store.plan(qv, w, text=None)
        idx, scores = brute_force(store.layout, packed, normalise_query(store.layout, qv), legs, 10)
        hits = store.search(qv, w, k=10, candidates=200)
        assert [h.segment_id for h in hits] == [segs[j].segment_id for j in idx]
        assert [h.score for h in hits] == pytest.approx(list(scores), abs=1e-4)
    # Filters still hold on the indexed path.
    hits = store.search(_query(12), None, k=10, filters=Filters(genre="music"))
    assert hits and all(h.video_id in {v[0].video_id for v in many if v[0].genre == "Music"} for h in hits)


def test_lance_int8_copy_is_built_in_the_background_for_large_tables(open_backend, videos, fill, monkeypatch):
    """Past the background threshold a table change serves float32 at once and switches to int8 when it is built;
    `warm()` builds both before returning."""
    import vidroute.search.lance_store as ls

    monkeypatch.setattr(ls, "_INT8_BACKGROUND_ROWS", 1)
    store = open_backend("lancedb-int8")
    fill(store, videos)
    store.warm()
    assert store._exact_snapshot()[-1].approximate
    layout = store.layout
    segs, packed = _packed(videos, layout)
    qv = _query(3)
    _q, _eff, legs = store.plan(qv, WEIGHTS[0], text=None)
    idx, _scores = brute_force(layout, packed, normalise_query(layout, qv), legs, 10)
    assert [h.segment_id for h in store.search(qv, WEIGHTS[0], k=10)] == [segs[j].segment_id for j in idx]
    # A write: the next search sees the new rows through a float32 scan, then the int8 copy arrives.
    store.delete_video(videos[0][0].video_id)
    hits = store.search(qv, WEIGHTS[0], k=10)
    assert all(h.video_id != videos[0][0].video_id for h in hits)
    deadline = time.monotonic() + 30
    while not store._exact_snapshot()[-1].approximate and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store._exact_snapshot()[-1].approximate


def test_lance_in_memory_bm25_ranks_like_lancedb_full_text_index(open_backend, videos, fill):
    """The in-memory BM25 that serves tables held in memory analyses text like LanceDB's FTS (stemming, stop words,
    folding): same matches and near-identical scores for the same queries."""
    store = open_backend("lancedb")
    fill(store, videos)
    extra = [
        s.model_copy(update={"title": title, "transcript": said})
        for s, title, said in zip(
            videos[7][:3],
            ["Dogs Barking at Night", "Café Society", "The Barking Dog"],
            ["the dog barked and barked", "we met at the café on Friday", "a dog barks while children are playing"],
            strict=True,
        )
    ]
    store.upsert_video(videos[7][0].video_id, extra + list(videos[7][3:]))
    store.warm()
    assert store._bm25 is not None and store._bm25[0] == store._exact[0]
    built = store._bm25
    for query in ("barking dogs", "dog barked", "cafe friday", "children playing", "the and of"):
        store._bm25 = built
        memory = store._memory_text_leg(query, 10, None)
        store._bm25 = None  # LanceDB's own full-text index answers while no in-memory index is current
        lance = store._text_leg(query, 10, None)
        assert memory is not None and (len(memory.rows) > 0) == (query != "the and of"), query
        assert [r["segment_id"] for r in memory.rows] == [r["segment_id"] for r in lance.rows], query
        assert memory.bm25 == pytest.approx(lance.bm25, rel=0.05), query
