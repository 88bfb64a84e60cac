"""BM25 for the backends without a native full-text index: a tokenizer, exact BM25, and BM25 as sparse vectors.

`SparseBM25` is the LanceDB store's in-memory BM25 for the tables it scans in memory: the whole collection as one
sparse matrix, analysed like LanceDB's default English full-text index, so a query costs ~1 ms instead of a trip
through LanceDB's query engine (~15 ms of CPU per query under concurrent load at 100k rows).

The memory store scores with `BM25Index` (exact Okapi BM25, k1=1.2, b=0.75). Qdrant gets BM25 as sparse vectors: a
document's value for a term is the saturated term frequency tf·(k1+1) / (tf + k1·(1-b+b·|d|/avgdl)) and the
collection applies IDF server-side (`Modifier.IDF`), so the inner product with a query's 0/1 term vector is BM25.
`avgdl` is a fixed constant there (documents arrive one video at a time), as in Qdrant's own BM25.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

K1 = 1.2
B = 0.75
AVGDL = 40.0  # typical length of one segment's text in tokens

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = """a an and are as at be but by for from has have he her his i if in into is it its me my of on or our she so
that the their them then there these they this to was we were what when which who will with you your"""
STOP_WORDS = frozenset(_STOP.split())


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without English stop words (apostrophes split words: "don't" → "don", "t")."""
    return [t for t in _TOKEN.findall(text.casefold()) if t not in STOP_WORDS]


def term_id(token: str) -> int:
    """A stable 31-bit id per token for sparse vectors (crc32; collisions only merge two rare terms)."""
    return zlib.crc32(token.encode("utf-8")) & 0x7FFFFFFF


def doc_sparse(text: str, *, avgdl: float = AVGDL) -> tuple[list[int], list[float]]:
    """Sparse BM25 document vector (term ids, saturated tf); IDF is applied by the store at query time."""
    tokens = tokenize(text)
    tf: Counter[int] = Counter(term_id(t) for t in tokens)
    norm = K1 * (1 - B + B * len(tokens) / avgdl)
    ids = sorted(tf)
    return ids, [tf[i] * (K1 + 1) / (tf[i] + norm) for i in ids]


def query_sparse(text: str) -> tuple[list[int], list[float]]:
    """Sparse query vector: 1 per distinct term."""
    ids = sorted({term_id(t) for t in tokenize(text)})
    return ids, [1.0] * len(ids)


class BM25Index:
    """Exact Okapi BM25 over an in-memory list of documents (rebuilt statistics on every change)."""

    def __init__(self) -> None:
        self._docs: list[Counter[str]] = []
        self._lens: list[int] = []
        self._df: Counter[str] = Counter()

    def reset(self, texts: Iterable[str]) -> None:
        self._docs, self._lens, self._df = [], [], Counter()
        for text in texts:
            toks = tokenize(text)
            c = Counter(toks)
            self._docs.append(c)
            self._lens.append(len(toks))
            self._df.update(c.keys())

    def scores(self, query: str) -> list[float]:
        n = len(self._docs)
        if n == 0:
            return []
        terms = set(tokenize(query))
        avgdl = (sum(self._lens) / n) or 1.0
        out = [0.0] * n
        for t in terms:
            df = self._df.get(t, 0)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            for i, doc in enumerate(self._docs):
                tf = doc.get(t, 0)
                if tf:
                    out[i] += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * self._lens[i] / avgdl))
        return out


# tantivy's English stop words, the list LanceDB's FTS removes (remove_stop_words=True, language English).
LANCE_STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
_LANCE_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_MAX_TOKEN = 40  # LanceDB drops longer tokens


class LanceAnalyzer:
    """Lower case, ASCII folding, split on non-alphanumerics, drop tokens over 40 chars and English stop words,
    Snowball English stemming: LanceDB's default full-text analysis, so both BM25s match the same words."""

    def __init__(self) -> None:
        from vidroute.errors import require

        self._stemmer = require("snowballstemmer", "search").stemmer("english")
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        folded = unicodedata.normalize("NFKD", text.casefold()).encode("ascii", "ignore").decode("ascii")
        out = []
        for tok in _LANCE_TOKEN.findall(folded):
            if len(tok) > _MAX_TOKEN or tok in LANCE_STOP_WORDS:
                continue
            stem = self._cache.get(tok)
            if stem is None:
                stem = self._cache[tok] = self._stemmer.stemWord(tok)
            out.append(stem)
        return out


class SparseBM25:
    """Okapi BM25 (k1, b) over a fixed collection as one (documents × terms) sparse matrix of per-term scores.

    Example:
        >>> bm = SparseBM25(["a dog barks", "cats sleeping", "dogs barking loudly"])
        >>> bm.top("barking dog", 2)[0].tolist()
        [0, 2]
    """

    def __init__(self, texts: Sequence[str], *, k1: float = K1, b: float = B) -> None:
        from scipy import sparse

        analyze = LanceAnalyzer()
        self._analyze = analyze
        vocab: dict[str, int] = {}
        indptr, indices, tfs, lengths = [0], [], [], []
        for text in texts:
            counts = Counter(vocab.setdefault(t, len(vocab)) for t in analyze(text or ""))
            indices.extend(counts.keys())
            tfs.extend(counts.values())
            indptr.append(len(indices))
            lengths.append(sum(counts.values()))
        n = len(lengths)
        tf = np.asarray(tfs, dtype=np.float32)
        dl = np.repeat(np.asarray(lengths, dtype=np.float32), np.diff(indptr))
        avgdl = float(np.mean(lengths)) if n and np.mean(lengths) > 0 else 1.0
        df = np.bincount(np.asarray(indices, dtype=np.int64), minlength=len(vocab)).astype(np.float64)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        cols = np.asarray(indices, dtype=np.int64)
        weights = idf[cols] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)) if len(cols) else tf
        matrix = sparse.csr_matrix((weights, cols, np.asarray(indptr)), shape=(n, max(len(vocab), 1)))
        self._columns = matrix.tocsc()  # a query reads a few whole columns
        self.vocab = vocab
        self.size = n

    def scores(self, query: str) -> np.ndarray:
        """BM25 of every document for `query` (each distinct query term counted once, as LanceDB does)."""
        cols = sorted({self.vocab[t] for t in self._analyze(query) if t in self.vocab})
        if not cols:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._columns[:, cols].sum(axis=1), dtype=np.float32).ravel()

    def top(self, query: str, k: int, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores) of the k best matching documents (score > 0), best first; `allowed` masks rows."""
        s = self.scores(query)
        if allowed is not None:
            s = np.where(allowed, s, 0.0)
        hit = np.flatnonzero(s > 0)
        if hit.size > k:
            hit = hit[np.argpartition(-s[hit], k - 1)[:k]]
        order = hit[np.lexsort((hit, -s[hit]))]
        return order, s[order]
