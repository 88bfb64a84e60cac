"""Real loading code for image-text (CLIP, SigLIP) and audio-text (CLAP) models through `transformers`.

No such weights ship on PyPI, so these run for users who have them: a local folder saved with
`save_pretrained`, or a hub id when downloads are allowed. Tests build tiny random models of the same classes.
"""

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
def load_hf_pair(source: str, allow_download: bool):
    """(model, processor) from a folder or hub id; offline unless `allow_download`."""
    local = Path(source).expanduser()
    if not local.exists() and not allow_download:
        raise EmbeddingError(
            f"model {source!r} is not a local folder and downloads are off; pass a folder saved with "
            "save_pretrained, or allow downloads (allow_download=True / VIDROUTE_ALLOW_DOWNLOAD=1)"
        )
    transformers = require("transformers", "search")
    where = str(local) if local.exists() else source
    try:
        model = transformers.AutoModel.from_pretrained(where, local_files_only=not allow_download).eval()
        processor = transformers.AutoProcessor.from_pretrained(where, local_files_only=not allow_download)
    except (OSError, ValueError, KeyError) as exc:
        raise EmbeddingError(f"cannot load a transformers model and processor from {where!r}: {exc}") from exc
    return model, processor


def _features(out) -> np.ndarray:
    """get_*_features returns a tensor (transformers 4) or an output whose pooler_output is the projection (5)."""
    tensor = out if hasattr(out, "detach") else getattr(out, "pooler_output", None)
    if tensor is None:
        raise EmbeddingError(f"unexpected feature output {type(out).__name__}")
    return tensor.detach().float().cpu().numpy()


class _HFEmbedder(Embedder):
    family = ""

    def __init__(self, *, signal: str, model: str, allow_download: bool = False, batch_size: int = 16) -> None:
        self.signal = signal
        self.model = model
        self.allow_download = allow_download
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return f"{self.family}:{self.model}"

    def _pair(self):
        return load_hf_pair(self.model, self.allow_download)

    def _tokenizer(self):
        _, processor = self._pair()
        return getattr(processor, "tokenizer", processor)

    def _text_kwargs(self) -> dict[str, object]:
        return {"padding": True, "truncation": True}

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        model, _ = self._pair()
        torch = require("torch", "search")
        tok = self._tokenizer()
        out: list[np.ndarray] = []
        for i in range(0, len(texts), self.batch_size):
            batch = [str(t) for t in texts[i : i + self.batch_size]]
            enc = tok(batch, return_tensors="pt", **self._text_kwargs())
            allowed = {"input_ids", "attention_mask", "position_ids"}
            with torch.inference_mode():
                feats = model.get_text_features(**{k: v for k, v in enc.items() if k in allowed})
            out.append(_features(feats))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.concatenate(out))

    @functools.cached_property
    def dim(self) -> int:
        return int(self.embed_texts(["dimension probe"]).shape[1])


