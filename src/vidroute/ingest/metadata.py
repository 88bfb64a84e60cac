"""File-level metadata: container tags, an optional `<stem>.json` sidecar, or a row of a CSV that lists many files."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vidroute.errors import DataFormatError

log = logging.getLogger(__name__)

CSV_COLUMNS = ("file", "title", "description", "people", "genre", "date", "tags")


def _split_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        parts = re.split(r"[;|,]", value) if any(c in value for c in ";|,") else [value]
        return [p.strip() for p in parts if p.strip()]
    if isinstance(value, (list, tuple)):
        if not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of strings")
        return [v.strip() for v in value if v.strip()]
    raise ValueError("must be a string or a list of strings")


def normalise_date(value: Any) -> str:
    """ISO date text: YYYY, YYYY-MM or YYYY-MM-DD (a full timestamp keeps its date part); "" when empty."""
    if value is None or value == "":
        return ""
    if isinstance(value, int) and 1000 <= value <= 9999:
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    text = str(value).strip()
    if re.fullmatch(r"\d{4}", text):
        return text
    if re.fullmatch(r"\d{4}-\d{2}", text):
        dt.date.fromisoformat(text + "-01")  # validates the month
        return text
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date (YYYY, YYYY-MM or YYYY-MM-DD)") from None


class SegmentNote(BaseModel):
    """A time-ranged note from a sidecar: what is seen, heard or said there, written by a person or a tool."""

    model_config = ConfigDict(extra="forbid")

    start: float = Field(ge=0)
    end: float = Field(gt=0)
    description: str = ""  # general caption of the moment
    visual: str = ""  # what is on screen
    audio: str = ""  # what is heard (not speech): "dog barking", "rain"
    people: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @field_validator("people", "tags", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> list[str]:
        return _split_list(v)

    @model_validator(mode="after")
    def _ordered(self) -> SegmentNote:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self


class MediaMetadata(BaseModel):
    """What a sidecar or CSV row may say about a file; unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")

    title: str = ""
    description: str = ""
    people: list[str] = Field(default_factory=list)
    genre: str = ""
    date: str = ""
    tags: list[str] = Field(default_factory=list)
    language: str = ""
    segments: list[SegmentNote] = Field(default_factory=list)

    @field_validator("people", "tags", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> list[str]:
        return _split_list(v)

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, v: Any) -> str:
        return normalise_date(v)

    @field_validator("title", "description", "genre", "language", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, (int, float)):
            return str(v)
        return v

    def merged_over(self, base: MediaMetadata) -> MediaMetadata:
        """This metadata, with empty fields filled from `base`."""
        data = self.model_dump()
        for key, value in base.model_dump().items():
            if not data.get(key):
                data[key] = value
        return MediaMetadata.model_validate(data)

    def notes_for(self, start: float, end: float) -> list[SegmentNote]:
        return [n for n in self.segments if n.end > start and n.start < end]


def _validation_message(source: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        parts.append(f"field {loc!r}: {err['msg']}")
    return f"{source}: invalid metadata: " + "; ".join(parts)


def parse_metadata(data: Any, *, source: str) -> MediaMetadata:
    if not isinstance(data, dict):
        raise DataFormatError(f"{source}: metadata must be a JSON object, got {type(data).__name__}")
    try:
        return MediaMetadata.model_validate(data)
    except ValidationError as exc:
        raise DataFormatError(_validation_message(source, exc)) from exc


def read_sidecar(path: Path | str) -> MediaMetadata:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read ({exc})") from exc
    return parse_metadata(data, source=str(path))


def find_sidecar(media: Path) -> Path | None:
    """`<stem>.json` or `<name>.json` beside the media file (`clip.json` or `clip.mp4.json`)."""
    for candidate in (media.with_suffix(".json"), media.with_name(media.name + ".json")):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=8)
