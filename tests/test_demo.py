"""End to end: the README's main job (`vidroute demo`) runs offline and leaves every stage's files."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vidroute.cli import app


@pytest.mark.slow
def test_demo_runs_whole_loop(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--n-queries", "300", "--label-n", "24", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "demo_summary.json").read_text())
    assert sum(summary["queries"]["counts"].values()) == 300
    assert summary["labels"]["inputs"] == 24 and summary["labels"]["labelled"] >= 12  # SmolLM2 fails a few
    assert (out / "labels.manifest.json").exists()
    assert (out / "model" / "card.json").exists()
    assert (out / "report" / "report.html").read_text().count("<img") >= 3
    assert summary["index"]["segments"] >= 4 and not summary["index"]["skipped"]
    for search in summary["searches"]:
        assert abs(sum(search["weights"].values()) - 1) < 5e-3  # rounded to 3 decimals
        assert search["hits"], search
    # The transcription query quotes a demo caption: its clip must rank first.
    spoken = next(s for s in summary["searches"] if "rain helps" in s["query"])
    assert spoken["hits"][0]["file"] == "quiet_hours_podcast.mp3"
