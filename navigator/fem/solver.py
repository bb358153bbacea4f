"""Sparse SPD linear solvers with a reusable preconditioner or factorization.

``amg`` (default): conjugate gradients preconditioned by one V-cycle of smoothed-aggregation
AMG (:mod:`navigator.fem.amg`, built from pyamg's parts with CSR levels). The hierarchy is
built once per matrix (on the first solve) and reused for every right-hand side.

``direct``: a sparse factorization, computed once and reused: PARDISO through ``pypardiso``
when it is installed, otherwise SciPy's SuperLU (``splu``). Only sensible for small meshes
or many right-hand sides (PARDISO needs ~9 GB and ~150 s to factor a 1 M-node head).

Convergence criterion: ||b - A x||_2 <= rtol * ||b||_2. :data:`DEFAULT_RTOL` is 1e-8; on the
three-sphere validation the field changes by < 1e-5 (relative L2) between rtol 1e-8 and
1e-12, three orders below the discretization error (see docs/tdcs.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from navigator.core.errors import NavigatorError

DEFAULT_RTOL = 1e-8
SOLVERS = ("amg", "direct")


def _single_blas_thread():
    """Context limiting BLAS to one thread: CG's vector operations are memory-bound, and
    multi-threaded OpenBLAS level-1 calls are 5-50x slower on a busy 2-core machine (measured)."""
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn/scipy stacks
        import contextlib

        return contextlib.nullcontext()


@dataclass
class LinearSolveInfo:
    """Outcome of one solve: iterations (0 for direct), relative residual, wall seconds."""

    iterations: int
    residual: float
    seconds: float


class SpdSolver:
    """Solve A x = b for one symmetric positive-definite sparse matrix, many right-hand sides.

    Attributes:
        setup_seconds: time spent building the AMG hierarchy / factorization (0 until first solve).
    """

    def __init__(self, A: sp.spmatrix, method: str = "amg", maxiter: int = 2000):
        if method not in SOLVERS:
            raise NavigatorError(f"unknown solver {method!r}; choose one of {', '.join(SOLVERS)}")
        self.A = sp.csr_matrix(A)
        self.method = method
        self.maxiter = maxiter
        self.setup_seconds = 0.0
        self.backend = ""
        self._ml = None
        self._M = None
        self._direct = None

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Build the preconditioner / factorization now (otherwise done on the first solve)."""
        if self._M is not None or self._direct is not None:
            return
        t0 = time.perf_counter()
        if self.method == "amg":
            from navigator.fem.amg import sa_hierarchy

            with _single_blas_thread():
                self._ml = sa_hierarchy(self.A)
            self._M = self._ml.aspreconditioner(cycle="V")
            self.backend = "sa-amg+cg"
        else:
            try:
                import pypardiso

                solver = pypardiso.PyPardisoSolver()
                solver.set_matrix_type(2)  # real symmetric positive definite
                Au = sp.triu(self.A, format="csr")
                solver.factorize(Au)
                self._direct = ("pardiso", solver, Au)
                self.backend = "pardiso"
            except ImportError:
                lu = spla.splu(self.A.tocsc(), permc_spec="MMD_AT_PLUS_A")
                self._direct = ("splu", lu, None)
                self.backend = "superlu"
        self.setup_seconds = time.perf_counter() - t0

    # ------------------------------------------------------------------ solve
    def solve(self, b: np.ndarray, rtol: float = DEFAULT_RTOL, x0: np.ndarray | None = None) -> tuple[np.ndarray, LinearSolveInfo]:
        """Solve A x = b; returns (x, info). Raises NavigatorError if CG does not converge."""
        self.setup()
        b = np.asarray(b, dtype=np.float64)
        t0 = time.perf_counter()
        bnorm = float(np.linalg.norm(b))
        if bnorm == 0.0:
            return np.zeros_like(b), LinearSolveInfo(0, 0.0, 0.0)
        if self._direct is not None:
            kind, obj, Au = self._direct
            x = obj.solve(Au, b) if kind == "pardiso" else obj.solve(b)
            iters = 0
        else:
            count = [0]

            def cb(_xk):
                count[0] += 1

            with _single_blas_thread():
                x, info = spla.cg(self.A, b, x0=x0, rtol=rtol, atol=0.0, maxiter=self.maxiter, M=self._M,
                                  callback=cb)
            iters = count[0]
            if info > 0:
                res = float(np.linalg.norm(b - self.A @ x)) / bnorm
                raise NavigatorError(
                    f"FEM solver did not converge in {iters} iterations (relative residual {res:.2e}); "
                    "check the mesh quality and conductivities"
                )
        res = float(np.linalg.norm(b - self.A @ x)) / bnorm
        return x, LinearSolveInfo(iters, res, time.perf_counter() - t0)
