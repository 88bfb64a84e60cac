"""The distributed store: Qdrant through qdrant-client — local mode (a directory, for tests) or a server/cluster (url).

The same client code runs both. Each point is one segment with a named vector per signal (absent where the segment
lacks it), the concatenated vector "all" (see `fusion.Layout`), and a sparse "bm25" vector whose IDF the collection
applies (`bm25`). Weighted fusion is one "all" query with the weighted concatenated query vector; single-signal legs
use the per-signal named vectors (their own HNSW on a server, so per-signal recall does not suffer from the
concatenated index). Candidates are then rescored exactly by the shared code in `base`.

Why not Qdrant's server-side `FormulaQuery`: it fuses the prefetched per-signal top-K lists, so a segment outside a
list scores 0 there (recall 0.62 at K=100 measured, `stores.md`); the concatenated query is exact in one request.

Writes: `upsert_video` upserts the new points (ids derive from segment ids, so re-indexing overwrites in place), then
deletes the video's points that are not in the new set. Qdrant has no multi-operation transaction: between the two
requests a reader can see the union of old and new segments of that video, never an empty video.

Config (signals, dims, embedders) lives in the collection's metadata (Qdrant server ≥ 1.16, and local mode).
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import StoreError, require
from vidroute.search.base import PAYLOAD, Candidates, FusingStore, StoreConfig, date_bounds
from vidroute.search.bm25 import doc_sparse, query_sparse
from vidroute.search.types import Filters

log = logging.getLogger(__name__)

_NS = uuid.UUID("5b0c3f5e-8f41-4f5e-9d3f-2f6c1d7a9e10")


def point_id(segment_id: str) -> str:
    return str(uuid.uuid5(_NS, segment_id))


class QdrantStore(FusingStore):
    """Qdrant-backed store: `path=` for local mode (embedded, ≲10k segments) or `url=` for a server or cluster."""

    backend = "qdrant"

    def __init__(
        self,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = "segments",
        hnsw_ef: int = 128,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (path is None) == (url is None):
            raise StoreError("QdrantStore needs exactly one of path= (local mode) or url= (server)")
        self.path = Path(path).expanduser() if path is not None else None
        self.url = url
        self.uri = f"qdrant://{self.path}" if self.path else f"qdrant+{url}"
        self.collection = collection
        self.hnsw_ef = hnsw_ef
        self._lock = threading.RLock()
        qc = require("qdrant_client", "search")
        try:
            if self.path is not None:
                self.path.mkdir(parents=True, exist_ok=True)
                self._client = qc.QdrantClient(path=str(self.path))
            else:
                self._client = qc.QdrantClient(url=url, api_key=api_key)
            exists = self._client.collection_exists(collection)
        except Exception as exc:
            raise StoreError(f"could not open Qdrant at {self.uri}: {exc}") from exc
        if exists:
            meta = self._client.get_collection(collection).config.metadata or {}
            if "vidroute" not in meta:
                raise StoreError(
                    f"collection {collection!r} at {self.uri} is not a vidroute store; choose another name"
                )
            self._config = StoreConfig.model_validate(meta["vidroute"])

    @property
    def _models(self):
        return require("qdrant_client.models", "search")

    @property
    def local(self) -> bool:
        return self.path is not None

    @property
    def approximate(self) -> bool:
        return not self.local  # local mode scans exactly; a server searches HNSW

    def _write_config(self, config: StoreConfig) -> None:
        m = self._models
        vectors = {s: m.VectorParams(size=d, distance=m.Distance.DOT) for s, d in config.layout.dims.items()}
        vectors["all"] = m.VectorParams(size=config.layout.total_dim, distance=m.Distance.DOT)
        try:
            self._client.create_collection(
                self.collection,
                vectors_config=vectors,
                sparse_vectors_config={"bm25": m.SparseVectorParams(modifier=m.Modifier.IDF)},
                metadata={"vidroute": config.model_dump(mode="json")},
            )
            if not self.local:  # local mode ignores payload indexes
                for key in ("video_id", "people_key", "genre_key"):
                    self._client.create_payload_index(self.collection, key, m.PayloadSchemaType.KEYWORD)
                self._client.create_payload_index(self.collection, "date", m.PayloadSchemaType.DATETIME)
        except Exception as exc:
            raise StoreError(f"could not create Qdrant collection {self.collection!r} at {self.uri}: {exc}") from exc

    # ---- filters --------------------------------------------------------------------------------------------------
    def _filter(self, filters: Filters | None, *extra):
        m = self._models
        must = list(extra)
        if filters is not None:
            lo, hi = date_bounds(filters)
            if lo is not None or hi is not None:
                must.append(m.FieldCondition(key="date", range=m.DatetimeRange(gte=lo, lt=hi)))
            if filters.people:
                must.append(
                    m.FieldCondition(key="people_key", match=m.MatchAny(any=[p.casefold() for p in filters.people]))
                )
            if filters.genre is not None:
                must.append(m.FieldCondition(key="genre_key", match=m.MatchValue(value=filters.genre.casefold())))
            if filters.video_id is not None:
                must.append(m.FieldCondition(key="video_id", match=m.MatchValue(value=filters.video_id)))
        return m.Filter(must=must) if must else None

    def _video(self, video_id: str):
        m = self._models
        return m.FieldCondition(key="video_id", match=m.MatchValue(value=video_id))

    # ---- writes ---------------------------------------------------------------------------------------------------
    def _replace(self, video_id: str, rows: list[dict[str, Any]], vectors: np.ndarray, masks: list[int]) -> None:
        m = self._models
        layout = self.layout
        points = []
        for row, vec, mask in zip(rows, vectors, masks, strict=True):
            named: dict[str, Any] = {"all": vec.tolist()}
            for i, s in enumerate(layout.signals):
                if mask & (1 << i):
                    named[s] = vec[layout.slot(s)].tolist()
            ids, vals = doc_sparse(row["text"])
            if ids:
                named["bm25"] = m.SparseVector(indices=ids, values=vals)
            payload = {k: row[k] for k in PAYLOAD if k != "date" or row["date"]}
            payload["people_key"] = [p.casefold() for p in row["people"]]
            payload["genre_key"] = row["genre"].casefold()
            payload["mask"] = mask
            points.append(m.PointStruct(id=point_id(row["segment_id"]), vector=named, payload=payload))
        with self._lock:
            if points:
                self._client.upsert(self.collection, points=points, wait=True)
            keep = [p.id for p in points]
            stale = m.Filter(must=[self._video(video_id)], must_not=[m.HasIdCondition(has_id=keep)] if keep else [])
            self._client.delete(self.collection, points_selector=m.FilterSelector(filter=stale), wait=True)

    def delete_video(self, video_id: str) -> int:
        if self._config is None:
            return 0
        m = self._models
        with self._lock:
            flt = m.Filter(must=[self._video(video_id)])
            n = self._client.count(self.collection, count_filter=flt, exact=True).count
            if n:
                self._client.delete(self.collection, points_selector=m.FilterSelector(filter=flt), wait=True)
            return n

    # ---- reads ----------------------------------------------------------------------------------------------------
    def count(self) -> int:
        if self._config is None:
            return 0
        return self._client.count(self.collection, exact=True).count

    def has_video(self, video_id: str) -> bool:
        if self._config is None:
            return False
        m = self._models
        flt = m.Filter(must=[self._video(video_id)])
        return self._client.count(self.collection, count_filter=flt, exact=True).count > 0

    def _candidates(self, points, *, bm25: bool) -> Candidates:
        dim = self.layout.total_dim
        rows = [{k: (p.payload or {}).get(k, "" if k != "keyframe" else None) for k in PAYLOAD} for p in points]
        vecs = (
            np.asarray([p.vector["all"] for p in points], dtype=np.float32)
            if points
            else np.zeros((0, dim), dtype=np.float32)
        )
        return Candidates(rows, vecs, np.asarray([p.score for p in points], dtype=np.float64) if bm25 else None)

    def _query(self, **kwargs):
        m = self._models
        params = None if self.local else m.SearchParams(hnsw_ef=max(self.hnsw_ef, kwargs.get("limit", 10)))
        try:
            with self._lock:
                return self._client.query_points(
                    self.collection, with_payload=True, with_vectors=["all"], search_params=params, **kwargs
                ).points
        except Exception as exc:
            raise StoreError(f"Qdrant query failed at {self.uri}: {exc}") from exc

    def _vector_leg(self, query: np.ndarray, k: int, filters: Filters | None, *, signal: str | None) -> Candidates:
        if self._config is None:
            return Candidates([], np.zeros((0, 0), dtype=np.float32))
        vec = query if signal is None else query[self.layout.slot(signal)]
        points = self._query(query=vec.tolist(), using=signal or "all", limit=k, query_filter=self._filter(filters))
        return self._candidates(points, bm25=False)

    def _text_leg(self, text: str, k: int, filters: Filters | None) -> Candidates:
        ids, vals = query_sparse(text)
        if self._config is None or not ids:
            return Candidates([], np.zeros((0, self.layout.total_dim), dtype=np.float32), np.zeros(0))
        m = self._models
        points = self._query(
            query=m.SparseVector(indices=ids, values=vals), using="bm25", limit=k, query_filter=self._filter(filters)
        )
        return self._candidates([p for p in points if p.score > 0], bm25=True)

    def stats(self, *, max_scan: int = 200_000) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": self.backend,
            "uri": self.uri,
            "segments": self.count(),
            "signals": self.signals,
            "dims": self.layout.dims if self.layout else {},
            "embedders": self.config.embedders if self.config else {},
        }
        if self._config is not None and 0 < out["segments"] <= max_scan:
            videos: set[str] = set()
            per = dict.fromkeys(self.signals, 0)
            offset = None
            while True:
                points, offset = self._client.scroll(
                    self.collection, limit=1024, offset=offset, with_payload=["video_id", "mask"], with_vectors=False
                )
                for p in points:
                    videos.add(p.payload.get("video_id", ""))
                    for i, s in enumerate(self.signals):
                        per[s] += bool(int(p.payload.get("mask", 0)) & (1 << i))
                if offset is None:
                    break
            out["videos"] = len(videos)
            out["segments_with_signal"] = per
        return out

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing twice or at interpreter exit is harmless
            log.debug("qdrant close failed", exc_info=True)

    def __repr__(self) -> str:
        return f"QdrantStore({self.uri!r}, collection={self.collection!r})"
