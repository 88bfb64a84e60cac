"""The HTTP API against a real router and a real engine: routing, search, media, health, metrics, OpenAPI."""

from __future__ import annotations

import math

SIGNALS = {"visual", "audio", "transcription", "metadata"}


def _check_route(result: dict) -> None:
    assert set(result["weights"]) == SIGNALS
    assert math.isclose(sum(result["weights"].values()), 1.0, abs_tol=1e-3)
    assert result["dominant"] == max(result["weights"], key=result["weights"].get)
    assert 0.0 <= result["confidence"] <= 1.0
    assert result["latency_ms"] >= 0


def test_route_one_and_batch_keep_order(client, router):
    one = client.post("/v1/route", json={"query": "the sound of a dog barking loudly"})
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["count"] == 1
    _check_route(body["data"][0])
    # The API answers what the library answers.
    direct = router.route("the sound of a dog barking loudly")
    assert body["data"][0]["dominant"] == direct.dominant
    assert math.isclose(body["data"][0]["weights"]["audio"], direct.weights["audio"], abs_tol=1e-4)

    queries = ["a red car driving through the desert", "where she says we are running out of time", "TED talk 2010"]
    batch = client.post("/v1/route", json={"queries": queries}).json()
    assert batch["count"] == 3
    for q, res in zip(queries, batch["data"], strict=True):
        _check_route(res)
        assert res["dominant"] == router.route(q).dominant


def test_route_batch_agrees_with_the_labels(client, labelled_queries):
    """The served router learned its (tiny) training set: one batch call, order kept, mostly the labelled signal."""
    queries = [q for q, _ in labelled_queries]
    data = client.post("/v1/route", json={"queries": queries}).json()["data"]
    agree = sum(d["dominant"] == signal for d, (_, signal) in zip(data, labelled_queries, strict=True))
    assert agree / len(queries) >= 0.8, agree


