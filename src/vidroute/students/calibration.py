"""Confidence calibration: P(student's dominant signal == teacher's) from the shape of the student's weights."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ConfigError, ModelError

CALIBRATION_FILE = "calibration.json"


def confidence_features(weights: np.ndarray) -> np.ndarray:
    """Per row: top weight, margin between the top two, and entropy; a bias column is added by the model."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 1e-9, 1.0)
    s = np.sort(w, axis=1)
    top, margin = s[:, -1], s[:, -1] - s[:, -2]
    entropy = -(w * np.log(w)).sum(1) / np.log(w.shape[1])
    return np.stack([top, margin, entropy], axis=1)


class Calibrator:
    """Platt-style logistic regression on `confidence_features`, fitted on held-out (validation) predictions.

    A strong L2 penalty keeps it sane on the ~150 validation rows (few mistakes to learn from); with no mistakes
    at all it falls back to the observed accuracy, shrunk towards 0.5 (Laplace), for every query.

    Example:
        >>> w = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]] * 20)
        >>> ok = np.array([1, 0] * 20)
        >>> cal = Calibrator().fit(w, ok)
        >>> bool(cal.predict(w[:1])[0] > cal.predict(w[1:2])[0])
        True
    """

    def __init__(self, *, l2: float = 1.0, max_iter: int = 100) -> None:
        self.l2 = l2
        self.max_iter = max_iter

    def fit(self, weights: np.ndarray, correct: np.ndarray) -> Calibrator:
        y = np.asarray(correct, dtype=np.float64).ravel()
        x = confidence_features(weights)
        if len(x) != len(y) or len(y) == 0:
            raise ConfigError(f"calibration needs matching, non-empty inputs (got {len(x)} rows, {len(y)} labels)")
        self.mean_, self.scale_ = x.mean(0), x.std(0) + 1e-6
        z = np.hstack([(x - self.mean_) / self.scale_, np.ones((len(x), 1))])
        self.n_, self.accuracy_ = len(y), float(y.mean())
        if y.min() == y.max():  # nothing to separate: a constant, shrunk so one lucky val set is not "certain"
            p = (y.sum() + 1) / (len(y) + 2)
            self.coef_ = np.zeros(z.shape[1])
            self.coef_[-1] = float(np.log(p / (1 - p)))
            return self
        beta = np.zeros(z.shape[1])
        reg = np.full(z.shape[1], self.l2)
        reg[-1] = 1e-6  # do not shrink the intercept
        for _ in range(self.max_iter):  # Newton-Raphson on the penalised log-likelihood
            p = 1 / (1 + np.exp(-(z @ beta)))
            grad = z.T @ (p - y) + reg * beta
            hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(reg)
            step = np.linalg.solve(hess, grad)
            beta -= step
            if np.abs(step).max() < 1e-8:
                break
        self.coef_ = beta
        return self

    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise ModelError("Calibrator is not fitted; call fit() or load a calibration.json")

    def predict(self, weights: np.ndarray) -> np.ndarray:
        """Calibrated probability, per row of `weights`, that the row's argmax matches the teacher's."""
        self._check()
        x = (confidence_features(weights) - self.mean_) / self.scale_
        z = x @ self.coef_[:-1] + self.coef_[-1]
        return 1 / (1 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        self._check()
        return {
            "method": "logistic",
            "features": ["top_weight", "margin", "normalised_entropy"],
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(),
            "l2": self.l2,
            "n": self.n_,
            "accuracy": self.accuracy_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        try:
            cal = cls(l2=float(d.get("l2", 1.0)))
            cal.mean_ = np.asarray(d["mean"], dtype=np.float64)
            cal.scale_ = np.asarray(d["scale"], dtype=np.float64)
            cal.coef_ = np.asarray(d["coef"], dtype=np.float64)
            cal.n_, cal.accuracy_ = int(d.get("n", 0)), float(d.get("accuracy", float("nan")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"invalid calibration data: {exc}") from exc
        if cal.coef_.shape != (len(cal.mean_) + 1,):
            raise ModelError(f"calibration has {len(cal.coef_)} coefficients for {len(cal.mean_)} features")
        return cal

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / CALIBRATION_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", "utf-8")
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> Calibrator:
        path = Path(model_dir) / CALIBRATION_FILE
        try:
            return cls.from_dict(json.loads(path.read_text("utf-8")))
        except FileNotFoundError as exc:
            raise ModelError(f"{model_dir} has no {CALIBRATION_FILE}; retrain the model") from exc
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path} is not valid JSON: {exc}") from exc


def calibration_report(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 10) -> dict[str, float]:
    """Expected calibration error (equal-width bins), Brier score and mean confidence vs accuracy."""
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (c >= lo) & ((c < hi) | (hi == 1.0))
        if m.any():
            ece += m.mean() * abs(c[m].mean() - y[m].mean())
    return {
        "ece": float(ece),
        "brier": float(((c - y) ** 2).mean()),
        "mean_confidence": float(c.mean()),
        "accuracy": float(y.mean()),
    }
