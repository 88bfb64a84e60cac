"""Labelling runs: ask a teacher for K draws per query, concurrently, and append soft labels resumably.

A run reads queries, skips every id already in the output file, and appends one `LabelRecord` per query
(flushed and fsynced line by line, so `kill -9` loses at most the line being written, which the next run
redoes). Queries the teacher cannot label go to `<out stem>.failures.jsonl`, never to the labels file.
Only successfully labelled ids count as finished: a rerun retries failed queries unless `skip_failed=True`.
A manifest beside the output records the teacher, prompt hash, counts, tokens, cost and wall time; it is
rewritten periodically during the run, so an interrupted run still has one.

Example:
    >>> from vidroute.labels import label_queries, read_queries      # doctest: +SKIP
    >>> stats = label_queries(teacher, read_queries("queries.jsonl"), Path("labels.jsonl"), samples=3)
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vidroute import __version__
from vidroute.errors import ConfigError, DataFormatError, InvalidTeacherOutput, TeacherError
from vidroute.records import (
    FailureRecord,
    JsonlAppender,
    LabelRecord,
    QueryRecord,
    TeacherInfo,
    Usage,
    read_jsonl,
    read_manifest,
    utc_now,
    write_jsonl,
    write_manifest,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]  # (queries done this run, queries to do this run)


def failures_path(out: str | Path) -> Path:
    """Where a run's failures go: `labels.jsonl` -> `labels.failures.jsonl`."""
    out = Path(out)
    return out.with_name(f"{out.stem}.failures.jsonl")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stable_id(prefix: str, line: int, text: str) -> str:
    """An id that survives reruns: a hash of (line number, text), so repeated texts stay distinct records."""
    return prefix + hashlib.sha256(f"{line}\t{text}".encode()).hexdigest()[:16]


def read_queries(path: str | Path) -> list[QueryRecord]:
    """Read a query JSONL file (`{id?, query, intent?, split?, source?}` rows).

    Rows without an `id` get a stable one from (line number, query). Duplicate ids raise `DataFormatError`
    naming them, because resuming by id would otherwise merge different queries.
    """
    path = Path(path)
    out: list[QueryRecord] = []
    for i, obj in enumerate(read_jsonl(path), start=1):
        if "id" not in obj or obj["id"] in (None, ""):
            if not isinstance(obj.get("query"), str):
                raise DataFormatError(f"{path}: record {i} has no 'query' string: {obj!r:.200}")
            obj = {**obj, "id": stable_id("q-", i, obj["query"])}
        try:
            out.append(QueryRecord.model_validate(obj))
        except ValidationError as exc:
            raise DataFormatError(
                f"{path}: record {i} is not a valid query ({exc.error_count()} errors): {exc}"
            ) from exc
    check_unique_ids(out, source=str(path))
    return out


def check_unique_ids(queries: Iterable[QueryRecord], *, source: str = "queries") -> None:
    counts = Counter(q.id for q in queries)
    dups = sorted(i for i, n in counts.items() if n > 1)
    if dups:
        shown = ", ".join(repr(d) for d in dups[:10]) + (f" and {len(dups) - 10} more" if len(dups) > 10 else "")
        raise DataFormatError(f"{source}: {len(dups)} duplicate query ids: {shown}; give every query a unique id")


@dataclass
class QueryOutcome:
    """What the K draws for one query produced: a label, or a failure (never both)."""

    query: QueryRecord
    label: LabelRecord | None = None
    failure: FailureRecord | None = None
    invalid_draws: int = 0
    transport_error: bool = False
    usage: Usage = field(default_factory=Usage)


