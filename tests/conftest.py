"""Shared pytest fixtures: the ../shared data folder (skip with a reason where absent) and packaged models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDROUTE_SHARED", REPO.parent / "shared"))

# Keep tests offline and polite on a 2-core machine.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared/data`; tests that need it skip where it is absent (it is licensed, never copied in)."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"shared data not found at {data} (set VIDROUTE_SHARED to the folder that holds data/)")
    return data
