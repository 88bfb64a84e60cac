"""Turn teacher label records into a deduplicated soft-label training set, split it, and score predicted weights."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ConfigError, DataFormatError
from vidroute.records import LabelRecord, read_records
from vidroute.students.encoder import dedup_key, preprocess

SUM_TOLERANCE = 0.02


@dataclass
class SoftLabels:
    """One row per distinct query (after pre-processing, case-folded): the mean of its teachers' weights."""

    texts: list[str]  # pre-processed text the student sees (first occurrence's casing)
    targets: np.ndarray  # (n, k) rows sum to 1
    counts: np.ndarray  # (n,) how many records were averaged into each row
    signals: list[str]
    n_records: int
    n_conflicting: int  # queries whose repeated records disagree (their label is a genuine average)
    teachers: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)


def _weights_row(rec: LabelRecord, signals: list[str], where: str) -> np.ndarray:
    if set(rec.weights) != set(signals):
        raise DataFormatError(
            f"{where}: weights keys {sorted(rec.weights)} differ from the signals {signals}; "
            "label with the same spec you train with"
        )
    row = np.array([float(rec.weights[s]) for s in signals], dtype=np.float64)
    total = row.sum()
    if not np.all(np.isfinite(row)) or (row < 0).any() or abs(total - 1.0) > SUM_TOLERANCE:
        raise DataFormatError(f"{where}: weights {rec.weights} must be non-negative and sum to 1")
    return row / total


def soft_labels(records: Sequence[LabelRecord], signals: list[str]) -> SoftLabels:
    """Average the weights of records whose queries are identical (after pre-processing and case-folding).

    Why: the reference data repeats queries (one 34 times) and a repeated query can carry different weights; one
    averaged row per query keeps duplicates from dominating the loss and gives a truer soft label.
    """
    if not records:
        raise ConfigError("no label records to train on")
    groups: dict[str, list[int]] = {}
    rows: list[np.ndarray] = []
    texts: dict[str, str] = {}
    teachers: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(records):
        text = preprocess(rec.query)
        if not text:
            raise DataFormatError(f"record {i + 1} (id {rec.id!r}) has an empty query after removing @ and #")
        rows.append(_weights_row(rec, signals, f"record {i + 1} (id {rec.id!r})"))
        key = dedup_key(rec.query)
        groups.setdefault(key, []).append(i)
        texts.setdefault(key, text)
        t = rec.teacher.model_dump()
        tkey = json.dumps(t, sort_keys=True)
        teachers.setdefault(tkey, {**t, "n_records": 0})["n_records"] += 1
    keys = list(groups)
    targets = np.stack([np.mean([rows[i] for i in groups[k]], axis=0) for k in keys])
    conflicting = sum(
        1 for k in keys if len(groups[k]) > 1 and np.ptp([rows[i] for i in groups[k]], axis=0).max() > 1e-9
    )
    return SoftLabels(
        texts=[texts[k] for k in keys],
        targets=(targets / targets.sum(1, keepdims=True)).astype(np.float32),
        counts=np.array([len(groups[k]) for k in keys]),
        signals=list(signals),
        n_records=len(records),
        n_conflicting=conflicting,
        teachers=list(teachers.values()),
    )


def split_indices(targets: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded train/val split, stratified by the teacher's dominant signal so small val sets stay balanced."""
    if not 0.0 < val_fraction < 0.5:
        raise ConfigError(f"val_fraction={val_fraction} must be in (0, 0.5): early stopping and calibration need it")
    n = len(targets)
    if n < 10:
        raise ConfigError(f"only {n} distinct queries: need at least 10 to split off a validation set")
    rng = np.random.default_rng(seed)
    dom = targets.argmax(1)
    val: list[int] = []
    for c in np.unique(dom):
        idx = np.flatnonzero(dom == c)
        rng.shuffle(idx)
        val.extend(idx[: round(len(idx) * val_fraction)].tolist())
    if not val:
        val = [int(rng.integers(n))]
    va = np.array(sorted(val))
    tr = np.setdiff1d(np.arange(n), va)
    return tr, va


def data_sha256(records: Iterable[LabelRecord]) -> str:
    """Order-independent hash of (query, weights) pairs: the same labels give the same hash however stored."""
    lines = sorted(json.dumps([r.query, sorted(r.weights.items())], ensure_ascii=False) for r in records)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def load_labels(path: str | Path) -> list[LabelRecord]:
    """Read a LabelRecord JSONL file (as written by `vidroute label` or `vidroute data import`)."""
    return read_records(path, LabelRecord)


def query_set(paths: Iterable[str | Path]) -> set[str]:
    """Dedup keys of every `query` in some JSONL files: used to drop evaluation queries from training data."""
    from vidroute.records import read_jsonl

    keys: set[str] = set()
    for p in paths:
        for i, obj in enumerate(read_jsonl(p)):
            q = obj.get("query")
            if not isinstance(q, str):
                raise DataFormatError(f"{p}: row {i + 1} has no string 'query' field")
            keys.add(dedup_key(q))
    return keys


def rubric_score(pred: np.ndarray, ref: np.ndarray) -> int:
    """The rubric's 1-5 levels applied to numbers alone (no reasoning to judge).

    5: every weight within 0.05; 4: within 0.10; 3: same dominant and MAE < 0.15; 1: MAE > 0.30; else 2.
    """
    if pred.shape != ref.shape or not np.all(np.isfinite(pred)):
        return 1
    err = np.abs(pred - ref)
    mae = float(err.mean())
    eps = 1e-9
    if mae > 0.30:
        return 1
    if err.max() <= 0.05 + eps:
        return 5
    if err.max() <= 0.10 + eps:
        return 4
    if pred.argmax() == ref.argmax() and mae < 0.15:
        return 3
    return 2


def weight_metrics(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Agreement of predicted and reference weight rows: dominant agreement, MAE, KL(ref || pred), rubric levels."""
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape or pred.ndim != 2 or len(pred) == 0:
        raise ConfigError(f"prediction shape {pred.shape} does not match reference shape {ref.shape}")
    top = ref.max(1, keepdims=True)
    ties_ok = (ref[np.arange(len(ref)), pred.argmax(1)] >= top[:, 0] - 1e-9).mean()
    eps = 1e-7
    kl = np.sum(ref * (np.log(ref + eps) - np.log(pred + eps)), axis=1)
    scores = np.array([rubric_score(p, r) for p, r in zip(pred, ref, strict=True)])
    return {
        "n": len(pred),
        "dominant_agreement": float((pred.argmax(1) == ref.argmax(1)).mean()),
        "dominant_agreement_ties_ok": float(ties_ok),
        "mae": float(np.abs(pred - ref).mean()),
        "max_abs_err_mean": float(np.abs(pred - ref).max(1).mean()),
        "kl": float(kl.mean()),
        "rubric_mean": float(scores.mean()),
        "rubric_5_frac": float((scores == 5).mean()),
        "rubric_ge4_frac": float((scores >= 4).mean()),
    }


def round_metrics(m: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    return {k: (round(v, digits) if isinstance(v, float) and math.isfinite(v) else v) for k, v in m.items()}
