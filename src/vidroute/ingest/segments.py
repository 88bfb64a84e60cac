"""Cut a timeline into segments: ffmpeg scene scores give candidate cuts, then min/target/max rules pick spans."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vidroute.errors import ConfigError, IngestError
from vidroute.ingest.media import run_ffmpeg

log = logging.getLogger(__name__)

_PTS = re.compile(r"pts_time:([0-9.eE+-]+)")
_SCORE = re.compile(r"lavfi\.scene_score=([0-9.eE+-]+)")


@dataclass(frozen=True)
class SceneScan:
    """Per-frame scene-change scores of a video, and how far decoding got."""

    times: list[float]  # presentation time of each decoded frame
    scores: list[float]  # ffmpeg's scene score of that frame against the previous one, in [0, 1]
    last_time: float  # time of the last decoded frame (less than the duration when the file is truncated)

    def cuts(self, threshold: float) -> list[float]:
        """Frame times whose scene score exceeds `threshold` (a hard cut starts there)."""
        return [t for t, s in zip(self.times, self.scores, strict=True) if s > threshold and t > 0]


def scan_scenes(path: Path | str, *, scale_width: int = 160, timeout: float | None = None) -> SceneScan:
    """Decode the first video stream once and read ffmpeg's scene score for every frame.

    Frames are scaled down first: the score compares whole-frame statistics, so small frames give the same cuts,
    faster. Printing every frame's score (not only those above a threshold) also tells how far decoding got.
    """
    vf = f"scale={scale_width}:-2,select='gte(scene\\,0)',metadata=print:key=lavfi.scene_score:file=-"
    out = run_ffmpeg(
        ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-vf", vf, "-f", "null", "-"],
        path=path,
        what="detecting scene changes",
        timeout=timeout,
    ).decode("utf-8", "replace")
    times: list[float] = []
    scores: list[float] = []
    for line in out.splitlines():
        m = _PTS.search(line)
        if m:
            times.append(float(m.group(1)))
            scores.append(0.0)
            continue
        m = _SCORE.search(line)
        if m and scores:
            scores[-1] = float(m.group(1))
    if not times:
        raise IngestError(f"{path}: no video frame could be decoded")
    return SceneScan(times=times, scores=scores, last_time=max(times))


def validate_lengths(min_seconds: float, target_seconds: float, max_seconds: float) -> None:
    """Lengths must allow a split of any long stretch into pieces that all respect the minimum."""
    if not 0 < min_seconds <= target_seconds <= max_seconds:
        raise ConfigError(
            f"segment lengths must satisfy 0 < min <= target <= max; got min={min_seconds}, "
            f"target={target_seconds}, max={max_seconds}"
        )
    if max_seconds < 2 * min_seconds:
        raise ConfigError(
            f"max segment length ({max_seconds} s) must be at least twice the minimum ({min_seconds} s), "
            "otherwise some stretches cannot be split; raise max or lower min"
        )


def plan_segments(
    duration: float,
    cuts: Sequence[float] = (),
    *,
    min_seconds: float = 4.0,
    target_seconds: float = 10.0,
    max_seconds: float = 15.0,
) -> list[tuple[float, float]]:
    """Contiguous spans covering [0, duration], each within [min, max] seconds, ending on cuts where possible.

    Greedy, left to right: from the current start, every cut that leaves a segment of [min, max] seconds and a
    remainder of 0 or at least `min` is a candidate (the file end too, when it is within `max`); the candidate
    closest to start + target wins. With no candidate the span is split at the target (pulled back so the
    remainder keeps the minimum). A file shorter than `min` is one segment.
    """
    validate_lengths(min_seconds, target_seconds, max_seconds)
    if duration <= 0:
        return []
    eps = 1e-6
    inner = sorted({round(c, 3) for c in cuts if eps < c < duration - eps})
    spans: list[tuple[float, float]] = []
    start = 0.0
    while duration - start > eps:
        left = duration - start
        if left < min_seconds + eps:  # only reachable for files shorter than `min`
            spans.append((start, duration))
            break
        candidates = [
            c
            for c in inner
            if start + min_seconds - eps <= c <= start + max_seconds + eps and duration - c >= min_seconds - eps
        ]
        if left <= max_seconds + eps:
            candidates.append(duration)
        if candidates:
            end = min(candidates, key=lambda c: (abs(c - start - target_seconds), c))
        else:
            end = min(start + target_seconds, duration - min_seconds)
        spans.append((start, end))
        start = end
    return [(round(s, 3), round(e, 3)) for s, e in spans]


def pauses_as_cuts(sentences: Sequence[tuple[float, float]]) -> list[float]:
    """Midpoints of the pauses between consecutive spoken sentences: natural cut points for audio-only files."""
    return [
        (prev_end + next_start) / 2.0
        for (_, prev_end), (next_start, _) in itertools.pairwise(sentences)
        if next_start >= prev_end
    ]
