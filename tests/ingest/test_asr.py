"""Whisper speech-to-text on real clips, and alignment of timed words to segments by sentence."""

from __future__ import annotations

import re

import numpy as np
import pytest

from vidroute.ingest.asr import (
    Word,
    align_to_segments,
    mark_sentence_ends,
    sounds_for_segments,
    transcript_from_cues,
    words_from_cues,
)
from vidroute.ingest.captions import Cue, read_captions
from vidroute.ingest.media import decode_audio


def _norm(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _words(text: str, step: float = 0.5) -> list[Word]:
    return mark_sentence_ends([Word(i * step, i * step + step * 0.8, t) for i, t in enumerate(text.split())])


def test_words_from_cues_stay_inside_their_cue():
    cues = [Cue(1.0, 3.0, "Hello there."), Cue(5.0, 5.5, "Bye")]
    words = words_from_cues(cues)
    assert [w.text for w in words] == ["Hello", "there.", "Bye"]
    assert words[0].start == 1.0 and words[1].end == pytest.approx(3.0)
    assert all(w.start < w.end for w in words)
    assert [w.sentence_end for w in words] == [False, True, True]


def test_sentence_end_by_punctuation_or_pause():
    words = mark_sentence_ends([Word(0, 0.4, "Yes"), Word(2.0, 2.4, "well"), Word(2.5, 2.9, "no?"), Word(3, 3.2, "x")])
    assert [w.sentence_end for w in words] == [True, False, True, True]


def test_alignment_extends_to_whole_sentences():
    words = _words("One two three four. Five six seven eight nine ten eleven twelve. Thirteen.")
    # Each word lasts 0.4 s every 0.5 s; the span 2.0-2.4 covers only "Five".
    texts = align_to_segments(words, [(2.0, 2.4)], context_seconds=0.0)
    assert texts == ["Five six seven eight nine ten eleven twelve."]
    # With 2 s of context the window reaches back into the first sentence, which is taken whole.
    texts = align_to_segments(words, [(2.0, 2.4)], context_seconds=1.0)
    assert texts[0].startswith("One two three four.") and texts[0].endswith("twelve.")


def test_alignment_extension_is_capped():
    words = _words(" ".join(f"w{i}" for i in range(60)) + ".")
    (text,) = align_to_segments(words, [(10.0, 10.4)], context_seconds=0.0, extend_words=5)
    assert text.split() == [f"w{i}" for i in range(15, 26)]


def test_alignment_empty_cases():
    assert align_to_segments([], [(0, 5)]) == [""]
    words = _words("far away.")
    assert align_to_segments(words, [(100, 110)]) == [""]


def test_sounds_for_segments():
    t = transcript_from_cues([Cue(0, 1, "", ("rain",)), Cue(5, 6, "Hi", ("rain", "thunder"))], source="x")
    assert sounds_for_segments(t.sounds, [(0, 4), (4, 10)]) == ["rain", "rain; thunder"]


@pytest.fixture(scope="module")
def media(shared_dir):
    return shared_dir / "media"


def test_jfk_transcript(transcriber, media):
    audio = decode_audio(media / "jfk.flac")
    t = transcriber.transcribe(audio)
    text = " ".join(_norm(" ".join(w.text for w in t.words)))
    assert "ask not what your country can do" in text
    assert t.words[0].start < 1.5 and t.words[-1].end > 9.0
    assert all(a.start <= b.start for a, b in zip(t.words, t.words[1:], strict=False))
    assert t.cues and t.source.startswith("asr:")


def test_friday_asr_matches_its_captions(transcriber, media):
    t = transcriber.transcribe(decode_audio(media / "friday.mp4"))
    heard = set(_norm(" ".join(w.text for w in t.words)))
    expected = set(_norm(" ".join(c.text for c in read_captions(media / "friday.vtt"))))
    overlap = len(heard & expected) / len(expected)
    assert overlap >= 0.5, (sorted(heard), sorted(expected))
    assert {"universe", "somebody", "stolen", "crown"} <= heard


@pytest.mark.parametrize("name", ["flower.mp4", "stream-of-water.mp4", "t-rex-roar.mp3"])
def test_no_speech_gives_no_words(transcriber, media, name):
    assert transcriber.transcribe(decode_audio(media / name)).words == []


def test_silence_gives_no_words(transcriber):
    assert transcriber.transcribe(np.zeros(16000 * 3, dtype=np.float32)).words == []
