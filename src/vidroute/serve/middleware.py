"""Pure-ASGI request guards: body size and UTF-8 checks, per-request metrics, and a per-handler timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidroute.serve.handlers import ApiError, error_response
from vidroute.serve.telemetry import Metrics


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _is_json(content_type: str) -> bool:
    main = content_type.split(";", 1)[0].strip().lower()
    return main == "application/json" or (main.startswith("application/") and main.endswith("+json"))


class BodyGuard:
    """Caps request bodies (413) and rejects JSON that is not UTF-8 (400) before any handler sees them.

    JSON bodies are small (≤ `max_json` bytes), so they are read whole, checked and replayed; other bodies
    (multipart uploads, capped at `max_upload` on `upload_paths`) are counted as they stream.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_json: int,
        max_upload: int,
        upload_paths: tuple[str, ...] = (),
        json_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_json = max_json
        self.max_upload = max_upload
        self.upload_paths = upload_paths
        self.json_paths = json_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type") or ""
        if scope["method"] == "POST" and scope["path"] in self.json_paths and not _is_json(content_type):
            shown = content_type or "none"
            message = f"send a JSON body with 'Content-Type: application/json' (got {shown})"
            await error_response(415, "unsupported_media_type", message)(scope, receive, send)
            return
        multipart = content_type.lower().startswith("multipart/")
        limit = self.max_upload if multipart and scope["path"] in self.upload_paths else self.max_json
        length = _header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                await error_response(400, "bad_request", f"invalid Content-Length header {length!r}")(
                    scope, receive, send
                )
                return
            if int(length) > limit:
                await self._too_large(limit, scope, receive, send)
                return

        if _is_json(content_type):
            body = bytearray()
            more = True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > limit:
                    await self._too_large(limit, scope, receive, send)
                    return
            try:
                bytes(body).decode("utf-8")
            except UnicodeDecodeError as exc:
                message = (
                    f"request body is not valid UTF-8 (byte 0x{body[exc.start]:02x} at offset {exc.start}); "
                    "send JSON encoded as UTF-8"
                )
                await error_response(400, "invalid_encoding", message)(scope, receive, send)
                return
            await self.app(scope, _replay(bytes(body), receive), send)
            return

        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(413, _too_large_message(limit))
            return message

        await self.app(scope, counting_receive, send)

    async def _too_large(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, "payload_too_large", _too_large_message(limit), {"limit_bytes": limit})(
            scope, receive, send
        )


def _too_large_message(limit: int) -> str:
    return f"request body is larger than the limit of {limit:,} bytes"


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class MetricsMiddleware:
    """Counts requests and times them, labelled by the matched route template (bounded label set)."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            path = getattr(route, "path", None)
            if path is None:
                path = "/static" if scope["path"].startswith("/static/") else "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.request_seconds.labels(method, path).observe(time.perf_counter() - start)


class TimeoutRoute(APIRoute):
    """An APIRoute whose handler (body parsing included) is cut off after `settings.request_timeout_s` (504).

    A synchronous endpoint keeps running in its worker thread after the cut-off; the client gets its answer anyway.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def timed(request: Request) -> Response:
            seconds = request.app.state.settings.request_timeout_s
            deadline = asyncio.timeout(seconds)
            try:
                async with deadline:
                    return await handler(request)
            except TimeoutError:
                if not deadline.expired():
                    raise  # a timeout inside the handler, not ours
                raise ApiError(504, f"request took longer than the limit of {seconds:g} s") from None

        return timed
