"""Dataset import/export: Amazon Bedrock conversation JSONL, `{query, reference}` eval rows, OpenAI chat JSONL, Parquet.

Everything is converted to and from vidroute's `LabelRecord`. Import keeps provenance: each record's `source` is
the file name, its id is a stable hash of (line number, query) so repeated queries stay distinct, `samples`
holds the weights exactly as written, and the manifest keeps the source's sha256 and the original system
prompt(s), so a Bedrock file re-exported from an import reproduces the same system, user and assistant text.

Example:
    >>> from vidroute.formats import import_bedrock, export_bedrock          # doctest: +SKIP
    >>> recs = import_bedrock("premier_labels.jsonl")
    >>> export_bedrock(recs, "train.jsonl")
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidroute import __version__
from vidroute.errors import ConfigError, DataFormatError, InvalidTeacherOutput
from vidroute.labels import file_sha256, stable_id
from vidroute.records import LabelRecord, TeacherInfo, read_manifest, write_jsonl, write_manifest
from vidroute.spec import TaskSpec
from vidroute.teachers.base import parse_weights

log = logging.getLogger(__name__)

BEDROCK_SCHEMA = "bedrock-conversation-2024"
BEDROCK_MAX_RECORDS = 15_000  # Bedrock distillation jobs accept at most this many records
DEFAULT_MODEL_ID = "amazon.nova-premier-v1:0"  # the reference system's teacher
DEFAULT_TEMPERATURE = 0.3  # the reference system labelled at this temperature
IMPORT_FORMATS = ("auto", "bedrock", "eval", "labels", "parquet")
EXPORT_FORMATS = ("bedrock", "openai", "parquet", "eval", "labels")
MAX_SKIPPED_IN_MANIFEST = 100


@dataclass
class Dataset:
    """Label records plus where they came from."""

    records: list[LabelRecord]
    format: str
    source: Path | None = None
    source_sha256: str | None = None
    # sha256 -> text of every system prompt seen, so exports can reproduce them exactly.
    system_prompts: dict[str, str] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"line": n, "error": "..."}
    skipped_count: int = 0
    upstream: dict[str, Any] | None = None  # the source file's own manifest, when it had one

    def manifest(self) -> dict[str, Any]:
        teachers = Counter(json.dumps(r.teacher.model_dump(), sort_keys=True) for r in self.records)
        return {
            "kind": "labels",
            "vidroute_version": __version__,
            "imported_from": {
                "format": self.format,
                "path": str(self.source) if self.source else None,
                "file": self.source.name if self.source else None,
                "sha256": self.source_sha256,
            },
            "counts": {
                "labelled": len(self.records),
                "unique_queries": len({r.query for r in self.records}),
                "skipped_invalid": self.skipped_count,
            },
            "skipped": self.skipped[:MAX_SKIPPED_IN_MANIFEST],
            "teachers": [{**json.loads(k), "records": n} for k, n in teachers.most_common()],
            "system_prompts": self.system_prompts,
            "upstream_manifest": self.upstream,
        }


# --------------------------------------------------------------------------------------------------- reading


def _lines(path: Path, *, torn_tail_ok: bool = False) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, object, error) per non-blank line. Strict, unlike `read_jsonl`: a bad line is an error,
    except, with `torn_tail_ok`, an unterminated last line (what a killed labelling run can leave)."""
    if not path.exists():
        raise DataFormatError(f"file not found: {path}")
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                if torn_tail_ok and not raw.endswith(b"\n"):
                    log.warning("%s:%d: skipped an unterminated last line (an interrupted write)", path, n)
                    continue
                yield n, None, f"not valid JSON ({exc})"
                continue
            if not isinstance(obj, dict):
                yield n, None, f"expected a JSON object, got {type(obj).__name__}"
                continue
            yield n, obj, None


