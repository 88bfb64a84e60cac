"""Labelling throughput of `label_queries` against the local fake OpenAI server (not a test; prints JSON lines).

python tests/labels/bench_throughput.py
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

from vidroute.labels import label_queries
from vidroute.spec import TaskSpec
from vidroute.teachers import load_teacher

_spec = importlib.util.spec_from_file_location("labels_conftest", Path(__file__).with_name("conftest.py"))
kit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kit)  # type: ignore[union-attr]


def main() -> None:
    task = TaskSpec.load()
    for delay, n in [(0.0, 400), (0.05, 160)]:
        for concurrency in (1, 8):
            with kit.ChatServer(delay=delay) as srv, tempfile.TemporaryDirectory() as d:
                teacher = load_teacher(f"openai:fake-router@{srv.url}", task=task)
                stats = label_queries(
                    teacher, kit.make_queries(n), Path(d) / "l.jsonl", concurrency=concurrency, progress=False
                )
                row = {"server_delay_s": delay, "concurrency": concurrency, "queries": n}
                print(
                    json.dumps(
                        {**row, "wall_s": round(stats.wall_s, 2), "queries_per_min": round(stats.queries_per_min)}
                    )
                )


if __name__ == "__main__":
    main()
