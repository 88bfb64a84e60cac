"""Splits: hashed per similarity group, so no query text and no near-duplicate pair crosses train/val/test."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from vidroute.errors import ConfigError
from vidroute.queries.dedup import loose_key, normalize
from vidroute.queries.generate import DEFAULT_LINK_THRESHOLD
from vidroute.queries.splits import assign_splits, parse_fractions, split_for, unit_hash


def test_split_depends_only_on_normalised_text():
    assert split_for("A dog barking!") == split_for("a dog   barking")
    assert 0.0 <= unit_hash("anything") < 1.0
    texts = [f"query number {i}" for i in range(4000)]
    shares = Counter(split_for(t) for t in texts)
    assert abs(shares["train"] / 4000 - 0.8) < 0.03 and abs(shares["test"] / 4000 - 0.1) < 0.02
    assert all(split_for(t, (0, 0, 1)) == "test" for t in texts[:50])


def test_linked_and_identical_texts_share_a_split():
    texts = [f"distinct query {i}" for i in range(300)] + ["Same text!", "same text"]
    links = [(i, i + 1) for i in range(0, 299, 2)]  # 150 linked pairs
    splits, stats = assign_splits(texts, links)
    assert all(splits[a] == splits[b] for a, b in links)
    assert splits[-1] == splits[-2]
    assert stats["largest_group"] == 2 and stats["groups"] == 151
    # The group's split does not depend on the order the texts come in.
    rev, _ = assign_splits(texts[::-1], [(301 - a, 301 - b) for a, b in links])
    assert rev[::-1] == splits


def test_parse_fractions():
    assert parse_fractions("80/10/10") == pytest.approx((0.8, 0.1, 0.1))
    assert parse_fractions([2, 1, 1]) == pytest.approx((0.5, 0.25, 0.25))
    for bad in ("0.8,0.2", "a,b,c", "-1,1,1", "0,0,0"):
        with pytest.raises(ConfigError, match="splits"):
            parse_fractions(bad)


def test_no_leak_across_splits(generated, embedder):
    """No normalised text, loose key or near-duplicate pair (cosine >= link threshold) is in two splits."""
    records, stats = generated
    by_split: dict[str, set[str]] = {}
    loose: dict[str, set[str]] = {}
    for r in records:
        by_split.setdefault(r.split, set()).add(normalize(r.query))
        loose.setdefault(r.split, set()).add(loose_key(r.query))
    assert set(by_split) == {"train", "val", "test"}
    for a in by_split:
        for b in by_split:
            if a < b:
                assert not by_split[a] & by_split[b]
                assert not loose[a] & loose[b]
    emb = embedder([normalize(r.query) for r in records])
    split = np.array([r.split for r in records])
    sims = emb @ emb.T
    cross = split[:, None] != split[None, :]
    worst = float(sims[cross].max())
    # 1e-3: the same texts embedded in other batches differ by float rounding.
    assert worst < DEFAULT_LINK_THRESHOLD + 1e-3, worst
    assert stats["dedup"]["split_groups"]["linked_queries"] > 0  # the links were actually used
    assert abs(stats["counts"]["split"]["train"] / len(records) - 0.8) < 0.06
