"""The labelling run loop: K-sample soft labels, failures, resume, concurrency, manifest."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest

from vidroute.errors import ConfigError, DataFormatError, TeacherError
from vidroute.labels import failures_path, label_queries, mean_weights, read_queries
from vidroute.records import LabelRecord, QueryRecord, read_manifest, read_records


def ids_in(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text("utf-8").splitlines()]


def test_k_samples_give_the_mean_as_soft_label(tmp_path, kit):
    teacher = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q, n), temperature=0.7)
    queries = kit.make_queries(5)
    stats = label_queries(teacher, queries, tmp_path / "labels.jsonl", samples=3, concurrency=2, progress=False)
    assert (stats.labelled, stats.failed, stats.partial) == (5, 0, 0)
    recs = read_records(tmp_path / "labels.jsonl", LabelRecord)
    assert sorted(r.id for r in recs) == [q.id for q in queries]
    for r in recs:
        draws = [kit.weights_for(r.query, n) for n in range(3)]
        assert [pytest.approx(d, abs=1e-12) for d in draws] == r.samples
        expected = {s: sum(d[s] for d in draws) / 3 for s in draws[0]}
        assert r.weights == pytest.approx(expected, abs=1e-12)
        assert sum(r.weights.values()) == pytest.approx(1.0, abs=1e-12)
        assert r.reasoning == f"synthetic answer for {r.query}"
        assert r.usage.input_tokens == 30 and r.usage.output_tokens == 15  # three draws of 10 in / 5 out
        assert r.usage.usd == pytest.approx(3 * (10e-6 + 10e-6))
        assert r.teacher.backend == "scripted" and r.teacher.temperature == 0.7
        assert r.latency_ms is not None and r.latency_ms >= 0
        assert (r.intent, r.split) == ("mixed", "train")


def test_mean_weights_renormalises():
    assert mean_weights([{"a": 0.5, "b": 0.5}, {"a": 1.0, "b": 0.0}]) == {"a": 0.75, "b": 0.25}
    out = mean_weights([{"a": 0.3, "b": 0.3}])
    assert out == pytest.approx({"a": 0.5, "b": 0.5})


def test_garbage_answers_go_to_failures_with_raw_text(tmp_path, kit):
    teacher = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q, n), max_attempts=2)
    queries = [
        *kit.make_queries(3),
        QueryRecord(id="bad1", query="GARBAGE one"),
        QueryRecord(id="bad2", query="GARBAGE"),
    ]
    out = tmp_path / "labels.jsonl"
    stats = label_queries(teacher, queries, out, samples=2, concurrency=3, progress=False)
    assert (stats.labelled, stats.failed, stats.invalid_draws) == (3, 2, 4)
    assert "bad1" not in ids_in(out) and "bad2" not in ids_in(out)
    fails = {f["id"]: f for f in map(json.loads, failures_path(out).read_text().splitlines())}
    assert set(fails) == {"bad1", "bad2"}
    assert fails["bad1"]["raw"] == kit.answer_for("GARBAGE one")
    assert "all 2 draws invalid" in fails["bad1"]["error"] and "no JSON object" in fails["bad1"]["error"]
    assert fails["bad1"]["attempts"] == 4  # 2 draws x 2 re-asks each
    assert fails["bad1"]["teacher"]["model_id"] == "scripted-v1"
    assert teacher.calls["GARBAGE one"] == 4
    man = read_manifest(out)
    assert man["counts"]["failures"] == 2 and man["counts"]["failures_in_file"] == 2
    assert man["usage"]["input_tokens"] == 10 * (3 * 2 + 2 * 4)  # failed draws' tokens are counted too


def test_partially_valid_draws_label_from_the_valid_ones(tmp_path, kit):
    # Draw 2 of every query is prose (after its one re-ask also fails); draws 1 and 3 are valid.
    def script(q: str, n: int) -> str:
        return "not json" if n in (1, 2) else kit.answer_for(q, n)

    teacher = kit.ScriptedTeacher(script, max_attempts=2)
    stats = label_queries(teacher, kit.make_queries(2), tmp_path / "l.jsonl", samples=3, progress=False)
    assert (stats.labelled, stats.partial, stats.invalid_draws) == (2, 2, 2)
    for r in read_records(tmp_path / "l.jsonl", LabelRecord):
        expected = [kit.weights_for(r.query, 0), kit.weights_for(r.query, 3)]
        assert [pytest.approx(d, abs=1e-12) for d in expected] == r.samples
        assert r.weights == pytest.approx(mean_weights(r.samples))


def test_transport_errors_are_retried_on_rerun_unless_skip_failed(tmp_path, kit):
    down = {"q0001", "q0003"}
    queries = kit.make_queries(5)
    by_text = {q.query: q.id for q in queries}

    def flaky(q: str, n: int):
        return TeacherError("HTTP 503 after 4 retries") if by_text[q] in down else kit.answer_for(q)

    out = tmp_path / "labels.jsonl"
    stats = label_queries(kit.ScriptedTeacher(flaky), queries, out, progress=False)
    assert (stats.labelled, stats.failed) == (3, 2)
    fails = [json.loads(x) for x in failures_path(out).read_text().splitlines()]
    assert {f["id"] for f in fails} == down and all("HTTP 503" in f["error"] for f in fails)

    # --skip-failed: nothing is retried.
    skipped = label_queries(kit.ScriptedTeacher(flaky), queries, out, progress=False, skip_failed=True)
    assert (skipped.labelled, skipped.failed, skipped.resumed, skipped.skipped_failed) == (0, 0, 3, 2)

    # Plain rerun once the backend is back: only the failed ids are asked, and the failures file empties.
    healthy = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q))
    again = label_queries(healthy, queries, out, progress=False)
    assert (again.labelled, again.failed, again.resumed) == (2, 0, 3)
    assert set(healthy.calls) == {q.query for q in queries if q.id in down}
    assert Counter(ids_in(out)) == Counter(q.id for q in queries)
    assert not failures_path(out).exists()
    man = read_manifest(out)
    assert man["status"] == "complete" and man["counts"]["labelled"] == 5 and len(man["runs"]) == 3


def test_a_dead_backend_aborts_the_run_instead_of_failing_every_query(tmp_path, kit):
    teacher = kit.ScriptedTeacher(lambda q, n: TeacherError("connection refused"))
    with pytest.raises(TeacherError, match="failed 5 queries in a row"):
        label_queries(
            teacher, kit.make_queries(50), tmp_path / "l.jsonl", concurrency=1, max_consecutive_errors=5, progress=False
        )
    assert sum(teacher.calls.values()) < 10
    assert read_manifest(tmp_path / "l.jsonl")["status"] == "aborted"


def test_concurrency_labels_each_id_exactly_once(tmp_path, kit):
    teacher = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q), delay=0.01)
    queries = kit.make_queries(80)
    stats = label_queries(teacher, queries, tmp_path / "l.jsonl", concurrency=8, progress=False)
    assert stats.labelled == 80
    assert teacher.max_in_flight > 1  # work really overlapped
    assert Counter(ids_in(tmp_path / "l.jsonl")) == Counter(q.id for q in queries)


def test_resume_skips_finished_ids_and_repairs_a_torn_tail(tmp_path, kit):
    queries = kit.make_queries(12)
    out = tmp_path / "labels.jsonl"
    first = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q))
    label_queries(first, queries[:5], out, progress=False)
    # A writer killed mid-line leaves half a record for queries[5]; it must be redone, not kept or duplicated.
    half = LabelRecord(**queries[5].model_dump(), weights={"visual": 1.0}, teacher=first.info).model_dump_json()
    with out.open("a") as fh:
        fh.write(half[: len(half) // 2])
    second = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q))
    stats = label_queries(second, queries, out, progress=False)
    assert (stats.resumed, stats.labelled) == (5, 7)
    assert set(second.calls) == {q.query for q in queries[5:]}
    assert Counter(ids_in(out)) == Counter(q.id for q in queries)  # every line parses: no torn line left


def test_duplicate_ids_are_rejected_by_name(tmp_path, kit):
    qs = [*kit.make_queries(3), QueryRecord(id="q0001", query="another")]
    with pytest.raises(DataFormatError, match=r"duplicate query ids: 'q0001'"):
        label_queries(kit.ScriptedTeacher(lambda q, n: kit.answer_for(q)), qs, tmp_path / "l.jsonl", progress=False)


def test_read_queries_assigns_stable_ids_and_rejects_duplicates(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"query": "a cat"}\n{"query": "a cat"}\n{"id": "x", "query": "dog", "intent": "visual"}\n')
    a, b = read_queries(p), read_queries(p)
    assert [q.id for q in a] == [q.id for q in b] and len({q.id for q in a}) == 3
    assert a[2].intent == "visual"
    p.write_text('{"id": "x", "query": "a"}\n{"id": "x", "query": "b"}\n')
    with pytest.raises(DataFormatError, match="'x'"):
        read_queries(p)


def test_refuses_to_mix_teachers_in_one_file(tmp_path, kit):
    out = tmp_path / "l.jsonl"
    label_queries(kit.ScriptedTeacher(lambda q, n: kit.answer_for(q)), kit.make_queries(2), out, progress=False)
    other = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q), temperature=0.9)
    with pytest.raises(ConfigError, match="another --out"):
        label_queries(other, kit.make_queries(4), out, progress=False)
    stats = label_queries(other, kit.make_queries(4), out, progress=False, allow_mixed=True)
    assert stats.labelled == 2


def test_manifest_records_provenance_and_cost(tmp_path, kit):
    qfile = tmp_path / "queries.jsonl"
    qfile.write_text("".join(q.model_dump_json() + "\n" for q in kit.make_queries(4)))
    teacher = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q, n), temperature=0.3)
    out = tmp_path / "labels.jsonl"
    label_queries(teacher, read_queries(qfile), out, samples=2, progress=False, input_path=qfile)
    man = read_manifest(out)
    info = teacher.info
    assert man["teacher"] == info.model_dump()
    assert len(man["teacher"]["prompt_sha256"]) == 64 and man["teacher"]["temperature"] == 0.3
    assert man["samples"] == 2 and man["status"] == "complete"
    assert man["input"]["queries"] == 4 and len(man["input"]["sha256"]) == 64
    assert man["counts"]["labelled"] == 4 and man["counts"]["remaining"] == 0
    assert man["usage"] == {"input_tokens": 80, "output_tokens": 40, "usd": pytest.approx(80e-6 + 80e-6)}
    assert man["wall_s"] > 0 and man["queries_per_min"] > 0
    assert man["totals"]["input_tokens"] == 80


def test_bad_options(tmp_path, kit):
    t = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q))
    with pytest.raises(ConfigError, match="samples"):
        label_queries(t, kit.make_queries(1), tmp_path / "l.jsonl", samples=0, progress=False)
    with pytest.raises(ConfigError, match="concurrency"):
        label_queries(t, kit.make_queries(1), tmp_path / "l.jsonl", concurrency=0, progress=False)


def test_warns_when_sampling_at_temperature_zero(tmp_path, kit, caplog):
    t = kit.ScriptedTeacher(lambda q, n: kit.answer_for(q), temperature=0.0)
    label_queries(t, kit.make_queries(1), tmp_path / "l.jsonl", samples=2, progress=False)
    assert "temperature" in caplog.text


def test_two_runs_cannot_append_to_one_file(tmp_path, kit):
    import threading

    started = threading.Event()

    def slow(q: str, n: int) -> str:
        started.set()
        time.sleep(0.3)
        return kit.answer_for(q)

    out = tmp_path / "l.jsonl"
    first = threading.Thread(
        target=label_queries, args=(kit.ScriptedTeacher(slow), kit.make_queries(2), out), kwargs={"progress": False}
    )
    first.start()
    assert started.wait(10)
    with pytest.raises(ConfigError, match="another labelling run"):
        label_queries(kit.ScriptedTeacher(slow), kit.make_queries(2), out, progress=False)
    first.join()
    assert sorted(ids_in(out)) == ["q0000", "q0001"]
