"""Ingest speed: Whisper real-time factor and seconds of ingest per minute of media (`python -m vidroute.ingest.bench`).

Prints one JSON object. WER is against a reference transcript JSON when one sits beside the audio
(`<stem>.whisper-medium.json`, as in ../shared/data/media), with simple normalisation (lowercase, no punctuation).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from vidroute.ingest.asr import SAMPLE_RATE, WhisperTranscriber
from vidroute.ingest.media import decode_audio, probe
from vidroute.ingest.pipeline import IngestConfig, ingest_file


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: list[str], hypothesis: list[str]) -> float:
    """Levenshtein distance over words divided by the reference length."""
    prev = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        cur = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(1, len(reference))


def bench_asr(path: Path, *, threads: int) -> dict[str, object]:
    audio = decode_audio(path, sample_rate=SAMPLE_RATE)
    seconds = audio.size / SAMPLE_RATE
    transcriber = WhisperTranscriber(cpu_threads=threads)
    transcriber.transcribe(audio[: SAMPLE_RATE * 2])  # load the model outside the timing
    t0 = time.perf_counter()
    transcript = transcriber.transcribe(audio)
    elapsed = time.perf_counter() - t0
    result: dict[str, object] = {
        "file": path.name,
        "audio_seconds": round(seconds, 1),
        "asr_seconds": round(elapsed, 2),
        "rtf": round(elapsed / seconds, 3),
        "words": len(transcript.words),
        "threads": threads,
    }
    ref_file = path.with_name(path.stem + ".whisper-medium.json")
    if ref_file.exists():
        ref = json.loads(ref_file.read_text())
        ref_text = " ".join(s.get("text", "") for s in ref.get("segments", []))
        hyp_text = " ".join(w.text for w in transcript.words)
        result["wer_vs_whisper_medium"] = round(word_error_rate(_tokens(ref_text), _tokens(hyp_text)), 3)
    return result


def bench_ingest(path: Path, *, threads: int, repeats: int) -> dict[str, object]:
    from vidroute.ingest.embedders import build_embedders

    embedders = build_embedders()
    transcriber = WhisperTranscriber(cpu_threads=threads)
    cfg = IngestConfig(asr_threads=threads)
    ingest_file(path, embedders=embedders, config=cfg, asr=transcriber)  # warm: models loaded
    duration = probe(path).duration
    stages: dict[str, float] = {}
    best = float("inf")
    for _ in range(repeats):
        marks: list[tuple[str, float]] = []
        t0 = time.perf_counter()
        ingest_file(
            path,
            embedders=embedders,
            config=cfg,
            asr=transcriber,
            on_stage=lambda s, m=marks: m.append((s, time.perf_counter())),
        )
        total = time.perf_counter() - t0
        if total < best:
            best = total
            ends = [t for _, t in marks[1:]] + [t0 + total]
            stages = {name: round(end - t, 3) for (name, t), end in zip(marks, ends, strict=True)}
    return {
        "file": path.name,
        "media_seconds": round(duration, 2),
        "ingest_seconds": round(best, 2),
        "ingest_seconds_per_media_minute": round(best / duration * 60, 1),
        "stages": stages,
        "threads": threads,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--asr", type=Path, help="audio/video file to time Whisper on")
    ap.add_argument("--ingest", type=Path, nargs="*", default=[], help="files to time the whole ingest on")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    out: dict[str, object] = {}
    if args.asr:
        out["asr"] = bench_asr(args.asr, threads=args.threads)
    out["ingest"] = [bench_ingest(p, threads=args.threads, repeats=args.repeats) for p in args.ingest]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
