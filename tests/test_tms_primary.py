"""Primary field dA/dt: FMM against direct summation, SI scaling, poses and linearity."""

from __future__ import annotations

import math

import numpy as np
import pytest

from navigator.core.errors import NavigatorError
from navigator.tms.coil import Coil
from navigator.tms.primary import (
    MU0,
    check_pose,
    dipole_vector_potential,
    primary_field,
    segment_vector_potential,
)


def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def test_single_dipole_matches_formula():
    r0 = np.array([0.01, -0.02, 0.03])
    m = np.array([0.2, -0.4, 1.1])
    p = np.array([[0.05, 0.04, 0.12]])
    d = p[0] - r0
    expect = MU0 / (4 * math.pi) * np.cross(m, d) / np.linalg.norm(d) ** 3
    for method in ("direct", "fmm"):
        np.testing.assert_allclose(dipole_vector_potential(r0[None], m[None], p, method=method)[0], expect,
                                   rtol=1e-6)


def test_fmm_matches_direct_summation():
    """fmm3dpy's kernel includes 1/(4 pi): scaling by mu0 must reproduce direct summation."""
    rng = np.random.default_rng(3)
    pos = rng.normal(size=(300, 3)) * 0.02
    mom = rng.normal(size=(300, 3))
    pts = rng.normal(size=(4000, 3)) * 0.04 + [0, 0, 0.1]
    a = dipole_vector_potential(pos, mom, pts, method="direct")
    b = dipole_vector_potential(pos, mom, pts, method="fmm", eps=1e-6)
    assert np.abs(a - b).max() < 1e-5 * np.abs(a).max()
    ends = pos[:150] + rng.normal(size=(150, 3)) * 0.005
    a = segment_vector_potential(pos[:150], ends, np.ones(150), pts, method="direct")
    b = segment_vector_potential(pos[:150], ends, np.ones(150), pts, method="fmm", eps=1e-6)
    assert np.abs(a - b).max() < 1e-4 * np.abs(a).max()


def test_segment_formula_against_fine_quadrature():
    a, b = np.array([[0.0, 0, 0]]), np.array([[0.03, 0.01, 0]])
    p = np.array([[0.01, 0.02, 0.015]])
    t = (np.arange(20000) + 0.5) / 20000
    q = a + t[:, None] * (b - a)
    dl = (b - a) / 20000
    expect = MU0 / (4 * math.pi) * (dl / np.linalg.norm(p - q, axis=1)[:, None]).sum(axis=0)
    np.testing.assert_allclose(segment_vector_potential(a, b, [1.0], p, method="direct")[0], expect, rtol=1e-7)


def test_pose_rotation_and_linearity():
    rng = np.random.default_rng(5)
    coil = Coil("c", dipole_positions=rng.normal(size=(20, 3)) * 10 - [0, 0, 10],
                dipole_moments=rng.normal(size=(20, 3)) * 1e-3)
    R = _rot([1, 2, 3], 0.7)
    pose = np.eye(4)
    pose[:3, :3] = R
    pose[:3, 3] = [10.0, -20.0, 80.0]
    local = rng.normal(size=(50, 3)) * 20 + [0, 0, 30]
    world = local @ R.T + pose[:3, 3]
    e_local = primary_field(coil, np.eye(4), local, 1e6)
    e_world = primary_field(coil, pose, world, 1e6)
    np.testing.assert_allclose(e_world, e_local @ R.T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(primary_field(coil, pose, world, 3e6), 3 * e_world, rtol=1e-12)


def test_bad_pose_rejected():
    with pytest.raises(NavigatorError, match="orthonormal"):
        check_pose(np.diag([2.0, 1, 1, 1]))
    m = np.eye(4)
    m[0, 0] = -1  # reflection
    with pytest.raises(NavigatorError):
        check_pose(m)
