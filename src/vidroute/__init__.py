"""vidroute: distil an LLM video-search intent router into a fast CPU student, and search video with it."""

from __future__ import annotations

__version__ = "0.1.0"

from vidroute.errors import (
    ConfigError,
    DataFormatError,
    InvalidTeacherOutput,
    ModelError,
    StoreError,
    TeacherError,
    VidrouteError,
)
from vidroute.records import FailureRecord, LabelRecord, QueryRecord, TeacherInfo, Usage
from vidroute.spec import TaskSpec

__all__ = [
    "ConfigError",
    "DataFormatError",
    "FailureRecord",
    "InvalidTeacherOutput",
    "LabelRecord",
    "ModelError",
    "QueryRecord",
    "StoreError",
    "TaskSpec",
    "TeacherError",
    "TeacherInfo",
    "Usage",
    "VidrouteError",
    "__version__",
]
