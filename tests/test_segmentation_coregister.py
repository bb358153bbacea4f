"""Rigid T2 -> T1 registration (navigator.segmentation.coregister) on a synthetic head."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from navigator.core.volume import Volume
from navigator.segmentation.coregister import register_t2_to_t1, t2_on_t1_grid


def _head(n=80):
    """An asymmetric layered head (1.5 mm voxels): brain ellipsoid with a 'ventricle' off centre,
    CSF, skull, scalp, and a nose; T1 and T2 contrasts of the same anatomy."""
    g = (np.indices((n, n, n)).astype(np.float32) - n / 2) * 1.5
    x, y, z = g
    r = np.sqrt((x / 1.0) ** 2 + (y / 1.2) ** 2 + (z / 0.95) ** 2)
    lab = np.zeros((n, n, n), np.uint8)
    lab[r < 52] = 5
    lab[(np.abs(x) < 6) & (y > 40) & (y < 64) & (z > -20) & (z < 5)] = 5  # nose
    lab[r < 46] = 4
    lab[r < 40] = 3
    lab[r < 37] = 2
    lab[r < 30] = 1
    lab[(np.sqrt((x - 8) ** 2 + (y + 5) ** 2 + (z - 6) ** 2) < 7)] = 3  # ventricle, off centre
    t1v = np.array([0.0, 1.0, 0.6, 0.2, 0.05, 0.8], np.float32)
    t2v = np.array([0.0, 0.35, 0.5, 1.0, 0.05, 0.45], np.float32)
    rng = np.random.default_rng(3)
    t1 = ndi.gaussian_filter(t1v[lab], 0.7) + rng.normal(0, 0.02, lab.shape).astype(np.float32)
    t2 = ndi.gaussian_filter(t2v[lab], 0.7) + rng.normal(0, 0.02, lab.shape).astype(np.float32)
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    affine[:3, 3] = -n / 2 * 1.5
    return np.clip(t1, 0, None), np.clip(t2, 0, None), lab > 0, affine


def _rigid(rx, rz, t):
    a, b = np.radians(rx), np.radians(rz)
    mx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    mz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = mx @ mz
    m[:3, 3] = t
    return m


def _error_mm(m, truth):
    pts = np.random.default_rng(0).uniform(-50, 50, (300, 3))
    p = np.c_[pts, np.ones(len(pts))]
    return np.linalg.norm((p @ m.T)[:, :3] - (p @ truth.T)[:, :3], axis=1)


def test_moved_t2_is_registered_back():
    t1, t2, head, affine = _head()
    moved = _rigid(4.0, -3.0, [3.0, -4.0, 2.5])  # T1 world point p appears at moved @ p in the T2
    res = register_t2_to_t1(t1, affine, head, Volume(t2, moved @ affine))
    err = _error_mm(res.t1_to_t2, moved)
    assert res.applied and np.median(err) < 0.5 and err.max() < 1.0, (res.to_json(), np.median(err), err.max())
    assert abs(res.rotation_deg - 4.99) < 0.5
    back = t2_on_t1_grid(Volume(t2, moved @ affine), res, affine, t1.shape).data
    inner = ndi.binary_erosion(head, iterations=4)
    assert np.abs(back - t2)[inner].mean() < 0.05


def test_aligned_t2_stays_and_a_far_t2_is_found():
    t1, t2, head, affine = _head()
    res = register_t2_to_t1(t1, affine, head, Volume(t2, affine))
    assert _error_mm(res.t1_to_t2, np.eye(4)).max() < 0.3, res.to_json()
    far = _rigid(2.0, 0.0, [0.0, 30.0, -25.0])  # another session's space: 39 mm away
    res = register_t2_to_t1(t1, affine, head, Volume(t2, far @ affine))
    err = _error_mm(res.t1_to_t2, far)
    assert res.applied and np.median(err) < 0.6, (res.to_json(), np.median(err))
