"""Ingest one media file into search segments: probe, segment by scene, keyframes, transcript, metadata, vectors."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vidroute.errors import ConfigError, DataFormatError, IngestError, VidrouteError
from vidroute.ingest.asr import (
    SAMPLE_RATE,
    Transcript,
    WhisperTranscriber,
    align_to_segments,
    sounds_for_segments,
    transcript_from_cues,
)
from vidroute.ingest.captions import find_caption_file, parse_captions, read_captions, write_captions
from vidroute.ingest.embedders.base import SIGNALS, Embedder, SegmentMedia
from vidroute.ingest.keyframes import extract_keyframes
from vidroute.ingest.media import (
    MEDIA_EXTENSIONS,
    MediaInfo,
    decode_audio,
    extract_subtitles,
    file_id,
    probe,
)
from vidroute.ingest.metadata import MediaMetadata, SegmentNote, load_metadata, metadata_text
from vidroute.ingest.segments import pauses_as_cuts, plan_segments, scan_scenes, validate_lengths
from vidroute.search.types import Segment

log = logging.getLogger(__name__)

StageCallback = Callable[[str], None]


def default_keyframe_dir() -> Path:
    """`$XDG_CACHE_HOME/vidroute/keyframes` (or `~/.cache/...`): where keyframes go when no folder is given."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "vidroute" / "keyframes"


class IngestConfig(BaseModel):
    """How files are cut, transcribed and described. Every field has a default that works offline."""

    model_config = ConfigDict(extra="forbid")

    # Segmenting: scene cuts (ffmpeg scene score above the threshold) chosen to give ~target-second segments.
    min_seconds: float = Field(4.0, gt=0)
    target_seconds: float = Field(10.0, gt=0)
    max_seconds: float = Field(15.0, gt=0)
    scene_threshold: float = Field(0.3, gt=0, lt=1)
    scene_scale_width: int = Field(160, ge=16)
    # Speech: existing captions first (same-stem .vtt/.srt, then an embedded subtitle stream), else Whisper.
    use_captions: bool = True
    asr: bool = True
    asr_model: str = "whisper-tiny.en"
    language: str | None = "en"
    asr_threads: int = Field(2, ge=1)
    vad_filter: bool = True
    context_seconds: float = Field(2.0, ge=0)
    sentence_extend_words: int = Field(20, ge=0)
    write_captions: bool = True  # save Whisper's transcript as <keyframe_dir>/<video_id>/captions.vtt
    # Keyframes: JPEGs at evenly spaced times inside each segment.
    keyframe_dir: Path | None = None
    keyframes_per_segment: int = Field(1, ge=1, le=8)
    keyframe_width: int = Field(320, ge=32)
    # Metadata: <stem>.json sidecar, a CSV listing many files, container tags, the file name.
    use_sidecar: bool = True
    metadata_csv: Path | None = None
    # A file whose decodable part is shorter than it claims is corrupt: rejected unless this is set.
    allow_truncated: bool = False

    @model_validator(mode="after")
    def _lengths(self) -> IngestConfig:
        try:
            validate_lengths(self.min_seconds, self.target_seconds, self.max_seconds)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    def keyframe_root(self) -> Path:
        return Path(self.keyframe_dir) if self.keyframe_dir is not None else default_keyframe_dir()

    def transcriber(self) -> WhisperTranscriber:
        return WhisperTranscriber(
            self.asr_model, language=self.language, cpu_threads=self.asr_threads, vad_filter=self.vad_filter
        )


def _check_complete(info: MediaInfo, decoded_until: float, what: str, cfg: IngestConfig) -> float:
    """The duration to index: the claimed one, or what decodes when the file is cut short (then an error)."""
    claimed = (info.video_duration if what == "video" else info.audio_duration) or info.duration
    tolerance = max(1.0, 0.1 * claimed)
    if decoded_until + tolerance >= claimed:
        return info.duration
    message = (
        f"{info.path}: truncated or corrupt: {what} decodes to {decoded_until:.1f} s but the file claims "
        f"{claimed:.1f} s"
    )
    if not cfg.allow_truncated:
        raise IngestError(message + " (re-encode or re-download it, or set allow_truncated to index the readable part)")
    log.warning("%s; indexing the readable part", message)
    return max(decoded_until, 0.1)


