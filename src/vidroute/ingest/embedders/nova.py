"""Amazon Nova Multimodal Embeddings on Bedrock (`invoke_model`, synchronous SINGLE_EMBEDDING requests).

Documents are embedded with purpose GENERIC_INDEX; queries with the retrieval purpose of the signal's index
(VIDEO_RETRIEVAL for visual, AUDIO_RETRIEVAL for audio, TEXT_RETRIEVAL for text signals). A video segment is
sent once as an mp4 clip in AUDIO_VIDEO_SEPARATE mode: the VIDEO vector is the visual one, and the AUDIO vector
is kept for the audio embedder that shares the same client, so each segment costs one call for both.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from vidroute.errors import ConfigError, EmbeddingError, IngestError, require
from vidroute.ingest.embedders.base import Embedder, SegmentMedia, l2_normalise

log = logging.getLogger(__name__)

NOVA_MODEL_ID = "amazon.nova-2-multimodal-embeddings-v1:0"
NOVA_DIMENSIONS = (256, 384, 1024, 3072)
MAX_CLIP_SECONDS = 30.0  # the synchronous API takes at most 30 s of video or audio
QUERY_PURPOSE = {
    "visual": "VIDEO_RETRIEVAL",
    "audio": "AUDIO_RETRIEVAL",
    "transcription": "TEXT_RETRIEVAL",
    "metadata": "TEXT_RETRIEVAL",
}


def text_request(text: str, *, purpose: str, dimension: int) -> dict[str, Any]:
    return {
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {
            "embeddingPurpose": purpose,
            "embeddingDimension": dimension,
            "text": {"truncationMode": "END", "value": text},
        },
    }


def media_request(kind: str, data: bytes, fmt: str, *, purpose: str, dimension: int) -> dict[str, Any]:
    """An image, audio or video request with inline base64 bytes."""
    body: dict[str, Any] = {"format": fmt, "source": {"bytes": base64.b64encode(data).decode("ascii")}}
    if kind == "video":
        body["embeddingMode"] = "AUDIO_VIDEO_SEPARATE"
    elif kind == "image":
        body["detailLevel"] = "STANDARD_IMAGE"
    return {
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {"embeddingPurpose": purpose, "embeddingDimension": dimension, kind: body},
    }


def parse_response(payload: dict[str, Any]) -> dict[str, np.ndarray]:
    """{embeddingType: vector} from `{"embeddings": [{"embeddingType": "TEXT", "embedding": [...]}, ...]}`."""
    items = payload.get("embeddings")
    if not isinstance(items, list) or not items:
        raise EmbeddingError(f"Nova response has no 'embeddings' list: keys {sorted(payload)}")
    out: dict[str, np.ndarray] = {}
    for item in items:
        vec = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(vec, list) or not vec:
            raise EmbeddingError("Nova response item without an 'embedding' vector")
        out[str(item.get("embeddingType", "UNKNOWN")).upper()] = np.asarray(vec, dtype=np.float32)
    return out


class NovaClient:
    """A bedrock-runtime client plus a small cache of vectors that one call returned for another signal."""

    def __init__(self, *, client: Any = None, region: str | None = None, model_id: str = NOVA_MODEL_ID) -> None:
        self.client = client
        self.region = region
        self.model_id = model_id
        self.calls = 0
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def _runtime(self):
        if self.client is None:
            boto3 = require("boto3", "search")
            from botocore.config import Config

            self.client = boto3.client(
                "bedrock-runtime",
                region_name=self.region,
                config=Config(retries={"max_attempts": 8, "mode": "adaptive"}, read_timeout=120),
            )
        return self.client

    def invoke(self, body: dict[str, Any]) -> dict[str, np.ndarray]:
        from botocore.exceptions import BotoCoreError, ClientError

        self.calls += 1
        try:
            resp = self._runtime().invoke_model(
                modelId=self.model_id, body=json.dumps(body), contentType="application/json", accept="application/json"
            )
            payload = json.loads(resp["body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise EmbeddingError(f"Bedrock invoke_model({self.model_id}) failed: {exc}") from exc
        except (ValueError, KeyError) as exc:
            raise EmbeddingError(f"Bedrock returned an unreadable body: {exc}") from exc
        return parse_response(payload)

    def remember(self, key: str, kind: str, vec: np.ndarray) -> None:
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[(key, kind)] = vec

    def recall(self, key: str, kind: str) -> np.ndarray | None:
        return self._cache.pop((key, kind), None)


def _segment_key(item: SegmentMedia) -> str:
    return hashlib.sha1(f"{item.path}|{item.start:.3f}|{item.end:.3f}".encode()).hexdigest()


class NovaEmbedder(Embedder):
    """One signal through Nova Multimodal Embeddings (`nova:` or `nova:<model-id>`).

    visual: the segment as an mp4 clip (VIDEO vector), or its keyframe when the clip cannot be cut;
    audio: the AUDIO vector of that same call when cached, else the segment's audio as mp3;
    transcription / metadata: the segment's text. Queries use the text tower with the signal's purpose.
    """

    def __init__(
        self,
        *,
        signal: str,
        model_id: str = NOVA_MODEL_ID,
        dimension: int = 1024,
        client: NovaClient | None = None,
        region: str | None = None,
        query_purpose: str | None = None,
    ) -> None:
        self.signal = signal
        self.model_id = model_id
        self.dimension = dimension
        self.client = client
        self.region = region
        self.query_purpose = query_purpose

    @property
    def name(self) -> str:
        return f"nova:{self.model_id}"

    @property
    def dim(self) -> int:
        if self.dimension not in NOVA_DIMENSIONS:
            raise ConfigError(f"Nova embeddingDimension must be one of {NOVA_DIMENSIONS}, got {self.dimension}")
        return self.dimension

    def _client(self) -> NovaClient:
        if self.client is None:
            self.client = NovaClient(region=self.region, model_id=self.model_id)
        return self.client

    def _one(self, body: dict[str, Any], prefer: str) -> dict[str, np.ndarray]:
        vecs = self._client().invoke(body)
        for v in vecs.values():
            if v.shape[0] != self.dim:
                raise EmbeddingError(f"Nova returned a {v.shape[0]}-d vector, expected {self.dim}")
        if prefer not in vecs and len(vecs) == 1:  # a single vector is the one asked for, whatever it is called
            vecs = {prefer: next(iter(vecs.values()))}
        return vecs

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        purpose = self.query_purpose or QUERY_PURPOSE.get(self.signal, "GENERIC_RETRIEVAL")
        rows = [self._one(text_request(str(t), purpose=purpose, dimension=self.dim), "TEXT")["TEXT"] for t in texts]
        return l2_normalise(np.stack(rows)) if rows else np.zeros((0, self.dim), dtype=np.float32)

    def embed_segments(self, items: Sequence[SegmentMedia]) -> list[np.ndarray | None]:
        return [self._segment(item) for item in items]

    def _segment(self, item: SegmentMedia) -> np.ndarray | None:
        if self.signal in ("transcription", "metadata"):
            text = item.text(self.signal).strip()
            if not text:
                return None
            body = text_request(text, purpose="GENERIC_INDEX", dimension=self.dim)
            return l2_normalise(self._one(body, "TEXT")["TEXT"])[0]
        if self.signal == "visual":
            return self._visual(item)
        if self.signal == "audio":
            return self._audio(item)
        raise ConfigError(f"Nova embedder has no rule for signal {self.signal!r}")

    def _visual(self, item: SegmentMedia) -> np.ndarray | None:
        from vidroute.ingest.media import cut_clip

        if not item.has_video:
            return None
        end = min(item.end, item.start + MAX_CLIP_SECONDS)
        try:
            clip = cut_clip(item.path, item.start, end, has_audio=item.has_audio)
        except IngestError as exc:
            log.warning("%s; embedding the keyframe instead", exc)
            clip = b""
        if clip:
            body = media_request("video", clip, "mp4", purpose="GENERIC_INDEX", dimension=self.dim)
            vecs = self._one(body, "VIDEO")
            if "AUDIO" in vecs:
                self._client().remember(_segment_key(item), "AUDIO", vecs["AUDIO"])
            vec = vecs.get("VIDEO", vecs.get("AUDIO_VIDEO_COMBINED"))
            return None if vec is None else l2_normalise(vec)[0]
        if item.keyframes:
            data = item.keyframes[len(item.keyframes) // 2].read_bytes()
            body = media_request("image", data, "jpeg", purpose="GENERIC_INDEX", dimension=self.dim)
            return l2_normalise(self._one(body, "IMAGE")["IMAGE"])[0]
        return None

    def _audio(self, item: SegmentMedia) -> np.ndarray | None:
        from vidroute.ingest.media import encode_mp3

        if not item.has_audio:
            return None
        cached = self._client().recall(_segment_key(item), "AUDIO")
        if cached is not None:
            return l2_normalise(cached)[0]
        end = min(item.end, item.start + MAX_CLIP_SECONDS)
        data = encode_mp3(item.path, item.start, end)
        body = media_request("audio", data, "mp3", purpose="GENERIC_INDEX", dimension=self.dim)
        return l2_normalise(self._one(body, "AUDIO")["AUDIO"])[0]
