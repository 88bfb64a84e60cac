"""Types shared by ingest, stores, fusion and serving: a stored segment, search filters and a scored hit."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class Segment(BaseModel):
    """One time span of one media file, with its text fields and one vector per signal (None = not embedded)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    segment_id: str  # f"{video_id}:{index:05d}"
    video_id: str  # stable id of the source file (sha256 of its bytes, shortened)
    path: str  # the source file, as given to `index`
    start: float  # seconds
    end: float
    transcript: str = ""
    title: str = ""
    description: str = ""  # caption or sidecar description
    people: list[str] = Field(default_factory=list)
    genre: str = ""
    date: str = ""  # ISO date, "" if unknown
    tags: list[str] = Field(default_factory=list)
    keyframe: str | None = None  # path to a JPEG keyframe
    vectors: dict[str, list[float] | None] = Field(default_factory=dict)


class Filters(BaseModel):
    """Optional restrictions; all given conditions must hold."""

    date_from: str | None = None
    date_to: str | None = None
    people: list[str] = Field(default_factory=list)  # any of these
    genre: str | None = None
    video_id: str | None = None


class SearchHit(BaseModel):
    segment_id: str
    video_id: str
    path: str
    start: float
    end: float
    score: float
    scores: dict[str, float]  # per-signal score (after the chosen normalisation), plus "bm25" when used
    title: str = ""
    transcript: str = ""
    keyframe: str | None = None


class Store(Protocol):
    """The narrow seam every vector store backend implements (embedded LanceDB, distributed Qdrant, ...)."""

    signals: list[str]

    def upsert_video(self, video_id: str, segments: list[Segment]) -> None:
        """Replace every segment of `video_id` with `segments`, atomically from a reader's point of view."""

    def delete_video(self, video_id: str) -> int: ...

    def count(self) -> int: ...

    def search(
        self,
        query_vectors: dict[str, np.ndarray],
        weights: dict[str, float],
        *,
        k: int = 10,
        text: str | None = None,
        filters: Filters | None = None,
        fusion: str = "raw",
    ) -> list[SearchHit]: ...

    def stats(self) -> dict[str, Any]: ...
