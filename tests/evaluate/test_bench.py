"""The benchmarks on the reference's data: the leak-free protocol, realq scoring, and a bench-distill smoke run."""

from __future__ import annotations

import json

import pytest

from vidroute.evaluate.bench import bench_realq, dedupe, prepare_nova, query_key
from vidroute.records import read_jsonl


def test_query_key_normalises_like_the_router():
    assert query_key("  @Messi scores a #Goal ") == query_key("messi SCORES a goal")


def test_dedupe_averages_repeated_labels(hand_records):
    a, b = hand_records[0], hand_records[1]
    twin = b.model_copy(update={"query": a.query.upper(), "samples": []})
    out = dedupe([a, twin, b])
    assert len(out) == 2
    merged = next(r for r in out if query_key(r.query) == query_key(a.query))
    for s, v in merged.weights.items():
        assert v == pytest.approx((a.weights[s] + b.weights[s]) / 2)
    assert len(merged.samples) == 2


def test_prepare_nova_is_leak_free(nova_dir):
    train, sets, stats = prepare_nova(nova_dir)
    # Facts stated in ORIGIN.md: 2,508 records, 1,620 unique; 56 (v2) and 41 (v1) eval rows occur in training.
    assert stats["premier_records"] == 2508
    assert stats["premier_unique_queries"] <= 1620
    assert stats["v2_rows_seen_in_premier"] == 56 and stats["v1_rows_seen_in_premier"] == 41
    assert stats["v2_leakfree_before_dedup"] == 44 and stats["v1_leakfree_before_dedup"] == 59
    assert len(sets["v2_published"]) == 100 and len(sets["v1_published"]) == 100
    train_keys = {query_key(r.query) for r in train}
    assert len(train_keys) == len(train) == stats["n_train"]
    for name in sets:
        assert not train_keys & {query_key(r.query) for r in sets[name]}, name
    leakfree = sets["v2_leakfree"]
    assert len({query_key(r.query) for r in leakfree}) == len(leakfree) == stats["v2_leakfree_rows"]
    assert stats["premier_queries_with_conflicting_labels"] > 100  # ORIGIN.md: 171 repeated queries disagree


def test_bench_realq_scores_a_router(shared_dir, keyword_router, tmp_path):
    data = shared_dir / "queries" / "real_queries_dev.jsonl"
    if not data.is_file():
        pytest.skip(f"{data} not found")
    rows = list(read_jsonl(data))
    res = bench_realq("keyword", data, router=keyword_router, n_worst=3)
    assert res["n"] == len(rows)
    # recompute overall accuracy from per-source counts
    total_correct = sum(d["accuracy"] * d["n"] for d in res["per_source"].values())
    assert res["accuracy"] == pytest.approx(total_correct / len(rows))
    assert sum(d["n"] for d in res["per_signal"].values()) == len(rows)
    assert {d["signal"] for d in res["per_source"].values()} == set(res["per_signal"])
    cm = res["confusion"]["matrix"]
    assert sum(map(sum, cm)) == len(rows)
    assert sum(cm[i][i] for i in range(len(cm))) == round(res["accuracy"] * len(rows))
    for sig, worst in res["worst"].items():
        assert len(worst) <= 3 and all(w["predicted"] != sig for w in worst)
    json.dumps(res)


def test_bench_realq_rejects_unknown_signal(keyword_router, tmp_path):
    from vidroute.errors import DataFormatError

    bad = tmp_path / "q.jsonl"
    bad.write_text('{"query": "x", "signal": "smell", "source": "s"}\n')
    with pytest.raises(DataFormatError, match="smell"):
        bench_realq("keyword", bad, router=keyword_router)


@pytest.fixture(scope="module")
def smoke(nova_dir, tmp_path_factory):
    """One small bench-distill run (frozen student on 160 queries, no ONNX) whose model the CLI tests reuse."""
    pytest.importorskip("vidroute.router", reason="vidroute.router (the students helper's Router) not built yet")
    pytest.importorskip("torch", reason="training needs vidroute[train]")
    from vidroute.evaluate.bench import bench_distill

    out = tmp_path_factory.mktemp("bench")
    res = bench_distill(
        nova_dir,
        student="frozen",
        out_dir=out,
        max_train=160,
        latency_n=30,
        batch_sizes=(32,),
        max_epochs=15,
        onnx=False,
    )
    return res, out


@pytest.mark.slow
def test_bench_distill_smoke(smoke):
    res, out = smoke
    for key in (
        "rubric_published",
        "rubric_leakfree",
        "dominant_agreement_leakfree",
        "mae_leakfree",
        "n_train",
        "n_eval_leakfree",
        "train_seconds",
        "route_p50_ms",
        "route_p99_ms",
        "routes_per_second_batch",
    ):
        assert res[key] is not None, key
    assert res["n_train"] == 160 and res["n_eval_leakfree"] == 44 and res["n_eval_published"] == 100
    assert 1.0 <= res["rubric_leakfree"] <= 5.0 and 0.0 <= res["mae_leakfree"] <= 1.0
    assert res["route_p50_ms"] <= res["route_p99_ms"]
    assert res["reference"]["judge"] == 4.0 and res["reference"]["latency_ms"] == 833.0
    assert set(res["targets"]) >= {"rubric_leakfree", "route_p50_ms", "train_seconds"}
    assert (out / "report-frozen" / "report.html").is_file()
    json.dumps(res)


@pytest.mark.slow
def test_cli_eval_writes_report(smoke, nova_dir, tmp_path):
    from typer.testing import CliRunner

    from vidroute.cli import app

    _, out = smoke
    rep = tmp_path / "rep"
    fast = ["--latency-n", "20", "--batch-sizes", "16", "--throughput-n", "32"]
    args = ["eval", "--model", str(out / "nova-frozen"), "--data", str(nova_dir / "eval_dataset.jsonl")]
    r = CliRunner().invoke(app, [*args, "--report", str(rep), "--warmup", "2", "--json", *fast])
    assert r.exit_code == 0, r.output
    m = json.loads(r.stdout[r.stdout.index("{") :])
    assert m["n"] == 100 and m["model"].endswith(":frozen")
    assert m["latency"]["n"] == 20 and set(m["throughput"]) == {"16"}
    assert {p.name for p in rep.iterdir()} >= {"report.html", "summary.md", "metrics.json", "predictions.jsonl"}
    bad = CliRunner().invoke(app, ["eval", "--model", str(tmp_path / "nope"), "--data", str(nova_dir / "x")])
    assert bad.exit_code != 0


@pytest.mark.slow
def test_cli_bench_realq(smoke, shared_dir, tmp_path):
    from typer.testing import CliRunner

    from vidroute.cli import app

    data = shared_dir / "queries" / "real_queries_dev.jsonl"
    if not data.is_file():
        pytest.skip(f"{data} not found")
    rows = list(read_jsonl(data))[::12]  # every 12th row: all signals and most sources, fast
    sub = tmp_path / "q.jsonl"
    sub.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, out = smoke
    r = CliRunner().invoke(app, ["bench", "realq", "--model", str(out / "nova-frozen"), "--data", str(sub), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout[r.stdout.index("{") :])
    assert res["n"] == len(rows) and 0.0 <= res["accuracy"] <= 1.0
    assert set(res["per_signal"]) == {"visual", "audio", "transcription", "metadata"}
    text = CliRunner().invoke(app, ["bench", "realq", "--model", str(out / "nova-frozen"), "--data", str(sub)])
    assert text.exit_code == 0 and "per source" in text.stdout
