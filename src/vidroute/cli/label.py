"""`vidroute label`: label a query file with a teacher, concurrently and resumably."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from vidroute.cli._app import app, console

log = logging.getLogger(__name__)


@app.command("label")
def label(
    teacher: Annotated[
        str,
        typer.Option(
            "--teacher",
            "-t",
            help="Teacher spec: gguf:smollm2, openai:MODEL or openai:MODEL@BASE_URL, bedrock:MODEL_ID, ...",
        ),
    ],
    queries: Annotated[Path, typer.Option("--in", "-i", help="Query JSONL ({id?, query, intent?, split?}).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Label JSONL; appended to and resumed if it exists.")],
    samples: Annotated[int, typer.Option("--samples", "-k", min=1, help="Teacher draws per query (K).")] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Queries in flight.")] = 4,
    temperature: Annotated[
        float | None, typer.Option(help="Sampling temperature (default: the teacher's; use > 0 with --samples > 1).")
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="Task spec YAML (default: the packaged one).")] = None,
    mode: Annotated[str | None, typer.Option(help="Teacher mode: json or next_token.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Label only the first N queries of the file.")] = None,
    skip_failed: Annotated[
        bool, typer.Option("--skip-failed", help="Do not retry queries that failed in an earlier run.")
    ] = False,
    allow_mixed: Annotated[
        bool,
        typer.Option("--allow-mixed", help="Append even if --out holds labels from another teacher/prompt/setting."),
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Label queries with a teacher: K draws per query, their mean is the soft label.

    Rerunning the same command resumes: finished ids are skipped and nothing is duplicated, even after kill -9.
    Failures go to OUT_STEM.failures.jsonl and are retried on the next run (unless --skip-failed); a manifest
    (teacher, prompt sha256, counts, tokens, cost, wall time) is written to OUT_STEM.manifest.json.
    """
    from vidroute.labels import label_queries, read_queries
    from vidroute.spec import TaskSpec

    overrides: dict[str, Any] = {}
    if temperature is not None:
        overrides["temperature"] = temperature
    if mode is not None:
        overrides["mode"] = mode
    # Always hand the teacher a loaded spec: without one, Teacher re-parses the packaged YAML on every call.
    overrides["task"] = TaskSpec.load(spec)
    records = read_queries(queries)
    if limit is not None:
        records = records[:limit]
    t = _load_teacher(teacher, overrides)
    try:
        stats = label_queries(
            t,
            records,
            out,
            samples=samples,
            concurrency=concurrency,
            progress=progress,
            skip_failed=skip_failed,
            allow_mixed=allow_mixed,
            input_path=queries,
        )
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: {out} keeps every finished label; rerun the same command to resume")
        raise typer.Exit(130) from None
    if stats.failed:
        console.print(f"[yellow]{stats.failed} queries failed[/]; see {stats.failures_out} (rerun to retry them)")
    typer.echo(json.dumps(stats.to_dict()))


def _load_teacher(spec: str, overrides: dict[str, Any]) -> Any:
    try:
        from vidroute.teachers import load_teacher
    except ImportError as exc:  # the teachers package may be installed without its registry in a partial build
        from vidroute.errors import ConfigError

        raise ConfigError("this vidroute build has no teacher registry (vidroute.teachers.load_teacher)") from exc
    return load_teacher(spec, **overrides)
