"""`SearchEngine`: route + embed a query concurrently, search a store with weighted fusion; index media files.

Example:
    >>> engine = SearchEngine.open("memory://doc", embedders={})
    >>> engine.search("a dog barking").hits
    []
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vidroute.errors import ConfigError, IngestError, StoreError, VidrouteError
from vidroute.search.base import FusingStore, StoreConfig
from vidroute.search.fusion import FUSIONS, Layout
from vidroute.search.stores import open_store
from vidroute.search.types import Filters, SearchHit, Segment

log = logging.getLogger(__name__)

Progress = Callable[[float, float, str], None]


class SearchResponse(BaseModel):
    """One search: the weights fusion used (after the < min_weight skip rule and renormalisation), the router's
    answer when it chose them, the hits, and where the time went (ms)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    query: str
    weights: dict[str, float]
    route: Any = None  # vidroute.router.RouteResult when a router chose the weights
    weights_source: str = "uniform"  # router | user | uniform
    fusion: str = "raw"
    hits: list[SearchHit] = Field(default_factory=list)
    latency_ms: float = 0.0
    timings: dict[str, float] = Field(default_factory=dict)


class IndexedFile(BaseModel):
    path: str
    video_id: str
    segments: int
    seconds: float


class SkippedFile(BaseModel):
    path: str
    error: str


class IndexReport(BaseModel):
    """What `index_paths` did: files indexed, files skipped with an error, files already in the store."""

    indexed: list[IndexedFile] = Field(default_factory=list)
    skipped: list[SkippedFile] = Field(default_factory=list)
    existing: list[str] = Field(default_factory=list)  # already indexed (same content); pass force=True to redo
    segments: int = 0  # segments written by this run
    seconds: float = 0.0
    store: str = ""


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and media files (by extension) found recursively under folders, sorted, without duplicates."""
    from vidroute.ingest.pipeline import iter_media_files

    return iter_media_files([Path(p).expanduser() for p in paths])


def _embedder_spec(embedder: Any) -> str | None:
    """The registry spec that rebuilds `embedder` (`vidroute.ingest.build_embedder`), from its name."""
    spec = getattr(embedder, "spec", None)
    if isinstance(spec, str) and spec:
        return spec
    name = getattr(embedder, "name", None)
    if not isinstance(name, str) or not name:
        return None
    family = name.split(":", 1)[0].lower()
    if name == "minilm" or family in ("st", "text", "clip", "siglip", "clap", "nova"):
        return name
    return f"st:{name}"  # a sentence-transformers folder given by path


def _embedder_dim(embedder: Any) -> int:
    for attr in ("dim", "dimension", "embedding_dim"):
        v = getattr(embedder, attr, None)
        if isinstance(v, int) and v > 0:
            return v
    return int(np.asarray(embedder.embed_texts(["dimension probe"])).shape[-1])


def _ingest():
    """The ingest package's public functions (imported lazily: it pulls in media tooling)."""
    try:
        import vidroute.ingest as ingest
    except ImportError as exc:  # pragma: no cover - ingest is part of the package
        raise ConfigError(f"the ingest stage is unavailable: {exc}") from exc
    return ingest


