"""A pure-ASGI handler for `POST /v1/route`, the hot path: same contract as the FastAPI endpoint, less overhead.

FastAPI's request machinery (dependency solving, body field handling, response-model serialisation) costs about
0.25 ms of CPU per request here, more than routing a query with the static student (measured in-process: 0.30 ms
vs 0.06 ms for an empty router). At hundreds of requests a second on two cores that is the difference that
matters, so this handler parses the body straight into the same pydantic `RouteRequest`, calls the same
`Service.route_many`, and writes the same `RouteResponse` and error JSON. The FastAPI endpoint stays registered:
it documents the operation in OpenAPI and serves it when the fast path is off (`VIDROUTE_ROUTE_FAST_PATH=false`);
a test asserts both answer alike.

It sits inside the body guard (size, UTF-8, content type already checked) and the metrics middleware.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from vidroute.errors import VidrouteError
from vidroute.serve.handlers import ApiError, error_response, validation_details, validation_message, vidroute_status
from vidroute.serve.schemas import RouteRequest, RouteResponse, RouteResultOut

PATH = "/v1/route"


class _RouteLabel:
    """What the metrics middleware reads from `scope["route"]` (the matched route's path template)."""

    path = PATH


class RouteFastPath:
    def __init__(self, app: ASGIApp, *, service: Any) -> None:
        self.app = app
        self.service = service
        self.route = _RouteLabel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            status, body = await self._handle(scope, receive)
        except ApiError as exc:
            await error_response(exc.status_code, exc.code, str(exc.detail), exc.details, exc.headers)(
                scope, receive, send
            )
            return
        except VidrouteError as exc:
            code_status, code = vidroute_status(exc)
            await error_response(code_status, code, str(exc))(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        service = self.service
        settings = service.settings
        if not settings.public_read:
            from vidroute.serve.deps import check_key, key_from_headers

            check_key(settings, key_from_headers(Request(scope)), "read endpoints on this server")

        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ApiError(400, "client disconnected")
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        # json.loads then model_validate, as FastAPI does, so both paths accept and reject exactly the same bodies.
        try:
            payload = json.loads(b"".join(chunks))
        except json.JSONDecodeError as exc:
            message = f"request body is not valid JSON: {exc.msg} at character {exc.pos}"
            raise ApiError(400, message, code="invalid_json") from None
        try:
            request = RouteRequest.model_validate(payload, from_attributes=True)  # as FastAPI validates a body
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            details = validation_details([{**e, "loc": ("body", *e.get("loc", ()))} for e in errors])
            raise ApiError(422, validation_message(details), details=details) from None

        from vidroute.serve.routes.route import check_query_limits

        texts = request.texts
        field = "body.query" if request.query is not None else "body.queries"
        check_query_limits(texts, max_chars=settings.max_query_chars, max_batch=settings.max_batch, field=field)
        service.require_router()
        if settings.route_mode == "thread":
            seconds = settings.request_timeout_s
            deadline = asyncio.timeout(seconds)
            try:
                async with deadline:
                    results = await run_in_threadpool(service.route_many, texts)
            except TimeoutError:
                if not deadline.expired():
                    raise
                raise ApiError(504, f"request took longer than the limit of {seconds:g} s") from None
        else:
            results = service.route_many(texts)
        data = [RouteResultOut.model_validate(r, from_attributes=True) for r in results]
        return 200, RouteResponse(data=data, count=len(data)).model_dump_json().encode()
