"""`vidroute queries generate` through Typer's CliRunner: files, manifest, resume, and readable errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vidroute.cli import app
from vidroute.errors import ConfigError
from vidroute.records import QueryRecord, read_manifest, read_records

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["queries", "generate", *args, "--no-progress"])


def test_cli_writes_queries_and_manifest_and_resumes(tmp_path):
    out = tmp_path / "q.jsonl"
    res = _run(
        "--n",
        "250",
        "--out",
        str(out),
        "--seed",
        "4",
        "--no-embed-dedup",
        "--mix",
        "visual=40,audio=20,transcription=20,metadata=10,mixed=10",
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    assert summary["status"] == "written" and summary["n"] == 250
    assert summary["intent"] == {"visual": 100, "audio": 50, "transcription": 50, "metadata": 25, "mixed": 25}
    records = read_records(out, QueryRecord)
    assert len(records) == 250
    m = read_manifest(out)
    assert m["counts"]["intent"]["visual"] == 100 and sum(m["counts"]["split"].values()) == 250
    assert m["seed"] == 4 and m["generator_version"] and m["grammar_sha256"]
    for key in ("exact_removed", "near_removed", "threshold", "candidates"):
        assert key in m["dedup"]
    assert m["timing_s"]["total"] > 0
    before = out.read_bytes()

    again = _run(
        "--n",
        "250",
        "--out",
        str(out),
        "--seed",
        "4",
        "--no-embed-dedup",
        "--mix",
        "visual=40,audio=20,transcription=20,metadata=10,mixed=10",
    )
    assert json.loads(again.output.strip().splitlines()[-1])["status"] == "up-to-date"
    forced = _run(
        "--n",
        "250",
        "--out",
        str(out),
        "--seed",
        "4",
        "--no-embed-dedup",
        "--force",
        "--mix",
        "visual=40,audio=20,transcription=20,metadata=10,mixed=10",
    )
    assert json.loads(forced.output.strip().splitlines()[-1])["status"] == "written"
    assert out.read_bytes() == before  # same arguments, same bytes: a rerun never duplicates or reorders

    other = _run("--n", "250", "--out", str(out), "--seed", "5", "--no-embed-dedup")
    assert json.loads(other.output.strip().splitlines()[-1])["status"] == "written"
    assert out.read_bytes() != before
    assert not list(tmp_path.glob("*.tmp"))


def test_cli_errors_name_the_bad_value(tmp_path):
    res = _run("--n", "10", "--out", str(tmp_path / "q.jsonl"), "--mix", "visual=25,smell=5", "--no-embed-dedup")
    assert res.exit_code != 0
    assert isinstance(res.exception, ConfigError) and "smell" in str(res.exception)
    res = _run("--n", "10", "--out", str(tmp_path / "q.jsonl"), "--splits", "0.9,0.1", "--no-embed-dedup")
    assert isinstance(res.exception, ConfigError) and "0.9,0.1" in str(res.exception)
    res = _run("--n", "10", "--out", str(tmp_path / "q.jsonl"), "--expand-n", "3", "--no-embed-dedup")
    assert isinstance(res.exception, ConfigError) and "--expand-with" in str(res.exception)
    assert not (tmp_path / "q.jsonl").exists()