def test_search_returns_hits_with_scores_route_and_signed_media(client):
    r = client.post("/v1/search", json={"query": "a colourful Mandelbrot fractal zooming in", "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["data"]) >= 1
    assert body["route"] is not None
    _check_route(body["route"])
    assert math.isclose(sum(body["weights"].values()), 1.0, abs_tol=1e-3)
    top = body["data"][0]
    assert top["filename"].endswith(".mp4") and "/" not in top["filename"]
    assert 0 <= top["start"] < top["end"]
    assert top["scores"] and all(isinstance(v, float) for v in top["scores"].values())
    assert top["media_url"].startswith("/media/") and top["keyframe_url"].startswith("/media/")
    scores = [h["score"] for h in body["data"]]
    assert scores == sorted(scores, reverse=True)

    # The keyframe is a real JPEG; the media supports Range requests (the player seeks with them).
    img = client.get(top["keyframe_url"])
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg" and img.content[:2] == b"\xff\xd8"
    full = client.get(top["media_url"])
    assert full.status_code == 200 and full.headers["content-type"] == "video/mp4"
    part = client.get(top["media_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100 and part.content == full.content[:100]
    assert part.headers["content-range"].startswith("bytes 0-99/")
    head = client.head(top["media_url"])
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(full.content)


def test_search_with_given_weights_skips_the_router(client):
    weights = {"visual": 0.0, "audio": 0.0, "transcription": 1.0, "metadata": 0.0}
    r = client.post("/v1/search", json={"query": "Every point is tested", "weights": weights, "fusion": "minmax"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["route"] is None
    assert max(body["weights"], key=body["weights"].get) == "transcription"


def test_search_filters_and_unknown_weights(client):
    r = client.post("/v1/search", json={"query": "fractal", "filters": {"video_id": "nope"}})
    assert r.status_code == 200 and r.json()["count"] == 0
    bad = client.post("/v1/search", json={"query": "fractal", "weights": {"smell": 1.0}})
    assert bad.status_code == 422 and "smell" in bad.json()["error"]["message"]


def test_media_tokens_cannot_be_forged_or_traversed(client):
    hit = client.post("/v1/search", json={"query": "fractal", "k": 1}).json()["data"][0]
    token = hit["media_url"].removeprefix("/media/")
    encoded, mac = token.split(".")
    # Same signature, other path: rejected.
    import base64

    evil = base64.urlsafe_b64encode(b"/etc/passwd").decode().rstrip("=")
    assert client.get(f"/media/{evil}.{mac}").status_code == 404
    assert client.get(f"/media/{encoded}.{'0' * 32}").status_code == 404
    assert client.get("/media/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    # A signed path outside the media roots is refused even with a valid signature.
    signer = client.app.state.service.signer
    assert client.get(signer.url("/etc/hostname")).status_code == 404


def test_health_ready_and_metrics(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"router": "ok", "store": "ok"}
    client.post("/v1/route", json={"query": "birds chirping in the morning"})
    client.post("/v1/route", json={"query": ""})
    text = client.get("/metrics").text
    assert 'vidroute_requests_total{method="POST",path="/v1/route",status="200"}' in text
    assert 'vidroute_requests_total{method="POST",path="/v1/route",status="422"}' in text
    assert 'vidroute_request_seconds_bucket{le="0.05",method="POST",path="/v1/route"}' in text
    assert "vidroute_route_confidence_count" in text
    assert "vidroute_escalations_total" in text
    count = next(line for line in text.splitlines() if line.startswith("vidroute_route_confidence_count"))
    assert float(count.split()[-1]) >= 1


def test_readyz_is_503_until_loaded_and_when_loading_fails(tmp_path):
    from fastapi.testclient import TestClient

    from vidroute.serve.app import create_app
    from vidroute.serve.config import Settings

    app = create_app(Settings(_env_file=None, model_dir=tmp_path / "missing"))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert app.state.service.wait_loaded(30)
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["status"] == "not_ready"
        assert "missing" in r.json()["checks"]["router"]
        route = c.post("/v1/route", json={"query": "dogs"})
        assert route.status_code == 503 and route.json()["error"]["code"] == "model_unavailable"
        assert c.get("/healthz").status_code == 200


def test_openapi_is_published_and_documents_security(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/route", "/v1/search", "/v1/index", "/v1/jobs/{job_id}", "/v1/videos/{video_id}", "/metrics"):
        assert path in paths, path
    assert paths["/v1/route"]["post"]["requestBody"]["content"]["application/json"]
    assert set(paths["/v1/index"]["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    assert paths["/v1/index"]["post"]["security"]
    schemes = spec["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)
    assert client.get("/docs").status_code == 200


def test_cors_is_off_by_default_and_on_when_configured(client, settings, router, engine):
    pre = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    r = client.options("/v1/route", headers=pre)
    assert "access-control-allow-origin" not in r.headers
    r = client.post("/v1/route", json={"query": "dogs"}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers

    from fastapi.testclient import TestClient

    from vidroute.serve.app import create_app

    app = create_app(settings.model_copy(update={"cors_origins": ["https://ok.example"]}), router=router, engine=engine)
    with TestClient(app) as c:
        ok = c.options("/v1/route", headers={**pre, "Origin": "https://ok.example"})
        assert ok.headers["access-control-allow-origin"] == "https://ok.example"
        other = c.post("/v1/route", json={"query": "dogs"}, headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_private_reads_need_a_key(settings, router, engine, api_key, auth):
    from fastapi.testclient import TestClient

    from vidroute.serve.app import create_app

    app = create_app(settings.model_copy(update={"public_read": False}), router=router, engine=engine)
    with TestClient(app) as c:
        assert c.post("/v1/route", json={"query": "dogs"}).status_code == 401
        assert c.post("/v1/route", json={"query": "dogs"}, headers={"X-API-Key": api_key}).status_code == 200
        assert c.post("/v1/search", json={"query": "dogs"}, headers=auth).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes stay open


def test_route_cache_serves_repeats(settings, router, engine):
    from fastapi.testclient import TestClient

    from vidroute.serve.app import create_app

    app = create_app(settings.model_copy(update={"route_cache_size": 2}), router=router, engine=engine)
    with TestClient(app) as c:
        first = c.post("/v1/route", json={"query": "thunder rumbling"}).json()["data"][0]
        again = c.post("/v1/route", json={"query": "thunder rumbling"}).json()["data"][0]
        assert again["weights"] == first["weights"]
        assert "vidroute_route_cache_hits_total 1.0" in c.get("/metrics").text
