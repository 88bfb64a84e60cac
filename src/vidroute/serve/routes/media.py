"""GET /media/{token}: indexed media and keyframes behind signed tokens (HTTP Range supported for seeking)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse

from vidroute.serve.deps import ReadService
from vidroute.serve.handlers import ApiError
from vidroute.serve.media import content_type, servable
from vidroute.serve.schemas import error_responses

router = APIRouter(tags=["media"])

Token = Annotated[str, PathParam(max_length=8192, pattern=r"^[A-Za-z0-9_-]+\.[0-9a-f]{32}$")]


@router.get(
    "/media/{token}",
    summary="Stream an indexed media file or keyframe",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}, "image/jpeg": {}}, "description": "The file (206 for a Range request)"},
        **error_responses(401, 404),
    },
)
def media(token: Token, service: ReadService) -> FileResponse:
    """Only URLs the search endpoint handed out work; the file must still exist inside the media roots."""
    raw = service.signer.path(token)
    if raw is None:
        raise ApiError(404, "unknown or tampered media link; take media links from /v1/search results")
    path = servable(Path(raw), service.media_roots())
    if path is None:
        raise ApiError(404, "this media file is no longer available")
    return FileResponse(
        path,
        media_type=content_type(path),
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


# Players probe with HEAD; same handler, kept out of the schema (one operation per path and method there).
router.add_api_route("/media/{token}", media, methods=["HEAD"], include_in_schema=False, response_class=FileResponse)
