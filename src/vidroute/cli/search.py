"""`vidroute search` (query a store with routed fusion) and `vidroute bench search` (retrieval + scale benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidroute.cli._app import app, bench_app, console
from vidroute.errors import ConfigError


def parse_weights(text: str | None) -> dict[str, float] | None:
    """'visual=0.6,audio=0.4' or a JSON object → weights."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if text.startswith("{"):
            raw = json.loads(text)
        else:
            raw = {}
            for part in text.split(","):
                name, sep, value = part.partition("=")
                if not sep:
                    raise ValueError(part)
                raw[name.strip()] = value
        return {str(k): float(v) for k, v in raw.items()}
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--weights {text!r}: use visual=0.6,audio=0.4 or a JSON object") from exc


def _clock(seconds: float) -> str:
    m, s = divmod(max(seconds, 0.0), 60)
    return f"{int(m)}:{s:04.1f}"


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    store: Annotated[
        str, typer.Option("--store", "-s", envvar="VIDROUTE_STORE_URI", help="Store URI (see `vidroute index`).")
    ],
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", envvar="VIDROUTE_MODEL_DIR", help="Router folder; without it: uniform weights."),
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Number of hits.")] = 10,
    weights: Annotated[
        str | None, typer.Option(help="Fixed weights instead of the router's: visual=0.6,audio=0.4 or JSON.")
    ] = None,
    fusion: Annotated[str, typer.Option(help="raw (exact weighted cosine), minmax (reference) or rrf.")] = "raw",
    bm25: Annotated[bool, typer.Option("--bm25/--no-bm25", help="Lexical leg driven by the metadata weight.")] = True,
    date_from: Annotated[str | None, typer.Option(help="Only videos dated on/after (YYYY[-MM[-DD]]).")] = None,
    date_to: Annotated[str | None, typer.Option(help="Only videos dated on/before (YYYY[-MM[-DD]]).")] = None,
    person: Annotated[list[str] | None, typer.Option("--person", help="Any of these people (repeatable).")] = None,
    genre: Annotated[str | None, typer.Option(help="Only this genre.")] = None,
    video_id: Annotated[str | None, typer.Option(help="Only this video.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full response as JSON.")] = False,
) -> None:
    """Route the query and search the store: hits with start/end, fused score and per-signal scores."""
    from rich.console import Console
    from rich.table import Table

    from vidroute.search.engine import SearchEngine
    from vidroute.search.types import Filters

    filters = Filters(date_from=date_from, date_to=date_to, people=person or [], genre=genre, video_id=video_id)
    has_filters = any([date_from, date_to, person, genre, video_id])
    with SearchEngine.open(store, model=model) as engine:
        engine.warm_up()  # model loading is not query latency
        result = engine.search(
            query,
            k=k,
            weights=parse_weights(weights),
            filters=filters if has_filters else None,
            fusion=fusion,
            bm25=bm25,
        )
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    used = ", ".join(f"{s} {w:.2f}" for s, w in result.weights.items()) or "none (empty store?)"
    route = result.route
    head = f"weights ({result.weights_source}): {used}"
    if route is not None:
        head += f" | dominant {route.dominant}, confidence {route.confidence:.2f}, {route.latency_ms:.1f} ms"
    out = Console()  # results go to stdout, diagnostics to stderr
    out.print(head)
    legs = sorted({leg for h in result.hits for leg in h.scores})
    table = Table(title=f"{len(result.hits)} hits for {query!r} ({result.latency_ms:.0f} ms, {result.fusion})")
    for col in ("#", "video", "start", "end", "score", *legs, "text"):
        table.add_column(col, justify="right" if col not in ("video", "text") else "left")
    for i, h in enumerate(result.hits, 1):
        text = (h.title + " | " if h.title else "") + h.transcript
        table.add_row(
            str(i),
            Path(h.path).name or h.video_id,
            _clock(h.start),
            _clock(h.end),
            f"{h.score:.3f}",
            *(f"{h.scores[leg]:.3f}" if leg in h.scores else "" for leg in legs),
            text[:60] + ("…" if len(text) > 60 else ""),
        )
    out.print(table)


@bench_app.command("search")
def bench_search(
    as_json: Annotated[bool, typer.Option("--json", help="Print the full JSON result (else a summary table).")] = False,
    model: Annotated[
        Path | None,
        typer.Option("--model", "-m", envvar="VIDROUTE_MODEL_DIR", help="Router folder for the routed weights."),
    ] = None,
    retrieval: Annotated[bool, typer.Option("--retrieval/--no-retrieval", help="VAST retrieval benchmark.")] = True,
    scale: Annotated[bool, typer.Option("--scale/--no-scale", help="Synthetic scale benchmark.")] = True,
    sizes: Annotated[
        str | None, typer.Option(help="Scale sizes, comma-separated (default 100000,1000000; 20000 with --quick).")
    ] = None,
    nprobes: Annotated[
        str | None, typer.Option(help="IVF partitions probed per signal, comma-separated sweep (default 16,32,64).")
    ] = None,
    queries: Annotated[int, typer.Option(min=10, help="Scale-benchmark queries per size.")] = 200,
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes and fewer queries (a smoke run).")] = False,
    data: Annotated[
        Path | None, typer.Option(help="Folder holding retrieval/ (default: ../shared/data next to the repo).")
    ] = None,
    workdir: Annotated[Path | None, typer.Option(help="Where scale stores are built (default: a temp folder).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the JSON here.")] = None,
) -> None:
    """Retrieval quality (uniform vs routed vs oracle weights) and store latency/recall at scale; prints JSON."""
    from vidroute.search.bench import run_search_bench

    result = run_search_bench(
        model=model,
        retrieval=retrieval,
        scale=scale,
        sizes=[int(s) for s in sizes.split(",") if s.strip()] if sizes else None,
        nprobes=[int(s) for s in nprobes.split(",") if s.strip()] if nprobes else None,
        n_queries=queries,
        quick=quick,
        data_dir=data,
        workdir=workdir,
        log=console.print,  # progress goes to stderr; stdout carries only the JSON
    )
    text = json.dumps(result, indent=2)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    if as_json:
        typer.echo(text)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="vidroute bench search")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            table.add_row(key, f"{value:.3f}")
    Console().print(table)
    if out is None:
        console.print("pass --json for the full result, or --out FILE to keep it")
