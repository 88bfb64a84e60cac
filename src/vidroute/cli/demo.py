"""`vidroute demo`: the README's main job — the whole loop offline on embedded defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vidroute.cli._app import app, console


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for every stage's files.")] = Path("runs/demo"),
    n_queries: Annotated[int, typer.Option(help="Synthetic queries to generate.")] = 2000,
    label_n: Annotated[int, typer.Option(help="Queries to label with the local teacher.")] = 48,
    teacher: Annotated[str, typer.Option(help="Teacher spec (see `vidroute label --help`).")] = (
        "gguf:smollm2?mode=next_token"
    ),
    student: Annotated[str, typer.Option(help="frozen | finetune | static")] = "frozen",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Generate queries, label a batch with a local GGUF teacher, train and evaluate a student, index demo clips,
    and run routed searches. Offline; every stage's files stay in OUT."""
    from vidroute.demo import run_demo

    summary = run_demo(
        out,
        n_queries=n_queries,
        label_n=label_n,
        teacher_spec=teacher,
        student=student,
        step=lambda msg: console.print(f"[bold cyan]{msg}[/]"),
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
        return
    _print_summary(summary)


def _print_summary(s: dict) -> None:
    lab, ev = s["labels"], s["eval"]
    t = Table(title="vidroute demo", show_header=False)
    t.add_row(
        "queries",
        f"{sum((s['queries'].get('counts') or {}).get('intent', {}).values() or [0])} → {s['queries']['file']}",
    )
    t.add_row(
        "labels",
        f"{lab.get('labelled')} labelled, {lab.get('failed')} failures, "
        f"{lab.get('queries_per_min', 0):.1f} q/min → {lab['file']}",
    )
    t.add_row(
        "student", f"{s['student']['kind']}, trained in {s['student']['train_seconds']} s → {s['student']['dir']}"
    )
    t.add_row(
        "eval",
        f"agreement {ev['dominant_agreement']}, MAE {ev['mae']}, rubric {ev['rubric_mean']}, "
        f"p50 {ev['route_p50_ms']} ms → {ev['report']}",
    )
    t.add_row("index", f"{s['index'].get('segments')} segments from {len(s['index'].get('indexed', []))} files")
    typer.echo("")
    console.print(t)
    for q in s["searches"]:
        w = " ".join(f"{k}={v:.2f}" for k, v in q["weights"].items())
        console.print(f"[bold]{q['query']}[/]  [dim]{w}[/]")
        for h in q["hits"]:
            console.print(f"    {h['score']:.3f}  {h['file']}  {h['start']:.1f}–{h['end']:.1f}s")
    console.print(f"[green]done in {s['seconds']} s[/]; summary in {Path(s['out']) / 'demo_summary.json'}")
