"""Fixtures for ingest tests: synthetic clips made with the packaged ffmpeg, and shared (session) models."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidroute.ingest.media import run_ffmpeg


def make_clip(
    out: Path,
    colours: list[tuple[str, float]],
    *,
    tone: float | None = 440.0,
    size: str = "160x120",
    faststart: bool = True,
) -> Path:
    """A video of solid-colour shots (hard cuts between them), with a sine tone (or no audio when tone is None)."""
    args: list[str] = []
    parts: list[str] = []
    labels = ""
    for i, (colour, seconds) in enumerate(colours):
        args += ["-f", "lavfi", "-i", f"color=c={colour}:s={size}:r=25:d={seconds}"]
        parts.append(f"[{i}:v]setsar=1,format=yuv420p[v{i}]")
        labels += f"[v{i}]"
    graph = ";".join(parts) + f";{labels}concat=n={len(colours)}:v=1:a=0[v]"
    total = sum(s for _, s in colours)
    if tone is not None:
        args += ["-f", "lavfi", "-t", f"{total}", "-i", f"sine=f={tone}:sample_rate=44100"]
    args += ["-filter_complex", graph, "-map", "[v]"]
    if tone is not None:
        args += ["-map", f"{len(colours)}:a", "-c:a", "aac"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if faststart:
        args += ["-movflags", "+faststart"]
    run_ffmpeg([*args, "-y", str(out)], path=out, what="making a test clip")
    return out


@pytest.fixture(scope="session")
def clip_maker():
    """`make_clip` as a fixture, so test modules need not import conftest."""
    return make_clip


@pytest.fixture(scope="session")
def three_shot_clip(tmp_path_factory) -> Path:
    """12 s: red 3 s, blue 6 s, green 3 s (cuts at 3 and 9), with a 440 Hz tone."""
    out = tmp_path_factory.mktemp("clips") / "three_shots.mp4"
    return make_clip(out, [("red", 3), ("blue", 6), ("green", 3)])


@pytest.fixture(scope="session")
def transcriber():
    from vidroute.ingest.asr import WhisperTranscriber

    return WhisperTranscriber(cpu_threads=2)


@pytest.fixture(scope="session")
def text_embedders():
    from vidroute.ingest.embedders import build_embedders

    return build_embedders()
