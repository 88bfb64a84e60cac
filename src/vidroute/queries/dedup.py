"""Duplicate detection for queries: normalised exact keys, a looser word key, and greedy embedding near-duplicates.

Three levels, cheapest first:

1. ``normalize``: casefold, NFKC, punctuation to spaces, collapsed whitespace ("A dog barking!" == "a dog barking").
2. ``loose_key``: ``normalize`` minus function words that rarely change what a query asks for ("a dog is barking"
   == "dog barking"). Word order is kept, so "dog bites man" != "man bites dog".
3. ``NearDupIndex``: MiniLM sentence embeddings (of the normalised text); a query whose cosine with any already
   kept query is at least ``threshold`` is dropped (greedy keep-first, blockwise matrix products, no all-pairs
   matrix in memory).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidroute.errors import ConfigError, require

log = logging.getLogger(__name__)

# Measured on hand-written pairs (tests/queries/pairs.py), MiniLM on normalised text: at 0.92 no pair of distinct
# queries is removed (highest 0.909) and 21 of 25 near-duplicate pairs are; the rest (0.85-0.92) are caught by
# the exact/loose keys or kept but linked so they share a split (see generate.DEFAULT_LINK_THRESHOLD).
DEFAULT_THRESHOLD = 0.92
# Words dropped by `loose_key`: articles, forms of "be", and fillers. Pronouns and negations stay: they change meaning.
STOPWORDS = frozenset(["a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "am", "of", "um", "uh"])
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalize(text: str) -> str:
    """Canonical form for exact de-duplication and for split hashing."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", text).replace("_", " ").split())


def loose_key(text: str) -> str:
    """`normalize` without articles, forms of "be" and fillers: catches "a dog is barking" vs "dog barking"."""
    words = [w for w in normalize(text).split() if w not in STOPWORDS]
    return " ".join(words) if words else normalize(text)