@dataclass
class LabelRunStats:
    """Counts for one run (this invocation) plus the state of the output file after it."""

    out: Path
    failures_out: Path
    manifest: Path
    inputs: int = 0
    labelled: int = 0  # new label records written by this run
    failed: int = 0  # queries that ended in a failure record this run
    resumed: int = 0  # inputs skipped because the output already had them
    skipped_failed: int = 0  # inputs skipped because they failed before and skip_failed was set
    partial: int = 0  # labels built from fewer than K valid draws
    invalid_draws: int = 0
    usage: Usage = field(default_factory=Usage)
    wall_s: float = 0.0
    status: str = "running"  # running | complete | interrupted | aborted

    @property
    def queries_per_min(self) -> float:
        done = self.labelled + self.failed
        return 60.0 * done / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "out": str(self.out),
            "failures_out": str(self.failures_out),
            "manifest": str(self.manifest),
            "inputs": self.inputs,
            "labelled": self.labelled,
            "failed": self.failed,
            "resumed": self.resumed,
            "skipped_failed": self.skipped_failed,
            "partial": self.partial,
            "invalid_draws": self.invalid_draws,
            "input_tokens": self.usage.input_tokens,
            "output_tokens": self.usage.output_tokens,
            "usd": round(self.usage.usd, 6),
            "wall_s": round(self.wall_s, 3),
            "queries_per_min": round(self.queries_per_min, 1),
        }


def mean_weights(samples: list[dict[str, float]]) -> dict[str, float]:
    """The soft label: per-signal mean of the draws, renormalised to sum to 1."""
    if not samples:
        raise ValueError("no samples to average")
    keys = list(samples[0])
    mean = {k: sum(s[k] for s in samples) / len(samples) for k in keys}
    total = sum(mean.values())
    return {k: v / total for k, v in mean.items()}


def label_one(teacher: Any, query: QueryRecord, *, samples: int = 1, info: TeacherInfo | None = None) -> QueryOutcome:
    """Draw `samples` answers for one query and fold them into a label or a failure.

    Invalid answers (after the teacher's own re-asks) only lose that draw; a transport `TeacherError` fails the
    whole query, because retrying it later should give a full set of draws.
    """
    info = info or teacher.info
    outcome = QueryOutcome(query=query)
    valid: list[Any] = []
    last_raw, last_err, attempts = "", "", 0
    t0 = time.perf_counter()
    for _ in range(samples):
        try:
            lab = teacher.label(query.query)
        except InvalidTeacherOutput as exc:
            outcome.invalid_draws += 1
            last_raw, last_err = exc.raw, f"invalid output: {exc}"
            attempts += int(getattr(exc, "attempts", 0) or getattr(teacher, "max_attempts", 1) or 1)
            outcome.usage = outcome.usage + (getattr(exc, "usage", None) or Usage())
            continue
        except TeacherError as exc:
            attempts += 1
            outcome.usage = outcome.usage + (getattr(exc, "usage", None) or Usage())
            outcome.transport_error = True
            outcome.failure = FailureRecord(
                **query.model_dump(),
                error=f"teacher error: {exc}",
                raw=getattr(exc, "raw", "") or last_raw,
                attempts=attempts,
                teacher=info,
            )
            return outcome
        attempts += lab.attempts
        outcome.usage = outcome.usage + lab.usage
        valid.append(lab)
    latency_ms = (time.perf_counter() - t0) * 1000
    if not valid:
        outcome.failure = FailureRecord(
            **query.model_dump(),
            error=f"all {samples} draws invalid; last: {last_err}",
            raw=last_raw,
            attempts=attempts,
            teacher=info,
        )
        return outcome
    draws = [dict(v.weights) for v in valid]
    outcome.label = LabelRecord(
        **query.model_dump(),
        weights=mean_weights(draws),
        reasoning=next((v.reasoning for v in valid if v.reasoning), None),
        samples=draws,
        teacher=info,
        usage=outcome.usage,
        latency_ms=latency_ms,
    )
    return outcome


