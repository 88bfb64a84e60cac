"""Concurrent exact scans: batched products give each caller exactly its own scores."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vidroute.search.batching import ScanBatcher, _sparse_scan


class _Gated(np.ndarray):
    """A matrix whose products wait for `gate`, so the test decides when the first scan finishes."""

    gate = threading.Event()

    def __matmul__(self, other):
        self.gate.wait(10)
        return np.asarray(self) @ other


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
    mat = base.view(_Gated)
    queries = [rng.standard_normal(32).astype(np.float32) for _ in range(4)]
    batcher = ScanBatcher()
    out: dict[int, np.ndarray] = {}

    def run(i: int) -> None:
        out[i] = batcher.scores(mat, queries[i])

    _Gated.gate.clear()
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
    _Gated.gate.set()
    for t in [first, *rest]:
        t.join(10)
    assert batcher.queries == 4 and batcher.batches == 2  # one lone scan, then the three waiting queries together
    for i, q in enumerate(queries):
        assert out[i] == pytest.approx(base @ q, abs=1e-4)


def test_an_error_in_a_batched_product_reaches_every_waiter():
    batcher = ScanBatcher()
    with pytest.raises(ValueError):
        batcher.scores(np.zeros((3, 4), dtype=np.float32), np.ones(5, dtype=np.float32))
    assert not batcher._busy  # the batcher is usable again
    assert batcher.scores(np.ones((3, 4), dtype=np.float32), np.ones(4, dtype=np.float32)).tolist() == [4.0] * 3
