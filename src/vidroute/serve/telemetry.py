"""Prometheus metrics, one registry per app (so tests and several apps in one process never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class Metrics:
    """The service's counters and histograms; `registry` is what `/metrics` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "vidroute_requests",
            "HTTP requests by method, route template and status.",
            ["method", "path", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "vidroute_request_seconds",
            "HTTP request latency by method and route template.",
            ["method", "path"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("vidroute_requests_in_flight", "HTTP requests being served.", registry=r)
        self.route_confidence = Histogram(
            "vidroute_route_confidence", "Router confidence per routed query.", buckets=_CONFIDENCE_BUCKETS, registry=r
        )
        self.route_dominant = Counter(
            "vidroute_route_dominant", "Routed queries by dominant signal.", ["signal"], registry=r
        )
        self.escalations = Counter(
            "vidroute_escalations", "Routed queries the router escalated to its teacher.", registry=r
        )
        self.route_cache_hits = Counter(
            "vidroute_route_cache_hits", "Route results served from the LRU cache.", registry=r
        )
        self.jobs = Counter("vidroute_ingest_jobs", "Ingest jobs by final status.", ["status"], registry=r)
        self.index_segments = Gauge("vidroute_index_segments", "Segments in the search index (last known).", registry=r)

    def observe_routes(self, results) -> None:
        # Cheap enough per query: a histogram observe is a lock and an add.
        for res in results:
            self.route_confidence.observe(res.confidence)
            self.route_dominant.labels(res.dominant).inc()
            if res.escalated:
                self.escalations.inc()