def _existing_state(out: Path, fail_out: Path) -> tuple[set[str], set[str], list[TeacherInfo]]:
    """Ids already labelled (torn last line ignored), ids that failed before, and the teachers seen in `out`."""
    done: set[str] = set()
    teachers: dict[str, TeacherInfo] = {}
    dup = 0
    if out.exists():
        for i, obj in enumerate(read_jsonl(out), start=1):
            rid = obj.get("id")
            if not isinstance(rid, str):
                raise DataFormatError(f"{out}: record {i} has no id; is this a vidroute labels file?")
            dup += rid in done
            done.add(rid)
            t = obj.get("teacher")
            if isinstance(t, dict):
                key = repr(sorted(t.items()))
                if key not in teachers:
                    teachers[key] = TeacherInfo.model_validate(t)
    if dup:
        log.warning("%s already holds %d duplicate ids (written by something other than this run loop)", out, dup)
    failed: set[str] = set()
    if fail_out.exists():
        failed = {o["id"] for o in read_jsonl(fail_out) if isinstance(o.get("id"), str)} - done
    return done, failed, list(teachers.values())


def _same_teacher(a: TeacherInfo, b: TeacherInfo) -> bool:
    return (a.backend, a.model_id, a.prompt_sha256, a.temperature, a.mode) == (
        b.backend,
        b.model_id,
        b.prompt_sha256,
        b.temperature,
        b.mode,
    )


def _compact_failures(fail_out: Path, done: set[str]) -> int:
    """Keep only the latest failure per id that still has no label; returns how many remain."""
    if not fail_out.exists():
        return 0
    latest: dict[str, dict[str, Any]] = {}
    for obj in read_jsonl(fail_out):
        rid = obj.get("id")
        if isinstance(rid, str) and rid not in done:
            latest.pop(rid, None)
            latest[rid] = obj
    if not latest:
        fail_out.unlink()
        return 0
    write_jsonl(fail_out, latest.values())
    return len(latest)


def label_queries(
    teacher: Any,
    queries: list[QueryRecord],
    out: str | Path,
    *,
    samples: int = 1,
    concurrency: int = 4,
    progress: bool | ProgressFn = True,
    skip_failed: bool = False,
    allow_mixed: bool = False,
    manifest_every: int = 50,
    max_consecutive_errors: int = 20,
    input_path: str | Path | None = None,
) -> LabelRunStats:
    """Label `queries` with `teacher` into `out` (JSONL, appended), resuming from whatever `out` holds.

    Args:
        teacher: a `vidroute.teachers.base.Teacher` (anything with `.label(query)` and `.info`).
        queries: the queries; ids must be unique.
        out: the labels file; `<stem>.failures.jsonl` and `<stem>.manifest.json` are written beside it.
        samples: draws per query (K). The label is the mean of the valid draws; K > 1 needs temperature > 0.
        concurrency: queries labelled in parallel (threads; teacher calls are I/O bound or release the GIL).
        progress: True for a Rich progress bar on stderr, False for none, or a callback `(done, todo)`.
        skip_failed: do not retry queries that already have a failure record.
        allow_mixed: append even if `out` holds labels from a different teacher, prompt or temperature.
        manifest_every: rewrite the manifest after this many finished queries (and at the end).
        max_consecutive_errors: abort with `TeacherError` after this many transport failures in a row.
        input_path: the query file, hashed into the manifest for provenance.

    Returns:
        `LabelRunStats` for this run. Raises `ConfigError` on bad options, `DataFormatError` on duplicate ids
        or a corrupt output file, `TeacherError` when the teacher keeps failing.
    """
    out = Path(out)
    if samples < 1:
        raise ConfigError(f"samples must be >= 1, got {samples}")
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    check_unique_ids(queries)
    info: TeacherInfo = teacher.info
    if samples > 1 and not (info.temperature or 0) > 0:
        log.warning(
            "samples=%d with temperature %s: the draws will be (nearly) identical; set a temperature > 0",
            samples,
            info.temperature,
        )
    lock = _lock_output(out)
    try:
        return _run(
            teacher,
            queries,
            out,
            info,
            samples=samples,
            concurrency=concurrency,
            progress=progress,
            skip_failed=skip_failed,
            allow_mixed=allow_mixed,
            manifest_every=manifest_every,
            max_consecutive_errors=max_consecutive_errors,
            input_path=input_path,
        )
    finally:
        if lock is not None:
            lock.close()


