"""BM25 for the backends without a native full-text index: a tokenizer, exact BM25, and BM25 as sparse vectors.

The memory store scores with `BM25Index` (exact Okapi BM25, k1=1.2, b=0.75). Qdrant gets BM25 as sparse vectors: a
document's value for a term is the saturated term frequency tf·(k1+1) / (tf + k1·(1-b+b·|d|/avgdl)) and the
collection applies IDF server-side (`Modifier.IDF`), so the inner product with a query's 0/1 term vector is BM25.
`avgdl` is a fixed constant there (documents arrive one video at a time), as in Qdrant's own BM25.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable

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
