"""Structured JSON errors: every failure leaves the service as {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidroute.errors import (
    ConfigError,
    DataFormatError,
    IngestError,
    MissingDependencyError,
    ModelError,
    StoreError,
    TeacherError,
    VidrouteError,
)

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}

# Most specific first: MissingDependencyError is also an ImportError, IngestError must not fall into the default.
_VIDROUTE_STATUS: list[tuple[type[VidrouteError], int, str]] = [
    (MissingDependencyError, 503, "missing_dependency"),
    (ConfigError, 400, "bad_config"),
    (DataFormatError, 400, "bad_data"),
    (IngestError, 422, "ingest_failed"),
    (ModelError, 503, "model_unavailable"),
    (StoreError, 503, "store_unavailable"),
    (TeacherError, 502, "teacher_failed"),
]


class ApiError(StarletteHTTPException):
    """An HTTP error with a stable machine-readable `code` and optional `details`."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code or _CODES.get(status_code, "error")
        self.details = details


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def error_response(status: int, code: str, message: str, details: Any = None, headers=None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def _loc(loc: tuple | list) -> str:
    return ".".join(str(p) for p in loc)


def validation_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Field path, message and type of each error; never the input (it may be a megabyte of garbage)."""
    out = []
    for err in errors[:20]:
        item = {"loc": _loc(err.get("loc", ())), "msg": str(err.get("msg", "")), "type": str(err.get("type", ""))}
        out.append(item)
    return out


def validation_message(details: list[dict[str, Any]]) -> str:
    if not details:
        return "request validation failed"
    first = details[0]
    msg = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{first['loc']}: {msg}{more}" if first["loc"] else msg + more


async def _http_exception(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(exc.status_code, code, message, getattr(exc, "details", None), getattr(exc, "headers", None))


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            # Malformed JSON is a syntax problem (400), not a field that failed validation (422).
            loc = err.get("loc", ())
            pos = f" at character {loc[-1]}" if len(loc) > 1 else ""
            reason = (err.get("ctx") or {}).get("error") or err.get("msg", "")
            return error_response(400, "invalid_json", f"request body is not valid JSON: {reason}{pos}")
    details = validation_details(errors)
    return error_response(422, "validation_error", validation_message(details), details)


def vidroute_status(exc: VidrouteError) -> tuple[int, str]:
    for cls, status, code in _VIDROUTE_STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


async def _vidroute(request: Request, exc: VidrouteError) -> JSONResponse:
    status, code = vidroute_status(exc)
    if status >= 500:
        log.warning("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    return error_response(status, code, str(exc))


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    # Log the traceback under an id the client can quote; the client never sees the traceback.
    error_id = uuid.uuid4().hex[:12]
    log.error("unhandled error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal server error", {"error_id": error_id})


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(VidrouteError, _vidroute)
    app.add_exception_handler(Exception, _unhandled)
