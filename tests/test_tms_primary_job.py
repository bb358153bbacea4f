"""The primary field computed in a background process: same numbers, clean fallbacks, cancellable."""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np
import pytest

from navigator.core.errors import Cancelled
from navigator.core.progress import Progress
from navigator.tms import primary_job
from navigator.tms.coil import Coil
from navigator.tms.primary import primary_field
from navigator.tms.primary_job import PrimaryFieldJob, background_worthwhile


def _coil_and_pose(n_dipoles: int = 60):
    rng = np.random.default_rng(4)
    coil = Coil("random", rng.uniform(-30, 30, (n_dipoles, 3)) * [1, 1, 0.1], rng.normal(size=(n_dipoles, 3)),
                segment_starts=[[-10, 0, -5]], segment_ends=[[10, 0, -5]])
    pose = np.eye(4)
    pose[:3, 1], pose[:3, 2] = [0, 1, 0], [0, 0, -1]
    pose[:3, 0] = np.cross(pose[:3, 1], pose[:3, 2])
    pose[:3, 3] = [0, 0, 100.0]
    return coil, pose


def _points(n: int = 3000) -> np.ndarray:
    return np.random.default_rng(5).uniform(-80, 80, (n, 3))


def _dirs() -> set[str]:
    """The job folders in the temporary directory now."""
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("navigator-primary-")}


def _leftover_dirs(before: set[str]) -> set[str]:
    return _dirs() - before


def test_background_result_equals_in_process():
    coil, pose = _coil_and_pose()
    pts = _points()
    before = _dirs()
    expect = primary_field(coil, pose, pts, 1e6, method="fmm", eps=1e-6)
    job = PrimaryFieldJob.start(coil, pose, pts, 1e6, method="fmm", eps=1e-6, background=True)
    got = job.result()
    assert job.in_background
    assert job.seconds > 0
    np.testing.assert_array_equal(got, expect)  # same code, same input: bit-identical
    assert not _leftover_dirs(before)


def test_in_process_when_not_worthwhile(monkeypatch):
    coil, pose = _coil_and_pose()
    assert not background_worthwhile(coil, 1000)  # small: start-up would cost more than it saves
    assert not background_worthwhile(Coil("empty", np.zeros((0, 3)), np.zeros((0, 3))), 10**6)
    monkeypatch.setenv(primary_job.ENV_SWITCH, "0")
    assert not background_worthwhile(coil, 10**7)
    monkeypatch.setenv(primary_job.ENV_SWITCH, "1")
    monkeypatch.setattr(primary_job, "available_cores", lambda: 1)
    assert not background_worthwhile(coil, 10**7)  # one core: nothing to overlap with
    monkeypatch.setattr(primary_job, "available_cores", lambda: 2)
    assert background_worthwhile(coil, 10**7)
    job = PrimaryFieldJob.start(coil, pose, _points(500), 1e6)
    out = job.result()
    assert not job.in_background and out.shape == (500, 3)


def test_failed_child_falls_back_to_this_process(monkeypatch, caplog):
    coil, pose = _coil_and_pose()
    pts = _points(800)
    monkeypatch.setattr(primary_job.sys, "executable", "/bin/false")
    before = _dirs()
    with caplog.at_level(logging.WARNING, logger="navigator.tms.primary_job"):
        job = PrimaryFieldJob.start(coil, pose, pts, 2e6, method="fmm", eps=1e-6, background=True)
        got = job.result()
    assert not job.in_background
    assert "computing in-process" in caplog.text
    np.testing.assert_allclose(got, primary_field(coil, pose, pts, 2e6, method="fmm", eps=1e-6), rtol=0, atol=0)
    assert not _leftover_dirs(before)


def test_cancel_kills_the_child():
    coil, pose = _coil_and_pose()
    before = _dirs()
    job = PrimaryFieldJob.start(coil, pose, _points(), 1e6, method="fmm", background=True)
    assert job._child is not None
    proc = job._child.proc
    progress = Progress()
    progress.token.cancel()
    with pytest.raises(Cancelled):
        job.result(progress)
    assert proc.poll() is not None  # killed (or finished), not left running
    assert not _leftover_dirs(before)


def test_bad_pose_fails_in_the_caller():
    from navigator.core.errors import NavigatorError

    coil, pose = _coil_and_pose()
    pose[:3, :3] *= 2
    with pytest.raises(NavigatorError, match="orthonormal"):
        PrimaryFieldJob.start(coil, pose, _points(10), 1e6, background=True)


def test_solve_tms_with_background_primary_field_matches(monkeypatch):
    """solve_tms overlaps the FMM with assembly; the fields equal the all-in-process run."""
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.tms.simulate import solve_tms

    mesh = concentric_sphere_mesh(size=12.0)
    coil, pose = _coil_and_pose(40)
    pose[:3, 3] = [0, 0, 110.0]
    monkeypatch.setenv(primary_job.ENV_SWITCH, "0")
    ref = solve_tms(mesh, coil, pose, 1e6, method="fmm")
    assert "primary_field_wait" not in ref.timings
    monkeypatch.setenv(primary_job.ENV_SWITCH, "1")
    monkeypatch.setattr(primary_job, "MIN_BACKGROUND_POINTS", 0)
    monkeypatch.setattr(primary_job, "available_cores", lambda: 2)
    got = solve_tms(mesh, coil, pose, 1e6, method="fmm")
    assert "primary_field_wait" in got.timings and "solver_setup" in got.timings
    np.testing.assert_array_equal(got.D, ref.D)
    np.testing.assert_allclose(got.E, ref.E, rtol=0, atol=1e-12 * np.abs(ref.E).max())


def test_child_waits_for_go_ahead_and_cleans_up_without_it(monkeypatch):
    """Held child (parallel loops use every core): it computes nothing until released and
    removes its folder when the parent goes away without releasing it."""
    monkeypatch.setattr(primary_job, "cpu_cores", lambda: 1)
    monkeypatch.setattr(primary_job, "compute_threads", lambda: 1)
    coil, pose = _coil_and_pose()
    job = PrimaryFieldJob.start(coil, pose, _points(), 1e6, method="fmm", background=True)
    assert job._child is not None
    d, proc = job._child.folder, job._child.proc
    assert proc.stdin is not None and not proc.stdin.closed  # held
    proc.stdin.close()  # what the parent's death looks like to the child
    assert proc.wait(timeout=60) == 0
    assert not d.exists()
    job._child = None
