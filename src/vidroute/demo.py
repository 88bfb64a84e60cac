"""The whole loop on embedded defaults, offline: queries → local-teacher labels → student → report → index → search."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidroute.records import LabelRecord, read_records

log = logging.getLogger(__name__)

# One query per signal, about what the generated demo clips show, say and are titled.
DEMO_SEARCHES = (
    "a colourful fractal zooming in",
    "a steady test tone",
    "why the sound of rain helps people sleep",
    "Math Corner with Dana Reyes",
)


def run_demo(
    out: str | Path = "runs/demo",
    *,
    n_queries: int = 2000,
    label_n: int = 48,
    teacher_spec: str = "gguf:smollm2?mode=next_token",
    student: str = "frozen",
    seed: int = 0,
    step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run every stage into `out` and return a summary. Each stage's files stay for inspection or reuse.

    Every stage resumes: rerunning skips labelled queries and regenerates nothing that is up to date.
    """
    from vidroute.evaluate.run import evaluate_model
    from vidroute.formats import export_records
    from vidroute.ingest import make_demo_clips
    from vidroute.labels import label_queries
    from vidroute.queries.generate import generate_to_file
    from vidroute.search.engine import SearchEngine
    from vidroute.students import train_student
    from vidroute.teachers import load_teacher

    say = step or (lambda msg: log.info(msg))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"out": str(out)}
    t_all = time.perf_counter()

    say(f"1/6 generating {n_queries} synthetic queries")
    queries_path = out / "queries.jsonl"
    qm = generate_to_file(queries_path, n_queries, seed=seed, progress=None)
    summary["queries"] = {"file": str(queries_path), "counts": (qm.get("counts") or {}).get("intent")}

    from vidroute.labels import read_queries

    queries = read_queries(queries_path)
    # Label a small batch balanced over intents: most from train, a quarter from test for the evaluation.
    n_test = max(8, label_n // 4)
    picked = _balanced(queries, "train", label_n - n_test) + _balanced(queries, "test", n_test)

    say(f"2/6 labelling {len(picked)} queries with the local teacher {teacher_spec}")
    teacher = load_teacher(teacher_spec)
    labels_path = out / "labels.jsonl"
    try:
        stats = label_queries(teacher, picked, labels_path, concurrency=1, progress=True, input_path=queries_path)
    finally:
        close = getattr(teacher, "close", None)
        if close is not None:
            close()
    summary["labels"] = {"file": str(labels_path), **stats.to_dict()}

    labels = read_records(labels_path, LabelRecord)
    train = [r for r in labels if r.split != "test"]
    test = [r for r in labels if r.split == "test"]
    if len(train) < 4 or not test:
        raise RuntimeError(
            f"too few valid labels to train ({len(train)} train, {len(test)} test); see the failures file"
        )

    say(f"3/6 training a {student} student on {len(train)} labels")
    model_dir = out / "model"
    card = train_student(train, model_dir, student=student, seed=seed)
    summary["student"] = {"dir": str(model_dir), "train_seconds": card.get("train_seconds"), "kind": student}

    say(f"4/6 evaluating on {len(test)} held-out labels and writing the report")
    test_path = out / "test_labels.jsonl"
    export_records(test, test_path, "labels")
    outcome = evaluate_model(model_dir, test_path, report_dir=out / "report")
    m = outcome.metrics
    summary["eval"] = {
        "report": str(out / "report" / "report.html"),
        "n": m.get("n"),
        "dominant_agreement": _round(m["agreement"].get("dominant_accuracy")),
        "mae": _round(m["agreement"].get("mae")),
        "rubric_mean": _round(m["rubric"].get("mean")),
        "route_p50_ms": _round(m["latency"].get("p50_ms")),
    }

    say("5/6 making demo clips and indexing them (ffmpeg from imageio-ffmpeg, captions as sidecars)")
    clips = make_demo_clips(out / "clips")
    engine = SearchEngine.open(str(out / "store"), model=model_dir)
    try:
        report = engine.index_paths(clips)
        summary["index"] = json.loads(report.model_dump_json())

        say("6/6 routed searches")
        searches = []
        for q in DEMO_SEARCHES:
            res = engine.search(q, k=3)
            searches.append(
                {
                    "query": q,
                    "weights": {s: round(w, 3) for s, w in res.weights.items()},
                    "hits": [
                        {"file": Path(h.path).name, "start": h.start, "end": h.end, "score": round(h.score, 3)}
                        for h in res.hits
                    ],
                }
            )
        summary["searches"] = searches
    finally:
        engine.close()
    summary["seconds"] = round(time.perf_counter() - t_all, 1)
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return summary


def _round(x: float | None, nd: int = 3) -> float | None:
    return None if x is None else round(float(x), nd)


def _balanced(queries: list, split: str, n: int) -> list:
    """Round-robin over intents so a small batch still covers every intent."""
    by_intent: dict[str, list] = {}
    for q in queries:
        if q.split == split:
            by_intent.setdefault(q.intent or "?", []).append(q)
    out: list = []
    while len(out) < n and any(by_intent.values()):
        for intent in sorted(by_intent):
            if by_intent[intent] and len(out) < n:
                out.append(by_intent[intent].pop(0))
    return out
