"""The FastAPI application: `create_app(settings)` wires settings, service objects, guards, routes and the page."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from vidroute import __version__
from vidroute.errors import require

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")

# The page loads only its own files: no CDN, no inline script.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self'; script-src 'self'; style-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

_DESCRIPTION = """Route video-search queries to signal weights with a distilled CPU student, and search video with them.

* **Read** endpoints (`/v1/route`, `/v1/search`, media) are public unless the server sets `VIDROUTE_PUBLIC_READ=false`.
* **Write** endpoints (`/v1/index`, jobs, `DELETE /v1/videos/...`) need an API key:
  `Authorization: Bearer <key>` or `X-API-Key: <key>`.
* Errors are JSON: `{"error": {"code", "message", "details"}}`.
"""


def create_app(settings: Any = None, *, router: Any = None, engine: Any = None) -> Any:
    """Build the app. `settings` defaults to `Settings()` (environment and `.env`); `router`/`engine` may be given
    ready-made, otherwise they are loaded from `settings.model_dir`/`settings.store_uri` in the background at startup.

    Example:
        >>> from vidroute.serve.config import Settings
        >>> app = create_app(Settings(api_keys="secret"))
        >>> sorted(p for p in app.openapi()["paths"] if p.startswith("/v1/"))[:3]
        ['/v1/index', '/v1/jobs', '/v1/jobs/{job_id}']
    """
    fastapi = require("fastapi", "serve")
    from fastapi.responses import FileResponse
    from fastapi.staticfiles import StaticFiles

    from vidroute.serve import handlers
    from vidroute.serve.config import Settings
    from vidroute.serve.middleware import BodyGuard, MetricsMiddleware
    from vidroute.serve.routes import all_routers
    from vidroute.serve.state import Service

    settings = settings if settings is not None else Settings()
    service = Service(settings, router=router, engine=engine)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        service.start(background=True)
        try:
            yield
        finally:
            service.close()

    app = fastapi.FastAPI(
        title="vidroute",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.service = service

    handlers.install(app)
    for api_router in all_routers():
        app.include_router(api_router)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Added innermost first: metrics see every answer, CORS headers reach 413s too.
    if settings.route_fast_path:
        from vidroute.serve.fastpath import RouteFastPath

        app.add_middleware(RouteFastPath, service=service)
    app.add_middleware(
        BodyGuard,
        max_json=settings.max_body_bytes,
        max_upload=settings.max_upload_bytes,
        upload_paths=("/v1/index",),
        json_paths=("/v1/route", "/v1/search"),
    )
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    return app
