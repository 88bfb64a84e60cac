"""Exact weighted fusion of per-signal similarities: weight rules, query packing, rescoring and the three fusions.

Every store keeps one concatenated vector per segment (the `Layout`: each signal's L2-normalised vector in its own
slot, zeros where the segment has no vector for that signal). Because a weighted sum of inner products is one inner
product over concatenated vectors,

    Σ_s w_s · cos(q_s, d_s) = < [w_1 q_1, …, w_n q_n], [d_1, …, d_n] >,

"raw" fusion is a single search of the concatenated space, exact under flat search. A segment missing signal s
scores 0 on s (its slot is zeros). Min-max and RRF need each signal's score on its own: stores gather a candidate
union (fused top-K, each signal's top-K, BM25 top-K) and this module rescores every candidate exactly from its stored
vectors, then normalises per leg *across the candidates* and fuses.

Legs: one per signal, plus "bm25" when a text query is given. The metadata signal's weight drives the lexical leg as
in the reference system: with share β (`bm25_share`, default 0.5) the metadata weight w_m is split into
w_m·(1-β) for the metadata vector and w_m·β for BM25 (all of w_m goes to BM25 when the query has no metadata vector).

Normalisation per fusion:
- raw: cosine as is; BM25 divided by its maximum over the candidates (best match 1, no match 0).
- minmax (the reference's formula): (x - min) / (max - min) per leg over the candidates; a segment without the
  signal's vector gets 0; BM25 non-matches count as raw 0. A leg where all candidates tie gets 1.
- rrf: weighted reciprocal rank, w_leg / (60 + rank) with ranks among the candidates (1 = best); segments without
  the signal (or not matching BM25) get no contribution. Unlike plain RRF it keeps the router's intent.

Weights: the reference's rule — signals whose weight is under `min_weight` (0.05) are skipped — is applied first,
then weights are renormalised over the signals the query can use (a query vector exists for it, or, for the
metadata signal, a text query feeds BM25).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from pydantic import BaseModel, model_validator

from vidroute.errors import StoreError

MIN_WEIGHT = 0.05
RRF_K = 60
FUSIONS = ("raw", "minmax", "rrf")
BM25 = "bm25"
TEXT_SIGNAL = "metadata"  # the signal whose weight drives the BM25 leg


class Layout(BaseModel):
    """Which signals a store holds and each one's dimension, in slot order of the concatenated vector."""

    signals: list[str]
    dims: dict[str, int]

    @model_validator(mode="after")
    def _check(self) -> Layout:
        if not self.signals or len(set(self.signals)) != len(self.signals):
            raise ValueError(f"signals must be distinct and non-empty, got {self.signals}")
        if set(self.dims) != set(self.signals) or any(d <= 0 for d in self.dims.values()):
            raise ValueError(f"dims {self.dims} must give a positive dimension for each of {self.signals}")
        return self

    @property
    def total_dim(self) -> int:
        return sum(self.dims[s] for s in self.signals)

    def slot(self, signal: str) -> slice:
        start = 0
        for s in self.signals:
            if s == signal:
                return slice(start, start + self.dims[s])
            start += self.dims[s]
        raise KeyError(signal)

    def pack(self, vectors: Mapping[str, object | None]) -> tuple[np.ndarray, int]:
        """One segment's vectors → (concatenated float32 vector, bitmask of present signals); normalises each slot."""
        out = np.zeros(self.total_dim, dtype=np.float32)
        mask = 0
        unknown = set(vectors) - set(self.signals)
        if unknown:
            raise StoreError(f"vectors for unknown signals {sorted(unknown)}; this store holds {self.signals}")
        for i, s in enumerate(self.signals):
            v = vectors.get(s)
            if v is None:
                continue
            arr = np.asarray(v, dtype=np.float32).ravel()
            if arr.shape[0] != self.dims[s]:
                raise StoreError(
                    f"signal {s!r} vector has dimension {arr.shape[0]}, but this store holds {self.dims[s]}-d vectors; "
                    "use the embedder the store was created with, or index into a new store"
                )
            if not np.all(np.isfinite(arr)):
                raise StoreError(f"signal {s!r} vector contains NaN or infinity")
            norm = float(np.linalg.norm(arr))
            if norm == 0.0:
                continue  # an all-zero vector carries no direction: treated as missing
            out[self.slot(s)] = arr / norm
            mask |= 1 << i
        return out, mask

    def split(self, packed: np.ndarray) -> dict[str, np.ndarray]:
        """(n, D) concatenated vectors → {signal: (n, d) view}."""
        return {s: packed[:, self.slot(s)] for s in self.signals}


def normalise_query(layout: Layout, query_vectors: Mapping[str, object | None]) -> dict[str, np.ndarray]:
    """Keep the query vectors this store can use (known signal, not None), L2-normalised; wrong dims raise."""
    out: dict[str, np.ndarray] = {}
    for s, v in query_vectors.items():
        if v is None or s not in layout.dims:
            continue
        arr = np.asarray(v, dtype=np.float32).ravel()
        if arr.shape[0] != layout.dims[s]:
            raise StoreError(
                f"query vector for {s!r} has dimension {arr.shape[0]}, the store holds {layout.dims[s]}-d vectors; "
                "embed queries with the embedder the store was indexed with"
            )
        norm = float(np.linalg.norm(arr))
        if norm > 0 and np.isfinite(norm):
            out[s] = arr / norm
    return out


