"""Fixtures for teacher tests: a programmable OpenAI-style HTTP server on 127.0.0.1 (junk, 429s, 5xx, slow)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


Behaviour = Reply | Callable[[dict[str, Any]], Reply]


def completion(content: str, *, prompt_tokens: int = 50, completion_tokens: int = 20, **extra: Any) -> Reply:
    """A well-formed chat.completion carrying `content`."""
    choice: dict[str, Any] = {
        "index": 0,
        "finish_reason": "stop",
        "message": {"role": "assistant", "content": content},
    }
    choice.update(extra)
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake",
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Reply(body=json.dumps(body).encode())


def error(status: int, message: str = "error", headers: dict[str, str] | None = None) -> Reply:
    body = {"error": {"message": message, "type": "test_error", "code": status}}
    return Reply(status=status, body=json.dumps(body).encode(), headers=headers or {})


class FakeLLMServer:
    """Serves `script` replies in order (then `default` forever) and records every request body it receives."""

    Reply = Reply
    completion = staticmethod(completion)
    error = staticmethod(error)

    def __init__(self, default: Behaviour | None = None) -> None:
        self.script: list[Behaviour] = []
        self.default: Behaviour = default or completion("{}")
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode("utf-8", "replace")}
                with outer._lock:
                    outer.requests.append(body)
                    outer.times.append(time.monotonic())
                    outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                    behaviour = outer.script.pop(0) if outer.script else outer.default
                reply = behaviour(body) if callable(behaviour) else behaviour
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply.body)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeLLMServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_llm():
    """A running FakeLLMServer; program it through `.script` / `.default`, read `.requests`."""
    with FakeLLMServer() as srv:
        yield srv
