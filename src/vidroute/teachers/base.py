"""The one Teacher interface every LLM backend implements, plus strict validation of its weight outputs."""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from vidroute.errors import InvalidTeacherOutput
from vidroute.records import TeacherInfo, Usage
from vidroute.spec import TaskSpec

log = logging.getLogger(__name__)

SUM_TOLERANCE = 0.01


@dataclass
class ChatResult:
    """One raw completion from a backend."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    # For next-token mode: probability of each candidate first token, when the backend exposes logprobs.
    token_probs: dict[str, float] | None = None


@dataclass
class TeacherLabel:
    """A validated answer: weights over the spec's signals (sum exactly 1 after renormalising)."""

    weights: dict[str, float]
    reasoning: str | None
    raw: str
    usage: Usage
    latency_ms: float
    attempts: int
    mode: str = "json"
    extra: dict[str, Any] = field(default_factory=dict)


def weights_schema(signals: list[str]) -> dict[str, Any]:
    """JSON schema for structured output: exactly the signal keys (numbers in [0, 1]) and a reasoning string."""
    props: dict[str, Any] = {s: {"type": "number", "minimum": 0, "maximum": 1} for s in signals}
    props["reasoning"] = {"type": "string"}
    return {
        "type": "object",
        "properties": props,
        "required": [*signals, "reasoning"],
        "additionalProperties": False,
    }