def effective_weights(
    weights: Mapping[str, float] | None, usable: Iterable[str], *, min_weight: float = MIN_WEIGHT
) -> dict[str, float]:
    """The weights fusion actually uses: skip signals under `min_weight`, keep usable ones, renormalise to sum 1.

    `weights` missing or empty means uniform. If the rule would leave nothing (the query can only use signals the
    router gave less than `min_weight`), those signals are used with their own proportions, or uniformly if all zero.
    """
    usable = list(dict.fromkeys(usable))
    if not usable:
        return {}
    if not weights:
        return {s: 1.0 / len(usable) for s in usable}
    bad = {s: w for s, w in weights.items() if not np.isfinite(w) or w < 0}
    if bad:
        raise StoreError(f"weights must be finite and non-negative, got {bad}")
    total = sum(weights.values())
    given = {s: (w / total if total > 0 else 0.0) for s, w in weights.items()}
    kept = {s: given.get(s, 0.0) for s in usable if given.get(s, 0.0) >= min_weight}
    if not kept:
        kept = {s: given.get(s, 0.0) for s in usable if given.get(s, 0.0) > 0}
    if not kept:
        kept = {s: 1.0 for s in usable}
    z = sum(kept.values())
    return {s: w / z for s, w in kept.items()}


def leg_weights(
    weights: Mapping[str, float],
    *,
    text: bool,
    has_text_vector: bool,
    bm25_share: float = 0.5,
    text_signal: str = TEXT_SIGNAL,
) -> dict[str, float]:
    """Signal weights → leg weights: the text signal's weight is split between its vector and BM25 (see module doc)."""
    legs = dict(weights)
    if text and text_signal in legs:
        w = legs.pop(text_signal)
        if has_text_vector:
            legs[text_signal] = w * (1.0 - bm25_share)
            legs[BM25] = w * bm25_share
        else:
            legs[BM25] = w
    return {leg: w for leg, w in legs.items() if w > 0}


def concat_query(layout: Layout, query: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """The weighted concatenated query: its inner product with a stored vector is Σ w_s cos_s."""
    out = np.zeros(layout.total_dim, dtype=np.float32)
    for s, w in weights.items():
        if s in query and s in layout.dims and w:
            out[layout.slot(s)] = w * query[s]
    return out


def leg_scores(
    layout: Layout, packed: np.ndarray, query: Mapping[str, np.ndarray], bm25: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Exact raw scores of candidates on every leg: ({leg: scores}, {leg: present mask})."""
    scores: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    for s in layout.signals:
        if s not in query:
            continue
        block = packed[:, layout.slot(s)]
        scores[s] = block @ query[s]
        present[s] = np.any(block != 0, axis=1)
    if bm25 is not None:
        scores[BM25] = np.asarray(bm25, dtype=np.float64)
        present[BM25] = scores[BM25] > 0
    return scores, present


def _rank_desc(x: np.ndarray) -> np.ndarray:
    order = np.argsort(-x, kind="stable")
    ranks = np.empty(len(x), dtype=np.int64)
    ranks[order] = np.arange(1, len(x) + 1)
    return ranks


def normalise(scores: np.ndarray, present: np.ndarray, fusion: str, *, leg: str) -> np.ndarray:
    """One leg's candidate scores after the fusion's normalisation (see module doc)."""
    x = np.asarray(scores, dtype=np.float64)
    if fusion == "raw":
        if leg == BM25:
            top = float(x.max()) if len(x) else 0.0
            return x / top if top > 0 else np.zeros_like(x)
        return np.where(present, x, 0.0)
    if fusion == "minmax":
        pool = x if leg == BM25 else x[present]
        if pool.size == 0:
            return np.zeros_like(x)
        lo, hi = float(pool.min()), float(pool.max())
        out = np.ones_like(x) if hi <= lo else (x - lo) / (hi - lo)
        return out if leg == BM25 and hi > lo else np.where(present, out, 0.0)
    if fusion == "rrf":
        masked = np.where(present, x, -np.inf)
        return np.where(present, 1.0 / (RRF_K + _rank_desc(masked)), 0.0)
    raise StoreError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")


def fuse(
    scores: Mapping[str, np.ndarray], present: Mapping[str, np.ndarray], legs: Mapping[str, float], fusion: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(fused score per candidate, {leg: normalised score}) — every leg in `scores` is reported, `legs` are fused."""
    if fusion not in FUSIONS:
        raise StoreError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")
    n = len(next(iter(scores.values()))) if scores else 0
    normed = {leg: normalise(scores[leg], present[leg], fusion, leg=leg) for leg in scores}
    total = np.zeros(n, dtype=np.float64)
    for leg, w in legs.items():
        if leg in normed:
            total += w * normed[leg]
    return total, normed


def brute_force(
    layout: Layout, packed: np.ndarray, query: Mapping[str, np.ndarray], weights: Mapping[str, float], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact raw fusion by numpy over every segment: (indices of the top k, their scores). The test/bench oracle."""
    scores = packed @ concat_query(layout, query, weights)
    k = min(k, len(scores))
    if k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    idx = np.argpartition(-scores, k - 1)[:k]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return idx, scores[idx]
