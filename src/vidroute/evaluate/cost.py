"""Cost per 1M routed queries: the student from measured CPU-seconds, a teacher from tokens × its price."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# On-demand c6i.large (2 vCPU, x86) in us-east-1 costs $0.085/hour, i.e. $0.0425 per vCPU-hour. Override with
# --usd-per-vcpu-hour; the number only scales the student's cost linearly.
DEFAULT_USD_PER_VCPU_HOUR = 0.0425

# The reference system's published facts (seed-system.md): prices per 1M tokens and measured latency.
REFERENCE = {
    "judge_score": 4.0,
    "judge": "Claude Sonnet 4 (Bedrock Model Evaluation), v2 eval set, leaky",
    "latency_ms_mean": 833.0,
    "latency_note": "distilled Nova Micro, one sequential Converse call per query, client wall time, no warm-up",
    "haiku_latency_ms_mean": 1741.0,
    "nova_micro_usd_per_1m_tokens": {"input": 0.035, "output": 0.14},
    "haiku_usd_per_1m_tokens": {"input": 1.0, "output": 5.0},
    "claimed_saving": "over 95%",
}

# Token estimates for one reference router call, at ~4 characters per token: the student's 121-character
# system prompt + a 37-character mean query + ~10 tokens of chat template in; the Premier-style answer (four
# weights + reasoning, 265 characters on average in premier_labels.jsonl) out. The long teacher prompt is
# ~830 characters (seed-system.md).
REFERENCE_TOKENS = {
    "short_prompt_input": 50,
    "long_prompt_input": 220,
    "output": 75,
}


def student_usd_per_million(cpu_ms_per_query: float, usd_per_vcpu_hour: float = DEFAULT_USD_PER_VCPU_HOUR) -> float:
    """USD per 1M queries for a CPU router: CPU-seconds per query × 1e6 / 3600 × $/vCPU-hour.

    Example:
        >>> round(student_usd_per_million(3.6, 1.0), 6)  # 3.6 ms × 1e6 = 1 vCPU-hour
        1.0
    """
    return cpu_ms_per_query / 1000.0 * 1e6 / 3600.0 * usd_per_vcpu_hour


def tokens_usd_per_million(
    input_tokens_per_query: float, output_tokens_per_query: float, usd_per_1m_in: float, usd_per_1m_out: float
) -> float:
    """USD per 1M queries from mean tokens per query and per-1M-token prices."""
    return input_tokens_per_query * usd_per_1m_in + output_tokens_per_query * usd_per_1m_out


def teacher_usd_per_million(model_id: str, input_tokens_per_query: float, output_tokens_per_query: float) -> float:
    """USD per 1M queries for an LLM router, priced by the teachers' price table (`teachers.pricing`)."""
    from vidroute.teachers.pricing import cost_usd

    return cost_usd(model_id, input_tokens_per_query * 1e6, output_tokens_per_query * 1e6)


def mean_tokens(records: Sequence[Any]) -> tuple[float, float] | None:
    """Mean (input, output) tokens per teacher call from labelled records' `usage` (a record's usage covers all
    its samples, so it is divided by their number), or None when no record measured any."""
    per_call = [
        (r.usage.input_tokens / n, r.usage.output_tokens / n)
        for r in records
        if getattr(r, "usage", None) and (r.usage.input_tokens or r.usage.output_tokens)
        for n in [max(1, len(getattr(r, "samples", None) or []))]
    ]
    if not per_call:
        return None
    return (sum(x for x, _ in per_call) / len(per_call), sum(y for _, y in per_call) / len(per_call))


def reference_costs() -> dict[str, Any]:
    """The reference routers' cost per 1M queries, from published prices and our token estimates."""
    micro = REFERENCE["nova_micro_usd_per_1m_tokens"]
    haiku = REFERENCE["haiku_usd_per_1m_tokens"]
    return {
        "nova_micro_distilled_usd_per_1m_queries": tokens_usd_per_million(
            REFERENCE_TOKENS["short_prompt_input"], REFERENCE_TOKENS["output"], micro["input"], micro["output"]
        ),
        "haiku_long_prompt_usd_per_1m_queries": tokens_usd_per_million(
            REFERENCE_TOKENS["long_prompt_input"], REFERENCE_TOKENS["output"], haiku["input"], haiku["output"]
        ),
        "assumed_tokens_per_query": dict(REFERENCE_TOKENS),
        "note": "published per-1M-token prices × estimated tokens per call (~4 characters per token)",
    }
