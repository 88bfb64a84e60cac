"""The one embedder contract: text queries and segment media of one signal land in the same vector space."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidroute.errors import IngestError

log = logging.getLogger(__name__)

SIGNALS = ("visual", "audio", "transcription", "metadata")


@dataclass
class SegmentMedia:
    """Everything an embedder may read about one segment; audio is decoded lazily, at the rate each model needs.

    The `*_text` fields hold real text about the segment (transcript, metadata line, and visual/audio
    descriptions when a sidecar or the captions supply them); text embedders embed the one of their signal.
    """

    path: Path
    start: float
    end: float
    has_video: bool = False
    has_audio: bool = False
    transcript: str = ""
    metadata_text: str = ""
    visual_text: str = ""
    audio_text: str = ""
    keyframes: list[Path] = field(default_factory=list)
    _audio: dict[int, np.ndarray | None] = field(default_factory=dict, repr=False)

    def text(self, signal: str) -> str:
        """The segment's text for `signal` ("" when there is none)."""
        return {
            "transcription": self.transcript,
            "metadata": self.metadata_text,
            "visual": self.visual_text,
            "audio": self.audio_text,
        }.get(signal, "")

    def audio(self, sample_rate: int = 16000) -> np.ndarray | None:
        """Mono float32 samples of [start, end) at `sample_rate`, or None when the file has no audio."""
        if not self.has_audio:
            return None
        if sample_rate not in self._audio:
            from vidroute.ingest.media import decode_audio

            try:
                self._audio[sample_rate] = decode_audio(
                    self.path, sample_rate=sample_rate, start=self.start, end=self.end
                )
            except IngestError as exc:
                log.warning("%s", exc)
                self._audio[sample_rate] = None
        return self._audio[sample_rate]


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class Embedder(ABC):
    """One signal's encoder pair: `embed_texts` (queries, text tower) and `embed_segments` (documents).

    Both return L2-normalised float32 vectors of `dim` dimensions in one space, so a cosine between a query and
    a segment means something. `embed_segments` gives None for a segment with nothing to embed for this signal
    (no speech, no keyframe, no description): a missing vector, not a made-up one.
    Constructors only store parameters; models load on first use.
    """

    signal: str
    name: str

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) query vectors."""

    @abstractmethod
    def embed_segments(self, items: Sequence[SegmentMedia]) -> list[np.ndarray | None]:
        """One (dim,) vector or None per segment."""

    @property
    def spec(self) -> str:
        """The registry spec that rebuilds this embedder (`build_embedder(spec, signal)`)."""
        return self.name

    def describe(self) -> dict[str, object]:
        """What a store records about this embedder so it can refuse to mix spaces later."""
        return {"signal": self.signal, "name": self.name, "spec": self.spec, "dim": self.dim}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(signal={self.signal!r}, name={self.name!r})"
