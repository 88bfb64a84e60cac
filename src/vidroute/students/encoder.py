"""The MiniLM text encoder students share: query pre-processing, tokenising, mean pooling and an embedding cache."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vidroute.errors import ConfigError, ModelError, require

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
DEFAULT_MAX_LENGTH = 64
_SPACES = re.compile(r"\s+")


def preprocess(text: str) -> str:
    """Normalise a query the way the reference router does: drop `@` (entity markers) and `#`, squeeze spaces.

    Example:
        >>> preprocess("  @Messi scores   a #goal ")
        'Messi scores a goal'
    """
    return _SPACES.sub(" ", text.replace("@", " ").replace("#", " ")).strip()


def dedup_key(text: str) -> str:
    """Two queries with the same key are the same input to an uncased encoder."""
    return preprocess(text).lower()


def encoder_dir(path: str | Path | None = None) -> Path:
    """The encoder folder: a given path (or packaged name), else the packaged all-MiniLM-L6-v2."""
    from vidroute import models

    return models.minilm_dir() if path is None else models.resolve(str(path))


class TextTokenizer:
    """WordPiece tokeniser from a `tokenizer.json` (the `tokenizers` library: no transformers needed at serve time).

    Pads each batch to its longest sequence and truncates at `max_length`.
    """

    def __init__(self, path: str | Path, *, max_length: int = DEFAULT_MAX_LENGTH) -> None:
        self.path = Path(path)
        self.max_length = max_length
        tokenizers = require("tokenizers", "train")
        file = self.path / TOKENIZER_FILE if self.path.is_dir() else self.path
        if not file.exists():
            raise ModelError(f"no {TOKENIZER_FILE} at {self.path}; re-export the model or pass the encoder folder")
        try:
            tok = tokenizers.Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust side raises a plain Exception on a malformed file
            raise ModelError(f"cannot read tokenizer {file}: {exc}") from exc
        # The packaged file pads every input to 128; latency wants the shortest batch that fits.
        tok.no_padding()
        tok.enable_truncation(max_length=max_length)
        self._tok = tok
        self.pad_id = tok.token_to_id("[PAD]") or 0
        self.vocab_size = tok.get_vocab_size()
        self.file = file

    def ids(self, text: str) -> list[int]:
        """Token ids of one pre-processed text, with [CLS]/[SEP]."""
        return self._tok.encode(text).ids

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`(input_ids, attention_mask)` as int64 arrays of shape (n, longest)."""
        encs = self._tok.encode_batch(list(texts)) if len(texts) > 1 else [self._tok.encode(texts[0])]
        width = max(len(e.ids) for e in encs)
        ids = np.full((len(encs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encs), width), dtype=np.int64)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            mask[i, : len(e.ids)] = 1
        return ids, mask

    def save(self, out_dir: str | Path) -> Path:
        """Copy the tokenizer file into a model folder so the folder serves on its own."""
        dest = Path(out_dir) / TOKENIZER_FILE
        if self.file.resolve() != dest.resolve():
            shutil.copyfile(self.file, dest)
        return dest


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token states where `mask` is 1 (sentence-transformers' pooling for this model)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


def load_bert(path: str | Path | None = None, *, layers: int | None = None):
    """The transformer body (a `transformers` BertModel) in eval mode on CPU.

    Eager attention: for 10-token queries it is as fast as SDPA, and its ONNX graph is one onnxruntime can fuse.
    """
    transformers = require("transformers", "train")
    d = encoder_dir(path)
    transformers.utils.logging.disable_progress_bar()  # a bar per load clutters CLI output and test logs
    try:
        model = transformers.AutoModel.from_pretrained(str(d), local_files_only=True, attn_implementation="eager")
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the encoder from {d}: {exc}") from exc
    model.eval()
    if layers is not None:
        from vidroute.students.modeling import truncate_layers

        truncate_layers(model, layers)
    return model


def make_encoder(path: str | Path | None = None, *, layers: int | None = None, bert=None):
    """A torch module `(input_ids, attention_mask) -> L2-normalised sentence embedding` (MiniLM + mean pooling).

    Pass `bert` to wrap an already loaded transformer body instead of loading one from `path`.
    """
    torch = require("torch", "train")

    class Encoder(torch.nn.Module):
        def __init__(self, bert) -> None:
            super().__init__()
            self.bert = bert
            self.dim = int(bert.config.hidden_size)

        def forward(self, input_ids, attention_mask):
            # BERT wants token_type_ids; zeros are what single-sentence inputs use, so the graph builds them.
            out = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            )
            pooled = mean_pool(out.last_hidden_state, attention_mask)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    return Encoder(bert if bert is not None else load_bert(path, layers=layers))


