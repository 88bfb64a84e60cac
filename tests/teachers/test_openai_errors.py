"""OpenAI-compatible teacher against a real local HTTP server that misbehaves on purpose."""

from __future__ import annotations

import json
import math
import time

import pytest

from vidroute.errors import ConfigError, InvalidTeacherOutput, TeacherError
from vidroute.spec import TaskSpec
from vidroute.teachers import load_teacher
from vidroute.teachers.openai_compat import OpenAICompatTeacher
from vidroute.teachers.pricing import cost_usd

SIGNALS = TaskSpec.load().signal_names
VALID = json.dumps({"visual": 0.6, "audio": 0.1, "transcription": 0.1, "metadata": 0.2, "reasoning": "a scene"})


def teacher(url: str, **kw) -> OpenAICompatTeacher:
    kw.setdefault("retry_base_delay", 0.01)
    kw.setdefault("retry_max_delay", 0.05)
    kw.setdefault("timeout", 5.0)
    return OpenAICompatTeacher(model_id=kw.pop("model_id", "gpt-4o-mini"), base_url=url, **kw)


def test_valid_answer_parsed_with_usage_and_cost(fake_llm):
    fake_llm.default = fake_llm.completion(VALID, prompt_tokens=700, completion_tokens=40)
    label = teacher(fake_llm.url).label("a red car at night")
    assert label.weights == pytest.approx({"visual": 0.6, "audio": 0.1, "transcription": 0.1, "metadata": 0.2})
    assert label.attempts == 1 and label.reasoning == "a scene"
    assert (label.usage.input_tokens, label.usage.output_tokens) == (700, 40)
    assert label.usage.usd == pytest.approx(cost_usd("gpt-4o-mini", 700, 40)) and label.usage.usd > 0
    sent = fake_llm.requests[0]
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0.0 and sent["max_tokens"] == 200
    assert sent["messages"][0]["role"] == "system" and sent["messages"][1]["content"] == "a red car at night"
    rf = sent["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["strict"] is True
    assert set(rf["json_schema"]["schema"]["required"]) == {*SIGNALS, "reasoning"}


def test_5xx_retried_until_success(fake_llm):
    fake_llm.script = [fake_llm.error(500), fake_llm.error(502), fake_llm.error(503)]
    fake_llm.default = fake_llm.completion("hello")
    res = teacher(fake_llm.url, max_retries=3).chat("sys", "hi")
    assert res.text == "hello"
    assert len(fake_llm.requests) == 4


def test_429_waits_for_retry_after(fake_llm):
    fake_llm.script = [fake_llm.error(429, "slow down", headers={"Retry-After": "0.4"})]
    fake_llm.default = fake_llm.completion("ok")
    t0 = time.monotonic()
    assert teacher(fake_llm.url).chat("sys", "hi").text == "ok"
    gap = fake_llm.times[1] - fake_llm.times[0]
    assert len(fake_llm.requests) == 2
    assert 0.35 <= gap < 3.0, gap
    assert time.monotonic() - t0 < 5.0


def test_persistent_500_gives_up_with_teacher_error_and_bounded_backoff(fake_llm):
    fake_llm.default = fake_llm.error(500, "boom")
    t0 = time.monotonic()
    with pytest.raises(TeacherError, match=r"after 4 tries.*HTTP 500.*boom"):
        teacher(fake_llm.url, max_retries=3, retry_base_delay=0.05, retry_max_delay=0.1).chat("sys", "hi")
    assert len(fake_llm.requests) == 4
    # full jitter: each wait <= min(max_delay, base * 2**n) -> at most 0.05 + 0.1 + 0.1
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_fail_at_once(fake_llm, status):
    fake_llm.default = fake_llm.error(status, "nope")
    with pytest.raises(TeacherError, match=rf"not retryable.*HTTP {status}"):
        teacher(fake_llm.url, max_retries=3).chat("sys", "hi")
    assert len(fake_llm.requests) == 1


def test_slow_response_times_out_and_is_retried(fake_llm):
    fake_llm.default = fake_llm.Reply(body=b"{}", delay=1.5)
    t0 = time.monotonic()
    with pytest.raises(TeacherError, match="timed out"):
        teacher(fake_llm.url, timeout=0.3, max_retries=1).chat("sys", "hi")
    elapsed = time.monotonic() - t0
    assert len(fake_llm.requests) == 2
    assert elapsed < 1.5, f"timeout not enforced: {elapsed:.2f}s"


def test_slow_then_fast_recovers(fake_llm):
    fake_llm.script = [fake_llm.Reply(body=b"{}", delay=1.0)]
    fake_llm.default = fake_llm.completion("fast")
    assert teacher(fake_llm.url, timeout=0.3, max_retries=2).chat("s", "u").text == "fast"
    assert len(fake_llm.requests) == 2


def test_non_json_body_is_retried_then_reported(fake_llm):
    fake_llm.script = [fake_llm.Reply(body=b"<html>proxy error</html>")]
    fake_llm.default = fake_llm.completion("fine")
    assert teacher(fake_llm.url).chat("s", "u").text == "fine"
    fake_llm.default = fake_llm.Reply(body=b'{"not": "a completion"}')
    with pytest.raises(TeacherError, match="malformed response"):
        teacher(fake_llm.url, max_retries=1).chat("s", "u")


def test_junk_json_answer_recorded_as_failure_with_raw(fake_llm):
    junk = 'Sure! {"visual": 0.9, "audio": 0.9}'
    fake_llm.default = fake_llm.completion(junk, prompt_tokens=100, completion_tokens=10)
    with pytest.raises(InvalidTeacherOutput) as info:
        teacher(fake_llm.url, max_attempts=3).label("dog barking")
    assert info.value.raw == junk
    assert "after 3 attempts" in str(info.value) and "wrong keys" in str(info.value)
    assert len(fake_llm.requests) == 3  # re-asked, never silently kept
    assert [r["temperature"] for r in fake_llm.requests] == [0.0, 0.7, 0.7]  # re-asks sample, not repeat
    assert info.value.usage.input_tokens == 300  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ('{"visual": 0.5, "audio": 0.5, "transcription": 0.5, "metadata": 0.5}', "sum"),
        ('{"visual": 1.5, "audio": 0, "transcription": 0, "metadata": -0.5}', "outside"),
        ('{"visual": "high", "audio": 0, "transcription": 0, "metadata": 0}', "not a number"),
        ('{"visual": 1, "audio": 0, "transcription": 0, "metadata": 0, "colour": 0}', "unexpected"),
        ("no json here", "no JSON"),
    ],
)
def test_each_flaw_is_invalid(fake_llm, answer, why):
    fake_llm.default = fake_llm.completion(answer)
    with pytest.raises(InvalidTeacherOutput, match=why) as info:
        teacher(fake_llm.url, max_attempts=1).label("q")
    assert info.value.raw == answer


