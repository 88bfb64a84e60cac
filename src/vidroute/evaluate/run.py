"""Evaluate a router on a labelled file: agreement, rubric (+ optional LLM judge), latency, cost, cascade."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ConfigError, DataFormatError
from vidroute.evaluate import cascade as cascade_mod
from vidroute.evaluate import cost as cost_mod
from vidroute.evaluate.latency import measure_latency, measure_throughput
from vidroute.evaluate.metrics import agreement, mae_rows, to_matrix
from vidroute.evaluate.rubric import Judge, judge_agreement, level_histogram, rubric_levels
from vidroute.records import LabelRecord, utc_now

log = logging.getLogger(__name__)


@dataclass
class EvalOutcome:
    """Everything one evaluation produced: `metrics` is JSON-ready (written as metrics.json); the arrays feed
    the report's plots and per-row table."""

    metrics: dict[str, Any]
    signals: list[str]
    queries: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    confidence: np.ndarray
    levels: np.ndarray
    judge_scores: list[int | None] | None = None
    judge_explanations: list[str] | None = None
    latency_samples_ms: list[float] = field(default_factory=list)
    intents: list[str | None] | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One dict per evaluated query (for predictions.jsonl)."""
        out = []
        for i, q in enumerate(self.queries):
            row: dict[str, Any] = {
                "query": q,
                "reference": {s: round(float(v), 4) for s, v in zip(self.signals, self.y_true[i], strict=True)},
                "predicted": {s: round(float(v), 4) for s, v in zip(self.signals, self.y_pred[i], strict=True)},
                "confidence": round(float(self.confidence[i]), 4),
                "rubric": int(self.levels[i]),
                "abs_error": round(float(np.abs(self.y_true[i] - self.y_pred[i]).mean()), 4),
            }
            if self.intents is not None:
                row["intent"] = self.intents[i]
            if self.judge_scores is not None:
                row["judge"] = self.judge_scores[i]
                row["judge_explanation"] = (self.judge_explanations or [""] * len(self.queries))[i]
            out.append(row)
        return out


def load_labelled(path: str | Path) -> list[LabelRecord]:
    """Read labelled queries in any format `vidroute.formats` reads: vidroute labels, the reference's
    `{query, reference}` eval rows, `bedrock-conversation-2024` records or Parquet (detected from the file)."""
    from vidroute.formats import read_dataset

    return read_dataset(path).records


def _teacher_side(
    records: Sequence[LabelRecord], teacher_latency_ms: float | None, teacher_usd_per_million: float | None
) -> dict[str, Any]:
    """The escalation target's latency and cost: measured on the labels where they carry it, else the
    reference router's published numbers (stated in the result)."""
    lat = [r.latency_ms for r in records if r.latency_ms]
    tokens = cost_mod.mean_tokens(records)
    model_ids = {r.teacher.model_id for r in records}
    side: dict[str, Any] = {"model_ids": sorted(model_ids)}
    if teacher_latency_ms is not None:
        side.update(latency_ms=teacher_latency_ms, latency_source="given")
    elif lat:
        side.update(latency_ms=float(np.mean(lat)), latency_source="measured on the labels")
    else:
        side.update(
            latency_ms=cost_mod.REFERENCE["latency_ms_mean"],
            latency_source="not measured: the reference router's published mean (a large teacher is slower)",
        )
    if teacher_usd_per_million is not None:
        side.update(usd_per_million=teacher_usd_per_million, cost_source="given")
        return side
    if len(model_ids) == 1:
        from vidroute.teachers.pricing import is_priced

        model_id = next(iter(model_ids))
        if is_priced(model_id):
            if tokens is not None:
                source = "measured tokens × price table"
            else:
                # Imported labels carry no usage: price the reference's teacher call (long prompt, JSON answer).
                tokens = (cost_mod.REFERENCE_TOKENS["long_prompt_input"], cost_mod.REFERENCE_TOKENS["output"])
                source = "price table × estimated tokens (long teacher prompt, ~4 characters per token)"
            usd = cost_mod.teacher_usd_per_million(model_id, *tokens)
            side.update(usd_per_million=usd, cost_source=source, tokens_per_query=list(tokens))
            return side
    ref = cost_mod.reference_costs()["nova_micro_distilled_usd_per_1m_queries"]
    side.update(usd_per_million=ref, cost_source="reference router (distilled Nova Micro), estimated tokens")
    return side


