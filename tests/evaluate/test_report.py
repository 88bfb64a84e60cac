"""Evaluation end to end with a small rule-based router: metrics, cascade thresholds, cost, and report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vidroute.evaluate.cascade import cascade_curve, escalation_mask
from vidroute.evaluate.cost import reference_costs, student_usd_per_million, teacher_usd_per_million
from vidroute.evaluate.latency import measure_latency, measure_throughput
from vidroute.evaluate.report import write_report
from vidroute.evaluate.run import evaluate_router


@pytest.fixture(scope="module")
def outcome(keyword_router, hand_records):
    return evaluate_router(keyword_router, hand_records, warmup=5, latency_n=50, batch_sizes=(1, 4), name="hand")


def test_evaluate_router_metrics(outcome, hand_records):
    m = outcome.metrics
    assert m["n"] == len(hand_records) == len(outcome.levels)
    assert 0.0 <= m["agreement"]["dominant_accuracy"] <= 1.0
    # recompute the MAE independently from the per-row predictions
    rows = outcome.rows()
    mae = np.mean([abs(r["reference"][s] - r["predicted"][s]) for r in rows for s in outcome.signals])
    assert m["agreement"]["mae"] == pytest.approx(mae, abs=1e-3)
    assert set(m["agreement"]["per_group"]) == {"visual", "audio", "transcription", "metadata", "mixed"}
    assert m["rubric"]["mean"] == pytest.approx(float(np.mean([r["rubric"] for r in rows])))
    lat = m["latency"]
    assert lat["n"] == 50 and 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert set(m["throughput"]) == {"1", "4"}
    assert m["cost"]["student_usd_per_million_single"] > 0
    # labels carry no measured usage: the cascade's teacher falls back to the reference, and says so
    assert "reference" in m["cost"]["teacher"]["latency_source"]


def test_cascade_escalation_is_monotone_and_bounded(outcome):
    pts = outcome.metrics["cascade"]["points"]
    rates = [p["escalation_rate"] for p in pts]
    assert rates == sorted(rates)
    assert pts[0]["threshold"] == 0.0 and rates[0] == 0.0  # confidence is never below 0
    assert pts[-1]["threshold"] > 1.0 and rates[-1] == 1.0  # every confidence is below 1.01
    assert pts[-1]["rubric_mean"] == 5.0 and pts[-1]["mae"] == 0.0
    costs = [p["usd_per_million"] for p in pts]
    assert costs == sorted(costs)


def test_cascade_curve_hand_values():
    t = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    p = np.array([[0.7, 0.3], [0.6, 0.4], [0.4, 0.6], [0.5, 0.5]])
    conf = np.array([0.9, 0.55, 0.65, 0.5])
    pts = cascade_curve(
        t,
        p,
        conf,
        thresholds=[0.6, 0.0, 1.01],
        student_latency_ms=1.0,
        student_usd_per_million=0.1,
        teacher_latency_ms=800.0,
        teacher_usd_per_million=10.0,
    )
    assert [x["threshold"] for x in pts] == [0.0, 0.6, 1.01]
    assert escalation_mask(conf, 0.6).tolist() == [False, True, False, True]
    mid = pts[1]
    assert mid["escalation_rate"] == 0.5
    assert mid["expected_latency_ms"] == pytest.approx(1.0 + 0.5 * 800.0)
    assert mid["usd_per_million"] == pytest.approx(0.1 + 0.5 * 10.0)
    # rows kept by the student: row 0 exact (level 5), row 2 max diff .2 and top flips (level 2)
    assert mid["rubric_mean"] == pytest.approx((5 + 5 + 2 + 5) / 4)
    assert mid["dominant_accuracy"] == pytest.approx(3 / 4)
    assert pts[0]["dominant_accuracy"] == pytest.approx(2 / 4)  # rows 1 and 2 flip; row 3 is a tie (counts)


def test_cost_formulas():
    assert student_usd_per_million(3.6, 1.0) == pytest.approx(1.0)
    assert student_usd_per_million(1.0, 0.0425) == pytest.approx(1e-3 * 1e6 / 3600 * 0.0425)
    # Nova Micro, 50 tokens in and 75 out per query: 50*.035 + 75*.14 = $12.25 per 1M queries
    assert reference_costs()["nova_micro_distilled_usd_per_1m_queries"] == pytest.approx(12.25)
    assert teacher_usd_per_million("amazon.nova-micro-v1:0", 50, 75) == pytest.approx(12.25)


def test_latency_and_throughput_measure_the_router(keyword_router):
    lat = measure_latency(keyword_router, ["a", "b c"], warmup=3, n=20)
    assert lat["n"] == 20 and len(lat["samples_ms"]) == 20 and lat["cpu_ms_per_query"] >= 0
    thr = measure_throughput(keyword_router, ["a"], batch_sizes=(8,), min_queries=20)
    assert thr["8"]["queries"] == 24 and thr["8"]["routes_per_second"] > 0
    with pytest.raises(ValueError, match="at least one query"):
        measure_latency(keyword_router, [], warmup=0)


def test_report_files_written(outcome, tmp_path):
    paths = write_report(outcome, tmp_path / "rep", subsets={"all": {"n": 6, "rubric_mean": 3.5, "note": "x"}})
    for key in ("html", "markdown", "metrics", "predictions", "confusion", "scatter", "latency", "cascade", "rubric"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    for png in ("confusion", "scatter", "latency", "cascade", "rubric"):
        assert paths[png].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = paths["html"].read_text("utf-8")
    assert page.count("<img") == 5 and "data:image/png;base64," in page
    assert page.count("<table>") >= 8
    assert "Confusion matrix" in page and "Cascade" in page and "833" in page  # the reference's latency
    assert "a dog running on the beach" in page or "red car at night" in page  # the disagreements table
    md = paths["markdown"].read_text("utf-8")
    assert md.startswith("# ") and "| threshold |" in md and "Evaluation sets" in md
    body = json.loads(paths["metrics"].read_text("utf-8"))
    assert body["n"] == 6 and body["subsets"]["all"]["rubric_mean"] == 3.5
    rows = [json.loads(x) for x in paths["predictions"].read_text("utf-8").splitlines()]
    assert len(rows) == 6 and {"query", "reference", "predicted", "rubric", "confidence"} <= set(rows[0])


def test_report_with_judge_section(keyword_router, hand_records, tmp_path):
    from vidroute.evaluate.rubric import Judge
    from vidroute.teachers.base import ChatResult, Teacher

    class Replay(Teacher):
        backend = "replay"

        def chat(self, system, user, *, json_schema=None, temperature=None, max_tokens=None):
            return ChatResult(text='{"score": 4, "explanation": "recorded"}', input_tokens=10, output_tokens=5)

    out = evaluate_router(
        keyword_router,
        hand_records,
        judge=Judge(Replay(model_id="replay-judge")),
        judge_limit=4,
        warmup=2,
        latency_n=10,
        batch_sizes=(2,),
    )
    j = out.metrics["judge"]
    assert j["n_asked"] == 4 and j["mean"] == 4.0 and j["histogram"]["4"] == 4
    assert j["agreement_with_deterministic"]["n_judged"] == 4
    assert out.judge_scores[4:] == [None, None]
    page = write_report(out, tmp_path)["html"].read_text("utf-8")
    assert "LLM judge vs deterministic scorer" in page and "replay-judge" in page
