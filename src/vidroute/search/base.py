"""The shared half of every store backend: config, validation, and search as candidate legs + exact rescoring.

A backend implements four primitives — write a video's rows, run one vector leg over the concatenated vectors,
run one BM25 leg, and read/write its config — and inherits `search`, which is identical for every backend:

- raw fusion without text: one search of the concatenated space with the weighted concatenated query (exact under
  flat search), then each hit's per-signal cosines are recomputed from its stored vector;
- otherwise: the union of the fused top-K, each weighted signal's top-K (minmax/rrf only) and BM25's top-K is
  rescored exactly on every signal in numpy, normalised per leg across the union and fused (see `fusion`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from vidroute.errors import StoreError
from vidroute.search.fusion import (
    BM25,
    FUSIONS,
    MIN_WEIGHT,
    TEXT_SIGNAL,
    Layout,
    concat_query,
    effective_weights,
    fuse,
    leg_scores,
    leg_weights,
    normalise_query,
)
from vidroute.search.types import Filters, SearchHit, Segment

log = logging.getLogger(__name__)

CONFIG_NAME = "vidroute_store.json"
CONFIG_FORMAT = 1

# Payload columns every backend keeps beside the vectors (the SearchHit fields plus the filterable ones).
FIELDS = ("segment_id", "video_id", "path", "start", "end", "transcript", "title", "keyframe")
PAYLOAD = (*FIELDS[:7], "description", "people", "genre", "date", "tags", "keyframe")


class StoreConfig(BaseModel):
    """What a store was built with, persisted beside the data so `SearchEngine.open` rebuilds the same embedders."""

    format: int = CONFIG_FORMAT
    layout: Layout
    embedders: dict[str, str | None] = Field(default_factory=dict)  # signal -> embedder spec the registry rebuilds
    text_signal: str = TEXT_SIGNAL
    extra: dict[str, Any] = Field(default_factory=dict)


@dataclass
class Candidates:
    """Rows one leg returned: payload dicts, their concatenated vectors (n, D), and BM25 scores when a text leg."""

    rows: list[dict[str, Any]]
    vectors: np.ndarray
    bm25: np.ndarray | None = None


def segment_text(seg: Segment) -> str:
    """The text BM25 searches: metadata fields and the transcript."""
    parts = [seg.title, seg.description, " ".join(seg.people), seg.genre, " ".join(seg.tags), seg.transcript]
    return "\n".join(p for p in parts if p)


def date_bounds(filters: Filters | None) -> tuple[str | None, str | None]:
    """(inclusive lower, exclusive upper) ISO date bounds; `date_to` covers its whole day, month or year.

    Partial dates are allowed: "2020" means 2020-01-01 … 2020-12-31, "2020-03" the whole of March. Stored dates may be
    dates or timestamps: ISO strings compare correctly as strings against these bounds.
    """
    if filters is None:
        return None, None
    lo = hi = None
    if filters.date_from is not None:
        lo = _parse_date(filters.date_from, "date_from").isoformat()
    if filters.date_to is not None:
        d = _parse_date(filters.date_to, "date_to")
        n = len(filters.date_to.strip())
        if n == 4:
            hi = dt.date(d.year + 1, 1, 1)
        elif n == 7:
            hi = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        else:
            hi = d + dt.timedelta(days=1)
        hi = hi.isoformat()
    if lo is not None and hi is not None and lo >= hi:
        raise StoreError(f"date_from={filters.date_from!r} is after date_to={filters.date_to!r}")
    return lo, hi


def _parse_date(value: str, name: str) -> dt.date:
    v = value.strip()
    try:
        if re.fullmatch(r"\d{4}", v):
            return dt.date(int(v), 1, 1)
        if re.fullmatch(r"\d{4}-\d{2}", v):
            return dt.date(int(v[:4]), int(v[5:]), 1)
        return dt.date.fromisoformat(v[:10])
    except ValueError as exc:
        raise StoreError(f"{name}={value!r} is not an ISO date; use YYYY-MM-DD (or YYYY-MM, YYYY)") from exc


def check_filters(filters: Filters | None) -> Filters | None:
    """Validate filter values once, before any backend turns them into a query."""
    date_bounds(filters)
    return filters


def matches(row: dict[str, Any], filters: Filters | None) -> bool:
    """Python reference semantics of `Filters` (the memory store uses it; SQL and payload filters mirror it)."""
    if filters is None:
        return True
    lo, hi = date_bounds(filters)
    date = row.get("date") or ""
    if (lo is not None or hi is not None) and not date:
        return False
    if (lo is not None and date < lo) or (hi is not None and date >= hi):
        return False
    if filters.people:
        wanted = {p.casefold() for p in filters.people}
        if not wanted & {p.casefold() for p in row.get("people") or []}:
            return False
    if filters.genre is not None and (row.get("genre") or "").casefold() != filters.genre.casefold():
        return False
    return filters.video_id is None or row.get("video_id") == filters.video_id


class FusingStore(ABC):
    """Base class of the backends: implements `Store.search` and validation over four primitives."""

    backend = "abstract"

    def __init__(self, *, candidates: int = 100, bm25_share: float = 0.5, min_weight: float = MIN_WEIGHT) -> None:
        self.candidates = candidates
        self.bm25_share = bm25_share
        self.min_weight = min_weight
        self._config: StoreConfig | None = None

    # ---- config -------------------------------------------------------------------------------------------------
    @property
    def config(self) -> StoreConfig | None:
        return self._config

    @property
    def layout(self) -> Layout | None:
        return self._config.layout if self._config else None

    @property
    def signals(self) -> list[str]:
        return list(self.layout.signals) if self.layout else []

    def configure(self, config: StoreConfig) -> None:
        """Set the layout of a new store, or check that `config` matches the existing one (clear error if not)."""
        if self._config is None:
            self._write_config(config)
            self._config = config
            return
        old = self._config.layout
        if old.signals != config.layout.signals or old.dims != config.layout.dims:
            raise StoreError(
                f"store {self.uri} holds signals {old.signals} with dims {old.dims}, but the embedders give "
                f"{config.layout.signals} with dims {config.layout.dims}; use the same embedders or a new store"
            )
        if config.embedders and self._config.embedders != config.embedders:
            log.warning(
                "store %s was built with embedders %s, now %s", self.uri, self._config.embedders, config.embedders
            )

    # ---- primitives a backend implements ------------------------------------------------------------------------
    uri: str = ""

    @abstractmethod
    def _write_config(self, config: StoreConfig) -> None: ...

    @abstractmethod
    def _replace(self, video_id: str, rows: list[dict[str, Any]], vectors: np.ndarray, masks: list[int]) -> None:
        """Replace every row of `video_id` with `rows` (validated already)."""

    @abstractmethod
    def _vector_leg(self, query: np.ndarray, k: int, filters: Filters | None, *, signal: str | None) -> Candidates:
        """Top-k by inner product with the concatenated `query` (`signal` names the one non-zero slot, if any)."""

    @abstractmethod
    def _text_leg(self, text: str, k: int, filters: Filters | None) -> Candidates: ...

    @abstractmethod
    def delete_video(self, video_id: str) -> int: ...

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def has_video(self, video_id: str) -> bool: ...

    @abstractmethod
    def stats(self) -> dict[str, Any]: ...

    def _ann_legs(self, legs: list[tuple[np.ndarray, str]], k: int, filters: Filters | None) -> list[Candidates]:
        """Each (concatenated query, signal) leg's top-k through that signal's ANN index, run concurrently."""
        return list(_pool().map(lambda a: self._vector_leg(a[0], k, filters, signal=a[1]), legs))

    def _complete_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The payload of the final hits, for backends whose legs return only ids and vectors (identity here)."""
        return rows

    @property
    def approximate(self) -> bool:
        """True when vector legs go through per-signal ANN indexes (the candidate union may miss exact hits)."""
        return False

    def warm(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Build in-memory search structures now rather than on the first query (servers call it at start-up)."""

    def optimize(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Bring indexes up to date after bulk writes (no-op where the backend does it itself)."""

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release files and clients."""

    # ---- writes -------------------------------------------------------------------------------------------------
    def upsert_video(self, video_id: str, segments: list[Segment]) -> None:
        """Replace every segment of `video_id` with `segments`; invalid input raises StoreError and writes nothing."""
        if self.layout is None:
            raise StoreError(f"store {self.uri} has no layout yet; configure it (SearchEngine does) before writing")
        if not video_id:
            raise StoreError("video_id must be a non-empty string")
        rows, vecs, masks = [], [], []
        seen: set[str] = set()
        for seg in segments:
            if seg.video_id != video_id:
                raise StoreError(f"segment {seg.segment_id!r} belongs to video {seg.video_id!r}, not {video_id!r}")
            if seg.segment_id in seen:
                raise StoreError(f"duplicate segment_id {seg.segment_id!r} in video {video_id!r}")
            if not (np.isfinite(seg.start) and np.isfinite(seg.end)) or seg.end < seg.start:
                raise StoreError(f"segment {seg.segment_id!r} has start={seg.start} > end={seg.end}")
            seen.add(seg.segment_id)
            vec, mask = self.layout.pack(seg.vectors)
            rows.append(self._row(seg))
            vecs.append(vec)
            masks.append(mask)
        packed = np.stack(vecs) if vecs else np.zeros((0, self.layout.total_dim), dtype=np.float32)
        try:
            self._replace(video_id, rows, packed, masks)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.backend} failed to write video {video_id!r} to {self.uri}: {exc}") from exc

    @staticmethod
    def _row(seg: Segment) -> dict[str, Any]:
        return {
            "segment_id": seg.segment_id,
            "video_id": seg.video_id,
            "path": seg.path,
            "start": float(seg.start),
            "end": float(seg.end),
            "transcript": seg.transcript,
            "title": seg.title,
            "description": seg.description,
            "people": list(seg.people),
            "genre": seg.genre,
            "date": seg.date,
            "tags": list(seg.tags),
            "keyframe": seg.keyframe,
            "text": segment_text(seg),
        }

    # ---- search -------------------------------------------------------------------------------------------------
    def plan(
        self, query_vectors: dict[str, np.ndarray], weights: dict[str, float] | None, *, text: str | None
    ) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, float]]:
        """(usable normalised query vectors, effective signal weights, leg weights) for one query."""
        layout = self.layout
        if layout is None:
            return {}, {}, {}
        q = normalise_query(layout, query_vectors)
        ts = self._config.text_signal if self._config else TEXT_SIGNAL
        use_text = bool(text and text.strip()) and ts in layout.signals
        usable = [s for s in layout.signals if s in q or (use_text and s == ts)]
        eff = effective_weights(weights, usable, min_weight=self.min_weight)
        legs = leg_weights(eff, text=use_text, has_text_vector=ts in q, bm25_share=self.bm25_share, text_signal=ts)
        return q, eff, legs

    def search(
        self,
        query_vectors: dict[str, np.ndarray],
        weights: dict[str, float] | None,
        *,
        k: int = 10,
        text: str | None = None,
        filters: Filters | None = None,
        fusion: str = "raw",
        candidates: int | None = None,
    ) -> list[SearchHit]:
        """Top-k segments by the chosen fusion of the weighted signals (see module and `fusion` docs)."""
        if fusion not in FUSIONS:
            raise StoreError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")
        if k < 1:
            raise StoreError(f"k must be at least 1, got {k}")
        filters = check_filters(filters)
        q, _eff, legs = self.plan(query_vectors, weights, text=text)
        if not legs:
            return []
        layout = self.layout
        assert layout is not None
        vec_legs = {s: w for s, w in legs.items() if s != BM25}
        big_k = max(candidates or self.candidates, k)
        parts: list[Candidates] = []
        if self.approximate:
            # ANN indexes: each weighted signal's top-K through its own index (legs run concurrently; the backends
            # release the GIL), the union rescored exactly below.
            legs_q = [(concat_query(layout, q, {s: 1.0}), s) for s in vec_legs]
            parts.extend(self._ann_legs(legs_q, big_k, filters))
        elif vec_legs:
            # Exact scan: raw fusion without text needs only the fused top k; otherwise K candidates per leg.
            only_vectors = fusion == "raw" and BM25 not in legs
            fused = concat_query(layout, q, vec_legs)
            parts.append(self._vector_leg(fused, k if only_vectors else big_k, filters, signal=None))
            if fusion != "raw" and len(vec_legs) > 1:
                for s in vec_legs:
                    parts.append(self._vector_leg(concat_query(layout, q, {s: 1.0}), big_k, filters, signal=s))
        if BM25 in legs:
            parts.append(self._text_leg(text or "", big_k, filters))
        merged = _merge(parts, layout.total_dim, with_bm25=BM25 in legs)
        if not merged.rows:
            return []
        scores, present = leg_scores(layout, merged.vectors, q, merged.bm25)
        fused, normed = fuse(scores, present, legs, fusion)
        ids = np.array([r["segment_id"] for r in merged.rows])
        order = np.lexsort((ids, -fused))[:k]  # ties broken by segment_id, so results are deterministic
        rows = self._complete_rows([merged.rows[i] for i in order])
        return [
            SearchHit(
                segment_id=row["segment_id"],
                video_id=row["video_id"],
                path=row.get("path") or "",
                start=float(row["start"]),
                end=float(row["end"]),
                score=float(fused[i]),
                scores={leg: float(v[i]) for leg, v in normed.items()},
                title=row.get("title") or "",
                transcript=row.get("transcript") or "",
                keyframe=row.get("keyframe") or None,
            )
            for i, row in zip(order, rows, strict=True)
        ]


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vidroute-leg")
    return _POOL


def _merge(parts: list[Candidates], dim: int, *, with_bm25: bool) -> Candidates:
    """Union of candidate lists by segment_id; BM25 scores carried over from the text leg (0 where absent)."""
    rows: list[dict[str, Any]] = []
    vecs: list[np.ndarray] = []
    bm25: list[float] = []
    index: dict[str, int] = {}
    for part in parts:
        for j, row in enumerate(part.rows):
            sid = row["segment_id"]
            b = float(part.bm25[j]) if part.bm25 is not None else 0.0
            if sid in index:
                if b:
                    bm25[index[sid]] = max(bm25[index[sid]], b)
                continue
            index[sid] = len(rows)
            rows.append(row)
            vecs.append(part.vectors[j])
            bm25.append(b)
    packed = np.stack(vecs).astype(np.float32, copy=False) if vecs else np.zeros((0, dim), dtype=np.float32)
    return Candidates(rows=rows, vectors=packed, bm25=np.asarray(bm25) if with_bm25 else None)
