"""Teacher running a local GGUF model in-process with llama.cpp (xllamacpp wheels, no compiling); also a tiny server.

`python -m vidroute.teachers.gguf --model smollm2 --port 8080` serves the same model over llama.cpp's own
OpenAI-compatible HTTP server, for the `openai:MODEL@http://127.0.0.1:8080/v1` teacher or any other client.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vidroute.errors import ConfigError, TeacherError, require
from vidroute.models import NAMED, resolve
from vidroute.spec import TaskSpec
from vidroute.teachers import chatfmt
from vidroute.teachers.base import ChatResult, Teacher
from vidroute.teachers.retry import RetryPolicy, Verdict, call_with_retries

log = logging.getLogger(__name__)


class ServerError(Exception):
    """An error object returned by the in-process llama.cpp server (it mirrors the HTTP status codes)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"llama.cpp error {code}: {message}")
        self.code = code


def _classify(exc: BaseException) -> Verdict:
    # 503 = still loading / no free slot; other codes (400 bad request, grammar errors) will not get better.
    if isinstance(exc, ServerError):
        return Verdict(exc.code == 429 or exc.code >= 500, reason=str(exc))
    if isinstance(exc, chatfmt.MalformedResponse):
        return Verdict(True, reason=str(exc))
    return Verdict(False, reason=f"{type(exc).__name__}: {exc}")


