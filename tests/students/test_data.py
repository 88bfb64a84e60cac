"""Soft-label preparation, splitting, metrics and calibration: the numpy-only parts of the students stage."""

from __future__ import annotations

import numpy as np
import pytest

from vidroute.errors import ConfigError, DataFormatError, ModelError
from vidroute.records import LabelRecord, TeacherInfo
from vidroute.students.calibration import Calibrator, calibration_report
from vidroute.students.data import data_sha256, rubric_score, soft_labels, split_indices, weight_metrics
from vidroute.students.encoder import preprocess
from vidroute.students.trainer import DistillArgs

SIG = ["visual", "audio", "transcription", "metadata"]
T = TeacherInfo(backend="handmade", model_id="t")


def rec(q: str, w: list[float], i: int = 0) -> LabelRecord:
    return LabelRecord(id=f"r{i}", query=q, weights=dict(zip(SIG, w, strict=True)), teacher=T)


def test_preprocess_strips_entity_markers_and_hashes() -> None:
    assert preprocess("  @Messi scores a #goal   at   #WorldCup ") == "Messi scores a goal at WorldCup"


def test_soft_labels_average_identical_queries() -> None:
    recs = [
        rec("Dog barking", [0.2, 0.6, 0.1, 0.1], 0),
        rec("dog   barking", [0.4, 0.4, 0.1, 0.1], 1),  # same query after whitespace/case folding
        rec("@dog #barking", [0.3, 0.5, 0.1, 0.1], 2),  # same after removing @/#
        rec("a red car", [0.8, 0.0, 0.0, 0.2], 3),
    ]
    sl = soft_labels(recs, SIG)
    assert len(sl) == 2 and sl.n_records == 4 and sl.n_conflicting == 1
    assert sl.texts[0] == "Dog barking"
    np.testing.assert_allclose(sl.targets[0], [0.3, 0.5, 0.1, 0.1], atol=1e-6)
    assert list(sl.counts) == [3, 1]
    assert sl.teachers[0]["n_records"] == 4


def test_soft_labels_reject_wrong_keys_and_bad_sums() -> None:
    bad_keys = LabelRecord(id="x", query="q", weights={"visual": 1.0}, teacher=T)
    with pytest.raises(DataFormatError, match="keys"):
        soft_labels([bad_keys], SIG)
    with pytest.raises(DataFormatError, match="sum to 1"):
        soft_labels([rec("q", [0.5, 0.5, 0.5, 0.0])], SIG)


def test_split_is_seeded_stratified_and_disjoint() -> None:
    rng = np.random.default_rng(0)
    y = rng.dirichlet(np.ones(4), size=200).astype(np.float32)
    tr, va = split_indices(y, 0.2, seed=3)
    tr2, va2 = split_indices(y, 0.2, seed=3)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert not set(tr) & set(va) and len(tr) + len(va) == 200
    assert 35 <= len(va) <= 45
    # every dominant class present in the training data is also represented in val
    assert set(y[va].argmax(1)) == set(y.argmax(1))
    assert not np.array_equal(split_indices(y, 0.2, seed=4)[1], va)
    with pytest.raises(ConfigError):
        split_indices(y, 0.0, seed=0)


def test_data_hash_ignores_order_but_not_labels() -> None:
    a, b = rec("q1", [1, 0, 0, 0], 0), rec("q2", [0, 1, 0, 0], 1)
    assert data_sha256([a, b]) == data_sha256([b, a])
    assert data_sha256([a, b]) != data_sha256([a, rec("q2", [0, 0.9, 0.1, 0], 1)])


@pytest.mark.parametrize(
    ("pred", "level"),
    [
        ([0.62, 0.1, 0.1, 0.18], 5),  # all within 0.05
        ([0.52, 0.15, 0.1, 0.23], 4),  # all within 0.10
        ([0.45, 0.25, 0.05, 0.25], 3),  # same dominant, MAE < 0.15
        ([0.3, 0.5, 0.1, 0.1], 2),  # dominant wrong
        ([0.0, 0.0, 1.0, 0.0], 1),  # MAE > 0.30
    ],
)
def test_rubric_levels(pred: list[float], level: int) -> None:
    ref = np.array([0.6, 0.1, 0.1, 0.2])
    assert rubric_score(np.array(pred), ref) == level


def test_weight_metrics_perfect_and_wrong() -> None:
    y = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.7]])
    m = weight_metrics(y, y)
    assert m["dominant_agreement"] == 1.0 and m["mae"] == 0.0 and m["rubric_mean"] == 5.0 and abs(m["kl"]) < 1e-6
    w = weight_metrics(y[::-1], y)
    assert w["dominant_agreement"] == 0.0 and w["mae"] == pytest.approx(0.3)


def test_calibrator_is_monotone_and_roundtrips(tmp_path) -> None:
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(4) * 0.7, size=400)
    margin = np.sort(w, 1)[:, -1] - np.sort(w, 1)[:, -2]
    correct = (rng.random(400) < 0.4 + 0.6 * margin).astype(float)  # confident rows are right more often
    cal = Calibrator().fit(w, correct)
    conf = cal.predict(w)
    assert ((conf > 0) & (conf < 1)).all()
    assert np.corrcoef(conf, margin)[0, 1] > 0.8
    rep = calibration_report(conf, correct)
    assert rep["ece"] < 0.1 and rep["mean_confidence"] == pytest.approx(rep["accuracy"], abs=0.02)
    cal.save(tmp_path)
    np.testing.assert_allclose(Calibrator.load(tmp_path).predict(w), conf)


def test_calibrator_without_mistakes_is_not_certain() -> None:
    w = np.tile([0.7, 0.1, 0.1, 0.1], (20, 1))
    p = Calibrator().fit(w, np.ones(20)).predict(w)
    assert np.allclose(p, 21 / 22)


def test_calibrator_errors(tmp_path) -> None:
    with pytest.raises(ModelError, match="not fitted"):
        Calibrator().predict(np.ones((1, 4)) / 4)
    with pytest.raises(ModelError, match=r"calibration\.json"):
        Calibrator.load(tmp_path)


def test_distill_args_validate_and_reject_unknown() -> None:
    assert DistillArgs.from_dict({"hidden": 64}).hidden == 64
    with pytest.raises(ConfigError, match="unknown training parameter"):
        DistillArgs.from_dict({"hiden": 64})
    with pytest.raises(ConfigError, match="dropout"):
        DistillArgs(dropout=1.5)
