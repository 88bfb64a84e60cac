"""A bounded load test for the HTTP API: an asyncio keep-alive client against a loopback server, in its own process.

`bench_serve` starts `uvicorn` for the app in a subprocess on 127.0.0.1 (one worker, uvloop/httptools when
installed), waits for /readyz, then drives /v1/route and /v1/search from this process with a fixed number of
concurrent keep-alive connections for a fixed time (or request count), after a warm-up. Only loopback URLs are
accepted: this is a benchmark, not a traffic generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from vidroute.errors import ConfigError

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class LoadResult(BaseModel):
    """What one load run measured. Latency is per request, client side (loopback), in milliseconds."""

    path: str
    requests: int
    errors: int
    duration_s: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    concurrency: int
    distinct_payloads: int
    status_counts: dict[str, int]
    error_samples: list[str] = []


def check_loopback(url: str) -> str:
    """Return `url` without a trailing slash, or raise ConfigError unless it points at this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or (parts.hostname or "") not in LOOPBACK_HOSTS | {"::1"}:
        raise ConfigError(f"load tests run against loopback only (http://127.0.0.1:PORT), got {url!r}")
    return url.rstrip("/")


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


class _Connection:
    """A minimal HTTP/1.1 keep-alive client: the generator must cost far less CPU than the server it measures
    (httpx spends ~2.5 ms of CPU per request here, more than the server; this spends ~0.05 ms)."""

    def __init__(self, host: str, port: int, headers: bytes) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def post(self, path: bytes, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (path, self.host.encode(), self.port, len(body), self.headers, body)
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        if b"transfer-encoding: chunked" in lower:
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(data[:-2])
            payload = b"".join(chunks)
        else:
            i = lower.find(b"content-length:")
            n = int(lower[i + 15 : lower.index(b"\r\n", i)]) if i >= 0 else 0
            payload = await self.reader.readexactly(n)
        if b"connection: close" in lower:
            self.close()
        return status, payload


async def _drive(
    url: str,
    path: str,
    payloads: Sequence[dict[str, Any]],
    *,
    duration_s: float,
    max_requests: int | None,
    concurrency: int,
    warmup_s: float,
    headers: dict[str, str] | None,
    timeout_s: float,
) -> LoadResult:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in (headers or {}).items())
    bodies = [json.dumps(p, ensure_ascii=False).encode("utf-8") for p in payloads]
    cycle = itertools.cycle(bodies)
    target = (parts.path.rstrip("/") + path).encode("ascii")
    latencies: list[float] = []
    statuses: Counter = Counter()
    samples: list[str] = []
    budget = max_requests if max_requests is not None else float("inf")
    issued = 0
    recording = False

    async def one(conn: _Connection) -> None:
        body = next(cycle)
        t0 = time.perf_counter()
        try:
            status, payload = await asyncio.wait_for(conn.post(target, body), timeout_s)
            if status >= 400 and len(samples) < 5:
                samples.append(f"{status}: {payload[:200].decode('utf-8', 'replace')}")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
            conn.close()
            status = 0
            if len(samples) < 5:
                samples.append(f"{type(exc).__name__}: {exc}")
        if recording:
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses[str(status)] += 1

    async def worker(until: float, conn: _Connection) -> None:
        nonlocal issued
        while time.perf_counter() < until and (not recording or issued < budget):
            if recording:
                issued += 1
            await one(conn)

    conns = [_Connection(host, port, extra) for _ in range(concurrency)]
    try:
        # Warm-up: connections open, caches and lazy imports settle; nothing recorded.
        if warmup_s > 0:
            warm_end = time.perf_counter() + warmup_s
            await asyncio.gather(*(worker(warm_end, c) for c in conns))
        recording = True
        start = time.perf_counter()
        await asyncio.gather(*(worker(start + duration_s, c) for c in conns))
        elapsed = time.perf_counter() - start
    finally:
        for conn in conns:
            conn.close()

    latencies.sort()
    ok = sum(n for s, n in statuses.items() if s.startswith("2"))
    total = sum(statuses.values())
    return LoadResult(
        path=path,
        requests=total,
        errors=total - ok,
        duration_s=round(elapsed, 3),
        rps=round(total / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(_percentile(latencies, 0.50), 2),
        p95_ms=round(_percentile(latencies, 0.95), 2),
        p99_ms=round(_percentile(latencies, 0.99), 2),
        max_ms=round(latencies[-1], 2) if latencies else 0.0,
        concurrency=concurrency,
        distinct_payloads=len(set(bodies)),
        status_counts=dict(statuses),
        error_samples=samples,
    )


def run_load(
    url: str,
    path: str,
    payloads: Sequence[dict[str, Any]],
    *,
    duration_s: float = 30.0,
    max_requests: int | None = None,
    concurrency: int = 8,
    warmup_s: float = 2.0,
    headers: dict[str, str] | None = None,
    timeout_s: float = 10.0,
) -> LoadResult:
    """Drive `POST url+path` with `payloads` (cycled) from `concurrency` connections; bounded by time and count."""
    url = check_loopback(url)
    if not payloads:
        raise ConfigError("the load test needs at least one payload")
    if duration_s <= 0 or duration_s > 600:
        raise ConfigError(f"duration must be in (0, 600] seconds, got {duration_s}")
    if not 1 <= concurrency <= 256:
        raise ConfigError(f"concurrency must be in [1, 256], got {concurrency}")
    coro = _drive(
        url,
        path,
        payloads,
        duration_s=duration_s,
        max_requests=max_requests,
        concurrency=concurrency,
        warmup_s=warmup_s,
        headers=headers,
        timeout_s=timeout_s,
    )
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# ---- queries -----------------------------------------------------------------------------------------------
_SUBJECTS = (
    "a dog",
    "two kids",
    "a chef",
    "the crowd",
    "a cyclist",
    "an old man",
    "a woman in a red coat",
    "the band",
    "a cat",
    "firefighters",
    "a surfer",
    "the teacher",
    "a news anchor",
    "a toddler",
    "the goalkeeper",
    "a pilot",
    "a street vendor",
    "two dancers",
    "a horse",
    "the audience",
    "a skateboarder",
    "a robot",
    "the mayor",
    "a nurse",
)
_ACTIONS = (
    "running on the beach",
    "laughing at a joke",
    "cooking pasta",
    "cheering after a goal",
    "crossing a bridge",
    "playing the violin",
    "talking about climate change",
    "explaining the recipe",
    "jumping into a pool",
    "waving at the camera",
    "arguing in a kitchen",
    "singing happy birthday",
    "reading the weather forecast",
    "repairing a bike",
    "walking in the rain",
    "giving a speech",
    "drumming loudly",
    "whispering a secret",
    "scoring a penalty",
    "opening a present",
    "painting a mural",
    "landing a plane",
    "selling fruit",
    "sleeping",
)
_CONTEXTS = (
    "at sunset",
    "in slow motion",
    "with sirens in the background",
    "while it thunders",
    "in the 2019 final",
    "from the TED talk",
    "in black and white",
    "at night",
    "with applause",
    "near a waterfall",
    "indoors",
    "with birds chirping",
    "during the interview",
    "in the trailer",
    "with a crying baby",
    "on live TV",
)
_FORMS = ("{s} {a} {c}", "{s} {a}", "clip of {s} {a} {c}", "where {s} is {a}", "{s} {a}, {c}", "show me {s} {a} {c}")


def synthetic_queries(n: int, *, seed: int = 0) -> list[str]:
    """`n` distinct, plausible search queries (deterministic); falls back to numbered variants past the grid."""
    rng = random.Random(seed)
    grid = [
        form.format(s=s, a=a, c=c)
        for form in _FORMS
        for s in _SUBJECTS
        for a in _ACTIONS
        for c in _CONTEXTS
        if "{c}" in form or c == _CONTEXTS[0]
    ]
    rng.shuffle(grid)
    out = list(dict.fromkeys(grid))[:n]
    i = 0
    while len(out) < n:
        out.append(f"{grid[i % len(grid)]} part {i // len(grid) + 2}")
        i += 1
    return out


def load_queries(path: Path | None, n: int, *, seed: int = 0) -> list[str]:
    """Queries from a text/JSONL file (`query` field) when given, else `synthetic_queries`."""
    if path is None:
        return synthetic_queries(n, seed=seed)
    from vidroute.records import read_jsonl

    if path.suffix == ".jsonl":
        queries = [str(row["query"]) for row in read_jsonl(path) if row.get("query")]
    else:
        queries = [line.strip() for line in path.read_text("utf-8").splitlines() if line.strip()]
    queries = [q[:1000] for q in dict.fromkeys(queries)]
    if not queries:
        raise ConfigError(f"no queries in {path}")
    random.Random(seed).shuffle(queries)
    return queries[:n]


# ---- server ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, *, timeout_s: float = 180.0, proc: subprocess.Popen | None = None) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigError(f"the server exited with code {proc.returncode} before it was ready")
        try:
            response = httpx.get(f"{url}/readyz", timeout=2.0)
            if response.status_code == 200:
                return
            last = response.text[:300]
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise ConfigError(f"the server at {url} was not ready after {timeout_s:.0f} s: {last}")


def uvicorn_command(host: str, port: int, *, workers: int = 1, log_level: str = "warning") -> list[str]:
    """`python -m uvicorn` for the app factory (Settings from VIDROUTE_* env), fastest loop/parser installed."""
    cmd = [sys.executable, "-m", "uvicorn", "vidroute.serve.app:create_app", "--factory"]
    cmd += ["--host", host, "--port", str(port), "--workers", str(workers), "--log-level", log_level, "--no-access-log"]
    for module, flag in (("uvloop", ["--loop", "uvloop"]), ("httptools", ["--http", "httptools"])):
        with contextlib.suppress(ImportError):
            __import__(module)
            cmd += flag
    return cmd


@dataclass(frozen=True)
class ServedApp:
    url: str
    pid: int


@contextlib.contextmanager
def served(env: dict[str, str], *, port: int | None = None, ready_timeout_s: float = 180.0) -> Iterator[ServedApp]:
    """Run the app in a uvicorn subprocess on 127.0.0.1 with `env` (VIDROUTE_* settings) until the block ends."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, **env}
    proc = subprocess.Popen(uvicorn_command("127.0.0.1", port), env=full_env)
    try:
        wait_ready(url, timeout_s=ready_timeout_s, proc=proc)
        yield ServedApp(url=url, pid=proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def bench_serve(
    *,
    model_dir: Path | None,
    store_uri: str | None,
    url: str | None = None,
    duration_s: float = 30.0,
    search_duration_s: float | None = None,
    concurrency: int = 8,
    search_concurrency: int = 8,
    warmup_s: float = 3.0,
    queries: Path | None = None,
    n_queries: int = 20_000,
    route_cache_size: int = 0,
    search: bool = True,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Load-test /v1/route (and /v1/search when a store is given) and return the flat JSON the CLI prints."""
    texts = load_queries(queries, n_queries)
    route_payloads = [{"query": q} for q in texts]
    search_payloads = [{"query": q, "k": 10} for q in texts]
    env = {"VIDROUTE_ROUTE_CACHE_SIZE": str(route_cache_size), **(extra_env or {})}
    if model_dir is not None:
        env["VIDROUTE_MODEL_DIR"] = str(model_dir)
    if store_uri:
        env["VIDROUTE_STORE_URI"] = str(store_uri)

    with contextlib.ExitStack() as stack:
        pid = None
        if url:
            base = check_loopback(url)
        else:
            app = stack.enter_context(served(env))
            base, pid = app.url, app.pid
        out: dict[str, Any] = {
            "url": base,
            "concurrency": concurrency,
            "search_concurrency": search_concurrency,
            "route_cache_size": route_cache_size,
            "cpus": os.cpu_count(),
            "load_avg_1m_before": round(os.getloadavg()[0], 2),
        }
        with _cpu_meter(pid) as cpu:
            route = run_load(
                base, "/v1/route", route_payloads, duration_s=duration_s, concurrency=concurrency, warmup_s=warmup_s
            )
        out.update(_flat("route", route, cpu))
        if search and (store_uri or url):
            with _cpu_meter(pid) as cpu:
                result = run_load(
                    base,
                    "/v1/search",
                    search_payloads,
                    duration_s=search_duration_s or duration_s,
                    concurrency=search_concurrency,
                    warmup_s=warmup_s,
                )
            out.update(_flat("search", result, cpu))
        else:
            out.update({"search_rps": None, "search_p99_ms": None, "search_errors": None})
        out["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    return out


def _proc_cpu_s(pid: int | None) -> float | None:
    """User+system CPU seconds of a process and its threads (Linux /proc), or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@contextlib.contextmanager
def _cpu_meter(server_pid: int | None) -> Iterator[dict[str, float | None]]:
    """CPU seconds the server process and this (client) process used inside the block: on a shared machine these
    say what a request costs even when wall-clock throughput is squeezed by other work."""
    import resource

    out: dict[str, float | None] = {}
    s0 = _proc_cpu_s(server_pid)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    yield out
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    s1 = _proc_cpu_s(server_pid)
    out["server_cpu_s"] = None if s0 is None or s1 is None else s1 - s0
    out["client_cpu_s"] = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def _flat(prefix: str, result: LoadResult, cpu: dict[str, float | None] | None = None) -> dict[str, Any]:
    cpu = cpu or {}
    # CPU includes the unrecorded warm-up requests too, so it is per request of the whole run (a slight overestimate).
    per = {
        f"{prefix}_{who}_cpu_ms_per_request": round(cpu[f"{who}_cpu_s"] * 1000 / result.requests, 3)
        for who in ("server", "client")
        if cpu.get(f"{who}_cpu_s") is not None and result.requests
    }
    return {
        f"{prefix}_rps": result.rps,
        f"{prefix}_p50_ms": result.p50_ms,
        f"{prefix}_p95_ms": result.p95_ms,
        f"{prefix}_p99_ms": result.p99_ms,
        f"{prefix}_errors": result.errors,
        f"{prefix}_requests": result.requests,
        f"{prefix}_duration_s": result.duration_s,
        f"{prefix}_distinct_queries": result.distinct_payloads,
        f"{prefix}_error_samples": result.error_samples,
        **per,
    }


# ---- bench fixtures (cached) -------------------------------------------------------------------------------
def bench_cache_dir() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "vidroute" / "bench"


def bench_store(segments: int = 100_000, *, root: Path | None = None) -> Path:
    """A LanceDB store of `segments` synthetic segments (4 signals × 384-d, MiniLM embedders), built once.

    Vectors come from the search stage's structured synthetic corpus (topics → videos → segments); titles and
    transcripts are synthetic query-like text so the BM25 leg has work to do. Queries are embedded for real
    (MiniLM), so the load test pays every cost a real query does, though the hits mean nothing.
    """
    import numpy as np

    from vidroute.search.base import StoreConfig
    from vidroute.search.bench import SyntheticCorpus
    from vidroute.search.stores import open_store

    path = (root or bench_cache_dir()) / f"serve-store-{segments}"
    marker = path / ".complete"
    if marker.exists():
        try:
            _probe_store(path)
            return path
        except Exception as exc:  # built by an older store format: build again
            log.warning("rebuilding the bench store %s: %s", path, exc)
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    corpus = SyntheticCorpus(dim=384)
    store = open_store(str(path))
    store.configure(StoreConfig(layout=corpus.layout, embedders=dict.fromkeys(corpus.signals, "minilm")))
    texts = synthetic_queries(5000, seed=7)
    spv = corpus.segments_per_video
    done = 0
    for packed, masks, vid in corpus.chunks(segments):
        m = len(masks)
        idx = np.arange(done, done + m)
        video_ids = [f"bench{v:06d}" for v in vid]
        titles = [texts[v % len(texts)].capitalize() for v in vid]
        transcripts = [texts[(i * 7919) % len(texts)] for i in idx]
        columns = {
            "segment_id": [f"{v}:{i % spv:05d}" for v, i in zip(video_ids, idx, strict=True)],
            "video_id": video_ids,
            "path": [f"/bench/{v}.mp4" for v in video_ids],
            "start": [float((i % spv) * 10) for i in idx],
            "end": [float((i % spv) * 10 + 10) for i in idx],
            "transcript": transcripts,
            "title": titles,
            "description": [""] * m,
            "people": [[] for _ in range(m)],
            "genre": [""] * m,
            "date": [""] * m,
            "tags": [[] for _ in range(m)],
            "keyframe": [None] * m,
            "text": [f"{t} {tr}" for t, tr in zip(titles, transcripts, strict=True)],
        }
        store.append_columns(columns, packed, masks)
        done += m
        log.info("bench store: %d/%d segments", done, segments)
    store.optimize()
    if hasattr(store, "create_vector_index"):
        # An IVF index, as a real store of this size would have (LanceDB's default threshold is 200k rows).
        store.create_vector_index()
    store.close()
    _probe_store(path)
    marker.write_text(str(segments), encoding="utf-8")
    return path


def _probe_store(path: Path) -> None:
    """One fused search with random query vectors: raises when the store cannot be searched by this code."""
    import numpy as np

    from vidroute.search.stores import open_store

    store = open_store(str(path))
    if hasattr(store, "exact_limit"):
        store.exact_limit = 0  # probe through the indexes: loading the in-memory scan here would cost the client CPU
    try:
        rng = np.random.default_rng(0)
        layout = store.layout
        if layout is None:
            raise ValueError("the store has no layout")
        vectors = {s: rng.standard_normal(layout.dims[s]).astype(np.float32) for s in layout.signals}
        store.search(vectors, None, k=3, text="a dog on the beach")
    finally:
        store.close()


def bench_model(student: str = "static", *, root: Path | None = None) -> Path:
    """A router trained once for the load test: on the reference system's recorded Nova Premier labels when the
    shared data is present, else on the serving tests' small hand-labelled set."""
    path = (root or bench_cache_dir()) / f"serve-router-{student}"
    if (path / "card.json").exists():
        return path
    from vidroute.students import train_student

    shared = Path(os.environ.get("VIDROUTE_SHARED", Path(__file__).resolve().parents[4] / "shared"))
    labels = shared / "data" / "nova" / "premier_labels.jsonl"
    if labels.exists():
        from vidroute.formats import import_bedrock

        records = import_bedrock(labels)
        source = str(labels)
    else:
        records = _fallback_labels()
        source = "vidroute.serve.loadtest fallback labels"
    train_student(records, path, student=student, data_source=source)
    return path


def _fallback_labels():
    from vidroute.records import LabelRecord, TeacherInfo

    teacher = TeacherInfo(backend="hand", model_id="serve-bench", mode="imported")
    groups = {
        "visual": [f"{s} {a}" for s in _SUBJECTS[:12] for a in _ACTIONS[:4]],
        "audio": [f"the sound of {s} {a} {c}" for s in _SUBJECTS[:8] for a in _ACTIONS[4:6] for c in _CONTEXTS[2:4]],
        "transcription": [f"where {s} says {a}" for s in _SUBJECTS[:12] for a in _ACTIONS[6:10]],
        "metadata": [f"{s} {c}" for s in _SUBJECTS[:16] for c in _CONTEXTS[4:7]],
    }
    signals = list(groups)
    return [
        LabelRecord(
            id=f"{signal}-{i}",
            query=q,
            weights={s: 0.7 if s == signal else 0.1 for s in signals},
            teacher=teacher,
        )
        for signal, queries in groups.items()
        for i, q in enumerate(queries)
    ]
