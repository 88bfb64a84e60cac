"""Dataset import/export: Bedrock conversation JSONL, eval rows, OpenAI chat JSONL, Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidroute.errors import DataFormatError
from vidroute.formats import (
    detect_format,
    export_file,
    export_records,
    import_bedrock,
    import_eval,
    import_file,
    read_dataset,
    round_weights,
)
from vidroute.records import LabelRecord, TeacherInfo, read_manifest, read_records
from vidroute.spec import TaskSpec

SIGNALS = TaskSpec.load().signal_names


@pytest.fixture(scope="module")
def premier(shared_dir) -> Path:
    return shared_dir / "nova" / "premier_labels.jsonl"


@pytest.fixture(scope="module")
def premier_records(premier) -> list[LabelRecord]:
    return import_bedrock(premier)


def test_import_premier_labels_reads_all_records(premier, premier_records):
    recs = premier_records
    assert len(recs) == 2508
    assert len({r.id for r in recs}) == 2508  # repeated queries stay distinct records
    assert len({r.query for r in recs}) == 1620
    raw = [json.loads(line) for line in premier.read_text("utf-8").splitlines()]
    for r, row in zip(recs, raw, strict=True):
        assert r.query == row["messages"][0]["content"][0]["text"]
        answer = json.loads(row["messages"][1]["content"][0]["text"])
        assert r.samples == [{s: answer[s] for s in SIGNALS}]  # exactly as written
        assert r.weights == pytest.approx({s: answer[s] for s in SIGNALS}, abs=1e-9)
        assert sum(r.weights.values()) == pytest.approx(1.0, abs=1e-12)
        assert r.reasoning == answer["reasoning"]
        assert r.source == "premier_labels.jsonl"
        assert r.teacher.backend == "import:bedrock" and r.teacher.model_id == "amazon.nova-premier-v1:0"
        assert r.teacher.temperature == 0.3 and r.teacher.mode == "imported"
        assert r.teacher.prompt_sha256 == TaskSpec.sha256(row["system"][0]["text"])


def test_bedrock_round_trip_is_byte_identical(tmp_path, premier):
    """bedrock -> labels JSONL -> bedrock, and bedrock -> labels -> parquet -> bedrock, reproduce the file."""
    ds = import_file(premier, tmp_path / "imported.jsonl")
    man = read_manifest(tmp_path / "imported.jsonl")
    assert man["imported_from"]["sha256"] == ds.source_sha256 and man["counts"]["labelled"] == 2508
    assert list(man["system_prompts"].values()) == [json.loads(premier.open().readline())["system"][0]["text"]]

    export_file(tmp_path / "imported.jsonl", tmp_path / "again.jsonl", "bedrock")
    assert (tmp_path / "again.jsonl").read_bytes() == premier.read_bytes()

    export_file(tmp_path / "imported.jsonl", tmp_path / "set.parquet", "parquet")
    export_file(tmp_path / "set.parquet", tmp_path / "from_parquet.jsonl", "bedrock")
    assert (tmp_path / "from_parquet.jsonl").read_bytes() == premier.read_bytes()

    # Importing the re-export gives the same records (ids, weights, reasoning, teacher); only `source` differs.
    back = [r.model_dump(exclude={"source"}) for r in read_records(tmp_path / "imported.jsonl", LabelRecord)]
    assert back == [r.model_dump(exclude={"source"}) for r in import_bedrock(tmp_path / "again.jsonl")]


@pytest.mark.parametrize("name", ["eval_dataset.jsonl", "eval_dataset_v2.jsonl"])
def test_eval_files_import_and_round_trip(tmp_path, shared_dir, name):
    src = shared_dir / "nova" / name
    assert detect_format(src) == "eval"
    recs = import_eval(src)
    assert len(recs) == 100 and len({r.id for r in recs}) == 100
    rows = [json.loads(line) for line in src.read_text().splitlines()]
    for r, row in zip(recs, rows, strict=True):
        assert r.query == row["query"] and r.samples == [json.loads(row["reference"])]
        assert r.reasoning is None and r.teacher.backend == "import:eval" and r.teacher.prompt_sha256 is None
    export_file(src, tmp_path / "eval.jsonl", "eval")
    assert (tmp_path / "eval.jsonl").read_bytes() == src.read_bytes()


def test_parquet_export_matches_records(tmp_path, premier_records):
    import pyarrow.parquet as pq

    recs = premier_records[:300]
    export_records(recs, tmp_path / "l.parquet", "parquet", provenance={"note": "test"})
    table = pq.read_table(tmp_path / "l.parquet")
    assert table.num_rows == 300
    for col in ["id", "query", "intent", "split", "source", "reasoning", "teacher_backend", "teacher_model_id"]:
        assert col in table.column_names
    rows = table.to_pylist()
    for r, row in zip(recs, rows, strict=True):
        assert (row["id"], row["query"], row["reasoning"]) == (r.id, r.query, r.reasoning)
        assert {s: row[f"weight_{s}"] for s in SIGNALS} == r.weights
        assert row["dominant"] == max(r.weights, key=r.weights.get)
        assert row["teacher_prompt_sha256"] == r.teacher.prompt_sha256 and row["teacher_temperature"] == 0.3
    meta = json.loads(table.schema.metadata[b"vidroute"])
    assert meta["counts"]["records"] == 300 and meta["source"] == {"note": "test"}
    assert read_dataset(tmp_path / "l.parquet").records == recs


def test_openai_export_shape(tmp_path, premier_records):
    recs = premier_records[:50]
    export_records(recs, tmp_path / "ft.jsonl", "openai")
    student_prompt = TaskSpec.load().render_student_prompt()
    rows = [json.loads(line) for line in (tmp_path / "ft.jsonl").read_text().splitlines()]
    assert len(rows) == 50
    for r, row in zip(recs, rows, strict=True):
        assert list(row) == ["messages"]
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert all(isinstance(m["content"], str) for m in row["messages"])
        # Imported records were not recorded with a system prompt the exporter knows, so the student prompt is used.
        assert row["messages"][0]["content"] == student_prompt
        assert row["messages"][1]["content"] == r.query
        answer = json.loads(row["messages"][2]["content"])
        assert list(answer) == [*SIGNALS, "reasoning"] and answer["reasoning"] == r.reasoning
        assert {s: answer[s] for s in SIGNALS} == r.samples[0]
    man = read_manifest(tmp_path / "ft.jsonl")
    assert man["format"] == "openai" and man["system_prompt_counts"] == {TaskSpec.sha256(student_prompt): 50}


def _record(weights: dict[str, float], **kw) -> LabelRecord:
    return LabelRecord(
        id="x", query="q", weights=weights, teacher=TeacherInfo(backend="openai", model_id="m", temperature=0.5), **kw
    )


def test_exported_answers_are_rounded_to_sum_exactly_one(tmp_path):
    third = {s: 1 / 3 for s in SIGNALS[:3]} | {SIGNALS[3]: 0.0}
    rec = _record(third, reasoning="three-way tie")
    export_records([rec], tmp_path / "b.jsonl", "bedrock", system_prompt="SYS")
    row = json.loads((tmp_path / "b.jsonl").read_text())
    assert row["schemaVersion"] == "bedrock-conversation-2024" and row["system"] == [{"text": "SYS"}]
    answer = json.loads(row["messages"][1]["content"][0]["text"])
    assert [answer[s] for s in SIGNALS] == [0.34, 0.33, 0.33, 0.0]
    assert round(sum(answer[s] for s in SIGNALS) * 100) == 100


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=2, max_size=8).filter(lambda v: sum(v) > 1e-6))
def test_round_weights_property(values):
    w = {f"s{i}": v for i, v in enumerate(values)}
    total = sum(values)
    r = round_weights(w, 2)
    assert round(sum(r.values()) * 100) == 100
    for k in w:
        assert abs(r[k] - w[k] / total) <= 0.01 + 1e-9
        assert round(r[k] * 100, 6).is_integer()


BEDROCK_OK = json.dumps(
    {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "S"}],
        "messages": [
            {"role": "user", "content": [{"text": "a dog"}]},
            {
                "role": "assistant",
                "content": [{"text": json.dumps(dict(zip(SIGNALS, [0.7, 0.1, 0.1, 0.1], strict=True)))}],
            },
        ],
    }
)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"schemaVersion": "bedrock-conversation-2024", "messages": [', "not valid JSON"),
        ('{"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "S"}]}', "one user turn"),
        (BEDROCK_OK.replace("0.7", "0.9"), "sum to 1.200"),
        (BEDROCK_OK.replace("metadata", "meta"), "missing ['metadata']"),
        (BEDROCK_OK.replace("bedrock-conversation-2024", "bedrock-conversation-2023"), "schemaVersion"),
        ('["not", "an", "object"]', "expected a JSON object"),
    ],
)
def test_malformed_bedrock_file_names_the_line(tmp_path, bad_line, message):
    p = tmp_path / "bad.jsonl"
    p.write_text(f"{BEDROCK_OK}\n{BEDROCK_OK}\n{bad_line}\n{BEDROCK_OK}\n")
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:3: ") as exc:
        import_bedrock(p)
    assert message in str(exc.value)
    ds = import_file(p, tmp_path / "out.jsonl", "bedrock", skip_invalid=True)
    assert len(ds.records) == 3 and ds.skipped_count == 1
    man = read_manifest(tmp_path / "out.jsonl")
    assert man["counts"]["skipped_invalid"] == 1 and man["skipped"][0]["line"] == 3


def test_malformed_eval_rows(tmp_path):
    p = tmp_path / "ev.jsonl"
    good = json.dumps({"query": "a", "reference": json.dumps(dict(zip(SIGNALS, [0.4, 0.2, 0.2, 0.2], strict=True)))})
    p.write_text(f"{good}\n" + json.dumps({"query": "b"}) + "\n")
    with pytest.raises(DataFormatError, match=r"ev\.jsonl:2: missing 'reference'"):
        import_eval(p)
    p.write_text(f"{good}\n" + json.dumps({"query": "b", "reference": "{oops"}) + "\n")
    with pytest.raises(DataFormatError, match=r"ev\.jsonl:2: reference is not valid weights"):
        import_eval(p)


def test_format_detection_and_unknown_files(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"foo": 1}\n')
    with pytest.raises(DataFormatError, match="cannot detect the format"):
        read_dataset(p)
    p.write_text("")
    with pytest.raises(DataFormatError, match="empty"):
        read_dataset(p)
    with pytest.raises(DataFormatError, match="not found"):
        read_dataset(tmp_path / "missing.jsonl")


def test_export_checks_signals_and_split(tmp_path):
    rec = _record({"a": 0.5, "b": 0.5})
    with pytest.raises(DataFormatError, match="--spec"):
        export_records([rec], tmp_path / "o.jsonl", "openai")
    labels = tmp_path / "labels.jsonl"
    w = dict(zip(SIGNALS, [0.25] * 4, strict=True))
    labels.write_text(
        _record(w, split="train").model_dump_json() + "\n" + _record(w, split="test").model_dump_json() + "\n"
    )
    man = export_file(labels, tmp_path / "train.jsonl", "openai", split="train")
    assert man["counts"]["records"] == 1 and man["source"]["split"] == "train"
    with pytest.raises(DataFormatError, match="split='val'"):
        export_file(labels, tmp_path / "val.jsonl", "openai", split="val")


def test_labels_with_a_torn_tail_still_export(tmp_path):
    w = dict(zip(SIGNALS, [0.25] * 4, strict=True))
    labels = tmp_path / "labels.jsonl"
    full = _record(w).model_dump_json()
    labels.write_text(full + "\n" + full.replace('"id":"x"', '"id":"y"')[:40])  # a killed run's last line
    man = export_file(labels, tmp_path / "o.jsonl", "openai")
    assert man["counts"]["records"] == 1
    labels.write_text(full[:40] + "\n" + full + "\n")  # a bad line elsewhere is still an error
    with pytest.raises(DataFormatError, match=r"labels\.jsonl:1: .*not valid JSON"):
        export_file(labels, tmp_path / "o.jsonl", "openai")