def detect_format(path: str | Path) -> str:
    """Guess a file's format from its extension or first record: bedrock, eval, labels or parquet."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    for n, obj, err in _lines(path):
        if obj is None:
            raise DataFormatError(f"{path}:{n}: cannot detect the format: {err}")
        if "schemaVersion" in obj or ("messages" in obj and "system" in obj):
            return "bedrock"
        if "reference" in obj and "query" in obj:
            return "eval"
        if "weights" in obj and "query" in obj:
            return "labels"
        raise DataFormatError(
            f"{path}:{n}: cannot detect the format from keys {sorted(obj)}; pass --format bedrock|eval|labels"
        )
    raise DataFormatError(f"{path}: empty file, nothing to import")


def _texts(content: Any, where: str) -> str:
    if not isinstance(content, list) or not content:
        raise ValueError(f"{where} must be a non-empty list of {{'text': ...}} blocks")
    parts = []
    for block in content:
        if not isinstance(block, dict) or not isinstance(block.get("text"), str):
            raise ValueError(f"{where} holds a block without a 'text' string: {block!r:.100}")
        parts.append(block["text"])
    return "\n".join(parts)


def _as_written(text: str, signals: list[str]) -> dict[str, float]:
    """The weights exactly as the teacher wrote them (before renormalising); `text` already passed parse_weights."""
    obj = json.loads(text[text.find("{") : text.rfind("}") + 1])
    return {s: float(obj[s]) for s in signals}


def _signals(spec: TaskSpec | None) -> list[str]:
    return (spec or TaskSpec.load()).signal_names


def _imported(
    prefix: str,
    n: int,
    query: str,
    path: Path,
    weights: dict[str, float],
    reasoning: str | None,
    raw: str,
    signals: list[str],
    teacher: TeacherInfo,
) -> LabelRecord:
    """One imported label; the answer as written is kept as its only sample, so exports can reproduce it."""
    return LabelRecord(
        id=stable_id(prefix, n, query),
        query=query,
        source=path.name,
        weights=weights,
        reasoning=reasoning,
        samples=[_as_written(raw, signals)],
        teacher=teacher,
    )


def read_bedrock(
    path: str | Path,
    *,
    spec: TaskSpec | None = None,
    model_id: str = DEFAULT_MODEL_ID,
    temperature: float | None = DEFAULT_TEMPERATURE,
    skip_invalid: bool = False,
) -> Dataset:
    """Read `bedrock-conversation-2024` JSONL (system, user query, assistant JSON weights) into label records.

    Every record must have one user turn followed by one assistant turn whose text passes `parse_weights` for the
    spec's signals. A bad record raises `DataFormatError` naming its line, or is skipped and counted when
    `skip_invalid` is set.
    """
    path = Path(path)
    signals = _signals(spec)
    ds = Dataset(records=[], format="bedrock", source=path, source_sha256=file_sha256(path))
    for n, obj, err in _lines(path):
        try:
            if obj is None:
                raise ValueError(err)
            version = obj.get("schemaVersion", BEDROCK_SCHEMA)
            if version != BEDROCK_SCHEMA:
                raise ValueError(f"schemaVersion is {version!r}, expected {BEDROCK_SCHEMA!r}")
            system = _texts(obj["system"], "'system'") if obj.get("system") else ""
            msgs = obj.get("messages")
            if not isinstance(msgs, list) or [m.get("role") if isinstance(m, dict) else None for m in msgs] != [
                "user",
                "assistant",
            ]:
                raise ValueError("'messages' must be exactly one user turn then one assistant turn")
            query = _texts(msgs[0].get("content"), "the user turn's content")
            answer = _texts(msgs[1].get("content"), "the assistant turn's content")
            weights, reasoning = parse_weights(answer, signals)
        except InvalidTeacherOutput as exc:
            err = f"assistant answer is not valid weights: {exc}"
        except (ValueError, KeyError, AttributeError) as exc:
            err = str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}"
        else:
            sha = TaskSpec.sha256(system)
            ds.system_prompts.setdefault(sha, system)
            teacher = TeacherInfo(
                backend="import:bedrock", model_id=model_id, prompt_sha256=sha, temperature=temperature, mode="imported"
            )
            ds.records.append(_imported("b-", n, query, path, weights, reasoning, answer, signals, teacher))
            continue
        _bad(ds, path, n, err, skip_invalid)
    return _nonempty(ds)


def read_eval(
    path: str | Path,
    *,
    spec: TaskSpec | None = None,
    model_id: str = DEFAULT_MODEL_ID,
    temperature: float | None = DEFAULT_TEMPERATURE,
    skip_invalid: bool = False,
) -> Dataset:
    """Read `{query, reference}` rows, where `reference` is a JSON string (or object) of the signal weights."""
    path = Path(path)
    signals = _signals(spec)
    ds = Dataset(records=[], format="eval", source=path, source_sha256=file_sha256(path))
    for n, obj, err in _lines(path):
        try:
            if obj is None:
                raise ValueError(err)
            query, ref = obj.get("query"), obj.get("reference")
            if not isinstance(query, str) or not query:
                raise ValueError("missing or empty 'query' string")
            if isinstance(ref, dict):
                ref = json.dumps(ref)
            if not isinstance(ref, str):
                raise ValueError("missing 'reference' (a JSON string of the signal weights)")
            weights, reasoning = parse_weights(ref, signals)
        except InvalidTeacherOutput as exc:
            err = f"reference is not valid weights: {exc}"
        except ValueError as exc:
            err = str(exc)
        else:
            teacher = TeacherInfo(backend="import:eval", model_id=model_id, temperature=temperature, mode="imported")
            ds.records.append(_imported("e-", n, query, path, weights, reasoning, ref, signals, teacher))
            continue
        _bad(ds, path, n, err, skip_invalid)
    return _nonempty(ds)


def read_labels(path: str | Path) -> Dataset:
    """Read vidroute's own label JSONL, with the system prompts its manifest kept (for lossless re-export)."""
    path = Path(path)
    recs: list[LabelRecord] = []
    for n, obj, err in _lines(path, torn_tail_ok=True):
        if obj is None:
            raise DataFormatError(f"{path}:{n}: {err}")
        try:
            recs.append(LabelRecord.model_validate(obj))
        except ValidationError as exc:
            raise DataFormatError(f"{path}:{n}: not a valid label record: {exc}") from exc
    man = read_manifest(path) or {}
    prompts = man.get("system_prompts") if isinstance(man.get("system_prompts"), dict) else {}
    return _nonempty(
        Dataset(
            records=recs,
            format="labels",
            source=path,
            source_sha256=file_sha256(path),
            system_prompts=prompts,
            upstream=man or None,
        )
    )


