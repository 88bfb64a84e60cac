"""`vidroute index`: ingest media files into a search store (resumable, idempotent, corrupt files skipped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidroute.cli._app import app, console


@app.command("index")
def index(
    paths: Annotated[list[Path], typer.Argument(help="Media files, or folders searched recursively for media files.")],
    store: Annotated[
        str,
        typer.Option(
            "--store",
            "-s",
            envvar="VIDROUTE_STORE_URI",
            help="Store URI: a folder (LanceDB), lancedb:///path, qdrant:///path, qdrant+http://host:6333.",
        ),
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Re-index files already in the store (replaces them).")
    ] = False,
    embedder: Annotated[
        list[str] | None,
        typer.Option(
            "--embedder",
            "-e",
            help="signal=spec for a new store, e.g. visual=clip:/models/clip or audio=none (repeatable; "
            "default: minilm for every signal's text). An existing store keeps the embedders it was built with.",
        ),
    ] = None,
    keyframe_dir: Annotated[
        Path | None, typer.Option(help="Where keyframes go (default: ~/.cache/vidroute/keyframes).")
    ] = None,
    asr: Annotated[bool, typer.Option("--asr/--no-asr", help="Speech-to-text where a file has no captions.")] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Index media: cut into segments, transcribe, embed each signal, and write them to the store.

    Rerunning is safe: files already indexed (same content) are skipped unless --force; files that cannot be
    decoded are reported and skipped. Prints a JSON summary (indexed, skipped with errors, existing, segments).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vidroute.search.engine import SearchEngine, expand_paths

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        console.print(f"[yellow]warning:[/] not found, will be reported as skipped: {', '.join(missing)}")
    files = expand_paths(paths)
    if not files:
        console.print("[yellow]no media files found[/] under the given paths")
    from vidroute.ingest import IngestConfig, build_embedders

    specs = _parse_specs(embedder or [])
    config = IngestConfig(keyframe_dir=keyframe_dir, asr=asr)
    with SearchEngine.open(store, embedders=build_embedders(specs) if specs else None) as engine:
        engine.ingest_config = config
        if progress and files:
            with Progress(
                TextColumn("[bold]indexing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("", total=len(files))

                def on_progress(done: float, total: float, path: str) -> None:
                    bar.update(task, completed=done, total=total, description=Path(path).name if path else "")

                report = engine.index_paths(files, progress=on_progress, force=force)
        else:
            report = engine.index_paths(files, force=force)
        for item in report.skipped:
            console.print(f"[red]skipped[/] {item.path}: {item.error}")
        summary = report.model_dump()
        summary["total_segments"] = engine.store.count()
    typer.echo(json.dumps(summary, indent=2))
    if files and not report.indexed and not report.existing:
        raise typer.Exit(1)


def _parse_specs(items: list[str]) -> dict[str, str | None]:
    from vidroute.errors import ConfigError

    specs: dict[str, str | None] = {}
    for item in items:
        signal, sep, spec = item.partition("=")
        if not sep or not signal.strip():
            raise ConfigError(f"--embedder {item!r}: use signal=spec, e.g. visual=clip:/models/clip or audio=none")
        specs[signal.strip()] = None if spec.strip().lower() in ("", "none") else spec.strip()
    return specs
