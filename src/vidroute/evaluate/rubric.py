"""The reference system's 1–5 quality rubric: a deterministic scorer on the weights and an LLM judge.

Deterministic levels (our wording; checked from worst-case validity, then best to worst):

* **1** – the answer is unusable: not valid JSON / wrong keys / weights not summing to 1, or the mean absolute
  error (MAE) against the reference exceeds 0.30;
* **5** – every weight is within 0.05 of the reference;
* **4** – every weight is within 0.10 of the reference;
* **3** – the top signal agrees with the reference's (any of its tied top signals) and MAE is below 0.15;
* **2** – anything else: the top signal differs, or MAE is 0.15 or more.

Thresholds carry a 1e-9 tolerance so that 0.6 - 0.55 counts as "within 0.05". The published rubric also asks
for reasoning quality at levels 3–5; vidroute's students output no reasoning, so the deterministic scorer grades
the weights only. The LLM judge sees the editable rubric text and may weigh reasoning when an answer has one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidroute.errors import InvalidTeacherOutput, TeacherError
from vidroute.evaluate.metrics import dominant_match, to_matrix
from vidroute.records import Usage
from vidroute.spec import TaskSpec

log = logging.getLogger(__name__)

TOL = 1e-9
LEVEL5_MAX_DIFF = 0.05
LEVEL4_MAX_DIFF = 0.10
LEVEL3_MAE = 0.15
LEVEL1_MAE = 0.30


def rubric_levels(y_true: np.ndarray, y_pred: np.ndarray, valid: Sequence[bool] | None = None) -> np.ndarray:
    """Deterministic rubric level (1–5) per row of two (n, k) weight arrays; `valid[i] = False` marks an
    unparseable answer (level 1 whatever its row holds)."""
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 2:
        raise ValueError(f"expected two (n, k) arrays of equal shape, got {t.shape} and {p.shape}")
    diff = np.abs(t - p)
    max_diff, row_mae = diff.max(axis=1, initial=0.0), diff.mean(axis=1)
    same_top = dominant_match(t, p) if len(t) else np.zeros(0, dtype=bool)
    levels = np.full(len(t), 2, dtype=np.int64)
    levels[same_top & (row_mae < LEVEL3_MAE - TOL)] = 3
    levels[max_diff <= LEVEL4_MAX_DIFF + TOL] = 4
    levels[max_diff <= LEVEL5_MAX_DIFF + TOL] = 5
    levels[row_mae > LEVEL1_MAE + TOL] = 1
    if valid is not None:
        levels[~np.asarray(valid, dtype=bool)] = 1
    return levels


def rubric_level(reference: Mapping[str, float], candidate: Mapping[str, float] | None, signals: Sequence[str]) -> int:
    """Level for one answer; `candidate=None` (or missing keys) means an invalid answer.

    Example:
        >>> sig = ["visual", "audio", "transcription", "metadata"]
        >>> ref = {"visual": 0.6, "audio": 0.1, "transcription": 0.1, "metadata": 0.2}
        >>> rubric_level(ref, {"visual": 0.55, "audio": 0.1, "transcription": 0.15, "metadata": 0.2}, sig)
        5
        >>> rubric_level(ref, None, sig)
        1
    """
    if candidate is None or any(s not in candidate for s in signals):
        return 1
    t, p = to_matrix([reference], signals), to_matrix([candidate], signals)
    return int(rubric_levels(t, p)[0])


def rubric_level_text(reference: Mapping[str, float], answer: str, signals: Sequence[str]) -> int:
    """Level for a raw JSON answer (e.g. an LLM router's): parsed with the teacher's strict rules first."""
    from vidroute.teachers.base import parse_weights

    try:
        weights, _ = parse_weights(answer, list(signals))
    except InvalidTeacherOutput:
        return 1
    return rubric_level(reference, weights, signals)


# --- LLM judge -----------------------------------------------------------------------------------------

JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        # A length cap lets grammar-constrained local models close the string instead of rambling past max_tokens.
        "explanation": {"type": "string", "maxLength": 240},
    },
    "required": ["score", "explanation"],
    "additionalProperties": False,
}


def parse_judge(text: str) -> tuple[int, str]:
    """Strictly parse a judge's answer `{"score": <int 1..5>, "explanation": <str>}`.

    The object between the first `{` and the last `}` must hold exactly those two keys; the score must be a
    JSON integer (not 4.5, "4" or true). Anything else raises `InvalidTeacherOutput` keeping the raw text:
    a score is never guessed.

    Example:
        >>> parse_judge('{"score": 4, "explanation": "close"}')
        (4, 'close')
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise InvalidTeacherOutput("no JSON object in the judge's answer", raw=text)
    try:
        obj = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidTeacherOutput(f"judge answer is not valid JSON: {exc.msg}", raw=text) from exc
    if not isinstance(obj, dict):
        raise InvalidTeacherOutput("judge answer is not a JSON object", raw=text)
    if set(obj) != {"score", "explanation"}:
        raise InvalidTeacherOutput(f"judge answer has keys {sorted(obj)}, expected ['explanation', 'score']", raw=text)
    score, explanation = obj["score"], obj["explanation"]
    if isinstance(score, bool) or not isinstance(score, int):
        raise InvalidTeacherOutput(f"score {score!r} is not an integer", raw=text)
    if not 1 <= score <= 5:
        raise InvalidTeacherOutput(f"score {score} outside 1..5", raw=text)
    if not isinstance(explanation, str):
        raise InvalidTeacherOutput(f"explanation {explanation!r} is not a string", raw=text)
    return score, explanation


@dataclass
class JudgeVerdict:
    """One judged answer. `score is None` means every attempt failed; `error` says why (never guessed)."""

    score: int | None
    explanation: str = ""
    raw: str = ""
    attempts: int = 0
    error: str | None = None
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0


def _fmt_weights(weights: Mapping[str, float], signals: Sequence[str]) -> str:
    return json.dumps({s: round(float(weights[s]), 3) for s in signals})


class Judge:
    """Grade router answers against reference weights with any teacher backend and an editable rubric.

    Args:
        teacher: a `vidroute.teachers.base.Teacher` (only its `chat` is used).
        rubric: the judge's system prompt; `None` takes the spec's rendered rubric.
        signals: signal order for the JSON shown to the judge; `None` takes the spec's.
        max_attempts: how often an invalid answer is re-asked before it is recorded as a failure.
        max_tokens: the judge's output budget (a score and one sentence fit in ~60 tokens; a rambling answer
            is cut off, fails the strict parse and is re-asked).
    """

    def __init__(
        self,
        teacher: Any,
        *,
        rubric: str | None = None,
        signals: Sequence[str] | None = None,
        max_attempts: int = 3,
        max_tokens: int = 120,
    ) -> None:
        self.teacher = teacher
        self.rubric = rubric
        self.signals = signals
        self.max_attempts = max_attempts
        self.max_tokens = max_tokens

    def _spec(self) -> TaskSpec:
        spec = getattr(self.teacher, "spec", None)
        return spec if isinstance(spec, TaskSpec) else TaskSpec.load()

    @property
    def system_prompt(self) -> str:
        return self.rubric if self.rubric is not None else self._spec().render_rubric()

    def user_prompt(
        self, query: str, reference: Mapping[str, float], candidate: Mapping[str, Any] | str, signals: Sequence[str]
    ) -> str:
        if isinstance(candidate, str):
            answer = candidate
        else:
            body: dict[str, Any] = {s: round(float(candidate[s]), 3) for s in signals}
            if candidate.get("reasoning"):
                body["reasoning"] = candidate["reasoning"]
            answer = json.dumps(body)
        return f"Query: {query}\nReference weights: {_fmt_weights(reference, signals)}\nRouter answer: {answer}"

    def score(self, query: str, reference: Mapping[str, float], candidate: Mapping[str, Any] | str) -> JudgeVerdict:
        """Ask the judge; re-ask on invalid answers; return a verdict with `score=None` after all attempts fail."""
        import time

        signals = list(self.signals) if self.signals is not None else self._spec().signal_names
        user = self.user_prompt(query, reference, candidate, signals)
        usage, raw, error = Usage(), "", "no attempt made"
        t0 = time.perf_counter()
        for attempt in range(1, self.max_attempts + 1):
            try:
                res = self.teacher.chat(
                    self.system_prompt, user, json_schema=JUDGE_SCHEMA, temperature=0.0, max_tokens=self.max_tokens
                )
            except TeacherError as exc:
                # The backend already retried transport errors; do not hammer it further.
                error = f"backend failed: {exc}"
                return JudgeVerdict(
                    None,
                    raw=raw,
                    attempts=attempt,
                    error=error,
                    usage=usage,
                    latency_ms=(time.perf_counter() - t0) * 1000,
                )
            usage = usage + Usage(input_tokens=res.input_tokens, output_tokens=res.output_tokens)
            raw = res.text
            try:
                score, explanation = parse_judge(res.text)
            except InvalidTeacherOutput as exc:
                error = str(exc)
                log.debug("invalid judge answer (attempt %d): %s", attempt, exc)
                continue
            return JudgeVerdict(score, explanation, raw, attempt, None, usage, (time.perf_counter() - t0) * 1000)
        return JudgeVerdict(
            None,
            "",
            raw,
            self.max_attempts,
            f"{error} (after {self.max_attempts} attempts)",
            usage,
            (time.perf_counter() - t0) * 1000,
        )

    def score_many(
        self,
        items: Sequence[tuple[str, Mapping[str, float], Mapping[str, Any] | str]],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list[JudgeVerdict]:
        """Judge `(query, reference, candidate)` triples sequentially; `progress(i)` after each."""
        out = []
        for i, (q, ref, cand) in enumerate(items):
            out.append(self.score(q, ref, cand))
            if progress is not None:
                progress(i + 1)
        return out


def cohen_kappa(
    a: Sequence[int], b: Sequence[int], labels: Sequence[int] = (1, 2, 3, 4, 5), *, weights: str | None = None
) -> float:
    """Cohen's kappa between two raters; `weights="quadratic"` for the ordinal (weighted) variant."""
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.size == 0:
        return float("nan")
    idx = {lab: i for i, lab in enumerate(labels)}
    k = len(labels)
    obs = np.zeros((k, k))
    for x, y in zip(a_arr, b_arr, strict=True):
        obs[idx[int(x)], idx[int(y)]] += 1
    obs /= obs.sum()
    exp = np.outer(obs.sum(axis=1), obs.sum(axis=0))
    i, j = np.indices((k, k))
    w = (i - j) ** 2 / (k - 1) ** 2 if weights == "quadratic" else (i != j).astype(float)
    denom = (w * exp).sum()
    if denom == 0:
        return 1.0 if (w * obs).sum() == 0 else 0.0
    return float(1.0 - (w * obs).sum() / denom)


def judge_agreement(deterministic: Sequence[int], judge: Sequence[int | None]) -> dict[str, Any]:
    """How well the LLM judge agrees with the deterministic scorer, over rows the judge scored."""
    pairs = [(d, j) for d, j in zip(deterministic, judge, strict=True) if j is not None]
    n_failed = len(judge) - len(pairs)
    if not pairs:
        return {
            "n_judged": 0,
            "n_failed": n_failed,
            "judge_mean": None,
            "deterministic_mean": None,
            "exact": None,
            "within_1": None,
            "kappa": None,
            "kappa_quadratic": None,
        }
    d = np.array([p[0] for p in pairs])
    j = np.array([p[1] for p in pairs])
    return {
        "n_judged": len(pairs),
        "n_failed": n_failed,
        "judge_mean": float(j.mean()),
        "deterministic_mean": float(d.mean()),
        "exact": float((d == j).mean()),
        "within_1": float((np.abs(d - j) <= 1).mean()),
        "kappa": cohen_kappa(d, j),
        "kappa_quadratic": cohen_kappa(d, j, weights="quadratic"),
    }


def level_histogram(levels: Sequence[int | None]) -> dict[str, int]:
    """Counts per level 1..5 (and `failed` for None), keys as strings for JSON."""
    out = {str(k): 0 for k in range(1, 6)}
    failed = 0
    for lv in levels:
        if lv is None:
            failed += 1
        else:
            out[str(int(lv))] += 1
    if failed:
        out["failed"] = failed
    return out
