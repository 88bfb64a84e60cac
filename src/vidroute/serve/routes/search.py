"""POST /v1/search: route the query (unless weights are given), search the index, return hits with signed media."""

from __future__ import annotations

import time
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter

from vidroute.serve.deps import ReadService
from vidroute.serve.handlers import ApiError
from vidroute.serve.middleware import TimeoutRoute
from vidroute.serve.routes.route import check_query_limits
from vidroute.serve.schemas import Hit, RouteResultOut, SearchRequest, SearchResponse, error_responses

router = APIRouter(prefix="/v1", tags=["search"], route_class=TimeoutRoute)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


@router.post(
    "/search",
    response_model=SearchResponse,
    summary="Search the video index",
    responses=error_responses(400, 401, 413, 422, 503, 504),
)
def search(body: SearchRequest, service: ReadService) -> SearchResponse:
    """Hybrid search over the indexed segments, fused with the router's weights (or the ones you give).

    Each hit carries its fused `score`, the per-signal `scores`, and signed `media_url`/`keyframe_url` links the
    page uses for the thumbnail and the player (`media_url#t=start,end` starts at the segment).
    """
    t0 = time.perf_counter()
    settings = service.settings
    check_query_limits([body.query], max_chars=settings.max_query_chars, max_batch=1, field="body.query")
    if body.k > settings.max_k:
        raise ApiError(422, f"body.k: at most {settings.max_k}, got {body.k}")
    engine = service.require_engine()
    signals = list(_get(engine, "signals", None) or [])

    weights = body.weights
    route = None
    timings: dict[str, float] = {}
    if weights is not None:
        unknown = sorted(set(weights) - set(signals)) if signals else []
        if unknown:
            raise ApiError(422, f"body.weights: unknown signal(s) {unknown}; this index has {signals}")
    elif getattr(engine, "router", None) is None and (service.router is not None or settings.model_dir is not None):
        # An engine without its own router: route here (the engine otherwise routes while it embeds the query).
        r0 = time.perf_counter()
        route = service.route_many([body.query])[0]
        timings["route_ms"] = (time.perf_counter() - r0) * 1000
        weights = dict(route.weights)

    filters = None
    if body.filters is not None:
        from vidroute.search.types import Filters

        filters = Filters(**body.filters.model_dump())
    s0 = time.perf_counter()
    result = engine.search(body.query, k=body.k, weights=weights, filters=filters, fusion=body.fusion)
    timings["engine_ms"] = (time.perf_counter() - s0) * 1000
    for key, value in (_get(result, "timings", None) or {}).items():
        if isinstance(value, (int, float)):
            timings.setdefault(key, float(value))
    if route is None and _get(result, "route", None) is not None:
        route = _get(result, "route")
        service.metrics.observe_routes([route])
    signer = service.signer
    hits = [
        Hit(
            segment_id=h.segment_id,
            video_id=h.video_id,
            filename=PurePath(h.path).name,
            start=h.start,
            end=h.end,
            score=h.score,
            scores=h.scores,
            title=h.title,
            transcript=h.transcript,
            media_url=signer.url(h.path),
            keyframe_url=signer.url(h.keyframe),
        )
        for h in _get(result, "hits", [])
    ]
    used = _get(result, "weights", None) or weights or {}
    return SearchResponse(
        query=body.query,
        weights=dict(used),
        route=RouteResultOut.model_validate(route, from_attributes=True) if route is not None else None,
        data=hits,
        count=len(hits),
        latency_ms=(time.perf_counter() - t0) * 1000,
        timings=timings,
    )
