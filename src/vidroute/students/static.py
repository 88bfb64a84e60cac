"""Static-embedding student: one vector per vocabulary token (distilled from MiniLM), weighted mean, MLP head.

Serving is pure numpy (tokenise, gather, weighted mean, two small matmuls): tens of microseconds per query.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from vidroute.errors import ModelError, require
from vidroute.students.encoder import TextTokenizer, cache_dir, encoder_fingerprint, load_bert

log = logging.getLogger(__name__)

STATIC_FILE = "static.npz"
_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))


def build_token_table(
    path: str | Path | None = None,
    *,
    init: str = "contextual",
    layers: int | None = None,
    batch_size: int = 512,
    cache: bool = True,
) -> np.ndarray:
    """(vocab, dim) token vectors. "contextual": the encoder's output for `[CLS] token [SEP]` at the token's
    position (one pass over the whole vocabulary, cached on disk); "input": the encoder's input word embeddings."""
    key = hashlib.sha256(f"{encoder_fingerprint(path)}|{init}|{layers}".encode()).hexdigest()[:20]
    file = cache_dir() / "static" / f"tokens-{key}.npy"
    if cache and file.exists():
        try:
            return np.load(file)
        except (OSError, ValueError) as exc:
            log.warning("rebuilding unreadable token table cache %s: %s", file, exc)
    bert = load_bert(path, layers=layers)
    if init == "input":
        table = bert.embeddings.word_embeddings.weight.detach().numpy().astype(np.float32)
    else:
        vocab = bert.config.vocab_size
        table = np.zeros((vocab, bert.config.hidden_size), dtype=np.float32)
        for s in range(0, vocab, batch_size):
            ids = np.arange(s, min(vocab, s + batch_size))
            table[ids] = contextual_token_vectors(bert, ids)
    if cache:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(file.stem + ".tmp.npy")
        np.save(tmp, table)
        os.replace(tmp, file)
    return table


def contextual_token_vectors(bert, ids: np.ndarray) -> np.ndarray:
    """The encoder's output at each token when it is the whole input (`[CLS] token [SEP]`), shape (len(ids), dim)."""
    torch = require("torch", "train")
    cls_id, sep_id = 101, 102  # fixed in BERT's uncased WordPiece vocabulary
    t = torch.as_tensor(np.asarray(ids), dtype=torch.long)
    inp = torch.stack([torch.full_like(t, cls_id), t, torch.full_like(t, sep_id)], dim=1)
    with torch.inference_mode():
        out = bert(input_ids=inp, attention_mask=torch.ones_like(inp), token_type_ids=torch.zeros_like(inp))
    return out.last_hidden_state[:, 1].numpy().astype(np.float32)


def sif_weights(token_lists: list[list[int]], vocab_size: int, a: float) -> np.ndarray:
    """Smooth-inverse-frequency token weights a / (a + p(token)) from the training queries; unseen tokens get 1.

    Why: a plain mean lets "a", "the", "of" drown the words that decide routing; a<=0 disables it (all ones)."""
    w = np.ones(vocab_size, dtype=np.float32)
    if a <= 0:
        return w
    counts = Counter(t for ids in token_lists for t in ids)
    total = sum(counts.values()) or 1
    for t, c in counts.items():
        w[t] = a / (a + c / total)
    return w


def _strip_special(ids: list[int], n_special_end: int = 1) -> list[int]:
    inner = ids[1:-n_special_end] if len(ids) > 2 else ids
    return inner or ids


def pooled_features(token_lists: list[list[int]], table: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of token vectors per query, L2-normalised: the static student's sentence vector."""
    if len(token_lists) == 1:  # the single-query serving path: skip the flattening
        ids = token_lists[0]
        w = weights[ids]
        v = (w @ table[ids])[None, :]
    else:  # one gather and one segmented sum for the whole batch
        lengths = np.array([len(t) for t in token_lists])
        flat = np.fromiter((t for lst in token_lists for t in lst), dtype=np.int64, count=int(lengths.sum()))
        w = weights[flat]
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        v = np.add.reduceat(w[:, None] * table[flat], starts, axis=0)
    norm = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(norm, 1e-9)).astype(np.float32)


