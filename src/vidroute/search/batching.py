"""Concurrent exact scans of one in-memory matrix share a single matrix product (scores for many queries at once).

An exact scan of 100k segments × 1536 floats reads 600 MB per query: it is bound by memory bandwidth, not
arithmetic, so two threads scanning at once each run at half speed. Multiplying the matrix by a block of queries
reads it once for all of them. `ScanBatcher.scores` is called by each searching thread; whoever finds no product
running takes every query waiting at that moment and computes them together, the others wait for their column.
Nothing is delayed on purpose: a lone query is computed at once, and only over the slots its weights use.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Waiter:
    query: np.ndarray
    result: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = field(default=False)


class ScanBatcher:
    """Scores `matrix @ query` for concurrent callers, batching whatever is waiting (see the module doc).

    Args:
        max_batch: at most this many queries per product (bounds the (rows × batch) score block in memory).
    """

    def __init__(self, *, max_batch: int = 32) -> None:
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[tuple[np.ndarray, _Waiter]] = []
        self._busy = False
        self.batches = 0  # products computed (for tests and stats)
        self.queries = 0

    def scores(self, matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
        """`matrix @ query` (float32, one score per row); `matrix` must be the same object for calls to batch."""
        me = _Waiter(query)
        with self._cond:
            self._waiting.append((matrix, me))
            while not me.done and self._busy:
                self._cond.wait()
            if me.done:
                return self._unwrap(me)
            self._busy = True
            others = [w for m, w in self._waiting if m is matrix and w is not me][: self.max_batch - 1]
            batch = [me, *others]
            taken = {id(w) for w in batch}
            self._waiting = [(m, w) for m, w in self._waiting if id(w) not in taken]
        try:
            self._compute(matrix, batch)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return self._unwrap(me)

    def _compute(self, matrix: np.ndarray, batch: list[_Waiter]) -> None:
        try:
            if len(batch) == 1:
                batch[0].result = _sparse_scan(matrix, batch[0].query)
            else:
                block = matrix @ np.stack([w.query for w in batch], axis=1)
                for j, w in enumerate(batch):
                    w.result = np.ascontiguousarray(block[:, j])
        except BaseException as exc:  # every waiter must wake up, with the error
            for w in batch:
                w.error = exc
        for w in batch:
            w.done = True
        self.batches += 1
        self.queries += len(batch)

    @staticmethod
    def _unwrap(w: _Waiter) -> np.ndarray:
        if w.error is not None:
            raise w.error
        assert w.result is not None
        return w.result


def _sparse_scan(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """`matrix @ query` reading only the column runs where `query` is non-zero (unweighted signals are zeros)."""
    nz = np.flatnonzero(query)
    if nz.size == 0:
        return np.zeros(matrix.shape[0], dtype=np.float32)
    if nz.size == query.size:
        return matrix @ query
    # Contiguous runs of non-zero columns: one per weighted signal slot.
    breaks = np.flatnonzero(np.diff(nz) > 1)
    starts = np.concatenate([[nz[0]], nz[breaks + 1]])
    ends = np.concatenate([nz[breaks] + 1, [nz[-1] + 1]])
    if (ends - starts).sum() > 0.75 * query.size:
        return matrix @ query
    out = matrix[:, starts[0] : ends[0]] @ query[starts[0] : ends[0]]
    for a, b in zip(starts[1:], ends[1:], strict=True):
        out += matrix[:, a:b] @ query[a:b]
    return out
