"""The service's live objects: settings, router, search engine, jobs, metrics; loaded once, in the background."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from vidroute.serve.config import Settings
from vidroute.serve.handlers import ApiError
from vidroute.serve.jobs import Job, JobManager
from vidroute.serve.media import MediaSigner
from vidroute.serve.telemetry import Metrics

log = logging.getLogger(__name__)


def _limit_torch_threads(n: int) -> None:
    """Measured here: MiniLM query embedding with torch's default 2 threads on a busy 2-core host cost ~9x the CPU
    of 1 thread (threads spin waiting for each other), so the server runs torch with `n` (default 1)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)


class Service:
    """Holds what the endpoints share. Pass `router`/`engine` to serve ready-made objects (tests, notebooks)."""

    def __init__(self, settings: Settings, *, router: Any = None, engine: Any = None) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.signer = MediaSigner(settings.media_secret)
        self.router = router
        self.engine = engine
        self._owns_engine = engine is None  # a given engine belongs to the caller: never closed here
        self.errors: dict[str, str] = {}
        self.loaded = threading.Event()
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.jobs = JobManager(self._index, keep=settings.max_jobs_kept, on_done=self._job_done)
        self._thread: threading.Thread | None = None

    # ---- loading -------------------------------------------------------------------------------------------
    def start(self, *, background: bool = True) -> None:
        """Load whatever is configured and not yet given; in a thread so /healthz answers while models load."""
        if background:
            self._thread = threading.Thread(target=self._load, name="vidroute-load", daemon=True)
            self._thread.start()
        else:
            self._load()

    def _load(self) -> None:
        s = self.settings
        needs_loading = (self.router is None and s.model_dir is not None) or (self.engine is None and s.store_uri)
        if needs_loading and s.torch_threads:
            _limit_torch_threads(s.torch_threads)
        try:
            if self.router is None and s.model_dir is not None:
                try:
                    from vidroute.router import Router

                    teacher = None
                    if s.teacher and s.router_threshold is not None:
                        from vidroute.teachers import load_teacher

                        teacher = load_teacher(s.teacher)
                    self.router = Router.load(
                        s.model_dir,
                        backend=s.router_backend,
                        teacher=teacher,
                        threshold=s.router_threshold if teacher is not None else None,
                        threads=s.router_threads,
                    )
                    log.info("router loaded from %s", s.model_dir)
                except Exception as exc:
                    self.errors["router"] = f"{type(exc).__name__}: {exc}"
                    log.error("could not load the router from %s: %s", s.model_dir, exc)
            if self.engine is None and s.store_uri:
                try:
                    from vidroute.search.engine import SearchEngine

                    # The engine routes with our router, concurrently with embedding the query.
                    self.engine = SearchEngine.open(s.store_uri, router=self.router)
                    log.info("search store opened: %s", s.store_uri)
                except Exception as exc:
                    self.errors["store"] = f"{type(exc).__name__}: {exc}"
                    log.error("could not open the search store %s: %s", s.store_uri, exc)
            self._warm_up()
            self.refresh_count()
        finally:
            self.loaded.set()

    def _warm_up(self) -> None:
        """One route and one search before /readyz says ready: the engine loads its query embedders lazily, and a
        first real query would otherwise pay seconds of model loading (and could hit the request timeout)."""
        try:
            if self.router is not None:
                self.router.route("warm up query")
            if self.engine is not None:
                self.engine.store.warm()
                _ = self.engine.embedders
                self.engine.search("warm up query", k=1)
        except Exception as exc:  # an empty or odd store must not block start-up; real queries will report it
            log.info("warm-up query failed (ignored): %s", exc)

    def wait_loaded(self, timeout: float | None = None) -> bool:
        return self.loaded.wait(timeout)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        s = self.settings
        checks: dict[str, Any] = {}
        if not self.loaded.is_set():
            return False, {"loading": True}
        checks["router"] = "ok" if self.router is not None else self.errors.get("router", "not configured")
        if s.store_uri or self.engine is not None:
            checks["store"] = "ok" if self.engine is not None else self.errors.get("store", "not loaded")
        ready = all(v == "ok" for v in checks.values())
        return ready, checks

    # ---- access --------------------------------------------------------------------------------------------
    def require_router(self) -> Any:
        if self.router is not None:
            return self.router
        if not self.loaded.is_set():
            raise ApiError(503, "the router is still loading; retry shortly", headers={"Retry-After": "1"})
        reason = self.errors.get("router")
        if reason:
            raise ApiError(503, f"the router failed to load: {reason}", code="model_unavailable")
        raise ApiError(503, "no router is configured; start the service with VIDROUTE_MODEL_DIR (or --model)")

    def require_engine(self) -> Any:
        if self.engine is not None:
            return self.engine
        if not self.loaded.is_set():
            raise ApiError(503, "the search store is still loading; retry shortly", headers={"Retry-After": "1"})
        reason = self.errors.get("store")
        if reason:
            raise ApiError(503, f"the search store failed to open: {reason}", code="store_unavailable")
        raise ApiError(503, "no search store is configured; start the service with VIDROUTE_STORE_URI (or --store)")

    def media_roots(self) -> list[Path] | None:
        """Folders media may be served from; None = any signed path (only indexed paths are ever signed)."""
        if not self.settings.media_roots:
            return None
        roots = [*self.settings.media_roots, self.settings.uploads_dir]
        uri = self.settings.store_uri
        if uri and "://" not in uri:
            roots.append(Path(uri))
        roots.append(self._keyframe_root())
        return roots

    def _keyframe_root(self) -> Path:
        """Where ingest writes keyframes: the engine's ingest config, else ingest's default cache folder."""
        config = getattr(self.engine, "ingest_config", None)
        root = getattr(config, "keyframe_root", None)
        if callable(root):
            return Path(root())
        from vidroute.ingest.pipeline import default_keyframe_dir

        return default_keyframe_dir()

    # ---- work ----------------------------------------------------------------------------------------------
    def route_many(self, queries: list[str]) -> list[Any]:
        """Route queries (batched when several), through the LRU cache when it is on; records metrics."""
        router = self.require_router()
        size = self.settings.route_cache_size
        if size <= 0:
            results = [router.route(queries[0])] if len(queries) == 1 else list(router.route_batch(queries))
            self.metrics.observe_routes(results)
            return results
        return self._route_cached(router, queries, size)

    def _route_cached(self, router: Any, queries: list[str], size: int) -> list[Any]:
        t0 = time.perf_counter()
        out: list[Any] = [None] * len(queries)
        missing: list[int] = []
        with self._cache_lock:
            for i, q in enumerate(queries):
                hit = self._cache.get(q)
                if hit is None:
                    missing.append(i)
                else:
                    self._cache.move_to_end(q)
                    out[i] = hit
        hits = len(queries) - len(missing)
        if hits:
            self.metrics.route_cache_hits.inc(hits)
            lookup_ms = (time.perf_counter() - t0) * 1000
            out = [r if r is None else r.model_copy(update={"latency_ms": lookup_ms}) for r in out]
        if missing:
            fresh_q = [queries[i] for i in missing]
            fresh = [router.route(fresh_q[0])] if len(fresh_q) == 1 else list(router.route_batch(fresh_q))
            self.metrics.observe_routes(fresh)
            with self._cache_lock:
                for i, res in zip(missing, fresh, strict=True):
                    out[i] = res
                    self._cache[queries[i]] = res
                while len(self._cache) > size:
                    self._cache.popitem(last=False)
        if hits:
            fresh_set = set(missing)
            self.metrics.observe_routes([r for i, r in enumerate(out) if i not in fresh_set])
        return out

    def _index(self, paths: list[str], progress=None) -> Any:
        engine = self.require_engine()
        return engine.index_paths(paths, progress=progress)

    def _job_done(self, job: Job) -> None:
        self.metrics.jobs.labels(job.status).inc()
        self.refresh_count()

    def refresh_count(self) -> None:
        if self.engine is None:
            return
        try:
            stats = self.engine.stats()
            count = stats.get("segments", stats.get("count"))
            if isinstance(count, (int, float)):
                self.metrics.index_segments.set(count)
        except Exception as exc:
            log.debug("could not read store stats: %s", exc)

    def close(self, timeout: float = 60.0) -> None:
        # Wait for a load still in progress: a daemon thread killed inside torch at interpreter exit aborts the
        # process ("terminate called without an active exception").
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        self.jobs.shutdown(wait=False)
        if not self._owns_engine:
            return
        closer = getattr(self.engine, "close", None)
        if callable(closer):
            try:
                closer()
            except Exception:
                log.debug("engine close failed", exc_info=True)
