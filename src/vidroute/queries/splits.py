"""Leak-free train/val/test assignment: a split is a hash of normalised text, shared by a whole similarity group.

Hashing (not shuffling) means a query text always lands in the same split, whatever the seed, the other queries,
or the run: datasets generated separately can be merged without leaking. Queries linked as similar (near-duplicate
pairs below the removal threshold, paraphrases and their sources) are grouped with union-find, and the group's
split is the hash of its smallest normalised text, so no linked pair straddles two splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from vidroute.errors import ConfigError
from vidroute.queries.dedup import normalize
from vidroute.records import SPLITS

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def parse_fractions(value: str | Sequence[float]) -> tuple[float, float, float]:
    """``"0.8,0.1,0.1"``, ``"80/10/10"`` or a 3-sequence -> fractions summing to 1 (train, val, test)."""
    if isinstance(value, str):
        parts = [p for p in value.replace("/", ",").split(",") if p.strip()]
        try:
            nums = [float(p) for p in parts]
        except ValueError as exc:
            raise ConfigError(f"splits {value!r}: expected three numbers like 0.8,0.1,0.1 or 80/10/10") from exc
    else:
        nums = [float(x) for x in value]
    if len(nums) != 3:
        raise ConfigError(f"splits {value!r}: expected three numbers (train, val, test), got {len(nums)}")
    if any(x < 0 for x in nums) or sum(nums) <= 0:
        raise ConfigError(f"splits {value!r}: numbers must be non-negative and not all zero")
    total = sum(nums)
    a, b, c = (x / total for x in nums)
    return a, b, c


def unit_hash(text: str) -> float:
    """A stable number in [0, 1) from the normalised text (sha256, so it is the same on every machine)."""
    digest = hashlib.sha256(normalize(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_for(text: str, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    u = unit_hash(text)
    edge = 0.0
    for name, frac in zip(SPLITS, fractions, strict=True):
        edge += frac
        if u < edge:
            return name
    return SPLITS[-1]


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def assign_splits(
    texts: Sequence[str],
    links: Iterable[tuple[int, int]] = (),
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> tuple[list[str], dict[str, int]]:
    """Split name per text; linked texts (and identical normalised texts) always share a split.

    Returns the splits and group statistics (``groups``, ``largest_group``, ``linked_queries``).
    """
    uf = UnionFind(len(texts))
    norms = [normalize(t) for t in texts]
    first: dict[str, int] = {}
    for i, n in enumerate(norms):
        if n in first:
            uf.union(i, first[n])
        else:
            first[n] = i
    for a, b in links:
        uf.union(a, b)
    rep: dict[int, str] = {}
    size: dict[int, int] = {}
    for i, n in enumerate(norms):
        r = uf.find(i)
        size[r] = size.get(r, 0) + 1
        # The group's key is its smallest normalised text: independent of generation order.
        if r not in rep or n < rep[r]:
            rep[r] = n
    split_of_root = {r: split_for(key, fractions) for r, key in rep.items()}
    out = [split_of_root[uf.find(i)] for i in range(len(texts))]
    stats = {
        "groups": len(rep),
        "largest_group": max(size.values(), default=0),
        "linked_queries": sum(s for s in size.values() if s > 1),
    }
    return out, stats
