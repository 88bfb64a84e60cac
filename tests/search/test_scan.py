"""In-memory scans: batched products give each caller its own scores; the int8 first pass ranks like float32."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vidroute.search.scan import F32Scan, Int8Scan, ScanBatcher, _sparse_scan, candidate_count


class _GatedScan(F32Scan):
    """A float32 scan that waits for `gate`, so the test decides when the first product finishes."""

    def __init__(self, matrix: np.ndarray) -> None:
        super().__init__(matrix)
        self.gate = threading.Event()
        self.calls: list[int] = []

    def scores(self, queries: np.ndarray) -> np.ndarray:
        self.gate.wait(10)
        self.calls.append(len(queries))
        return super().scores(queries)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_sparse_scan_equals_full_product_when_slots_are_zero():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((500, 64)).astype(np.float32)
    for zero in ([], [slice(0, 16)], [slice(16, 32), slice(48, 64)], [slice(0, 48)], [slice(0, 64)]):
        q = rng.standard_normal(64).astype(np.float32)
        for z in zero:
            q[z] = 0
        assert _sparse_scan(m, q) == pytest.approx(m @ q, abs=1e-4)


def test_queries_waiting_behind_a_scan_share_the_next_product():
    rng = np.random.default_rng(1)
    base = rng.standard_normal((2000, 32)).astype(np.float32)
    scan = _GatedScan(base)
    queries = [rng.standard_normal(32).astype(np.float32) for _ in range(4)]
    batcher = ScanBatcher()
    out: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        out[i] = batcher.scores(scan, queries[i])

    first = threading.Thread(target=run, args=(0,))
    first.start()
    while not batcher._busy:  # the first scan has started and is held at the gate
        time.sleep(0.001)
    rest = [threading.Thread(target=run, args=(i,)) for i in (1, 2, 3)]
    for t in rest:
        t.start()
    deadline = time.monotonic() + 10
    while len(batcher._waiting) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    scan.gate.set()
    for t in [first, *rest]:
        t.join(10)
    assert scan.calls == [1, 3]  # one lone scan, then the three waiting queries in one product
    assert batcher.queries == 4 and batcher.batches == 2
    for i, q in enumerate(queries):
        assert out[i] == pytest.approx(base @ q, abs=1e-4)


def test_an_error_in_a_scan_reaches_the_caller_and_frees_the_batcher():
    batcher = ScanBatcher()
    with pytest.raises(ValueError):
        batcher.scores(F32Scan(np.zeros((3, 4), dtype=np.float32)), np.ones(5, dtype=np.float32))
    assert not batcher._busy
    assert (
        batcher.scores(F32Scan(np.ones((3, 4), dtype=np.float32)), np.ones(4, dtype=np.float32)).tolist() == [4.0] * 3
    )


def test_int8_scan_is_close_and_its_candidates_hold_the_exact_top_k():
    rng = np.random.default_rng(2)
    centres = _unit(rng.standard_normal((40, 96)))
    mat = _unit(centres[rng.integers(0, 40, 5000)] + 0.4 * _unit(rng.standard_normal((5000, 96))))
    scan = Int8Scan(mat)
    queries = _unit(centres[:8] + 0.3 * _unit(rng.standard_normal((8, 96))))
    approx = scan.scores(queries)
    exact = queries @ mat.T
    assert approx.shape == exact.shape and np.abs(approx - exact).max() < 0.02
    m = candidate_count(10, len(mat))
    for a, e in zip(approx, exact, strict=True):
        cand = np.argpartition(-a, m - 1)[:m]
        assert set(np.argsort(-e)[:10]) <= set(cand)
