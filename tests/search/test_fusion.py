"""Fusion arithmetic: weight rules, leg split, normalisations, packing, and the concatenation identity."""

from __future__ import annotations

import numpy as np
import pytest

from vidroute.errors import StoreError
from vidroute.search.fusion import (
    BM25,
    Layout,
    brute_force,
    concat_query,
    effective_weights,
    fuse,
    leg_weights,
    normalise,
)

SIG = ["visual", "audio", "transcription", "metadata"]


def test_weights_under_min_are_skipped_and_rest_renormalised():
    w = effective_weights({"visual": 0.6, "audio": 0.04, "transcription": 0.3, "metadata": 0.06}, SIG)
    assert set(w) == {"visual", "transcription", "metadata"}
    assert w["visual"] == pytest.approx(0.6 / 0.96)
    assert sum(w.values()) == pytest.approx(1.0)


def test_weights_renormalised_over_usable_signals_only():
    w = effective_weights({"visual": 0.5, "audio": 0.2, "transcription": 0.2, "metadata": 0.1}, ["audio", "metadata"])
    assert w == pytest.approx({"audio": 2 / 3, "metadata": 1 / 3})


def test_weights_uniform_when_not_given_and_fallback_when_all_under_min():
    assert effective_weights(None, ["a", "b"]) == {"a": 0.5, "b": 0.5}
    # The query can only use signals the router gave < 0.05: use them in proportion rather than return nothing.
    w = effective_weights({"visual": 0.97, "audio": 0.02, "metadata": 0.01}, ["audio", "metadata"])
    assert w == pytest.approx({"audio": 2 / 3, "metadata": 1 / 3})
    with pytest.raises(StoreError):
        effective_weights({"visual": -1.0}, ["visual"])


def test_metadata_weight_splits_between_vector_and_bm25():
    w = {"visual": 0.5, "metadata": 0.5}
    assert leg_weights(w, text=True, has_text_vector=True, bm25_share=0.4) == pytest.approx(
        {"visual": 0.5, "metadata": 0.3, BM25: 0.2}
    )
    assert leg_weights(w, text=True, has_text_vector=False) == pytest.approx({"visual": 0.5, BM25: 0.5})
    assert leg_weights(w, text=False, has_text_vector=True) == w


def test_normalisations():
    x = np.array([0.2, 0.5, 0.8, 0.0])
    present = np.array([True, True, True, False])
    assert normalise(x, present, "raw", leg="visual") == pytest.approx([0.2, 0.5, 0.8, 0.0])
    assert normalise(x, present, "minmax", leg="visual") == pytest.approx([0.0, 0.5, 1.0, 0.0])
    assert normalise(x, present, "rrf", leg="visual") == pytest.approx([1 / 63, 1 / 62, 1 / 61, 0.0])
    bm = np.array([0.0, 2.0, 4.0, 0.0])
    assert normalise(bm, bm > 0, "raw", leg=BM25) == pytest.approx([0.0, 0.5, 1.0, 0.0])
    assert normalise(bm, bm > 0, "minmax", leg=BM25) == pytest.approx([0.0, 0.5, 1.0, 0.0])
    # A leg where every candidate ties is 1 for those that have the signal.
    assert normalise(np.array([0.3, 0.3]), np.array([True, False]), "minmax", leg="a") == pytest.approx([1.0, 0.0])


def test_fuse_is_weighted_sum_of_normalised_legs():
    scores = {"a": np.array([0.1, 0.9]), "b": np.array([0.8, 0.2])}
    present = {k: np.ones(2, bool) for k in scores}
    total, normed = fuse(scores, present, {"a": 0.75, "b": 0.25}, "minmax")
    assert normed["a"] == pytest.approx([0, 1]) and normed["b"] == pytest.approx([1, 0])
    assert total == pytest.approx([0.25, 0.75])
    with pytest.raises(StoreError):
        fuse(scores, present, {"a": 1.0}, "nope")


def test_concatenated_inner_product_is_weighted_cosine_sum():
    rng = np.random.default_rng(3)
    layout = Layout(signals=SIG, dims={"visual": 5, "audio": 3, "transcription": 4, "metadata": 4})
    docs = [{s: rng.normal(size=layout.dims[s]) for s in SIG} for _ in range(20)]
    docs[0]["audio"] = None
    packed = np.stack([layout.pack(d)[0] for d in docs])
    q = {s: (v := rng.normal(size=layout.dims[s])) / np.linalg.norm(v) for s in SIG}
    w = {"visual": 0.4, "audio": 0.3, "transcription": 0.2, "metadata": 0.1}
    expected = [
        sum(
            w[s] * (0.0 if d[s] is None else float(q[s] @ d[s] / np.linalg.norm(d[s])))  # missing signal scores 0
            for s in SIG
        )
        for d in docs
    ]
    assert packed @ concat_query(layout, q, w) == pytest.approx(expected, abs=1e-5)
    idx, top = brute_force(layout, packed, q, w, 5)
    assert list(idx) == list(np.argsort(-np.asarray(expected))[:5])
    assert top == pytest.approx(sorted(expected, reverse=True)[:5], abs=1e-5)


def test_pack_validates_and_treats_zero_vectors_as_missing():
    layout = Layout(signals=["visual", "audio"], dims={"visual": 3, "audio": 2})
    vec, mask = layout.pack({"visual": [3.0, 0.0, 4.0], "audio": [0.0, 0.0]})
    assert vec == pytest.approx([0.6, 0.0, 0.8, 0.0, 0.0]) and mask == 0b01
    with pytest.raises(StoreError, match="dimension 4"):
        layout.pack({"visual": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(StoreError, match="NaN"):
        layout.pack({"audio": [float("nan"), 1.0]})
    with pytest.raises(StoreError, match="unknown signals"):
        layout.pack({"smell": [1.0]})
    with pytest.raises(ValueError):
        Layout(signals=["visual"], dims={"audio": 3})