class SearchEngine:
    """The front object over a store: query routing and embedding, fusion settings, indexing.

    Args:
        store: an open store (see `vidroute.search.stores.open_store`).
        embedders: {signal: embedder or None}; an embedder has `embed_texts(list[str]) -> (n, d)` L2-normalised.
            Signals without an embedder get no query vector (their weight moves to the others).
        router: anything with `route(query) -> RouteResult` (`vidroute.router.Router`); None → uniform weights.
        ingest_config: passed to `vidroute.ingest.ingest_file` when indexing.
        candidates: candidate depth K per leg for min-max/RRF/BM25 fusion.
    """

    def __init__(
        self,
        store: FusingStore,
        *,
        embedders: Mapping[str, Any] | None = None,
        router: Any = None,
        ingest_config: Any = None,
        candidates: int | None = None,
    ) -> None:
        self.store = store
        self.router = router
        self.ingest_config = ingest_config
        self._embedders: dict[str, Any] | None = dict(embedders) if embedders is not None else None
        if candidates is not None:
            store.candidates = candidates
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vidroute-query")
        self._write_lock = threading.Lock()
        self._embed_lock = threading.Lock()
        if self._embedders is not None and store.config is not None:
            self._check_embedders(self._embedders)

    # ---- construction -------------------------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        uri: str,
        *,
        model: str | Path | None = None,
        embedders: Mapping[str, Any] | None = None,
        router: Any = None,
        **store_options: Any,
    ) -> SearchEngine:
        """Open the store at `uri` (created on first index); `model` is a router folder from `vidroute train`.

        Without `embedders` the store's own config (`vidroute_store.json`) says which embedders to rebuild; a new
        store gets ingest's default set. Embedders whose dimensions differ from the store's raise StoreError.
        """
        store = open_store(uri, **store_options)
        if router is None and model is not None:
            router = load_router(model)
        return cls(store, embedders=embedders, router=router)

    @property
    def signals(self) -> list[str]:
        """Signals this engine searches: the store's, or those the embedders give for a store not yet written."""
        if self.store.signals:
            return self.store.signals
        return [s for s, e in self.embedders.items() if e is not None]

    @property
    def embedders(self) -> dict[str, Any]:
        with self._embed_lock:
            if self._embedders is None:
                self._embedders = self._load_embedders()
                if self.store.config is not None:
                    self._check_embedders(self._embedders)
            return self._embedders

    def _load_embedders(self) -> dict[str, Any]:
        """The store's embedders rebuilt from its config, or ingest's offline default set for a new store."""
        ingest = _ingest()
        cfg = self.store.config
        specs: dict[str, str | None] | None = None
        if cfg is not None and cfg.embedders:
            # Signals the store does not hold get None, so the registry's defaults do not add them back.
            specs = {s: cfg.embedders.get(s) for s in ingest.SIGNALS}
            missing = [s for s in cfg.layout.signals if not specs.get(s)]
            if missing:
                raise ConfigError(
                    f"store {self.store.uri} does not record the embedders of {missing}; pass embedders= explicitly"
                )
        try:
            return dict(ingest.build_embedders(specs))
        except VidrouteError:
            raise
        except Exception as exc:
            raise ConfigError(f"could not build the embedders {specs or 'default'}: {exc}") from exc

    def _config_for(self, embedders: Mapping[str, Any]) -> StoreConfig:
        active = {s: e for s, e in embedders.items() if e is not None}
        if not active:
            raise ConfigError("no embedder is configured for any signal; nothing could be indexed or searched")
        signals = [s for s in embedders if s in active]
        layout = Layout(signals=signals, dims={s: _embedder_dim(e) for s, e in active.items()})
        return StoreConfig(layout=layout, embedders={s: _embedder_spec(e) for s, e in active.items()})

    def _check_embedders(self, embedders: Mapping[str, Any]) -> None:
        layout = self.store.layout
        if layout is None:
            return
        for s, e in embedders.items():
            if e is None or s not in layout.dims:
                continue
            d = _embedder_dim(e)
            if d != layout.dims[s]:
                raise StoreError(
                    f"embedder for {s!r} gives {d}-d vectors but store {self.store.uri} holds {layout.dims[s]}-d; "
                    "open it with the embedders it was built with, or index into a new store"
                )

    # ---- search -------------------------------------------------------------------------------------------------
    def embed_query(self, query: str) -> dict[str, np.ndarray]:
        """One query vector per signal with an embedder; a shared embedder (e.g. MiniLM for two signals) runs once."""
        out: dict[str, np.ndarray] = {}
        done: dict[object, np.ndarray] = {}
        for s, e in self.embedders.items():
            if e is None or (self.store.signals and s not in self.store.signals):
                continue
            # Per-signal instances of one text model (MiniLM for all four offline) give the same query vector.
            key = _embedder_spec(e) or id(e)
            if key not in done:
                done[key] = np.asarray(e.embed_texts([query]), dtype=np.float32)[0]
            out[s] = done[key]
        return out

    def warm_up(self) -> float:
        """Load the query embedders and the router now (they load lazily); returns the seconds it took."""
        t = time.perf_counter()
        self.embed_query("warm up")
        if self.router is not None:
            self.router.route("warm up")
        return time.perf_counter() - t

    def _check_weights(self, weights: Mapping[str, float]) -> dict[str, float]:
        from vidroute.spec import DEFAULT_SIGNALS

        # A spec signal this store lacks is allowed (its weight is renormalised away); a typo is not.
        known = set(self.signals) | set(DEFAULT_SIGNALS)
        unknown = sorted(set(weights) - known)
        if unknown:
            raise ConfigError(f"weights name unknown signals {unknown}; this store has {sorted(known)}")
        try:
            return {s: float(w) for s, w in weights.items()}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"weights must be numbers, got {dict(weights)}") from exc

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        weights: Mapping[str, float] | None = None,
        filters: Filters | None = None,
        fusion: str = "raw",
        bm25: bool = True,
    ) -> SearchResponse:
        """Route (unless `weights` are given) and embed the query concurrently, then one fused store search.

        The metadata weight also drives a BM25 leg over titles, descriptions, people, tags and transcripts when
        `bm25` is on. `fusion` is "raw" (exact Σ w·cos), "minmax" (the reference's per-signal min-max) or "rrf".
        """
        t0 = time.perf_counter()
        if not isinstance(query, str) or not query.strip():
            raise ConfigError("the query is empty; give some words to search for")
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}; choose one of {list(FUSIONS)}")
        timings: dict[str, float] = {}
        user_weights = self._check_weights(weights) if weights else None

        def timed(name: str, fn: Callable[[], Any]) -> Any:
            s = time.perf_counter()
            try:
                return fn()
            finally:
                timings[name] = (time.perf_counter() - s) * 1000

        route = None
        if user_weights is None and self.router is not None:
            fut_route = self._pool.submit(timed, "route_ms", lambda: self.router.route(query))
            qv = timed("embed_ms", lambda: self.embed_query(query))
            route = fut_route.result()
        else:
            qv = timed("embed_ms", lambda: self.embed_query(query))
        if user_weights is not None:
            requested, source = user_weights, "user"
        elif route is not None:
            requested, source = dict(route.weights), "router"
        else:
            requested, source = None, "uniform"
        text = query if bm25 else None
        s = time.perf_counter()
        hits = self.store.search(qv, requested, k=k, text=text, filters=filters, fusion=fusion)
        timings["search_ms"] = (time.perf_counter() - s) * 1000
        _q, used, _legs = self.store.plan(qv, requested, text=text)
        timings["total_ms"] = (time.perf_counter() - t0) * 1000
        return SearchResponse(
            query=query,
            weights=used,
            route=route,
            weights_source=source,
            fusion=fusion,
            hits=hits,
            latency_ms=timings["total_ms"],
            timings=timings,
        )

    # ---- indexing -----------------------------------------------------------------------------------------------
    def ensure_configured(self) -> None:
        """Give a new store its layout from the embedders (no-op for an existing store: its dims were checked)."""
        if self.store.config is None:
            self.store.configure(self._config_for(self.embedders))

    def index_segments(self, video_id: str, segments: list[Segment]) -> int:
        """Replace one video's segments in the store (ingest already done); returns the number written."""
        self.ensure_configured()
        with self._write_lock:
            self.store.upsert_video(video_id, segments)
        return len(segments)

    def index_paths(
        self,
        paths: Iterable[str | Path],
        *,
        progress: Progress | None = None,
        force: bool = False,
        optimize_every: int = 100,
    ) -> IndexReport:
        """Ingest and store media files (folders are searched recursively); resumable and idempotent.

        A file whose content (video_id) is already in the store is left alone unless `force`; re-indexing replaces
        its segments. Files that fail to ingest are reported in `skipped` with the error, and the run goes on.
        """
        t0 = time.perf_counter()
        ingest = _ingest()
        from vidroute.ingest.media import file_id

        files = expand_paths(paths)
        report = IndexReport(store=self.store.uri)
        config = self.ingest_config if self.ingest_config is not None else ingest.IngestConfig()
        self.ensure_configured()
        asr: Any = None  # one speech-to-text model for the whole run, loaded when the first file needs it
        written = 0
        for i, path in enumerate(files):
            if progress is not None:
                progress(i, len(files), str(path))
            t = time.perf_counter()
            try:
                if not path.is_file():
                    raise IngestError(f"{path}: no such file")
                vid = file_id(path)
                if not force and self.store.has_video(vid):
                    report.existing.append(str(path))
                    continue
                if asr is None:
                    asr = config.transcriber() if config.asr else False
                segments = ingest.ingest_file(path, embedders=self.embedders, config=config, asr=asr)
                if not segments:
                    raise IngestError(f"{path}: ingest produced no segments")
                self.index_segments(vid, segments)
            except StoreError:
                raise
            except (VidrouteError, OSError) as exc:  # a bad file is reported and skipped; the run goes on
                log.warning("skipping %s: %s", path, exc)
                report.skipped.append(SkippedFile(path=str(path), error=f"{type(exc).__name__}: {exc}"))
                continue
            report.indexed.append(
                IndexedFile(path=str(path), video_id=vid, segments=len(segments), seconds=time.perf_counter() - t)
            )
            report.segments += len(segments)
            written += 1
            if optimize_every and written % optimize_every == 0:
                self.store.optimize()
        if written:
            self.store.optimize()
        if progress is not None:
            progress(len(files), len(files), "")
        report.seconds = time.perf_counter() - t0
        return report

    # ---- admin --------------------------------------------------------------------------------------------------
    def delete_video(self, video_id: str) -> int:
        with self._write_lock:
            return self.store.delete_video(video_id)

    def stats(self) -> dict[str, Any]:
        out = self.store.stats()
        out["router"] = getattr(self.router, "model", None) or (type(self.router).__name__ if self.router else None)
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.store.close()

    def __enter__(self) -> SearchEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_router(model: str | Path) -> Any:
    """`vidroute.router.Router.load(model)`, with a clear error when the router stage is missing."""
    try:
        from vidroute.router import Router
    except ImportError as exc:
        raise ConfigError(f"cannot load router {model}: the router module is unavailable ({exc})") from exc
    return Router.load(model)