class Embedder:
    """Sentence embeddings from the packaged all-MiniLM-L6-v2 (or any sentence-transformers folder).

    Unit-normalised float32 rows, so a dot product is a cosine. The model loads on first use. (An onnxruntime
    export of the same network was measured at the same speed on 2 shared cores, so PyTorch it is.)
    """

    def __init__(
        self, model: str | None = None, *, batch_size: int = 256, threads: int | None = 2, max_length: int = 64
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.threads = threads
        self.max_length = max_length
        self._st: Any = None

    def _load(self) -> Any:
        if self._st is None:
            torch = require("torch", "train")
            st = require("sentence_transformers", "train")
            from vidroute.models import minilm_dir, resolve

            if self.threads:
                torch.set_num_threads(self.threads)
            path = resolve(self.model) if self.model else minilm_dir()
            try:
                self._st = st.SentenceTransformer(str(path), device="cpu")
            except Exception as exc:  # a corrupt or foreign folder: say which one
                raise ConfigError(f"cannot load a sentence-transformers model from {path}: {exc}") from exc
            # Queries are short; a cap bounds the cost of the rare long one (its first 64 tokens decide anyway).
            self._st.max_seq_length = self.max_length
        return self._st

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        emb = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(emb, dtype=np.float32)


@dataclass
class BatchResult:
    """What `NearDupIndex.add` decided for each row of a batch."""

    kept: np.ndarray  # bool per row
    near: np.ndarray  # bool per row: rejected as a near-duplicate
    match: np.ndarray  # int per row: index (in the index) of the most similar kept query, -1 if none
    links: list[tuple[int, int]] = field(default_factory=list)  # (new index, old index) with link <= cos < threshold


class NearDupIndex:
    """Kept embeddings plus the greedy keep-first rule; grows as batches are added.

    ``link_threshold`` (optional, below ``threshold``) records pairs that are similar but kept, so callers can keep
    them on the same side of a train/test split.
    """

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, *, link_threshold: float | None = None, block: int = 512):
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
        if link_threshold is not None and not 0.0 < link_threshold <= threshold:
            raise ConfigError(f"link threshold must be in (0, {threshold}], got {link_threshold}")
        self.threshold = threshold
        self.link_threshold = link_threshold
        self.block = block
        self._emb = np.zeros((0, 0), dtype=np.float32)
        self.size = 0

    def _append(self, row: np.ndarray) -> int:
        if self._emb.shape[1] != row.shape[0]:
            if self.size:
                raise ConfigError(f"embedding width changed from {self._emb.shape[1]} to {row.shape[0]}")
            self._emb = np.zeros((1024, row.shape[0]), dtype=np.float32)
        if self.size == self._emb.shape[0]:
            grown = np.zeros((self._emb.shape[0] * 2, self._emb.shape[1]), dtype=np.float32)
            grown[: self.size] = self._emb[: self.size]
            self._emb = grown
        self._emb[self.size] = row
        self.size += 1
        return self.size - 1

    @property
    def embeddings(self) -> np.ndarray:
        return self._emb[: self.size]

    def add(self, emb: np.ndarray, allow: Callable[[int], bool] | None = None) -> BatchResult:
        """Greedily keep each row whose cosine with every kept row is below the threshold.

        ``allow(i)`` is asked only for rows that are not near-duplicates; returning False skips the row without
        counting it as a duplicate (used for per-intent quotas). Kept rows get consecutive indices in the index.
        """
        n = len(emb)
        kept = np.zeros(n, dtype=bool)
        near = np.zeros(n, dtype=bool)
        match = np.full(n, -1, dtype=np.int64)
        links: list[tuple[int, int]] = []
        lt = self.link_threshold
        for start in range(0, n, self.block):
            blk = emb[start : start + self.block]
            base = self.size  # rows kept before this block
            prior = blk @ self.embeddings.T if base else np.zeros((len(blk), 0), dtype=np.float32)
            inner = blk @ blk.T
            accepted: list[int] = []  # block-local positions kept so far
            for j in range(len(blk)):
                i = start + j
                best, best_idx = -1.0, -1
                if base:
                    k = int(prior[j].argmax())
                    best, best_idx = float(prior[j, k]), k
                if accepted:
                    sims = inner[j, accepted]
                    k = int(sims.argmax())
                    if sims[k] > best:
                        best, best_idx = float(sims[k]), base + k
                match[i] = best_idx
                if best >= self.threshold:
                    near[i] = True
                    continue
                if allow is not None and not allow(i):
                    continue
                new_idx = self._append(blk[j])
                kept[i] = True
                if lt is not None and best >= lt:
                    for old in np.flatnonzero(prior[j] >= lt) if base else ():
                        links.append((new_idx, int(old)))
                    for pos, a in enumerate(accepted):
                        if inner[j, a] >= lt:
                            links.append((new_idx, base + pos))
                accepted.append(j)
        return BatchResult(kept=kept, near=near, match=match, links=links)


def near_duplicate_mask(emb: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """True for rows to keep under greedy keep-first near-duplicate removal (a convenience over NearDupIndex)."""
    return NearDupIndex(threshold).add(np.asarray(emb, dtype=np.float32)).kept


def dedup_texts(
    texts: Sequence[str], *, embedder: Embedder | None = None, threshold: float = DEFAULT_THRESHOLD
) -> tuple[list[int], dict[str, int]]:
    """Indices of the texts to keep (first occurrence wins) and how many each rule removed.

    Exact (normalised) and loose-key duplicates are removed first; with an `embedder`, near-duplicates too.
    """
    seen_norm: set[str] = set()
    seen_loose: set[str] = set()
    survivors: list[int] = []
    stats = {"exact_removed": 0, "loose_removed": 0, "near_removed": 0}
    for i, t in enumerate(texts):
        n, lk = normalize(t), loose_key(t)
        if n in seen_norm:
            stats["exact_removed"] += 1
            continue
        if lk in seen_loose:
            stats["loose_removed"] += 1
            continue
        seen_norm.add(n)
        seen_loose.add(lk)
        survivors.append(i)
    if embedder is None or not survivors:
        return survivors, stats
    res = NearDupIndex(threshold).add(embedder([normalize(texts[i]) for i in survivors]))
    stats["near_removed"] = int(res.near.sum())
    return [i for i, k in zip(survivors, res.kept, strict=True) if k], stats
