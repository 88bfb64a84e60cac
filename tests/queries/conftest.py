"""Shared fixtures for the query generator: one MiniLM embedder and one small generated set per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedder():
    """The packaged MiniLM (loading it takes seconds, so once per session)."""
    pytest.importorskip("sentence_transformers")
    from vidroute.queries.dedup import Embedder

    e = Embedder()
    e(["warm up"])
    return e


@pytest.fixture(scope="session")
def generated(embedder):
    """1,500 queries with embedding de-duplication, shared by the split and dedup tests."""
    from vidroute.queries.generate import generate_queries

    records, stats = generate_queries(1500, seed=7, embedder=embedder)
    return records, stats