def evaluate_router(
    router: Any,
    records: Sequence[LabelRecord],
    *,
    judge: Judge | None = None,
    judge_limit: int | None = None,
    warmup: int = 20,
    latency_n: int | None = None,
    batch_sizes: Sequence[int] = (1, 32, 256),
    throughput_n: int = 256,
    usd_per_vcpu_hour: float = cost_mod.DEFAULT_USD_PER_VCPU_HOUR,
    thresholds: Sequence[float] = cascade_mod.DEFAULT_THRESHOLDS,
    teacher_latency_ms: float | None = None,
    teacher_usd_per_million: float | None = None,
    name: str = "",
    progress: Callable[[str], None] | None = None,
) -> EvalOutcome:
    """Route every record's query and compare with its label.

    Args:
        router: a `vidroute.router.Router` (uses `signals`, `route`, `route_batch`).
        records: labelled queries; weights are read in the router's signal order.
        judge: optional LLM judge, run on the first `judge_limit` rows (all when None).
        warmup / latency_n: untimed calls, then how many timed single-query calls (default: every query once,
            at least 200).
        batch_sizes / throughput_n: batch sizes for the throughput measurement, and at least how many queries
            (cycled) each one routes.
        usd_per_vcpu_hour: price of a vCPU for the student's cost.
        thresholds: confidence thresholds for the cascade curve.
        teacher_latency_ms / teacher_usd_per_million: the escalation target's cost, when not measured.
    """
    say = progress or (lambda _msg: None)
    if not records:
        raise DataFormatError("no labelled records to evaluate")
    signals = list(router.signals)
    queries = [r.query for r in records]
    y_true = to_matrix([r.weights for r in records], signals)
    intents = [r.intent for r in records]
    has_intents = any(intents)

    say(f"routing {len(queries)} queries")
    results = router.route_batch(queries)
    y_pred = to_matrix([r.weights for r in results], signals)
    confidence = np.array([r.confidence for r in results], dtype=np.float64)
    model_id = results[0].model if results else ""

    agree = agreement(y_true, y_pred, signals, groups=intents if has_intents else None)
    levels = rubric_levels(y_true, y_pred)

    judge_scores: list[int | None] | None = None
    judge_expl: list[str] | None = None
    judge_block: dict[str, Any] | None = None
    if judge is not None:
        m = len(records) if judge_limit is None else min(judge_limit, len(records))
        say(f"judging {m} answers with {getattr(judge.teacher, 'model_id', 'the judge')}")
        items = [(q, records[i].weights, results[i].weights) for i, q in enumerate(queries[:m])]
        verdicts = judge.score_many(items)
        judge_scores = [v.score for v in verdicts] + [None] * (len(records) - m)
        judge_expl = [v.explanation or (v.error or "") for v in verdicts] + [""] * (len(records) - m)
        scored = [s for s in judge_scores[:m] if s is not None]
        judge_block = {
            "model_id": getattr(judge.teacher, "model_id", None),
            "backend": getattr(judge.teacher, "backend", None),
            "n_asked": m,
            "mean": float(np.mean(scored)) if scored else None,
            "histogram": level_histogram(judge_scores[:m]),
            "failures": sum(v.score is None for v in verdicts),
            "failure_examples": [f"{v.error}; last answer: {v.raw[:160]!r}" for v in verdicts if v.score is None][:3],
            "agreement_with_deterministic": judge_agreement([int(x) for x in levels[:m]], judge_scores[:m]),
            "input_tokens": sum(v.usage.input_tokens for v in verdicts),
            "output_tokens": sum(v.usage.output_tokens for v in verdicts),
            "rubric_sha256": hashlib.sha256(judge.system_prompt.encode()).hexdigest(),
        }

    say("timing single queries")
    n_lat = latency_n if latency_n is not None else max(200, len(queries))
    lat = measure_latency(router, queries, warmup=warmup, n=n_lat)
    say("timing batches")
    thr = measure_throughput(router, queries, batch_sizes=batch_sizes, min_queries=throughput_n)

    student_usd = cost_mod.student_usd_per_million(lat["cpu_ms_per_query"], usd_per_vcpu_hour)
    best_batch = max(thr.values(), key=lambda d: d["routes_per_second"])
    teacher = _teacher_side(records, teacher_latency_ms, teacher_usd_per_million)
    curve = cascade_mod.cascade_curve(
        y_true,
        y_pred,
        confidence,
        thresholds=thresholds,
        student_latency_ms=lat["mean_ms"],
        student_usd_per_million=student_usd,
        teacher_latency_ms=teacher["latency_ms"],
        teacher_usd_per_million=teacher["usd_per_million"],
    )
    ref_costs = cost_mod.reference_costs()

    metrics: dict[str, Any] = {
        "name": name,
        "model": model_id,
        "created_at": utc_now(),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": _cpus()},
        "n": len(records),
        "signals": signals,
        "agreement": agree,
        "rubric": {
            "mean": float(levels.mean()),
            "histogram": level_histogram(levels.tolist()),
            "scorer": "deterministic (weights only)",
        },
        "judge": judge_block,
        "latency": {k: v for k, v in lat.items() if k != "samples_ms"},
        "throughput": thr,
        "cost": {
            "usd_per_vcpu_hour": usd_per_vcpu_hour,
            "student_usd_per_million_single": student_usd,
            "student_usd_per_million_batch": cost_mod.student_usd_per_million(
                best_batch["cpu_ms_per_query"], usd_per_vcpu_hour
            ),
            "teacher": teacher,
            "reference": ref_costs,
        },
        "cascade": {
            "assumption": "escalated queries receive the teacher's answer, taken to equal the reference label "
            "(an upper bound on quality); the student runs on every query",
            "teacher_latency_ms": teacher["latency_ms"],
            "teacher_usd_per_million": teacher["usd_per_million"],
            "points": curve,
        },
        "reference": {
            "judge_score": cost_mod.REFERENCE["judge_score"],
            "latency_ms_mean": cost_mod.REFERENCE["latency_ms_mean"],
            "usd_per_million": ref_costs["nova_micro_distilled_usd_per_1m_queries"],
        },
    }
    return EvalOutcome(
        metrics=metrics,
        signals=signals,
        queries=queries,
        y_true=y_true,
        y_pred=y_pred,
        confidence=confidence,
        levels=levels,
        judge_scores=judge_scores,
        judge_explanations=judge_expl,
        latency_samples_ms=lat["samples_ms"],
        intents=intents if has_intents else None,
    )


