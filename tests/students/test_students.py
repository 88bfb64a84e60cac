"""Training each student kind, ONNX round trip, the Router API, the cascade and the CLI, on real MiniLM weights."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidroute.errors import ConfigError, DataFormatError, ModelError, TeacherError
from vidroute.students import train_student
from vidroute.students.card import read_card
from vidroute.teachers.base import ChatResult, Teacher

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SIGNALS = ["visual", "audio", "transcription", "metadata"]
NEW_QUERIES = [
    "a yellow boat close to the shore",  # visual, unseen combination
    "the sound of a bird singing",  # audio
    'the speaker says "never give up"',  # transcription
    "Lionel Messi interview from 2010",  # metadata
    "x",
    "a long query about a green bicycle parked by the road next to a white door on a sunny afternoon in spring",
]
INTENT_OF_NEW = ["visual", "audio", "transcription", "metadata"]


def uniform_kl(y: np.ndarray) -> float:
    return float(np.mean(np.sum(y * (np.log(y + 1e-7) - np.log(1 / y.shape[1])), axis=1)))


# --- frozen student: training, card, ONNX ------------------------------------------------------------------------
def test_frozen_learns_and_writes_a_complete_card(frozen_dir: Path, toy) -> None:
    card = read_card(frozen_dir)
    assert card["student"] == "frozen" and card["signals"] == SIGNALS and card["seed"] == 0
    data = card["data"]
    assert data["n_records"] == len(toy) and data["n_train"] + data["n_val"] == data["n_unique"] <= len(toy)
    assert len(data["sha256"]) == 64 and card["teachers"][0]["model_id"] == "toy-v1"
    assert card["train_seconds"] > 0 and card["versions"]["torch"] and card["params"]["hidden"] == 256
    val = card["val_metrics"]
    # Four separable toy intents plus an ambiguous one: far above chance and far below a uniform guess's KL.
    assert val["dominant_agreement"] >= 0.75
    rows = [json.loads(line) for line in (frozen_dir / "val.jsonl").read_text().splitlines()]
    y = np.array([[r["weights"][s] for s in SIGNALS] for r in rows])
    assert val["kl"] < 0.3 * uniform_kl(y)
    for f in ("card.json", "README.md", "head.safetensors", "tokenizer.json", "calibration.json", "model.onnx"):
        assert (frozen_dir / f).is_file(), f
    assert card["serving"] == {"backend": "onnx", "file": "model.int8.onnx"}  # int8="yes" forces it


def test_onnx_fp32_matches_torch(frozen_dir: Path) -> None:
    from vidroute.router import Router

    torch_r = Router.load(frozen_dir, backend="torch")
    onnx_r = Router.load(frozen_dir, backend="onnx-fp32")
    a, b = torch_r.predict_proba(NEW_QUERIES), onnx_r.predict_proba(NEW_QUERIES)
    assert np.abs(a - b).max() < 1e-4
    for q in NEW_QUERIES[:2]:  # single-query path (no padding) too
        assert np.abs(torch_r.predict_proba([q]) - onnx_r.predict_proba([q])).max() < 1e-4
    assert read_card(frozen_dir)["onnx"]["parity_max_abs_diff"] < 1e-4


def test_int8_is_close_to_fp32_and_smaller(frozen_dir: Path) -> None:
    from vidroute.router import Router

    fp32 = Router.load(frozen_dir, backend="onnx-fp32").predict_proba(NEW_QUERIES)
    q8 = Router.load(frozen_dir, backend="onnx-int8").predict_proba(NEW_QUERIES)
    assert np.abs(fp32 - q8).max() < 0.15
    assert (fp32.argmax(1)[:4] == q8.argmax(1)[:4]).all()
    info = read_card(frozen_dir)["onnx"]
    assert info["int8"]["size_mb"] < info["size_mb"] / 2


# --- Router API --------------------------------------------------------------------------------------------------
def test_route_returns_reference_shape(frozen_dir: Path) -> None:
    from vidroute.router import Router

    router = Router.load(frozen_dir)
    assert router.signals == SIGNALS and router.backend.name == "onnx:model.int8.onnx"
    for q, intent in zip(NEW_QUERIES, INTENT_OF_NEW, strict=False):
        r = router.route(q)
        assert list(r.weights) == SIGNALS and abs(sum(r.weights.values()) - 1) < 1e-6
        assert r.dominant == max(r.weights, key=r.weights.get) == intent
        assert 0.0 < r.confidence < 1.0 and r.latency_ms > 0 and not r.escalated
        assert r.model == f"{frozen_dir.name}:frozen"
        ref = r.to_reference_json()
        assert list(ref) == SIGNALS and abs(sum(ref.values()) - 1) < 1e-3


def test_route_batch_matches_single_routes(frozen_dir: Path) -> None:
    from vidroute.router import Router

    router = Router.load(frozen_dir, backend="onnx-fp32")
    batch = router.route_batch(NEW_QUERIES)
    single = [router.route(q) for q in NEW_QUERIES]
    for b, s in zip(batch, single, strict=True):
        assert max(abs(b.weights[k] - s.weights[k]) for k in SIGNALS) < 1e-5
        assert b.confidence == pytest.approx(s.confidence, abs=1e-5)
    assert router.predict_proba([]).shape == (0, 4)


def test_confidence_is_higher_on_clear_queries(frozen_dir: Path) -> None:
    from vidroute.router import Router

    router = Router.load(frozen_dir, backend="onnx-fp32")
    clear = router.route_batch(["close-up of a white kite", "the sound of a siren roaring", "NASA interview from 2008"])
    mixed = router.route_batch(["a green car with bird roaring", "engine barking next to a red kite"])
    assert np.mean([r.confidence for r in clear]) > np.mean([r.confidence for r in mixed]) + 0.05


def test_route_rejects_empty_queries_and_bad_folders(frozen_dir: Path, tmp_path: Path) -> None:
    from vidroute.router import Router

    router = Router.load(frozen_dir, backend="onnx-fp32")
    with pytest.raises(DataFormatError, match="empty"):
        router.route(" @# ")
    with pytest.raises(ModelError, match="does not exist"):
        Router.load(tmp_path / "missing")
    with pytest.raises(ModelError, match=r"card\.json"):
        Router.load(tmp_path)


# --- cascade -----------------------------------------------------------------------------------------------------
class FixedTeacher(Teacher):
    """A real Teacher (prompting, parsing, validation from the base class) whose transport answers a fixed JSON."""

    backend = "fixed"

    def __init__(self, answer: dict[str, float] | None, **kw: Any) -> None:
        super().__init__(model_id="fixed-v1", **kw)
        self.answer = answer
        self.calls = 0

    def chat(self, system: str, user: str, *, json_schema=None, temperature=None, max_tokens=None) -> ChatResult:
        self.calls += 1
        if self.answer is None:
            raise TeacherError("transport down")
        return ChatResult(text=json.dumps({**self.answer, "reasoning": "fixed"}), input_tokens=100, output_tokens=20)


TEACHER_ANSWER = {"visual": 0.1, "audio": 0.1, "transcription": 0.1, "metadata": 0.7}


def test_cascade_threshold_above_one_escalates_everything(frozen_dir: Path) -> None:
    from vidroute.router import Router

    teacher = FixedTeacher(TEACHER_ANSWER)
    router = Router.load(frozen_dir, teacher=teacher, threshold=1.01)
    results = [router.route(NEW_QUERIES[0]), *router.route_batch(NEW_QUERIES[:3])]
    assert teacher.calls == 4
    for r in results:
        assert r.escalated and r.weights == pytest.approx(TEACHER_ANSWER) and r.dominant == "metadata"
        assert r.confidence == 1.0 and r.model.endswith("+teacher")


def test_cascade_threshold_zero_never_escalates(frozen_dir: Path) -> None:
    from vidroute.router import Router

    teacher = FixedTeacher(TEACHER_ANSWER)
    router = Router.load(frozen_dir, teacher=teacher, threshold=0.0)
    results = router.route_batch(NEW_QUERIES)
    assert teacher.calls == 0 and not any(r.escalated for r in results)


def test_cascade_falls_back_to_student_when_teacher_fails(frozen_dir: Path, caplog) -> None:
    from vidroute.router import Router

    student = Router.load(frozen_dir).route(NEW_QUERIES[0])
    router = Router.load(frozen_dir, teacher=FixedTeacher(None), threshold=1.01)
    r = router.route(NEW_QUERIES[0])
    assert not r.escalated and r.weights == pytest.approx(student.weights, abs=1e-6)
    assert "teacher failed" in caplog.text


def test_cascade_curve_spans_student_to_teacher(frozen_dir: Path) -> None:
    from vidroute.router import Router, cascade_curve

    router = Router.load(frozen_dir, backend="onnx-fp32")
    queries = NEW_QUERIES[:4]
    refs = [TEACHER_ANSWER] * 4  # reference = the teacher: escalating everything must be perfect
    teacher = FixedTeacher(TEACHER_ANSWER)
    curve = cascade_curve(router, teacher, queries, refs, [0.0, 0.5, 1.01])
    assert [p["threshold"] for p in curve] == [0.0, 0.5, 1.01]
    assert curve[0]["escalation_rate"] == 0.0 and curve[-1]["escalation_rate"] == 1.0
    assert curve[-1]["mae"] < 1e-9 and curve[-1]["dominant_agreement"] == 1.0
    assert curve[0]["mae"] > curve[-1]["mae"] and teacher.calls == 4
    rates = [p["escalation_rate"] for p in curve]
    assert rates == sorted(rates)
    assert curve[-1]["latency_mean_ms"] >= curve[0]["latency_mean_ms"]
    # precomputed teacher labels work the same without calling anything
    table = {q: {"weights": TEACHER_ANSWER, "latency_ms": 800.0} for q in queries}
    curve2 = cascade_curve(router, table, queries, refs, [1.01])
    assert curve2[0]["mae"] < 1e-9 and curve2[0]["latency_mean_ms"] >= 800.0


# --- other students ----------------------------------------------------------------------------------------------
def test_static_student_learns_and_serves_with_numpy(tmp_path: Path, toy) -> None:
    from vidroute.router import Router

    t0 = time.perf_counter()
    card = train_student(toy, tmp_path, student="static", seed=1, val_fraction=0.2, static_init="input")
    assert card["serving"] == {"backend": "numpy", "file": "static.npz"} and not (tmp_path / "model.onnx").exists()
    assert card["val_metrics"]["dominant_agreement"] >= 0.7
    router = Router.load(tmp_path)
    assert router.backend.name == "numpy"
    got = [router.route(q).dominant for q in NEW_QUERIES[:4]]
    assert sum(g == want for g, want in zip(got, INTENT_OF_NEW, strict=True)) >= 3
    for q in NEW_QUERIES[:3]:
        router.route(q)
    lat = min(router.route(NEW_QUERIES[0]).latency_ms for _ in range(20))
    assert lat < 5.0  # microseconds in practice; generous for a loaded CI box
    with pytest.raises(ConfigError, match="numpy only"):
        Router.load(tmp_path, backend="onnx")
    assert time.perf_counter() - t0 < 120


def test_static_numpy_matches_torch_head(tmp_path: Path, toy) -> None:
    """The numpy serving path reproduces the torch static network it was read from."""
    import torch

    from vidroute.students.modeling import make_head
    from vidroute.students.static import StaticStudent, flatten, make_static_net

    rng = np.random.default_rng(0)
    table = rng.normal(size=(50, 8)).astype(np.float32)
    tw = rng.uniform(0.2, 1.0, size=50).astype(np.float32)
    torch.manual_seed(0)
    head = make_head(8, 4, hidden=16, dropout=0.0, gelu="tanh").eval()
    lists = [[1, 2, 3], [7], [4, 4, 9, 49]]
    net = make_static_net(table, tw, head, train_table=False).eval()
    with torch.no_grad():
        want = torch.softmax(net(*flatten(lists)), -1).numpy()
    model = StaticStudent.from_torch_head(table, tw, head)
    np.testing.assert_allclose(model.proba_from_ids(lists), want, atol=1e-5)
    model.save(tmp_path)
    np.testing.assert_allclose(StaticStudent.load(tmp_path).proba_from_ids(lists), want, atol=2e-3)  # fp16 table


def test_contextual_token_vectors_are_the_encoders_output() -> None:
    import torch

    from vidroute.students.encoder import load_bert
    from vidroute.students.static import contextual_token_vectors

    bert = load_bert()
    ids = np.array([2000, 3899, 7592])
    got = contextual_token_vectors(bert, ids)
    with torch.no_grad():
        inp = torch.tensor([[101, int(ids[1]), 102]])
        want = bert(input_ids=inp, attention_mask=torch.ones_like(inp)).last_hidden_state[0, 1].numpy()
    np.testing.assert_allclose(got[1], want, atol=1e-5)


def test_finetune_student_trains_end_to_end(tmp_path: Path, toy_factory) -> None:
    from vidroute.router import Router

    recs = toy_factory(12, seed=2)
    card = train_student(
        recs, tmp_path, student="finetune", seed=0, val_fraction=0.25, layers=2, max_length=16,
        finetune_epochs=1, max_epochs=60, onnx=False,
    )  # fmt: skip
    assert card["student"] == "finetune" and card["encoder"]["layers"] == 2
    ft = card["training"]["finetune"]
    assert ft[0]["epoch"] == 0 and len(ft) == 2
    assert (tmp_path / "encoder" / "model.safetensors").is_file()
    router = Router.load(tmp_path)
    assert router.backend.name == "torch"
    val = read_card(tmp_path)["val_metrics"]
    assert val["dominant_agreement"] >= 0.5
    # the saved fine-tuned weights, not the packaged encoder, are what serve
    rows = [json.loads(line) for line in (tmp_path / "val.jsonl").read_text().splitlines()]
    p = router.predict_proba([r["text"] for r in rows])
    y = np.array([[r["weights"][s] for s in SIGNALS] for r in rows])
    assert float(np.abs(p - y).mean()) == pytest.approx(val["mae"], abs=1e-4)


def test_training_is_deterministic(tmp_path: Path, toy) -> None:
    a = train_student(toy, tmp_path / "a", student="static", seed=5, static_init="input", max_epochs=30)
    b = train_student(toy, tmp_path / "b", student="static", seed=5, static_init="input", max_epochs=30)
    assert a["val_metrics"] == b["val_metrics"] and a["data"]["sha256"] == b["data"]["sha256"]


def test_premier_subset_frozen(shared_dir: Path, tmp_path: Path, premier_loader) -> None:
    """200 real Premier labels: the frozen student beats the majority-class baseline on val."""
    recs = premier_loader(shared_dir / "nova" / "premier_labels.jsonl", 200)
    card = train_student(recs, tmp_path, student="frozen", seed=0, val_fraction=0.2, onnx=False)
    rows = [json.loads(line) for line in (tmp_path / "val.jsonl").read_text().splitlines()]
    y = np.array([[r["weights"][s] for s in SIGNALS] for r in rows])
    majority = np.bincount(y.argmax(1), minlength=4).max() / len(y)
    assert card["val_metrics"]["dominant_agreement"] > majority
    assert card["val_metrics"]["mae"] < 0.1
    assert card["data"]["n_unique"] < 200  # repeated queries were merged


# --- CLI ---------------------------------------------------------------------------------------------------------
def test_cli_route_prints_the_four_keys(frozen_dir: Path) -> None:
    from typer.testing import CliRunner

    from vidroute.cli import app

    res = CliRunner().invoke(app, ["route", "--model", str(frozen_dir), "a dog barking at night"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip())
    assert list(out) == SIGNALS and abs(sum(out.values()) - 1) < 1e-3
    res = CliRunner().invoke(app, ["route", "-m", str(frozen_dir), "--full", "red car", "dog barking"])
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert len(lines) == 2
    assert {"weights", "dominant", "confidence", "model", "latency_ms", "escalated"} <= set(lines[0])


def test_cli_train_then_route(tmp_path: Path, toy) -> None:
    from typer.testing import CliRunner

    from vidroute.cli import app
    from vidroute.records import write_jsonl

    labels = tmp_path / "labels.jsonl"
    write_jsonl(labels, toy)
    exclude = tmp_path / "eval.jsonl"
    write_jsonl(exclude, [{"query": toy[0].query, "reference": "{}"}])
    out = tmp_path / "model"
    args = ["train", "--data", str(labels), "--out", str(out), "--student", "static", "--exclude", str(exclude)]
    res = CliRunner().invoke(app, [*args, "-p", "static_init=input", "-p", "max_epochs=40"])
    assert res.exit_code == 0, res.output
    card = json.loads(res.stdout)
    assert card["params"]["static_init"] == "input" and card["params"]["max_epochs"] == 40
    assert card["data"]["n_records"] == len(toy) - sum(r.query == toy[0].query for r in toy)
    res = CliRunner().invoke(app, ["route", "--model", str(out), "sound of a siren wailing"])
    assert res.exit_code == 0 and max(json.loads(res.stdout), key=json.loads(res.stdout).get) == "audio"
    bad = CliRunner().invoke(app, [*args, "-p", "nonsense=1"])
    assert bad.exit_code != 0 and "unknown training parameter" in str(bad.exception)


# --- augmentation ------------------------------------------------------------------------------------------------
def test_intent_prior_augmentation_trains_only(tmp_path: Path, toy) -> None:
    from vidroute.records import QueryRecord
    from vidroute.students.augment import class_means, intent_prior_labels

    means = class_means(toy, SIGNALS)
    assert set(means) == set(SIGNALS) and means["audio"][1] == max(means["audio"])
    queries = [
        QueryRecord(id="s1", query="Oh, he's hit the post! so close", intent="transcription"),
        QueryRecord(id="s2", query="a kettle boils while a van speeds past", intent="audio"),
        QueryRecord(id="s3", query="a dancer sings in the rain", intent="mixed"),  # no single signal: skipped
        QueryRecord(id="s4", query=toy[0].query, intent="visual"),  # already teacher-labelled: dropped in training
    ]
    aug = intent_prior_labels(queries, toy, SIGNALS)
    assert [r.id for r in aug] == ["s1", "s2", "s4"]
    assert aug[0].weights == pytest.approx(dict(zip(SIGNALS, means["transcription"], strict=True)))
    assert aug[0].teacher.backend == "prior:intent"
    kw = {"student": "static", "seed": 0, "static_init": "input", "max_epochs": 20}
    plain = train_student(toy, tmp_path / "plain", **kw)
    card = train_student(toy, tmp_path / "aug", augment=aug, **kw)
    assert card["data"]["n_augment"] == 2 and card["data"]["n_train"] == plain["data"]["n_train"] + 2
    assert (tmp_path / "aug" / "val.jsonl").read_text() == (tmp_path / "plain" / "val.jsonl").read_text()
    assert {t["backend"] for t in card["teachers"]} == {"handmade", "prior:intent"}


def test_synthetic_prior_labels_seeded(toy) -> None:
    from vidroute.students.augment import class_means, synthetic_prior_labels

    means = class_means(toy, SIGNALS)
    a = synthetic_prior_labels(60, toy, SIGNALS, seed=3)
    b = synthetic_prior_labels(60, toy, SIGNALS, seed=3)
    assert [r.query for r in a] == [r.query for r in b]  # reproducible from the seed
    assert 0 < len(a) < 60  # the "mixed" share of the default mix is skipped
    assert {r.intent for r in a} <= set(SIGNALS)
    for r in a:
        assert list(r.weights.values()) == pytest.approx(means[r.intent])
    assert [r.query for r in synthetic_prior_labels(60, toy, SIGNALS, seed=4)] != [r.query for r in a]
    with pytest.raises(ConfigError):
        synthetic_prior_labels(0, toy, SIGNALS)
