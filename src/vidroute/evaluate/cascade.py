"""The student→teacher cascade, offline: quality, latency and cost for each escalation threshold.

A query escalates when the student's confidence is below the threshold. Offline, an escalated query is assumed
to receive the teacher's answer, which *is* the reference label, so it scores perfect agreement (rubric 5).
That is an upper bound on the cascade's quality: a live teacher is noisy run to run (the reference's own judge
score varied between runs). The student always runs first, so its latency and cost are paid on every query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vidroute.evaluate.metrics import dominant_match
from vidroute.evaluate.rubric import rubric_levels

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01)


def escalation_mask(confidence: np.ndarray, threshold: float) -> np.ndarray:
    """True where the cascade hands the query to the teacher (`confidence < threshold`)."""
    return np.asarray(confidence, dtype=np.float64) < threshold


def cascade_curve(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    confidence: np.ndarray,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    student_latency_ms: float,
    student_usd_per_million: float,
    teacher_latency_ms: float,
    teacher_usd_per_million: float,
) -> list[dict[str, Any]]:
    """One point per threshold: escalation rate, dominant accuracy, MAE, mean rubric level, expected latency
    (student + rate × teacher) and expected USD per 1M queries (student + rate × teacher)."""
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    conf = np.asarray(confidence, dtype=np.float64)
    if not (t.shape == p.shape and conf.shape == (len(t),)):
        raise ValueError(f"shape mismatch: y_true {t.shape}, y_pred {p.shape}, confidence {conf.shape}")
    student_levels = rubric_levels(t, p)
    student_match = dominant_match(t, p)
    student_abs = np.abs(t - p).mean(axis=1)
    points = []
    for th in sorted(thresholds):
        esc = escalation_mask(conf, th)
        rate = float(esc.mean()) if len(t) else 0.0
        points.append(
            {
                "threshold": float(th),
                "escalation_rate": rate,
                "dominant_accuracy": float(np.where(esc, True, student_match).mean()),
                "mae": float(np.where(esc, 0.0, student_abs).mean()),
                "rubric_mean": float(np.where(esc, 5, student_levels).mean()),
                "expected_latency_ms": student_latency_ms + rate * teacher_latency_ms,
                "usd_per_million": student_usd_per_million + rate * teacher_usd_per_million,
            }
        )
    return points