def _cpus() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worst_rows(outcome: EvalOutcome, n: int = 10) -> list[dict[str, Any]]:
    """The `n` rows with the largest mean absolute error (ties: lower rubric first)."""
    err = mae_rows(outcome.y_true, outcome.y_pred)
    order = np.lexsort((outcome.levels, -err))[:n]
    rows = outcome.rows()
    return [rows[i] for i in order]


def evaluate_model(
    model: str | Path,
    data: str | Path,
    *,
    report_dir: str | Path | None = None,
    judge_spec: str | None = None,
    rubric: str | None = None,
    judge_max_tokens: int = 120,
    backend: str = "auto",
    progress: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> EvalOutcome:
    """`vidroute eval`: load the router from `model`, the labels from `data`, evaluate, write the report."""
    from vidroute.router import Router

    model_path = Path(model)
    if not model_path.exists():
        raise ConfigError(f"model directory not found: {model_path} (train one with `vidroute train`)")
    router = Router.load(model_path, backend=backend)
    records = load_labelled(data)
    judge = None
    if judge_spec:
        from vidroute.teachers import load_teacher

        judge = Judge(
            load_teacher(judge_spec), rubric=rubric, signals=list(router.signals), max_tokens=judge_max_tokens
        )
    try:
        outcome = evaluate_router(router, records, judge=judge, name=Path(data).name, progress=progress, **kwargs)
    finally:
        close = getattr(judge.teacher, "close", None) if judge is not None else None
        if close is not None:  # an in-process llama.cpp server holds threads and memory
            close()
    outcome.metrics["model_dir"] = str(model_path)
    outcome.metrics["data"] = str(data)
    if report_dir is not None:
        from vidroute.evaluate.report import write_report

        write_report(outcome, report_dir)
    return outcome


def dumps(obj: Any) -> str:
    """JSON with NaN/inf turned into null (strict JSON for other tools)."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not np.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if isinstance(x, np.generic):
            return clean(x.item())
        return x

    return json.dumps(clean(obj), indent=2)
