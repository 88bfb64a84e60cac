"""`vidroute data import|export` and `vidroute label` from the command line."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from vidroute.cli import app
from vidroute.records import read_manifest

runner = CliRunner()


def test_data_import_then_export_every_format(tmp_path, shared_dir):
    src = shared_dir / "nova" / "premier_labels.jsonl"
    res = runner.invoke(app, ["data", "import", str(src), "--out", str(tmp_path / "labels.jsonl")])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["records"] == 2508 and info["unique_queries"] == 1620 and info["format"] == "bedrock"
    for fmt, name in [("bedrock", "b.jsonl"), ("openai", "o.jsonl"), ("parquet", "p.parquet")]:
        res = runner.invoke(
            app, ["data", "export", str(tmp_path / "labels.jsonl"), "--format", fmt, "--out", str(tmp_path / name)]
        )
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["records"] == 2508
        man = read_manifest(tmp_path / name)
        assert man["source"]["upstream_manifest"]["imported_from"]["file"] == "premier_labels.jsonl"
    assert (tmp_path / "b.jsonl").read_bytes() == src.read_bytes()


def test_export_with_custom_system_prompt_and_no_reasoning(tmp_path, shared_dir):
    src = shared_dir / "nova" / "premier_labels.jsonl"
    out = tmp_path / "o.jsonl"
    res = runner.invoke(
        app,
        ["data", "export", str(src), "-f", "openai", "-o", str(out), "--system-prompt", "Route it.", "--no-reasoning"],
    )
    assert res.exit_code == 0, res.output
    row = json.loads(out.read_text().splitlines()[0])
    assert row["messages"][0] == {"role": "system", "content": "Route it."}
    assert "reasoning" not in json.loads(row["messages"][2]["content"])


def test_errors_are_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "reference": "{\\"visual\\": 1.0}"}\n')
    res = subprocess.run(
        [sys.executable, "-m", "vidroute", "data", "import", str(bad), "--out", str(tmp_path / "o.jsonl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    err = " ".join(res.stderr.split())  # Rich wraps long lines
    assert "bad.jsonl:1: reference is not valid weights" in err and "Traceback" not in err

    q = tmp_path / "q.jsonl"
    q.write_text('{"id": "a", "query": "x"}\n{"id": "a", "query": "y"}\n')
    res = subprocess.run(
        [sys.executable, "-m", "vidroute", "label", "-t", "gguf:smollm2", "--in", str(q), "--out", str(tmp_path / "l")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1 and "duplicate query ids: 'a'" in " ".join(res.stderr.split())
