"""Read and write WebVTT and SRT captions; find a media file's caption sidecar."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vidroute.errors import DataFormatError

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")
_TAG = re.compile(r"<[^>]*>")  # <i>, <u>, <v Speaker>, <c.yellow>, <00:01.000> karaoke stamps
_ASS = re.compile(r"\{\\[^}]*\}")  # {\an8} positioning that SRT files often carry
# A whole line in brackets, or music marks, is a description of sound, not speech ([door slams], (applause), ♪).
_SOUND = re.compile(r"^\s*(\[[^\]]*\]|\([^)]*\)|[♪♫#]+.*)\s*$")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str  # spoken text, markup removed; may be "" when the cue only describes sounds
    sounds: tuple[str, ...] = ()  # sound descriptions found in the cue ("door slams", "music")


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000.0


def _clean(lines: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    speech: list[str] = []
    sounds: list[str] = []
    for raw in lines:
        line = html.unescape(_ASS.sub("", _TAG.sub("", raw))).strip()
        if not line:
            continue
        if _SOUND.match(line):
            label = line.strip("[]()♪♫# ").strip()
            if label:
                sounds.append(label)
            elif "♪" in line or "♫" in line:
                sounds.append("music")
            continue
        # Inline sound notes inside speech ("[laughs] I know") go to sounds too.
        for note in re.findall(r"\[([^\]]+)\]", line):
            sounds.append(note.strip())
        line = re.sub(r"\[[^\]]*\]", "", line)
        line = re.sub(r"^\s*-\s+", "", line)  # dialogue dashes at line start
        line = re.sub(r"\s+", " ", line).strip()
        if line:
            speech.append(line)
    return " ".join(speech), tuple(sounds)


def parse_captions(text: str, *, source: str = "<captions>") -> list[Cue]:
    """Parse WebVTT or SRT text into cues sorted by start time; blocks without a timing line (NOTE, STYLE,
    REGION, headers) are skipped. Raises DataFormatError when nothing parses."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    cues: list[Cue] = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.split("\n")
        for j, line in enumerate(lines):
            m = _TIMING.match(line)
            if m:
                g = m.groups()
                start, end = _seconds(*g[0:4]), _seconds(*g[4:8])
                if end < start:
                    raise DataFormatError(f"{source}: cue ends before it starts: {line.strip()!r}")
                spoken, sounds = _clean(lines[j + 1 :])
                if spoken or sounds:
                    cues.append(Cue(start, end, spoken, sounds))
                break
    if not cues and text.strip() and "-->" in text:
        raise DataFormatError(f"{source}: no caption cue could be parsed")
    return sorted(cues, key=lambda c: (c.start, c.end))


def read_captions(path: Path | str) -> list[Cue]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DataFormatError(f"{path}: cannot read captions ({exc})") from exc
    return parse_captions(text, source=str(path))


def _stamp(t: float, sep: str) -> str:
    ms = round(max(0.0, t) * 1000)
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _cue_text(cue: Cue) -> str:
    parts = [f"[{s}]" for s in cue.sounds]
    if cue.text:
        parts.append(cue.text)
    return "\n".join(parts)


def to_vtt(cues: Sequence[Cue]) -> str:
    blocks = ["WEBVTT\n"]
    for c in cues:
        blocks.append(f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{_cue_text(c)}\n")
    return "\n".join(blocks)


def to_srt(cues: Sequence[Cue]) -> str:
    blocks = []
    for i, c in enumerate(cues, 1):
        blocks.append(f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{_cue_text(c)}\n")
    return "\n".join(blocks)


def write_captions(cues: Sequence[Cue], path: Path | str) -> Path:
    """Write `.vtt` or `.srt` (chosen by the suffix) atomically."""
    path = Path(path)
    if path.suffix.lower() not in (".vtt", ".srt"):
        raise DataFormatError(f"{path}: caption files must end in .vtt or .srt")
    body = to_vtt(cues) if path.suffix.lower() == ".vtt" else to_srt(cues)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(body, encoding="utf-8")
    tmp.replace(path)
    return path


def find_caption_file(media: Path, language: str | None = None) -> Path | None:
    """`<stem>.vtt`/`.srt` beside the media file, preferring `<stem>.<language>.vtt` when a language is given."""
    names: list[str] = []
    if language:
        names += [f"{media.stem}.{language}.vtt", f"{media.stem}.{language}.srt"]
    names += [f"{media.stem}.vtt", f"{media.stem}.srt"]
    for name in names:
        candidate = media.with_name(name)
        if candidate.is_file():
            return candidate
    return None
