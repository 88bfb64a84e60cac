"""Template families that cover real query styles: catalogue sound labels, ASR-like speech, dialogue summaries,
talk and video titles, event descriptions. Each renders in its intent, in its shape, and mostly uniquely."""

from __future__ import annotations

import random
import re

import pytest

from vidroute.queries import generate_queries
from vidroute.queries.templates import load_grammar

FAMILIES = {
    "aud_label": "audio",
    "tr_asr": "transcription",
    "tr_dialogue_summary": "transcription",
    "tr_topic_query": "transcription",
    "meta_talk_title_more": "metadata",
    "meta_yt_title": "metadata",
    "vis_event": "visual",
}


def _render(tid: str, n: int = 300) -> list[str]:
    g = load_grammar()
    (tpl,) = [t for ts in g.templates.values() for t in ts if t.id == tid]
    rng = random.Random(7)
    return [g.render(tpl, rng) for _ in range(n)]


@pytest.mark.parametrize("tid,intent", sorted(FAMILIES.items()))
def test_family_is_registered_renders_clean_and_varied(tid: str, intent: str) -> None:
    g = load_grammar()
    assert tid in {t.id for t in g.templates[intent]}
    texts = _render(tid)
    assert all(t and "{" not in t and "}" not in t and "^" not in t and "  " not in t for t in texts)
    assert len(set(texts)) > 0.6 * len(texts), f"{tid} repeats itself: {len(set(texts))} distinct of {len(texts)}"


def test_sound_labels_look_like_catalogue_labels() -> None:
    # Short noun phrases, no sentence punctuation and no verb-led caption: "Chainsaw", "Kettle, whistling".
    for t in _render("aud_label", 500):
        assert len(t.split()) <= 6, t
        assert not re.search(r"[.!?]$", t), t


def test_asr_lines_carry_no_speech_cue_words() -> None:
    cue = re.compile(r"\b(says|said|quote|transcript|subtitle|talks about)\b", re.IGNORECASE)
    assert not [t for t in _render("tr_asr", 500) if cue.search(t)]


def test_dialogue_summaries_name_a_speaker_and_a_speech_act() -> None:
    acts = re.compile(
        r"\b(tells|asks|reminds|warns|informs|assures|promises|convinces|begs|orders|advises|urges|invites|"
        r"challenges|dares|persuades|encourages|about|that|to|calls|thanks|apologizes|congratulates|compliments|"
        r"teases|scolds|reassures|lies|explains|confesses|admits|comments|proposes|suggests|comes up with|discuss|"
        r"argue|bicker|disagree|joke|talk|makes fun|gossips|worries|rants|brags|complains)\b"
    )
    assert all(acts.search(t) for t in _render("tr_dialogue_summary"))


def test_new_families_appear_in_a_default_mix_run() -> None:
    records, _ = generate_queries(3000, seed=0, embed_dedup=False)
    by_source = {r.source: r.intent for r in records}
    for tid, intent in FAMILIES.items():
        assert by_source.get(tid) == intent, f"{tid} missing from a 3000-query run"