def _captions_transcript(path: Path, info: MediaInfo, cfg: IngestConfig) -> Transcript | None:
    caption_file = find_caption_file(path, cfg.language)
    if caption_file is not None:
        try:
            cues = read_captions(caption_file)
        except DataFormatError as exc:
            log.warning("ignoring unreadable captions: %s", exc)
        else:
            return transcript_from_cues(cues, source=f"captions:{caption_file.name}")
    if info.subtitle_streams:
        try:
            cues = parse_captions(extract_subtitles(path), source=f"{path} (embedded subtitles)")
        except (IngestError, DataFormatError) as exc:  # bitmap subtitles (PGS, DVB) cannot become text
            log.info("embedded subtitles not usable: %s", exc)
        else:
            if cues:
                return transcript_from_cues(cues, source="captions:embedded")
    return None


def _transcript(
    path: Path,
    info: MediaInfo,
    audio: np.ndarray | None,
    cfg: IngestConfig,
    asr: WhisperTranscriber | bool | None,
    meta: MediaMetadata,
) -> Transcript:
    if cfg.use_captions:
        from_captions = _captions_transcript(path, info, cfg)
        if from_captions is not None:
            return from_captions
    if asr is False or not cfg.asr or audio is None:
        return Transcript(words=[], source="")
    transcriber = asr if isinstance(asr, WhisperTranscriber) else cfg.transcriber()
    if meta.language and transcriber.language not in (None, meta.language):
        log.warning(
            "%s: the sidecar says language %r but speech-to-text runs in %r; set asr_model/language to match",
            path,
            meta.language,
            transcriber.language,
        )
    return transcriber.transcribe(audio)


def _join(texts: Iterable[str]) -> str:
    return ". ".join(dict.fromkeys(t.strip().rstrip(".") for t in texts if t and t.strip()))


