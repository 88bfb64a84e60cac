"""GET /healthz (the process answers) and GET /readyz (the router, and the store when configured, are loaded)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vidroute import __version__
from vidroute.serve.deps import ServiceDep
from vidroute.serve.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    return Health(version=__version__)


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "Still loading, or a component failed to load"}},
)
async def readyz(service: ServiceDep) -> JSONResponse:
    ready, checks = service.readiness()
    body = Readiness(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