def default_threads() -> int:
    """Half the cores, 1 to 4. Measured on 2 busy cores: 2 llama.cpp threads ran 10-20x slower than 1, because
    ggml's threads wait on each other at every layer and a descheduled one stalls the token."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def start_server(
    model: str | Path,
    *,
    n_ctx: int = 4096,
    n_threads: int | None = None,
    n_parallel: int = 1,
    port: int = 0,
    host: str = "127.0.0.1",
    seed: int | None = None,
    verbose: bool = False,
) -> Any:
    """Load a GGUF file (or a packaged model name) into an `xllamacpp.Server`.

    The server also listens over HTTP on `host:port` (port 0 picks a free one; see `.listening_address`).
    """
    xlc = require("xllamacpp", "local")
    path = resolve(str(model))
    if not path.is_file() or path.suffix.lower() != ".gguf":
        raise ConfigError(f"GGUF model {model!r} resolved to {path}, which is not a .gguf file")
    params = xlc.CommonParams()
    params.model.path = str(path)
    params.n_ctx = n_ctx
    params.n_parallel = n_parallel
    threads = n_threads or default_threads()
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    if seed is not None:  # None: llama.cpp draws one, so re-asks at temperature > 0 can differ
        params.sampling.seed = seed
    params.hostnames = [host]
    params.port = port
    params.verbosity = 3 if verbose else 0
    t0 = time.perf_counter()
    try:
        server = xlc.Server(params)
    except RuntimeError as exc:
        raise TeacherError(f"llama.cpp could not load {path} (n_ctx={n_ctx}): {exc}") from exc
    log.info(
        "loaded %s in %.1fs; llama.cpp listening on %s", path.name, time.perf_counter() - t0, server.listening_address
    )
    return server


class GGUFTeacher(Teacher):
    """A local GGUF chat model run by llama.cpp in this process; the offline default teacher.

    `mode="json"` generates the weights JSON under a grammar built from the JSON schema (right keys, numbers in
    [0, 1]; the sum is still checked by validation). `mode="next_token"` asks for one word and reads the
    probabilities of the signal names from the first token's top logprobs. The model loads on first use.

    Example:
        >>> t = GGUFTeacher(model="smollm2", mode="next_token")
        >>> t.label("a dog barking at the mailman").weights   # doctest: +SKIP
    """

    backend = "gguf"

    def __init__(
        self,
        *,
        model: str = "smollm2",
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_parallel: int = 1,
        top_logprobs: int = 20,
        seed: int | None = None,
        max_retries: int = 2,
        model_id: str | None = None,
        spec: TaskSpec | None = None,
        temperature: float = 0.0,
        max_tokens: int = 200,
        max_attempts: int = 3,
        mode: str = "json",
    ) -> None:
        super().__init__(
            model_id=model_id or (model if model in NAMED else Path(model).name),
            spec=spec,
            temperature=temperature,
            max_tokens=max_tokens,
            max_attempts=max_attempts,
            mode=mode,
        )
        self.model = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_parallel = n_parallel
        self.top_logprobs = top_logprobs
        self.seed = seed
        self.max_retries = max_retries
        self._server: Any = None
        self._lock = threading.Lock()

    @property
    def server(self) -> Any:
        with self._lock:
            if self._server is None:
                self._server = start_server(
                    self.model,
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_parallel=self.n_parallel,
                    seed=self.seed,
                    verbose=log.isEnabledFor(logging.DEBUG),
                )
            return self._server

    @property
    def listening_address(self) -> str:
        """llama.cpp's HTTP address for the loaded model (loads it if needed)."""
        return str(self.server.listening_address)

    def close(self) -> None:
        """Free the model; the next call loads it again."""
        with self._lock:
            self._server = None

    def usd(self, input_tokens: int, output_tokens: int) -> float:
        return 0.0  # runs on your own CPU: no per-token price

    def _complete(self, request: dict[str, Any]) -> tuple[dict[str, Any], ChatResult]:
        server = self.server

        def once() -> tuple[dict[str, Any], ChatResult]:
            t0 = time.perf_counter()
            try:
                body = server.handle_chat_completions(request)
            except ValueError as exc:  # e.g. a JSON schema llama.cpp cannot turn into a grammar
                raise ServerError(400, str(exc)) from exc
            latency = (time.perf_counter() - t0) * 1000
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                err = body["error"]
                raise ServerError(int(err.get("code") or 500), str(err.get("message", err)))
            return body, chatfmt.parse_completion(body, latency)

        return call_with_retries(
            once,
            classify=_classify,
            policy=RetryPolicy(max_retries=self.max_retries, base_delay=0.2, max_delay=2.0),
            what=f"gguf {self.model_id}",
        )

    def chat(
        self,
        system: str,
        user: str,
        *,
        json_schema: dict[str, Any] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResult:
        request: dict[str, Any] = {
            "messages": chatfmt.messages(system, user),
            "temperature": self.temperature if temperature is None else temperature,
            "max_tokens": self.max_tokens if max_tokens is None else max_tokens,
            **chatfmt.response_format("json_schema", json_schema),
        }
        return self._complete(request)[1]

    def next_token_probs(self, system: str, user: str, candidates: list[str]) -> ChatResult:
        request = {
            "messages": chatfmt.messages(system, user),
            "temperature": 0.0,
            "max_tokens": 1,
            "logprobs": True,
            "top_logprobs": self.top_logprobs,
        }
        body, res = self._complete(request)
        lps = chatfmt.top_logprobs(body)
        if lps is None:
            raise TeacherError(f"llama.cpp returned no logprobs for {self.model_id}: {str(body)[:300]}")
        res.token_probs = chatfmt.candidate_probs(lps, candidates)
        res.text = chatfmt.next_token_text(res.text, lps)
        return res


def main(argv: list[str] | None = None) -> int:
    """Serve a GGUF model over llama.cpp's OpenAI-compatible HTTP API until interrupted."""
    ap = argparse.ArgumentParser(prog="python -m vidroute.teachers.gguf", description=main.__doc__)
    ap.add_argument("--model", default="smollm2", help="packaged model name or path to a .gguf file")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=None, help="default: half the cores, 1 to 4")
    ap.add_argument("--parallel", type=int, default=1)
    args = ap.parse_args(argv)
    server = start_server(
        args.model, n_ctx=args.ctx, n_threads=args.threads, n_parallel=args.parallel, port=args.port, host=args.host
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # The first stdout line is machine-readable so scripts and tests can find the port.
    print(f"listening {server.listening_address}", flush=True)
    while not stop.wait(0.5):
        pass
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
