"""Smoothed-aggregation AMG hierarchy for the scalar P1 conduction matrix, kept in CSR.

Built from pyamg's parts (strength of connection, standard aggregation, tentative prolongator,
Jacobi prolongation smoothing, Gauss-Seidel relaxation) with three choices measured on head
meshes (``docs/performance.md``):

* every level stays in CSR: pyamg's generic solver stores scalar problems as 1x1-block BSR,
  whose Gauss-Seidel sweeps and products are 1.5-2.5x slower than the CSR kernels;
* the prolongator is smoothed with Gershgorin ("local") weights instead of a global spectral
  radius estimate (a Python-level Arnoldi iteration that took a third of the setup);
* the constant vector is the near-null space as is (it is exact for a conduction matrix, so
  the candidate-improvement sweeps are skipped), and weak couplings below ``theta`` = 0.02 of
  the geometric-mean diagonal are dropped, which halved CG iterations on head meshes with
  skull/CSF conductivity contrasts.

The V-cycle uses one forward Gauss-Seidel sweep before and one backward sweep after the
coarse-grid correction, so the preconditioner is symmetric (as conjugate gradients need).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

#: Strength-of-connection threshold (symmetric measure |a_ij| >= theta sqrt(a_ii a_jj)).
DEFAULT_THETA = 0.02
#: Stop coarsening below this many unknowns (the coarsest level is factorized).
MAX_COARSE = 300
MAX_LEVELS = 12


def sa_hierarchy(A: sp.spmatrix, *, theta: float = DEFAULT_THETA, max_coarse: int = MAX_COARSE,
                 max_levels: int = MAX_LEVELS):
    """pyamg ``MultilevelSolver`` for the SPD matrix ``A`` with CSR levels (see module doc)."""
    from pyamg.aggregation import fit_candidates, standard_aggregation
    from pyamg.aggregation.smooth import jacobi_prolongation_smoother
    from pyamg.multilevel import MultilevelSolver
    from pyamg.relaxation.smoothing import change_smoothers
    from pyamg.strength import symmetric_strength_of_connection

    A = sp.csr_matrix(A)
    A.sort_indices()
    B = np.ones((A.shape[0], 1))
    levels = []
    while A.shape[0] > max_coarse and len(levels) < max_levels - 1:
        C = symmetric_strength_of_connection(A, theta)
        agg, _cpts = standard_aggregation(C)
        if agg.shape[1] >= A.shape[0] or agg.shape[1] == 0:  # no coarsening possible
            break
        T, B_coarse = fit_candidates(agg, B)
        P = jacobi_prolongation_smoother(A, T, C, B, weighting="local")
        P = sp.csr_matrix(P)
        R = sp.csr_matrix(P.T)
        lvl = MultilevelSolver.Level()
        lvl.A, lvl.P, lvl.R, lvl.B = A, P, R, B
        levels.append(lvl)
        A = sp.csr_matrix(R @ (A @ P))
        A.sort_indices()
        B = B_coarse
    last = MultilevelSolver.Level()
    last.A, last.B = A, B
    levels.append(last)
    ml = MultilevelSolver(levels, coarse_solver="splu")
    change_smoothers(ml, presmoother=("gauss_seidel", {"sweep": "forward"}),
                     postsmoother=("gauss_seidel", {"sweep": "backward"}))
    return ml
