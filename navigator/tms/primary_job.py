"""Compute a coil's primary field in a child process while the caller assembles the FEM system.

Why: the FMM of ``fmm3dpy`` runs on one core and holds Python's GIL for its whole duration,
while the FEM assembly (compiled, both cores) and the AMG set-up (scipy, one core) do not
need the primary field. On a 2-core machine the FMM in a second process therefore runs beside
the set-up almost for free (at 1 M nodes 9.4-9.7 s instead of 12.1-12.2 s per
simulation, docs/performance.md).

Protocol (:mod:`navigator.fem.child_process`, shared with :mod:`navigator.fem.fmm`): the
parent writes ``job.pkl`` (coil, pose, dI/dt, method, eps) and ``points.npy`` into a private
temporary folder, runs ``python -m navigator.tms.primary_job DIR`` and, once the child exits,
reads ``field.npy`` (dA/dt, V/m, world axes) and ``seconds.txt``. A child that fails or cannot
be started is never fatal: :meth:`PrimaryFieldJob.result` then computes the field in this
process.

The background process is used only when it can help: an FMM-sized problem
(:data:`MIN_BACKGROUND_POINTS` points or more), at least two CPU cores available to this
process and to numba, and ``NAVIGATOR_PRIMARY_FIELD_PROCESS`` not set to ``0``.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from navigator.core.progress import Progress, ensure_progress
from navigator.fem.child_process import ChildProcess, save_output, wait_for_go_ahead
from navigator.fem.fmm import available_cores, compute_threads, cpu_cores
from navigator.tms.coil import Coil
from navigator.tms.primary import _choose, check_pose, primary_field

log = logging.getLogger(__name__)

#: Fewer evaluation points than this: compute in-process (start-up ~0.5 s would not pay off).
MIN_BACKGROUND_POINTS = 100_000
#: Environment switch: "0" disables the background process.
ENV_SWITCH = "NAVIGATOR_PRIMARY_FIELD_PROCESS"


def background_worthwhile(coil: Coil, n_points: int, method: str = "auto") -> bool:
    """True if computing this primary field in a child process is expected to save time."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return False
    if n_points < MIN_BACKGROUND_POINTS or (coil.n_dipoles == 0 and coil.n_segments == 0):
        return False
    if _choose(method, max(coil.n_dipoles, coil.n_segments), n_points) != "fmm":
        return False
    return available_cores() >= 2


class PrimaryFieldJob:
    """dA/dt (V/m) of a posed coil at world points (mm): started now, collected with :meth:`result`.

    Use :meth:`start`; when a background process is not worthwhile (or cannot be started) the
    job computes the field in this process inside :meth:`result`, so callers need one code path.
    """

    def __init__(self, coil: Coil, pose: np.ndarray, points_mm: np.ndarray, didt: float, method: str, eps: float):
        self.coil, self.pose, self.points, self.didt = coil, np.asarray(pose, np.float64), points_mm, float(didt)
        self.method, self.eps = method, float(eps)
        #: The background child (None: in-process, or already collected/closed).
        self._child: ChildProcess | None = None
        #: Seconds of primary-field computation (in the child when run in the background).
        self.seconds: float = 0.0
        #: True if the field was computed by a child process.
        self.in_background = False

    @classmethod
    def start(cls, coil: Coil, pose: np.ndarray, points_mm: np.ndarray, didt: float, *, method: str = "auto",
              eps: float = 1e-3, background: bool | None = None) -> "PrimaryFieldJob":
        """Prepare the computation; ``background=None`` decides by :func:`background_worthwhile`.

        A background child starts at once (loading its modules and the points) but computes
        only after :meth:`release` (called by :meth:`result` at the latest) when this process's
        parallel loops use every core, so the single-threaded FMM does not make them wait; on
        a machine with a spare core it computes right away.
        """
        check_pose(pose)  # bad poses fail here, in the caller, not in the child
        pts = np.ascontiguousarray(points_mm, dtype=np.float64).reshape(-1, 3)
        job = cls(coil, pose, pts, didt, method, eps)
        if background is None:
            background = background_worthwhile(coil, len(pts), method)
        if background:
            job._launch()
            if cpu_cores() > compute_threads():
                job.release()
        return job

    def _launch(self) -> None:
        def write_inputs(d: Path) -> None:
            with open(d / "job.pkl", "wb") as fh:
                pickle.dump({"coil": self.coil, "pose": self.pose, "didt": self.didt, "method": self.method,
                             "eps": self.eps}, fh, protocol=pickle.HIGHEST_PROTOCOL)
            np.save(d / "points.npy", self.points)

        try:
            self._child = ChildProcess.start("navigator.tms.primary_job", write_inputs,
                                             prefix="navigator-primary-", hold=True)
        except Exception as exc:  # no process: compute in-process later
            log.warning("primary field: could not start a background process (%s); computing in-process", exc)
            self._child = None

    def release(self) -> None:
        """Let the background child compute now (no-op in-process or when already released)."""
        if self._child is not None:
            self._child.release()

    def result(self, progress: Progress | None = None) -> np.ndarray:
        """(N, 3) dA/dt in V/m, world axes; waits for the child (cancellable through ``progress``)."""
        progress = ensure_progress(progress)
        try:
            if self._child is not None:
                self.release()
                progress.update(0.0, "primary field (background)")
                self._child.wait(progress)
                out = self._collect()
                if out is not None:
                    progress.update(1.0, "primary field")
                    return out
            t0 = time.perf_counter()
            out = primary_field(self.coil, self.pose, self.points, self.didt, method=self.method, eps=self.eps,
                                progress=progress)
            self.seconds = time.perf_counter() - t0
            return out
        finally:
            self.close()

    def _collect(self) -> np.ndarray | None:
        assert self._child is not None
        d = self._child.folder
        try:
            failure = self._child.failure()
            if failure is not None:
                raise RuntimeError(failure)
            out = np.load(d / "field.npy")
            if out.shape != self.points.shape or not np.isfinite(out).all():
                raise RuntimeError(f"child returned an array of shape {out.shape} (or non-finite values)")
            self.seconds = float((d / "seconds.txt").read_text())
            self.in_background = True
            return out
        except Exception as exc:
            log.warning("primary field: background process failed (%s); computing in-process", exc)
            return None

    def close(self) -> None:
        """Stop the child (if still running) and delete its files."""
        if self._child is not None:
            self._child.close()
        self._child = None


def _main(job_dir: Path) -> None:
    parent = os.getppid()
    if not wait_for_go_ahead():  # end of file without go-ahead: the parent went away
        shutil.rmtree(job_dir, ignore_errors=True)
        return
    with open(job_dir / "job.pkl", "rb") as fh:  # written by our own parent process, private folder
        job = pickle.load(fh)
    pts = np.load(job_dir / "points.npy")
    t0 = time.perf_counter()
    out = primary_field(job["coil"], job["pose"], pts, job["didt"], method=job["method"], eps=job["eps"])
    seconds = time.perf_counter() - t0
    if os.getppid() != parent:  # orphaned (the parent was killed): leave nothing behind
        shutil.rmtree(job_dir, ignore_errors=True)
        return
    save_output(job_dir / "field.npy", out)
    (job_dir / "seconds.txt").write_text(f"{seconds:.6f}")


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
