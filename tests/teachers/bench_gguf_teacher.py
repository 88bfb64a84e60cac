"""Throughput and validity of the in-process GGUF teacher (JSON vs next-token mode) on real queries.

Run: python tests/teachers/bench_gguf_teacher.py [--n 20] [--spec gguf:smollm2] [--attempts 1]
Reads ../shared/data/queries/real_queries_dev.jsonl (n/4 queries per dominant signal); prints one JSON summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections import defaultdict
from pathlib import Path

from vidroute.errors import InvalidTeacherOutput, TeacherError
from vidroute.records import read_jsonl
from vidroute.teachers import load_teacher
from vidroute.teachers.gguf import default_threads

SHARED = Path(os.environ.get("VIDROUTE_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))


def pick(n: int) -> list[tuple[str, str]]:
    rows = read_jsonl(SHARED / "data/queries/real_queries_dev.jsonl")
    per: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        if len(per[r["signal"]]) < n // 4:
            per[r["signal"]].append(r["query"])
    return [(q, s) for s, qs in per.items() for q in qs]


def run(teacher, queries: list[tuple[str, str]]) -> dict:
    valid = right = 0
    fails: list[str] = []
    t0 = time.perf_counter()
    for q, gold in queries:
        try:
            lab = teacher.label(q)
        except (InvalidTeacherOutput, TeacherError) as exc:
            fails.append(f"{type(exc).__name__}: {str(exc)[:80]}")
            continue
        valid += 1
        right += max(lab.weights, key=lab.weights.get) == gold
    secs = time.perf_counter() - t0
    return {
        "queries": len(queries),
        "valid": valid,
        "validity_rate": round(valid / len(queries), 3),
        "dominant_matches_source_label": right,
        "queries_per_minute": round(60 * len(queries) / secs, 1),
        "seconds": round(secs, 1),
        "failure_examples": fails[:3],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--spec", default="gguf:smollm2")
    ap.add_argument("--attempts", type=int, default=1, help="max_attempts per query in JSON mode")
    args = ap.parse_args()
    queries = pick(args.n)
    js = load_teacher(args.spec, max_attempts=args.attempts)
    t0 = time.perf_counter()
    js.server  # noqa: B018 - load the model outside the timed loops
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        first = js.label("a dog barking at the mailman")
        first_info = {"valid": True, "weights": first.weights}
    except InvalidTeacherOutput as exc:
        first_info = {"valid": False, "raw": exc.raw[:200]}
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with contextlib.suppress(InvalidTeacherOutput):
        js.label("a dog barking at the mailman")
    warm_s = time.perf_counter() - t0
    nt = load_teacher(args.spec, mode="next_token")
    nt._server = js.server  # same loaded model
    out = {
        "spec": args.spec,
        "threads": js.n_threads or default_threads(),
        "load_s": round(load_s, 2),
        "one_json_label_cold_s": round(first_s, 2),
        "one_json_label_warm_s": round(warm_s, 2),
        "first_label": first_info,
        "json": run(js, queries),
        "next_token": run(nt, queries),
        "loadavg": os.getloadavg(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
