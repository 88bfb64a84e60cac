"""Data contracts shared by every stage (queries, labels, failures, manifests) and safe JSONL reading/writing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from vidroute.errors import DataFormatError

SPLITS = ("train", "val", "test")
T = TypeVar("T", bound=BaseModel)


class QueryRecord(BaseModel):
    """One search query. `intent` is the generator's category (visual/audio/transcription/metadata/mixed)."""

    id: str
    query: str
    intent: str | None = None
    split: str | None = None
    source: str | None = None


class TeacherInfo(BaseModel):
    """Where a label came from: enough to reproduce or audit it."""

    backend: str  # gguf | openai | bedrock | import:bedrock | ...
    model_id: str
    prompt_sha256: str | None = None
    temperature: float | None = None
    mode: str = "json"  # json | next_token | imported


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            usd=self.usd + other.usd,
        )


class LabelRecord(QueryRecord):
    """A query with the teacher's soft label: `weights` is the mean of the valid `samples`."""

    weights: dict[str, float]
    reasoning: str | None = None
    samples: list[dict[str, float]] = Field(default_factory=list)
    teacher: TeacherInfo
    usage: Usage = Field(default_factory=Usage)
    latency_ms: float | None = None


class FailureRecord(QueryRecord):
    """A query the teacher could not label validly; `raw` keeps its last answer, never silently dropped."""

    error: str
    raw: str = ""
    attempts: int = 0
    teacher: TeacherInfo | None = None


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield JSON objects; a torn last line (from a killed writer) is skipped, any other bad line is an error."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"file not found: {path}")
    with path.open("rb") as fh:
        lines = fh.read().split(b"\n")
    last = len(lines) - 1
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if i == last:  # unterminated final line: an interrupted append, not corruption
                continue
            raise DataFormatError(f"{path}:{i + 1}: not valid JSON ({exc})") from exc
        if not isinstance(obj, dict):
            raise DataFormatError(f"{path}:{i + 1}: expected a JSON object, got {type(obj).__name__}")
        yield obj


def read_records(path: str | Path, model: type[T]) -> list[T]:
    out: list[T] = []
    for i, obj in enumerate(read_jsonl(path)):
        try:
            out.append(model.model_validate(obj))
        except ValidationError as exc:
            raise DataFormatError(f"{path}: record {i + 1} is not a valid {model.__name__}: {exc}") from exc
    return out


def write_jsonl(path: str | Path, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
    """Write rows atomically (temp file + rename) so a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(_dumps(row) + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return n


class JsonlAppender:
    """Append-only JSONL writer that flushes and fsyncs every line, for resumable runs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._fh = self.path.open("a", encoding="utf-8")

    def _repair_tail(self) -> None:
        # A kill -9 mid-write leaves a partial last line; cut it so the next append starts on a fresh line.
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with self.path.open("rb+") as fh:
            data = fh.read()
            if data.endswith(b"\n"):
                return
            cut = data.rfind(b"\n") + 1
            fh.truncate(cut)

    def write(self, row: BaseModel | dict[str, Any]) -> None:
        self._fh.write(_dumps(row) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def manifest_path(data_path: str | Path) -> Path:
    """Manifest path: `labels.jsonl` -> `labels.manifest.json`, `x.parquet` -> `x.parquet.manifest.json`."""
    p = Path(data_path)
    # Only .jsonl drops its suffix, so `x.jsonl` and `x.parquet` in one folder keep separate manifests.
    stem = p.name[: -len(".jsonl")] if p.name.endswith(".jsonl") else p.name
    return p.with_name(stem + ".manifest.json")


def write_manifest(data_path: str | Path, manifest: dict[str, Any]) -> Path:
    path = manifest_path(data_path)
    body = {"file": Path(data_path).name, "written_at": utc_now(), **manifest}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_manifest(data_path: str | Path) -> dict[str, Any] | None:
    path = manifest_path(data_path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: manifest is not valid JSON ({exc})") from exc


def _dumps(row: BaseModel | dict[str, Any]) -> str:
    if isinstance(row, BaseModel):
        return row.model_dump_json(exclude_none=False)
    return json.dumps(row, ensure_ascii=False)
