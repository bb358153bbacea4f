"""The exact casing check of the refined TMS candidates stops once no unchecked one can win."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

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


def test_casing_groups_change_speed_not_lifts():
    """The grouped casing minimum prunes by an exact bound: every group size (one group holding
    every point = brute force) gives the same lifts, minimum distances and placed flags."""
    import scipy.spatial

    from navigator.core.surface import Surface
    from navigator.optimize.collision import CasingModel, place_lifts, search_field
    from navigator.tms.library import library_coil
    from navigator.tms.pose import place_coil

    # a bumpy sphere (radius 90 mm +- 4 mm) so that the closest casing point moves around

    rng = np.random.default_rng(3)
    v = rng.normal(size=(4000, 3))
    v /= np.linalg.norm(v, axis=1)[:, None]
    faces = scipy.spatial.ConvexHull(v).simplices
    nrm = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    flip = (nrm * v[faces].mean(axis=1)).sum(axis=1) < 0
    faces[flip] = faces[flip][:, ::-1]
    r = 90.0 + 4.0 * np.sin(3 * np.arctan2(v[:, 1], v[:, 0])) * v[:, 2]
    scalp = Surface(v * r[:, None], faces)
    coil = library_coil("Magstim_D70")
    entry = np.array([0.0, 0.4, 0.92]) * 95
    pl = place_coil(scalp, entry, handle_angle=0.0, distance=4.0)
    angles = np.radians(np.arange(0, 360, 15))
    rot = np.array([[[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]] for a in angles])
    R = np.einsum("ij,ajk->aik", pl.pose[:3, :3], rot)
    T = np.repeat(pl.pose[None, :3, 3], len(R), axis=0) + rng.normal(scale=3.0, size=(len(R), 3))
    results = []
    for group_mm in (1000.0, 15.0, 10.0, 6.0):
        cas = CasingModel.of(coil, group_mm=group_mm)
        sdf = search_field(scalp, pl.scalp_point, pl.normal, cas, radius_mm=10.0, max_lift_mm=20.0)
        results.append(place_lifts(sdf, cas, R, T, 4.0))
        if group_mm == 1000.0:  # the minimum is the brute-force one over every casing point
            lifts, mind = results[0][0], results[0][1]
            for p in range(len(R)):
                w = cas.coarse @ R[p].T + T[p] - lifts[p] * R[p][:, 2]
                assert float(sdf.sample(w).min()) == pytest.approx(mind[p], abs=1e-9)
    for lifts, mind, placed in results[1:]:
        np.testing.assert_array_equal(placed, results[0][2])
        np.testing.assert_allclose(lifts, results[0][0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(mind, results[0][1], rtol=0, atol=1e-12)
    assert results[0][2].all() and np.ptp(results[0][0]) > 0.5  # the lifts differ between the poses
