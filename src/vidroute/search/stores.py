"""`open_store(uri)`: one string picks the backend and where it lives.

| URI | backend |
|---|---|
| `lancedb:///abs/path`, `lancedb://rel/path`, or a plain path | LanceDB embedded (default) |
| `qdrant:///abs/path` | Qdrant local mode (a directory; tests and small sets, ≲10k segments) |
| `qdrant+http://host:6333`, `qdrant+https://…` | Qdrant server or cluster (API key from `QDRANT_API_KEY`) |
| `memory://name` | exact numpy store in this process (same name → same store) |

Query parameters tune a backend: `?table=` / `?collection=`, `candidates=`, `bm25_share=`, and for LanceDB
`nprobes=`, `refine_factor=`, `index_threshold=`, `index_type=`.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from vidroute.errors import StoreError
from vidroute.search.base import FusingStore

_MEMORY: dict[str, FusingStore] = {}
_INT = {"candidates", "nprobes", "refine_factor", "index_threshold", "num_partitions", "hnsw_ef"}
_FLOAT = {"bm25_share", "min_weight"}
_COMMON = {"candidates", "bm25_share", "min_weight"}
_LANCE = {"table", "nprobes", "refine_factor", "index_threshold", "index_type", "num_partitions"}
_QDRANT = {"collection", "hnsw_ef"}


def _params(query: str, allowed: set[str], uri: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in allowed:
            raise StoreError(f"unknown store option {key!r} in {uri!r}; allowed: {sorted(allowed)}")
        try:
            out[key] = int(value) if key in _INT else float(value) if key in _FLOAT else value
        except ValueError as exc:
            raise StoreError(f"store option {key}={value!r} in {uri!r} is not a number") from exc
    return out


def _split_path(rest: str) -> tuple[str, str]:
    path, _, query = rest.partition("?")
    return path, query


def open_store(uri: str, **options: Any) -> FusingStore:
    """Open (or prepare to create) the store `uri` names; keyword options override the URI's query parameters."""
    uri = str(uri).strip()
    if not uri:
        raise StoreError("empty store URI; give a directory or e.g. lancedb:///data/store, qdrant+http://host:6333")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        scheme, rest = "lancedb", uri
    scheme = scheme.lower()
    if scheme == "lancedb":
        from vidroute.search.lance_store import LanceStore

        path, query = _split_path(rest)
        if not path:
            raise StoreError(f"{uri!r} names no directory; use lancedb:///abs/path or a plain path")
        return LanceStore(path, **{**_params(query, _COMMON | _LANCE, uri), **options})
    if scheme == "qdrant":
        from vidroute.search.qdrant_store import QdrantStore

        path, query = _split_path(rest)
        if not path:
            raise StoreError(f"{uri!r} names no directory; use qdrant:///abs/path, or qdrant+http://host:6333")
        return QdrantStore(path=path, **{**_params(query, _COMMON | _QDRANT, uri), **options})
    if scheme in ("qdrant+http", "qdrant+https"):
        from vidroute.search.qdrant_store import QdrantStore

        parts = urlsplit(uri.removeprefix("qdrant+"))
        url = f"{parts.scheme}://{parts.netloc}{parts.path}"
        return QdrantStore(
            url=url,
            api_key=os.environ.get("QDRANT_API_KEY"),
            **{**_params(parts.query, _COMMON | _QDRANT, uri), **options},
        )
    if scheme == "memory":
        from vidroute.search.memory_store import MemoryStore

        name, query = _split_path(rest)
        if name not in _MEMORY:
            _MEMORY[name] = MemoryStore(name, **{**_params(query, _COMMON, uri), **options})
        return _MEMORY[name]
    raise StoreError(
        f"unknown store scheme {scheme!r} in {uri!r}; use lancedb://, qdrant://, qdrant+http:// or memory://"
    )


def drop_memory_store(name: str) -> None:
    """Forget a `memory://name` store (tests)."""
    _MEMORY.pop(name, None)
