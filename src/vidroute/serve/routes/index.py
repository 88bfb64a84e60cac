"""Index management: POST /v1/index starts an ingest job (paths or upload), GET /v1/jobs/{id}, DELETE /v1/videos/{id}.

All of these need the write key. Paths must lie under `media_roots`; uploads are saved under `uploads_dir`.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from vidroute.serve.deps import ServiceDep, WriteAuth
from vidroute.serve.handlers import ApiError
from vidroute.serve.media import MEDIA_SUFFIXES, SIDECAR_SUFFIXES, inside
from vidroute.serve.middleware import TimeoutRoute
from vidroute.serve.schemas import DeleteResponse, IndexRequest, JobAccepted, JobList, JobOut, error_responses
from vidroute.serve.state import Service

router = APIRouter(prefix="/v1", tags=["index"], route_class=TimeoutRoute)

MAX_UPLOAD_FILES = 20
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")

_MULTIPART_SCHEMA = {
    "type": "object",
    "properties": {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "Media files, plus optional sidecars (.vtt/.srt/.json) named like them.",
        }
    },
    "required": ["files"],
}
_INDEX_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": IndexRequest.model_json_schema()},
            "multipart/form-data": {"schema": _MULTIPART_SCHEMA},
        },
    }
}


def _validation_error(exc: ValidationError) -> RequestValidationError:
    errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors(include_url=False, include_input=False)]
    return RequestValidationError(errors)


def _resolve_paths(paths: list[str], service: Service) -> list[str]:
    roots = service.settings.media_roots
    if not roots:
        raise ApiError(
            403,
            "indexing by server path is off: set VIDROUTE_MEDIA_ROOTS to the folders it may read, or upload files",
            code="forbidden",
        )
    out = []
    for i, raw in enumerate(paths):
        if "\x00" in raw:
            raise ApiError(422, f"body.paths.{i}: path contains a NUL byte")
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = roots[0] / path
        if not inside(path, roots):
            raise ApiError(403, f"body.paths.{i}: {raw!r} is outside the allowed media roots", code="forbidden")
        if not path.exists():
            raise ApiError(404, f"body.paths.{i}: {raw!r} does not exist")
        out.append(str(path.resolve()))
    return out


def _safe_name(name: str | None, index: int) -> str:
    base = Path((name or "").replace("\\", "/")).name
    cleaned = _SAFE.sub("_", base).strip("._") or f"upload{index}"
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot:
        stem, suffix = cleaned, ""
    return f"{stem[:100]}.{suffix.lower()[:10]}" if suffix else stem[:100]


def _save_uploads(files: list[UploadFile], folder: Path) -> tuple[list[str], list[str]]:
    """Copy uploads into `folder`; returns (media paths to index, original names)."""
    folder.mkdir(parents=True, exist_ok=True)
    media, names, used = [], [], set()
    for i, upload in enumerate(files):
        name = _safe_name(upload.filename, i)
        suffix = Path(name).suffix.lower()
        if suffix not in MEDIA_SUFFIXES and suffix not in SIDECAR_SUFFIXES:
            raise ApiError(
                415,
                f"files.{i}: {upload.filename!r} is not a supported media or sidecar file "
                f"(media: {', '.join(sorted(MEDIA_SUFFIXES))}; sidecars: {', '.join(sorted(SIDECAR_SUFFIXES))})",
            )
        if name in used:
            name = f"{i}_{name}"
        used.add(name)
        target = folder / name
        upload.file.seek(0)
        with target.open("wb") as out:
            shutil.copyfileobj(upload.file, out, length=1 << 20)
        if suffix in MEDIA_SUFFIXES:
            media.append(str(target))
            names.append(upload.filename or name)
    return media, names


@router.post(
    "/index",
    status_code=202,
    response_model=JobAccepted,
    summary="Start an ingest job",
    openapi_extra=_INDEX_BODY,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 503),
)
async def start_index(request: Request, service: ServiceDep, _auth: WriteAuth) -> JobAccepted:
    """Index media in the background. JSON `{"paths": [...]}` for files under the server's media roots, or a
    multipart upload (`files`, with optional sidecars). Poll `status_url` until the job ends.
    """
    service.require_engine()
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type == "application/json":
        try:
            payload: Any = await request.json()
        except ValueError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc}", code="invalid_json") from None
        try:
            body = IndexRequest.model_validate(payload)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        paths = await run_in_threadpool(_resolve_paths, body.paths, service)
        job = service.jobs.submit(paths, inputs=body.paths, source="paths")
    elif content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES)
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(400, f"could not parse the multipart body: {exc}") from None
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not files:
            raise ApiError(422, 'multipart body needs one or more files in the "files" field')
        folder = service.settings.uploads_dir / uuid.uuid4().hex
        try:
            media, names = await run_in_threadpool(_save_uploads, files, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            await form.close()
        if not media:
            shutil.rmtree(folder, ignore_errors=True)
            raise ApiError(422, "the upload holds no media file, only sidecars")
        job = service.jobs.submit(media, inputs=names, source="upload", cleanup=folder)
    else:
        raise ApiError(415, 'send application/json ({"paths": [...]}) or multipart/form-data (files)')
    return JobAccepted(job_id=job.job_id, status=job.status, status_url=f"/v1/jobs/{job.job_id}")


JobId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="The id POST /v1/index returned.")]
VideoId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


@router.get("/jobs/{job_id}", response_model=JobOut, summary="Ingest job status", responses=error_responses(401, 404))
async def get_job(job_id: JobId, service: ServiceDep, _auth: WriteAuth) -> JobOut:
    job = service.jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id!r} (jobs are kept in memory; it may have expired or the server restarted)")
    return JobOut.model_validate(job.model_dump())


@router.get("/jobs", response_model=JobList, summary="Recent ingest jobs", responses=error_responses(401))
async def list_jobs(service: ServiceDep, _auth: WriteAuth) -> JobList:
    jobs = [JobOut.model_validate(j.model_dump()) for j in service.jobs.list_jobs()]
    return JobList(data=jobs, count=len(jobs))


@router.delete(
    "/videos/{video_id}",
    response_model=DeleteResponse,
    summary="Remove a video from the index",
    responses=error_responses(401, 404, 503),
)
def delete_video(video_id: VideoId, service: ServiceDep, _auth: WriteAuth) -> DeleteResponse:
    engine = service.require_engine()
    deleted = int(engine.delete_video(video_id))
    if deleted == 0:
        raise ApiError(404, f"no video {video_id!r} in the index")
    service.refresh_count()
    return DeleteResponse(video_id=video_id, deleted=deleted)
