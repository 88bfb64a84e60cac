"""Evaluate routers: agreement with the teacher, the 1–5 rubric (deterministic + LLM judge), latency, cost,
the cascade curve, HTML/Markdown reports, and the benchmarks on the reference's data and on real queries.

Example:
    >>> from vidroute.evaluate import rubric_level
    >>> ref = {"visual": 0.6, "audio": 0.1, "transcription": 0.1, "metadata": 0.2}
    >>> rubric_level(ref, {"visual": 0.5, "audio": 0.2, "transcription": 0.1, "metadata": 0.2}, list(ref))
    4
"""

from vidroute.evaluate.metrics import agreement, dominant_accuracy, js_divergence, mae, mae_per_signal, to_matrix
from vidroute.evaluate.rubric import Judge, JudgeVerdict, judge_agreement, parse_judge, rubric_level, rubric_levels
from vidroute.evaluate.run import EvalOutcome, evaluate_model, evaluate_router, load_labelled

__all__ = [
    "EvalOutcome",
    "Judge",
    "JudgeVerdict",
    "agreement",
    "dominant_accuracy",
    "evaluate_model",
    "evaluate_router",
    "js_divergence",
    "judge_agreement",
    "load_labelled",
    "mae",
    "mae_per_signal",
    "parse_judge",
    "rubric_level",
    "rubric_levels",
    "to_matrix",
]