def _read_csv_cached(path: str, mtime_ns: int) -> dict[str, MediaMetadata]:
    rows: dict[str, MediaMetadata] = {}
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"{path}: cannot read metadata CSV ({exc})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if "file" not in columns:
        raise DataFormatError(f"{path}: metadata CSV needs a 'file' column; columns are {columns}")
    unknown = sorted(set(columns) - set(CSV_COLUMNS))
    if unknown:
        raise DataFormatError(f"{path}: unknown column(s) {unknown}; allowed: {list(CSV_COLUMNS)}")
    for line_no, row in enumerate(reader, start=2):
        clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str) or v is None}
        name = clean.pop("file", "")
        if not name:
            raise DataFormatError(f"{path}: line {line_no}: empty 'file' value")
        rows[name] = parse_metadata(clean, source=f"{path}: line {line_no} ({name})")
    return rows


def read_metadata_csv(path: Path | str) -> dict[str, MediaMetadata]:
    """Rows keyed by the `file` column (a file name or a path relative to the CSV)."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: metadata CSV not found")
    return _read_csv_cached(str(path.resolve()), path.stat().st_mtime_ns)


def _csv_row_for(media: Path, csv_path: Path) -> MediaMetadata | None:
    rows = read_metadata_csv(csv_path)
    media_abs = media.resolve()
    for name, meta in rows.items():
        if (csv_path.parent / name).resolve() == media_abs:
            return meta
    return rows.get(media.name)


def humanise_stem(stem: str) -> str:
    """`his_girl-friday` -> `his girl friday`: a file name as a readable default title."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-.]+", " ", stem)).strip()


def from_container_tags(tags: dict[str, str]) -> MediaMetadata:
    """Title, description, people, genre and date from common container tags (mp4/mkv/id3/vorbis names)."""
    t = {k.lower(): v.strip() for k, v in tags.items() if isinstance(v, str)}
    date = ""
    for key in ("date", "year", "creation_time", "date_released", "date_recorded"):
        if t.get(key):
            try:
                date = normalise_date(t[key])
                break
            except ValueError:
                continue
    people = _split_list(t.get("artist", "")) + _split_list(t.get("album_artist", ""))
    return MediaMetadata(
        title=t.get("title", ""),
        description=t.get("description") or t.get("comment") or t.get("synopsis") or "",
        people=list(dict.fromkeys(people)),
        genre=t.get("genre", ""),
        date=date,
    )


def load_metadata(
    media: Path, *, tags: dict[str, str] | None = None, csv_path: Path | None = None, use_sidecar: bool = True
) -> MediaMetadata:
    """Merge, highest priority first: `<stem>.json` sidecar, the CSV row, container tags, the file name as title."""
    layers: list[MediaMetadata] = []
    if use_sidecar:
        sidecar = find_sidecar(media)
        if sidecar is not None:
            layers.append(read_sidecar(sidecar))
    if csv_path is not None:
        row = _csv_row_for(media, csv_path)
        if row is not None:
            layers.append(row)
    layers.append(from_container_tags(tags or {}))
    layers.append(MediaMetadata(title=humanise_stem(media.stem)))
    merged = layers[-1]
    for layer in reversed(layers[:-1]):
        merged = layer.merged_over(merged)
    return merged


def metadata_text(meta: MediaMetadata, *, notes: Sequence[SegmentNote] = (), extra_people: Sequence[str] = ()) -> str:
    """One line for a text encoder: title, description, people, genre, date and tags of a segment."""
    parts = [meta.title]
    descriptions = [meta.description, *(n.description for n in notes)]
    parts += [d for d in descriptions if d]
    people = list(dict.fromkeys([*meta.people, *extra_people, *(p for n in notes for p in n.people)]))
    if people:
        parts.append("People: " + ", ".join(people))
    if meta.genre:
        parts.append("Genre: " + meta.genre)
    if meta.date:
        parts.append("Date: " + meta.date)
    tags = list(dict.fromkeys([*meta.tags, *(t for n in notes for t in n.tags)]))
    if tags:
        parts.append("Tags: " + ", ".join(tags))
    return ". ".join(p.strip().rstrip(".") for p in parts if p and p.strip())
