"""Duplicate removal: normalised keys, the greedy near-duplicate index, and the measured MiniLM threshold."""

from __future__ import annotations

import numpy as np
import pytest

from vidroute.errors import ConfigError
from vidroute.queries.dedup import DEFAULT_THRESHOLD, NearDupIndex, dedup_texts, loose_key, normalize
from vidroute.queries.generate import DEFAULT_LINK_THRESHOLD

# Hand-written pairs (from no dataset). NEAR: one query typed two ways. DISTINCT: one template, different content.
NEAR = [
    ("A dog barking loudly", "a dog barking loudly!"),
    ("a dog barking loudly", "a dog is barking loudly"),
    ("A dog whimpers loudly.", "A dog whimpering."),
    ("a man in a red jacket jumps off a diving board", "man in red jacket jumping off a diving board"),
    ("explaining the history of the printing press", "explanation of the history of the printing press"),
    ("the hedgehog is stalking through the jungle", "hedgehog stalking through the jungle"),
    ("a woman slices tomatoes in a kitchen", "a woman is slicing tomatoes in the kitchen"),
    ("rain falling on a tin roof", "the sound of rain falling on a tin roof"),
    ("I told you we should have left before the storm hit", "i told you we should've left before the storm hit"),
    (
        "the part where he says we're going to need a bigger table",
        "the part where she says we're going to need a bigger table",
    ),
    ("Soldiers unloading boxes from a truck", "soldiers unload boxes from a truck"),
    ("church bells ringing", "church bells ringing in the distance"),
    ("Lantern of the Western Line (1994)", "The Lantern of the Western Line 1994"),
    ("cheerful reggae music playing in a cafe", "cheerful reggae music plays in a cafe"),
    ("a crowd cheering at a stadium", "a stadium crowd cheering"),
    ("Kofi Bianchi: How I learned to speak up", "Kofi Bianchi - How I learned to speak up"),
    ("close-up of a snow-covered bridge", "a snow-covered bridge close-up"),
    ("a tennis player throws a racket at half time", "a tennis player throws his racket"),
    ("thunder rumbling in the distance", "distant thunder rumbling"),
    ("how to change a car tyre", "how to change a tyre on a car"),
    ("a cat purring loudly", "cat purring very loudly"),
    ("two kids playing football in a park", "2 kids playing football in the park"),
    ("Ivy Holloway - Satellite Dancer (Official Video)", "Ivy Holloway - Satellite Dancer official music video"),
    ("a helicopter flying overhead", "helicopter flies overhead"),
    ("the chef explains why you rest the meat", "chef explaining why you should rest the meat"),
]
DISTINCT = [
    ("a dog barking loudly", "a cat meowing loudly"),
    ("a man in a red jacket jumps off a diving board", "a woman in a blue dress jumps off a diving board"),
    ("a woman slices tomatoes in a kitchen", "a woman slices onions in a kitchen"),
    ("rain falling on a tin roof", "rain falling on a tent"),
    ("romantic techno music playing during a fireworks show", "romantic funk music playing during a fireworks show"),
    ("overhead shot of hands whisking eggs", "overhead shot of hands dicing onions"),
    (
        "I told you we should have left before the storm hit",
        "I told you we should have called the police before the storm hit",
    ),
    ("Bea tells Teddy that the wedding is off", "Bea tells Teddy that the flight was cancelled"),
    ("the professor explains how vaccines work", "the professor explains how black holes form"),
    ("a piano playing a slow melody", "a violin playing a slow melody"),
    ("videos from MayaCooks uploaded in June 2019", "videos from Tech with Theo uploaded in June 2019"),
    ("a man slices tomatoes in a kitchen", "a man slices tomatoes in a garage"),
    ("the sound of waves crashing against rocks", "the sound of a train rattling over tracks"),
    ("Why we need public libraries", "Why we need slower news"),
    ("a crowd cheering at a stadium", "a crowd booing at a stadium"),
    ("heavy rain lashing the windows", "heavy rain with thunder"),
    ("a cartoon dog chases a mouse around a kitchen", "a cartoon cat chases a mouse around a kitchen"),
    ("someone shuffles a deck of cards", "someone crumples a sheet of paper"),
    ("Lumora GT phone review", "Lumora GT laptop review"),
    ("a sprinter crossing the finish line", "a cyclist crossing the finish line"),
    ("our revenue grew 12 percent this quarter", "our revenue fell 12 percent this quarter"),
    ("a goose honking at a passer-by", "a duck quacking at a passer-by"),
    ("Night Shift Osaka season 2 episode 4", "Harbour Street season 2 episode 4"),
    ("aerial view of a glacier at sunset", "aerial view of a vineyard at sunset"),
    ("Sage asks Wes how long the patient has", "Sage asks Wes where she was last night"),
]


