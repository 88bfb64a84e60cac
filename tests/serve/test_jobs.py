"""Ingest jobs through the API: index by path and by upload, job status, delete; corrupt uploads fail cleanly."""

from __future__ import annotations

import time
import uuid

import pytest


@pytest.fixture(scope="module")
def job_engine(tmp_path_factory, router):
    """Its own engine: these tests change the index, the shared one must stay as the other tests expect."""
    from vidroute.ingest import IngestConfig
    from vidroute.search.engine import SearchEngine

    eng = SearchEngine.open(f"memory://serve-jobs-{uuid.uuid4().hex[:8]}", router=router)
    eng.ingest_config = IngestConfig(keyframe_dir=tmp_path_factory.mktemp("job-keyframes"), asr=False)
    yield eng
    eng.close()


@pytest.fixture()
def jclient(settings, router, job_engine):
    from fastapi.testclient import TestClient

    from vidroute.serve.app import create_app

    app = create_app(settings, router=router, engine=job_engine)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _wait(client, auth, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_index_by_path_then_search_then_delete(jclient, auth, media_dir, job_engine):
    clip = sorted(p for p in media_dir.iterdir() if p.suffix == ".mp4")[0]
    before = job_engine.store.count()
    r = jclient.post("/v1/index", json={"paths": [str(clip)]}, headers=auth)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert accepted["status_url"] == f"/v1/jobs/{accepted['job_id']}"
    job = _wait(jclient, auth, accepted["job_id"])
    assert job["status"] == "succeeded", job
    assert job["indexed"] == 1 and job["segments"] >= 1 and job["progress"] == 1.0
    assert job_engine.store.count() == before + job["segments"]

    hits = jclient.post("/v1/search", json={"query": "fractal", "k": 3}).json()["data"]
    assert hits and hits[0]["filename"] == clip.name
    video_id = hits[0]["video_id"]

    # Indexing the same file again leaves it alone.
    again = _wait(jclient, auth, jclient.post("/v1/index", json={"paths": [str(clip)]}, headers=auth).json()["job_id"])
    assert again["status"] == "succeeded" and again["existing"] == 1 and again["indexed"] == 0

    listed = jclient.get("/v1/jobs", headers=auth).json()
    assert listed["count"] >= 2 and listed["data"][0]["job_id"] == again["job_id"]

    gone = jclient.delete(f"/v1/videos/{video_id}", headers=auth)
    assert gone.status_code == 200 and gone.json()["deleted"] == job["segments"]
    assert job_engine.store.count() == before
    assert jclient.delete(f"/v1/videos/{video_id}", headers=auth).status_code == 404


def test_upload_indexes_the_file(jclient, auth, media_dir, job_engine, settings):
    clip = sorted(p for p in media_dir.iterdir() if p.suffix == ".mp4")[0]
    files = [
        ("files", (clip.name, clip.read_bytes(), "video/mp4")),
        ("files", (clip.with_suffix(".vtt").name, clip.with_suffix(".vtt").read_bytes(), "text/vtt")),
    ]
    before = job_engine.store.count()
    r = jclient.post("/v1/index", files=files, headers=auth)
    assert r.status_code == 202, r.text
    job = _wait(jclient, auth, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert job["source"] == "upload" and job["inputs"] == [clip.name]
    assert job_engine.store.count() == before + job["segments"]
    saved = list(settings.uploads_dir.rglob("*.mp4"))
    assert len(saved) == 1 and saved[0].with_suffix(".vtt").exists()
    # The uploaded copy streams through a signed media link.
    hit = jclient.post("/v1/search", json={"query": "Mandelbrot", "k": 1}).json()["data"][0]
    assert jclient.get(hit["media_url"], headers={"Range": "bytes=0-9"}).status_code == 206
    jclient.delete(f"/v1/videos/{hit['video_id']}", headers=auth)


def test_corrupt_upload_fails_its_job_and_leaves_the_index_alone(jclient, auth, job_engine, media_dir, settings):
    clip = sorted(p for p in media_dir.iterdir() if p.suffix == ".mp4")[0]
    _wait(jclient, auth, jclient.post("/v1/index", json={"paths": [str(clip)]}, headers=auth).json()["job_id"])
    before = job_engine.store.count()
    assert before > 0
    data = clip.read_bytes()
    corrupt = data[:4096] + bytes(range(256)) * 64  # a real header, then garbage
    for name, payload in (("broken.mp4", corrupt), ("noise.webm", b"\x00\x01garbage" * 1000)):
        r = jclient.post("/v1/index", files={"files": (name, payload, "video/mp4")}, headers=auth)
        assert r.status_code == 202, r.text
        job = _wait(jclient, auth, r.json()["job_id"])
        assert job["status"] == "failed", job
        assert job["error"] and name in job["error"]
        assert job["skipped"][0]["error"]
        assert job_engine.store.count() == before
    # Failed uploads leave no files behind.
    assert not [p for p in settings.uploads_dir.rglob("*") if p.is_file()]
    assert 'vidroute_ingest_jobs_total{status="failed"} 2.0' in jclient.get("/metrics").text


def test_path_rules(jclient, auth, tmp_path, media_dir):
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    r = jclient.post("/v1/index", json={"paths": [str(outside)]}, headers=auth)
    assert r.status_code == 403 and "outside the allowed media roots" in r.json()["error"]["message"]
    sneaky = str(media_dir / ".." / outside.parent.name / outside.name)
    assert jclient.post("/v1/index", json={"paths": [sneaky]}, headers=auth).status_code == 403
    missing = jclient.post("/v1/index", json={"paths": [str(media_dir / "nope.mp4")]}, headers=auth)
    assert missing.status_code == 404
    assert jclient.post("/v1/index", json={"paths": []}, headers=auth).status_code == 422
    assert jclient.post("/v1/index", json={"path": "x"}, headers=auth).status_code == 422
    bad = jclient.post("/v1/index", files={"files": ("evil.exe", b"MZ", "application/octet-stream")}, headers=auth)
    assert bad.status_code == 415
    only_sidecar = jclient.post("/v1/index", files={"files": ("a.vtt", b"WEBVTT\n", "text/vtt")}, headers=auth)
    assert only_sidecar.status_code == 422
    assert jclient.post("/v1/index", content=b"x", headers={**auth, "content-type": "text/plain"}).status_code == 415
    assert jclient.get("/v1/jobs/" + "f" * 32, headers=auth).status_code == 404


def test_index_by_path_is_off_without_media_roots(settings, router, job_engine, auth, media_dir):
    from fastapi.testclient import TestClient

    from vidroute.serve.app import create_app

    app = create_app(settings.model_copy(update={"media_roots": []}), router=router, engine=job_engine)
    with TestClient(app) as c:
        r = c.post("/v1/index", json={"paths": [str(media_dir)]}, headers=auth)
        assert r.status_code == 403 and "VIDROUTE_MEDIA_ROOTS" in r.json()["error"]["message"]


def test_upload_over_the_limit_is_413(settings, router, job_engine, auth):
    from fastapi.testclient import TestClient

    from vidroute.serve.app import create_app

    app = create_app(settings.model_copy(update={"max_upload_bytes": 4096}), router=router, engine=job_engine)
    with TestClient(app) as c:
        r = c.post("/v1/index", files={"files": ("big.mp4", b"\x00" * 10_000, "video/mp4")}, headers=auth)
        assert r.status_code == 413 and "4,096" in r.json()["error"]["message"]
        assert not [p for p in settings.uploads_dir.rglob("*") if p.is_file()]
