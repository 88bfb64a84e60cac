"""In-memory scans of the concatenated vectors: concurrent queries share one product; an int8 copy is 4x cheaper.

An exact scan of 100k segments × 1536 floats reads 600 MB per query: it is bound by memory bandwidth, so two
threads scanning at once each run at half speed. Two remedies, measured on this 2-core machine at 100k rows:

- `ScanBatcher`: whoever finds no scan running takes every query waiting at that moment and scores them in one
  product, the others wait for their row. Nothing is delayed on purpose: a lone query is scored at once.
- `Int8Scan`: an int8 copy of the matrix (one scale per row) scored by onnxruntime's integer matrix product
  (VNNI kernels, weights prepacked once): 15 ms for one query and 21 ms for eight, against 58 ms for one query in
  float32 numpy. Its scores are approximate (max error ~1e-3 on unit vectors), so callers rescore a margin of
  candidates exactly from the float32 rows (`candidate_count`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vidroute.errors import require


class Scan(Protocol):
    """Scores a block of queries (b, D) against every row: (b, rows)."""

    approximate: bool

    def scores(self, queries: np.ndarray) -> np.ndarray: ...


class F32Scan:
    """Exact float32 scores by numpy; a lone query reads only the column runs its weights use."""

    approximate = False

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def scores(self, queries: np.ndarray) -> np.ndarray:
        if len(queries) == 1:
            return _sparse_scan(self.matrix, queries[0])[None, :]
        return (self.matrix @ queries.T).T


class Int8Scan:
    """Approximate scores from an int8 copy of `matrix` (symmetric, one scale per row) via onnxruntime.

    Queries are quantised per query to uint8 with zero point 128. Memory: one int8 copy (a quarter of the float32
    matrix) plus onnxruntime's prepacked copy of it.
    """

    approximate = True

    def __init__(self, matrix: np.ndarray, *, chunk: int = 8192) -> None:
        ort = require("onnxruntime", "search")
        require("onnx", "search")
        from onnx import TensorProto, helper, numpy_helper

        n, d = matrix.shape
        scale = (np.abs(matrix).max(axis=1) / 127.0).astype(np.float32)
        scale[scale == 0] = 1.0
        codes = np.empty((d, n), dtype=np.int8)  # MatMulInteger's B is (K, N): the transposed matrix
        for a in range(0, n, chunk):  # in row chunks: a whole-matrix temporary would be 600 MB at 100k rows
            inv = (1.0 / scale[a : a + chunk])[:, None]
            codes[:, a : a + chunk] = np.rint(matrix[a : a + chunk] * inv).astype(np.int8).T
        self.row_scale = scale
        # The codes reach onnxruntime as an external initializer (no protobuf copy: building the session at 100k rows
        # takes 0.3 s instead of 2 s) and stay constant, so onnxruntime prepacks them once.
        codes_ref = TensorProto(name="codes", data_type=TensorProto.INT8, dims=[d, n])
        codes_ref.data_location = TensorProto.EXTERNAL
        codes_ref.external_data.add(key="location", value="vidroute-int8-codes")
        graph = helper.make_graph(
            [helper.make_node("MatMulInteger", ["q", "codes", "q_zero"], ["dots"])],
            "vidroute_int8_scan",
            [helper.make_tensor_value_info("q", TensorProto.UINT8, ["batch", d])],
            [helper.make_tensor_value_info("dots", TensorProto.INT32, ["batch", n])],
            initializer=[codes_ref, numpy_helper.from_array(np.array(128, dtype=np.uint8), "q_zero")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # serving runs several requests at once; batching does the rest
        options.log_severity_level = 3
        self._codes = ort.OrtValue.ortvalue_from_numpy(codes)  # must outlive the session
        options.add_external_initializers(["codes"], [self._codes])
        self._session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def scores(self, queries: np.ndarray) -> np.ndarray:
        q_scale = np.abs(queries).max(axis=1) / 127.0
        q_scale[q_scale == 0] = 1.0
        q = (np.rint(queries / q_scale[:, None]) + 128).astype(np.uint8)
        dots = self._session.run(None, {"q": q})[0]
        return dots.astype(np.float32) * self.row_scale[None, :] * q_scale[:, None].astype(np.float32)


def candidate_count(k: int, rows: int) -> int:
    """How many top rows of an approximate scan to rescore exactly for an exact top k."""
    return min(rows, max(2 * k, k + 64))


@dataclass
class _Waiter:
    query: np.ndarray
    result: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class ScanBatcher:
    """Scores queries against a `Scan` for concurrent callers, batching whatever is waiting (see the module doc).

    Args:
        max_batch: at most this many queries per product (bounds the (batch × rows) score block in memory).
    """

    def __init__(self, *, max_batch: int = 16) -> None:
        self.max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[tuple[Scan, _Waiter]] = []
        self._busy = False
        self.batches = 0  # products computed (for tests and stats)
        self.queries = 0

    def scores(self, scan: Scan, query: np.ndarray) -> np.ndarray:
        """`scan`'s scores for one query (one per row); calls with the same `scan` object batch together."""
        me = _Waiter(query)
        with self._cond:
            self._waiting.append((scan, me))
            while not me.done and self._busy:
                self._cond.wait()
            if me.done:
                return self._unwrap(me)
            self._busy = True
            others = [w for s, w in self._waiting if s is scan and w is not me][: self.max_batch - 1]
            batch = [me, *others]
            taken = {id(w) for w in batch}
            self._waiting = [(s, w) for s, w in self._waiting if id(w) not in taken]
        try:
            self._compute(scan, batch)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return self._unwrap(me)

    def _compute(self, scan: Scan, batch: list[_Waiter]) -> None:
        try:
            block = scan.scores(np.stack([w.query for w in batch]))
            for j, w in enumerate(batch):
                w.result = np.ascontiguousarray(block[j])
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
