"""Request and response models of the HTTP API (what the OpenAPI schema publishes)."""

from __future__ import annotations

import math
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from vidroute.errors import VidrouteError
from vidroute.serve.jobs import Job, SkippedFile

# Hard ceilings published in the schema; Settings may only lower them.
MAX_QUERY_CHARS = 1000
MAX_BATCH = 256
MAX_K = 100
MAX_PATHS = 1000

_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def _check_query(value: str) -> str:
    for ch in value:
        cat = unicodedata.category(ch)
        if cat == "Cc" and ch not in _ALLOWED_CONTROLS:
            raise ValueError(f"query contains control characters (U+{ord(ch):04X}); send plain text")
        if cat == "Cs":
            raise ValueError(f"query contains an unpaired surrogate (U+{ord(ch):04X}); send valid Unicode text")
    if not value.strip():
        raise ValueError("query is empty or only whitespace")
    return value


Query = Annotated[
    str,
    Field(min_length=1, max_length=MAX_QUERY_CHARS, examples=["a dog catching a frisbee on the beach"]),
    AfterValidator(_check_query),
]
ShortText = Annotated[str, Field(max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- errors ------------------------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str = Field(examples=["validation_error"])
    message: str = Field(examples=["body.query: String should have at most 1000 characters"])
    details: Any = None


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the error shape for these status codes."""
    text = {
        400: "Malformed request (bad encoding, bad config value)",
        401: "Missing or invalid API key",
        404: "Not found",
        413: "Body too large",
        415: "Unsupported content type",
        422: "Validation failed (field paths in details)",
        503: "Model or store not available",
        504: "Request timed out",
    }
    return {c: {"model": ErrorResponse, "description": text.get(c, "Error")} for c in codes}


# ---- routing -----------------------------------------------------------------------------------------------
class RouteRequest(Strict):
    """One query (`query`) or a batch (`queries`, at most 256); exactly one of the two."""

    query: Query | None = None
    queries: list[Query] | None = Field(default=None, min_length=1, max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _one_of(self) -> RouteRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError('give exactly one of "query" (a string) or "queries" (a list of strings)')
        return self

    @property
    def texts(self) -> list[str]:
        return [self.query] if self.query is not None else list(self.queries or [])


class RouteResultOut(BaseModel):
    """The router's answer for one query: weights summing to 1, the dominant signal and its confidence."""

    model_config = ConfigDict(from_attributes=True)

    weights: dict[str, float] = Field(examples=[{"visual": 0.6, "audio": 0.1, "transcription": 0.1, "metadata": 0.2}])
    dominant: str
    confidence: float
    model: str
    latency_ms: float
    escalated: bool = False


class RouteResponse(BaseModel):
    data: list[RouteResultOut]
    count: int


# ---- search ------------------------------------------------------------------------------------------------
IsoDate = Annotated[str, Field(max_length=10, pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$", examples=["2021-03"])]


class SearchFilters(Strict):
    date_from: IsoDate | None = Field(default=None, description="YYYY, YYYY-MM or YYYY-MM-DD (inclusive).")
    date_to: IsoDate | None = Field(default=None, description="YYYY, YYYY-MM or YYYY-MM-DD (its whole period).")
    people: list[ShortText] = Field(default_factory=list, max_length=50)
    genre: ShortText | None = None
    video_id: ShortText | None = None

    @model_validator(mode="after")
    def _real_dates(self) -> SearchFilters:
        """The store's own date rules (so a bad date is a 422 here, not a store failure later)."""
        if self.date_from is None and self.date_to is None:
            return self
        from vidroute.search.base import date_bounds
        from vidroute.search.types import Filters

        try:
            date_bounds(Filters(date_from=self.date_from, date_to=self.date_to))
        except (ValueError, OverflowError, VidrouteError) as exc:
            message = str(exc) if isinstance(exc, VidrouteError) else f"not a real date ({exc})"
            raise ValueError(message) from None
        return self


def _finite_unit(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("weights must be finite numbers")
    return value


Weight = Annotated[float, Field(ge=0.0, le=1.0), AfterValidator(_finite_unit)]


class SearchRequest(Strict):
    query: Query
    k: int = Field(default=10, ge=1, le=MAX_K, description="How many hits to return.")
    weights: dict[Annotated[str, Field(max_length=64)], Weight] | None = Field(
        default=None,
        max_length=16,
        description="Per-signal weights; omit to let the router choose them from the query.",
        examples=[{"visual": 0.7, "audio": 0.1, "transcription": 0.1, "metadata": 0.1}],
    )
    filters: SearchFilters | None = None
    fusion: Literal["raw", "minmax", "rrf"] = Field(default="raw", description="How per-signal scores are combined.")

    @field_validator("weights")
    @classmethod
    def _positive_sum(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is not None and sum(value.values()) <= 0:
            raise ValueError("weights must not all be zero")
        return value


class Hit(BaseModel):
    segment_id: str
    video_id: str
    filename: str = Field(description="The source file's name (the full server path is not exposed).")
    start: float
    end: float
    score: float
    scores: dict[str, float] = Field(description="Per-signal score after normalisation (plus bm25 when used).")
    title: str = ""
    transcript: str = ""
    media_url: str | None = Field(default=None, description="Signed URL of the source media (HTTP Range supported).")
    keyframe_url: str | None = Field(default=None, description="Signed URL of the segment's keyframe image.")


class SearchResponse(BaseModel):
    query: str
    weights: dict[str, float]
    route: RouteResultOut | None = None
    data: list[Hit]
    count: int
    latency_ms: float
    timings: dict[str, float] = Field(default_factory=dict)


# ---- indexing ----------------------------------------------------------------------------------------------
class IndexRequest(Strict):
    paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(
        min_length=1, max_length=MAX_PATHS, description="Files (or folders) under the server's media roots."
    )


class JobAccepted(BaseModel):
    job_id: str
    status: str
    status_url: str


class JobOut(Job):
    pass


class JobList(BaseModel):
    data: list[JobOut]
    count: int


class DeleteResponse(BaseModel):
    video_id: str
    deleted: int = Field(description="Segments removed.")


# ---- health ------------------------------------------------------------------------------------------------
class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, Any]


__all__ = [
    "MAX_BATCH",
    "MAX_QUERY_CHARS",
    "DeleteResponse",
    "ErrorResponse",
    "Health",
    "Hit",
    "IndexRequest",
    "JobAccepted",
    "JobList",
    "JobOut",
    "Readiness",
    "RouteRequest",
    "RouteResponse",
    "RouteResultOut",
    "SearchFilters",
    "SearchRequest",
    "SearchResponse",
    "SkippedFile",
]
