"""The search benchmark's building blocks: metrics, the synthetic corpus, a tiny scale run, the VAST loader."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidroute.search.bench import SyntheticCorpus, load_vast, rank_metrics, run_scale


def test_rank_metrics():
    m = rank_metrics([1, 3, None, 12])
    assert m["recall1"] == 0.25 and m["recall5"] == 0.5 and m["recall10"] == 0.5
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 12) / 4)
    assert m["ndcg10"] == pytest.approx((1 + 1 / math.log2(4)) / 4)


def test_synthetic_corpus_is_structured_and_reproducible():
    corpus = SyntheticCorpus(topics=50, seed=3)
    (a, masks, vids), *_ = corpus.chunks(500, chunk=250)
    (b, _, _), *_ = SyntheticCorpus(topics=50, seed=3).chunks(500, chunk=250)
    assert np.array_equal(a, b)
    layout = corpus.layout
    for i, s in enumerate(corpus.signals):  # masks say which slots hold a unit vector
        norms = np.linalg.norm(a[:, layout.slot(s)], axis=1)
        has = (masks & (1 << i)) > 0
        assert np.allclose(norms[has], 1.0, atol=1e-5) and np.all(norms[~has] == 0)
    vis = a[:, layout.slot("visual")]
    same = vids[:, None] == vids[None, :]
    sims = vis @ vis.T
    # Segments of one video are far more alike than segments of different videos: not uniform random vectors.
    assert sims[same & ~np.eye(len(vis), dtype=bool)].mean() > sims[~same].mean() + 0.3


def test_tiny_scale_run_measures_exact_and_indexed_paths(tmp_path):
    res = run_scale(2000, workdir=tmp_path, n_queries=6, nprobes=[4, 44])
    assert res["exact"]["recall10_vs_exact"] == 1.0
    assert res["default_path"] == "exact" and res["recall10_vs_exact"] == 1.0
    assert res["indexed"]["44"]["recall10_vs_exact"] >= 0.9  # all partitions probed
    assert res["insert_rate_per_s"] > 0 and not (tmp_path / "scale-2000").exists()


def test_vast_annotations_load(shared_dir):
    clips = load_vast(shared_dir)
    full = [c for c in clips if len(c.get("vision_cap") or []) >= 5 and len(c.get("audio_cap") or []) >= 5]
    assert len(clips) == len({c["id"] for c in clips}) >= 100 and len(full) >= 100


def test_retrieval_benchmark_on_vast(shared_dir):
    """The VAST retrieval run end to end (real MiniLM, LanceDB): knowing the query's signal must help."""
    from vidroute.search.bench import run_retrieval

    res = run_retrieval(data_dir=shared_dir)
    w = res["weightings"]
    assert res["full_clips"] >= 100 and res["queries"] >= 300
    assert 0.3 < w["uniform"]["recall10"] < 1.0
    assert w["oracle"]["recall10"] > w["uniform"]["recall10"]  # one-hot on the true signal beats uniform
    assert set(res["by_fusion"]) == {"minmax", "rrf"}
    for f in ("minmax", "rrf"):
        assert res["by_fusion"][f]["oracle"]["recall10"] >= res["by_fusion"][f]["uniform"]["recall10"]
