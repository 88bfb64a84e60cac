"""The deployable router: load a trained student, route queries to signal weights with a calibrated confidence,
and (optionally) escalate low-confidence queries to the teacher LLM (cascade)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import BaseModel

from vidroute.errors import ConfigError, DataFormatError, ModelError
from vidroute.students.encoder import DEFAULT_MAX_LENGTH, TextTokenizer, preprocess

if TYPE_CHECKING:  # pragma: no cover
    from vidroute.teachers.base import Teacher

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx", "onnx-fp32", "onnx-int8", "torch", "numpy")


class RouteResult(BaseModel):
    """One routing decision. `to_reference_json()` gives the reference system's four-key JSON."""

    weights: dict[str, float]  # sums to 1, keys = spec signals in order
    dominant: str
    confidence: float  # calibrated P(dominant == teacher's dominant); 1.0 when the teacher answered (escalated)
    model: str  # model id: folder name + student kind (+ "+teacher" when escalated)
    latency_ms: float
    escalated: bool = False  # True when the cascade asked the teacher

    def to_reference_json(self) -> dict[str, float]:
        """Only the signal weights, e.g. {"visual": .., "audio": .., "transcription": .., "metadata": ..}."""
        return {k: round(float(v), 4) for k, v in self.weights.items()}


class InferenceBackend(Protocol):
    """The narrow seam every student runtime implements: pre-processed texts in, (n, k) weights out."""

    name: str

    def run(self, texts: list[str]) -> np.ndarray: ...


class OnnxBackend:
    """onnxruntime session over the exported encoder+head graph (one intra-op thread: best single-query latency)."""

    def __init__(self, path: Path, tokenizer: TextTokenizer, *, threads: int = 1) -> None:
        from vidroute.students.onnx_export import ort_session

        self.name = f"onnx:{path.name}"
        self.tokenizer = tokenizer
        self.session = ort_session(path, threads=threads)

    def run(self, texts: list[str]) -> np.ndarray:
        from vidroute.students.onnx_export import run_session

        if len(texts) == 1:  # fast path: no sorting or scatter for the latency-critical single query
            ids, mask = self.tokenizer(texts)
            return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return run_session(self.session, self.tokenizer, texts)


class TorchBackend:
    """The torch network itself (no ONNX needed); slower, used when onnxruntime or the .onnx file is absent."""

    def __init__(self, model_dir: Path, card: dict[str, Any], tokenizer: TextTokenizer, *, threads: int = 1) -> None:
        from vidroute.errors import require

        torch = require("torch", "train")
        from vidroute.students.modeling import load_torch_student

        torch.set_num_threads(threads)
        self.name = "torch"
        self.tokenizer = tokenizer
        self.module = load_torch_student(model_dir, card)

    def run(self, texts: list[str]) -> np.ndarray:
        from vidroute.students.trainer import predict_module

        return predict_module(self.module, self.tokenizer, texts)


class StaticBackend:
    """numpy-only static-embedding student: tokenise, gather, weighted mean, MLP."""

    def __init__(self, model_dir: Path, tokenizer: TextTokenizer) -> None:
        from vidroute.students.static import StaticStudent

        self.name = "numpy"
        self.tokenizer = tokenizer
        self.model = StaticStudent.load(model_dir)

    def run(self, texts: list[str]) -> np.ndarray:
        return self.model.predict_proba(texts, self.tokenizer)


def _make_backend(model_dir: Path, card: dict[str, Any], backend: str, threads: int) -> InferenceBackend:
    from vidroute.students.onnx_export import INT8_FILE, ONNX_FILE

    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    kind = card["student"]
    max_length = int(card.get("params", {}).get("max_length", DEFAULT_MAX_LENGTH))
    tokenizer = TextTokenizer(model_dir, max_length=max_length)
    if kind == "static":
        if backend not in ("auto", "numpy"):
            raise ConfigError(f"a static student serves with numpy only, not {backend!r}")
        return StaticBackend(model_dir, tokenizer)
    if backend == "numpy":
        raise ConfigError(f"a {kind!r} student has no numpy backend; use auto, onnx or torch")
    if backend == "torch":
        return TorchBackend(model_dir, card, tokenizer, threads=threads)
    serving = card.get("serving", {})
    file = {"onnx-fp32": ONNX_FILE, "onnx-int8": INT8_FILE}.get(backend, serving.get("file") or ONNX_FILE)
    path = model_dir / file
    if path.suffix == ".onnx" and path.exists():
        try:
            return OnnxBackend(path, tokenizer, threads=threads)
        except ImportError as exc:
            if backend != "auto":
                raise ModelError(f"onnxruntime is not installed: pip install 'vidroute[train]' ({exc})") from exc
            log.info("onnxruntime missing; serving %s with torch", model_dir)
    elif backend != "auto":
        raise ModelError(f"{path} does not exist; run `vidroute export --model {model_dir}` first")
    return TorchBackend(model_dir, card, tokenizer, threads=threads)


