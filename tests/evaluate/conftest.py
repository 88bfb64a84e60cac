"""Fixtures for the evaluation tests: a small rule-based router (a real, if crude, router the evaluator can time)
and label records built from the Nova files or by hand."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from vidroute.records import LabelRecord, TeacherInfo

SIGNALS = ["visual", "audio", "transcription", "metadata"]

# Keyword cues -> the signal they push; enough structure for non-trivial metrics, cheap enough to time.
CUES = {
    "audio": ("sound", "music", "noise", "bark", "applause", "laugh", "siren", "rain", "song", "roar"),
    "transcription": ("says", "talk", "explain", "speech", "interview", "quote", "discuss", "argu", "mention"),
    "metadata": ("video", "videos", "202", "201", "19", "episode", "official", "trailer", "channel"),
}


@dataclass
class Routed:
    weights: dict[str, float]
    dominant: str
    confidence: float
    model: str = "keyword-test-router"
    latency_ms: float = 0.0
    escalated: bool = False


@dataclass
class KeywordRouter:
    """Scores each signal by cue words, softmaxes, and reports the top weight as confidence."""

    signals: list[str] = field(default_factory=lambda: list(SIGNALS))

    def predict_proba(self, queries: list[str]) -> np.ndarray:
        out = np.zeros((len(queries), len(self.signals)))
        for i, q in enumerate(queries):
            low = q.lower()
            score = np.array([1.0, 0.0, 0.0, 0.3])
            for j, s in enumerate(self.signals):
                score[j] += 1.5 * sum(c in low for c in CUES.get(s, ()))
            e = np.exp(score - score.max())
            out[i] = e / e.sum()
        return out

    def _result(self, p: np.ndarray, ms: float) -> Routed:
        j = int(p.argmax())
        return Routed(
            {s: float(v) for s, v in zip(self.signals, p, strict=True)}, self.signals[j], float(p[j]), latency_ms=ms
        )

    def route(self, query: str) -> Routed:
        t0 = time.perf_counter()
        p = self.predict_proba([query])[0]
        return self._result(p, (time.perf_counter() - t0) * 1000)

    def route_batch(self, queries: list[str]) -> list[Routed]:
        return [self._result(p, 0.0) for p in self.predict_proba(list(queries))]


def make_record(i: int, query: str, weights: dict[str, float], intent: str | None = None) -> LabelRecord:
    return LabelRecord(
        id=f"r{i}",
        query=query,
        intent=intent,
        weights=weights,
        teacher=TeacherInfo(backend="test", model_id="amazon.nova-premier-v1:0"),
    )


@pytest.fixture(scope="session")
def keyword_router() -> KeywordRouter:
    return KeywordRouter()


@pytest.fixture(scope="session")
def hand_records() -> list[LabelRecord]:
    rows = [
        ("a dog running on the beach", {"visual": 0.7, "audio": 0.1, "transcription": 0.0, "metadata": 0.2}, "visual"),
        ("dog barking loudly at night", {"visual": 0.2, "audio": 0.6, "transcription": 0.0, "metadata": 0.2}, "audio"),
        (
            "she says we choose to go",
            {"visual": 0.1, "audio": 0.0, "transcription": 0.7, "metadata": 0.2},
            "transcription",
        ),
        (
            "2019 final highlights video",
            {"visual": 0.3, "audio": 0.1, "transcription": 0.0, "metadata": 0.6},
            "metadata",
        ),
        (
            "crowd applause after the speech",
            {"visual": 0.2, "audio": 0.4, "transcription": 0.3, "metadata": 0.1},
            "mixed",
        ),
        ("red car at night", {"visual": 0.8, "audio": 0.1, "transcription": 0.0, "metadata": 0.1}, "visual"),
    ]
    return [make_record(i, q, w, intent) for i, (q, w, intent) in enumerate(rows)]


@pytest.fixture(scope="session")
def nova_dir(shared_dir):
    d = shared_dir / "nova"
    if not (d / "premier_labels.jsonl").is_file():
        pytest.skip(f"Nova label files not found in {d}")
    return d