def file_sha256(path: str | Path, *, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def encoder_fingerprint(path: str | Path | None = None) -> dict[str, Any]:
    """Identify the encoder weights (for model cards and cache keys) without hashing 90 MB on every call."""
    d = encoder_dir(path)
    weights = d / "model.safetensors"
    if not weights.exists():
        raise ModelError(f"{d} has no model.safetensors; is it a sentence-transformers/transformers folder?")
    st = weights.stat()
    return {"path": str(d), "weights_bytes": st.st_size, "weights_mtime": int(st.st_mtime), "name": d.parent.name}


def cache_dir() -> Path:
    """Where derived artefacts (embeddings, token tables) are cached; `VIDROUTE_CACHE` overrides."""
    root = os.environ.get("VIDROUTE_CACHE") or (Path.home() / ".cache" / "vidroute")
    d = Path(root)
    d.mkdir(parents=True, exist_ok=True)
    return d


class EmbeddingCache:
    """A per-encoder on-disk map text -> embedding (one .npy + key list), so repeated training skips the encoder."""

    def __init__(self, key: str, *, root: Path | None = None) -> None:
        self.key = key
        self.root = root
        self._dir = (root or cache_dir()) / "embeddings"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._vec_path = self._dir / f"{key}.npy"
        self._keys_path = self._dir / f"{key}.keys.txt"
        self._index: dict[str, int] = {}
        self._vecs: np.ndarray | None = None
        if self._vec_path.exists() and self._keys_path.exists():
            try:
                vecs = np.load(self._vec_path)
                keys = self._keys_path.read_text("utf-8").split("\n")[: len(vecs)]
                if len(keys) == len(vecs):
                    self._vecs, self._index = vecs, {k: i for i, k in enumerate(keys)}
            except (OSError, ValueError) as exc:  # a corrupt cache is rebuilt, never trusted
                log.warning("ignoring unreadable embedding cache %s: %s", self._vec_path, exc)

    @staticmethod
    def text_key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def get(self, texts: list[str]) -> tuple[np.ndarray | None, list[int]]:
        """Cached rows (None where missing) and the positions that still need encoding."""
        missing = [i for i, t in enumerate(texts) if self.text_key(t) not in self._index]
        if self._vecs is None or len(missing) == len(texts):
            return None, list(range(len(texts)))
        out = np.zeros((len(texts), self._vecs.shape[1]), dtype=np.float32)
        for i, t in enumerate(texts):
            j = self._index.get(self.text_key(t))
            if j is not None:
                out[i] = self._vecs[j]
        return out, missing

    def put(self, texts: list[str], vecs: np.ndarray) -> None:
        new = [(self.text_key(t), v) for t, v in zip(texts, vecs, strict=True) if self.text_key(t) not in self._index]
        if not new:
            return
        keys = [k for k, _ in new]
        block = np.stack([v for _, v in new]).astype(np.float32)
        base = 0 if self._vecs is None else len(self._vecs)
        self._vecs = block if self._vecs is None else np.concatenate([self._vecs, block])
        self._index.update({k: base + i for i, k in enumerate(keys)})
        ordered = sorted(self._index, key=self._index.__getitem__)
        tmp = self._vec_path.with_name(self._vec_path.stem + ".tmp.npy")
        np.save(tmp, self._vecs)
        os.replace(tmp, self._vec_path)
        tmp_keys = self._keys_path.with_suffix(".tmp")
        tmp_keys.write_text("\n".join(ordered), "utf-8")
        os.replace(tmp_keys, self._keys_path)


def embed_texts(
    texts: list[str],
    *,
    encoder=None,
    tokenizer: TextTokenizer | None = None,
    path: str | Path | None = None,
    batch_size: int = 64,
    max_length: int = DEFAULT_MAX_LENGTH,
    layers: int | None = None,
    cache: bool = True,
) -> np.ndarray:
    """Sentence embeddings (n, 384) of pre-processed texts with the frozen encoder; cached on disk by default."""
    torch = require("torch", "train")
    if not texts:
        raise ConfigError("embed_texts got no texts")
    store = None
    if cache:
        fp = encoder_fingerprint(path)
        key = hashlib.sha256(f"{fp}|{max_length}|{layers}".encode()).hexdigest()[:20]
        store = EmbeddingCache(key)
        have, missing = store.get(texts)
        if not missing:
            return have  # type: ignore[return-value]
    else:
        have, missing = None, list(range(len(texts)))
    encoder = encoder if encoder is not None else make_encoder(path, layers=layers)
    tokenizer = tokenizer if tokenizer is not None else TextTokenizer(encoder_dir(path), max_length=max_length)
    todo = [texts[i] for i in missing]
    # Sorting by length keeps padding (wasted compute) small.
    order = sorted(range(len(todo)), key=lambda i: len(todo[i]))
    vecs = np.zeros((len(todo), encoder.dim), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            ids, mask = tokenizer([todo[i] for i in idx])
            vecs[idx] = encoder(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    if store is not None:
        store.put(todo, vecs)
    if have is None:
        return vecs
    have[missing] = vecs
    return have