def ingest_file(
    path: Path | str,
    *,
    embedders: Mapping[str, Embedder | None] | None = None,
    config: IngestConfig | None = None,
    asr: WhisperTranscriber | bool | None = None,
    on_stage: StageCallback | None = None,
    video_id: str | None = None,
) -> list[Segment]:
    """Cut `path` into segments with transcript, metadata, keyframes and one vector per embedder signal.

    Args:
        path: a video (mp4, mkv, webm, mov, ...) or audio file.
        embedders: signal -> Embedder; None builds the offline default (`build_embedders()`), `{}` embeds nothing.
        config: an IngestConfig (defaults when None).
        asr: a shared WhisperTranscriber, False to skip speech-to-text, None to build one from `config`.
        on_stage: called with the name of each step as it starts ("probe", "scenes", "asr", "embed:visual", ...).
        video_id: the file's `media.file_id`, when the caller has already hashed it (saves reading it twice).

    Returns the segments in time order; nothing is written except keyframes (and Whisper captions). Raises
    IngestError for unreadable, empty or truncated files, so a caller can report and skip them.
    """
    cfg = config or IngestConfig()
    path = Path(path)
    stage = on_stage or (lambda _name: None)
    if embedders is None:
        from vidroute.ingest.embedders import build_embedders

        embedders = build_embedders()
    unknown = sorted(set(embedders) - set(SIGNALS))
    if unknown:
        raise ConfigError(f"embedders for unknown signals {unknown}; expected {list(SIGNALS)}")

    stage("probe")
    info = probe(path)
    video_id = video_id or file_id(path)
    meta = load_metadata(path, tags=info.tags, csv_path=cfg.metadata_csv, use_sidecar=cfg.use_sidecar)
    duration = info.duration

    audio: np.ndarray | None = None
    has_audio = info.has_audio
    if has_audio:
        stage("audio")
        try:
            audio = decode_audio(path, sample_rate=SAMPLE_RATE)
        except IngestError as exc:
            if not info.has_video:
                raise
            log.warning("%s; indexing the video without its audio", exc)  # e.g. an unsupported audio codec
            has_audio = False
        if audio is not None and not info.has_video:
            duration = _check_complete(info, audio.size / SAMPLE_RATE, "audio", cfg)
    cuts: list[float] = []
    if info.has_video:
        stage("scenes")
        scan = scan_scenes(path, scale_width=cfg.scene_scale_width)
        frame_step = 1.0 / info.fps if info.fps > 0 else 0.0
        duration = _check_complete(info, scan.last_time + frame_step, "video", cfg)
        cuts = scan.cuts(cfg.scene_threshold)

    stage("asr")
    transcript = _transcript(path, info, audio, cfg, asr, meta)
    if not info.has_video:
        cuts = pauses_as_cuts(transcript.sentences())
    spans = plan_segments(
        duration,
        cuts,
        min_seconds=cfg.min_seconds,
        target_seconds=cfg.target_seconds,
        max_seconds=cfg.max_seconds,
    )
    texts = align_to_segments(
        transcript.words, spans, context_seconds=cfg.context_seconds, extend_words=cfg.sentence_extend_words
    )
    sounds = sounds_for_segments(transcript.sounds, spans)
    out_dir = cfg.keyframe_root() / video_id
    if cfg.write_captions and transcript.source.startswith("asr:") and transcript.cues:
        write_captions(transcript.cues, out_dir / "captions.vtt")

    frames: list[list[Path]] = [[] for _ in spans]
    if info.has_video:
        stage("keyframes")
        frames = extract_keyframes(
            path, spans, out_dir, per_segment=cfg.keyframes_per_segment, width=cfg.keyframe_width
        )

    notes: list[list[SegmentNote]] = [meta.notes_for(s, e) for s, e in spans]
    media = [
        SegmentMedia(
            path=path,
            start=s,
            end=e,
            has_video=info.has_video,
            has_audio=has_audio,
            transcript=texts[i],
            metadata_text=metadata_text(meta, notes=notes[i]),
            visual_text=_join(n.visual for n in notes[i]),
            audio_text=_join([*(n.audio for n in notes[i]), sounds[i]]),
            keyframes=frames[i],
        )
        for i, (s, e) in enumerate(spans)
    ]
    vectors: dict[str, list[np.ndarray | None]] = {}
    for signal in SIGNALS:  # visual before audio: Nova returns both from one clip call
        if signal not in embedders:
            continue
        if embedders[signal] is None:  # a signal the caller keeps without an embedder: present, empty
            vectors[signal] = [None] * len(media)
            continue
        stage(f"embed:{signal}")
        got = embedders[signal].embed_segments(media)
        if len(got) != len(media):
            raise IngestError(f"{path}: the {signal} embedder returned {len(got)} vectors for {len(media)}")
        vectors[signal] = got

    segments: list[Segment] = []
    for i, (s, e) in enumerate(spans):
        people = list(dict.fromkeys([*meta.people, *(p for n in notes[i] for p in n.people)]))
        tags = list(dict.fromkeys([*meta.tags, *(t for n in notes[i] for t in n.tags)]))
        kf = frames[i]
        segments.append(
            Segment(
                segment_id=f"{video_id}:{i:05d}",
                video_id=video_id,
                path=str(path),
                start=s,
                end=e,
                transcript=texts[i],
                title=meta.title,
                description=_join(n.description for n in notes[i]) or meta.description,
                people=people,
                genre=meta.genre,
                date=meta.date,
                tags=tags,
                keyframe=str(kf[len(kf) // 2]) if kf else None,
                vectors={
                    sig: (None if vecs[i] is None else np.asarray(vecs[i], dtype=np.float32).tolist())
                    for sig, vecs in vectors.items()
                },
            )
        )
    log.info(
        "%s: %d segments, %.1f s, transcript from %s", path, len(segments), duration, transcript.source or "nothing"
    )
    return segments


def iter_media_files(paths: Iterable[Path | str], *, recursive: bool = True) -> list[Path]:
    """Files named directly, plus media files (by extension) inside named folders, sorted, without duplicates."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found += sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in MEDIA_EXTENSIONS)
        else:
            found.append(p)
    return list(dict.fromkeys(found))


@dataclass
class IngestOutcome:
    """One file's result in a batch: its segments, or the error that made it skipped."""

    path: Path
    segments: list[Segment] | None
    error: str | None
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


def ingest_paths(
    paths: Iterable[Path | str],
    *,
    embedders: Mapping[str, Embedder] | None = None,
    config: IngestConfig | None = None,
    asr: WhisperTranscriber | bool | None = None,
    on_stage: Callable[[Path, str], None] | None = None,
) -> Iterator[IngestOutcome]:
    """Ingest many files lazily; a file that fails is reported in its outcome and the batch goes on."""
    cfg = config or IngestConfig()
    if embedders is None:
        from vidroute.ingest.embedders import build_embedders

        embedders = build_embedders()
    if asr is None and cfg.asr:
        asr = cfg.transcriber()  # one model load for the whole batch
    for path in iter_media_files(paths):
        t0 = time.perf_counter()
        callback = (lambda name, _p=path: on_stage(_p, name)) if on_stage else None
        try:
            segments = ingest_file(path, embedders=embedders, config=cfg, asr=asr, on_stage=callback)
        except (VidrouteError, OSError) as exc:  # a bad file must not stop the batch; bugs still raise
            log.warning("skipped %s: %s", path, exc)
            yield IngestOutcome(path, None, str(exc), time.perf_counter() - t0)
        else:
            yield IngestOutcome(path, segments, None, time.perf_counter() - t0)
