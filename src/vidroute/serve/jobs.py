"""Background ingest jobs: one worker thread runs them one at a time; status is kept in memory (bounded)."""

from __future__ import annotations

import logging
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "partial", "failed"]


class SkippedFile(BaseModel):
    path: str
    error: str


class Job(BaseModel):
    """What a client sees of one ingest job."""

    job_id: str
    status: JobStatus = "queued"
    source: Literal["paths", "upload"] = "paths"
    inputs: list[str] = Field(default_factory=list, description="File names as given (uploads: the original names).")
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    indexed: int = 0
    existing: int = Field(default=0, description="Files already in the index (same content), left as they were.")
    segments: int = 0
    skipped: list[SkippedFile] = Field(default_factory=list)
    error: str | None = None


def _report_fields(report: Any) -> tuple[int, int, int, list[SkippedFile]]:
    """Read an IndexReport (indexed, existing, segments, skipped): ints or lists, objects or dicts."""

    def get(name: str, default: Any) -> Any:
        return report.get(name, default) if isinstance(report, dict) else getattr(report, name, default)

    def count(value: Any) -> int:
        return value if isinstance(value, int) else len(value or ())

    skipped = []
    for item in get("skipped", []) or []:
        if isinstance(item, SkippedFile):
            skipped.append(item)
        elif isinstance(item, dict):
            skipped.append(SkippedFile(path=str(item.get("path", "")), error=str(item.get("error", ""))))
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            skipped.append(SkippedFile(path=str(item[0]), error=str(item[1])))
        else:
            skipped.append(
                SkippedFile(path=str(getattr(item, "path", item)), error=str(getattr(item, "error", "skipped")))
            )
    return count(get("indexed", 0)), count(get("existing", 0)), count(get("segments", 0)), skipped


class JobManager:
    """Queues ingest work on a single thread, so writes to the index never race each other."""

    def __init__(
        self,
        index: Callable[..., Any],
        *,
        keep: int = 200,
        on_done: Callable[[Job], None] | None = None,
    ) -> None:
        self._index = index
        self._keep = keep
        self._on_done = on_done
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._cleanup: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidroute-ingest")

    def submit(
        self, paths: list[str], *, inputs: list[str] | None = None, source: str = "paths", cleanup: Path | None = None
    ) -> Job:
        job = Job(job_id=uuid.uuid4().hex, source=source, inputs=inputs or [str(p) for p in paths])
        with self._lock:
            self._jobs[job.job_id] = job
            if cleanup is not None:
                self._cleanup[job.job_id] = cleanup
            while len(self._jobs) > self._keep:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].status in ("queued", "running"):
                    break
                self._jobs.popitem(last=False)
        self._pool.submit(self._run, job.job_id, list(paths))
        return job.model_copy()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.model_copy(deep=True) if job else None

    def list_jobs(self) -> list[Job]:
        with self._lock:
            return [j.model_copy(deep=True) for j in reversed(self._jobs.values())]

    def wait(self, job_id: str, timeout: float = 60.0) -> Job | None:
        """Block until the job has finished (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(job_id)
            if job is None or job.status not in ("queued", "running"):
                return job
            time.sleep(0.05)
        return self.get(job_id)

    def _update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                for key, value in fields.items():
                    setattr(job, key, value)

    def _run(self, job_id: str, paths: list[str]) -> None:
        self._update(job_id, status="running", started_at=time.time())

        def progress(done: float, total: float | None = None, *_: Any) -> None:
            frac = done / total if total else done
            self._update(job_id, progress=max(0.0, min(1.0, float(frac))))

        try:
            report = self._index(paths, progress=progress)
            indexed, existing, segments, skipped = _report_fields(report)
            if not (indexed or existing or skipped):
                status, error = "failed", "no media files found in the given paths"
            elif not skipped:
                status, error = "succeeded", None
            elif indexed or existing:
                status, error = "partial", f"{len(skipped)} of {len(paths)} files failed"
            else:
                status = "failed"
                error = "; ".join(f"{Path(s.path).name}: {s.error}" for s in skipped) or "nothing was indexed"
            self._update(
                job_id,
                status=status,
                error=error,
                indexed=indexed,
                existing=existing,
                segments=segments,
                skipped=skipped,
                progress=1.0,
            )
        except Exception as exc:  # a job must end in a status, whatever the ingest code raised
            log.warning("ingest job %s failed: %s", job_id, exc, exc_info=True)
            self._update(job_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._update(job_id, finished_at=time.time())
            with self._lock:
                folder = self._cleanup.pop(job_id, None)
            job = self.get(job_id)
            if folder is not None and job is not None and job.status == "failed":
                # A failed upload leaves nothing behind; indexed uploads stay, the player streams them.
                shutil.rmtree(folder, ignore_errors=True)
            if self._on_done and job is not None:
                try:
                    self._on_done(job)
                except Exception:
                    log.exception("job callback failed")

    def shutdown(self, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)
