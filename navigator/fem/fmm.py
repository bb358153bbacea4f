"""The Laplace FMM of ``fmm3dpy`` for many densities at once, on two cores.

Why: ``fmm3dpy.lfmm3d`` runs on one core and holds Python's GIL for its whole duration, and
its cost is dominated by the work on the source side, which grows with the number of
densities ``nd`` and hardly with the number of targets (300 k sources, nd = 9: about the same
time for 110 k or 440 k targets; nd = 5 takes less than half of nd = 9). A problem with several
densities (the reciprocal TMS search has nine: three functionals x three current components)
is therefore split by density: the second half runs in a child process beside the first, each
FMM on its own core, and the halves are stacked (the same numbers as one call, up to the FMM's
own tolerance per density).

Protocol (:mod:`navigator.fem.child_process`, shared with :mod:`navigator.tms.primary_job`): the
parent writes ``sources.npy``, ``charges.npy``, ``targets.npy`` and ``job.json`` into a private
temporary folder (in /dev/shm when it has room), runs ``python -m navigator.fem.fmm DIR`` and,
after its own half, reads ``grad.npy``/``pot.npy``. A child that fails or cannot be started is
never fatal: its half is then computed in this process.

Used only when it can help: ``nd >= 2``, at least :data:`MIN_SPLIT_POINTS` sources + targets,
two CPU cores available to this process and ``NAVIGATOR_FMM_PROCESS`` not set to ``0``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from navigator.core.progress import Progress, ensure_progress
from navigator.fem.child_process import ChildProcess, save_output, shared_memory_dir

log = logging.getLogger(__name__)

#: Fewer sources + targets than this: one call in this process (a child's start-up, ~0.5 s, would not pay off).
MIN_SPLIT_POINTS = 100_000
#: Environment switch: "0" keeps every FMM in this process.
ENV_SWITCH = "NAVIGATOR_FMM_PROCESS"


def cpu_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def compute_threads() -> int:
    """Threads this process's compiled (numba) loops use."""
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:  # numba missing: assume one thread per core
        return cpu_cores()


def available_cores() -> int:
    """Cores that parallel work of this process can use (affinity and numba's thread count)."""
    return min(cpu_cores(), compute_threads())


def _lfmm3d(sources: np.ndarray, charges: np.ndarray, targets: np.ndarray, eps: float, pgt: int):
    import fmm3dpy

    nd = charges.shape[0]
    q = np.ascontiguousarray(charges[0] if nd == 1 else charges)  # fmm3dpy wants (S,) for one density
    res = fmm3dpy.lfmm3d(eps=eps, sources=np.ascontiguousarray(sources.T), charges=q,
                         targets=np.ascontiguousarray(targets.T), pgt=pgt, nd=nd)
    pot = np.asarray(res.pottarg).reshape(nd, -1)
    grad = np.asarray(res.gradtarg).reshape(nd, 3, -1) if pgt >= 2 else None
    return pot, grad


def split_worthwhile(nd: int, n_sources: int, n_targets: int) -> bool:
    """True if splitting this FMM by density over two processes is expected to save time."""
    if os.environ.get(ENV_SWITCH, "1").strip() == "0":
        return False
    return nd >= 2 and n_sources + n_targets >= MIN_SPLIT_POINTS and available_cores() >= 2


def laplace_fmm(sources: np.ndarray, charges: np.ndarray, targets: np.ndarray, *, eps: float = 1e-3, pgt: int = 2,
                split: bool | None = None, progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Potentials and gradients at ``targets`` of charges at ``sources`` (kernel 1/(4 pi r)).

    Args:
        sources: (S, 3) source points; targets: (T, 3) points (any length unit, the same for both).
        charges: (nd, S) densities.
        eps: the FMM's relative tolerance. pgt: 1 potentials, 2 potentials and gradients.
        split: density split over two processes (None: :func:`split_worthwhile` decides).
    Returns:
        pot (nd, T) and grad (nd, 3, T) (None when ``pgt`` is 1).
    """
    progress = ensure_progress(progress)
    sources = np.ascontiguousarray(sources, np.float64).reshape(-1, 3)
    targets = np.ascontiguousarray(targets, np.float64).reshape(-1, 3)
    charges = np.ascontiguousarray(np.atleast_2d(charges), np.float64)
    nd = charges.shape[0]
    if split is None:
        split = split_worthwhile(nd, len(sources), len(targets))
    if not split or nd < 2:
        return _lfmm3d(sources, charges, targets, eps, pgt)
    half = (nd + 1) // 2
    child = _ChildFmm.start(sources, charges[half:], targets, eps, pgt)
    try:
        pot0, grad0 = _lfmm3d(sources, charges[:half], targets, eps, pgt)
        progress.check()
    except BaseException:  # this half failed or the user cancelled: stop the child, remove its files
        if child is not None:
            child.discard()
        raise
    got = child.result(progress) if child is not None else None
    if got is None:  # no child or it failed: the second half here
        got = _lfmm3d(sources, charges[half:], targets, eps, pgt)
    pot1, grad1 = got
    pot = np.concatenate([pot0, pot1])
    grad = None if grad0 is None else np.concatenate([grad0, grad1])
    return pot, grad


class _ChildFmm:
    """One FMM in a child process (see the module docstring): its input and output arrays."""

    def __init__(self, child: ChildProcess, pgt: int):
        self.child, self.pgt = child, pgt

    @classmethod
    def start(cls, sources: np.ndarray, charges: np.ndarray, targets: np.ndarray, eps: float,
              pgt: int) -> "_ChildFmm | None":
        """Write the inputs and start the child; None (logged) when it cannot be started."""
        # bytes of the input and output arrays (float64); /dev/shm only with room for twice that
        need = 8 * (sources.size + charges.size + targets.size + charges.shape[0] * (4 if pgt >= 2 else 1) * len(targets))

        def write_inputs(d: Path) -> None:
            np.save(d / "sources.npy", sources)
            np.save(d / "charges.npy", charges)
            np.save(d / "targets.npy", targets)
            (d / "job.json").write_text(json.dumps({"eps": float(eps), "pgt": int(pgt)}))

        try:
            child = ChildProcess.start("navigator.fem.fmm", write_inputs, prefix="navigator-fmm-",
                                       parent_dir=shared_memory_dir(2 * need))
        except Exception as exc:
            log.warning("FMM: could not start a child process (%s); computing in this process", exc)
            return None
        return cls(child, pgt)

    def discard(self) -> None:
        """Stop the child (if still running) and remove its folder."""
        self.child.close()

    def result(self, progress: Progress) -> tuple[np.ndarray, np.ndarray | None] | None:
        """(pot, grad) of the child, or None when it failed (logged); removes the folder."""
        try:
            self.child.wait(progress)  # a cancel kills the child
            failure = self.child.failure()
            if failure is not None:
                log.warning("FMM child process failed (%s); computing its half here", failure)
                return None
            pot = np.load(self.child.folder / "pot.npy")
            grad = np.load(self.child.folder / "grad.npy") if self.pgt >= 2 else None
            return pot, grad
        except OSError as exc:
            log.warning("FMM child process: could not read its result (%s); computing its half here", exc)
            return None
        finally:
            self.discard()


def _child_main(folder: str) -> int:
    d = Path(folder)
    job = json.loads((d / "job.json").read_text())
    pot, grad = _lfmm3d(np.load(d / "sources.npy"), np.load(d / "charges.npy"), np.load(d / "targets.npy"),
                        float(job["eps"]), int(job["pgt"]))
    if grad is not None:
        save_output(d / "grad.npy", grad)
    save_output(d / "pot.npy", pot)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1]))
