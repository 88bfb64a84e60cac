"""Synthesise a few short demo clips with ffmpeg's built-in sources, for machines with no media and no internet.

The pictures and sounds are generated (fractals, test patterns, tones, noise), so their sidecar descriptions of
what is seen and heard are true by construction. No speech is synthesised (no TTS engine is guaranteed
present): the spoken lines are captions (`.vtt`) — the transcription signal of the demo comes from them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from vidroute.ingest.media import run_ffmpeg

log = logging.getLogger(__name__)

_SIZE = "320x240"
_RATE = 25
_SR = 44100


@dataclass(frozen=True)
class _Scene:
    seconds: float
    video: str | None  # a lavfi video source, without size/rate
    audio: str  # a lavfi audio source, without sample rate
    visual: str  # what the scene shows, for the sidecar
    sound: str  # what the scene sounds like, for the sidecar


@dataclass(frozen=True)
class _Clip:
    name: str
    scenes: list[_Scene]
    captions: list[tuple[float, float, str]]
    meta: dict[str, object] = field(default_factory=dict)


CLIPS: list[_Clip] = [
    _Clip(
        name="math_corner_fractals.mp4",
        scenes=[
            _Scene(8, "mandelbrot", "sine=f=440", "a colourful Mandelbrot fractal zooming in", "a steady 440 Hz tone"),
            _Scene(
                8,
                "life=mold=10:ratio=0.1:life_color=#00ff00",
                "anoisesrc=color=brown:amplitude=0.3",
                "green cells of Conway's Game of Life evolving on a black background",
                "low rumbling brown noise",
            ),
        ],
        captions=[
            (0.0, 4.0, "Welcome back to Math Corner. Today we zoom into the Mandelbrot set."),
            (4.0, 8.0, "Every point is tested to see whether it escapes to infinity."),
            (8.0, 12.0, "Now for something alive: Conway's Game of Life."),
            (12.0, 16.0, "Simple rules, surprising patterns."),
        ],
        meta={
            "title": "Math Corner: fractals and cellular automata",
            "description": "A short maths explainer about the Mandelbrot set and the Game of Life.",
            "people": ["Dana Reyes"],
            "genre": "education",
            "date": "2024-03-14",
            "tags": ["math", "fractal", "game of life"],
        },
    ),
    _Clip(
        name="broadcast_test_card.mkv",
        scenes=[
            _Scene(7, "smptebars", "sine=f=1000", "SMPTE colour bars test card", "a continuous 1 kHz test tone"),
            _Scene(7, "testsrc", "anullsrc=channel_layout=mono", "a test pattern with a running counter", "silence"),
        ],
        captions=[
            (0.5, 4.0, "This is a test of the emergency broadcast system."),
            (4.0, 7.0, "Please stand by."),
            (8.0, 13.0, "Normal programming will resume shortly."),
        ],
        meta={
            "title": "Broadcast test transmission",
            "description": "Colour bars and a test pattern from an overnight test transmission.",
            "genre": "news",
            "date": "1998-06-01",
            "tags": ["test card", "colour bars"],
        },
    ),
    _Clip(
        name="ocean_colours.webm",
        scenes=[
            _Scene(5, "color=c=navy", "anoisesrc=color=white:amplitude=0.2", "a plain navy blue screen", "soft hiss"),
            _Scene(5, "color=c=teal", "anoisesrc=color=pink:amplitude=0.4", "a plain teal screen", "loud rushing hiss"),
        ],
        captions=[],
        meta={
            "title": "Ocean colours",
            "description": "A calm colour study in blue and teal.",
            "genre": "art",
            "date": "2021-08-09",
            "tags": ["ambient", "colour"],
        },
    ),
    _Clip(
        name="quiet_hours_podcast.mp3",
        scenes=[
            _Scene(10, None, "anoisesrc=color=pink:amplitude=0.15", "", "pink noise like steady rain"),
            _Scene(10, None, "sine=f=220", "", "a low 220 Hz hum"),
        ],
        captions=[
            (0.5, 5.0, "Hi, and welcome to Quiet Hours, the podcast for rainy afternoons."),
            (5.0, 9.5, "Today we talk about why the sound of rain helps people sleep."),
            (10.5, 15.0, "Our guest is a sleep researcher from Lisbon."),
            (15.0, 19.5, "She explains how steady noise masks sudden sounds."),
        ],
        meta={
            "title": "Quiet Hours, episode 12: rain and sleep",
            "description": "A podcast episode about rain sounds and sleep.",
            "people": ["Marta Sousa", "Leo Park"],
            "genre": "podcast",
            "date": "2023-11-02",
            "tags": ["sleep", "rain", "interview"],
        },
    ),
]


def _build(clip: _Clip, out: Path) -> None:
    args: list[str] = []
    parts: list[str] = []
    labels: list[str] = []
    has_video = all(s.video for s in clip.scenes)
    idx = 0
    for k, scene in enumerate(clip.scenes):
        d = f"{scene.seconds:g}"
        if has_video:
            sep = ":" if "=" in str(scene.video) else "="
            args += ["-f", "lavfi", "-i", f"{scene.video}{sep}s={_SIZE}:r={_RATE}"]
            parts.append(f"[{idx}:v]trim=duration={d},setpts=PTS-STARTPTS,format=yuv420p,setsar=1[v{k}]")
            labels.append(f"[v{k}]")
            idx += 1
        sep = ":" if "=" in scene.audio else "="
        args += ["-f", "lavfi", "-i", f"{scene.audio}{sep}sample_rate={_SR}"]
        parts.append(f"[{idx}:a]atrim=duration={d},asetpts=PTS-STARTPTS,aformat=channel_layouts=mono[a{k}]")
        labels.append(f"[a{k}]")
        idx += 1
    n = len(clip.scenes)
    graph = (
        ";".join(parts)
        + ";"
        + "".join(labels)
        + f"concat=n={n}:v={int(has_video)}:a=1"
        + ("[v][a]" if has_video else "[a]")
    )
    args += ["-filter_complex", graph]
    if has_video:
        args += ["-map", "[v]"]
    args += ["-map", "[a]"]
    suffix = out.suffix.lower()
    if suffix == ".webm":
        args += ["-c:v", "libvpx", "-b:v", "300k", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"]
    elif suffix == ".mp3":
        args += ["-c:a", "libmp3lame", "-b:a", "96k", "-metadata", f"title={clip.meta.get('title', '')}"]
    else:
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "32", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    run_ffmpeg([*args, "-y", str(tmp)], path=out, what="synthesising a demo clip")
    tmp.replace(out)


def _vtt(captions: list[tuple[float, float, str]]) -> str:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    return "WEBVTT\n\n" + "\n".join(f"{stamp(s)} --> {stamp(e)}\n{text}\n" for s, e, text in captions)


def make_demo_clips(out_dir: Path | str, *, overwrite: bool = False) -> list[Path]:
    """Write the demo clips (mp4, mkv, webm video and an mp3 podcast) with `.json` and `.vtt` sidecars.

    Existing clips are kept unless `overwrite`; returns the media paths. Takes a few seconds on 2 cores.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for clip in CLIPS:
        media = out_dir / clip.name
        if overwrite or not media.exists():
            _build(clip, media)
        t = 0.0
        notes = []
        for scene in clip.scenes:
            note: dict[str, object] = {"start": t, "end": t + scene.seconds, "audio": scene.sound}
            if scene.visual:
                note["visual"] = scene.visual
            notes.append(note)
            t += scene.seconds
        sidecar = {**clip.meta, "segments": notes}
        media.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
        captions = media.with_suffix(".vtt")
        if clip.captions:
            captions.write_text(_vtt(clip.captions), encoding="utf-8")
        else:
            captions.unlink(missing_ok=True)
        paths.append(media)
    log.info("demo clips in %s: %s", out_dir, [p.name for p in paths])
    return paths
