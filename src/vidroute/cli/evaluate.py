"""`vidroute eval` (agreement, rubric, judge, latency, cost, report) and `vidroute bench distill|realq`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vidroute.cli._app import app, bench_app, console
from vidroute.errors import ConfigError


def _default_nova() -> Path:
    shared = os.environ.get("VIDROUTE_SHARED")
    return Path(shared) / "data" / "nova" if shared else Path("../shared/data/nova")


def _say(msg: str) -> None:
    console.print(f"[dim]{msg}[/]")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"--batch-sizes {text!r} must be comma-separated integers, e.g. 1,32,256") from exc
    if not values or min(values) < 1:
        raise ConfigError(f"--batch-sizes {text!r} needs at least one size >= 1")
    return values


def _table(title: str, rows: list[tuple[str, Any]]) -> Table:
    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column(justify="right")
    for k, v in rows:
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    return t


@app.command("eval")
def eval_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="Student model directory (from `vidroute train`).")],
    data: Annotated[
        Path, typer.Option("--data", "-d", help="Labelled queries: vidroute labels, {query, reference} or Bedrock.")
    ],
    report: Annotated[
        Path | None, typer.Option("--report", "-r", help="Write report.html, summary.md, metrics.json here.")
    ] = None,
    judge: Annotated[
        str | None, typer.Option("--judge", help="Also grade with an LLM judge: a teacher spec, e.g. gguf:smollm2.")
    ] = None,
    rubric: Annotated[
        Path | None, typer.Option("--rubric", help="Judge rubric text file (default: the spec's rubric).")
    ] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="Task spec YAML whose rubric the judge uses.")] = None,
    judge_limit: Annotated[int | None, typer.Option(help="Judge only the first N queries.")] = None,
    judge_max_tokens: Annotated[int, typer.Option(help="The judge's output token budget.")] = 120,
    backend: Annotated[str, typer.Option(help="Router backend: auto, onnx or torch.")] = "auto",
    warmup: Annotated[int, typer.Option(help="Untimed calls before the latency measurement.")] = 20,
    latency_n: Annotated[
        int | None, typer.Option(help="Timed single-query calls (default: every query once, at least 200).")
    ] = None,
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes for throughput.")] = "1,32,256",
    throughput_n: Annotated[int, typer.Option(help="Queries routed per batch size (cycled).")] = 256,
    usd_per_vcpu_hour: Annotated[float, typer.Option(help="vCPU price for the student's cost.")] = 0.0425,
    teacher_latency_ms: Annotated[
        float | None, typer.Option(help="Escalation target's latency for the cascade (default: measured or 833).")
    ] = None,
    teacher_usd_per_million: Annotated[
        float | None, typer.Option(help="Escalation target's USD per 1M queries (default: measured or reference).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print metrics as one JSON object.")] = False,
) -> None:
    """Evaluate a router against labelled queries: agreement, 1–5 rubric, optional LLM judge, latency, cost.

    Also measures batch throughput and the student→teacher cascade curve; `--report` writes an HTML report."""
    from vidroute.evaluate.run import dumps, evaluate_model

    rubric_text = None
    if rubric is not None:
        if not rubric.is_file():
            raise ConfigError(f"rubric file not found: {rubric}")
        rubric_text = rubric.read_text("utf-8")
    elif spec is not None:
        from vidroute.spec import TaskSpec

        rubric_text = TaskSpec.load(spec).render_rubric()
    outcome = evaluate_model(
        model,
        data,
        report_dir=report,
        judge_spec=judge,
        rubric=rubric_text,
        judge_limit=judge_limit,
        judge_max_tokens=judge_max_tokens,
        backend=backend,
        warmup=warmup,
        latency_n=latency_n,
        batch_sizes=_int_list(batch_sizes),
        throughput_n=throughput_n,
        usd_per_vcpu_hour=usd_per_vcpu_hour,
        teacher_latency_ms=teacher_latency_ms,
        teacher_usd_per_million=teacher_usd_per_million,
        progress=_say,
    )
    m = outcome.metrics
    if as_json:
        typer.echo(dumps(m))
        return
    rows: list[tuple[str, Any]] = [
        ("queries", m["n"]),
        ("rubric (deterministic)", m["rubric"]["mean"]),
        ("dominant accuracy", m["agreement"]["dominant_accuracy"]),
        ("MAE", m["agreement"]["mae"]),
        ("JS divergence (bits)", m["agreement"]["js_divergence"]),
    ]
    if m.get("judge"):
        j = m["judge"]
        ag = j["agreement_with_deterministic"]
        rows += [
            ("judge mean", j["mean"] if j["mean"] is not None else "–"),
            ("judge failures", j["failures"]),
            ("judge = deterministic", ag["exact"] if ag["exact"] is not None else "–"),
        ]
    rows += [
        ("latency p50 ms", m["latency"]["p50_ms"]),
        ("latency p99 ms", m["latency"]["p99_ms"]),
        ("best batch routes/s", max(d["routes_per_second"] for d in m["throughput"].values())),
        ("USD per 1M queries", m["cost"]["student_usd_per_million_single"]),
    ]
    Console().print(_table(f"vidroute eval: {data.name}", rows))
    if report is not None:
        console.print(f"report: {report / 'report.html'}")


@bench_app.command("distill")
def bench_distill_cmd(
    nova: Annotated[
        Path, typer.Option(help="Folder with premier_labels.jsonl, eval_dataset.jsonl, eval_dataset_v2.jsonl.")
    ] = _default_nova(),
    student: Annotated[str, typer.Option(help="frozen, finetune, static or all.")] = "frozen",
    out: Annotated[Path | None, typer.Option(help="Keep the model(s) and write a report here.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    latency_n: Annotated[int, typer.Option(help="Timed single-query calls.")] = 1000,
    max_train: Annotated[int | None, typer.Option(help="Train on a seeded sample of N queries (smoke runs).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (the default output too).")] = False,
) -> None:
    """Train on the reference's Nova labels and score on its eval sets, as published and leak-free.

    Training data: premier_labels.jsonl de-duplicated, every eval query removed. Prints one JSON object on
    stdout; progress goes to stderr."""
    from vidroute.evaluate.bench import bench_distill
    from vidroute.evaluate.run import dumps

    result = bench_distill(
        nova, student=student, out_dir=out, seed=seed, latency_n=latency_n, max_train=max_train, progress=_say
    )
    typer.echo(dumps(result))
    if not as_json:
        for key, t in result["targets"].items():
            mark = "[green]met[/]" if t["met"] else "[red]missed[/]"
            console.print(f"{key}: {t['value']:.4g} (target {t['target']}) {mark}")


@bench_app.command("realq")
def bench_realq_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="Student model directory.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Rows {query, signal, source}.")],
    backend: Annotated[str, typer.Option(help="Router backend: auto, onnx or torch.")] = "auto",
    worst: Annotated[int, typer.Option(help="Misrouted examples shown per signal.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Route real queries whose dominant signal is known; accuracy overall, per signal and per source."""
    from vidroute.evaluate.bench import bench_realq
    from vidroute.evaluate.run import dumps

    res = bench_realq(model, data, backend=backend, n_worst=worst)
    if as_json:
        typer.echo(dumps(res))
        return
    out = Console()
    out.print(f"[bold]accuracy {res['accuracy']:.3f}[/] (macro {res['macro_accuracy']:.3f}) on {res['n']} queries")
    t = Table("signal", "n", "accuracy", "mean weight on it", title="per signal", title_justify="left")
    for s, d in res["per_signal"].items():
        t.add_row(s, str(d["n"]), f"{d['accuracy']:.3f}", f"{d['mean_weight_on_signal']:.3f}")
    out.print(t)
    t = Table("source", "signal", "n", "accuracy", "predicted", title="per source", title_justify="left")
    for src, d in sorted(res["per_source"].items(), key=lambda kv: (kv[1]["signal"], kv[1]["accuracy"])):
        pred = ", ".join(f"{k} {v}" for k, v in d["predicted"].items())
        t.add_row(src, d["signal"], str(d["n"]), f"{d['accuracy']:.3f}", pred)
    out.print(t)
    labels = res["confusion"]["labels"]
    t = Table("true \\ predicted", *labels, title="confusion", title_justify="left")
    for s, row in zip(labels, res["confusion"]["matrix"], strict=True):
        t.add_row(s, *[str(x) for x in row])
    out.print(t)
    for s, rows in res["worst"].items():
        if rows:
            out.print(f"[bold]misrouted {s} queries[/] (lowest weight on {s}):")
            for r in rows:
                out.print(f"  [{r['source']}] {r['query'][:90]!r} -> {r['predicted']} {r['weights']}")
