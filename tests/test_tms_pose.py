"""Coil placement: handle convention in subject RAS, distance, targets, casing collision."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface
from navigator.core.workspace import Workspace
from navigator.tms.library import library_coil
from navigator.tms.pose import (
    casing_clearance,
    handle_from_angle,
    parse_pose,
    place_coil,
    project_to_surface,
    resolve_target_point,
)


def icosphere(radius: float = 90.0, subdivisions: int = 4, centre=(0.0, 0.0, 0.0)) -> Surface:
    t = (1 + 5 ** 0.5) / 2
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
         [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11],
         [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    verts = [np.array(x, float) / np.linalg.norm(x) for x in v]
    faces = f
    for _ in range(subdivisions):
        cache: dict = {}
        new = []

        def mid(a, b, cache=cache):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = verts[a] + verts[b]
                verts.append(m / np.linalg.norm(m))
                cache[key] = len(verts) - 1
            return cache[key]

        for a, b, c in faces:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        faces = new
    return Surface(np.array(verts) * radius + np.asarray(centre), np.array(faces))


@pytest.fixture(scope="module")
def head():
    return icosphere(90.0, 4, centre=(2.0, 10.0, 5.0))


def test_projection_and_distance(head):
    target = np.array([-30.0, 40.0, 50.0])
    sp = project_to_surface(head, target)
    c = np.array([2.0, 10.0, 5.0])
    radial = (target - c) / np.linalg.norm(target - c)
    assert np.linalg.norm(sp - (c + 90 * radial)) < 1.5  # faceted sphere: foot on a flat facet
    pl = place_coil(head, target, distance=4.0)
    R = pl.pose[:3, :3]
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    assert np.dot(pl.pose[:3, 2], radial) < -0.999  # z points into the head
    assert np.linalg.norm(pl.pose[:3, 3] - c) == pytest.approx(94.0, abs=0.5)


def test_default_handle_left_and_right(head):
    """Left target: handle towards -x, -y at 45 deg from the midline; right target mirrored."""
    left = place_coil(head, [-40.0, 50.0, 60.0])
    right = place_coil(head, [44.0, 50.0, 60.0])
    hl, hr = left.handle, right.handle
    assert hl[0] < -0.3 and hl[1] < -0.3
    assert hr[0] > 0.3 and hr[1] < -0.3
    assert left.handle_angle_deg == 45.0
    # angle between handle and the tangent-plane posterior direction is 45 deg
    n = left.normal
    post = np.array([0, -1.0, 0]) - np.dot([0, -1.0, 0], n) * n
    post /= np.linalg.norm(post)
    assert np.degrees(np.arccos(np.dot(hl, post))) == pytest.approx(45.0, abs=1e-6)
    assert abs(np.dot(hl, n)) < 1e-9
    # mirror symmetry about the head's mid-sagittal plane x = 2
    l2 = place_coil(head, [2 - 42.0, 50.0, 60.0])
    r2 = place_coil(head, [2 + 42.0, 50.0, 60.0])
    np.testing.assert_allclose(l2.handle * [-1, 1, 1], r2.handle, atol=0.02)
    # 0 degrees points straight back, 90 laterally
    h0 = handle_from_angle(np.array([0, 0, 1.0]), 0.0, left=True)
    h90 = handle_from_angle(np.array([0, 0, 1.0]), 90.0, left=True)
    np.testing.assert_allclose(h0, [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(h90, [-1, 0, 0], atol=1e-12)


def test_handle_dir_and_parse(head):
    pl = place_coil(head, [2.0, 10.0, 100.0], handle_dir=[0, 1, 0.3])
    np.testing.assert_allclose(pl.handle, [0, 1, 0], atol=1e-6)
    with pytest.raises(NavigatorError, match="parallel"):
        place_coil(head, [2.0, 10.0, 100.0], handle_dir=[0, 0, 1])
    m = parse_pose(",".join(str(x) for x in pl.pose.ravel()))
    np.testing.assert_allclose(m, pl.pose)
    with pytest.raises(NavigatorError, match="16 numbers"):
        parse_pose("1,2,3")


def test_resolve_target_point(tmp_path, head):
    """TMS targets go through navigator.targets (one SPEC grammar everywhere)."""
    from navigator.io.surfaces import write_surface

    from navigator.targets.head import Head

    ws = Workspace.create(tmp_path / "sub")
    write_surface(head, ws.path("scalp"))
    session = Head.of(ws)
    p, label = resolve_target_point(session, "subject:-10,20.5,30")
    np.testing.assert_allclose(p, [-10, 20.5, 30])
    np.testing.assert_allclose(resolve_target_point(session, " 1, 2, 3")[0], [1, 2, 3])
    with pytest.raises(NavigatorError, match="no EEG positions"):
        resolve_target_point(session, "eeg:F3")
    ws.path("eeg").parent.mkdir(parents=True, exist_ok=True)
    ws.path("eeg").write_text("Fiducial,0,85,-30,Nz\nElectrode,-50.2,53.1,42.2,F3\nElectrode,50,53,42,F4\n")
    p, label = resolve_target_point(session, "eeg:f3")
    np.testing.assert_allclose(p, [-50.2, 53.1, 42.2])
    assert label == "eeg:f3"
    with pytest.raises(NavigatorError, match="unknown EEG position"):
        resolve_target_point(session, "eeg:Xyz")
    with pytest.raises(NavigatorError, match="no MNI transforms"):
        resolve_target_point(session, "mni:1,2,3")


def test_casing_clearance(head):
    pl = place_coil(head, [-40.0, 50.0, 60.0], distance=4.0)
    d70 = casing_clearance(library_coil("Magstim_D70"), pl.pose, head)
    assert not d70.collides and 2.0 < d70.min_distance_mm <= 4.5
    dcc = casing_clearance(library_coil("Magstim_DCC_110mm"), pl.pose, head)
    assert dcc.collides and dcc.min_distance_mm < 0
    inside = place_coil(head, [-40.0, 50.0, 60.0], distance=0.0)
    inside.pose[:3, 3] += inside.pose[:3, 2] * 10.0  # push the coil 10 mm into the head
    assert casing_clearance(library_coil("Magstim_D70"), inside.pose, head).min_distance_mm < -5
