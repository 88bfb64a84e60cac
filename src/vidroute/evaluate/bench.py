"""Benchmarks on real data: `bench distill` (the reference's own Nova labels) and `bench realq` (real queries).

`bench distill` trains a student on `premier_labels.jsonl`, de-duplicated, with every query that also appears in
either eval file removed, and scores it on `eval_dataset_v2.jsonl` twice:

* **published**: all 100 rows, exactly as the reference evaluated (with its within-set duplicates);
* **leak-free**: only rows whose query never occurs in `premier_labels.jsonl`, de-duplicated by query: the rows a
  model trained on the reference's full training data could not have memorised.

Because our training set drops every eval query, the student has seen none of either set; the split matters for
comparing with the reference's 4.0, which was measured on the leaky published set. v1 numbers are added too.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ConfigError, DataFormatError
from vidroute.evaluate import cost as cost_mod
from vidroute.evaluate.metrics import dominant, dominant_accuracy, js_divergence, mae, mae_per_signal, to_matrix
from vidroute.evaluate.rubric import rubric_levels
from vidroute.evaluate.run import EvalOutcome, evaluate_router
from vidroute.records import LabelRecord, read_jsonl

log = logging.getLogger(__name__)

PREMIER = "premier_labels.jsonl"
EVAL_V1 = "eval_dataset.jsonl"
EVAL_V2 = "eval_dataset_v2.jsonl"
STUDENTS = ("frozen", "finetune", "static")

TARGETS = {
    "rubric_leakfree": (">=", 4.5),
    "dominant_agreement_leakfree": (">=", 0.90),
    "mae_leakfree": ("<=", 0.06),
    "route_p50_ms": ("<=", 2.0),
    "train_seconds": ("<=", 120.0),
}

_SPACES = re.compile(r"\s+")


def query_key(text: str) -> str:
    """Two queries with the same key are the same input to the router: `@`/`#` dropped (as the reference
    router does), whitespace squeezed, case folded (the encoder is uncased)."""
    return _SPACES.sub(" ", text.replace("@", " ").replace("#", " ")).strip().casefold()


def dedupe(records: Iterable[LabelRecord]) -> list[LabelRecord]:
    """One record per query key. Repeated queries (the reference repeats one 34 times, and 171 carry different
    weights on different occurrences) become one soft label: the mean of every occurrence's weights, with all
    occurrences kept in `samples`."""
    from vidroute.labels import mean_weights

    groups: dict[str, list[LabelRecord]] = defaultdict(list)
    for r in records:
        groups[query_key(r.query)].append(r)
    out = []
    for recs in groups.values():
        first = recs[0]
        if len(recs) == 1:
            out.append(first)
            continue
        draws = [r.weights for r in recs]
        samples = [s for r in recs for s in (r.samples or [r.weights])]
        out.append(first.model_copy(update={"weights": mean_weights(draws), "samples": samples}))
    return out


def first_per_query(records: Iterable[LabelRecord]) -> list[LabelRecord]:
    seen: set[str] = set()
    out = []
    for r in records:
        k = query_key(r.query)
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def prepare_nova(nova_dir: str | Path) -> tuple[list[LabelRecord], dict[str, list[LabelRecord]], dict[str, Any]]:
    """Training records, the four evaluation sets (v2/v1 × published/leak-free) and the counts behind them."""
    from vidroute.formats import import_bedrock, import_eval

    nova = Path(nova_dir)
    for name in (PREMIER, EVAL_V1, EVAL_V2):
        if not (nova / name).is_file():
            raise ConfigError(
                f"{nova / name} not found; pass --nova the folder that holds {PREMIER}, {EVAL_V1}, {EVAL_V2}"
            )
    premier = import_bedrock(nova / PREMIER)
    v1, v2 = import_eval(nova / EVAL_V1), import_eval(nova / EVAL_V2)
    premier_keys = {query_key(r.query) for r in premier}
    eval_keys = {query_key(r.query) for r in (*v1, *v2)}
    unique = dedupe(premier)
    train = [r for r in unique if query_key(r.query) not in eval_keys]
    sets = {
        "v2_published": v2,
        "v2_leakfree": first_per_query(r for r in v2 if query_key(r.query) not in premier_keys),
        "v1_published": v1,
        "v1_leakfree": first_per_query(r for r in v1 if query_key(r.query) not in premier_keys),
    }
    stats = {
        "premier_records": len(premier),
        "premier_unique_queries": len(unique),
        "premier_queries_with_conflicting_labels": sum(
            1 for r in unique if len({tuple(sorted(s.items())) for s in r.samples}) > 1
        ),
        "removed_as_eval_overlap": len(unique) - len(train),
        "n_train": len(train),
        **{f"{k}_rows": len(v) for k, v in sets.items()},
        "v2_rows_seen_in_premier": sum(query_key(r.query) in premier_keys for r in v2),
        "v1_rows_seen_in_premier": sum(query_key(r.query) in premier_keys for r in v1),
        "v2_leakfree_before_dedup": sum(query_key(r.query) not in premier_keys for r in v2),
        "v1_leakfree_before_dedup": sum(query_key(r.query) not in premier_keys for r in v1),
    }
    return train, sets, stats


def score_set(router: Any, records: Sequence[LabelRecord]) -> dict[str, Any]:
    """Agreement and deterministic rubric on one set (no timing)."""
    signals = list(router.signals)
    y_true = to_matrix([r.weights for r in records], signals)
    y_pred = to_matrix([r.weights for r in router.route_batch([r.query for r in records])], signals)
    return {
        "n": len(records),
        "rubric_mean": float(rubric_levels(y_true, y_pred).mean()),
        "dominant_accuracy": dominant_accuracy(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "mae_per_signal": mae_per_signal(y_true, y_pred, signals),
        "js_divergence": js_divergence(y_true, y_pred),
    }


def _targets(result: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, (op, bound) in TARGETS.items():
        v = result.get(key)
        ok = v is not None and (v >= bound if op == ">=" else v <= bound)
        out[key] = {"target": f"{op} {bound:g}", "value": v, "met": bool(ok)}
    return out


def _bench_one(
    student: str,
    train: list[LabelRecord],
    sets: dict[str, list[LabelRecord]],
    stats: dict[str, Any],
    model_dir: Path,
    *,
    seed: int,
    latency_n: int,
    batch_sizes: Sequence[int],
    say: Callable[[str], None],
    train_params: dict[str, Any],
) -> tuple[dict[str, Any], EvalOutcome, dict[str, dict[str, Any]]]:
    from vidroute.router import Router
    from vidroute.students import train_student

    say(f"[{student}] training on {len(train)} queries")
    t0 = time.perf_counter()
    card = train_student(train, model_dir, student=student, seed=seed, **train_params)
    wall = time.perf_counter() - t0
    router = Router.load(model_dir)
    say(f"[{student}] evaluating")
    scores = {name: score_set(router, recs) for name, recs in sets.items()}
    outcome = evaluate_router(
        router, sets["v2_leakfree"], latency_n=latency_n, batch_sizes=batch_sizes, name="eval_dataset_v2 leak-free"
    )
    m = outcome.metrics
    best = max(m["throughput"].values(), key=lambda d: d["routes_per_second"])
    pub, lf, v1p, v1l = (scores[k] for k in ("v2_published", "v2_leakfree", "v1_published", "v1_leakfree"))
    result: dict[str, Any] = {
        "student": student,
        "model": m["model"],
        "rubric_published": pub["rubric_mean"],
        "rubric_leakfree": lf["rubric_mean"],
        "dominant_agreement_published": pub["dominant_accuracy"],
        "dominant_agreement_leakfree": lf["dominant_accuracy"],
        "mae_published": pub["mae"],
        "mae_leakfree": lf["mae"],
        "js_leakfree": lf["js_divergence"],
        "mae_per_signal_leakfree": lf["mae_per_signal"],
        "v1_rubric_published": v1p["rubric_mean"],
        "v1_rubric_leakfree": v1l["rubric_mean"],
        "v1_dominant_agreement_leakfree": v1l["dominant_accuracy"],
        "v1_mae_leakfree": v1l["mae"],
        "n_train": stats["n_train"],
        "n_eval_published": pub["n"],
        "n_eval_leakfree": lf["n"],
        "n_eval_v1_leakfree": v1l["n"],
        "train_seconds": float(card.get("train_seconds", wall)),
        "train_wall_seconds": wall,
        "route_p50_ms": m["latency"]["p50_ms"],
        "route_p95_ms": m["latency"]["p95_ms"],
        "route_p99_ms": m["latency"]["p99_ms"],
        "route_mean_ms": m["latency"]["mean_ms"],
        "routes_per_second_batch": best["routes_per_second"],
        "batch_size_best": best["batch_size"],
        "throughput": {k: round(v["routes_per_second"], 1) for k, v in m["throughput"].items()},
        "cpu_ms_per_query": m["latency"]["cpu_ms_per_query"],
        "usd_per_million_queries": m["cost"]["student_usd_per_million_single"],
        "usd_per_million_queries_batch": m["cost"]["student_usd_per_million_batch"],
        "rubric_scorer": "deterministic (weights only; the reference used an LLM judge)",
    }
    result["targets"] = _targets(result)
    subsets = {
        "v2 published (all 100 rows)": {**pub, "note": "as the reference evaluated; none of it in our training"},
        "v2 leak-free": {**lf, "note": "queries absent from premier_labels.jsonl, de-duplicated"},
        "v1 published (all 100 rows)": {**v1p, "note": ""},
        "v1 leak-free": {**v1l, "note": "queries absent from premier_labels.jsonl, de-duplicated"},
    }
    return result, outcome, subsets


def bench_distill(
    nova_dir: str | Path,
    *,
    student: str = "frozen",
    out_dir: str | Path | None = None,
    seed: int = 0,
    latency_n: int = 1000,
    batch_sizes: Sequence[int] = (1, 32, 256),
    max_train: int | None = None,
    progress: Callable[[str], None] | None = None,
    **train_params: Any,
) -> dict[str, Any]:
    """Train and evaluate one student (or `student="all"`) on the reference's data; return one JSON-ready dict.

    With `out_dir`, the model(s) and a full report (`<out_dir>/nova-<student>`, `<out_dir>/report-<student>`) are kept;
    otherwise they go to a temporary folder that is deleted. `max_train` trains on a seeded sample of that many
    queries (for smoke tests); extra keywords go to `train_student`.
    """
    import tempfile

    say = progress or (lambda _m: None)
    students = list(STUDENTS) if student == "all" else [student]
    for s in students:
        if s not in STUDENTS:
            raise ConfigError(f"unknown student {s!r}; choose one of {', '.join(STUDENTS)} or all")
    train, sets, stats = prepare_nova(nova_dir)
    if max_train is not None and max_train < len(train):
        pick = np.random.default_rng(seed).choice(len(train), size=max_train, replace=False)
        train = [train[i] for i in sorted(pick)]
        stats = {**stats, "n_train": len(train), "subsampled_to": max_train}
    say(
        f"{stats['premier_records']} Premier records -> {stats['premier_unique_queries']} unique queries, "
        f"{stats['removed_as_eval_overlap']} removed as eval overlap -> {stats['n_train']} for training"
    )
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="vidroute-bench-")
        root = Path(tmp.name)
    else:
        root = Path(out_dir)
    results: dict[str, dict[str, Any]] = {}
    try:
        for s in students:
            model_dir, report_dir = root / f"nova-{s}", root / f"report-{s}"
            res, outcome, subsets = _bench_one(
                s,
                train,
                sets,
                stats,
                model_dir,
                seed=seed,
                latency_n=latency_n,
                batch_sizes=batch_sizes,
                say=say,
                train_params=train_params,
            )
            if out_dir is not None:
                from vidroute.evaluate.report import write_report

                write_report(
                    outcome,
                    report_dir,
                    title=f"vidroute bench distill: {s} student on the reference's Nova data",
                    subsets=subsets,
                    notes=_notes(stats),
                )
                res["report"] = str(report_dir / "report.html")
                res["model_dir"] = str(model_dir)
            results[s] = res
    finally:
        if tmp is not None:
            tmp.cleanup()
    head = results[students[0]]
    out: dict[str, Any] = {**head}
    if len(students) > 1:
        out["students"] = results
    out["data"] = stats
    out["reference"] = {
        **_reference(),
        "note": "the reference's 4.0 was an LLM judge (Claude Sonnet 4) on the leaky published v2 set; ours is "
        "the deterministic rubric on the same levels, so compare rubric_published and rubric_leakfree with care",
    }
    out["protocol"] = {
        "train": "premier_labels.jsonl de-duplicated by query (mean of repeated labels), every query in either "
        "eval file removed",
        "published": "all 100 rows of eval_dataset_v2.jsonl",
        "leakfree": "eval_dataset_v2.jsonl rows whose query is absent from premier_labels.jsonl, de-duplicated",
        "query_match": "case-insensitive, whitespace and @/# normalised",
        "latency": f"route(q) one query at a time after 20 warm-up calls, {latency_n} timed calls, this machine",
    }
    return out


def _reference() -> dict[str, Any]:
    costs = cost_mod.reference_costs()
    return {
        "judge": cost_mod.REFERENCE["judge_score"],
        "latency_ms": cost_mod.REFERENCE["latency_ms_mean"],
        "haiku_latency_ms": cost_mod.REFERENCE["haiku_latency_ms_mean"],
        "usd_per_million_queries": round(costs["nova_micro_distilled_usd_per_1m_queries"], 2),
        "haiku_usd_per_million_queries": round(costs["haiku_long_prompt_usd_per_1m_queries"], 2),
        "train": "Bedrock distillation job, 30-60 minutes (notebook)",
    }


def _notes(stats: dict[str, Any]) -> list[str]:
    return [
        f"Training: {stats['premier_records']} Premier records, {stats['premier_unique_queries']} unique queries "
        f"({stats['premier_queries_with_conflicting_labels']} with conflicting labels, averaged), minus "
        f"{stats['removed_as_eval_overlap']} that also occur in an eval file = {stats['n_train']}.",
        f"v2: {stats['v2_rows_seen_in_premier']} of {stats['v2_published_rows']} rows occur in premier_labels.jsonl; "
        f"the leak-free set keeps the other {stats['v2_leakfree_before_dedup']} "
        f"({stats['v2_leakfree_rows']} after de-duplication). The headline cards above use the v2 leak-free set.",
        "The reference's 4.0/5 came from an LLM judge (Claude Sonnet 4) on the leaky v2 set; the rubric here is the "
        "deterministic scorer on the same five levels, weights only.",
    ]


# --- real queries --------------------------------------------------------------------------------------


def bench_realq(
    model: str | Path,
    data: str | Path,
    *,
    backend: str = "auto",
    n_worst: int = 5,
    router: Any = None,
) -> dict[str, Any]:
    """Route real queries whose dominant signal is known by construction; accuracy overall, per signal and per
    source, the confusion matrix and, per signal, the `n_worst` queries with the lowest weight on their signal."""
    if router is None:
        from vidroute.router import Router

        router = Router.load(Path(model), backend=backend)
    signals = list(router.signals)
    rows = list(read_jsonl(data))
    if not rows:
        raise DataFormatError(f"{data}: no rows")
    for i, r in enumerate(rows):
        if not isinstance(r.get("query"), str) or r.get("signal") not in signals:
            raise DataFormatError(
                f"{data}: row {i + 1} needs a 'query' string and a 'signal' in {signals}, got {sorted(r)} / "
                f"{r.get('signal')!r}"
            )
    queries = [r["query"] for r in rows]
    truth = np.array([signals.index(r["signal"]) for r in rows])
    t0 = time.perf_counter()
    results = router.route_batch(queries)
    wall = time.perf_counter() - t0
    weights = to_matrix([r.weights for r in results], signals)
    pred = dominant(weights)
    correct = pred == truth
    cm = np.zeros((len(signals), len(signals)), dtype=int)
    np.add.at(cm, (truth, pred), 1)

    per_signal = {}
    for j, s in enumerate(signals):
        m = truth == j
        if m.any():
            per_signal[s] = {
                "n": int(m.sum()),
                "accuracy": float(correct[m].mean()),
                "mean_weight_on_signal": float(weights[m, j].mean()),
            }
    per_source: dict[str, dict[str, Any]] = {}
    sources = [r.get("source") or "(none)" for r in rows]
    for src in sorted(set(sources)):
        m = np.array([s == src for s in sources])
        sig = Counter(rows[i]["signal"] for i in np.flatnonzero(m)).most_common(1)[0][0]
        predicted = Counter(signals[p] for p in pred[m])
        per_source[src] = {
            "signal": sig,
            "n": int(m.sum()),
            "accuracy": float(correct[m].mean()),
            "predicted": dict(predicted.most_common()),
        }
    worst: dict[str, list[dict[str, Any]]] = {}
    for j, s in enumerate(signals):
        idx = np.flatnonzero((truth == j) & ~correct)
        idx = idx[np.argsort(weights[idx, j])][:n_worst]
        worst[s] = [
            {
                "query": queries[i],
                "source": sources[i],
                "predicted": signals[pred[i]],
                "weights": {t: round(float(weights[i, k]), 3) for k, t in enumerate(signals)},
            }
            for i in idx
        ]
    return {
        "model": results[0].model if results else str(model),
        "data": str(data),
        "n": len(rows),
        "accuracy": float(correct.mean()),
        "macro_accuracy": float(np.mean([d["accuracy"] for d in per_signal.values()])),
        "per_signal": per_signal,
        "per_source": per_source,
        "confusion": {"labels": signals, "rows": "true signal", "columns": "predicted", "matrix": cm.tolist()},
        "worst": worst,
        "routes_per_second_batch": len(rows) / wall if wall > 0 else None,
    }
