"""Service settings: one pydantic-settings object read from `VIDROUTE_*` environment variables or a `.env` file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _split(value: object) -> object:
    """Accept "a,b" (the natural env form), a JSON list, or a list."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the HTTP service can be told; every field is `VIDROUTE_<NAME>` in the environment.

    Example:
        >>> Settings(api_keys="k1, k2", public_read=False).api_keys
        ['k1', 'k2']
    """

    model_config = SettingsConfigDict(env_prefix="VIDROUTE_", env_file=".env", extra="ignore")

    # What to serve.
    model_dir: Path | None = Field(default=None, description="Router model folder written by `vidroute train`.")
    router_backend: str = Field(default="auto", description="Router inference backend (auto, onnx, torch, ...).")
    router_threshold: float | None = Field(
        default=None, ge=0.0, le=1.01, description="Confidence below which queries escalate to `teacher`."
    )
    teacher: str | None = Field(
        default=None,
        description="Teacher spec for escalation (e.g. gguf:smollm2, openai:model@url); needs a threshold.",
    )
    router_threads: int = Field(default=1, ge=1, description="Intra-op threads of the router's inference backend.")
    torch_threads: int | None = Field(
        default=1,
        ge=1,
        description="torch intra-op threads in the server (query embedding); 1 avoids spinning threads under load.",
    )
    store_uri: str | None = Field(default=None, description="Search store URI (a LanceDB folder, qdrant://...).")

    # Access.
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated keys; write endpoints need one (Bearer or X-API-Key)."
    )
    public_read: bool = Field(default=True, description="Allow /v1/route and /v1/search without a key.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed by CORS; empty = CORS off."
    )

    # Limits.
    max_query_chars: int = Field(default=1000, ge=1, le=1000, description="May only lower the 1,000 ceiling.")
    max_body_bytes: int = Field(default=1_000_000, ge=1024, description="JSON request bodies.")
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1024, description="Multipart uploads to /v1/index.")
    request_timeout_s: float = Field(default=10.0, gt=0)
    max_batch: int = Field(default=256, ge=1, le=256, description="May only lower the 256 ceiling.")
    max_k: int = Field(default=100, ge=1, le=100)

    # Media and ingest.
    media_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders whose files may be indexed by path and served to the page; nothing outside is served.",
    )
    uploads_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "vidroute" / "uploads",
        description="Where uploaded media is saved before indexing (also served as media).",
    )
    media_secret: str | None = Field(
        default=None, description="Key that signs media URLs; set it when running several workers."
    )
    max_jobs_kept: int = Field(default=200, ge=1)

    # Performance.
    route_mode: Literal["inline", "thread"] = Field(
        default="inline", description="Run routing on the event loop (fast for ms models) or in a worker thread."
    )
    route_fast_path: bool = Field(
        default=True, description="Serve POST /v1/route with a lean ASGI handler (same contract, ~0.25 ms less CPU)."
    )
    route_cache_size: int = Field(default=0, ge=0, description="Per-process LRU cache of routed queries (0 = off).")

    @field_validator("api_keys", "cors_origins", "media_roots", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("api_keys")
    @classmethod
    def _no_empty_keys(cls, value: list[str]) -> list[str]:
        return [k for k in value if k]
