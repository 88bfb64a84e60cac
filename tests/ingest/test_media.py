"""Probing, decoding and corrupt-input handling with the packaged ffmpeg and PyAV."""

from __future__ import annotations

import os
import shutil
import wave
from io import BytesIO

import numpy as np
import pytest

from vidroute.errors import IngestError
from vidroute.ingest import IngestConfig, ingest_file, ingest_paths, probe
from vidroute.ingest.media import decode_audio, encode_wav, file_id


def test_probe_synthetic_clip(three_shot_clip):
    info = probe(three_shot_clip)
    assert info.duration == pytest.approx(12.0, abs=0.1)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(25.0)


def test_decode_audio_is_16k_mono_and_keeps_pitch(three_shot_clip):
    audio = decode_audio(three_shot_clip, sample_rate=16000)
    assert audio.dtype == np.float32
    assert audio.size / 16000 == pytest.approx(12.0, abs=0.1)
    part = decode_audio(three_shot_clip, sample_rate=16000, start=2.0, end=4.0)
    assert part.size / 16000 == pytest.approx(2.0, abs=0.05)
    spectrum = np.abs(np.fft.rfft(part))
    peak_hz = np.argmax(spectrum) * 16000 / part.size
    assert peak_hz == pytest.approx(440.0, abs=3.0)


def test_encode_wav_roundtrip():
    samples = np.sin(np.linspace(0, 100, 8000)).astype(np.float32) * 0.5
    with wave.open(BytesIO(encode_wav(samples, 8000))) as w:
        assert (w.getnchannels(), w.getframerate(), w.getnframes()) == (1, 8000, 8000)


def test_file_id_follows_content(tmp_path, three_shot_clip):
    copy = tmp_path / "copy.mp4"
    shutil.copy(three_shot_clip, copy)
    assert file_id(copy) == file_id(three_shot_clip)
    assert len(file_id(copy)) == 16
    with open(copy, "ab") as fh:
        fh.write(b"\0")
    assert file_id(copy) != file_id(three_shot_clip)


