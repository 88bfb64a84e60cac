"""`vidroute serve` (the HTTP API and search page) and `vidroute bench serve` (a bounded loopback load test)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from vidroute.cli._app import app, bench_app, console


def _settings_env(
    model: Path | None,
    store: str | None,
    api_keys: list[str] | None,
    media_roots: list[Path] | None,
    public_read: bool | None,
    cors: list[str] | None,
) -> dict[str, str]:
    """Command-line options as VIDROUTE_* variables, so every uvicorn worker builds the same Settings."""
    env: dict[str, str] = {}
    if model is not None:
        env["VIDROUTE_MODEL_DIR"] = str(model.expanduser().resolve())
    if store:
        env["VIDROUTE_STORE_URI"] = store if "://" in store else str(Path(store).expanduser().resolve())
    if api_keys:
        env["VIDROUTE_API_KEYS"] = ",".join(api_keys)
    if media_roots:
        env["VIDROUTE_MEDIA_ROOTS"] = ",".join(str(p.expanduser().resolve()) for p in media_roots)
    if public_read is not None:
        env["VIDROUTE_PUBLIC_READ"] = "true" if public_read else "false"
    if cors:
        env["VIDROUTE_CORS_ORIGINS"] = ",".join(cors)
    return env


@app.command("serve")
def serve_cmd(
    model: Annotated[
        Path | None, typer.Option("--model", "-m", help="Router model folder (from `vidroute train`).")
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", "-s", help="Search store URI (folder or qdrant://...).")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the service to the network.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes (each loads the model).")] = 1,
    api_key: Annotated[
        list[str] | None,
        typer.Option("--api-key", help="A key for write endpoints (repeatable; or VIDROUTE_API_KEYS)."),
    ] = None,
    media_root: Annotated[
        list[Path] | None,
        typer.Option("--media-root", help="Folder that may be indexed by path and streamed (repeatable)."),
    ] = None,
    public_read: Annotated[
        bool | None, typer.Option("--public-read/--private-read", help="Whether reads need a key (default public).")
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", help="Allow this browser origin (repeatable; default off).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API (/v1/route, /v1/search, /v1/index, /metrics, /docs) and the search page at /.

    Options override the VIDROUTE_* environment (and .env). Open http://HOST:PORT/ for the page.
    """
    import uvicorn

    env = _settings_env(model, store, api_key, media_root, public_read, cors_origin)
    if workers > 1 and not os.environ.get("VIDROUTE_MEDIA_SECRET"):
        import secrets

        # Every worker must sign media links with the same key, or a link from one fails on another.
        env["VIDROUTE_MEDIA_SECRET"] = secrets.token_hex(32)
    os.environ.update(env)
    console.print(f"[bold]vidroute[/] serving on http://{host}:{port}/  (API docs: /docs)")
    options: dict = {"host": host, "port": port, "workers": workers, "log_level": log_level, "factory": True}
    try:
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    except ImportError:
        pass
    try:
        import httptools  # noqa: F401

        options["http"] = "httptools"
    except ImportError:
        pass
    uvicorn.run("vidroute.serve.app:create_app", **options)


@bench_app.command("serve")
def bench_serve_cmd(
    model: Annotated[Path | None, typer.Option("--model", "-m", help="Router model folder.")] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", "-s", help="Store to search; default: the cached 100k-segment bench store."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Load an already running server instead (loopback URLs only).")
    ] = None,
    duration: Annotated[float, typer.Option(help="Seconds of load per endpoint.")] = 30.0,
    search_duration: Annotated[float | None, typer.Option(help="Seconds for /v1/search (default: --duration).")] = None,
    concurrency: Annotated[int, typer.Option(help="Concurrent connections for /v1/route.")] = 8,
    search_concurrency: Annotated[int, typer.Option(help="Concurrent connections for /v1/search.")] = 8,
    warmup: Annotated[float, typer.Option(help="Unrecorded warm-up seconds per endpoint.")] = 3.0,
    queries: Annotated[
        Path | None, typer.Option(help="Query file (.txt lines or .jsonl with `query`); default: synthetic.")
    ] = None,
    segments: Annotated[int, typer.Option(help="Size of the synthetic bench store when --store is not given.")] = (
        100_000
    ),
    no_search: Annotated[bool, typer.Option("--no-search", help="Only load /v1/route.")] = False,
    route_cache: Annotated[int, typer.Option(help="Server-side LRU route cache size (0 = off, the default).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Load-test the API on loopback: /v1/route and /v1/search for a fixed time with distinct queries.

    Prints route_rps, route_p99_ms, route_errors, search_rps, search_p99_ms, search_errors (and more).
    """
    from vidroute.serve.loadtest import bench_serve, bench_store

    model_dir = model
    if model_dir is None and url is None:
        model_dir = _default_model()
    store_uri = store
    if store_uri is None and url is None and not no_search:
        console.print(f"[dim]preparing the {segments:,}-segment bench store (cached)…[/]")
        store_uri = str(bench_store(segments))
    result = bench_serve(
        model_dir=model_dir,
        store_uri=None if no_search else store_uri,
        url=url,
        duration_s=duration,
        search_duration_s=search_duration,
        concurrency=concurrency,
        search_concurrency=search_concurrency,
        warmup_s=warmup,
        queries=queries,
        route_cache_size=route_cache,
        search=not no_search,
    )
    if as_json:
        typer.echo(json.dumps(result))
        return
    for key, value in result.items():
        if not key.endswith("error_samples"):
            typer.echo(f"{key:28s} {value}")
    for key in ("route_error_samples", "search_error_samples"):
        for sample in result.get(key) or []:
            console.print(f"[red]{key}[/] {sample}")


def _default_model() -> Path:
    from vidroute.serve.loadtest import bench_model

    console.print("[dim]no --model given: training a small bench router (cached)…[/]")
    return bench_model()
