"""Ingest stage: media files -> segments (scenes, keyframes, transcript, metadata) with one vector per signal."""

from __future__ import annotations

from vidroute.ingest.asr import Transcript, WhisperTranscriber, Word, align_to_segments
from vidroute.ingest.captions import Cue, parse_captions, read_captions, write_captions
from vidroute.ingest.demo import make_demo_clips
from vidroute.ingest.embedders import (
    DEFAULT_SPECS,
    SIGNALS,
    Embedder,
    SegmentMedia,
    build_embedder,
    build_embedders,
    parse_specs,
)
from vidroute.ingest.media import MEDIA_EXTENSIONS, MediaInfo, probe
from vidroute.ingest.metadata import MediaMetadata, SegmentNote, load_metadata
from vidroute.ingest.pipeline import (
    IngestConfig,
    IngestOutcome,
    default_keyframe_dir,
    ingest_file,
    ingest_paths,
    iter_media_files,
)
from vidroute.ingest.segments import plan_segments, scan_scenes

__all__ = [
    "DEFAULT_SPECS",
    "MEDIA_EXTENSIONS",
    "SIGNALS",
    "Cue",
    "Embedder",
    "IngestConfig",
    "IngestOutcome",
    "MediaInfo",
    "MediaMetadata",
    "SegmentMedia",
    "SegmentNote",
    "Transcript",
    "WhisperTranscriber",
    "Word",
    "align_to_segments",
    "build_embedder",
    "build_embedders",
    "default_keyframe_dir",
    "ingest_file",
    "ingest_paths",
    "iter_media_files",
    "load_metadata",
    "make_demo_clips",
    "parse_captions",
    "parse_specs",
    "plan_segments",
    "probe",
    "read_captions",
    "scan_scenes",
    "write_captions",
]
