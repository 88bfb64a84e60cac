"""Spec-string parsing for load_teacher, the price table, and the retry/backoff policy."""

from __future__ import annotations

import logging
import random
from email.utils import formatdate

import pytest

from vidroute.errors import ConfigError, TeacherError
from vidroute.spec import TaskSpec
from vidroute.teachers import load_teacher, parse_teacher_spec, pricing
from vidroute.teachers.bedrock import BedrockTeacher
from vidroute.teachers.gguf import GGUFTeacher
from vidroute.teachers.openai_compat import OpenAICompatTeacher
from vidroute.teachers.retry import RetryPolicy, Verdict, call_with_retries, parse_retry_after

# --- load_teacher -----------------------------------------------------------------------------------


def test_gguf_specs():
    t = load_teacher("gguf:smollm2")
    assert isinstance(t, GGUFTeacher) and t.model == "smollm2" and t.mode == "json" and t._server is None
    t = load_teacher("gguf:/models/qwen.Q4_K_M.gguf?mode=next_token&ctx=4096&threads=2")
    assert (t.model, t.model_id, t.mode, t.n_ctx, t.n_threads) == (
        "/models/qwen.Q4_K_M.gguf",
        "qwen.Q4_K_M.gguf",
        "next_token",
        4096,
        2,
    )
    assert load_teacher("gguf:smollm2", timeout=5).backend == "gguf"  # generic override accepted


def test_openai_specs(monkeypatch):
    t = load_teacher("openai:gpt-4o-mini")
    assert isinstance(t, OpenAICompatTeacher) and t.base_url is None and t.model_id == "gpt-4o-mini"
    t = load_teacher("openai:llama3:8b@http://127.0.0.1:11434/v1/?api_key_env=OLLAMA_KEY&timeout=5&structured=off")
    assert (t.model_id, t.base_url, t.api_key_env, t.timeout, t.structured) == (
        "llama3:8b",
        "http://127.0.0.1:11434/v1",
        "OLLAMA_KEY",
        5.0,
        "off",
    )
    t = load_teacher("openai:m?max_tokens=50", max_tokens=80, temperature=0.5, mode=None)
    assert (t.max_tokens, t.temperature, t.mode) == (80, 0.5, "json")  # overrides win, None ignored


def test_bedrock_specs():
    t = load_teacher("bedrock:us.amazon.nova-premier-v1:0?region=us-west-2&profile=lab", max_attempts=5)
    assert isinstance(t, BedrockTeacher)
    assert (t.model_id, t.region, t.profile, t.max_attempts) == ("us.amazon.nova-premier-v1:0", "us-west-2", "lab", 5)


def test_task_is_passed_through():
    spec = TaskSpec.load()
    assert load_teacher("gguf:smollm2", task=spec).spec is spec


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("smollm2", "unknown backend"),
        ("llamacpp:smollm2", "unknown backend"),
        ("gguf:", "no model"),
        ("openai:@http://x/v1", "no model"),
        ("gguf:smollm2?colour=red", "unknown option 'colour'"),
        ("gguf:smollm2?ctx=big", "not a valid int"),
        ("gguf:smollm2?mode=vibes", "mode 'vibes'"),
        ("bedrock:amazon.nova-lite-v1:0?mode=next_token", "only mode=json"),
        ("openai:m?max_attempts=0", "at least 1"),
    ],
)
def test_bad_specs_name_the_accepted_forms(spec, why):
    with pytest.raises(ConfigError, match=why) as info:
        load_teacher(spec)
    assert "gguf:NAME_OR_PATH" in str(info.value) and "bedrock:MODEL_ID" in str(info.value)


def test_unknown_override_is_a_config_error():
    with pytest.raises(ConfigError, match="unsupported option"):
        load_teacher("openai:m", colour="red")


def test_parse_teacher_spec_returns_kwargs():
    assert parse_teacher_spec("openai:m@https://api.example.com/v1") == (
        "openai",
        {"base_url": "https://api.example.com/v1", "model_id": "m"},
    )


def test_invalid_structured_value_rejected_on_first_use():
    with pytest.raises(ConfigError, match="structured"):
        load_teacher("openai:m@http://127.0.0.1:9/v1?structured=yaml").chat("s", "u")


