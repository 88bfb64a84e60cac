"""Training-set augmentation: soft labels for synthetic queries whose intent is known by construction.

Why: the reference teacher's queries come from ~100 templates, so a student trained only on them misroutes real
queries of other shapes (verbatim subtitle lines, sound-event captions, video titles). Synthetic queries from
`vidroute.queries.generate_queries` carry the generator's intent; `intent_prior_labels` gives each one the teacher's
*average* label for that dominant signal (class-conditional mean of the teacher's soft labels), so the student learns
the new shapes without inventing weights the teacher never gave. Pass the result to
`train_student(..., augment=records)`: augmented rows are used for training only, never for validation.

`model_labels` labels them with a trained student's weights instead (distilling a large student into a smaller one:
the fine-tuned MiniLM into the static student), which also keeps the "mixed" queries that have no single intent.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ConfigError
from vidroute.records import LabelRecord, QueryRecord, TeacherInfo
from vidroute.students.data import soft_labels

PRIOR_BACKEND = "prior:intent"
MODEL_BACKEND = "student"
_LABEL_BATCH = 256
# Named settings for `vidroute train --recipe`: `augment` synthetic queries, their intent mix and label temperature;
# `params` are training parameters (DistillArgs fields) the recipe sets unless -p gives them. "realq" was chosen on
# real_queries_dev.jsonl (docs/realq.md has the sweep and its caveats); "distil" labels the queries with a trained
# student (`--augment-labeller`), for the static student (the fine-tuned one as labeller: docs/realq.md, session 3).
RECIPES: dict[str, dict[str, Any]] = {
    "none": {},
    "realq": {"augment": 6000, "mix": None, "temperature": 1.0, "params": {"augment_weight": 0.3}},
    "distil": {"augment": 12000, "labeller": True, "params": {"augment_weight": 1.0, "static_finetune_epochs": 3}},
}


def class_means(records: Sequence[LabelRecord], signals: list[str]) -> dict[str, list[float]]:
    """Mean teacher label of the (deduplicated) records whose dominant signal is each signal."""
    sl = soft_labels(records, signals)
    dom = sl.targets.argmax(1)
    out = {}
    for i, s in enumerate(signals):
        rows = sl.targets[dom == i]
        if len(rows):
            out[s] = (rows.mean(0) / rows.mean(0).sum()).tolist()
    return out


def sharpen(weights: Sequence[float], temperature: float) -> list[float]:
    """``w ** (1 / T)`` renormalised: T < 1 sharpens towards the dominant signal, T = 1 leaves `weights` as is."""
    if not temperature > 0:
        raise ConfigError(f"augment temperature must be > 0, got {temperature}")
    w = np.asarray(weights, dtype=float) ** (1.0 / temperature)
    return (w / w.sum()).tolist()


def intent_prior_labels(
    queries: Sequence[QueryRecord],
    reference: Sequence[LabelRecord],
    signals: list[str],
    *,
    temperature: float = 1.0,
) -> list[LabelRecord]:
    """LabelRecords for queries whose `intent` names a signal (others, e.g. "mixed", are skipped).

    `temperature` < 1 sharpens each class-mean label (`sharpen`); 1 keeps the teacher's mean as it is.
    """
    means = class_means(reference, signals)
    if not means:
        raise ConfigError("the reference labels are empty; cannot derive intent priors")
    means = {k: sharpen(v, temperature) for k, v in means.items()}
    info = TeacherInfo(backend=PRIOR_BACKEND, model_id="class-mean-of-teacher-labels", mode="imported")
    return [_labelled(q, signals, means[q.intent], info) for q in queries if q.intent in means]


def _labelled(q: QueryRecord, signals: list[str], weights: Sequence[float], info: TeacherInfo) -> LabelRecord:
    return LabelRecord(
        id=q.id,
        query=q.query,
        intent=q.intent,
        split=q.split,
        source=q.source,
        weights=dict(zip(signals, map(float, weights), strict=True)),
        teacher=info,
    )


def model_labels(queries: Sequence[QueryRecord], model: str | Path, signals: list[str]) -> list[LabelRecord]:
    """LabelRecords whose weights are the student at `model`'s (a `vidroute train` folder) for every query.

    The model must route exactly `signals`; its card's identity (folder name, student kind, training-data sha256)
    is recorded as the label's teacher so the manifest says where these labels came from.
    """
    from vidroute.router import Router

    router = Router.load(model)
    if list(router.signals) != list(signals):
        raise ConfigError(f"--augment-labeller {model} routes {list(router.signals)}, the labels use {list(signals)}")
    card = router.card or {}
    data_sha = str((card.get("data") or {}).get("sha256") or "")[:12]
    info = TeacherInfo(
        backend=MODEL_BACKEND,
        model_id=f"{Path(model).name}:{card.get('student', '?')}" + (f"@{data_sha}" if data_sha else ""),
        mode="imported",
    )
    texts = [q.query for q in queries]
    probs = [router.predict_proba(texts[i : i + _LABEL_BATCH]) for i in range(0, len(texts), _LABEL_BATCH)]
    weights = np.concatenate(probs) if probs else np.zeros((0, len(signals)))
    return [_labelled(q, signals, w, info) for q, w in zip(queries, weights, strict=True)]


def synthetic_queries(n: int, *, seed: int = 0, mix: str | dict[str, float] | None = None) -> list[QueryRecord]:
    """`n` seeded template queries (no embedding dedup) for augmentation."""
    from vidroute.queries import generate_queries

    if n < 1:
        raise ConfigError(f"augment count must be at least 1, got {n}")
    queries, _ = generate_queries(n, mix=mix, seed=seed, embed_dedup=False)
    return queries


def synthetic_prior_labels(
    n: int,
    reference: Sequence[LabelRecord],
    signals: list[str],
    *,
    seed: int = 0,
    mix: str | dict[str, float] | None = None,
    temperature: float = 1.0,
) -> list[LabelRecord]:
    """Generate `n` synthetic queries (seeded, template generator, no embedding dedup) and label the single-intent
    ones with `intent_prior_labels`; "mixed" queries (20% of the default mix) are skipped. See docs/realq.md."""
    return intent_prior_labels(synthetic_queries(n, seed=seed, mix=mix), reference, signals, temperature=temperature)