def read_parquet(path: str | Path) -> Dataset:
    """Read a Parquet file written by `export_parquet` back into label records."""
    pq = _pyarrow_parquet()
    path = Path(path)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for unreadable files
        raise DataFormatError(f"{path}: not a readable Parquet file ({exc})") from exc
    meta = (table.schema.metadata or {}).get(b"vidroute")
    man = json.loads(meta) if meta else {}
    signals = man.get("signals") or [c[len("weight_") :] for c in table.column_names if c.startswith("weight_")]
    recs = []
    for n, row in enumerate(table.to_pylist(), start=1):
        try:
            recs.append(
                LabelRecord(
                    id=row["id"],
                    query=row["query"],
                    intent=row.get("intent"),
                    split=row.get("split"),
                    source=row.get("source"),
                    weights={s: row[f"weight_{s}"] for s in signals},
                    reasoning=row.get("reasoning"),
                    samples=json.loads(row.get("samples_json") or "[]"),
                    teacher=TeacherInfo(
                        backend=row["teacher_backend"],
                        model_id=row["teacher_model_id"],
                        prompt_sha256=row.get("teacher_prompt_sha256"),
                        temperature=row.get("teacher_temperature"),
                        mode=row.get("teacher_mode") or "json",
                    ),
                    usage={
                        "input_tokens": row.get("input_tokens") or 0,
                        "output_tokens": row.get("output_tokens") or 0,
                        "usd": row.get("usd") or 0.0,
                    },
                    latency_ms=row.get("latency_ms"),
                )
            )
        except (KeyError, ValidationError, json.JSONDecodeError) as exc:
            raise DataFormatError(f"{path}: row {n} is not a vidroute label row: {exc}") from exc
    return _nonempty(
        Dataset(
            records=recs,
            format="parquet",
            source=path,
            source_sha256=file_sha256(path),
            system_prompts=man.get("system_prompts") or {},
            upstream=man or None,
        )
    )


