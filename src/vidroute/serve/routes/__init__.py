"""One APIRouter per resource; `all_routers()` lists them in the order the app mounts them."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    from vidroute.serve.routes import health, index, media, metrics, route, search

    return [route.router, search.router, index.router, health.router, metrics.router, media.router]
