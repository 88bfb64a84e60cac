"""The embedded default store: LanceDB in a directory (no server), exact fusion, native BM25, SQL filters.

One row per segment holds its payload, a `text` column under a native full-text index (BM25), a `mask` of the
signals it has, one vector column per signal (`vec_<signal>`, zeros where missing), and `all`: the concatenated
per-signal vectors (see `fusion.Layout`).

Tables up to `exact_limit` rows (100k) are searched exactly: a weighted fusion is one numpy product of an in-memory
copy of `all` with the weighted concatenated query (LanceDB's own flat scan is ~100× slower). Beyond
`index_threshold` rows, `optimize()` builds one IVF_SQ index per signal column (inner product on unit vectors) and
searches of tables larger than `exact_limit` become: each weighted signal's top-K row ids through its own index
(probing `nprobes` partitions), the union's `all` vectors read in one take and rescored exactly on every signal,
and the payload read for the final hits only.
Per-signal indexes, rather than one index on `all`, because partitions of the concatenated space serve weighted
queries badly: a query that weights one signal 0.7 is short and lopsided in that space, and measured on structured
data the concatenated IVF missed the whole true top 10 for such queries, while per-signal partitions stay coherent.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import StoreError, require
from vidroute.search.base import CONFIG_NAME, PAYLOAD, Candidates, FusingStore, StoreConfig, _pool, date_bounds
from vidroute.search.bm25 import SparseBM25
from vidroute.search.scan import F32Scan, Int8Scan, ScanBatcher, candidate_count
from vidroute.search.types import Filters

log = logging.getLogger(__name__)

_COLUMNS = list(PAYLOAD)
_INT8_BACKGROUND_ROWS = 50_000  # from here the int8 copy is built in the background after each table change


def _vectors(table, dim: int) -> np.ndarray:
    """The `all` column of an Arrow result as a float32 (rows, dim) matrix."""
    values = table.column("all").combine_chunks().values.to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32).reshape(-1, dim)


def _snapshot_rows(ids: np.ndarray, payload: Any, positions: Any) -> list[dict[str, Any]]:
    """Lazy hits at `positions` of the in-memory snapshot: the payload is read for the final hits only."""
    return [{"segment_id": ids[i], "_pos": int(i), "_payload": payload} for i in positions]


def sql_str(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def where_sql(filters: Filters | None) -> str | None:
    """`Filters` as a LanceDB (DataFusion) SQL predicate, or None."""
    if filters is None:
        return None
    lo, hi = date_bounds(filters)
    parts = []
    if lo is not None:
        parts.append(f"date >= {sql_str(lo)}")
    if hi is not None:
        parts.append(f"date < {sql_str(hi)} AND date != ''")
    if filters.people:
        names = ", ".join(sql_str(p.casefold()) for p in filters.people)
        parts.append(f"array_has_any(people_key, [{names}])")
    if filters.genre is not None:
        parts.append(f"genre_key = {sql_str(filters.genre.casefold())}")
    if filters.video_id is not None:
        parts.append(f"video_id = {sql_str(filters.video_id)}")
    return " AND ".join(f"({p})" for p in parts) or None


class LanceStore(FusingStore):
    """LanceDB-backed store in directory `path` (created on first write). See the module doc for the layout.

    Args:
        path: the store directory.
        table: table name inside it.
        index_threshold: `optimize()` builds the per-signal vector indexes once the table has this many rows.
        exact_limit: tables up to this many rows are searched exactly (indexes or not) by numpy over an in-memory
            copy of `all` (6 KB per segment at 4 × 384-d), refreshed when the table version changes; LanceDB's
            own flat scan is ~100× slower (measured 3 s per query at 100k rows).
        int8_min_rows: from this many rows the exact scan's first pass reads an int8 copy of the vectors (4x less
            memory traffic; ~3x less CPU per query measured at 100k) and rescores a margin of candidates in float32;
            None = always float32.
        index_type: "IVF_SQ" (default: 8-bit scalar codes, accurate enough to rank near-ties), "IVF_PQ" (smaller
            and faster to scan, but measured too lossy: recall@100 0.89 with every partition probed), "IVF_FLAT".
        num_partitions: IVF partitions per index (default ~sqrt(rows)).
        nprobes, refine_factor: search-time recall/latency knobs once indexes exist.
        ann_candidates: each signal's index returns at least this many candidates for exact rescoring (at 1M rows,
            recall@10 against exact fusion is bound by this, not by nprobes: 0.95 at 100, 0.967 at 200).
    """

    backend = "lancedb"

    def __init__(
        self,
        path: str | Path,
        *,
        table: str = "segments",
        index_threshold: int = 100_001,
        exact_limit: int = 100_000,
        int8_min_rows: int | None = 20_000,
        index_type: str = "IVF_SQ",
        num_partitions: int | None = None,
        nprobes: int = 16,
        ann_candidates: int = 200,
        refine_factor: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        self.uri = f"lancedb://{self.path}"
        self.table_name = table
        self.index_threshold = index_threshold
        self.exact_limit = exact_limit
        # (version, ids, `all` matrix, payload, masks) of the exact in-memory scan, and its shared scanner
        self._exact: tuple[int, np.ndarray, np.ndarray, Any, np.ndarray, Any] | None = None
        self.int8_min_rows = int8_min_rows
        self._batcher = ScanBatcher()
        self._positions: tuple[int, Any] = (-1, {})  # row id → snapshot position, for BM25 hits
        self._bm25: tuple[int, SparseBM25] | None = None  # in-memory BM25 of the exact snapshot's version
        # (checked at, version, rows, has vector indexes): each LanceDB call is a round trip through its event-loop
        # thread, so a search reads this at most once a second (writes here reset it; other processes' writes
        # show within read_consistency_interval anyway).
        self._state_cache: tuple[float, int, int, bool] = (0.0, -1, 0, False)
        self.index_type = index_type
        self.num_partitions = num_partitions
        self.nprobes = nprobes
        self.ann_candidates = ann_candidates
        self.refine_factor = refine_factor
        self._lock = threading.RLock()
        self._db = None
        self._table = None
        cfg = self.path / CONFIG_NAME
        if cfg.exists():
            try:
                self._config = StoreConfig.model_validate_json(cfg.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise StoreError(
                    f"{cfg} is not a valid vidroute store config: {exc}; delete the store and reindex"
                ) from exc
            self._open_table()
        elif self.path.exists() and any(self.path.iterdir()):
            raise StoreError(f"{self.path} exists but is not a vidroute store (no {CONFIG_NAME}); choose another path")

    # ---- setup ----------------------------------------------------------------------------------------------------
    def _connect(self):
        if self._db is None:
            lancedb = require("lancedb", "search")
            self.path.mkdir(parents=True, exist_ok=True)
            # Pick up writes by other processes (a CLI `index` while `serve` runs) within a second.
            self._db = lancedb.connect(str(self.path), read_consistency_interval=timedelta(seconds=1))
        return self._db

    def _open_table(self) -> None:
        db = self._connect()
        try:
            self._table = db.open_table(self.table_name)
        except (FileNotFoundError, ValueError) as exc:
            raise StoreError(f"store {self.path} has a config but no table {self.table_name!r}: {exc}") from exc

    def _schema(self, layout):
        pa = require("pyarrow", "search")
        s = pa.string()
        return pa.schema(
            [
                ("segment_id", s),
                ("video_id", s),
                ("path", s),
                ("start", pa.float64()),
                ("end", pa.float64()),
                ("transcript", s),
                ("title", s),
                ("description", s),
                ("people", pa.list_(s)),
                ("people_key", pa.list_(s)),
                ("genre", s),
                ("genre_key", s),
                ("date", s),
                ("tags", pa.list_(s)),
                ("keyframe", s),
                ("text", s),
                ("mask", pa.int64()),
                *((f"vec_{sig}", pa.list_(pa.float32(), layout.dims[sig])) for sig in layout.signals),
                ("all", pa.list_(pa.float32(), layout.total_dim)),
            ]
        )

    def _write_config(self, config: StoreConfig) -> None:
        db = self._connect()
        try:
            schema = self._schema(config.layout)
            self._table = db.create_table(self.table_name, schema=schema, exist_ok=False)
        except Exception as exc:
            raise StoreError(f"could not create table {self.table_name!r} in {self.path}: {exc}") from exc
        tmp = self.path / (CONFIG_NAME + ".tmp")
        tmp.write_text(config.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(self.path / CONFIG_NAME)

    # ---- writes ---------------------------------------------------------------------------------------------------
    def _arrow(self, rows: list[dict[str, Any]], vectors: np.ndarray, masks: list[int] | np.ndarray):
        return self._arrow_columns({c: [r[c] for r in rows] for c in (*_COLUMNS, "text")}, vectors, masks)

    def _arrow_columns(self, cols: dict[str, Any], vectors: np.ndarray, masks: list[int] | np.ndarray):
        pa = require("pyarrow", "search")
        layout = self.layout
        cols = dict(cols)
        cols["people_key"] = [[p.casefold() for p in people] for people in cols["people"]]
        cols["genre_key"] = [g.casefold() for g in cols["genre"]]
        cols["mask"] = pa.array(np.asarray(masks, dtype=np.int64))
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for sig in layout.signals:
            block = np.ascontiguousarray(vectors[:, layout.slot(sig)])
            cols[f"vec_{sig}"] = pa.FixedSizeListArray.from_arrays(pa.array(block.ravel()), layout.dims[sig])
        cols["all"] = pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), layout.total_dim)
        return pa.table(cols, schema=self._schema(layout))

    def _replace(self, video_id: str, rows: list[dict[str, Any]], vectors: np.ndarray, masks: list[int]) -> None:
        with self._lock:
            tbl = self._table
            data = self._arrow(rows, vectors, masks)
            if not rows:
                tbl.delete(f"video_id = {sql_str(video_id)}")
            elif not self.has_video(video_id):
                tbl.add(data)
            else:
                (
                    tbl.merge_insert("segment_id")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .when_not_matched_by_source_delete(f"video_id = {sql_str(video_id)}")
                    .execute(data)
                )
            self._ensure_fts()
            self._changed()

    def append_columns(self, columns: dict[str, Any], vectors: np.ndarray, masks: np.ndarray) -> None:
        """Bulk append (benchmarks, imports) of segments whose videos are not in the store yet; no replace semantics.

        `columns` maps each payload column (segment_id, video_id, path, start, end, transcript, title, description,
        people, genre, date, tags, keyframe, text) to a list; `vectors` are packed and normalised already.
        """
        with self._lock:
            self._table.add(self._arrow_columns(columns, vectors, masks))
            self._changed()

    def _ensure_fts(self) -> None:
        if not any(i.index_type == "FTS" for i in self._table.list_indices()):
            from lancedb.index import FTS

            self._table.create_index("text", config=FTS())

    def delete_video(self, video_id: str) -> int:
        if self._table is None:
            return 0
        with self._lock:
            before = self._table.count_rows()
            self._table.delete(f"video_id = {sql_str(video_id)}")
            self._changed()
            return before - self._table.count_rows()

    def optimize(self) -> None:
        """Compact fragments, fold new rows into the indexes, and build the vector index once the table is large."""
        if self._table is None:
            return
        with self._lock:
            tbl = self._table
            n = tbl.count_rows()
            if n == 0:
                return
            self._ensure_fts()
            kinds = {tuple(i.columns): i.index_type for i in tbl.list_indices()}
            for col in ("video_id", "segment_id"):
                if (col,) not in kinds:
                    from lancedb.index import BTree

                    tbl.create_index(col, config=BTree())
            if not self.has_vector_index() and n >= self.index_threshold:
                self.create_vector_index()
            tbl.optimize(cleanup_older_than=timedelta(minutes=10))
            self._changed()

    def create_vector_index(
        self,
        *,
        index_type: str | None = None,
        num_partitions: int | None = None,
        sample_rate: int = 64,
        max_iterations: int = 20,
    ) -> None:
        """Build one IVF index per signal column (inner product; the vectors are unit length)."""
        n = self._table.count_rows()
        parts = num_partitions or self.num_partitions or max(16, int(np.sqrt(n)))
        kind = index_type or self.index_type
        import lancedb.index as li

        classes = {"IVF_PQ": li.IvfPq, "IVF_SQ": li.IvfSq, "IVF_FLAT": li.IvfFlat, "IVF_HNSW_SQ": li.IvfHnswSq}
        if kind not in classes:
            raise StoreError(f"unknown index_type {kind!r}; choose one of {sorted(classes)}")
        for sig in self.signals:
            log.info("building %s index on vec_%s: %d rows, %d partitions", kind, sig, n, parts)
            kwargs: dict[str, Any] = {}
            if kind == "IVF_PQ":
                kwargs["num_sub_vectors"] = max(1, self.layout.dims[sig] // 16)
            config = classes[kind](
                distance_type="dot",
                num_partitions=parts,
                sample_rate=sample_rate,
                max_iterations=max_iterations,
                **kwargs,
            )
            self._table.create_index(f"vec_{sig}", config=config, replace=True)
        self._changed()

    # ---- reads ----------------------------------------------------------------------------------------------------
    def count(self) -> int:
        return 0 if self._table is None else self._table.count_rows()

    def has_video(self, video_id: str) -> bool:
        return self._table is not None and self._table.count_rows(f"video_id = {sql_str(video_id)}") > 0

    def _state(self) -> tuple[int, int, bool]:
        """(table version, rows, has vector indexes), re-read at most once a second."""
        at, version, rows, indexed = self._state_cache
        now = time.monotonic()
        if now - at > 1.0:
            version, rows, indexed = self._table.version, self._table.count_rows(), self.has_vector_index()
            self._state_cache = (now, version, rows, indexed)
        return version, rows, indexed

    def _changed(self) -> None:
        self._state_cache = (0.0, -1, 0, False)

    @property
    def approximate(self) -> bool:
        # Up to exact_limit rows the in-memory exact scan is both exact and faster than four index probes
        # (measured at 100k: ~30 ms against 65 ms at recall 0.94), so indexes only serve larger tables.
        if self._table is None:
            return False
        _version, rows, indexed = self._state()
        return indexed and rows > self.exact_limit

    def _in_memory(self) -> bool:
        """True when searches of this table scan the in-memory snapshot (no indexes in use, ≤ `exact_limit` rows)."""
        return not self.approximate and self._state()[1] <= self.exact_limit

    def has_vector_index(self) -> bool:
        """True once every signal column has its vector index."""
        if self._table is None or not self.signals:
            return False
        cols = {tuple(i.columns) for i in self._table.list_indices()}
        return all((f"vec_{s}",) in cols for s in self.signals)

    def _candidates(self, result, *, bm25: bool) -> Candidates:
        dim = self.layout.total_dim
        if result.num_rows == 0:
            return Candidates([], np.zeros((0, dim), dtype=np.float32), np.zeros(0) if bm25 else None)
        vectors = _vectors(result, dim)
        rows = result.select(_COLUMNS).to_pylist()
        scores = np.asarray(result.column("_score").to_numpy(), dtype=np.float64) if bm25 else None
        return Candidates(rows, vectors, scores)

    def _has_signal_sql(self, signal: str | None) -> str | None:
        """Rows that have `signal` (bit i of `mask`; DataFusion has no bitwise AND, so arithmetic)."""
        if signal is None:
            return None
        bit = 1 << self.signals.index(signal)
        return f"mask % {bit * 2} >= {bit}"

    def _vector_leg(self, query: np.ndarray, k: int, filters: Filters | None, *, signal: str | None) -> Candidates:
        if self._table is None:
            return Candidates([], np.zeros((0, self.layout.total_dim), dtype=np.float32))
        indexed = signal is not None and self.approximate
        if not indexed and self._state()[1] <= self.exact_limit:
            return self._exact_leg(query, k, filters, signal=signal)
        if indexed:  # through the signal's own ANN index
            q = self._table.search(query[self.layout.slot(signal)], vector_column_name=f"vec_{signal}")
        else:  # flat scan of the concatenated vectors: exact
            q = self._table.search(query, vector_column_name="all")
        q = q.distance_type("dot").limit(k).select([*_COLUMNS, "all", "_distance"])
        clauses = [c for c in (where_sql(filters), self._has_signal_sql(signal)) if c]
        if clauses:
            q = q.where(" AND ".join(f"({c})" for c in clauses), prefilter=True)
        if indexed:
            q = q.nprobes(self.nprobes)
            if self.refine_factor:
                q = q.refine_factor(self.refine_factor)
        else:
            q = q.bypass_vector_index()
        try:
            return self._candidates(q.to_arrow(), bm25=False)
        except Exception as exc:
            raise StoreError(f"LanceDB vector search failed in {self.path}: {exc}") from exc

    def _ann_legs(self, legs: list[tuple[np.ndarray, str]], k: int, filters: Filters | None) -> list[Candidates]:
        """Per-signal index probes return row ids only; the union's vectors are then read in one take, and the
        payload only for the final hits (`_complete_rows`).

        Measured at 1M rows: reading the payload columns of ~400 candidates costs 66 ms against 17 ms for their
        `all` vectors alone (each column is a separate random read per row), and the legs' hits overlap.
        """
        k = max(k, self.ann_candidates)
        id_lists = list(_pool().map(lambda a: self._ann_row_ids(a[0], k, filters, a[1]), legs))
        row_ids = list(dict.fromkeys(i for ids in id_lists for i in ids))
        if not row_ids:
            return []
        try:
            result = self._table.take_row_ids(row_ids).with_row_id().select(["segment_id", "all"]).to_arrow()
        except Exception as exc:
            raise StoreError(f"LanceDB could not read {len(row_ids)} candidate rows in {self.path}: {exc}") from exc
        vectors = _vectors(result, self.layout.total_dim)
        rows = [
            {"segment_id": sid, "_rowid": rid}
            for sid, rid in zip(
                result.column("segment_id").to_pylist(), result.column("_rowid").to_pylist(), strict=True
            )
        ]
        return [Candidates(rows, vectors)]

    def _ann_row_ids(self, query: np.ndarray, k: int, filters: Filters | None, signal: str) -> list[int]:
        # No "has this signal" prefilter here (unlike the exact legs): it costs a 1M-row scan per query (65 of 84 ms
        # measured), while a row without the signal has a zero vector there, scores 0, and is rescored exactly.
        q = (
            self._table.search(query[self.layout.slot(signal)], vector_column_name=f"vec_{signal}")
            .distance_type("dot")
            .limit(k)
            .nprobes(self.nprobes)
            .with_row_id(True)
            .select(["_distance"])
        )
        where = where_sql(filters)
        if where:
            q = q.where(where, prefilter=True)
        if self.refine_factor:
            q = q.refine_factor(self.refine_factor)
        try:
            return q.to_arrow().column("_rowid").to_pylist()
        except Exception as exc:
            raise StoreError(f"LanceDB vector search on vec_{signal} failed in {self.path}: {exc}") from exc

    def _complete_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fill in the payload of rows the legs returned as ids: by row id (index legs) or by position in the cached
        snapshot they were scored against (exact legs)."""
        by_rowid: dict[int, dict[str, Any]] = {}
        lazy = [r["_rowid"] for r in rows if "_rowid" in r]
        if lazy:
            try:
                result = self._table.take_row_ids(lazy).with_row_id().select(_COLUMNS).to_arrow()
            except Exception as exc:
                raise StoreError(f"LanceDB could not read {len(lazy)} result rows in {self.path}: {exc}") from exc
            payload = result.drop_columns(["_rowid"]).to_pylist()
            by_rowid = dict(zip(result.column("_rowid").to_pylist(), payload, strict=True))
            missing = [r["segment_id"] for r in rows if "_rowid" in r and r["_rowid"] not in by_rowid]
            if missing:  # a concurrent write compacted or deleted them between the two reads
                raise StoreError(f"segments {missing} changed during the search in {self.path}; retry the query")
        out = []
        for r in rows:
            if "_rowid" in r:
                out.append(by_rowid[r["_rowid"]])
            elif "_pos" in r:
                out.append(r["_payload"].slice(r["_pos"], 1).to_pylist()[0])
            else:
                out.append(r)
        return out

    def _exact_snapshot(self, *, background: bool = True) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray, Any]:
        """(segment ids, `all` vectors, payload as an Arrow table, signal masks, the scan that scores them) of the
        current table version, cached in memory; the scan is int8 from `int8_min_rows` rows, else float32."""
        with self._lock:
            version = self._state()[0]
            if self._exact is None or self._exact[0] != version:
                columns = [*_COLUMNS, "text", "mask", "all"]
                data = self._table.search().with_row_id(True).select(columns).limit(None).to_arrow()
                ids = np.asarray(data.column("segment_id").to_pylist(), dtype=object)
                mat = _vectors(data, self.layout.total_dim)
                masks = np.asarray(data.column("mask").to_numpy(), dtype=np.int64)
                self._exact = (version, ids, mat, data.select(_COLUMNS), masks, F32Scan(mat))
                self._positions = (version, data.column("_rowid").to_numpy())
                texts = data.column("text").to_pylist()
                if len(mat) < _INT8_BACKGROUND_ROWS or not background:
                    self._build_memory_indexes(version, mat, texts)
                else:  # ~4 s at 100k rows: searches run on float32 and LanceDB's BM25 meanwhile, then switch
                    threading.Thread(
                        target=self._build_memory_indexes, args=(version, mat, texts), name="vidroute-mem", daemon=True
                    ).start()
            return self._exact[1:]

    def warm(self) -> None:
        """Load the exact-scan snapshot and its int8 copy now (no-op beyond `exact_limit` rows or when empty)."""
        if self._table is None or not self._state()[1] or not self._in_memory():
            return
        self._exact_snapshot(background=False)  # an existing snapshot's int8 copy may still be on its way

    def _current(self, version: int) -> bool:
        return self._table is not None and self._exact is not None and self._exact[0] == version

    def _build_memory_indexes(self, version: int, mat: np.ndarray, texts: list[str]) -> None:
        """The int8 copy (from `int8_min_rows`) and the in-memory BM25 of a snapshot, swapped in if still current
        (a closed store or a newer snapshot stops the work)."""
        if self.int8_min_rows is not None and len(mat) >= self.int8_min_rows and self._current(version):
            try:
                scan = Int8Scan(mat)
            except Exception as exc:  # onnxruntime missing or failing: the float32 scan is still exact
                log.warning("int8 scan unavailable (%s); scanning float32", exc)
            else:
                with self._lock:
                    if self._current(version):  # not replaced by a newer version or closed meanwhile
                        self._exact = (*self._exact[:5], scan)
        if not self._current(version):
            return
        try:
            bm25 = SparseBM25(texts)
        except Exception as exc:  # snowballstemmer/scipy missing: LanceDB's full-text index still answers
            log.warning("in-memory BM25 unavailable (%s); using LanceDB's full-text index", exc)
            return
        with self._lock:
            if self._current(version):
                self._bm25 = (version, bm25)

    def _exact_positions(self) -> dict[int, int]:
        """Row id → position in the exact snapshot (built on first use: only BM25 hits need it)."""
        with self._lock:
            version, rowids = self._positions
            if not isinstance(rowids, dict):
                rowids = {int(r): i for i, r in enumerate(rowids)}
                self._positions = (version, rowids)
            return rowids

    def _exact_leg(self, query: np.ndarray, k: int, filters: Filters | None, *, signal: str | None) -> Candidates:
        """Exact top k over the cached matrix: concurrent searches share one scan (`scan.ScanBatcher`); an int8
        first pass is rescored exactly in float32 over a margin of candidates. Filters are evaluated by LanceDB on
        the payload columns. Rows carry their position in the cached payload, read for the final hits only."""
        ids, mat, payload, masks, scan = self._exact_snapshot()
        scores = self._batcher.scores(scan, query)
        keep = None
        if signal is not None:
            keep = (masks & (1 << self.signals.index(signal))) != 0
        ok = self._allowed(ids, filters)
        if ok is not None:
            keep = ok if keep is None else keep & ok
        n_ok = len(ids)
        if keep is not None:
            scores = np.where(keep, scores, -np.inf)
            n_ok = int(keep.sum())
        k = min(k, n_ok)
        if k <= 0:
            return Candidates([], np.zeros((0, mat.shape[1]), dtype=np.float32))
        if scan.approximate:
            m = min(candidate_count(k, len(ids)), n_ok)
            cand = np.argpartition(-scores, m - 1)[:m]
            exact = mat[cand] @ query
            top = cand[np.argsort(-exact, kind="stable")[:k]]
        else:
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
        return Candidates(_snapshot_rows(ids, payload, top), mat[top])

    def _text_leg(self, text: str, k: int, filters: Filters | None) -> Candidates:
        """BM25 top k by row id and score; vectors from the exact scan's in-memory matrix when it serves this table
        (else one take), payload left for the final hits (reading it here cost 13 of 20 ms per query at 100k)."""
        dim = self.layout.total_dim
        if self._table is None or not text.strip():
            return Candidates([], np.zeros((0, dim), dtype=np.float32), np.zeros(0))
        if self._in_memory():
            memory = self._memory_text_leg(text, k, filters)
            if memory is not None:
                return memory
        # Double quotes would make a phrase query (needs positions in the index); words are matched as a bag.
        text = text.replace('"', " ")
        q = self._table.search(text, query_type="fts", fts_columns="text").limit(k).with_row_id(True)
        q = q.select(["_score"])
        where = where_sql(filters)
        if where:
            q = q.where(where, prefilter=True)
        try:
            result = q.to_arrow()
        except Exception as exc:
            raise StoreError(f"LanceDB full-text search failed in {self.path}: {exc}") from exc
        row_ids = result.column("_rowid").to_pylist()
        scores = np.asarray(result.column("_score").to_numpy(), dtype=np.float64)
        if not row_ids:
            return Candidates([], np.zeros((0, dim), dtype=np.float32), np.zeros(0))
        if self._in_memory():
            with self._lock:  # the snapshot and its row id map must be of the same table version
                ids, mat, payload, _masks, _scan = self._exact_snapshot()
                pos_of = self._exact_positions()
            pos = [pos_of.get(r) for r in row_ids]
            if None not in pos:  # else the table changed since the snapshot: read the rows instead
                return Candidates(_snapshot_rows(ids, payload, pos), mat[pos], scores)
        try:
            taken = self._table.take_row_ids(row_ids).with_row_id().select(["segment_id", "all"]).to_arrow()
        except Exception as exc:
            raise StoreError(f"LanceDB could not read {len(row_ids)} BM25 hits in {self.path}: {exc}") from exc
        order = {r: j for j, r in enumerate(taken.column("_rowid").to_pylist())}
        keep = [i for i, r in enumerate(row_ids) if r in order]
        at = [order[row_ids[i]] for i in keep]
        vectors = _vectors(taken, dim)[at]
        sids = taken.column("segment_id").to_pylist()
        rows = [{"segment_id": sids[j], "_rowid": row_ids[i]} for i, j in zip(keep, at, strict=True)]
        return Candidates(rows, vectors, scores[keep])

    def _memory_text_leg(self, text: str, k: int, filters: Filters | None) -> Candidates | None:
        """BM25 from the in-memory index of the current snapshot, or None while it is not built."""
        with self._lock:
            ids, mat, payload, _masks, _scan = self._exact_snapshot()
            version = self._exact[0]
            if self._bm25 is None or self._bm25[0] != version:
                return None
            bm25 = self._bm25[1]
        pos, scores = bm25.top(text, k, allowed=self._allowed(ids, filters))
        return Candidates(_snapshot_rows(ids, payload, pos), mat[pos], scores.astype(np.float64))

    def _allowed(self, ids: np.ndarray, filters: Filters | None) -> np.ndarray | None:
        """Which snapshot rows pass `filters` (LanceDB evaluates the SQL on the payload columns), or None for all."""
        where = where_sql(filters)
        if not where:
            return None
        rows = self._table.search().where(where).select(["segment_id"]).limit(None).to_arrow()
        return np.isin(ids, np.asarray(rows.column("segment_id").to_pylist(), dtype=object))

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": self.backend,
            "uri": self.uri,
            "segments": self.count(),
            "signals": self.signals,
            "dims": self.layout.dims if self.layout else {},
            "embedders": self.config.embedders if self.config else {},
        }
        if self._table is not None and out["segments"]:
            meta = self._table.search().select(["video_id", "mask"]).limit(None).to_arrow()
            masks = meta.column("mask").to_numpy()
            out["videos"] = len(set(meta.column("video_id").to_pylist()))
            out["segments_with_signal"] = {
                s: int(np.count_nonzero(masks & (1 << i))) for i, s in enumerate(self.signals)
            }
            out["indexes"] = [f"{i.index_type}({', '.join(i.columns)})" for i in self._table.list_indices()]
            out["version"] = self._table.version
        else:
            out["videos"] = 0
        if self.path.exists():
            out["disk_bytes"] = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return out

    def close(self) -> None:
        self._exact = self._bm25 = None  # frees the in-memory copies and stops a background build
        self._table = None
        self._db = None

    def __repr__(self) -> str:
        return f"LanceStore({str(self.path)!r}, table={self.table_name!r})"
