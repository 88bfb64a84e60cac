"""`vidroute route`: route queries with a trained student (optionally cascading to a teacher) and print JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidroute.cli._app import app
from vidroute.errors import ConfigError


def _read_queries(path: Path) -> list[str]:
    """One query per line, or JSONL rows with a `query` field."""
    if not path.exists():
        raise ConfigError(f"query file {path} not found")
    out = []
    for i, line in enumerate(path.read_text("utf-8").splitlines()):
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{i + 1}: not valid JSON ({exc.msg})") from exc
            if not isinstance(row.get("query"), str):
                raise ConfigError(f"{path}:{i + 1}: JSON row without a string 'query'")
            out.append(row["query"])
        else:
            out.append(line)
    return out


@app.command("route")
def route(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder from `vidroute train`.")],
    queries: Annotated[list[str] | None, typer.Argument(help="Query text(s) to route.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Route every query in this file (lines or JSONL).")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Print weights, dominant, confidence, model, latency, escalated.")
    ] = False,
    backend: Annotated[str, typer.Option(help="auto, onnx, onnx-fp32, onnx-int8, torch or numpy.")] = "auto",
    teacher: Annotated[
        str | None, typer.Option("--teacher", "-t", help="Cascade: teacher spec for low-confidence queries.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Cascade: escalate when confidence is below this (needs --teacher).")
    ] = None,
) -> None:
    """Print one JSON object per query: by default the reference system's four weights (summing to 1)."""
    from vidroute.router import Router

    texts = list(queries or [])
    if file is not None:
        texts += _read_queries(file)
    if not texts:
        raise ConfigError('give a query, e.g. vidroute route --model DIR "dog barking", or --file QUERIES')
    if (teacher is None) != (threshold is None):
        raise ConfigError("--teacher and --threshold go together (the cascade needs both)")
    t = None
    if teacher is not None:
        from vidroute.teachers import load_teacher

        t = load_teacher(teacher)
    router = Router.load(model, backend=backend, teacher=t, threshold=threshold)
    results = [router.route(texts[0])] if len(texts) == 1 else router.route_batch(texts)
    for r in results:
        typer.echo(json.dumps(r.model_dump() if full else r.to_reference_json()))
