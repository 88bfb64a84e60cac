"""`vidroute data import|export`: convert between Bedrock/eval/OpenAI/Parquet files and vidroute label JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vidroute.cli._app import console, data_app

_IN_HELP = "Input format: auto, bedrock (bedrock-conversation-2024), eval ({query, reference}), labels, parquet."


@data_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="File to import.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="vidroute label JSONL to write (a manifest goes beside).")],
    format: Annotated[str, typer.Option("--format", "-f", help=_IN_HELP)] = "auto",
    model_id: Annotated[
        str, typer.Option(help="Teacher model id to record for the imported labels.")
    ] = "amazon.nova-premier-v1:0",
    temperature: Annotated[float, typer.Option(help="Teacher temperature to record (the reference used 0.3).")] = 0.3,
    spec: Annotated[Path | None, typer.Option(help="Task spec YAML whose signals the weights must use.")] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Skip malformed records (counted in the manifest), not fail."),
    ] = False,
) -> None:
    """Import labelled data into vidroute label JSONL, keeping provenance (source sha256, system prompt, line ids)."""
    from vidroute.formats import import_file
    from vidroute.records import manifest_path
    from vidroute.spec import TaskSpec

    ds = import_file(
        file,
        out,
        format,
        spec=TaskSpec.load(spec) if spec else None,
        model_id=model_id,
        temperature=temperature,
        skip_invalid=skip_invalid,
    )
    if ds.skipped_count:
        console.print(f"[yellow]skipped {ds.skipped_count} invalid records[/] (listed in the manifest)")
    typer.echo(
        json.dumps(
            {
                "out": str(out),
                "manifest": str(manifest_path(out)),
                "format": ds.format,
                "records": len(ds.records),
                "unique_queries": len({r.query for r in ds.records}),
                "skipped_invalid": ds.skipped_count,
                "source_sha256": ds.source_sha256,
            }
        )
    )


@data_app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="Labels to export (vidroute label JSONL, or any importable file).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (a manifest goes beside).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="bedrock, openai (chat fine-tuning JSONL), parquet, eval, labels.")
    ],
    in_format: Annotated[str, typer.Option(help=_IN_HELP)] = "auto",
    split: Annotated[str | None, typer.Option(help="Export only records of this split (train/val/test).")] = None,
    system_prompt: Annotated[
        str | None,
        typer.Option(help="System prompt for every record (default: an import's original, else the student prompt)."),
    ] = None,
    spec: Annotated[Path | None, typer.Option(help="Task spec YAML (signals and the student prompt).")] = None,
    decimals: Annotated[int, typer.Option(min=1, max=6, help="Decimals of the exported weights.")] = 2,
    reasoning: Annotated[bool, typer.Option("--reasoning/--no-reasoning", help="Keep the reasoning text.")] = True,
) -> None:
    """Export labels for training: Bedrock distillation JSONL, OpenAI chat fine-tuning JSONL, or Parquet."""
    from vidroute.formats import export_file
    from vidroute.records import manifest_path
    from vidroute.spec import TaskSpec

    manifest = export_file(
        file,
        out,
        format,
        in_format=in_format,
        split=split,
        spec=TaskSpec.load(spec) if spec else None,
        system_prompt=system_prompt,
        decimals=decimals,
        reasoning=reasoning,
    )
    typer.echo(
        json.dumps(
            {
                "out": str(out),
                "manifest": str(manifest_path(out)),
                "format": format,
                "records": manifest["counts"]["records"],
            }
        )
    )