class Router:
    """Route search queries to signal weights with a trained student; optionally cascade to a teacher.

    Example:
        router = Router.load("models/frozen")
        router.route("a dog barking at the mailman").to_reference_json()
        # {'visual': 0.31, 'audio': 0.52, 'transcription': 0.03, 'metadata': 0.14}
    """

    def __init__(
        self,
        *,
        backend: InferenceBackend,
        signals: list[str],
        calibrator,
        model_id: str,
        card: dict[str, Any] | None = None,
        teacher: Teacher | None = None,
        threshold: float | None = None,
        teacher_concurrency: int = 4,
    ) -> None:
        self.backend = backend
        self.signals = signals
        self.calibrator = calibrator
        self.model_id = model_id
        self.card = card or {}
        self.teacher = teacher
        self.threshold = threshold
        self.teacher_concurrency = teacher_concurrency

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        backend: str = "auto",
        teacher: Teacher | None = None,
        threshold: float | None = None,
        threads: int = 1,
    ) -> Router:
        """Load a model folder written by `train_student`. backend: auto (ONNX when exported, numpy for static,
        else torch), onnx, onnx-fp32, onnx-int8, torch or numpy. With `teacher` and `threshold`, queries whose
        confidence is below the threshold are answered by the teacher."""
        from vidroute.students.calibration import Calibrator
        from vidroute.students.card import read_card

        if threshold is not None and not 0.0 <= threshold <= 1.01:
            raise ConfigError(f"threshold={threshold} must be within [0, 1] (1.01 escalates everything)")
        if threshold is not None and teacher is None:
            raise ConfigError("a cascade threshold needs a teacher (Router.load(path, teacher=..., threshold=...))")
        model_dir = Path(path)
        card = read_card(model_dir)
        impl = _make_backend(model_dir, card, backend, threads)
        return cls(
            backend=impl,
            signals=list(card["signals"]),
            calibrator=Calibrator.load(model_dir),
            model_id=f"{model_dir.resolve().name}:{card['student']}",
            card=card,
            teacher=teacher,
            threshold=threshold,
        )

    # --- student only -------------------------------------------------------------------------------
    def _clean(self, queries: Sequence[str]) -> list[str]:
        if isinstance(queries, str):
            raise ConfigError("predict_proba/route_batch take a list of queries; use route() for one string")
        texts = []
        for i, q in enumerate(queries):
            t = preprocess(q) if isinstance(q, str) else ""
            if not t:
                raise DataFormatError(f"query {i} ({q!r}) is empty after removing @ and #; nothing to route")
            texts.append(t)
        return texts

    def predict_proba(self, queries: list[str]) -> np.ndarray:
        """(n, k) student weights in `self.signals` order, rows summing to 1 (no cascade)."""
        texts = self._clean(queries)
        if not texts:
            return np.zeros((0, len(self.signals)), dtype=np.float32)
        p = np.asarray(self.backend.run(texts), dtype=np.float64)
        return p / p.sum(1, keepdims=True)

    def confidence(self, weights: np.ndarray) -> np.ndarray:
        """Calibrated probability, per row, that the row's dominant signal is the teacher's."""
        return self.calibrator.predict(np.atleast_2d(weights))

    def _result(self, w: np.ndarray, conf: float, latency_ms: float, *, escalated: bool = False) -> RouteResult:
        weights = {s: float(v) for s, v in zip(self.signals, w, strict=True)}
        return RouteResult(
            weights=weights,
            dominant=self.signals[int(np.argmax(w))],
            confidence=float(conf),
            model=self.model_id + ("+teacher" if escalated else ""),
            latency_ms=latency_ms,
            escalated=escalated,
        )

    # --- cascade ------------------------------------------------------------------------------------
    def _should_escalate(self, conf: float) -> bool:
        return self.teacher is not None and self.threshold is not None and conf < self.threshold

    def _ask_teacher(self, text: str) -> np.ndarray | None:
        """Teacher weights in signal order, or None (logged) when the teacher fails or answers other signals."""
        assert self.teacher is not None
        try:
            label = self.teacher.label(text)
            if set(label.weights) != set(self.signals):
                raise ModelError(f"teacher answered signals {sorted(label.weights)}, router has {self.signals}")
            w = np.array([label.weights[s] for s in self.signals], dtype=np.float64)
            return w / w.sum()
        except Exception as exc:  # the cascade must never fail a query because the teacher did
            log.warning("teacher failed on %r (%s); returning the student's answer", text, exc)
            return None

    def route(self, query: str) -> RouteResult:
        """Weights, dominant signal and calibrated confidence for one query (teacher when below threshold)."""
        t0 = time.perf_counter()
        w = self.predict_proba([query])[0]
        conf = float(self.confidence(w)[0])
        if self._should_escalate(conf):
            tw = self._ask_teacher(preprocess(query))
            if tw is not None:
                return self._result(tw, 1.0, (time.perf_counter() - t0) * 1000, escalated=True)
        return self._result(w, conf, (time.perf_counter() - t0) * 1000)

    def route_batch(self, queries: list[str], *, batch_size: int = 64) -> list[RouteResult]:
        """Route many queries in padded batches; `latency_ms` is each query's share of the batch time (plus its
        own teacher call when escalated). Teacher calls run concurrently (`teacher_concurrency`)."""
        t0 = time.perf_counter()
        texts = self._clean(queries)
        if not texts:
            return []
        ws = np.concatenate([self.predict_proba(texts[s : s + batch_size]) for s in range(0, len(texts), batch_size)])
        confs = self.confidence(ws)
        share = (time.perf_counter() - t0) * 1000 / len(texts)
        out = [self._result(w, c, share) for w, c in zip(ws, confs, strict=True)]
        todo = [i for i, c in enumerate(confs) if self._should_escalate(float(c))]
        if todo:

            def ask(i: int) -> tuple[int, np.ndarray | None, float]:
                s = time.perf_counter()
                return i, self._ask_teacher(texts[i]), (time.perf_counter() - s) * 1000

            with ThreadPoolExecutor(max_workers=max(1, self.teacher_concurrency)) as pool:
                for i, tw, ms in pool.map(ask, todo):
                    if tw is not None:
                        out[i] = self._result(tw, 1.0, share + ms, escalated=True)
        return out


