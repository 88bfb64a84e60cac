"""`vidroute queries generate`: synthetic video-search queries from the packaged templates, deduplicated and split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidroute.cli._app import console, queries_app
from vidroute.queries.dedup import DEFAULT_THRESHOLD
from vidroute.queries.generate import DEFAULT_LINK_THRESHOLD


@queries_app.command("generate")
def generate(
    n: Annotated[int, typer.Option("--n", "-n", min=1, help="How many unique queries to write.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL (QueryRecord rows); manifest beside it.")],
    mix: Annotated[
        str | None,
        typer.Option(help="Intent mix, e.g. visual=25,audio=20,transcription=20,metadata=15,mixed=20 (the default)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed; the same arguments always give the same file.")] = 0,
    splits: Annotated[str, typer.Option(help="train,val,test fractions (or 80/10/10).")] = "0.8,0.1,0.1",
    embed_dedup: Annotated[
        bool,
        typer.Option("--embed-dedup/--no-embed-dedup", help="Drop near-duplicates by MiniLM cosine (slower)."),
    ] = True,
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Cosine at or above which a query is a near-duplicate.")
    ] = DEFAULT_THRESHOLD,
    link_threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Cosine at or above which kept queries share a split.")
    ] = DEFAULT_LINK_THRESHOLD,
    expand_with: Annotated[
        str | None, typer.Option(help="Teacher spec for LLM paraphrases, e.g. gguf:smollm2 or openai:MODEL@URL.")
    ] = None,
    expand_n: Annotated[int, typer.Option(min=0, help="Template queries to paraphrase with --expand-with.")] = 0,
    expand_k: Annotated[int, typer.Option(min=1, help="Paraphrases asked per query.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Regenerate even if OUT is up to date.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Generate diverse synthetic queries (visual / audio / transcription / metadata / mixed) into OUT.

    Exact and near-duplicates are removed, and train/val/test splits share no query text or near-duplicate pair.
    Rerunning with the same arguments is a no-op once OUT is complete; an interrupted run leaves no partial file.
    """
    from vidroute.queries.generate import generate_to_file

    kwargs = dict(
        mix=mix,
        seed=seed,
        splits=splits,
        embed_dedup=embed_dedup,
        threshold=threshold,
        link_threshold=link_threshold,
        expand_with=expand_with,
        expand_n=expand_n,
        expand_k=expand_k,
        force=force,
    )
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as bar:
            tasks: dict[str, int] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            manifest = generate_to_file(out, n, progress=report, **kwargs)
    else:
        manifest = generate_to_file(out, n, **kwargs)
    summary = {
        "status": manifest["status"],
        "out": str(out),
        "n": manifest["n"],
        "intent": manifest["counts"]["intent"],
        "split": manifest["counts"]["split"],
        "dedup": {k: manifest["dedup"][k] for k in ("exact_removed", "loose_removed", "near_removed", "unique_rate")},
        "seconds": manifest["timing_s"]["total"],
    }
    typer.echo(json.dumps(summary))
