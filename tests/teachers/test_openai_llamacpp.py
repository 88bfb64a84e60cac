"""The OpenAI-compatible teacher over real HTTP against a llama.cpp server (packaged SmolLM2) started by the test."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import urllib.request

import pytest

from vidroute.errors import ConfigError, InvalidTeacherOutput, TeacherError
from vidroute.spec import TaskSpec
from vidroute.teachers import load_teacher

pytest.importorskip("xllamacpp")
SIGNALS = TaskSpec.load().signal_names


@pytest.fixture(scope="module")
def server_url():
    try:
        from vidroute.models import smollm2_gguf

        smollm2_gguf()
    except ConfigError as exc:
        pytest.skip(str(exc))
    cmd = [
        sys.executable,
        "-m",
        "vidroute.teachers.gguf",
        "--model",
        "smollm2",
        "--port",
        "0",
        "--threads",
        "1",
        "--ctx",
        "2048",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("listening "):
            proc.kill()
            pytest.fail(f"llama.cpp server did not start (exit {proc.poll()}): {line!r}")
        base = line.split()[1].rstrip("/")
        with urllib.request.urlopen(f"{base}/health", timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "ok"
        yield f"{base}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_server_is_a_separate_process_on_loopback(server_url):
    assert server_url.startswith("http://127.0.0.1:")


def test_chat_with_json_schema_over_http(server_url):
    t = load_teacher(f"openai:smollm2@{server_url}", timeout=120)
    schema = {
        "type": "object",
        "properties": {s: {"type": "number"} for s in SIGNALS},
        "required": SIGNALS,
        "additionalProperties": False,
    }
    res = t.chat("Give weights as JSON.", "a choir singing in a church", json_schema=schema, max_tokens=60)
    assert list(json.loads(res.text)) == SIGNALS  # llama.cpp honoured response_format json_schema
    assert t.response_format_used == "json_schema"
    assert res.input_tokens > 10 and 0 < res.output_tokens <= 60


def test_next_token_mode_over_http(server_url):
    t = load_teacher(f"openai:smollm2@{server_url}?mode=next_token", timeout=120)
    label = t.label("a choir singing in a church")
    assert label.mode == "next_token" and set(label.weights) == set(SIGNALS)
    assert math.isclose(sum(label.weights.values()), 1.0)
    assert label.extra["mass_on_signals"] > 0
    assert label.usage.output_tokens == 1 and label.usage.input_tokens > 50


def test_json_label_over_http_is_valid_or_recorded(server_url):
    t = load_teacher(f"openai:smollm2@{server_url}", timeout=120, max_attempts=1, max_tokens=120)
    try:
        label = t.label("a choir singing in a church")
    except InvalidTeacherOutput as exc:
        assert set(json.loads(exc.raw)) == {*SIGNALS, "reasoning"}
    else:
        assert math.isclose(sum(label.weights.values()), 1.0)


def test_real_server_rejects_bad_request_without_retries(server_url):
    t = load_teacher(f"openai:smollm2@{server_url}?structured=json_schema", timeout=60)
    with pytest.raises(TeacherError, match="HTTP 400"):
        t.chat("s", "u", json_schema={"type": "bogus"}, max_tokens=4)