def parse_weights(text: str, signals: list[str]) -> tuple[dict[str, float], str | None]:
    """Parse and validate a teacher's JSON answer; raise `InvalidTeacherOutput` (keeping `text`) on any flaw.

    Rules: the object between the first `{` and the last `}`; exactly the signal keys plus an optional
    `reasoning`; each weight a number in [0, 1]; sum 1 ± 0.01; then renormalised to sum exactly 1.

    Example:
        >>> parse_weights('{"a": 0.7, "b": 0.3}', ["a", "b"])
        ({'a': 0.7, 'b': 0.3}, None)
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise InvalidTeacherOutput("no JSON object in the answer", raw=text)
    try:
        obj = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidTeacherOutput(f"answer is not valid JSON: {exc.msg}", raw=text) from exc
    if not isinstance(obj, dict):
        raise InvalidTeacherOutput("answer is not a JSON object", raw=text)
    keys = set(obj) - {"reasoning"}
    if keys != set(signals):
        missing, extra = sorted(set(signals) - keys), sorted(keys - set(signals))
        raise InvalidTeacherOutput(f"wrong keys: missing {missing}, unexpected {extra}", raw=text)
    weights: dict[str, float] = {}
    for s in signals:
        v = obj[s]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InvalidTeacherOutput(f"weight {s!r} is not a number: {v!r}", raw=text)
        if not 0.0 <= float(v) <= 1.0:
            raise InvalidTeacherOutput(f"weight {s!r}={v} outside [0, 1]", raw=text)
        weights[s] = float(v)
    total = sum(weights.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise InvalidTeacherOutput(f"weights sum to {total:.3f}, not 1 ± {SUM_TOLERANCE}", raw=text)
    weights = {s: w / total for s, w in weights.items()}
    reasoning = obj.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, str):
        reasoning = str(reasoning)
    return weights, reasoning


class Teacher(ABC):
    """A labelling LLM. Backends implement `chat` (transport, with their own retries on 429/5xx/timeouts);
    `label` adds the task prompt, strict validation and re-asking on invalid answers.

    Constructor arguments are stored untouched; nothing is loaded until the first call.
    """

    backend: str = "abstract"
    # Re-asks after an invalid answer sample at least this hot: at temperature 0 they would repeat the same answer.
    retry_temperature: float = 0.7

    def __init__(
        self,
        *,
        model_id: str,
        spec: TaskSpec | None = None,
        temperature: float = 0.0,
        max_tokens: int = 200,
        max_attempts: int = 3,
        mode: str = "json",
    ) -> None:
        self.model_id = model_id
        self.spec = spec
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_attempts = max_attempts
        self.mode = mode

    # --- transport: implemented by each backend ---------------------------------------------------
    @abstractmethod
    def chat(
        self,
        system: str,
        user: str,
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResult:
        """One chat completion. Raises `TeacherError` once the backend's own retries are spent."""

    def next_token_probs(self, system: str, user: str, candidates: list[str]) -> ChatResult:
        """Probabilities of each candidate as the answer's first token (only backends with logprobs)."""
        raise NotImplementedError(f"{self.backend} backend has no next-token mode")

    def usd(self, input_tokens: int, output_tokens: int) -> float:
        from vidroute.teachers.pricing import cost_usd

        return cost_usd(self.model_id, input_tokens, output_tokens)

    # --- the task -----------------------------------------------------------------------------------
    @property
    def task(self) -> TaskSpec:
        return self.spec if self.spec is not None else TaskSpec.load()

    @property
    def system_prompt(self) -> str:
        if self.mode == "next_token":
            return self.task.render_next_token_prompt()
        return self.task.render_teacher_prompt()

    @property
    def info(self) -> TeacherInfo:
        return TeacherInfo(
            backend=self.backend,
            model_id=self.model_id,
            prompt_sha256=TaskSpec.sha256(self.system_prompt),
            temperature=self.temperature,
            mode=self.mode,
        )

    def label(self, query: str) -> TeacherLabel:
        """Weights for one query. Invalid answers are re-asked up to `max_attempts` times, then
        `InvalidTeacherOutput` is raised carrying the last raw answer."""
        signals = self.task.signal_names
        if self.mode == "next_token":
            return self._label_next_token(query, signals)
        usage = Usage()
        last_raw, last_err = "", "no attempt made"
        t0 = time.perf_counter()
        for attempt in range(1, self.max_attempts + 1):
            temp = self.temperature if attempt == 1 else max(self.temperature, self.retry_temperature)
            res = self.chat(self.system_prompt, query, json_schema=weights_schema(signals), temperature=temp)
            usage = usage + Usage(
                input_tokens=res.input_tokens,
                output_tokens=res.output_tokens,
                usd=self.usd(res.input_tokens, res.output_tokens),
            )
            try:
                weights, reasoning = parse_weights(res.text, signals)
            except InvalidTeacherOutput as exc:
                last_raw, last_err = res.text, str(exc)
                log.debug("invalid answer (attempt %d) for %r: %s", attempt, query, exc)
                continue
            return TeacherLabel(
                weights=weights,
                reasoning=reasoning,
                raw=res.text,
                usage=usage,
                latency_ms=(time.perf_counter() - t0) * 1000,
                attempts=attempt,
            )
        err = InvalidTeacherOutput(f"{last_err} (after {self.max_attempts} attempts)", raw=last_raw)
        err.usage = usage  # type: ignore[attr-defined]
        raise err

    def _label_next_token(self, query: str, signals: list[str]) -> TeacherLabel:
        t0 = time.perf_counter()
        res = self.next_token_probs(self.system_prompt, f"Query: {query}\nAnswer:", signals)
        probs = res.token_probs or {}
        total = sum(probs.get(s, 0.0) for s in signals)
        if total <= 0:
            raise InvalidTeacherOutput("no probability mass on any signal name", raw=res.text)
        weights = {s: probs.get(s, 0.0) / total for s in signals}
        usage = Usage(
            input_tokens=res.input_tokens,
            output_tokens=res.output_tokens,
            usd=self.usd(res.input_tokens, res.output_tokens),
        )
        return TeacherLabel(
            weights=weights,
            reasoning=None,
            raw=res.text,
            usage=usage,
            latency_ms=(time.perf_counter() - t0) * 1000,
            attempts=1,
            mode="next_token",
            extra={"mass_on_signals": total},
        )