class StaticStudent:
    """The numpy serving form: token table (float16 on disk), token weights and a 2-layer head.

    Inputs are pre-processed texts; `predict_proba` returns (n, k) weights.
    """

    def __init__(self, *, table: np.ndarray, token_weights: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]]):
        self.table = table
        self.token_weights = token_weights
        self.layers = layers

    @classmethod
    def from_torch_head(cls, table: np.ndarray, token_weights: np.ndarray, head) -> StaticStudent:
        """Read the Linear layers of a `make_head(..., gelu="tanh")` head (GELU between them)."""
        nn = require("torch", "train").nn
        linears = [m for m in head if isinstance(m, nn.Linear)]
        layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears]
        return cls(table=table.astype(np.float32), token_weights=token_weights.astype(np.float32), layers=layers)

    def features(self, token_lists: list[list[int]]) -> np.ndarray:
        return pooled_features(token_lists, self.table, self.token_weights)

    def logits(self, x: np.ndarray) -> np.ndarray:
        h = x
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:  # tanh-approximated GELU, as in training
                h = 0.5 * h * (1.0 + np.tanh(_SQRT_2_OVER_PI * (h + 0.044715 * h**3)))
        return h

    def proba_from_ids(self, token_lists: list[list[int]]) -> np.ndarray:
        z = self.logits(self.features(token_lists))
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    def predict_proba(self, texts: list[str], tokenizer: TextTokenizer) -> np.ndarray:
        return self.proba_from_ids([_strip_special(tokenizer.ids(t)) for t in texts])

    def save(self, model_dir: str | Path) -> Path:
        path = Path(model_dir) / STATIC_FILE
        arrays: dict[str, Any] = {"table": self.table.astype(np.float16), "token_weights": self.token_weights}
        for i, (w, b) in enumerate(self.layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = w, b
        np.savez(path, **arrays)
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> StaticStudent:
        path = Path(model_dir) / STATIC_FILE
        try:
            with np.load(path) as z:
                n = sum(1 for k in z.files if k.startswith("w") and k[1:].isdigit())
                layers = [(z[f"w{i}"].astype(np.float32), z[f"b{i}"].astype(np.float32)) for i in range(n)]
                return cls(table=z["table"].astype(np.float32), token_weights=z["token_weights"], layers=layers)
        except FileNotFoundError as exc:
            raise ModelError(f"{model_dir} has no {STATIC_FILE}; is it a static student?") from exc
        except (KeyError, ValueError, OSError) as exc:
            raise ModelError(f"{path} is not a valid static student file: {exc}") from exc


def make_static_net(table: np.ndarray, token_weights: np.ndarray, head, *, train_table: bool):
    """Torch twin of StaticStudent for end-to-end tuning: `forward(ids, offsets)` over flattened token ids."""
    torch = require("torch", "train")

    class StaticNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.EmbeddingBag.from_pretrained(torch.as_tensor(table), freeze=not train_table, mode="sum")
            self.register_buffer("tw", torch.as_tensor(token_weights))
            self.head = head

        def forward(self, ids, offsets):
            w = self.tw[ids]
            summed = self.emb(ids, offsets, per_sample_weights=w)
            wsum = torch.zeros(len(offsets)).index_add_(0, _bag_index(offsets, len(ids)), w).clamp(min=1e-9)
            v = summed / wsum[:, None]
            return self.head(torch.nn.functional.normalize(v, p=2, dim=1))

    def _bag_index(offsets, n):
        idx = torch.zeros(n, dtype=torch.long)
        if len(offsets) > 1:
            idx[offsets[1:]] = 1
        return idx.cumsum(0)

    return StaticNet()


def flatten(token_lists: list[list[int]]):
    torch = require("torch", "train")
    ids = torch.as_tensor([t for lst in token_lists for t in lst], dtype=torch.long)
    offsets = torch.as_tensor(np.cumsum([0] + [len(lst) for lst in token_lists[:-1]]), dtype=torch.long)
    return ids, offsets


def strip_special(ids: list[int]) -> list[int]:
    """Drop [CLS]/[SEP]: they carry no query content (kept only if nothing else is left)."""
    return _strip_special(ids)
