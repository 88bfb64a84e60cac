"""The load-test machinery on a real server: bounded, loopback-only, counts errors, and the CLI prints the keys."""

from __future__ import annotations

import json

import pytest

from vidroute.errors import ConfigError
from vidroute.serve.loadtest import LoadResult, check_loopback, run_load, served, synthetic_queries


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.com", "ftp://127.0.0.1", "http://0.0.0.0:80"])
def test_only_loopback_targets(url):
    with pytest.raises(ConfigError, match="loopback"):
        check_loopback(url)


def test_loopback_forms_accepted():
    assert check_loopback("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert check_loopback("http://localhost:1") == "http://localhost:1"


def test_synthetic_queries_are_distinct_and_plausible():
    qs = synthetic_queries(20_000)
    assert len(set(qs)) == 20_000
    assert all(0 < len(q) <= 1000 for q in qs)


def test_run_load_counts_requests_latency_and_errors(live_url):
    good = [{"query": q} for q in synthetic_queries(200)]
    result = run_load(live_url, "/v1/route", good, duration_s=1.5, concurrency=4, warmup_s=0.3)
    assert isinstance(result, LoadResult)
    assert result.requests > 10 and result.errors == 0 and result.status_counts == {"200": result.requests}
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms <= result.max_ms
    assert result.rps > 0 and result.distinct_payloads == 200

    bad = [{"query": "x" * 1001}]
    result = run_load(live_url, "/v1/route", bad, duration_s=0.5, concurrency=2, warmup_s=0, max_requests=20)
    assert result.requests == 20 and result.errors == 20 and result.status_counts == {"422": 20}
    assert "422" in result.error_samples[0]


def test_bench_cli_against_a_running_server(live_url):
    from typer.testing import CliRunner

    from vidroute.cli import app

    out = CliRunner().invoke(
        app,
        ["bench", "serve", "--json", "--url", live_url, "--duration", "1", "--warmup", "0.2", "--concurrency", "2"],
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("route_rps", "route_p99_ms", "route_errors", "search_rps", "search_p99_ms", "search_errors"):
        assert key in result, key
    assert result["route_errors"] == 0 and result["search_errors"] == 0
    assert result["route_rps"] > 0 and result["search_rps"] > 0


def test_served_runs_the_app_factory_in_a_subprocess(router_dir):
    """The path `vidroute serve` and `bench serve` take: uvicorn --factory with VIDROUTE_* settings."""
    import httpx

    with served({"VIDROUTE_MODEL_DIR": str(router_dir)}, ready_timeout_s=240) as app:
        url = app.url
        r = httpx.post(f"{url}/v1/route", json={"query": "thunder rumbling during a storm"}, timeout=30)
        assert r.status_code == 200 and r.json()["data"][0]["model"].endswith(":frozen")
        assert httpx.get(f"{url}/readyz").json()["checks"] == {"router": "ok"}
