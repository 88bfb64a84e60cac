"""POST /v1/route: the router's weights, dominant signal and confidence for one query or a batch."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from vidroute.serve.deps import ReadService
from vidroute.serve.handlers import ApiError
from vidroute.serve.middleware import TimeoutRoute
from vidroute.serve.schemas import RouteRequest, RouteResponse, RouteResultOut, error_responses

router = APIRouter(prefix="/v1", tags=["route"], route_class=TimeoutRoute)


def check_query_limits(texts: list[str], *, max_chars: int, max_batch: int, field: str) -> None:
    """Apply the configured limits (the schema carries the hard ceilings; settings may only lower them)."""
    if len(texts) > max_batch:
        raise ApiError(422, f"{field}: at most {max_batch} queries per request, got {len(texts)}")
    for i, text in enumerate(texts):
        if len(text) > max_chars:
            where = f"{field}.{i}" if field == "body.queries" else field
            raise ApiError(422, f"{where}: query is longer than {max_chars} characters ({len(text)})")


@router.post(
    "/route",
    response_model=RouteResponse,
    summary="Route queries to signal weights",
    responses=error_responses(401, 413, 422, 503, 504),
)
async def route(body: RouteRequest, service: ReadService) -> Response:
    """Weights over the search signals (summing to 1), the dominant signal and the router's confidence.

    Send `{"query": "..."}` for one query or `{"queries": [...]}` (at most 256) for a batch; `data` keeps the
    order of the input.
    """
    settings = service.settings
    texts = body.texts
    field = "body.query" if body.query is not None else "body.queries"
    check_query_limits(texts, max_chars=settings.max_query_chars, max_batch=settings.max_batch, field=field)
    service.require_router()
    if settings.route_mode == "thread":
        results = await run_in_threadpool(service.route_many, texts)
    else:
        # A student routes in about a millisecond: running it on the loop beats a thread hop (measured, docs).
        results = service.route_many(texts)
    data = [RouteResultOut.model_validate(r, from_attributes=True) for r in results]
    # Serialised here, once: returning the model would make FastAPI validate it a second time (hot path).
    return Response(RouteResponse(data=data, count=len(data)).model_dump_json(), media_type="application/json")
