"""Teacher over any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp) via the openai SDK."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

from vidroute.errors import ConfigError, TeacherError
from vidroute.spec import TaskSpec
from vidroute.teachers import chatfmt
from vidroute.teachers.base import ChatResult, Teacher
from vidroute.teachers.retry import RetryPolicy, Verdict, call_with_retries, parse_retry_after

log = logging.getLogger(__name__)

STRUCTURED = ("auto", *chatfmt.FORMATS)
# Local servers ignore the key, but the SDK refuses an empty one.
_PLACEHOLDER_KEY = "not-needed"


def classify_openai_error(exc: BaseException) -> Verdict:
    """429, 408, 409, 5xx, timeouts, connection drops and malformed 2xx bodies are retried; other 4xx are not."""
    import openai

    if isinstance(exc, chatfmt.MalformedResponse):
        return Verdict(True, reason=f"malformed response: {exc}")
    if isinstance(exc, openai.APITimeoutError):
        return Verdict(True, reason="request timed out")
    if isinstance(exc, openai.APIConnectionError):
        return Verdict(True, reason=f"connection error: {exc}")
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        headers = exc.response.headers if exc.response is not None else {}
        after = parse_retry_after(headers.get("retry-after"))
        ms = headers.get("retry-after-ms")
        if after is None and ms:
            try:
                after = float(ms) / 1000
            except ValueError:
                after = None
        reason = f"HTTP {code}: {_short(exc)}"
        return Verdict(code in (408, 409, 429) or code >= 500, after, reason)
    return Verdict(False, reason=f"{type(exc).__name__}: {exc}")


def _short(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        return str(msg)[:300]
    return str(exc)[:300]


class OpenAICompatTeacher(Teacher):
    """Chat completions against `base_url` (None: api.openai.com).

    JSON mode sends `response_format` json_schema (strict); with `structured="auto"` a server that rejects it
    with HTTP 400 is retried with `json_object`, then with no response_format, and the level that worked is
    remembered for this instance. Next-token mode needs a server that returns `logprobs`/`top_logprobs`
    (OpenAI, vLLM and llama.cpp do; Ollama's OpenAI endpoint may not).

    Example:
        >>> t = OpenAICompatTeacher(model_id="gpt-4o-mini")                       # OpenAI, key from OPENAI_API_KEY
        >>> t = OpenAICompatTeacher(model_id="qwen", base_url="http://127.0.0.1:8080/v1")  # local llama.cpp
    """

    backend = "openai"

    def __init__(
        self,
        *,
        model_id: str,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 4,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 20.0,
        structured: str = "auto",
        top_logprobs: int = 20,
        spec: TaskSpec | None = None,
        temperature: float = 0.0,
        max_tokens: int = 200,
        max_attempts: int = 3,
        mode: str = "json",
    ) -> None:
        super().__init__(
            model_id=model_id,
            spec=spec,
            temperature=temperature,
            max_tokens=max_tokens,
            max_attempts=max_attempts,
            mode=mode,
        )
        self.base_url = base_url
        self.api_key = api_key
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.structured = structured
        self.top_logprobs = top_logprobs
        self._client: Any = None
        self._lock = threading.Lock()
        self._format: str | None = None  # the response_format level that last worked (auto mode)
        self._token_param = "max_tokens"

    # --- plumbing -----------------------------------------------------------------------------------
    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries, base_delay=self.retry_base_delay, max_delay=self.retry_max_delay
        )

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                if self.structured not in STRUCTURED:
                    raise ConfigError(f"structured={self.structured!r}; use one of {list(STRUCTURED)}")
                key = self.api_key or os.environ.get(self.api_key_env)
                if not key:
                    if self.base_url is None or self.api_key_env != "OPENAI_API_KEY":
                        raise ConfigError(
                            f"no API key: set ${self.api_key_env} (or pass ?api_key_env=NAME in the teacher spec)"
                        )
                    key = _PLACEHOLDER_KEY
                self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout, max_retries=0)
            return self._client

    def _post(self, request: dict[str, Any]) -> tuple[dict[str, Any], ChatResult]:
        """One HTTP round trip with our retries; returns the decoded body and its parsed result."""
        client = self.client

        def once() -> tuple[dict[str, Any], ChatResult]:
            t0 = time.perf_counter()
            raw = client.chat.completions.with_raw_response.create(**request)
            latency = (time.perf_counter() - t0) * 1000
            text = raw.http_response.text
            try:
                body = json.loads(text)
            except json.JSONDecodeError as exc:
                raise chatfmt.MalformedResponse(f"body is not JSON: {text[:200]!r}") from exc
            return body, chatfmt.parse_completion(body, latency)

        where = self.base_url or "api.openai.com"
        return call_with_retries(once, classify=classify_openai_error, policy=self.policy, what=f"openai {where}")

    def _request(self, system: str, user: str, temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "messages": chatfmt.messages(system, user),
            "temperature": self.temperature if temperature is None else temperature,
            self._token_param: self.max_tokens if max_tokens is None else max_tokens,
        }

    def _send(self, request: dict[str, Any]) -> tuple[dict[str, Any], ChatResult]:
        """`_post`, switching to `max_completion_tokens` once if the server asks for it (newer OpenAI models)."""
        try:
            return self._post(request)
        except TeacherError as exc:
            if self._token_param == "max_tokens" and "max_completion_tokens" in str(exc) and "max_tokens" in request:
                self._token_param = "max_completion_tokens"
                request = dict(request)
                request["max_completion_tokens"] = request.pop("max_tokens")
                return self._post(request)
            raise

    # --- Teacher API --------------------------------------------------------------------------------
    def chat(
        self,
        system: str,
        user: str,
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResult:
        base = self._request(system, user, temperature, max_tokens)
        _ = self.client  # validates `structured` before it is used below
        if json_schema is None:
            levels = ["off"]
        elif self.structured == "auto":
            start = chatfmt.FORMATS.index(self._format or "json_schema")
            levels = list(chatfmt.FORMATS[start:])
        else:
            levels = [self.structured]
        for i, fmt in enumerate(levels):
            request = {**base, **chatfmt.response_format(fmt, json_schema)}
            try:
                _, result = self._send(request)
            except TeacherError as exc:
                if i + 1 < len(levels) and _is_bad_request(exc):
                    log.info("server rejected response_format=%s (%s); trying %s", fmt, exc, levels[i + 1])
                    continue
                raise
            if json_schema is not None and self.structured == "auto" and self._format != fmt:
                self._format = fmt
            return result
        raise AssertionError("unreachable: the last level re-raises")

    @property
    def response_format_used(self) -> str | None:
        """The response_format level the server accepted last (auto mode), for reports."""
        return self._format

    def next_token_probs(self, system: str, user: str, candidates: list[str]) -> ChatResult:
        request = self._request(system, user, 0.0, 1)
        request.update(logprobs=True, top_logprobs=self.top_logprobs)
        body, res = self._send(request)
        lps = chatfmt.top_logprobs(body)
        if lps is None:
            raise TeacherError(
                f"{self.base_url or 'api.openai.com'} returned no logprobs for {self.model_id!r}; "
                "next-token mode needs a server that supports logprobs/top_logprobs (use mode=json otherwise)"
            )
        res.token_probs = chatfmt.candidate_probs(lps, candidates)
        res.text = chatfmt.next_token_text(res.text, lps)
        return res


def _is_bad_request(exc: TeacherError) -> bool:
    import openai

    return isinstance(exc.__cause__, openai.BadRequestError | openai.UnprocessableEntityError)
