"""End to end: real public-domain clips and the synthesised demo clips become segments with vectors."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from vidroute.ingest import IngestConfig, ingest_file, ingest_paths, make_demo_clips, probe


@pytest.fixture(scope="module")
def media(shared_dir):
    return shared_dir / "media"


@pytest.fixture(scope="module")
def real_index(media, text_embedders, transcriber, tmp_path_factory):
    """The real clips, ingested once with the offline default embedders."""
    cfg = IngestConfig(keyframe_dir=tmp_path_factory.mktemp("kf"))
    out = {}
    timings = {}
    for name in ("friday.mp4", "flower.mp4", "stream-of-water.mp4", "jfk.flac", "t-rex-roar.mp3"):
        t0 = time.perf_counter()
        out[name] = ingest_file(media / name, embedders=text_embedders, config=cfg, asr=transcriber)
        timings[name] = time.perf_counter() - t0
    return out, timings, cfg


def test_friday_end_to_end(real_index, media):
    index, timings, cfg = real_index
    (seg,) = index["friday.mp4"]
    assert seg.start == 0.0 and seg.end == pytest.approx(6.17, abs=0.05)
    assert "Tell me, is the lord of the universe in?" in seg.transcript  # from friday.vtt, markup removed
    assert seg.segment_id == f"{seg.video_id}:00000" and len(seg.video_id) == 16
    assert seg.path == str(media / "friday.mp4") and seg.title == "friday"
    with Image.open(seg.keyframe) as im:
        assert im.format == "JPEG" and im.width == 320
    assert str(cfg.keyframe_dir) in seg.keyframe
    for signal in ("transcription", "metadata"):
        assert len(seg.vectors[signal]) == 384
        assert np.linalg.norm(seg.vectors[signal]) == pytest.approx(1.0, abs=1e-4)
    # Offline default: no visual/audio description exists for this clip, so no vector is invented.
    assert seg.vectors["visual"] is None and seg.vectors["audio"] is None
    assert timings["friday.mp4"] < 90  # generous: 2 shared cores


def test_quoted_line_finds_friday(real_index, text_embedders):
    index, _, _ = real_index
    segments = [s for segs in index.values() for s in segs if s.vectors["transcription"] is not None]
    docs = np.array([s.vectors["transcription"] for s in segments], dtype=np.float32)
    q = text_embedders["transcription"].embed_texts(["somebody must've stolen the crown jewels"])[0]
    best = segments[int(np.argmax(docs @ q))]
    assert best.path.endswith("friday.mp4")


def test_no_invented_speech(real_index):
    index, _, _ = real_index
    for name in ("flower.mp4", "t-rex-roar.mp3"):
        assert all(s.transcript == "" and s.vectors["transcription"] is None for s in index[name])
    (jfk,) = index["jfk.flac"]
    assert "ask not what your country can do" in jfk.transcript.lower().replace(",", "")
    assert jfk.keyframe is None and jfk.vectors["visual"] is None


def test_no_speech_without_captions(media, transcriber, tmp_path):
    cfg = IngestConfig(keyframe_dir=tmp_path, use_captions=False)
    segments = ingest_file(media / "stream-of-water.mp4", embedders={}, config=cfg, asr=transcriber)
    assert [s.transcript for s in segments] == [""]


def test_asr_when_captions_are_off_and_captions_written(media, transcriber, tmp_path):
    cfg = IngestConfig(keyframe_dir=tmp_path, use_captions=False)
    (seg,) = ingest_file(media / "friday.mp4", embedders={}, config=cfg, asr=transcriber)
    assert "universe" in seg.transcript.lower() and "crown" in seg.transcript.lower()
    vtt = tmp_path / seg.video_id / "captions.vtt"
    assert vtt.read_text().startswith("WEBVTT") and "crown" in vtt.read_text().lower()


def test_reingest_is_idempotent(real_index, media, text_embedders, transcriber):
    index, _, cfg = real_index
    again = ingest_file(media / "friday.mp4", embedders=text_embedders, config=cfg, asr=transcriber)
    first = index["friday.mp4"]
    assert [s.segment_id for s in again] == [s.segment_id for s in first]
    assert [s.transcript for s in again] == [s.transcript for s in first]
    assert np.allclose(again[0].vectors["metadata"], first[0].vectors["metadata"], atol=1e-6)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, text_embedders):
    root = tmp_path_factory.mktemp("demo")
    clips = make_demo_clips(root / "media")
    cfg = IngestConfig(keyframe_dir=root / "kf")
    outcomes = list(ingest_paths([root / "media"], embedders=text_embedders, config=cfg, asr=False))
    return clips, {o.path.name: o for o in outcomes}


def test_demo_clips_are_real_media(demo):
    clips, _ = demo
    assert {p.suffix for p in clips} == {".mp4", ".mkv", ".webm", ".mp3"}
    for p in clips:
        info = probe(p)
        assert info.has_audio and info.has_video == (p.suffix != ".mp3")
        assert json.loads(p.with_suffix(".json").read_text())["title"]


def test_demo_clips_index_all_four_signals(demo, text_embedders):
    _, outcomes = demo
    assert all(o.ok for o in outcomes.values()), {k: o.error for k, o in outcomes.items()}
    math = outcomes["math_corner_fractals.mp4"].segments
    assert [(s.start, s.end) for s in math] == [(0.0, 8.0), (8.0, 16.0)]  # cut at the scene change
    assert math[0].title == "Math Corner: fractals and cellular automata" and math[0].people == ["Dana Reyes"]
    assert "Mandelbrot" in math[0].transcript
    assert all(s.vectors[sig] is not None for s in math for sig in ("visual", "audio", "transcription", "metadata"))
    podcast = outcomes["quiet_hours_podcast.mp3"].segments
    assert all(s.vectors["visual"] is None and s.vectors["audio"] is not None for s in podcast)
    # The visual vectors come from the sidecar's scene descriptions: a visual query finds the right scene.
    video_segments = [s for o in outcomes.values() for s in o.segments if s.vectors["visual"] is not None]
    docs = np.array([s.vectors["visual"] for s in video_segments])
    q = text_embedders["visual"].embed_texts(["cellular automaton cells on black"])[0]
    best = video_segments[int(np.argmax(docs @ q))]
    assert best.path.endswith("math_corner_fractals.mp4") and best.start == 8.0


def test_demo_clip_copy_changes_path_not_id(demo, tmp_path, text_embedders):
    clips, outcomes = demo
    copy = tmp_path / "renamed.mkv"
    shutil.copy(clips[1], copy)
    segs = ingest_file(copy, embedders={}, config=IngestConfig(keyframe_dir=tmp_path), asr=False)
    assert segs[0].video_id == outcomes[clips[1].name].segments[0].video_id
    assert segs[0].path == str(copy) and segs[0].title == "renamed"  # the sidecar stayed with the original