def _lock_output(out: Path) -> Any:
    """Hold an exclusive lock on `out` during a run: two runs appending to one file would duplicate ids.

    The kernel drops the lock when the process dies (kill -9 included), so a resumed run never meets a stale one.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks, run unguarded
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    fh = out.open("a", encoding="utf-8")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        fh.close()
        raise ConfigError(f"another labelling run is writing to {out}; wait for it or use another --out") from exc
    return fh


def _run(
    teacher: Any,
    queries: list[QueryRecord],
    out: Path,
    info: TeacherInfo,
    *,
    samples: int,
    concurrency: int,
    progress: bool | ProgressFn,
    skip_failed: bool,
    allow_mixed: bool,
    manifest_every: int,
    max_consecutive_errors: int,
    input_path: str | Path | None,
) -> LabelRunStats:
    fail_out = failures_path(out)
    done, failed_before, seen_teachers = _existing_state(out, fail_out)
    mismatched = [t for t in seen_teachers if not _same_teacher(t, info)]
    if mismatched and not allow_mixed:
        raise ConfigError(
            f"{out} already holds labels from {mismatched[0].model_dump()}, but this run's teacher is "
            f"{info.model_dump()}; write to another --out, or pass allow_mixed=True (--allow-mixed) to mix them"
        )
    previous = read_manifest(out) or {}
    if previous.get("kind") != "labels":
        previous = {}
    if previous.get("samples") not in (None, samples) and done and not allow_mixed:
        raise ConfigError(
            f"{out} was labelled with samples={previous['samples']}, this run asks for samples={samples}; "
            "use the same --samples, another --out, or --allow-mixed"
        )

    stats = LabelRunStats(out=out, failures_out=fail_out, manifest=out, inputs=len(queries))
    todo: list[QueryRecord] = []
    for q in queries:
        if q.id in done:
            stats.resumed += 1
        elif skip_failed and q.id in failed_before:
            stats.skipped_failed += 1
        else:
            todo.append(q)
    if stats.resumed:
        log.info("resuming %s: %d of %d queries already labelled", out, stats.resumed, len(queries))

    input_sha = file_sha256(input_path) if input_path and Path(input_path).exists() else None
    run = {"run_id": uuid.uuid4().hex[:12], "started_at": utc_now(), "concurrency": concurrency}
    labels_before = len(done)
    t0 = time.perf_counter()

    def manifest(status: str, failures_in_file: int | None = None) -> None:
        stats.status = status
        stats.wall_s = time.perf_counter() - t0
        stats.manifest = _write_run_manifest(
            out, previous, stats, info, samples, run, input_path, input_sha, labels_before, failures_in_file
        )

    manifest("running")
    tick, close_progress = _progress(progress, len(todo))
    consecutive_errors = 0
    finished = 0
    appender = JsonlAppender(out)
    fail_appender: JsonlAppender | None = None
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vidroute-label")
    pending: set[Future[QueryOutcome]] = set()
    it = iter(todo)
    try:
        # Keep a bounded window of work in flight so a 100k-query run does not queue 100k futures up front.
        def refill() -> None:
            while len(pending) < concurrency * 2:
                q = next(it, None)
                if q is None:
                    return
                pending.add(pool.submit(label_one, teacher, q, samples=samples, info=info))

        refill()
        while pending:
            finished_now, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished_now:
                pending.discard(fut)
                res = fut.result()  # unexpected (non-teacher) exceptions are bugs: let them stop the run
                stats.usage = stats.usage + res.usage
                stats.invalid_draws += res.invalid_draws
                if res.label is not None:
                    appender.write(res.label)
                    done.add(res.query.id)
                    stats.labelled += 1
                    stats.partial += len(res.label.samples) < samples
                    consecutive_errors = 0
                else:
                    assert res.failure is not None
                    if fail_appender is None:
                        fail_appender = JsonlAppender(fail_out)
                    fail_appender.write(res.failure)
                    stats.failed += 1
                    consecutive_errors = consecutive_errors + 1 if res.transport_error else 0
                    if res.transport_error and consecutive_errors >= max_consecutive_errors:
                        raise TeacherError(
                            f"the teacher failed {consecutive_errors} queries in a row; last error: "
                            f"{res.failure.error}. Check the backend; rerun to resume"
                        )
                finished += 1
                tick(finished)
                if finished % manifest_every == 0:
                    manifest("running")
            refill()
    except BaseException as exc:
        # A signal can land between writing a line and counting it: recount from the file itself.
        stats.labelled = len({o.get("id") for o in read_jsonl(out)}) - labels_before
        manifest("interrupted" if isinstance(exc, KeyboardInterrupt) else "aborted")
        raise
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        appender.close()
        if fail_appender is not None:
            fail_appender.close()
        close_progress()
    manifest("complete", failures_in_file=_compact_failures(fail_out, done))
    return stats


def _write_run_manifest(
    out: Path,
    previous: dict[str, Any],
    stats: LabelRunStats,
    info: TeacherInfo,
    samples: int,
    run: dict[str, Any],
    input_path: str | Path | None,
    input_sha: str | None,
    labels_before: int,
    failures_in_file: int | None,
) -> Path:
    this_run = {
        **run,
        **{k: v for k, v in stats.to_dict().items() if k not in ("out", "failures_out", "manifest")},
    }
    runs = [r for r in previous.get("runs", []) if isinstance(r, dict) and r.get("run_id") != run["run_id"]]
    for r in runs:
        if r.get("status") == "running":  # this run holds the output's lock, so that one is gone: it was killed
            r["status"] = "killed"
    runs.append(this_run)
    totals = {
        "input_tokens": sum(r.get("input_tokens", 0) for r in runs),
        "output_tokens": sum(r.get("output_tokens", 0) for r in runs),
        "usd": round(sum(r.get("usd", 0.0) for r in runs), 6),
        "wall_s": round(sum(r.get("wall_s", 0.0) for r in runs), 3),
    }
    labelled_total = labels_before + stats.labelled
    fail_out = failures_path(out)
    body = {
        "kind": "labels",
        "vidroute_version": __version__,
        "status": stats.status,
        "teacher": info.model_dump(),
        "samples": samples,
        "input": {
            "path": str(input_path) if input_path else None,
            "sha256": input_sha,
            "queries": stats.inputs,
        },
        "counts": {
            "labelled": labelled_total,
            "labelled_this_run": stats.labelled,
            "failures": stats.failed,
            "failures_in_file": failures_in_file,
            "resumed_skipped": stats.resumed,
            "skipped_failed": stats.skipped_failed,
            "partial": stats.partial,
            "invalid_draws": stats.invalid_draws,
            "remaining": max(stats.inputs - stats.resumed - stats.skipped_failed - stats.labelled, 0),
        },
        "usage": {
            "input_tokens": stats.usage.input_tokens,
            "output_tokens": stats.usage.output_tokens,
            "usd": round(stats.usage.usd, 6),
        },
        "wall_s": round(stats.wall_s, 3),
        "queries_per_min": round(stats.queries_per_min, 1),
        "totals": totals,
        "failures_file": fail_out.name,
        "runs": runs,
    }
    # Provenance of labels imported into this file earlier (see vidroute.formats) must survive a labelling run.
    body.update({k: previous[k] for k in ("imported_from", "system_prompts") if k in previous})
    return write_manifest(out, body)


def _progress(progress: bool | ProgressFn, total: int) -> tuple[ProgressFn | Callable[[int], None], Callable[[], None]]:
    if callable(progress):
        return (lambda n: progress(n, total)), (lambda: None)
    if not progress or total == 0:
        return (lambda n: None), (lambda: None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("labelling"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = bar.add_task("label", total=total)
    bar.start()
    return (lambda n: bar.update(task, completed=n)), bar.stop
