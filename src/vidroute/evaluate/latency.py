"""Router latency (single queries after warm-up: p50/p95/p99) and batch throughput, plus CPU-seconds for cost."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from vidroute.evaluate.metrics import percentiles


class _Routes(Protocol):
    def route(self, query: str) -> Any: ...
    def route_batch(self, queries: list[str]) -> list[Any]: ...


def _cycle(queries: Sequence[str], n: int) -> list[str]:
    if not queries:
        raise ValueError("need at least one query to time the router")
    return [queries[i % len(queries)] for i in range(n)]


def measure_latency(
    router: _Routes, queries: Sequence[str], *, warmup: int = 20, n: int | None = None
) -> dict[str, Any]:
    """Time `router.route(q)` one query at a time, after `warmup` untimed calls.

    Wall time comes from `perf_counter_ns` around each call (client side, as the reference measured its
    833 ms); CPU time from `process_time` over the whole timed loop (all threads of this process), which is
    what a vCPU bill charges. Returns milliseconds: p50/p95/p99/mean/min/max, `cpu_ms_per_query`, `n`,
    and `samples_ms` (for histograms).
    """
    timed = _cycle(queries, n if n is not None else len(queries))
    for q in _cycle(queries, warmup) if warmup else []:
        router.route(q)
    samples = np.empty(len(timed), dtype=np.float64)
    cpu0 = time.process_time()
    for i, q in enumerate(timed):
        t0 = time.perf_counter_ns()
        router.route(q)
        samples[i] = (time.perf_counter_ns() - t0) / 1e6
    cpu = time.process_time() - cpu0
    return {
        "n": len(timed),
        "warmup": warmup,
        **{f"{k}_ms": v for k, v in percentiles(samples).items()},
        "min_ms": float(samples.min()),
        "max_ms": float(samples.max()),
        "cpu_ms_per_query": cpu * 1000 / len(timed),
        "samples_ms": samples.tolist(),
    }


def measure_throughput(
    router: _Routes,
    queries: Sequence[str],
    *,
    batch_sizes: Sequence[int] = (1, 32, 256),
    min_queries: int = 256,
    warmup_batches: int = 1,
) -> dict[str, dict[str, float]]:
    """Routes per second through `route_batch` for each batch size, over at least `min_queries` queries
    (cycled from `queries`). Also CPU-ms per query, for batch-mode cost."""
    out: dict[str, dict[str, float]] = {}
    for bs in batch_sizes:
        n_batches = max(1, -(-min_queries // bs))
        pool = _cycle(queries, bs * n_batches)
        batches = [pool[i * bs : (i + 1) * bs] for i in range(n_batches)]
        for b in batches[:warmup_batches]:
            router.route_batch(b)
        cpu0, t0 = time.process_time(), time.perf_counter()
        for b in batches:
            router.route_batch(b)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        out[str(bs)] = {
            "batch_size": bs,
            "queries": len(pool),
            "seconds": wall,
            "routes_per_second": len(pool) / wall if wall > 0 else float("inf"),
            "cpu_ms_per_query": cpu * 1000 / len(pool),
        }
    return out