def read_dataset(
    path: str | Path,
    format: str = "auto",
    *,
    spec: TaskSpec | None = None,
    model_id: str = DEFAULT_MODEL_ID,
    temperature: float | None = DEFAULT_TEMPERATURE,
    skip_invalid: bool = False,
) -> Dataset:
    """Read any supported file into a `Dataset`; `format="auto"` detects it."""
    if format not in IMPORT_FORMATS:
        raise ConfigError(f"unknown input format {format!r}; choose one of {', '.join(IMPORT_FORMATS)}")
    fmt = detect_format(path) if format == "auto" else format
    if fmt == "bedrock":
        return read_bedrock(path, spec=spec, model_id=model_id, temperature=temperature, skip_invalid=skip_invalid)
    if fmt == "eval":
        return read_eval(path, spec=spec, model_id=model_id, temperature=temperature, skip_invalid=skip_invalid)
    if fmt == "parquet":
        return read_parquet(path)
    return read_labels(path)


def import_bedrock(path: str | Path, **options: Any) -> list[LabelRecord]:
    """Label records from a Bedrock conversation JSONL file (options as for `read_bedrock`)."""
    return read_bedrock(path, **options).records


def import_eval(path: str | Path, **options: Any) -> list[LabelRecord]:
    """Label records from `{query, reference}` rows (options as for `read_eval`)."""
    return read_eval(path, **options).records


def import_file(path: str | Path, out: str | Path, format: str = "auto", **options: Any) -> Dataset:
    """Read `path` and write it as vidroute label JSONL at `out`, with a provenance manifest beside it."""
    ds = read_dataset(path, format, **options)
    write_jsonl(out, ds.records)
    write_manifest(out, ds.manifest())
    return ds


def _bad(ds: Dataset, path: Path, line: int, err: str | None, skip: bool) -> None:
    if not skip:
        raise DataFormatError(f"{path}:{line}: {err} (pass --skip-invalid to skip bad records)")
    ds.skipped_count += 1
    if len(ds.skipped) < MAX_SKIPPED_IN_MANIFEST:
        ds.skipped.append({"line": line, "error": err})
    log.warning("%s:%d skipped: %s", path, line, err)


def _nonempty(ds: Dataset) -> Dataset:
    if not ds.records:
        raise DataFormatError(f"{ds.source}: no valid records ({ds.skipped_count} skipped)")
    return ds


# --------------------------------------------------------------------------------------------------- writing


def round_weights(weights: dict[str, float], decimals: int = 2) -> dict[str, float]:
    """Round to `decimals` places so the rounded values still sum to exactly 1 (largest-remainder method).

    Example:
        >>> round_weights({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
        {'a': 0.34, 'b': 0.33, 'c': 0.33}
    """
    scale = 10**decimals
    total = sum(weights.values())
    if total <= 0:
        raise DataFormatError(f"weights sum to {total}, cannot normalise: {weights}")
    # round(..., 9) first so float noise (29.999999999999996) does not decide who gets the spare unit.
    exact = {k: round(v / total * scale, 9) for k, v in weights.items()}
    units = {k: math.floor(v) for k, v in exact.items()}
    spare = scale - sum(units.values())
    for k in sorted(exact, key=lambda k: exact[k] - units[k], reverse=True)[:spare]:
        units[k] += 1
    return {k: round(u / scale, decimals) for k, u in units.items()}


def answer_json(record: LabelRecord, *, decimals: int = 2, reasoning: bool = True) -> str:
    """The assistant answer a student should learn: the weights rounded to sum to 1, then the reasoning."""
    body: dict[str, Any] = dict(round_weights(record.weights, decimals))
    if reasoning and record.reasoning:
        body["reasoning"] = record.reasoning
    # ASCII escapes, as Python's json (and the reference system's files) write them: round trips stay byte-identical.
    return json.dumps(body)


