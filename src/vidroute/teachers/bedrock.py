"""Teacher over the Amazon Bedrock Converse API (boto3): Nova and Claude model ids, usual AWS config for auth."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from vidroute.errors import ConfigError, TeacherError
from vidroute.spec import TaskSpec
from vidroute.teachers.base import ChatResult, Teacher
from vidroute.teachers.retry import RetryPolicy, Verdict, call_with_retries, parse_retry_after

log = logging.getLogger(__name__)

STRUCTURED = ("auto", "json_schema", "off")
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailableException",
        "ModelTimeoutException",
        "InternalServerException",
        "ModelNotReadyException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


def classify_bedrock_error(exc: BaseException) -> Verdict:
    """Throttling, 5xx, model timeouts and dropped connections are retried; validation/auth errors are not."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code, status = err.get("Code", ""), int(meta.get("HTTPStatusCode") or 0)
        after = parse_retry_after((meta.get("HTTPHeaders") or {}).get("retry-after"))
        reason = f"{code or 'HTTP ' + str(status)}: {err.get('Message', '')}".strip()
        return Verdict(code in RETRYABLE_CODES or status == 429 or status >= 500, after, reason)
    if isinstance(exc, bx.ReadTimeoutError | bx.ConnectTimeoutError):
        return Verdict(True, reason=f"timeout: {exc}")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectionClosedError):
        return Verdict(True, reason=f"connection error: {exc}")
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return Verdict(False, reason=f"{exc}; configure AWS credentials (aws configure, AWS_PROFILE, or env vars)")
    return Verdict(False, reason=f"{type(exc).__name__}: {exc}")


def _bedrock_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without numeric bounds, which Bedrock structured output does not accept (validation checks them)."""
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            continue
        if isinstance(v, dict):
            v = _bedrock_schema(v) if k != "properties" else {p: _bedrock_schema(s) for p, s in v.items()}
        out[k] = v
    return out


class BedrockTeacher(Teacher):
    """Converse API teacher (e.g. `us.amazon.nova-premier-v1:0`, `us.anthropic.claude-haiku-4-5-20251001-v1:0`).

    Credentials and region come from the usual AWS chain (env vars, ~/.aws config, `profile`, instance roles).
    With `structured="auto"` the JSON schema is sent as Converse `outputConfig` structured output; a model that
    rejects it (ValidationException) is asked again without it, and that choice is remembered. Bedrock exposes no
    logprobs, so only JSON mode is available.
    """

    backend = "bedrock"

    def __init__(
        self,
        *,
        model_id: str,
        region: str | None = None,
        profile: str | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_retries: int = 4,
        retry_base_delay: float = 0.5,
        retry_max_delay: float = 20.0,
        structured: str = "auto",
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
        self.region = region
        self.profile = profile
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.structured = structured
        self._client: Any = None
        self._lock = threading.Lock()
        self._use_output_config: bool | None = None  # learnt in auto mode

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_retries=self.max_retries, base_delay=self.retry_base_delay, max_delay=self.retry_max_delay
        )

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore import exceptions as bx
                from botocore.config import Config

                if self.structured not in STRUCTURED:
                    raise ConfigError(f"structured={self.structured!r}; use one of {list(STRUCTURED)}")
                try:
                    session = boto3.Session(profile_name=self.profile, region_name=self.region)
                    # botocore's own retries are off: ours are uniform across backends and count in tests.
                    config = Config(
                        read_timeout=self.timeout,
                        connect_timeout=self.connect_timeout,
                        retries={"total_max_attempts": 1, "mode": "standard"},
                    )
                    self._client = session.client("bedrock-runtime", config=config)
                except bx.ProfileNotFound as exc:
                    raise ConfigError(f"AWS profile {self.profile!r} not found in your AWS config") from exc
                except bx.NoRegionError as exc:
                    raise ConfigError(
                        "no AWS region: set AWS_REGION, a region in your AWS profile, or ?region=us-east-1 in the spec"
                    ) from exc
            return self._client

    def _converse(self, request: dict[str, Any]) -> tuple[dict[str, Any], float]:
        client = self.client

        def once() -> tuple[dict[str, Any], float]:
            t0 = time.perf_counter()
            resp = client.converse(**request)
            return resp, (time.perf_counter() - t0) * 1000

        return call_with_retries(
            once, classify=classify_bedrock_error, policy=self.policy, what=f"bedrock {self.model_id}"
        )

    def chat(
        self,
        system: str,
        user: str,
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResult:
        request: dict[str, Any] = {
            "modelId": self.model_id,
            "messages": [{"role": "user", "content": [{"text": user}]}],
            "inferenceConfig": {
                "temperature": self.temperature if temperature is None else temperature,
                "maxTokens": self.max_tokens if max_tokens is None else max_tokens,
            },
        }
        if system:
            request["system"] = [{"text": system}]
        _ = self.client  # validates settings before deciding on structured output
        structured = (
            json_schema is not None
            and self.structured != "off"
            and (self.structured == "json_schema" or self._use_output_config is not False)
        )
        if structured:
            assert json_schema is not None
            output_config = {
                "textFormat": {
                    "type": "json_schema",
                    "structure": {
                        "jsonSchema": {"schema": json.dumps(_bedrock_schema(json_schema)), "name": "weights"}
                    },
                }
            }
            try:
                resp, latency = self._converse({**request, "outputConfig": output_config})
            except TeacherError as exc:
                if self.structured != "auto" or not _is_validation(exc):
                    raise
                log.info("bedrock %s rejected structured output (%s); asking without it", self.model_id, exc)
                resp, latency = self._converse(request)
                self._use_output_config = False
            else:
                self._use_output_config = True
        else:
            resp, latency = self._converse(request)
        return _parse_converse(resp, latency)


def _is_validation(exc: TeacherError) -> bool:
    from botocore.exceptions import ClientError

    cause = exc.__cause__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ValidationException"


def _parse_converse(resp: dict[str, Any], latency_ms: float) -> ChatResult:
    try:
        content = resp["output"]["message"]["content"]
    except (KeyError, TypeError) as exc:
        raise TeacherError(f"bedrock response has no output.message.content: {str(resp)[:300]}") from exc
    # Reasoning models add reasoningContent blocks; only text blocks are the answer.
    text = "".join(block["text"] for block in content if isinstance(block, dict) and "text" in block)
    if resp.get("stopReason") == "max_tokens":
        log.debug("bedrock answer cut at maxTokens: %r", text[-80:])
    usage = resp.get("usage") or {}
    return ChatResult(
        text=text,
        input_tokens=int(usage.get("inputTokens") or 0),
        output_tokens=int(usage.get("outputTokens") or 0),
        latency_ms=latency_ms,
    )