def test_probe_audio_only_file(tmp_path, clip_maker):
    out = clip_maker(tmp_path / "a.mp4", [("black", 2)], tone=300.0)
    audio_only = tmp_path / "a.m4a"
    from vidroute.ingest.media import run_ffmpeg

    run_ffmpeg(["-i", str(out), "-vn", "-c:a", "copy", "-y", str(audio_only)], path=out, what="test")
    info = probe(audio_only)
    assert info.has_audio and not info.has_video


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.mp4", b"", "empty file"),
        ("random.mp4", os.urandom(4096), "not a readable media file"),
        ("text.mkv", b"this is not a video, just some words\n" * 20, "not a readable media file"),
    ],
)
def test_corrupt_inputs_raise_ingest_error(tmp_path, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(IngestError, match=message) as err:
        ingest_file(bad, embedders={}, asr=False, config=IngestConfig(keyframe_dir=tmp_path / "kf"))
    assert name in str(err.value)  # the message names the file


def test_missing_file(tmp_path):
    with pytest.raises(IngestError, match="no such file"):
        probe(tmp_path / "nope.mp4")


def test_truncated_mp4_is_rejected_or_indexed_in_part(tmp_path, three_shot_clip):
    data = three_shot_clip.read_bytes()
    cut = tmp_path / "truncated.mp4"
    cut.write_bytes(data[: len(data) // 3])  # faststart: the index survives, most media data does not
    cfg = IngestConfig(keyframe_dir=tmp_path / "kf")
    with pytest.raises(IngestError, match="truncated"):
        ingest_file(cut, embedders={}, asr=False, config=cfg)
    partial = ingest_file(cut, embedders={}, asr=False, config=cfg.model_copy(update={"allow_truncated": True}))
    assert partial and partial[-1].end < 11.0


def test_batch_reports_bad_files_and_goes_on(tmp_path, three_shot_clip):
    good = tmp_path / "good.mp4"
    shutil.copy(three_shot_clip, good)
    (tmp_path / "bad.mp4").write_bytes(os.urandom(2048))
    (tmp_path / "notes.txt").write_text("ignored: not a media extension")
    outcomes = list(
        ingest_paths([tmp_path], embedders={}, asr=False, config=IngestConfig(keyframe_dir=tmp_path / "kf"))
    )
    by_name = {o.path.name: o for o in outcomes}
    assert set(by_name) == {"good.mp4", "bad.mp4"}
    assert not by_name["bad.mp4"].ok and "bad.mp4" in by_name["bad.mp4"].error
    assert by_name["good.mp4"].ok and len(by_name["good.mp4"].segments) >= 1


def test_cover_art_is_not_video(tmp_path, clip_maker):
    from vidroute.ingest.media import run_ffmpeg

    src = clip_maker(tmp_path / "src.mp4", [("red", 2)], tone=300.0)
    cover = tmp_path / "cover.jpg"
    run_ffmpeg(["-i", str(src), "-frames:v", "1", "-y", str(cover)], path=src, what="test")
    mp3 = tmp_path / "song.mp3"
    args = ["-i", str(src), "-i", str(cover), "-map", "0:a", "-map", "1", "-c:a", "libmp3lame", "-c:v", "mjpeg"]
    run_ffmpeg([*args, "-disposition:v", "attached_pic", "-y", str(mp3)], path=mp3, what="test")
    info = probe(mp3)
    assert info.has_audio and not info.has_video
    segments = ingest_file(mp3, embedders={}, asr=False, config=IngestConfig(keyframe_dir=tmp_path / "kf"))
    assert len(segments) == 1 and segments[0].keyframe is None


def test_embedded_subtitles_become_the_transcript(tmp_path, clip_maker):
    from vidroute.ingest.media import run_ffmpeg

    src = clip_maker(tmp_path / "src.mp4", [("red", 3), ("blue", 3)])
    srt = tmp_path / "subs.srt"
    srt.write_text(
        "1\n00:00:00,500 --> 00:00:02,000\nThe eagle has landed.\n\n2\n00:00:03,000 --> 00:00:05,000\n[music]\n"
    )
    mkv = tmp_path / "movie.mkv"
    run_ffmpeg(
        ["-i", str(src), "-i", str(srt), "-map", "0", "-map", "1", "-c", "copy", "-c:s", "srt", "-y", str(mkv)],
        path=mkv,
        what="test",
    )
    assert probe(mkv).subtitle_streams == 1
    (seg,) = ingest_file(mkv, embedders={}, asr=False, config=IngestConfig(keyframe_dir=tmp_path / "kf"))
    assert seg.transcript == "The eagle has landed."


def test_config_validation():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="twice the minimum"):
        IngestConfig(min_seconds=5, target_seconds=6, max_seconds=8)
    with pytest.raises(ValidationError):
        IngestConfig(scene_treshold=0.4)  # typo: unknown fields are errors


def test_signals_without_embedder_stay_empty(tmp_path, three_shot_clip):
    cfg = IngestConfig(keyframe_dir=tmp_path, min_seconds=2, target_seconds=5, max_seconds=8)
    segs = ingest_file(three_shot_clip, embedders={"visual": None}, asr=False, config=cfg)
    assert [(s.start, s.end) for s in segs] == [(0.0, 3.0), (3.0, 9.0), (9.0, 12.0)]  # one per shot
    assert all(s.vectors == {"visual": None} for s in segs)
    assert all(s.keyframe and s.keyframe.startswith(str(tmp_path)) for s in segs)
    # The keyframes show each shot's colour (red, blue, green).
    from PIL import Image

    colours = []
    for s in segs:
        with Image.open(s.keyframe) as im:
            colours.append(int(np.argmax(np.asarray(im.convert("RGB")).reshape(-1, 3).mean(axis=0))))
    assert colours == [0, 2, 1]