def test_normalize_and_loose_key():
    assert normalize("  A dog   barking loudly!! ") == "a dog barking loudly"
    assert normalize("Café—CRÈME, s'il vous plaît") == "café crème s il vous plaît"
    assert loose_key("a dog is barking loudly") == loose_key("A dog barking loudly!") == "dog barking loudly"
    assert loose_key("dog bites man") != loose_key("man bites dog")
    assert loose_key("The") == "the"  # nothing but stopwords: fall back to the normalised text


def test_crafted_near_duplicates_without_embeddings():
    texts = ["A dog barking loudly", "a dog barking loudly!", "a dog is barking loudly", "a cat meowing"]
    keep, stats = dedup_texts(texts)
    assert keep == [0, 3]
    assert stats == {"exact_removed": 1, "loose_removed": 1, "near_removed": 0}


def test_crafted_near_duplicates_with_embeddings(embedder):
    texts = [
        "A dog barking loudly",
        "a dog barking loudly!",
        "a dog is barking loudly",
        "a dog barks loudly",
        "the dog barking very loudly",
        "a cat meowing",
        "rain falling on a tin roof",
    ]
    keep, stats = dedup_texts(texts, embedder=embedder)
    assert [texts[i] for i in keep] == ["A dog barking loudly", "a cat meowing", "rain falling on a tin roof"]
    assert stats["near_removed"] == 2


def _cos(embedder, pairs):
    a = embedder([normalize(p[0]) for p in pairs])
    b = embedder([normalize(p[1]) for p in pairs])
    return (a * b).sum(axis=1)


def test_threshold_separates_measured_pairs(embedder):
    """The default threshold was chosen on these pairs: it must remove no distinct pair and most near pairs."""
    near, distinct = _cos(embedder, NEAR), _cos(embedder, DISTINCT)
    assert distinct.max() < DEFAULT_THRESHOLD, sorted(distinct)[-3:]
    caught = [c >= DEFAULT_THRESHOLD or loose_key(a) == loose_key(b) for (a, b), c in zip(NEAR, near, strict=True)]
    assert sum(caught) >= 0.8 * len(NEAR)
    # Near pairs the threshold misses are still linked, so they can never straddle train and test.
    assert near.min() >= DEFAULT_LINK_THRESHOLD


def test_index_is_greedy_keep_first_with_quotas_and_links():
    v = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    idx = NearDupIndex(0.95, link_threshold=0.7, block=2)  # block=2: the greedy rule must hold across blocks
    res = idx.add(v)
    assert res.kept.tolist() == [True, False, True, True, False]
    assert res.near.tolist() == [False, True, False, False, True]
    assert res.match[1] == 0 and res.match[4] == 1  # index positions of the kept rows they duplicate
    assert sorted(res.links) == [(2, 1)]  # [0.6, 0.8] vs [0, 1]: cos 0.8, kept but linked
    # A later batch is judged against everything kept so far; allow() can skip rows without calling them dups.
    res2 = idx.add(np.array([[1.0, 0.0], [0.8, -0.6]], dtype=np.float32), allow=lambda i: False)
    assert res2.near.tolist() == [True, False] and not res2.kept.any()
    assert idx.size == 3


def test_index_rejects_bad_thresholds():
    with pytest.raises(ConfigError, match="threshold"):
        NearDupIndex(1.5)
    with pytest.raises(ConfigError, match="link threshold"):
        NearDupIndex(0.9, link_threshold=0.95)


def test_generated_set_has_no_near_duplicates_left(generated, embedder):
    records, stats = generated
    emb = embedder([normalize(r.query) for r in records])
    sims = emb @ emb.T
    np.fill_diagonal(sims, 0.0)
    assert sims.max() < stats["dedup"]["threshold"] + 1e-3
    assert len({normalize(r.query) for r in records}) == len(records)
    assert len({loose_key(r.query) for r in records}) == len(records)
