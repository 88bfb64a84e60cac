"""Segment planning (min/target/max over scene cuts) and ffmpeg scene detection."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidroute.errors import ConfigError
from vidroute.ingest.segments import pauses_as_cuts, plan_segments, scan_scenes


def test_fixed_windows_without_cuts():
    assert plan_segments(35.0) == [(0.0, 10.0), (10.0, 20.0), (20.0, 35.0)]
    assert plan_segments(12.0) == [(0.0, 12.0)]
    assert plan_segments(2.5) == [(0.0, 2.5)]  # shorter than the minimum: one segment
    assert plan_segments(0.0) == []


def test_cut_closest_to_target_wins():
    # Cuts at 5 and 9: from 0, 9 is closer to the 10 s target; the rest (9..20 = 11 s) ends the file.
    assert plan_segments(20.0, [5.0, 9.0]) == [(0.0, 9.0), (9.0, 20.0)]


def test_cut_leaving_a_too_short_remainder_is_not_used():
    # 12 s file, cut at 10 would leave 2 s (< 4 s min): the whole file is one segment.
    assert plan_segments(12.0, [10.0]) == [(0.0, 12.0)]
    # A cut giving a too-short first piece is not used either.
    assert plan_segments(30.0, [1.0]) == [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)]


def test_custom_lengths():
    spans = plan_segments(60.0, [], min_seconds=2, target_seconds=5, max_seconds=6)
    assert [round(e - s, 3) for s, e in spans] == [5.0] * 12


@pytest.mark.parametrize(("lo", "mid", "hi"), [(0, 5, 10), (5, 4, 10), (4, 10, 7), (6, 10, 11)])
def test_invalid_lengths(lo, mid, hi):
    with pytest.raises(ConfigError):
        plan_segments(30.0, min_seconds=lo, target_seconds=mid, max_seconds=hi)


@settings(max_examples=300, deadline=None)
@given(
    duration=st.floats(0.05, 900.0),
    cut_fracs=st.lists(st.floats(0.0, 1.0), max_size=60),
    lengths=st.sampled_from([(4.0, 10.0, 15.0), (2.0, 5.0, 6.0), (5.0, 5.0, 10.0), (1.0, 8.0, 30.0)]),
)
def test_plan_invariants(duration, cut_fracs, lengths):
    lo, mid, hi = lengths
    cuts = [f * duration for f in cut_fracs]
    spans = plan_segments(duration, cuts, min_seconds=lo, target_seconds=mid, max_seconds=hi)
    assert spans[0][0] == 0.0
    assert spans[-1][1] == pytest.approx(duration, abs=1e-3)
    for (_, e1), (s2, _) in itertools.pairwise(spans):
        assert e1 == s2  # contiguous, no gap and no overlap
    if duration < lo:
        assert len(spans) == 1
        return
    for s, e in spans:
        assert lo - 2e-3 <= e - s <= hi + 2e-3
    # Every inner boundary is a scene cut, unless no cut could give a valid segment there.
    rounded = {round(c, 3) for c in cuts}
    for s, e in spans[:-1]:
        if e not in rounded:
            valid = [c for c in rounded if s + lo <= c <= s + hi and duration - c >= lo]
            assert not valid


def test_pauses_as_cuts():
    assert pauses_as_cuts([(0.0, 2.0), (3.0, 5.0), (5.0, 6.0)]) == [2.5, 5.0]
    assert pauses_as_cuts([]) == []


def test_scan_scenes_finds_hard_cuts(three_shot_clip):
    scan = scan_scenes(three_shot_clip)
    cuts = scan.cuts(0.3)
    assert len(cuts) == 2
    assert cuts[0] == pytest.approx(3.0, abs=0.1)
    assert cuts[1] == pytest.approx(9.0, abs=0.1)
    assert scan.last_time == pytest.approx(12.0, abs=0.1)
    assert max(s for t, s in zip(scan.times, scan.scores, strict=True) if abs(t - 6.0) < 2) < 0.05
    spans = plan_segments(12.0, cuts)
    assert spans == [(0.0, 9.0), (9.0, 12.0)] or all(4 <= e - s <= 15 for s, e in spans)
