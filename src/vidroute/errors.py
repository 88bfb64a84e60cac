"""vidroute's own exceptions; third-party errors are wrapped into these at every boundary."""

from __future__ import annotations


class VidrouteError(Exception):
    """Base class: every error vidroute raises on purpose derives from this."""


class ConfigError(VidrouteError):
    """A spec, option or model path is wrong; the message names the value and the fix."""


class DataFormatError(VidrouteError):
    """An input file is malformed (bad JSON, missing fields, wrong schema)."""


class MissingDependencyError(VidrouteError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class TeacherError(VidrouteError):
    """A teacher backend failed to answer (transport, auth, throttling after all retries)."""


class InvalidTeacherOutput(TeacherError):
    """The teacher answered, but not with valid weights; `raw` keeps what it said."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class ModelError(VidrouteError):
    """A student model directory is missing, incomplete or incompatible."""


class StoreError(VidrouteError):
    """A vector store backend failed or was given an invalid request."""


class IngestError(VidrouteError):
    """A media file could not be ingested (corrupt, unsupported, decoder failure)."""


class EmbeddingError(VidrouteError):
    """An embedder failed to load its model or to embed (bad weights folder, Bedrock failure after retries)."""


def require(module: str, extra: str):
    """Import an optional dependency lazily, or raise an error that names the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is not installed; install it with: pip install 'vidroute[{extra}]'"
        ) from exc
