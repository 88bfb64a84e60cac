"""Bedrock Converse teacher: request/response shapes and error paths through botocore's Stubber (no network)."""

from __future__ import annotations

import json

import pytest
from botocore.stub import ANY, Stubber

from vidroute.errors import ConfigError, InvalidTeacherOutput, TeacherError
from vidroute.spec import TaskSpec
from vidroute.teachers import load_teacher
from vidroute.teachers.bedrock import BedrockTeacher
from vidroute.teachers.pricing import cost_usd

MODEL = "us.amazon.nova-premier-v1:0"
SPEC = TaskSpec.load()
VALID = json.dumps({"visual": 0.1, "audio": 0.7, "transcription": 0.0, "metadata": 0.2, "reasoning": "a sound"})


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Fake credentials and no user AWS config, so nothing real is read or signed."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)


def converse_response(text: str, inp: int = 900, out: int = 45) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": inp, "outputTokens": out, "totalTokens": inp + out},
        "metrics": {"latencyMs": 321},
    }


def make(**kw) -> tuple[BedrockTeacher, Stubber]:
    kw.setdefault("region", "us-east-1")
    kw.setdefault("retry_base_delay", 0.01)
    kw.setdefault("retry_max_delay", 0.02)
    t = BedrockTeacher(model_id=kw.pop("model_id", MODEL), **kw)
    stub = Stubber(t.client)  # the teacher's own client, built by its real code path
    stub.activate()
    return t, stub


def expected(structured: bool, user: str = "thunder and rain", max_tokens: int = 200) -> dict:
    params = {
        "modelId": MODEL,
        "system": [{"text": SPEC.render_teacher_prompt()}],
        "messages": [{"role": "user", "content": [{"text": user}]}],
        "inferenceConfig": {"temperature": 0.0, "maxTokens": max_tokens},
    }
    if structured:
        params["outputConfig"] = ANY
    return params


def test_client_config_and_success_shape():
    t, stub = make(timeout=7.0)
    cfg = t.client.meta.config
    assert t.client.meta.region_name == "us-east-1"
    assert cfg.read_timeout == 7.0 and cfg.retries["total_max_attempts"] == 1
    stub.add_response("converse", converse_response(VALID), expected(structured=True))
    label = t.label("thunder and rain")
    stub.assert_no_pending_responses()
    assert label.weights == pytest.approx({"visual": 0.1, "audio": 0.7, "transcription": 0.0, "metadata": 0.2})
    assert (label.usage.input_tokens, label.usage.output_tokens) == (900, 45)
    assert label.usage.usd == pytest.approx(cost_usd(MODEL, 900, 45))
    assert label.usage.usd == pytest.approx((900 * 2.5 + 45 * 12.5) / 1e6)


def test_structured_output_config_carries_the_schema_without_bounds():
    t, stub = make()
    seen = {}

    def capture(params, **_):
        seen.update(params)

    t.client.meta.events.register("before-parameter-build.bedrock-runtime.Converse", capture)
    stub.add_response("converse", converse_response(VALID))
    t.chat("sys", "q", json_schema={"type": "object", "properties": {"a": {"type": "number", "minimum": 0}}})
    fmt = seen["outputConfig"]["textFormat"]
    assert fmt["type"] == "json_schema"
    schema = json.loads(fmt["structure"]["jsonSchema"]["schema"])
    assert schema == {"type": "object", "properties": {"a": {"type": "number"}}}


def test_throttling_then_success_is_retried():
    t, stub = make()
    stub.add_client_error("converse", "ThrottlingException", "Too many requests", http_status_code=429)
    stub.add_client_error("converse", "ServiceUnavailableException", "busy", http_status_code=503)
    stub.add_response("converse", converse_response(VALID))
    assert t.label("thunder and rain").attempts == 1
    stub.assert_no_pending_responses()


def test_persistent_5xx_gives_up():
    t, stub = make(max_retries=2)
    for _ in range(3):
        stub.add_client_error("converse", "InternalServerException", "oops", http_status_code=500)
    with pytest.raises(TeacherError, match=r"after 3 tries.*InternalServerException"):
        t.chat("s", "u")
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status"),
    [("ValidationException", 400), ("AccessDeniedException", 403), ("ResourceNotFoundException", 404)],
)
def test_client_errors_are_not_retried(code, status):
    t, stub = make(structured="off", max_retries=3)
    stub.add_client_error("converse", code, "no", http_status_code=status)
    with pytest.raises(TeacherError, match=f"not retryable.*{code}"):
        t.label("q")
    stub.assert_no_pending_responses()


def test_model_without_structured_output_falls_back_and_remembers():
    t, stub = make()
    stub.add_client_error(
        "converse", "ValidationException", "This model doesn't support outputConfig", http_status_code=400
    )
    stub.add_response("converse", converse_response(VALID), expected(structured=False, user="a"))
    stub.add_response("converse", converse_response(VALID), expected(structured=False, user="b"))
    t.label("a")
    t.label("b")  # no second rejected request: the fallback is remembered
    stub.assert_no_pending_responses()


def test_garbage_text_is_recorded_as_failure_with_raw():
    t, stub = make(max_attempts=2)
    garbage = "I think it is mostly visual, maybe 80%."
    stub.add_response("converse", converse_response(garbage, 100, 12))
    stub.add_response("converse", converse_response(garbage, 100, 12))
    with pytest.raises(InvalidTeacherOutput, match="after 2 attempts") as info:
        t.label("q")
    assert info.value.raw == garbage
    assert info.value.usage.input_tokens == 200  # type: ignore[attr-defined]
    stub.assert_no_pending_responses()


def test_reasoning_blocks_are_skipped():
    t, stub = make()
    resp = converse_response(VALID)
    resp["output"]["message"]["content"] = [
        {"reasoningContent": {"reasoningText": {"text": "let me think"}}},
        {"text": VALID},
    ]
    stub.add_response("converse", resp)
    assert t.chat("s", "u").text == VALID


def test_no_region_is_a_config_error():
    t = BedrockTeacher(model_id=MODEL)
    with pytest.raises(ConfigError, match="region"):
        t.chat("s", "u")


def test_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match="nosuchprofile"):
        load_teacher(f"bedrock:{MODEL}?region=us-east-1&profile=nosuchprofile").chat("s", "u")


def test_profile_and_region_from_aws_config(tmp_path, monkeypatch):
    (tmp_path / "config").write_text("[profile labeller]\nregion = eu-west-1\n")
    t = load_teacher(f"bedrock:{MODEL}?profile=labeller")
    assert t.client.meta.region_name == "eu-west-1"
