"""The Laplace FMM split by density over two processes gives the numbers of one call."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fmm3dpy")

from navigator.fem import fmm


def _problem(nd: int, ns: int = 3000, nt: int = 2000, seed: int = 0):
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(ns, 3)) * 0.03
    tgt = rng.normal(size=(nt, 3)) * 0.03 + [0.0, 0.0, 0.12]
    return src, rng.normal(size=(nd, ns)), tgt


@pytest.mark.parametrize("nd", [2, 5, 9])
def test_split_equals_one_call(nd):
    src, ch, tgt = _problem(nd)
    pot1, grad1 = fmm.laplace_fmm(src, ch, tgt, eps=1e-6, split=False)
    pot2, grad2 = fmm.laplace_fmm(src, ch, tgt, eps=1e-6, split=True)
    assert pot2.shape == (nd, len(tgt)) and grad2.shape == (nd, 3, len(tgt))
    np.testing.assert_allclose(pot2, pot1, rtol=1e-12, atol=0)
    np.testing.assert_allclose(grad2, grad1, rtol=1e-12, atol=0)
    # and the FMM itself: direct sum of the 1/(4 pi r) potentials
    d = tgt[:, None, :] - src[None]
    r = np.linalg.norm(d, axis=2)
    direct = ch @ (1.0 / (4 * np.pi * r)).T
    np.testing.assert_allclose(pot2, direct, rtol=1e-5, atol=1e-6 * np.abs(direct).max())


def test_potentials_only_and_failed_child_falls_back(monkeypatch):
    src, ch, tgt = _problem(4, seed=1)
    pot1, grad1 = fmm.laplace_fmm(src, ch, tgt, pgt=1, split=False)
    assert grad1 is None
    monkeypatch.setattr(fmm.sys, "executable", "/bin/false")  # the child exits with an error
    pot2, grad2 = fmm.laplace_fmm(src, ch, tgt, pgt=1, split=True)
    assert grad2 is None
    np.testing.assert_allclose(pot2, pot1, rtol=1e-12)


def test_split_only_where_it_pays(monkeypatch):
    monkeypatch.setattr(fmm, "available_cores", lambda: 2)
    assert fmm.split_worthwhile(9, 300_000, 400_000)
    assert not fmm.split_worthwhile(1, 300_000, 400_000)  # one density: nothing to split
    assert not fmm.split_worthwhile(9, 1000, 2000)  # a child's start-up would not pay off
    monkeypatch.setenv(fmm.ENV_SWITCH, "0")
    assert not fmm.split_worthwhile(9, 300_000, 400_000)
    monkeypatch.delenv(fmm.ENV_SWITCH)
    monkeypatch.setattr(fmm, "available_cores", lambda: 1)
    assert not fmm.split_worthwhile(9, 300_000, 400_000)


def test_exchange_files_leave_a_small_shared_memory_alone(monkeypatch):
    import collections

    from navigator.fem import child_process

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(child_process.shutil, "disk_usage", lambda p: usage(64 << 20, 60 << 20, 4 << 20))
    assert fmm.shared_memory_dir(100 << 20) is None  # a container's 64 MB /dev/shm: the temporary folder
    monkeypatch.setattr(child_process.shutil, "disk_usage", lambda p: usage(12 << 30, 0, 12 << 30))
    import os

    expected = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    assert fmm.shared_memory_dir(100 << 20) == expected
    src, ch, tgt = _problem(3, seed=2)  # and the split still works wherever the files go
    np.testing.assert_allclose(fmm.laplace_fmm(src, ch, tgt, split=True)[0], fmm.laplace_fmm(src, ch, tgt, split=False)[0],
                               rtol=1e-12)


def test_a_failing_or_cancelled_half_leaves_no_child_or_files(monkeypatch, tmp_path):
    import glob

    from navigator.core.errors import Cancelled
    from navigator.core.progress import Progress

    monkeypatch.setattr(fmm, "shared_memory_dir", lambda need: str(tmp_path))
    src, ch, tgt = _problem(4, seed=4)
    real = fmm._lfmm3d

    def failing(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(fmm, "_lfmm3d", failing)  # this process's half fails
    with pytest.raises(RuntimeError):
        fmm.laplace_fmm(src, ch, tgt, split=True)
    assert not glob.glob(str(tmp_path / "navigator-fmm-*"))
    monkeypatch.setattr(fmm, "_lfmm3d", real)
    progress = Progress()
    progress.token.cancel()
    with pytest.raises(Cancelled):
        fmm.laplace_fmm(src, ch, tgt, split=True, progress=progress)
    assert not glob.glob(str(tmp_path / "navigator-fmm-*"))