def _system_for(record: LabelRecord, prompts: dict[str, str], default: str, override: str | None) -> str:
    if override is not None:
        return override
    # Imported records keep the prompt they were written with, so a round trip reproduces the file.
    if record.teacher.mode == "imported" and record.teacher.prompt_sha256 in prompts:
        return prompts[record.teacher.prompt_sha256]
    return default


def bedrock_row(record: LabelRecord, system: str, *, decimals: int = 2, reasoning: bool = True) -> dict[str, Any]:
    row: dict[str, Any] = {"schemaVersion": BEDROCK_SCHEMA}
    if system:
        row["system"] = [{"text": system}]
    row["messages"] = [
        {"role": "user", "content": [{"text": record.query}]},
        {"role": "assistant", "content": [{"text": answer_json(record, decimals=decimals, reasoning=reasoning)}]},
    ]
    return row


def openai_row(record: LabelRecord, system: str, *, decimals: int = 2, reasoning: bool = True) -> dict[str, Any]:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [
        {"role": "user", "content": record.query},
        {"role": "assistant", "content": answer_json(record, decimals=decimals, reasoning=reasoning)},
    ]
    return {"messages": msgs}


def eval_row(record: LabelRecord, *, decimals: int = 2) -> dict[str, Any]:
    return {"query": record.query, "reference": json.dumps(round_weights(record.weights, decimals))}


def export_records(
    records: Sequence[LabelRecord],
    out: str | Path,
    format: str,
    *,
    system_prompt: str | None = None,
    system_prompts: dict[str, str] | None = None,
    spec: TaskSpec | None = None,
    decimals: int = 2,
    reasoning: bool = True,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `records` in `format` (bedrock, openai, parquet, eval, labels) plus a manifest; returns the manifest.

    The system prompt is `system_prompt` when given; otherwise an imported record's original prompt (looked up
    in `system_prompts` by its sha256), otherwise the spec's student prompt.
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if not records:
        raise DataFormatError("nothing to export: no records")
    spec = spec or TaskSpec.load()
    signals = spec.signal_names
    for r in records:
        if set(r.weights) != set(signals):
            raise DataFormatError(
                f"record {r.id!r} has weights for {sorted(r.weights)}, the spec's signals are {signals}; "
                "pass the matching --spec"
            )
    out = Path(out)
    prompts = system_prompts or {}
    default = spec.render_student_prompt()
    used: Counter[str] = Counter()

    def system(r: LabelRecord) -> str:
        text = _system_for(r, prompts, default, system_prompt)
        used[text] += 1
        return text

    if format == "bedrock":
        if len(records) > BEDROCK_MAX_RECORDS:
            log.warning("%d records: Bedrock distillation jobs accept at most %d", len(records), BEDROCK_MAX_RECORDS)
        n = _write_rows(out, (bedrock_row(r, system(r), decimals=decimals, reasoning=reasoning) for r in records))
    elif format == "openai":
        n = _write_rows(out, (openai_row(r, system(r), decimals=decimals, reasoning=reasoning) for r in records))
    elif format == "eval":
        n = _write_rows(out, (eval_row(r, decimals=decimals) for r in records))
    elif format == "labels":
        n = write_jsonl(out, records)
    else:
        n = len(records)
    teachers = Counter(json.dumps(r.teacher.model_dump(), sort_keys=True) for r in records)
    manifest: dict[str, Any] = {
        "kind": f"export:{format}",
        "vidroute_version": __version__,
        "format": format,
        "signals": signals,
        "counts": {"records": n, "unique_queries": len({r.query for r in records})},
        "answer": None if format in ("parquet", "labels") else {"decimals": decimals, "reasoning": reasoning},
        "system_prompts": {TaskSpec.sha256(t): t for t in used},
        "system_prompt_counts": {TaskSpec.sha256(t): c for t, c in used.items()},
        "teachers": [{**json.loads(k), "records": c} for k, c in teachers.most_common()],
        "source": provenance,
    }
    if format in ("parquet", "labels"):
        manifest["system_prompts"] = dict(prompts)  # carried along so a later Bedrock export stays lossless
    if format == "parquet":
        _write_parquet(records, out, signals, manifest)
    write_manifest(out, manifest)
    return manifest