# --- pricing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "inp", "out"),
    [
        ("us.amazon.nova-micro-v1:0", 0.035, 0.14),
        ("amazon.nova-lite-v1:0", 0.06, 0.24),
        ("us.amazon.nova-premier-v1:0", 2.5, 12.5),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", 1.0, 5.0),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", 0.8, 4.0),
        ("us.anthropic.claude-sonnet-4-20250514-v1:0", 3.0, 15.0),
        ("gpt-4o-mini-2024-07-18", 0.15, 0.6),
        ("gpt-4o", 2.5, 10.0),
        ("GPT-4.1-mini", 0.4, 1.6),
        ("us.anthropic.claude-opus-4-5-20251101-v1:0", 5.0, 25.0),
        ("qwen2.5-1.5b-instruct-q4_k_m.gguf", 0.0, 0.0),
    ],
)
def test_prices_longest_substring_match(model, inp, out):
    assert pricing.cost_usd(model, 1_000_000, 0) == pytest.approx(inp)
    assert pricing.cost_usd(model, 0, 1_000_000) == pytest.approx(out)
    assert pricing.is_priced(model)


def test_cost_is_per_million_tokens():
    assert pricing.cost_usd("gpt-4.1-mini", 1000, 500) == pytest.approx((1000 * 0.4 + 500 * 1.6) / 1e6)


def test_unknown_model_costs_zero_and_is_reported(caplog):
    with caplog.at_level(logging.WARNING, logger="vidroute.teachers.pricing"):
        assert pricing.cost_usd("mystery-model-xyz", 1000, 1000) == 0.0
        pricing.cost_usd("mystery-model-xyz", 1000, 1000)
    assert "mystery-model-xyz" in pricing.unpriced_models()
    assert sum("mystery-model-xyz" in r.message for r in caplog.records) == 1  # warned once


def test_user_price_file_overrides(monkeypatch, tmp_path):
    f = tmp_path / "prices.yaml"
    f.write_text("models:\n  gpt-4o-mini: {input: 1.0, output: 2.0}\n  my-model: {input: 10, output: 20}\n")
    monkeypatch.setenv(pricing.ENV_VAR, str(f))
    assert pricing.cost_usd("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert pricing.cost_usd("my-model-v2", 1_000_000, 0) == pytest.approx(10.0)
    assert pricing.cost_usd("nova-micro", 1_000_000, 0) == pytest.approx(0.035)  # packaged entries remain


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("models: [1, 2]", "models"),
        ("models:\n  x: {input: 1}\n", "'x'"),
        ("models:\n  x: {input: -1, output: 1}\n", "negative"),
        ("models: {x: [", "YAML"),
    ],
)
def test_bad_price_files(monkeypatch, tmp_path, text, why):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=why):
        pricing.load_prices(f)


def test_missing_price_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        pricing.load_prices(tmp_path / "nope.yaml")


# --- retry -------------------------------------------------------------------------------------------


def test_full_jitter_bounds():
    pol = RetryPolicy(base_delay=0.5, max_delay=4.0)
    rng = random.Random(0)
    for n in range(8):
        cap = min(4.0, 0.5 * 2**n)
        waits = [pol.delay(n, rng=rng) for _ in range(200)]
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > 0.8 * cap  # jitter spans the range, not a fixed delay


def test_retry_after_honoured_and_capped():
    pol = RetryPolicy(max_retry_after=10.0)
    assert pol.delay(0, retry_after=3.0) == 3.0
    assert pol.delay(0, retry_after=500.0) == 10.0


def test_parse_retry_after_forms():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    import time

    in_30s = parse_retry_after(formatdate(time.time() + 30, usegmt=True))
    assert in_30s is not None and 25 <= in_30s <= 31


def test_call_with_retries_counts_and_sleeps():
    calls, sleeps = [], []

    def fn():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("flaky")
        return "ok"

    out = call_with_retries(
        fn,
        classify=lambda e: Verdict(True, retry_after=0.25 if len(calls) == 1 else None),
        policy=RetryPolicy(max_retries=5, base_delay=1.0, max_delay=8.0),
        what="t",
        sleep=sleeps.append,
        rng=random.Random(1),
    )
    assert out == "ok" and len(calls) == 3
    assert sleeps[0] == 0.25 and 0 <= sleeps[1] <= 2.0


def test_call_with_retries_non_retryable_and_exhausted():
    with pytest.raises(TeacherError, match=r"not retryable\): bad") as info:
        call_with_retries(
            lambda: (_ for _ in ()).throw(ValueError("x")),
            classify=lambda e: Verdict(False, reason="bad"),
            policy=RetryPolicy(),
            what="t",
            sleep=lambda s: None,
        )
    assert isinstance(info.value.__cause__, ValueError)
    n = []

    def always():
        n.append(1)
        raise TimeoutError("slow")

    with pytest.raises(TeacherError, match="after 3 tries"):
        call_with_retries(
            always, classify=lambda e: Verdict(True), policy=RetryPolicy(max_retries=2), what="t", sleep=lambda s: None
        )
    assert len(n) == 3
