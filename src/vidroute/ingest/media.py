"""Probe and decode media with the ffmpeg binary that ships in the `imageio-ffmpeg` wheel (and PyAV for probing)."""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import subprocess
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vidroute.errors import IngestError, require

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".webm", ".mov", ".m4v", ".avi", ".mpg", ".mpeg", ".ts", ".flv"})
AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wma"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS


@dataclass(frozen=True)
class MediaInfo:
    """What a probe learns about one file: duration, which streams it has, and its container tags."""

    path: Path
    duration: float
    has_video: bool
    has_audio: bool
    width: int = 0
    height: int = 0
    fps: float = 0.0
    format_name: str = ""
    subtitle_streams: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    video_duration: float = 0.0  # of the video stream alone, 0 when the container does not say
    audio_duration: float = 0.0


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary inside the imageio-ffmpeg wheel (no system install needed)."""
    imageio_ffmpeg = require("imageio_ffmpeg", "search")
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: Sequence[str], *, path: Path | str, what: str, timeout: float | None = None) -> bytes:
    """Run ffmpeg with `args`; return stdout, or raise IngestError naming the file, the step and ffmpeg's last words."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-v", "error", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise IngestError(f"{path}: ffmpeg timed out after {timeout:.0f} s while {what}") from exc
    if proc.returncode != 0:
        raise IngestError(f"{path}: ffmpeg failed while {what}: {_last_lines(proc.stderr)}")
    return proc.stdout


def _last_lines(stderr: bytes, n: int = 3) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return " | ".join(lines[-n:]) or "no message"


def check_readable(path: Path) -> None:
    """Fail early, with a clear message, on files that cannot be media at all."""
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if not path.is_file():
        raise IngestError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: empty file (0 bytes)")


def probe(path: Path | str) -> MediaInfo:
    """Open `path` with PyAV and describe it; a file FFmpeg cannot parse raises IngestError."""
    path = Path(path)
    check_readable(path)
    av = require("av", "search")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            video = container.streams.video[0] if container.streams.video else None
            audio = container.streams.audio[0] if container.streams.audio else None
            if video is None and audio is None:
                raise IngestError(f"{path}: no audio or video stream found")
            duration = _duration(container, video, audio)
            tags = {str(k).lower(): str(v) for k, v in (container.metadata or {}).items()}
            fps = float(video.average_rate) if video is not None and video.average_rate else 0.0
            info = MediaInfo(
                path=path,
                duration=duration,
                has_video=video is not None and not _is_cover_art(video),
                has_audio=audio is not None,
                width=int(video.codec_context.width or 0) if video is not None else 0,
                height=int(video.codec_context.height or 0) if video is not None else 0,
                fps=fps,
                format_name=str(container.format.name),
                subtitle_streams=len(container.streams.subtitles),
                tags=tags,
                video_duration=_stream_duration(video),
                audio_duration=_stream_duration(audio),
            )
    except IngestError:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise IngestError(f"{path}: not a readable media file ({exc})") from exc
    if info.duration <= 0:
        raise IngestError(f"{path}: could not determine a positive duration (corrupt or empty stream)")
    return info


def _is_cover_art(stream) -> bool:
    """mp3/m4a files often carry a still "video" stream that is only cover art (disposition attached_pic)."""
    disposition = getattr(stream, "disposition", None)
    flag = getattr(type(disposition), "attached_pic", None)
    if disposition is not None and flag is not None:
        return bool(disposition & flag)
    return "attached_pic" in repr(disposition)


def _stream_duration(stream) -> float:
    if stream is not None and stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def _duration(container, video, audio) -> float:
    if container.duration:
        return float(container.duration) / 1_000_000.0
    return max(_stream_duration(video), _stream_duration(audio))


def decode_audio(
    path: Path | str, *, sample_rate: int = 16000, start: float | None = None, end: float | None = None
) -> np.ndarray:
    """Decode the first audio stream to mono float32 at `sample_rate`, optionally only [start, end) seconds."""
    args: list[str] = []
    if start is not None and start > 0:
        args += ["-ss", f"{start:.3f}"]
    args += ["-i", str(path)]
    if end is not None:
        args += ["-t", f"{max(0.0, end - (start or 0.0)):.3f}"]
    args += ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    raw = run_ffmpeg(args, path=path, what="decoding audio")
    return np.frombuffer(raw, dtype=np.float32).copy()


def file_id(path: Path | str, *, length: int = 16) -> str:
    """Stable id of a file's content: the first `length` hex digits of the sha256 of its bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


def cut_clip(path: Path | str, start: float, end: float, *, has_audio: bool = True, width: int = 640) -> bytes:
    """Re-encode [start, end) of a video as a small mp4 (h264 + aac), e.g. for an embedding API that takes clips."""
    args = ["-ss", f"{start:.3f}", "-i", str(path), "-t", f"{max(0.1, end - start):.3f}", "-map", "0:v:0"]
    if has_audio:
        args += ["-map", "0:a:0", "-c:a", "aac", "-b:a", "96k", "-ac", "2"]
    args += [
        "-vf",
        f"scale='min({width},iw)':-2",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "28",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "frag_keyframe+empty_moov",
        "-f",
        "mp4",
        "-",
    ]
    return run_ffmpeg(args, path=path, what=f"cutting a clip {start:.1f}-{end:.1f} s")


def encode_wav(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono float samples as 16-bit PCM WAV bytes."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def encode_mp3(path: Path | str, start: float, end: float) -> bytes:
    """[start, end) of a file's audio as mp3 bytes (48 kHz mono, 128 kb/s)."""
    args = ["-ss", f"{start:.3f}", "-i", str(path), "-t", f"{max(0.1, end - start):.3f}", "-map", "0:a:0"]
    args += ["-vn", "-ac", "1", "-ar", "48000", "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "-"]
    return run_ffmpeg(args, path=path, what=f"encoding audio {start:.1f}-{end:.1f} s")


def extract_subtitles(path: Path | str) -> str:
    """The first embedded subtitle stream (mkv/mp4 text subtitles) as WebVTT text."""
    return run_ffmpeg(
        ["-i", str(path), "-map", "0:s:0", "-f", "webvtt", "-"], path=path, what="extracting subtitles"
    ).decode("utf-8", "replace")