def _write_rows(path: Path, rows: Iterator[dict[str, Any]]) -> int:
    """Atomic JSONL write with json's default ASCII escaping (what Bedrock's own tooling and samples use)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


def _pyarrow_parquet() -> Any:
    from vidroute.errors import require

    require("pyarrow", "all")
    import pyarrow.parquet as pq

    return pq


def _write_parquet(
    records: Sequence[LabelRecord],
    out: Path,
    signals: list[str],
    manifest: dict[str, Any],
) -> None:
    import pyarrow as pa

    pq = _pyarrow_parquet()
    cols: dict[str, list[Any]] = {
        "id": [r.id for r in records],
        "query": [r.query for r in records],
        "intent": [r.intent for r in records],
        "split": [r.split for r in records],
        "source": [r.source for r in records],
    }
    for s in signals:
        cols[f"weight_{s}"] = [float(r.weights[s]) for r in records]
    cols["dominant"] = [max(signals, key=lambda s, r=r: r.weights[s]) for r in records]
    cols["reasoning"] = [r.reasoning for r in records]
    cols["n_samples"] = [len(r.samples) for r in records]
    cols["samples_json"] = [json.dumps(r.samples) for r in records]
    cols["teacher_backend"] = [r.teacher.backend for r in records]
    cols["teacher_model_id"] = [r.teacher.model_id for r in records]
    cols["teacher_prompt_sha256"] = [r.teacher.prompt_sha256 for r in records]
    cols["teacher_temperature"] = [r.teacher.temperature for r in records]
    cols["teacher_mode"] = [r.teacher.mode for r in records]
    cols["input_tokens"] = [r.usage.input_tokens for r in records]
    cols["output_tokens"] = [r.usage.output_tokens for r in records]
    cols["usd"] = [r.usage.usd for r in records]
    cols["latency_ms"] = [r.latency_ms for r in records]
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("query", pa.string()),
            ("intent", pa.string()),
            ("split", pa.string()),
            ("source", pa.string()),
            *[(f"weight_{s}", pa.float64()) for s in signals],
            ("dominant", pa.string()),
            ("reasoning", pa.string()),
            ("n_samples", pa.int32()),
            ("samples_json", pa.string()),
            ("teacher_backend", pa.string()),
            ("teacher_model_id", pa.string()),
            ("teacher_prompt_sha256", pa.string()),
            ("teacher_temperature", pa.float64()),
            ("teacher_mode", pa.string()),
            ("input_tokens", pa.int64()),
            ("output_tokens", pa.int64()),
            ("usd", pa.float64()),
            ("latency_ms", pa.float64()),
        ],
        metadata={b"vidroute": json.dumps(manifest).encode()},
    )
    table = pa.Table.from_pydict(cols, schema=schema)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)


def export_file(
    path: str | Path,
    out: str | Path,
    format: str,
    *,
    in_format: str = "auto",
    split: str | None = None,
    spec: TaskSpec | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Read any supported file (`in_format`, default auto) and export it; `split` keeps only that split."""
    ds = read_dataset(path, in_format, spec=spec)
    records = ds.records if split is None else [r for r in ds.records if r.split == split]
    if not records:
        raise DataFormatError(f"{path}: no records with split={split!r}")
    provenance = {
        "path": str(ds.source),
        "file": ds.source.name if ds.source else None,
        "format": ds.format,
        "sha256": ds.source_sha256,
        "split": split,
        "records_in": len(ds.records),
        "upstream_manifest": ds.upstream,
    }
    return export_records(
        records, out, format, spec=spec, system_prompts=ds.system_prompts, provenance=provenance, **options
    )
