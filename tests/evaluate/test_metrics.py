"""Agreement metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vidroute.errors import DataFormatError
from vidroute.evaluate import metrics as M

SIG = ["visual", "audio", "transcription", "metadata"]


def test_mae_overall_and_per_signal():
    t = np.array([[0.6, 0.1, 0.1, 0.2], [0.2, 0.6, 0.0, 0.2]])
    p = np.array([[0.5, 0.2, 0.1, 0.2], [0.2, 0.2, 0.4, 0.2]])
    # row 1 diffs .1 .1 0 0, row 2 diffs 0 .4 .4 0 -> total 1.0 over 8 entries
    assert M.mae(t, p) == pytest.approx(0.125)
    assert M.mae_rows(t, p) == pytest.approx([0.05, 0.2])
    per = M.mae_per_signal(t, p, SIG)
    assert per == pytest.approx({"visual": 0.05, "audio": 0.25, "transcription": 0.2, "metadata": 0.0})


def test_js_divergence_hand_values():
    # identical -> 0; disjoint -> exactly 1 bit
    assert M.js_divergence(np.array([[0.3, 0.7]]), np.array([[0.3, 0.7]])) == pytest.approx(0.0, abs=1e-9)
    assert M.js_divergence(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])) == pytest.approx(1.0, abs=1e-6)
    # p=(.5,.5), q=(1,0): m=(.75,.25); KL(p||m)=.5log2(2/3)+.5log2(2)=0.2075, KL(q||m)=log2(4/3)=0.4150
    expected = 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * 1.0) + 0.5 * math.log2(1 / 0.75)
    got = M.js_divergence(np.array([[0.5, 0.5]]), np.array([[1.0, 0.0]]))
    assert got == pytest.approx(expected, abs=1e-6)
    assert expected == pytest.approx(0.3113, abs=1e-4)
    # symmetric
    a, b = np.array([[0.2, 0.5, 0.3]]), np.array([[0.6, 0.1, 0.3]])
    assert M.js_divergence(a, b) == pytest.approx(M.js_divergence(b, a))


def test_dominant_accuracy_counts_reference_ties():
    t = np.array(
        [
            [0.4, 0.1, 0.4, 0.1],  # tie visual/transcription
            [0.4, 0.1, 0.4, 0.1],
            [0.7, 0.1, 0.1, 0.1],
            [0.1, 0.1, 0.1, 0.7],
        ]
    )
    p = np.array(
        [
            [0.2, 0.1, 0.6, 0.1],  # picks transcription: one of the tied -> correct
            [0.1, 0.6, 0.2, 0.1],  # picks audio: wrong
            [0.5, 0.3, 0.1, 0.1],  # correct
            [0.5, 0.1, 0.1, 0.3],  # wrong
        ]
    )
    assert M.dominant_match(t, p).tolist() == [True, False, True, False]
    assert M.dominant_accuracy(t, p) == pytest.approx(0.5)
    cm = M.dominant_confusion(t, p)
    # row 0 counted as transcription->transcription (tie resolved towards the prediction)
    assert cm[2, 2] == 1 and cm[0, 1] == 1 and cm[0, 0] == 1 and cm[3, 0] == 1
    assert cm.sum() == 4


def test_agreement_groups_and_confusion():
    t = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1]])
    p = np.array([[0.6, 0.2, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.6, 0.2]])
    out = M.agreement(t, p, SIG, groups=["visual", "audio", "visual"])
    assert out["n"] == 3
    assert out["dominant_accuracy"] == pytest.approx(2 / 3)
    assert out["confusion"]["matrix"][1][0] == 1
    assert out["per_group"]["visual"]["dominant_accuracy"] == 1.0
    assert out["per_group"]["audio"]["dominant_accuracy"] == 0.0
    assert out["per_group"]["audio"]["confusion"][1][0] == 1
    assert "per_group" not in M.agreement(t, p, SIG)


def test_to_matrix_orders_by_signals_and_rejects_missing_keys():
    rows = [{"audio": 0.2, "visual": 0.8}]
    assert M.to_matrix(rows, ["visual", "audio"]).tolist() == [[0.8, 0.2]]
    with pytest.raises(DataFormatError, match="metadata"):
        M.to_matrix(rows, ["visual", "metadata"])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        M.mae(np.zeros((2, 4)), np.zeros((2, 3)))


def test_percentiles():
    v = list(range(1, 101))  # 1..100
    out = M.percentiles(v)
    assert out["p50"] == pytest.approx(50.5)
    assert out["p99"] == pytest.approx(99.01)
    assert out["mean"] == pytest.approx(50.5)
