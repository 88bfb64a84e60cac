"""Agreement between a router and its teacher: dominant accuracy, MAE, Jensen–Shannon divergence, confusion.

Every function takes arrays of shape (n, k) whose columns follow the spec's signal order. Reference labels
often tie (e.g. visual 0.4 = transcription 0.4); a prediction counts as dominant-correct when its top signal is
*any* of the reference's tied top signals, so a router is never punished for the teacher's indecision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vidroute.errors import DataFormatError

TIE_TOL = 1e-9
JS_EPS = 1e-12


def to_matrix(rows: Sequence[Mapping[str, float]], signals: Sequence[str]) -> np.ndarray:
    """Stack weight dicts into an (n, k) float array ordered by `signals`; a missing key is an error."""
    out = np.zeros((len(rows), len(signals)), dtype=np.float64)
    for i, row in enumerate(rows):
        try:
            out[i] = [float(row[s]) for s in signals]
        except KeyError as exc:
            raise DataFormatError(f"row {i}: weights {dict(row)} lack signal {exc.args[0]!r}") from exc
    return out


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"expected two (n, k) arrays of equal shape, got {t.shape} and {p.shape}")
    return t, p


def dominant(y: np.ndarray) -> np.ndarray:
    """Index of the highest weight per row (the first one on ties)."""
    return np.asarray(y).argmax(axis=1)


def tied_top(y: np.ndarray, tol: float = TIE_TOL) -> np.ndarray:
    """Boolean (n, k) mask of every signal within `tol` of its row's maximum."""
    y = np.asarray(y, dtype=np.float64)
    return y >= y.max(axis=1, keepdims=True) - tol


def dominant_match(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per row: is the prediction's top signal one of the reference's (tied) top signals?"""
    t, p = _check(y_true, y_pred)
    return tied_top(t)[np.arange(len(p)), dominant(p)]


def true_dominant(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """The reference's dominant index, breaking its ties towards the prediction (for confusion matrices)."""
    t, p = _check(y_true, y_pred)
    pd = dominant(p)
    return np.where(dominant_match(t, p), pd, dominant(t))


def dominant_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = _check(y_true, y_pred)
    return float(dominant_match(t, p).mean()) if len(t) else float("nan")


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error over every entry (all rows, all signals)."""
    t, p = _check(y_true, y_pred)
    return float(np.abs(t - p).mean()) if len(t) else float("nan")


def mae_rows(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    t, p = _check(y_true, y_pred)
    return np.abs(t - p).mean(axis=1)


def mae_per_signal(y_true: np.ndarray, y_pred: np.ndarray, signals: Sequence[str]) -> dict[str, float]:
    t, p = _check(y_true, y_pred)
    col = np.abs(t - p).mean(axis=0) if len(t) else np.full(t.shape[1], np.nan)
    return {s: float(v) for s, v in zip(signals, col, strict=True)}


def js_divergence_rows(y_true: np.ndarray, y_pred: np.ndarray, eps: float = JS_EPS) -> np.ndarray:
    """Jensen–Shannon divergence per row in bits (0 = identical, 1 = disjoint). Rows are clipped at `eps` and
    renormalised first, so zeros in either distribution are safe."""
    t, p = _check(y_true, y_pred)
    t = np.clip(t, eps, None)
    p = np.clip(p, eps, None)
    t = t / t.sum(axis=1, keepdims=True)
    p = p / p.sum(axis=1, keepdims=True)
    m = 0.5 * (t + p)
    kl_tm = (t * np.log2(t / m)).sum(axis=1)
    kl_pm = (p * np.log2(p / m)).sum(axis=1)
    return np.clip(0.5 * kl_tm + 0.5 * kl_pm, 0.0, 1.0)


def js_divergence(y_true: np.ndarray, y_pred: np.ndarray, eps: float = JS_EPS) -> float:
    """Mean Jensen–Shannon divergence (base 2) over rows."""
    rows = js_divergence_rows(y_true, y_pred, eps)
    return float(rows.mean()) if len(rows) else float("nan")


def confusion_matrix(true_idx: np.ndarray, pred_idx: np.ndarray, k: int) -> np.ndarray:
    """(k, k) counts: row = reference dominant, column = predicted dominant."""
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (np.asarray(true_idx, dtype=np.int64), np.asarray(pred_idx, dtype=np.int64)), 1)
    return cm


def dominant_confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    t, p = _check(y_true, y_pred)
    return confusion_matrix(true_dominant(t, p), dominant(p), t.shape[1])


def agreement(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    signals: Sequence[str],
    *,
    groups: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """All agreement metrics in one JSON-ready dict; `groups` (e.g. each record's `intent`) adds a breakdown
    with its own confusion matrix per group."""
    t, p = _check(y_true, y_pred)
    out: dict[str, Any] = {
        "n": len(t),
        "dominant_accuracy": dominant_accuracy(t, p),
        "mae": mae(t, p),
        "mae_per_signal": mae_per_signal(t, p, signals),
        "js_divergence": js_divergence(t, p),
        "confusion": {"labels": list(signals), "matrix": dominant_confusion(t, p).tolist()},
    }
    if groups is not None and any(g for g in groups):
        if len(groups) != len(t):
            raise ValueError(f"{len(groups)} groups for {len(t)} rows")
        keys = np.array([g or "(none)" for g in groups])
        out["per_group"] = {}
        for g in sorted(set(keys)):
            m = keys == g
            out["per_group"][g] = {
                "n": int(m.sum()),
                "dominant_accuracy": dominant_accuracy(t[m], p[m]),
                "mae": mae(t[m], p[m]),
                "js_divergence": js_divergence(t[m], p[m]),
                "confusion": dominant_confusion(t[m], p[m]).tolist(),
            }
    return out


def percentiles(values: Sequence[float] | np.ndarray, qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """`{"p50": ..., "p95": ..., "p99": ..., "mean": ...}` (linear interpolation between order statistics)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {**{f"p{q:g}": float("nan") for q in qs}, "mean": float("nan")}
    return {**{f"p{q:g}": float(np.percentile(v, q)) for q in qs}, "mean": float(v.mean())}
