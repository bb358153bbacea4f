"""The exact casing check of the refined TMS candidates stops once no unchecked one can win."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from navigator.optimize import fine_search
from navigator.optimize.fine_search import RefinedPose


def _pose(score: float) -> RefinedPose:
    return RefinedPose(pose=np.eye(4), score=score, vector=np.zeros(3), centre_index=0, angle_deg=0.0,
                       offset_mm=(0.0, 0.0), tilt_deg=(0.0, 0.0), lift_mm=0.0, start_score=score)


def test_checks_best_first_until_no_candidate_can_win(monkeypatch):
    checked = []

    def fake_check(ev, scalp, r, distance_mm):
        checked.append(r.score)
        # the best one collides and must be lifted: its score drops below the third one's
        new = 0.5 if r.score == 10.0 else r.score
        return replace(r, score=new, clearance_mm=4.0)

    monkeypatch.setattr(fine_search, "_final_clearance", fake_check)
    cands = [_pose(s) for s in (3.0, 10.0, 8.0, 9.0, 1.0, float("nan"))]
    out = fine_search._exact_checked(None, None, cands, 4.0)
    assert checked == [10.0, 9.0]  # 9 beats the lifted 10 (0.5) and every unchecked score (<= 8)
    assert [r.score for r in out[:5]] == [9.0, 8.0, 3.0, 1.0, 0.5]
    assert out[0].clearance_mm == 4.0 and out[1].clearance_mm is None
    assert np.isnan(out[5].score)


def test_every_candidate_checked_while_checks_keep_lowering(monkeypatch):
    monkeypatch.setattr(fine_search, "_final_clearance",
                        lambda ev, scalp, r, d: replace(r, score=r.score - 100.0, clearance_mm=4.0))
    out = fine_search._exact_checked(None, None, [_pose(s) for s in (1.0, 2.0, 3.0)], 4.0)
    assert [r.clearance_mm for r in out] == [4.0, 4.0, 4.0]
    assert [r.score for r in out] == [-97.0, -98.0, -99.0]
