"""Search stage: store backends (LanceDB embedded, Qdrant local/server, in-memory), exact weighted fusion, engine.

>>> from vidroute.search import SearchEngine
>>> engine = SearchEngine.open("/data/vidroute-store", model="models/frozen")  # doctest: +SKIP
>>> engine.search("the speaker says we choose to go to the moon").hits[0].path  # doctest: +SKIP
"""

from __future__ import annotations

from vidroute.search.engine import IndexReport, SearchEngine, SearchResponse
from vidroute.search.fusion import FUSIONS, MIN_WEIGHT, Layout
from vidroute.search.stores import open_store
from vidroute.search.types import Filters, SearchHit, Segment, Store

__all__ = [
    "FUSIONS",
    "MIN_WEIGHT",
    "Filters",
    "IndexReport",
    "Layout",
    "SearchEngine",
    "SearchHit",
    "SearchResponse",
    "Segment",
    "Store",
    "open_store",
]
