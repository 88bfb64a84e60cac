"""Real media through `vidroute index` (ingest → embed → LanceDB) and `vidroute search`: the spoken line is found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def indexed(shared_dir, tmp_path_factory):
    """friday.mp4 (dialogue, captions beside it), flower.mp4 (no speech) and a corrupt file, indexed by the CLI."""
    from vidroute.cli import app

    media = shared_dir / "media"
    tmp = tmp_path_factory.mktemp("e2e")
    corrupt = tmp / "broken.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    store = tmp / "store"
    args = ["index", str(media / "friday.mp4"), str(media / "flower.mp4"), str(corrupt), "--store", str(store)]
    args += ["--keyframe-dir", str(tmp / "keyframes"), "--no-asr", "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return {"store": store, "args": args, "summary": json.loads(res.stdout), "media": media, "corrupt": corrupt}


def test_index_reports_indexed_and_skipped_files(indexed):
    summary = indexed["summary"]
    assert sorted(Path(i["path"]).name for i in summary["indexed"]) == ["flower.mp4", "friday.mp4"]
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["broken.mp4"]
    assert summary["skipped"][0]["error"]
    assert summary["segments"] >= 2 and summary["total_segments"] == summary["segments"]


def test_index_is_idempotent_and_force_replaces(indexed):
    from vidroute.cli import app

    runner = CliRunner()
    again = runner.invoke(app, indexed["args"])
    assert again.exit_code == 0, again.output
    out = json.loads(again.stdout)
    assert out["indexed"] == [] and len(out["existing"]) == 2
    assert out["total_segments"] == indexed["summary"]["total_segments"]
    forced = runner.invoke(app, [*indexed["args"][:2], "--store", str(indexed["store"]), "--force", "--no-progress"])
    assert forced.exit_code == 0, forced.output
    out = json.loads(forced.stdout)
    assert [Path(i["path"]).name for i in out["indexed"]] == ["friday.mp4"]
    assert out["total_segments"] == indexed["summary"]["total_segments"]  # replaced, not duplicated


def test_quoted_line_finds_friday(indexed):
    from vidroute.cli import app

    res = CliRunner().invoke(
        app, ["search", '"is the lord of the universe in?"', "--store", str(indexed["store"]), "--json", "-k", "3"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    top = out["hits"][0]
    assert Path(top["path"]).name == "friday.mp4"
    assert "lord of the universe" in top["transcript"].lower()
    assert top["start"] <= 1.5 < top["end"]  # the line is spoken at 1.5–3.0 s
    assert top["scores"]["transcription"] > 0.5 and top["scores"]["bm25"] > 0


def test_engine_stats_after_indexing(indexed):
    from vidroute.search.engine import SearchEngine

    with SearchEngine.open(str(indexed["store"])) as engine:
        stats = engine.stats()
    assert stats["backend"] == "lancedb" and stats["videos"] == 2
    assert stats["segments_with_signal"]["transcription"] >= 1
    assert stats["embedders"]["transcription"] == "minilm"
