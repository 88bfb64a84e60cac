"""Per-signal embedders behind one interface, built by name: `minilm`, `st:<path>`, `clip:<id-or-path>`,
`siglip:<id-or-path>`, `clap:<id-or-path>`, `nova[:<model-id>]`.

The offline default (`DEFAULT_SPECS`) is MiniLM for every signal, over real text only: the transcript, the
metadata line, and, for visual and audio, descriptions a sidecar or the captions give for a segment; segments
without such a description get no visual/audio vector. See docs/embedders.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from vidroute.errors import ConfigError
from vidroute.ingest.embedders.base import SIGNALS, Embedder, SegmentMedia, l2_normalise

DEFAULT_SPECS: dict[str, str] = {s: "minilm" for s in SIGNALS}

# Which signals each model family can embed the media of (text models embed any signal's text).
_FAMILY_SIGNALS = {
    "clip": {"visual"},
    "siglip": {"visual"},
    "clap": {"audio"},
}


def _allow_download(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return os.environ.get("VIDROUTE_ALLOW_DOWNLOAD", "").lower() in ("1", "true", "yes")


def build_embedder(
    spec: str,
    signal: str,
    *,
    allow_download: bool | None = None,
    nova_client: object | None = None,
    nova_dimension: int = 1024,
) -> Embedder:
    """One embedder for `signal` from a spec string (see the module docstring)."""
    if signal not in SIGNALS:
        raise ConfigError(f"unknown signal {signal!r}; expected one of {list(SIGNALS)}")
    family, _, arg = spec.partition(":")
    family = family.strip().lower()
    arg = arg.strip()
    if family in _FAMILY_SIGNALS and signal not in _FAMILY_SIGNALS[family]:
        raise ConfigError(
            f"{family!r} embeds {sorted(_FAMILY_SIGNALS[family])} media, not {signal!r}; "
            f"use a text model (minilm) or nova for {signal!r}"
        )
    if family == "minilm" and not arg:
        from vidroute.ingest.embedders.text import TextEmbedder

        return TextEmbedder(signal=signal, model="minilm")
    if family in ("st", "text", "sentence-transformers"):
        if not arg:
            raise ConfigError(f"embedder spec {spec!r} needs a model folder: st:<path>")
        from vidroute.ingest.embedders.text import TextEmbedder

        return TextEmbedder(signal=signal, model=arg)
    if family in ("clip", "siglip"):
        if not arg:
            raise ConfigError(f"embedder spec {spec!r} needs a model: {family}:<hub-id-or-folder>")
        from vidroute.ingest.embedders.hf import ImageTextEmbedder

        return ImageTextEmbedder(
            signal=signal, model=arg, family=family, allow_download=_allow_download(allow_download)
        )
    if family == "clap":
        if not arg:
            raise ConfigError(f"embedder spec {spec!r} needs a model: clap:<hub-id-or-folder>")
        from vidroute.ingest.embedders.hf import ClapEmbedder

        return ClapEmbedder(signal=signal, model=arg, allow_download=_allow_download(allow_download))
    if family == "nova":
        from vidroute.ingest.embedders.nova import NOVA_MODEL_ID, NovaClient, NovaEmbedder

        model_id = arg or NOVA_MODEL_ID
        client = nova_client if isinstance(nova_client, NovaClient) else None
        return NovaEmbedder(signal=signal, model_id=model_id, dimension=nova_dimension, client=client)
    if family == "none":
        raise ConfigError("use None (or leave the signal out) for a signal without an embedder, not 'none'")
    raise ConfigError(
        f"unknown embedder spec {spec!r}; expected minilm, st:<path>, clip:<id-or-path>, siglip:<id-or-path>, "
        "clap:<id-or-path> or nova[:<model-id>]"
    )


def build_embedders(
    specs: Mapping[str, str | None] | None = None,
    *,
    allow_download: bool | None = None,
    nova_client: object | None = None,
    nova_dimension: int = 1024,
    region: str | None = None,
) -> dict[str, Embedder]:
    """Embedders for each signal; `specs` overrides DEFAULT_SPECS per signal (None or "none" drops a signal).

    Nova embedders share one client so a video call's audio vector is reused by the audio signal.
    """
    merged: dict[str, str | None] = dict(DEFAULT_SPECS)
    for signal, spec in (specs or {}).items():
        if signal not in SIGNALS:
            raise ConfigError(f"unknown signal {signal!r}; expected one of {list(SIGNALS)}")
        merged[signal] = spec
    if nova_client is None and any(s and s.split(":", 1)[0].lower() == "nova" for s in merged.values()):
        from vidroute.ingest.embedders.nova import NOVA_MODEL_ID, NovaClient

        first = next(s for s in merged.values() if s and s.split(":", 1)[0].lower() == "nova")
        nova_client = NovaClient(region=region, model_id=first.partition(":")[2].strip() or NOVA_MODEL_ID)
    out: dict[str, Embedder] = {}
    for signal in SIGNALS:
        spec = merged.get(signal)
        if spec is None or str(spec).strip().lower() in ("", "none"):
            continue
        out[signal] = build_embedder(
            str(spec), signal, allow_download=allow_download, nova_client=nova_client, nova_dimension=nova_dimension
        )
    return out


def parse_specs(items: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    """`["visual=clip:/models/clip", "audio=none"]` (CLI form) -> {"visual": "clip:/models/clip", "audio": None}."""
    out: dict[str, str | None] = {}
    for item in items:
        signal, sep, spec = item.partition("=")
        if not sep or not signal.strip():
            raise ConfigError(f"embedder option {item!r} must look like SIGNAL=SPEC, e.g. visual=clip:/path")
        out[signal.strip()] = None if spec.strip().lower() in ("", "none") else spec.strip()
    return out


__all__ = [
    "DEFAULT_SPECS",
    "SIGNALS",
    "Embedder",
    "SegmentMedia",
    "build_embedder",
    "build_embedders",
    "l2_normalise",
    "parse_specs",
]
