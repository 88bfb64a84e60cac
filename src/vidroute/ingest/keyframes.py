"""Extract JPEG keyframes of segments with ffmpeg (fast seek, scaled down) into a cache folder."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from vidroute.errors import IngestError
from vidroute.ingest.media import run_ffmpeg

log = logging.getLogger(__name__)


def frame_times(start: float, end: float, n: int) -> list[float]:
    """`n` times spread evenly inside [start, end): n=1 is the midpoint, n=3 the 1/6, 3/6 and 5/6 points."""
    if n < 1:
        return []
    step = (end - start) / n
    return [start + step * (i + 0.5) for i in range(n)]


def extract_frame(path: Path | str, time: float, out: Path, *, width: int = 320, quality: int = 4) -> Path | None:
    """Write the frame shown at `time` seconds as a JPEG `width` pixels wide; None when no frame is there."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.jpg")
    args = ["-ss", f"{max(0.0, time):.3f}", "-i", str(path), "-map", "0:v:0", "-frames:v", "1"]
    args += ["-vf", f"scale={width}:-2", "-q:v", str(quality), "-update", "1", "-y", str(tmp)]
    try:
        run_ffmpeg(args, path=path, what=f"extracting a keyframe at {time:.2f} s")
    except IngestError as exc:
        log.warning("%s", exc)
        tmp.unlink(missing_ok=True)
        return None
    if not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        return None
    tmp.replace(out)  # a reader never sees a half-written JPEG
    return out


def extract_keyframes(
    path: Path | str,
    spans: Sequence[tuple[float, float]],
    out_dir: Path,
    *,
    per_segment: int = 1,
    width: int = 320,
) -> list[list[Path]]:
    """For each span, `per_segment` keyframes named `<index:05d>_<k>.jpg` in `out_dir`; a failed seek falls back to
    the span's first frame and leaves the list empty only when neither exists."""
    result: list[list[Path]] = []
    for i, (start, end) in enumerate(spans):
        frames: list[Path] = []
        for k, t in enumerate(frame_times(start, end, per_segment)):
            got = extract_frame(path, t, out_dir / f"{i:05d}_{k}.jpg", width=width)
            if got is None and t > start:
                got = extract_frame(path, start, out_dir / f"{i:05d}_{k}.jpg", width=width)
            if got is not None:
                frames.append(got)
        result.append(frames)
    return result
