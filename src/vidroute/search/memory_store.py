"""An exact in-process store on numpy arrays: the reference the other backends are tested against (`memory://`)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from vidroute.search.base import Candidates, FusingStore, StoreConfig, matches
from vidroute.search.bm25 import BM25Index
from vidroute.search.types import Filters


class MemoryStore(FusingStore):
    """Brute-force store: every leg is an exact numpy scan; BM25 is exact Okapi BM25. Nothing persists.

    Example:
        >>> from vidroute.search.fusion import Layout
        >>> store = MemoryStore()
        >>> store.configure(StoreConfig(layout=Layout(signals=["visual"], dims={"visual": 2})))
        >>> store.count()
        0
    """

    backend = "memory"

    def __init__(self, name: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.uri = f"memory://{name}"
        self._lock = threading.RLock()
        self._rows: list[dict[str, Any]] = []
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._masks: list[int] = []
        self._bm25 = BM25Index()
        self._bm25_dirty = True

    def _write_config(self, config: StoreConfig) -> None:
        self._vectors = np.zeros((0, config.layout.total_dim), dtype=np.float32)

    def _replace(self, video_id: str, rows: list[dict[str, Any]], vectors: np.ndarray, masks: list[int]) -> None:
        with self._lock:
            keep = [i for i, r in enumerate(self._rows) if r["video_id"] != video_id]
            self._rows = [self._rows[i] for i in keep] + [dict(r) for r in rows]
            self._vectors = np.concatenate([self._vectors[keep], vectors.astype(np.float32)])
            self._masks = [self._masks[i] for i in keep] + list(masks)
            self._bm25_dirty = True

    def delete_video(self, video_id: str) -> int:
        with self._lock:
            before = len(self._rows)
            keep = [i for i, r in enumerate(self._rows) if r["video_id"] != video_id]
            self._rows = [self._rows[i] for i in keep]
            self._vectors = self._vectors[keep]
            self._masks = [self._masks[i] for i in keep]
            self._bm25_dirty = True
            return before - len(self._rows)

    def count(self) -> int:
        return len(self._rows)

    def has_video(self, video_id: str) -> bool:
        return any(r["video_id"] == video_id for r in self._rows)

    def _allowed(self, filters: Filters | None) -> np.ndarray:
        return np.array([matches(r, filters) for r in self._rows], dtype=bool)

    def _vector_leg(self, query: np.ndarray, k: int, filters: Filters | None, *, signal: str | None) -> Candidates:
        with self._lock:
            rows, vecs = self._rows, self._vectors
            if not rows:
                return Candidates([], vecs)
            scores = vecs @ query
            allowed = self._allowed(filters)
            if signal is not None:  # a single-signal leg only ranks segments that have that signal
                bit = 1 << self.signals.index(signal)
                allowed &= np.array([bool(m & bit) for m in self._masks])
            idx = np.flatnonzero(allowed)
            idx = idx[np.argsort(-scores[idx], kind="stable")[:k]]
            return Candidates([rows[i] for i in idx], vecs[idx])

    def _text_leg(self, text: str, k: int, filters: Filters | None) -> Candidates:
        with self._lock:
            if self._bm25_dirty:
                self._bm25.reset(r["text"] for r in self._rows)
                self._bm25_dirty = False
            scores = np.asarray(self._bm25.scores(text))
            if scores.size == 0:
                return Candidates([], self._vectors[:0], np.zeros(0))
            allowed = self._allowed(filters) & (scores > 0)
            idx = np.flatnonzero(allowed)
            idx = idx[np.argsort(-scores[idx], kind="stable")[:k]]
            return Candidates([self._rows[i] for i in idx], self._vectors[idx], scores[idx])

    def stats(self) -> dict[str, Any]:
        per_signal = {s: sum(1 for m in self._masks if m & (1 << i)) for i, s in enumerate(self.signals)}
        return {
            "backend": self.backend,
            "uri": self.uri,
            "segments": self.count(),
            "videos": len({r["video_id"] for r in self._rows}),
            "signals": self.signals,
            "dims": self.layout.dims if self.layout else {},
            "segments_with_signal": per_signal,
            "embedders": self.config.embedders if self.config else {},
        }
