"""The in-process GGUF teacher on the packaged SmolLM2-135M model (real llama.cpp, loaded once per module)."""

from __future__ import annotations

import json
import math

import pytest

from vidroute.errors import ConfigError, InvalidTeacherOutput
from vidroute.spec import TaskSpec
from vidroute.teachers import load_teacher
from vidroute.teachers.base import parse_weights, weights_schema

pytest.importorskip("xllamacpp")
SIGNALS = TaskSpec.load().signal_names


@pytest.fixture(scope="module")
def teacher():
    try:
        from vidroute.models import smollm2_gguf

        smollm2_gguf()
    except ConfigError as exc:
        pytest.skip(str(exc))
    t = load_teacher("gguf:smollm2?threads=1&ctx=2048", max_tokens=120, max_attempts=1)
    yield t
    t.close()


def test_json_schema_grammar_forces_exact_keys(teacher):
    schema = {
        "type": "object",
        "properties": {s: {"type": "number"} for s in SIGNALS},
        "required": SIGNALS,
        "additionalProperties": False,
    }
    res = teacher.chat("Give weights as JSON.", "a dog barking at the mailman", json_schema=schema, max_tokens=60)
    obj = json.loads(res.text)
    assert list(obj) == SIGNALS
    assert all(isinstance(v, int | float) for v in obj.values())
    assert res.input_tokens > 10 and 0 < res.output_tokens <= 60
    assert res.latency_ms > 0


def test_plain_chat_without_schema(teacher):
    res = teacher.chat("You are terse.", "Say hello.", max_tokens=8)
    assert res.text.strip() and res.output_tokens <= 8


def test_json_label_is_valid_or_a_recorded_failure(teacher):
    """SmolLM2 often ignores 'sum to 1'; the grammar still guarantees the structure, validation catches the rest."""
    try:
        label = teacher.label("thunder rumbling over heavy rain")
    except InvalidTeacherOutput as exc:
        assert exc.raw, "a failure must keep the raw answer"
        obj = json.loads(exc.raw)  # grammar-constrained: always parseable with the right keys
        assert set(obj) == {*SIGNALS, "reasoning"}
        assert "sum" in str(exc) or "outside" in str(exc)
        assert exc.usage.input_tokens > 100  # type: ignore[attr-defined]
    else:
        assert set(label.weights) == set(SIGNALS) and math.isclose(sum(label.weights.values()), 1.0)
        assert parse_weights(label.raw, SIGNALS)[0] == label.weights
        assert label.usage.usd == 0.0 and label.usage.input_tokens > 100


def test_next_token_mode_gives_a_distribution(teacher):
    nt = load_teacher("gguf:smollm2?mode=next_token")
    nt._server = teacher.server  # share the loaded model; only the mode differs
    label = nt.label("thunder rumbling over heavy rain")
    assert label.mode == "next_token" and nt.info.mode == "next_token"
    assert set(label.weights) == set(SIGNALS)
    assert math.isclose(sum(label.weights.values()), 1.0)
    assert 0 < label.extra["mass_on_signals"] <= 1.0
    raw = json.loads(label.raw)
    assert raw["answer"] and len(raw["top_logprobs"]) >= 10
    assert label.usage.input_tokens > 50 and label.usage.output_tokens == 1


def test_next_token_probs_match_raw_logprobs(teacher):
    res = teacher.next_token_probs(
        "Answer with one word: visual or audio.", "A photo of a cat. Answer:", ["visual", "audio"]
    )
    top = json.loads(res.text)["top_logprobs"]
    expected_visual = sum(math.exp(lp) for tok, lp in top.items() if tok.strip().lower() in ("visual", "vis"))
    assert res.token_probs is not None
    assert res.token_probs["visual"] == pytest.approx(expected_visual, rel=1e-3, abs=1e-6)


def test_schema_llama_cpp_cannot_compile_is_reported(teacher):
    from vidroute.errors import TeacherError

    with pytest.raises(TeacherError, match="not retryable"):
        teacher.chat("s", "u", json_schema={"type": "bogus"}, max_tokens=4)


def test_bad_model_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="neither a packaged name"):
        load_teacher(f"gguf:{tmp_path}/missing.gguf").chat("s", "u")
    not_gguf = tmp_path / "model.bin"
    not_gguf.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"not a \.gguf file"):
        load_teacher(f"gguf:{not_gguf}").chat("s", "u")


def test_schema_helper_matches_spec():
    assert weights_schema(SIGNALS)["required"] == [*SIGNALS, "reasoning"]
