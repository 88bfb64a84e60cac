"""Teacher backends behind one interface, and `load_teacher(spec)` to build one from a spec string.

Spec grammar (query parameters optional; keyword overrides win over them):

    gguf:smollm2                         packaged GGUF model, run in-process by llama.cpp (the offline default)
    gguf:/path/model.gguf?mode=next_token&ctx=4096&threads=2
    openai:MODEL_ID                      api.openai.com, key from $OPENAI_API_KEY
    openai:MODEL_ID@http://127.0.0.1:8080/v1?api_key_env=NAME   any OpenAI-compatible server
    bedrock:us.amazon.nova-premier-v1:0?region=us-east-1&profile=NAME
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from vidroute.errors import ConfigError
from vidroute.spec import TaskSpec
from vidroute.teachers.base import ChatResult, Teacher, TeacherLabel, parse_weights, weights_schema

log = logging.getLogger(__name__)

__all__ = [
    "SPEC_FORMS",
    "ChatResult",
    "Teacher",
    "TeacherLabel",
    "load_teacher",
    "parse_teacher_spec",
    "parse_weights",
    "weights_schema",
]

SPEC_FORMS = (
    "gguf:NAME_OR_PATH[?mode=json|next_token&ctx=N&threads=N&parallel=N]",
    "openai:MODEL_ID[@BASE_URL][?api_key_env=NAME&timeout=S&max_retries=N&structured=auto|json_schema|json_object|off"
    "&mode=json|next_token]",
    "bedrock:MODEL_ID[?region=NAME&profile=NAME&timeout=S&max_retries=N&structured=auto|json_schema|off]",
)
MODES = ("json", "next_token")

# Query key -> (constructor keyword, type). Shared keys apply to every backend.
_COMMON: dict[str, tuple[str, type]] = {
    "mode": ("mode", str),
    "temperature": ("temperature", float),
    "max_tokens": ("max_tokens", int),
    "max_attempts": ("max_attempts", int),
    "max_retries": ("max_retries", int),
}
_KEYS: dict[str, dict[str, tuple[str, type]]] = {
    "gguf": {
        **_COMMON,
        "ctx": ("n_ctx", int),
        "threads": ("n_threads", int),
        "parallel": ("n_parallel", int),
        "top_logprobs": ("top_logprobs", int),
        "seed": ("seed", int),
        "timeout": ("timeout", float),  # accepted for uniform CLIs; in-process calls have no transport timeout
    },
    "openai": {
        **_COMMON,
        "api_key_env": ("api_key_env", str),
        "timeout": ("timeout", float),
        "structured": ("structured", str),
        "top_logprobs": ("top_logprobs", int),
    },
    "bedrock": {
        **_COMMON,
        "region": ("region", str),
        "profile": ("profile", str),
        "timeout": ("timeout", float),
        "structured": ("structured", str),
    },
}


def _bad(spec: str, why: str) -> ConfigError:
    forms = "\n  ".join(SPEC_FORMS)
    return ConfigError(f"bad teacher spec {spec!r}: {why}. Accepted forms:\n  {forms}")


def parse_teacher_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a spec string into (backend, constructor keyword arguments), typed and checked."""
    backend, sep, rest = spec.strip().partition(":")
    backend = backend.lower()
    if not sep or backend not in _KEYS:
        raise _bad(spec, f"unknown backend {backend!r}; use one of {sorted(_KEYS)}")
    kwargs: dict[str, Any] = {}
    query = ""
    if backend == "openai":
        m = re.search(r"@(https?://.*)$", rest)
        target, url = (rest[: m.start()], m.group(1)) if m else (rest, None)
        if url is not None:
            url, _, query = url.partition("?")
            kwargs["base_url"] = url.rstrip("/")
        else:
            target, _, query = target.partition("?")
    else:
        target, _, query = rest.partition("?")
    if not target:
        raise _bad(spec, "no model given after the backend")
    if backend == "gguf":
        kwargs["model"] = target
    else:
        kwargs["model_id"] = target
    keys = _KEYS[backend]
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in keys:
            raise _bad(spec, f"unknown option {key!r} for {backend}; known: {sorted(keys)}")
        name, typ = keys[key]
        try:
            kwargs[name] = typ(value)
        except ValueError as exc:
            raise _bad(spec, f"option {key}={value!r} is not a valid {typ.__name__}") from exc
    return backend, kwargs


def load_teacher(spec: str, *, task: TaskSpec | None = None, **overrides: Any) -> Teacher:
    """Build a teacher from a spec string (see the module docstring); nothing is loaded or contacted yet.

    `overrides` (temperature, max_tokens, max_attempts, mode, timeout, or any constructor keyword of the
    backend) win over the spec's query parameters; `None` values are ignored so CLIs can pass unset options.

    Example:
        >>> load_teacher("gguf:smollm2?mode=next_token").mode
        'next_token'
        >>> load_teacher("openai:qwen@http://127.0.0.1:8080/v1", temperature=0.7).base_url
        'http://127.0.0.1:8080/v1'
    """
    backend, kwargs = parse_teacher_spec(spec)
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    mode = kwargs.get("mode", "json")
    if mode not in MODES:
        raise _bad(spec, f"mode {mode!r} is not one of {list(MODES)}")
    if backend == "bedrock" and mode != "json":
        raise _bad(spec, "Bedrock returns no token probabilities, so only mode=json is available")
    for key in ("max_attempts", "max_tokens"):
        if key in kwargs and int(kwargs[key]) < 1:
            raise _bad(spec, f"{key} must be at least 1, got {kwargs[key]}")
    if backend == "gguf":
        from vidroute.teachers.gguf import GGUFTeacher as cls
    elif backend == "openai":
        from vidroute.teachers.openai_compat import OpenAICompatTeacher as cls  # type: ignore[assignment]
    else:
        from vidroute.teachers.bedrock import BedrockTeacher as cls  # type: ignore[assignment]
    if backend == "gguf" and kwargs.pop("timeout", None) is not None:
        log.debug("timeout does not apply to the in-process GGUF teacher; ignored")
    try:
        return cls(spec=task, **kwargs)
    except TypeError as exc:
        raise _bad(spec, f"unsupported option: {exc}") from exc
