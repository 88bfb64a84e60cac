"""`vidroute train` (distil a student from teacher labels) and `vidroute export` (ONNX, int8)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from vidroute.cli._app import app, console
from vidroute.errors import ConfigError


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` pairs; values are JSON when they parse (numbers, true/false, null), else strings."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {item!r} is not KEY=VALUE (e.g. --param hidden=128)")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def _read_labels(path: Path, spec_path: Path | None):
    """Any label file the project reads: vidroute label JSONL, Bedrock conversation JSONL, eval rows, Parquet."""
    from vidroute.spec import TaskSpec

    try:
        from vidroute.formats import read_dataset
    except ImportError:  # a partial build without the import/export module: plain label JSONL only
        from vidroute.students.data import load_labels

        return load_labels(path), None
    ds = read_dataset(path, spec=TaskSpec.load(spec_path) if spec_path else None)
    return ds.records, ds.source_sha256


@app.command("train")
def train(
    data: Annotated[
        Path,
        typer.Option("--data", "-d", help="Teacher labels: vidroute label JSONL, Bedrock conversation JSONL, Parquet."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model folder to write (created; files overwritten).")],
    student: Annotated[str, typer.Option("--student", "-s", help="frozen, finetune or static.")] = "frozen",
    seed: Annotated[int, typer.Option(help="Seed for the split, initialisation and shuffling.")] = 0,
    val_fraction: Annotated[float, typer.Option(help="Share of distinct queries held out for early stopping.")] = 0.1,
    exclude: Annotated[
        list[Path] | None,
        typer.Option("--exclude", "-x", help="JSONL file whose `query` rows are removed from training. Repeatable."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Training parameter KEY=VALUE, e.g. hidden=128, layers=3. Repeatable."),
    ] = None,
    augment_queries: Annotated[
        Path | None,
        typer.Option(
            help="Synthetic query JSONL with intents (`vidroute queries generate`): added to training with the "
            "teacher's mean label for their intent (see vidroute.students.augment)."
        ),
    ] = None,
    augment: Annotated[
        int | None,
        typer.Option(
            "--augment",
            min=0,
            help="Generate N synthetic queries (seeded by --seed) and add the single-intent ones to training with "
            "the teacher's mean label for their intent (docs/realq.md). Default: 0, or the recipe's N with --recipe.",
        ),
    ] = None,
    augment_mix: Annotated[
        str | None,
        typer.Option(help="Intent mix of the --augment queries, e.g. visual=20,audio=25,transcription=30,metadata=25."),
    ] = None,
    augment_temperature: Annotated[
        float | None,
        typer.Option(help="Sharpen the --augment class-mean labels: w**(1/T), renormalised (T<1 sharper; 1 = off)."),
    ] = None,
    augment_labeller: Annotated[
        Path | None,
        typer.Option(
            help="Label the --augment/--augment-queries queries with this trained student's weights instead of the "
            "teacher's class means (e.g. distil a fine-tuned student into a static one; docs/realq.md)."
        ),
    ] = None,
    recipe: Annotated[
        str,
        typer.Option(
            help="none; realq: synthetic-query augmentation tuned for routing real queries; distil: 12,000 queries "
            "labelled by --augment-labeller, for the static student (docs/realq.md). Explicit --augment, "
            "--augment-mix, --augment-temperature and -p KEY=VALUE override a recipe's values."
        ),
    ] = "none",
    threads: Annotated[int, typer.Option(min=1, help="torch threads for training.")] = 2,
    onnx: Annotated[bool, typer.Option("--onnx/--no-onnx", help="Export encoder students to ONNX.")] = True,
    int8: Annotated[str, typer.Option(help="int8 ONNX: auto (only if it costs no val quality), yes, no.")] = "auto",
    spec: Annotated[Path | None, typer.Option(help="Task spec YAML whose signals the labels use.")] = None,
) -> None:
    """Distil a student from teacher soft labels (KL divergence), with a seeded train/val split, early stopping,
    calibrated confidence, a model card and (encoder students) ONNX export. Prints the model card as JSON."""
    from vidroute.students import STUDENTS, resolve_signals, train_student
    from vidroute.students.data import query_set
    from vidroute.students.encoder import dedup_key

    if student not in STUDENTS:
        raise ConfigError(f"--student {student!r}: choose one of {', '.join(STUDENTS)}")
    records, source_sha = _read_labels(data, spec)
    n_in = len(records)
    if exclude:
        drop = query_set(exclude)
        records = [r for r in records if dedup_key(r.query) not in drop]
        console.print(f"[dim]excluded {n_in - len(records)} of {n_in} records whose query is in {len(exclude)} file(s)")
    params = _parse_params(param)
    from vidroute.students.augment import RECIPES

    if recipe not in RECIPES:
        raise ConfigError(f"--recipe {recipe!r}: choose one of {', '.join(RECIPES)}")
    rec = RECIPES[recipe]
    augment = rec.get("augment", 0) if augment is None else augment
    augment_mix = rec.get("mix") if augment_mix is None else augment_mix
    augment_temperature = rec.get("temperature", 1.0) if augment_temperature is None else augment_temperature
    if rec.get("labeller") and augment_labeller is None:
        raise ConfigError(f"--recipe {recipe} labels its queries with a trained student: give --augment-labeller MODEL")
    if augment:
        for key, value in rec.get("params", {}).items():
            params.setdefault(key, value)
    params.setdefault("threads", threads)
    params.setdefault("onnx", onnx)
    params.setdefault("int8", int8)
    if spec:
        from vidroute.spec import TaskSpec

        params.setdefault("signals", TaskSpec.load(spec).signal_names)
    signals = resolve_signals(records, params.get("signals"))
    queries: list = []
    if augment_queries is not None:
        from vidroute.records import QueryRecord, read_records

        queries += read_records(augment_queries, QueryRecord)
    if augment:
        from vidroute.students.augment import synthetic_queries

        queries += synthetic_queries(augment, seed=seed, mix=augment_mix)
    if queries:
        from vidroute.students import augment as A

        if augment_labeller is not None:
            with console.status(f"labelling {len(queries)} augmentation queries with {augment_labeller} ..."):
                params["augment"] = A.model_labels(queries, augment_labeller, signals)
        else:
            params["augment"] = A.intent_prior_labels(queries, records, signals, temperature=augment_temperature)
        seeded = f" (seed {seed})" if augment else ""
        console.print(f"[dim]augmenting with {len(params['augment'])} of {len(queries)} synthetic queries{seeded}")
    elif augment_labeller is not None:
        raise ConfigError("--augment-labeller needs queries to label: give --augment N or --augment-queries FILE")
    with console.status(f"training {student} student on {len(records)} records ..."):
        card = train_student(
            records,
            out,
            student=student,
            seed=seed,
            val_fraction=val_fraction,
            data_source={
                "path": str(data),
                "sha256": source_sha,
                "excluded_files": [str(p) for p in exclude or []],
                "augment_queries": str(augment_queries) if augment_queries else None,
                "augment_generated": augment or None,
                "augment_mix": augment_mix if augment else None,
                "augment_temperature": augment_temperature if queries and augment_labeller is None else None,
                "augment_labeller": str(augment_labeller) if augment_labeller else None,
                "recipe": recipe,
            },
            **params,
        )
    typer.echo(json.dumps(card))


@app.command("export")
def export(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model folder from `vidroute train`.")],
    int8: Annotated[str, typer.Option(help="int8 ONNX: auto (only if it costs no val quality), yes, no.")] = "auto",
    optimize: Annotated[bool, typer.Option("--optimize/--no-optimize", help="Fuse attention/LayerNorm.")] = True,
) -> None:
    """(Re-)export an encoder student to ONNX (fp32 + int8), check parity with torch, pick the serving file."""
    from vidroute.students.onnx_export import export_onnx

    with console.status(f"exporting {model} to ONNX ..."):
        info = export_onnx(model, int8=int8, optimize=optimize)
    typer.echo(json.dumps(info))
