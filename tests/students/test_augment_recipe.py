"""Augmentation options for real-query routing: label sharpening, intent mix and the `--recipe` of `vidroute train`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vidroute.errors import ConfigError
from vidroute.students.augment import RECIPES, class_means, sharpen, synthetic_prior_labels

SIGNALS = ["visual", "audio", "transcription", "metadata"]


def test_sharpen_keeps_the_argmax_and_concentrates_mass() -> None:
    w = [0.2, 0.5, 0.1, 0.2]
    assert sharpen(w, 1.0) == pytest.approx(w)
    sharp = sharpen(w, 0.5)
    assert sum(sharp) == pytest.approx(1.0) and int(np.argmax(sharp)) == 1
    assert sharp[1] > w[1] and sharp[2] < w[2]
    assert sharpen(w, 2.0)[1] < w[1]  # T > 1 flattens
    with pytest.raises(ConfigError, match="temperature"):
        sharpen(w, 0.0)


def test_synthetic_labels_follow_mix_and_temperature(toy) -> None:
    means = class_means(toy, SIGNALS)
    recs = synthetic_prior_labels(80, toy, SIGNALS, seed=1, mix="audio=1,transcription=1", temperature=0.5)
    assert {r.intent for r in recs} == {"audio", "transcription"} and len(recs) == 80  # no "mixed" share to skip
    for r in recs:
        assert list(r.weights.values()) == pytest.approx(sharpen(means[r.intent], 0.5))
        assert max(r.weights.values()) > max(means[r.intent])


def test_recipes_name_valid_settings() -> None:
    assert RECIPES["none"] == {}
    realq = RECIPES["realq"]
    assert realq["augment"] > 0 and 0 < realq["params"]["augment_weight"] <= 1 and realq["temperature"] > 0
    from vidroute.students.trainer import DistillArgs

    for rec in RECIPES.values():  # every recipe parameter is a real training parameter
        DistillArgs.from_dict(rec.get("params", {}))


def test_cli_recipe_sets_augmentation_and_flags_override(tmp_path: Path, toy) -> None:
    from typer.testing import CliRunner

    from vidroute.cli import app
    from vidroute.records import write_jsonl

    labels = tmp_path / "labels.jsonl"
    write_jsonl(labels, toy)
    base = ["train", "--data", str(labels), "--student", "static", "-p", "static_init=input", "-p", "max_epochs=5"]
    # --augment overrides the recipe's N (kept small so the test stays fast); the recipe supplies the weight.
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "m"), "--recipe", "realq", "--augment", "50"])
    assert res.exit_code == 0, res.output
    card = json.loads(res.stdout)
    assert card["params"]["augment_weight"] == RECIPES["realq"]["params"]["augment_weight"]
    assert card["data"]["source"]["recipe"] == "realq" and card["data"]["source"]["augment_generated"] == 50
    assert 0 < card["data"]["n_augment"] <= 50
    res = CliRunner().invoke(
        app, [*base, "--out", str(tmp_path / "m2"), "--recipe", "realq", "--augment", "50", "-p", "augment_weight=1.0"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["params"]["augment_weight"] == 1.0
    bad = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "m3"), "--recipe", "nope"])
    assert bad.exit_code != 0 and "--recipe" in str(bad.exception)


def test_weighted_soft_ce_ignores_zero_weight_rows():
    import torch

    from vidroute.students.trainer import soft_ce

    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    target = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    alone = soft_ce(logits[:1], target[:1])
    assert torch.isclose(soft_ce(logits, target, torch.tensor([1.0, 0.0])), alone)
    assert torch.isclose(soft_ce(logits, target, torch.tensor([2.0, 2.0])), soft_ce(logits, target))
    assert soft_ce(logits, target, torch.tensor([1.0, 0.3])) < soft_ce(logits, target)  # row 2 is the worse fit


def test_model_labels_are_the_students_weights(frozen_dir: Path) -> None:
    from vidroute.queries import generate_queries
    from vidroute.router import Router
    from vidroute.students.augment import MODEL_BACKEND, model_labels

    queries, _ = generate_queries(30, seed=5, embed_dedup=False)
    recs = model_labels(queries, frozen_dir, SIGNALS)
    assert [r.query for r in recs] == [q.query for q in queries]  # "mixed" queries are labelled too
    assert any(q.intent == "mixed" for q in queries)
    want = Router.load(frozen_dir).predict_proba([q.query for q in queries])
    got = np.array([[r.weights[s] for s in SIGNALS] for r in recs])
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert {r.teacher.backend for r in recs} == {MODEL_BACKEND}
    assert recs[0].teacher.model_id.startswith(f"{frozen_dir.name}:frozen@")
    with pytest.raises(ConfigError, match="routes"):
        model_labels(queries, frozen_dir, ["visual", "audio", "speech", "metadata"])


def test_cli_distils_a_student_into_a_static_one(tmp_path: Path, toy, frozen_dir: Path) -> None:
    from typer.testing import CliRunner

    from vidroute.cli import app
    from vidroute.records import write_jsonl

    labels = tmp_path / "labels.jsonl"
    write_jsonl(labels, toy)
    base = ["train", "--data", str(labels), "--student", "static", "-p", "static_init=input", "-p", "max_epochs=5"]
    args = [*base, "--out", str(tmp_path / "m"), "--augment", "40", "--augment-labeller", str(frozen_dir)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    card = json.loads(res.stdout)
    assert card["data"]["source"]["augment_labeller"] == str(frozen_dir)
    assert card["data"]["source"]["augment_temperature"] is None  # class-mean sharpening does not apply
    assert 30 <= card["data"]["n_augment"] <= 40  # every generated query, less those that repeat a toy query
    assert any(t["backend"] == "student" for t in card["teachers"])
    bad = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "m2"), "--augment-labeller", str(frozen_dir)])
    assert bad.exit_code != 0 and "needs queries" in str(bad.exception)
    bad = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "m3"), "--recipe", "distil"])
    assert bad.exit_code != 0 and "--augment-labeller" in str(bad.exception)
    # The recipe's training parameters apply; --augment keeps the test small.
    args = [*base, "--out", str(tmp_path / "m4"), "--recipe", "distil", "--augment", "20", "-p", "augment_weight=0.5"]
    res = CliRunner().invoke(app, [*args, "--augment-labeller", str(frozen_dir)])
    assert res.exit_code == 0, res.output
    card = json.loads(res.stdout)
    assert card["params"]["static_finetune_epochs"] == RECIPES["distil"]["params"]["static_finetune_epochs"]
    assert card["params"]["augment_weight"] == 0.5 and "table_tuning" in card["training"]
