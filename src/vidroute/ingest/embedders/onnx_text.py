"""Export a sentence-transformers MiniLM folder to a cached, parity-checked ONNX graph and embed texts with it.

A query through sentence-transformers' torch MiniLM costs ~40 ms of one CPU thread, mostly Python/torch
dispatch; the same fp32 graph, fused by onnxruntime's transformer optimiser, costs a few ms. The graph is exported
once per (weights sha256, export settings) into `cache_dir()/onnx/<key>/encoder.onnx`, written atomically with a
sha256 sidecar, so a racing or killed export never leaves a file that is trusted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vidroute.errors import ModelError, require
from vidroute.ingest.embedders.base import l2_normalise

log = logging.getLogger(__name__)

ONNX_NAME = "encoder.onnx"
HASH_SUFFIX = ".sha256"
OPSET = 17
PARITY_MIN_COSINE = 0.9999
# Bump when the exported graph changes meaning (inputs, outputs, pooling), so old cache entries are not reused.
EXPORT_FORMAT = 1
SUPPORTED_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)

_PARITY_TEXTS = [
    "x",
    "dog barking",
    "a red car drifting around a corner at night",
    "the speech where she says we choose to go to the moon because it is hard " * 3,
]
_export_lock = threading.Lock()


def st_max_seq_length(model_dir: Path) -> int:
    """The truncation length sentence-transformers uses for this folder (its `sentence_bert_config.json`)."""
    cfg = model_dir / "sentence_bert_config.json"
    try:
        return int(json.loads(cfg.read_text("utf-8")).get("max_seq_length", 256)) if cfg.exists() else 256
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot read {cfg}: {exc}") from exc


def _check_mean_pooling(model_dir: Path) -> None:
    """The graph is MiniLM + mean pooling + L2 norm; refuse folders whose sentence-transformers pipeline differs."""
    modules_file = model_dir / "modules.json"
    if not modules_file.exists():
        return  # a bare transformers folder: sentence-transformers also defaults to mean pooling
    try:
        modules = json.loads(modules_file.read_text("utf-8"))
        types = [m["type"] for m in modules]
        pooling = [m for m in modules if m["type"].endswith(".Pooling")]
        pool_cfg = json.loads((model_dir / pooling[0]["path"] / "config.json").read_text("utf-8")) if pooling else {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot read the sentence-transformers pipeline of {model_dir}: {exc}") from exc
    other = [t for t in types if t not in SUPPORTED_MODULES]
    modes = {k for k, v in pool_cfg.items() if k.startswith("pooling_mode") and v}
    if other or modes - {"pooling_mode_mean_tokens"}:
        raise ModelError(
            f"{model_dir} uses modules {types} with pooling {sorted(modes)}; the ONNX path supports only "
            "Transformer + mean Pooling (+ Normalize); use backend='torch'"
        )


@functools.lru_cache(maxsize=8)
def _weights_sha256(path: str, size: int, mtime_ns: int) -> str:
    from vidroute.students.encoder import file_sha256

    return file_sha256(path)


def export_key(model_dir: Path) -> str:
    """Cache key: sha256 of the weights file plus every setting that changes the exported graph."""
    weights = model_dir / "model.safetensors"
    if not weights.exists():
        raise ModelError(f"{model_dir} has no model.safetensors; is it a sentence-transformers folder?")
    ort = require("onnxruntime", "search")
    st = weights.stat()
    digest = _weights_sha256(str(weights), st.st_size, st.st_mtime_ns)
    # The optimiser emits com.microsoft fused ops; a graph from another onnxruntime minor may not load or may differ.
    ort_minor = ".".join(ort.__version__.split(".")[:2])
    settings = f"format={EXPORT_FORMAT}|fp32|opset={OPSET}|optimised|ort={ort_minor}"
    return hashlib.sha256(f"{digest}|{settings}".encode()).hexdigest()[:32]


def _verify(path: Path) -> bool:
    """True when `path` and its sha256 sidecar agree (a truncated, edited or half-renamed pair is not trusted)."""
    from vidroute.students.encoder import file_sha256

    side = path.with_name(path.name + HASH_SUFFIX)
    if not (path.exists() and side.exists()):
        return False
    try:
        return side.read_text("utf-8").strip() == file_sha256(path)
    except OSError:
        return False


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def _export(model_dir: Path, dest: Path, tokenizer) -> None:
    """Export, optimise and parity-check into a temp folder next to `dest`, then rename into place."""
    torch = require("torch", "search")
    require("onnx", "search")
    from vidroute.students.encoder import file_sha256, make_encoder
    from vidroute.students.onnx_export import _optimise, export_text_graph, ort_session, run_session

    encoder = make_encoder(model_dir)
    encoder.eval()
    dest.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".export-") as tmp:
        tmp_path = Path(tmp) / ONNX_NAME
        ids, mask = tokenizer(_PARITY_TEXTS[1:3])
        export_text_graph(encoder, ids, mask, tmp_path, output="embedding", opset=OPSET, name=str(model_dir))
        cfg = encoder.bert.config
        _optimise(tmp_path, int(cfg.hidden_size), int(cfg.num_attention_heads))

        # Single texts and a padded batch, short and truncated, so dynamic axes and the mask are exercised.
        ids, mask = tokenizer(_PARITY_TEXTS)
        with torch.no_grad():
            ref = encoder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        session = ort_session(tmp_path)
        got = np.concatenate(
            [run_session(session, tokenizer, _PARITY_TEXTS, batch_size=4)]
            + [run_session(session, tokenizer, [t]) for t in _PARITY_TEXTS]
        )
        cos = float(_cosines(got, np.concatenate([ref, ref])).min())
        if not cos >= PARITY_MIN_COSINE:  # also catches NaN
            raise ModelError(
                f"ONNX export of {model_dir} disagrees with torch (min cosine {cos:.6f} < {PARITY_MIN_COSINE}); "
                "not caching it; use backend='torch'"
            )
        side = tmp_path.with_name(ONNX_NAME + HASH_SUFFIX)
        side.write_text(file_sha256(tmp_path), "utf-8")
        # Model first, sidecar last: a reader that sees a model without its matching sidecar rebuilds.
        os.replace(tmp_path, dest)
        os.replace(side, dest.with_name(dest.name + HASH_SUFFIX))
    log.info("exported %s to %s in %.1fs (min cosine vs torch %.6f)", model_dir, dest, time.perf_counter() - t0, cos)


class OnnxTextEncoder:
    """Sentence embeddings from a cached ONNX export of a MiniLM sentence-transformers folder.

    Args:
        model_dir: a sentence-transformers folder (Transformer + mean Pooling + Normalize), e.g. `models.minilm_dir()`.
        threads: onnxruntime intra-op threads (1 is fastest per short query and leaves cores to other requests).
        batch_size: texts per run; texts are sorted by length so a batch pads little.

    Attributes:
        path: the ONNX file in use; `exported`: True when this construction (re-)built it.

    Example:
        >>> enc = OnnxTextEncoder(models.minilm_dir())
        >>> enc.embed(["a dog barking at the mailman"]).shape
        (1, 384)
    """

    def __init__(self, model_dir: str | Path, *, threads: int = 1, batch_size: int = 32) -> None:
        from vidroute.students.encoder import TextTokenizer, cache_dir
        from vidroute.students.onnx_export import ort_session

        self.model_dir = Path(model_dir)
        self.threads = threads
        self.batch_size = batch_size
        _check_mean_pooling(self.model_dir)
        self.tokenizer = TextTokenizer(self.model_dir, max_length=st_max_seq_length(self.model_dir))
        self.path = cache_dir() / "onnx" / export_key(self.model_dir) / ONNX_NAME
        self.exported = False
        with _export_lock:  # threads of one process export once; other processes are safe through the renames
            if not _verify(self.path):
                if self.path.exists():
                    log.warning("cached ONNX encoder %s fails its checksum; rebuilding it", self.path)
                _export(self.model_dir, self.path, self.tokenizer)
                self.exported = True
        try:
            self._session = ort_session(self.path, threads=threads)
        except ModelError:
            if self.exported:
                raise
            # Passed the checksum yet does not load (e.g. an onnxruntime upgrade within the same minor): rebuild once.
            log.warning("cached ONNX encoder %s does not load; rebuilding it", self.path)
            with _export_lock:
                _export(self.model_dir, self.path, self.tokenizer)
            self.exported = True
            self._session = ort_session(self.path, threads=threads)
        last = self._session.get_outputs()[0].shape[-1]
        self.dim = last if isinstance(last, int) else int(self.embed(["dimension probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 embeddings, shape (len(texts), dim); (0, dim) for no texts."""
        from vidroute.students.onnx_export import run_session

        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = run_session(self._session, self.tokenizer, texts, batch_size=self.batch_size)
        return l2_normalise(vecs)


@functools.lru_cache(maxsize=4)
def shared_onnx_encoder(model_dir: str, threads: int = 1) -> OnnxTextEncoder:
    """One encoder per folder and thread count per process (the four text signals share one MiniLM session)."""
    return OnnxTextEncoder(model_dir, threads=threads)
