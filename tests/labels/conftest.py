"""Fixtures for labelling-run tests: a real local OpenAI-compatible HTTP server and a scripted in-process teacher."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from vidroute.records import QueryRecord
from vidroute.teachers.base import ChatResult, Teacher

SIGNALS = ("visual", "audio", "transcription", "metadata")


def weights_for(query: str, draw: int = 0) -> dict[str, float]:
    """Deterministic weights on a 0.05 grid derived from the query text (and a draw number)."""
    h = hashlib.sha256(f"{query}|{draw}".encode()).digest()
    raw = [1 + h[i] % 7 for i in range(len(SIGNALS))]
    units = [r * 20 // sum(raw) for r in raw]
    units[raw.index(max(raw))] += 20 - sum(units)
    return {s: u / 20 for s, u in zip(SIGNALS, units, strict=True)}


def answer_for(query: str, draw: int = 0) -> str:
    """What the fake model says: valid JSON weights, or prose for queries containing GARBAGE."""
    if "GARBAGE" in query:
        return f"I think {query!r} is mostly about what you see."
    return json.dumps({**weights_for(query, draw), "reasoning": f"synthetic answer for {query}"})


class ChatServer:
    """A stdlib OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1 with a per-request delay."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._draws: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "fake-router", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    msgs = body.get("messages", [])
                    user = next((m for m in reversed(msgs) if m.get("role") == "user"), {}).get("content", "")
                    if isinstance(user, list):
                        user = " ".join(p.get("text", "") for p in user if isinstance(p, dict))
                    system = next((m.get("content", "") for m in msgs if m.get("role") == "system"), "")
                    with server._lock:
                        draw = server._draws.get(user, 0)
                        # Draws differ only when sampling, as a real model's would.
                        server._draws[user] = draw + (1 if (body.get("temperature") or 0) > 0 else 0)
                    text = answer_for(user, draw)
                    prompt_tokens, completion_tokens = (len(system) + len(user)) // 4, len(text) // 4
                    self._send(
                        200,
                        {
                            "id": f"chatcmpl-{server.requests}",
                            "object": "chat.completion",
                            "created": int(time.time()),
                            "model": body.get("model", "fake-router"),
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop",
                                    "logprobs": None,
                                }
                            ],
                            "usage": {
                                "prompt_tokens": prompt_tokens,
                                "completion_tokens": completion_tokens,
                                "total_tokens": prompt_tokens + completion_tokens,
                            },
                        },
                    )
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(self, code: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> ChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    with ChatServer(delay=0.0) as srv:
        yield srv


class ScriptedTeacher(Teacher):
    """A real `Teacher` (so `label()` re-asks and validates as in production) whose `chat` is a Python function.

    `script(query, call_number_for_query) -> str | Exception`; exceptions are raised (e.g. `TeacherError`).
    """

    backend = "scripted"

    def __init__(
        self,
        script: Callable[[str, int], str | BaseException],
        *,
        delay: float = 0.0,
        temperature: float = 0.5,
        max_attempts: int = 2,
    ) -> None:
        super().__init__(model_id="scripted-v1", temperature=temperature, max_attempts=max_attempts)
        self.script = script
        self.delay = delay
        self.calls: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def usd(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens * 1e-6 + output_tokens * 2e-6

    def chat(self, system: str, user: str, **kwargs: Any) -> ChatResult:
        with self._lock:
            n = self.calls.get(user, 0)
            self.calls[user] = n + 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            res = self.script(user, n)
        finally:
            with self._lock:
                self.in_flight -= 1
        if isinstance(res, BaseException):
            raise res
        return ChatResult(text=res, input_tokens=10, output_tokens=5, latency_ms=self.delay * 1000)


def make_queries(n: int, prefix: str = "q") -> list[QueryRecord]:
    topics = ["a dog catching a frisbee", "applause after the speech", "she says hello world", "2019 final"]
    return [
        QueryRecord(id=f"{prefix}{i:04d}", query=f"{topics[i % len(topics)]} #{i}", intent="mixed", split="train")
        for i in range(n)
    ]


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, as a fixture (test modules cannot import conftest under --import-mode=importlib)."""
    return SimpleNamespace(
        ChatServer=ChatServer,
        ScriptedTeacher=ScriptedTeacher,
        make_queries=make_queries,
        weights_for=weights_for,
        answer_for=answer_for,
    )
