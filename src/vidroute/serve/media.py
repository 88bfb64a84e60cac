"""Safe media URLs: the server signs the paths of indexed files it returns, and serves only signed, allowed files.

A URL is `/media/<b64url(path)>.<hmac>`; nobody can ask for a path the index did not hand out, `..` tricks
are moot (the path is never taken from the client unsigned), and when `media_roots` is set the resolved file
must also lie inside one of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import mimetypes
import secrets
from pathlib import Path

MEDIA_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".webm", ".mkv", ".mov", ".avi", ".ogv", ".mp3", ".m4a", ".wav", ".flac", ".ogg", ".opus", ".aac"}
)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
SIDECAR_SUFFIXES = frozenset({".vtt", ".srt", ".json", ".txt"})

mimetypes.add_type("video/x-matroska", ".mkv")
mimetypes.add_type("audio/flac", ".flac")
mimetypes.add_type("video/webm", ".webm")


class MediaSigner:
    """Turns file paths into opaque, tamper-proof URL tokens and back."""

    def __init__(self, secret: str | None = None) -> None:
        self._key = (secret or secrets.token_hex(32)).encode("utf-8")

    def _mac(self, raw: bytes) -> str:
        return hmac.new(self._key, raw, hashlib.sha256).hexdigest()[:32]

    def token(self, path: str) -> str:
        raw = path.encode("utf-8", "surrogateescape")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") + "." + self._mac(raw)

    def url(self, path: str | None) -> str | None:
        return None if not path else f"/media/{self.token(path)}"

    def path(self, token: str) -> str | None:
        """The signed path, or None when the token is malformed or forged."""
        encoded, _, mac = token.partition(".")
        if not encoded or len(mac) != 32:
            return None
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(raw)):
            return None
        return raw.decode("utf-8", "surrogateescape")


def inside(path: Path, roots: list[Path]) -> bool:
    """True when the fully resolved `path` lies inside one of the resolved `roots` (symlinks followed)."""
    resolved = path.resolve()
    for root in roots:
        try:
            resolved.relative_to(root.resolve())
            return True
        except ValueError:
            continue
    return False


def servable(path: Path, roots: list[Path] | None) -> Path | None:
    """The resolved file when it is a regular media or image file inside `roots` (any place when roots is None)."""
    suffix = path.suffix.lower()
    if suffix not in MEDIA_SUFFIXES and suffix not in IMAGE_SUFFIXES:
        return None
    resolved = path.resolve()
    if roots is not None and not inside(resolved, roots):
        return None
    return resolved if resolved.is_file() else None


def content_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