class ImageTextEmbedder(_HFEmbedder):
    """CLIP or SigLIP: keyframes through the image tower, queries through the text tower (`clip:`/`siglip:`).

    A segment's vector is the normalised mean of its keyframes' vectors; no keyframe gives None.
    """

    def __init__(
        self,
        *,
        signal: str = "visual",
        model: str,
        family: str = "clip",
        allow_download: bool = False,
        batch_size: int = 16,
    ) -> None:
        super().__init__(signal=signal, model=model, allow_download=allow_download, batch_size=batch_size)
        self.family = family

    def _text_kwargs(self) -> dict[str, object]:
        if self.family == "siglip":  # SigLIP was trained on fixed-length padded text
            return {"padding": "max_length", "truncation": True, "max_length": 64}
        model, _ = self._pair()
        max_len = getattr(getattr(model.config, "text_config", None), "max_position_embeddings", 77)
        return {"padding": True, "truncation": True, "max_length": int(max_len)}

    def embed_images(self, images: Sequence[object]) -> np.ndarray:
        torch = require("torch", "search")
        model, processor = self._pair()
        image_processor = getattr(processor, "image_processor", processor)
        out: list[np.ndarray] = []
        for i in range(0, len(images), self.batch_size):
            pixels = image_processor(images=list(images[i : i + self.batch_size]), return_tensors="pt")
            with torch.inference_mode():
                out.append(_features(model.get_image_features(pixel_values=pixels["pixel_values"])))
        return l2_normalise(np.concatenate(out)) if out else np.zeros((0, 0), dtype=np.float32)

    def embed_segments(self, items: Sequence[SegmentMedia]) -> list[np.ndarray | None]:
        pil = require("PIL.Image", "search")
        images: list[object] = []
        owner: list[int] = []
        for i, item in enumerate(items):
            for frame in item.keyframes:
                try:
                    with pil.open(frame) as im:
                        images.append(im.convert("RGB"))
                    owner.append(i)
                except OSError as exc:
                    log.warning("skipping unreadable keyframe %s: %s", frame, exc)
        out: list[np.ndarray | None] = [None] * len(items)
        if not images:
            return out
        vecs = self.embed_images(images)
        for i in set(owner):
            rows = vecs[[k for k, o in enumerate(owner) if o == i]]
            out[i] = l2_normalise(rows.mean(axis=0))[0]
        return out


class ClapEmbedder(_HFEmbedder):
    """CLAP: segment audio (resampled to the model's rate, in windows of its input length, averaged) and query
    text into one space (`clap:`). A segment without audio gives None."""

    family = "clap"

    def __init__(self, *, signal: str = "audio", model: str, allow_download: bool = False, batch_size: int = 8):
        super().__init__(signal=signal, model=model, allow_download=allow_download, batch_size=batch_size)

    def _feature_extractor(self):
        _, processor = self._pair()
        return getattr(processor, "feature_extractor", processor)

    @property
    def sample_rate(self) -> int:
        return int(getattr(self._feature_extractor(), "sampling_rate", 48000))

    def embed_waveforms(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) vectors for mono waveforms at `sample_rate`, each at most one model window long."""
        torch = require("torch", "search")
        model, _ = self._pair()
        fe = self._feature_extractor()
        fusion = bool(getattr(getattr(model.config, "audio_config", None), "enable_fusion", False))
        out: list[np.ndarray] = []
        for i in range(0, len(waves), self.batch_size):
            batch = [np.asarray(w, dtype=np.float32) for w in waves[i : i + self.batch_size]]
            feats = fe(
                batch,
                sampling_rate=self.sample_rate,
                return_tensors="pt",
                truncation="fusion" if fusion else "rand_trunc",
                padding="repeatpad",
            )
            kwargs = {k: feats[k] for k in ("input_features", "is_longer") if k in feats}
            with torch.inference_mode():
                out.append(_features(model.get_audio_features(**kwargs)))
        return l2_normalise(np.concatenate(out)) if out else np.zeros((0, 0), dtype=np.float32)

    def embed_segments(self, items: Sequence[SegmentMedia]) -> list[np.ndarray | None]:
        sr = self.sample_rate
        fe = self._feature_extractor()
        window = int(getattr(fe, "nb_max_samples", 0) or sr * 10)
        chunks: list[np.ndarray] = []
        owner: list[int] = []
        for i, item in enumerate(items):
            wave = item.audio(sr)
            if wave is None or wave.size < sr // 10:
                continue
            pieces = [wave[k : k + window] for k in range(0, wave.size, window)]
            if len(pieces) > 1 and pieces[-1].size < window // 4:  # a short tail adds noise, not content
                pieces = pieces[:-1]
            chunks += pieces
            owner += [i] * len(pieces)
        out: list[np.ndarray | None] = [None] * len(items)
        if not chunks:
            return out
        vecs = self.embed_waveforms(chunks)
        for i in set(owner):
            out[i] = l2_normalise(vecs[[k for k, o in enumerate(owner) if o == i]].mean(axis=0))[0]
        return out
