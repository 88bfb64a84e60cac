"""WebVTT/SRT parsing, writing and sidecar discovery."""

from __future__ import annotations

import pytest

from vidroute.errors import DataFormatError
from vidroute.ingest.captions import Cue, find_caption_file, parse_captions, read_captions, write_captions

VTT = """\ufeffWEBVTT - a title

STYLE
::cue { color: yellow }

NOTE this is a comment
spanning lines

intro
00:00.500 --> 00:02.000 align:start line:80%
<v Roger>Hello &amp; welcome</v>

00:00:02.000 --> 00:00:04.250
[door slams]

00:00:04.250 --> 00:00:06.000
- <i>Who's there?</i>
- It's me. [laughs]

01:00:00.000 --> 01:00:01.000
♪ la la la ♪
"""

SRT = """1
00:00:01,000 --> 00:00:02,500
{\\an8}First line
second line

2
00:00:03,000 --> 00:00:04,000
<font color="red">Red text</font>
"""


def test_parse_vtt_cleans_markup_and_splits_sounds():
    cues = parse_captions(VTT)
    assert [c.start for c in cues] == [0.5, 2.0, 4.25, 3600.0]
    assert cues[0] == Cue(0.5, 2.0, "Hello & welcome")
    assert cues[1].text == "" and cues[1].sounds == ("door slams",)
    assert cues[2].text == "Who's there? It's me." and cues[2].sounds == ("laughs",)
    assert cues[3].text == "" and cues[3].sounds  # song lyrics are sound, not speech


def test_parse_srt():
    cues = parse_captions(SRT)
    assert cues == [Cue(1.0, 2.5, "First line second line"), Cue(3.0, 4.0, "Red text")]


def test_bad_timing_raises():
    with pytest.raises(DataFormatError, match="ends before it starts"):
        parse_captions("WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n")
    with pytest.raises(DataFormatError, match="no caption cue"):
        parse_captions("WEBVTT\n\nxx --> yy\nbroken\n", source="bad.vtt")
    assert parse_captions("WEBVTT\n") == []


@pytest.mark.parametrize("suffix", [".vtt", ".srt"])
def test_write_read_roundtrip(tmp_path, suffix):
    cues = [Cue(0.0, 1.5, "One two."), Cue(1.5, 3.0, "", ("applause",)), Cue(61.25, 3725.5, "Later.")]
    path = write_captions(cues, tmp_path / f"out{suffix}")
    assert read_captions(path) == cues


def test_write_rejects_other_suffix(tmp_path):
    with pytest.raises(DataFormatError):
        write_captions([], tmp_path / "out.txt")


def test_find_caption_file_prefers_language(tmp_path):
    media = tmp_path / "talk.mp4"
    media.write_bytes(b"x")
    assert find_caption_file(media) is None
    (tmp_path / "talk.srt").write_text(SRT)
    assert find_caption_file(media).name == "talk.srt"
    (tmp_path / "talk.vtt").write_text(VTT)
    assert find_caption_file(media).name == "talk.vtt"
    (tmp_path / "talk.en.vtt").write_text(VTT)
    assert find_caption_file(media, "en").name == "talk.en.vtt"
    assert find_caption_file(media, "de").name == "talk.vtt"


def test_real_captions(shared_dir):
    cues = read_captions(shared_dir / "media" / "friday.vtt")
    assert len(cues) == 5
    assert cues[2].text == "Tell me, is the lord of the universe in?"  # <u> markup removed
    assert cues[-1].end == pytest.approx(6.0)
