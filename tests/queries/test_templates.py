"""The template grammar: packaged YAML loads, renders cleanly, conjugates verbs and rejects broken templates."""

from __future__ import annotations

import random
import re

import pytest

from vidroute.errors import ConfigError
from vidroute.queries.templates import (
    INTENTS,
    Grammar,
    conjugate,
    finish,
    gerund,
    load_grammar,
    parse,
    third_person,
)


def test_packaged_grammar_is_big_enough():
    g = load_grammar()
    assert g.n_templates >= 100
    assert g.n_entries >= 1000
    assert set(g.templates) == set(INTENTS)
    assert all(len(g.templates[i]) >= 15 for i in INTENTS)
    domains = {t.domain for ts in g.templates.values() for t in ts}
    assert {"sports", "news", "film", "music", "education", "nature", "corporate", "ugc"} <= domains


def test_every_template_renders_clean_text():
    g = load_grammar()
    rng = random.Random(3)
    for ts in g.templates.values():
        for t in ts:
            for _ in range(15):
                q = g.render(t, rng)
                assert q and q == q.strip(), (t.id, q)
                assert not re.search(r"[{}^|]", q.replace(" | ", "")), (t.id, q)  # " | " is a literal title separator
                assert "  " not in q and " ," not in q, (t.id, q)
                assert not re.search(r"\ba [aeio]", q.lower().replace("a one", "")), (t.id, q)  # a/an fixed


def test_rendering_is_deterministic_for_a_seed():
    g = load_grammar()
    t = g.templates["visual"][0]
    a = [g.render(t, random.Random(11)) for _ in range(3)]
    b = [g.render(t, random.Random(11)) for _ in range(3)]
    assert a == b


@pytest.mark.parametrize(
    ("word", "s", "ing"),
    [
        ("jump", "jumps", "jumping"),
        ("slice", "slices", "slicing"),
        ("watch", "watches", "watching"),
        ("carry", "carries", "carrying"),
        ("play", "plays", "playing"),
        ("run", "runs", "running"),
        ("lie", "lies", "lying"),
        ("see", "sees", "seeing"),
        ("go", "goes", "going"),
        ("whir", "whirs", "whirring"),
    ],
)
def test_conjugation(word, s, ing):
    assert third_person(word) == s
    assert gerund(word) == ing


def test_conjugate_phrase_forms():
    assert conjugate("jump off a diving board", "s") == "jumps off a diving board"
    assert conjugate("jump off a diving board", "prog") == "is jumping off a diving board"
    assert conjugate("chirp in the trees", "prog", plural=True) == "are chirping in the trees"
    assert conjugate("chirp", "s", plural=True) == "chirp"


def test_forms_pass_through_nested_lists_and_marks():
    g = Grammar(
        {
            "event": ["{dog} {dog_verb:@}", "rain ^fall on a roof", "birds ^^sing and ^^fly off"],
            "dog": ["a dog"],
            "dog_verb": ["^bark and then ^whine"],
        },
        {"audio": [{"id": "t", "text": "{event:s}"}]},
    )
    rng = random.Random(0)
    seen = {g.render_text("{event:s}", rng) for _ in range(60)}
    assert seen == {"a dog barks and then whines", "rain falls on a roof", "birds sing and fly off"}
    seen = {g.render_text("{event:prog}", rng) for _ in range(60)}
    assert seen == {
        "a dog is barking and then whining",
        "rain is falling on a roof",
        "birds are singing and flying off",
    }


def test_same_list_twice_gives_different_entries():
    g = Grammar({"name": ["Ann", "Bob"]}, {"transcription": [{"id": "t", "text": "{name} tells {name}"}]})
    rng = random.Random(0)
    assert all(g.render_text("{name} tells {name}", rng) in ("Ann tells Bob", "Bob tells Ann") for _ in range(30))


@pytest.mark.parametrize(
    ("vocab", "text", "match"),
    [
        ({}, "{nope} here", "unknown vocabulary list {nope}"),
        ({"a": ["x"]}, "{a", "never closed"),
        ({"a": ["x"]}, "oops }", "unbalanced"),
        ({"a": ["x"]}, "{a:past}", "bad slot"),
        ({"a": ["{b}"], "b": ["{a}"]}, "{a}", "cycle"),
    ],
)
def test_broken_templates_are_rejected_with_the_culprit_named(vocab, text, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        Grammar(vocab, {"visual": [{"id": "t", "text": text}]})


def test_unknown_intent_and_style_are_rejected():
    with pytest.raises(ConfigError, match="unknown intent 'smell'"):
        Grammar({}, {"smell": [{"id": "t", "text": "x"}]})
    with pytest.raises(ConfigError, match="style 'fancy'"):
        Grammar({}, {"visual": [{"id": "t", "text": "x", "style": "fancy"}]})


def test_parse_and_finish_basics():
    assert parse("plain text") == ("plain text",)
    assert finish("a  apple ,  a hour and a university", "keep", random.Random(0)) == (
        "an apple, an hour and a university"
    )