def test_invalid_then_valid_counts_attempts_and_renormalises(fake_llm):
    near = json.dumps({"visual": 0.5, "audio": 0.2, "transcription": 0.2, "metadata": 0.105})
    fake_llm.script = [fake_llm.completion("```json\n{oops"), fake_llm.completion(near)]
    label = teacher(fake_llm.url, max_attempts=3).label("q")
    assert label.attempts == 2 and label.reasoning is None
    assert math.isclose(sum(label.weights.values()), 1.0)
    assert label.weights["visual"] == pytest.approx(0.5 / 1.005)
    assert label.usage.input_tokens == 100


def test_schema_rejected_falls_back_to_json_object_and_remembers(fake_llm):
    def server(body):
        rf = body.get("response_format", {}).get("type")
        if rf == "json_schema":
            return fake_llm.error(400, "response_format json_schema is not supported")
        return fake_llm.completion(VALID)

    fake_llm.default = server
    t = teacher(fake_llm.url)
    assert t.label("q").attempts == 1
    assert t.label("q2").attempts == 1
    kinds = [r.get("response_format", {}).get("type") for r in fake_llm.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert t.response_format_used == "json_object"


def test_explicit_structured_level_does_not_fall_back(fake_llm):
    fake_llm.default = fake_llm.error(400, "no schemas here")
    with pytest.raises(TeacherError, match="400"):
        teacher(fake_llm.url, structured="json_schema").label("q")
    assert len(fake_llm.requests) == 1


def test_switches_to_max_completion_tokens_when_asked(fake_llm):
    def server(body):
        if "max_tokens" in body:
            return fake_llm.error(400, "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead.")
        return fake_llm.completion("ok")

    fake_llm.default = server
    t = teacher(fake_llm.url)
    assert t.chat("s", "u", max_tokens=7).text == "ok"
    assert t.chat("s", "u").text == "ok"
    assert [("max_tokens" in r, r.get("max_completion_tokens")) for r in fake_llm.requests] == [
        (True, None),
        (False, 7),
        (False, 200),
    ]


def test_next_token_probs_from_returned_logprobs(fake_llm):
    # The shape llama.cpp and OpenAI return for logprobs=True, top_logprobs=k.
    top = [("Visual", -0.5), (" visual", -1.5), ("Audio", -2.0), ("Trans", -2.5), ("The", -3.0)]
    logprobs = {
        "content": [
            {"token": "Visual", "logprob": -0.5, "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}
        ]
    }
    fake_llm.default = fake_llm.completion("Visual", logprobs=logprobs)
    t = teacher(fake_llm.url, mode="next_token")
    label = t.label("sunset over the sea")
    sent = fake_llm.requests[0]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 20 and sent["max_tokens"] == 1
    vis, aud, tra = math.exp(-0.5) + math.exp(-1.5), math.exp(-2.0), math.exp(-2.5)
    total = vis + aud + tra
    assert label.mode == "next_token"
    assert label.weights == pytest.approx(
        {"visual": vis / total, "audio": aud / total, "transcription": tra / total, "metadata": 0.0}
    )
    assert label.extra["mass_on_signals"] == pytest.approx(total)
    assert json.loads(label.raw)["answer"] == "Visual"


def test_next_token_without_logprobs_is_a_clear_error(fake_llm):
    fake_llm.default = fake_llm.completion("visual")
    with pytest.raises(TeacherError, match="no logprobs"):
        teacher(fake_llm.url, mode="next_token").label("q")


def test_connection_refused_is_retried_then_fails():
    t = teacher("http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(TeacherError, match=r"after 2 tries.*connection"):
        t.chat("s", "u")


def test_missing_api_key_for_openai_default(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_teacher("openai:gpt-4o-mini").chat("s", "u")
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(ConfigError, match="MY_KEY"):
        load_teacher("openai:m@http://127.0.0.1:9/v1?api_key_env=MY_KEY").chat("s", "u")


def test_api_key_env_is_sent(fake_llm, monkeypatch):
    fake_llm.default = fake_llm.completion("ok")
    monkeypatch.setenv("MY_KEY", "sekret")
    t = load_teacher(f"openai:m@{fake_llm.url}?api_key_env=MY_KEY")
    assert t.chat("s", "u").text == "ok"
    assert fake_llm.headers[0]["authorization"] == "Bearer sekret"
