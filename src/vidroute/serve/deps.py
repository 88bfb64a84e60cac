"""FastAPI dependencies as `Annotated` aliases: the service objects, and API-key checks for writes (and reads)."""
# Dependencies are async (they do no I/O): a sync dependency would cost a thread hop per request.

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from vidroute.serve.config import Settings
from vidroute.serve.handlers import ApiError
from vidroute.serve.state import Service

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <key>`")


async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_router(request: Request) -> Any:
    return request.app.state.service.require_router()


async def get_engine(request: Request) -> Any:
    return request.app.state.service.require_engine()


ServiceDep = Annotated[Service, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RouterDep = Annotated[Any, Depends(get_router)]
EngineDep = Annotated[Any, Depends(get_engine)]


def _presented_key(bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str | None:
    if header_key:
        return header_key
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return None


def check_key(settings: Settings, key: str | None, what: str) -> None:
    challenge = {"WWW-Authenticate": 'Bearer realm="vidroute"'}
    if not settings.api_keys:
        raise ApiError(
            401,
            f"{what} need an API key, and this server has none configured; set VIDROUTE_API_KEYS",
            headers=challenge,
        )
    if key is None:
        raise ApiError(
            401, f"{what} need an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'", headers=challenge
        )
    # Compare against every key in constant time so timing reveals neither which key nor how much matched.
    ok = False
    for valid in settings.api_keys:
        ok |= hmac.compare_digest(key.encode("utf-8", "surrogateescape"), valid.encode("utf-8"))
    if not ok:
        raise ApiError(401, "invalid API key", headers=challenge)


async def require_write(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_header)],
) -> None:
    check_key(request.app.state.settings, _presented_key(bearer, header_key), "write endpoints")


def key_from_headers(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def read_service(request: Request) -> Service:
    """The service, after the read-key check when reads are not public.

    One plain dependency (headers read directly, no security sub-dependencies): read endpoints are the hot path,
    and each FastAPI dependency costs tens of microseconds per request.
    """
    service: Service = request.app.state.service
    if not service.settings.public_read:
        check_key(service.settings, key_from_headers(request), "read endpoints on this server")
    return service


WriteAuth = Annotated[None, Depends(require_write)]
ReadService = Annotated[Service, Depends(read_service)]