# --- cascade evaluation ---------------------------------------------------------------------------------
def _as_row(obj: Any, signals: list[str]) -> np.ndarray:
    w = obj.get("weights", obj) if isinstance(obj, Mapping) else getattr(obj, "weights", obj)
    if isinstance(w, Mapping):
        return np.array([float(w[s]) for s in signals], dtype=np.float64)
    return np.asarray(w, dtype=np.float64)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def cascade_curve(
    router: Router,
    teacher: Teacher | Mapping[str, Any],
    queries: list[str],
    refs: Sequence[Any] | np.ndarray,
    thresholds: Sequence[float],
) -> list[dict[str, Any]]:
    """Quality, escalation rate, latency and cost of the cascade at several confidence thresholds.

    `teacher` is a live `Teacher` (asked at most once per query, only for queries some threshold escalates) or a
    mapping query -> teacher answer (weights dict, LabelRecord or TeacherLabel; `latency_ms`/`usage.usd` are used
    when present). `refs` are reference weights (dicts, records or an (n, k) array). Student latency is measured
    per query with single-query routing. Returns one dict per threshold.
    """
    from vidroute.students.data import weight_metrics

    if len(queries) != len(refs) or not queries:
        raise ConfigError(f"cascade_curve needs as many refs as queries (got {len(queries)} and {len(refs)})")
    sig = router.signals
    ref = np.stack([_as_row(r, sig) for r in refs]) if not isinstance(refs, np.ndarray) else np.asarray(refs, float)
    p = router.predict_proba(queries)
    conf = router.confidence(p)
    student_ms = np.zeros(len(queries))
    queries = list(queries)
    for i, q in enumerate(queries[:1] + queries):  # the first call only warms up
        t0 = time.perf_counter()
        router.predict_proba([q])
        router.confidence(p[max(i - 1, 0)])
        if i:
            student_ms[i - 1] = (time.perf_counter() - t0) * 1000
    need = np.flatnonzero(conf < max(thresholds)) if len(thresholds) else np.array([], dtype=int)
    t_w = np.full_like(p, np.nan)
    t_ms = np.zeros(len(queries))
    t_usd = np.zeros(len(queries))
    for i in need:
        q = queries[i]
        if isinstance(teacher, Mapping):
            ans = teacher.get(q)
            if ans is None:
                continue
            t_w[i] = _as_row(ans, sig)
            t_ms[i] = float(_field(ans, "latency_ms") or 0.0)
            t_usd[i] = float(_field(_field(ans, "usage"), "usd") or 0.0)
        else:
            s = time.perf_counter()
            try:
                lab = teacher.label(preprocess(q))
                t_w[i] = _as_row(lab.weights, sig)
                t_usd[i] = float(lab.usage.usd)
            except Exception as exc:
                log.warning("teacher failed on %r in cascade_curve: %s", q, exc)
            t_ms[i] = (time.perf_counter() - s) * 1000
    rows = []
    for t in thresholds:
        esc = conf < t
        ok = esc & ~np.isnan(t_w).any(1)
        final = np.where(ok[:, None], np.nan_to_num(t_w), p)
        lat = student_ms + np.where(esc, t_ms, 0.0)
        m = weight_metrics(final, ref)
        rows.append(
            {
                "threshold": float(t),
                "escalation_rate": float(esc.mean()),
                "teacher_failures": int((esc & ~ok).sum()),
                **{k: m[k] for k in ("dominant_agreement", "mae", "kl", "rubric_mean", "rubric_5_frac")},
                "latency_mean_ms": float(lat.mean()),
                "latency_p50_ms": float(np.percentile(lat, 50)),
                "latency_p99_ms": float(np.percentile(lat, 99)),
                "usd_per_1k_queries": float(np.where(esc, t_usd, 0.0).sum() / len(queries) * 1000),
            }
        )
    return rows


__all__ = ["BACKENDS", "InferenceBackend", "RouteResult", "Router", "cascade_curve"]
