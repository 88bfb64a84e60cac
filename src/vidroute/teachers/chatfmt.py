"""OpenAI-style chat request/response dicts shared by the HTTP and in-process llama.cpp backends; logprob matching."""

from __future__ import annotations

import json
import math
from typing import Any

from vidroute.teachers.base import ChatResult

# response_format levels, strongest first; "auto" walks down this list when a server rejects one.
FORMATS = ("json_schema", "json_object", "off")


class MalformedResponse(Exception):
    """The server answered 2xx but not with a chat completion (a proxy's HTML page, truncated JSON...)."""


def messages(system: str, user: str) -> list[dict[str, str]]:
    out = [{"role": "system", "content": system}] if system else []
    return [*out, {"role": "user", "content": user}]


def response_format(fmt: str, json_schema: dict[str, Any] | None) -> dict[str, Any]:
    """The `response_format` request field for one level (empty when off or when there is no schema)."""
    if json_schema is None or fmt == "off":
        return {}
    if fmt == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "weights", "schema": json_schema, "strict": True},
        }
    }


def parse_completion(body: Any, latency_ms: float) -> ChatResult:
    """A ChatResult from a chat-completion dict; `MalformedResponse` when the shape is wrong."""
    if not isinstance(body, dict):
        raise MalformedResponse(f"expected a JSON object, got {type(body).__name__}: {str(body)[:200]!r}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponse(f"no choices in response: {json.dumps(body)[:300]}")
    msg = choices[0].get("message") or {}
    text = msg.get("content")
    if text is None:
        # Refusals and tool-only answers carry no content; keep whatever text there is for the failure record.
        text = msg.get("refusal") or ""
    if not isinstance(text, str):
        raise MalformedResponse(f"message content is not text: {str(text)[:200]!r}")
    usage = body.get("usage") or {}
    return ChatResult(
        text=text,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        latency_ms=latency_ms,
    )


def top_logprobs(body: dict[str, Any]) -> dict[str, float] | None:
    """{token text: logprob} for the first generated token, or None when the server sent no logprobs."""
    try:
        content = body["choices"][0]["logprobs"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if not content:
        return None
    first = content[0]
    out: dict[str, float] = {}
    for item in first.get("top_logprobs") or []:
        tok, lp = item.get("token"), item.get("logprob")
        if isinstance(tok, str) and isinstance(lp, int | float) and tok not in out:
            out[tok] = float(lp)
    if not out and isinstance(first.get("token"), str) and isinstance(first.get("logprob"), int | float):
        out[first["token"]] = float(first["logprob"])
    return out or None


def _norm(token: str) -> str:
    return token.strip().strip("\"'`*_:.,-").lower()


def candidate_probs(logprobs: dict[str, float], candidates: list[str]) -> dict[str, float]:
    """Probability of each candidate as the first answer token.

    A token counts for a candidate when, ignoring case, surrounding space and quotes, it equals the candidate,
    is a prefix of it of at least 3 letters (names split into several tokens: "trans" + "cription"), or extends
    it ("Visually"). Variants (" visual", "Visual", "visual") are summed. A token matching several candidates goes
    to an exact match if there is one, else is split evenly.

    Example:
        >>> p = candidate_probs({" visual": math.log(0.5), "Visual": math.log(0.2), "Audio": math.log(0.1)},
        ...                     ["visual", "audio"])
        >>> {k: round(v, 3) for k, v in p.items()}
        {'visual': 0.7, 'audio': 0.1}
    """
    lowered = {c: c.lower() for c in candidates}
    probs = dict.fromkeys(candidates, 0.0)
    for token, lp in logprobs.items():
        t = _norm(token)
        if not t:
            continue
        exact = [c for c, lc in lowered.items() if lc == t]
        hits = exact or [
            c for c, lc in lowered.items() if (lc.startswith(t) and len(t) >= min(3, len(lc))) or t.startswith(lc)
        ]
        for c in hits:
            probs[c] += math.exp(lp) / len(hits)
    return probs


def next_token_text(answer: str, logprobs: dict[str, float]) -> str:
    """A compact raw record of a next-token answer: the sampled token plus the top alternatives."""
    top = dict(sorted(logprobs.items(), key=lambda kv: -kv[1]))
    return json.dumps({"answer": answer, "top_logprobs": {k: round(v, 4) for k, v in top.items()}}, ensure_ascii=False)
