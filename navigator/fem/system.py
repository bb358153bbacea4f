"""The assembled FEM system of a head mesh, reusable across many right-hand sides.

Problem: div(sigma grad v) = f in the head, sigma grad v . n = g on its boundary (Neumann),
discretized with P1 tetrahedra and piecewise-constant sigma. Units: nodes in mm are converted
to m, so ``v`` is in V, right-hand sides are nodal currents in A, ``gradient`` is in V/m.

Null space: the pure Neumann matrix K is singular (constants). :class:`FemSystem` grounds one
node (``ground_node``: its row and column are replaced by the identity and its right-hand side
by 0), which makes the matrix SPD; any net current in the right-hand side leaves through the
ground node, so right-hand sides should sum to zero (they do for electrode pairs and for
:meth:`FemSystem.rhs_impressed_field`). After the solve the mean nodal potential is removed,
so the returned potential has zero mean. When ``boundary_matrix`` is given (a Robin /
contact-impedance term, as the electrode model adds) the matrix K + boundary_matrix is SPD
already and nothing is grounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress
from navigator.fem.assembly import (NodeAdjacency, element_order, gradient_per_tet, load_vector_divergence,
                                    p1_gradients, spatial_node_order, stiffness_matrix)
from navigator.fem.solver import DEFAULT_RTOL, SpdSolver


@dataclass
class SolveResult:
    """One solution: v (N,) node potentials in V, CG iterations, final relative residual, seconds."""

    v: np.ndarray
    iterations: int
    residual: float
    seconds: float


class FemSystem:
    """Stiffness matrix, element gradients and a reusable solver for one mesh and conductivity.

    Internally the nodes are renumbered along a space-filling curve and the elements sorted by
    their smallest node (:func:`navigator.fem.assembly.spatial_node_order`), so that neighbours
    are close in memory; every public array and method uses the mesh's own numbering.

    Args:
        mesh: tetrahedral mesh (nodes in mm).
        sigma_per_tet: (M,) conductivity in S/m (see :func:`navigator.fem.conductivity.conductivity_per_tet`).
        progress: optional progress sink (assembly is reported as one step).
        solver: "amg" (default; PCG + smoothed-aggregation AMG) or "direct".
        boundary_matrix: optional (N, N) SPD-making boundary term added to K (S), mesh numbering.

    Attributes:
        K: (N, N) CSR stiffness matrix in S (the pure Neumann operator, never grounded).
        grads: (M, 4, 3) shape-function gradients, 1/m. volumes: (M,) m^3. sigma: (M,) S/m.
        timings: seconds per stage ("assembly", "solver_setup").
    """

    def __init__(
        self,
        mesh: Mesh,
        sigma_per_tet: np.ndarray,
        progress: Progress | None = None,
        *,
        solver: str = "amg",
        boundary_matrix: sp.spmatrix | None = None,
    ):
        progress = ensure_progress(progress)
        sigma = np.asarray(sigma_per_tet, dtype=np.float64).reshape(-1)
        if mesh.n_tets == 0:
            raise NavigatorError("mesh has no tetrahedra")
        if len(sigma) != mesh.n_tets:
            raise ValueError(f"sigma has {len(sigma)} values for {mesh.n_tets} tetrahedra")
        self.mesh = mesh
        self.sigma = sigma
        self.n_nodes = n = mesh.n_nodes
        self.timings: dict[str, float] = {}
        progress.update(0.0, "assembling stiffness matrix")
        t0 = time.perf_counter()
        self.tets = np.ascontiguousarray(mesh.tetrahedra, dtype=np.int64)
        # local numbering: node_order[i] = mesh node of local node i; elements by smallest node
        self._node_order = spatial_node_order(mesh.nodes)
        self._node_rank = np.empty(n, np.int64)
        self._node_rank[self._node_order] = np.arange(n)
        loc = self._node_rank[self.tets]
        self._elem_order = element_order(loc, n)
        self._loc_tets = np.ascontiguousarray(loc[self._elem_order])
        del loc
        self._loc_grads, self._loc_volumes = p1_gradients(np.asarray(mesh.nodes)[self._node_order], self._loc_tets)
        self.volumes = np.empty(mesh.n_tets)
        self.volumes[self._elem_order] = self._loc_volumes
        self._loc_adjacency = NodeAdjacency.of(self._loc_tets, n)
        self._K_loc = stiffness_matrix(self._loc_tets, self._loc_grads, self._loc_volumes, sigma[self._elem_order],
                                       n, self._loc_adjacency)
        self.timings["assembly"] = time.perf_counter() - t0
        self._K: sp.csr_matrix | None = None
        self._grads: np.ndarray | None = None
        self._loc_sigma_volume: np.ndarray | None = None
        if boundary_matrix is None:
            unused = np.diff(self._loc_adjacency.start) == 0
            if unused.any():
                raise NavigatorError(f"mesh has {int(unused.sum())} nodes that belong to no tetrahedron")
            self.ground_node: int | None = int(np.argmax(mesh.nodes[:, 2]))  # arbitrary, documented
            A = _ground(self._K_loc, int(self._node_rank[self.ground_node]))
        else:
            self.ground_node = None
            G = sp.coo_matrix(boundary_matrix)
            G_loc = sp.csr_matrix((G.data, (self._node_rank[G.row], self._node_rank[G.col])), shape=(n, n))
            A = (self._K_loc + G_loc).tocsr()
        self.solver = SpdSolver(A, method=solver)
        progress.update(1.0, "assembled")

    # ------------------------------------------------------------------ numbering
    @property
    def K(self) -> sp.csr_matrix:
        """(N, N) stiffness matrix in S in the mesh's numbering (built on first use)."""
        if self._K is None:
            K = self._K_loc[self._node_rank][:, self._node_rank].tocsr()
            K.sort_indices()
            self._K = K
        return self._K

    @property
    def grads(self) -> np.ndarray:
        """(M, 4, 3) shape-function gradients (1/m) in the mesh's element order (built on first use)."""
        if self._grads is None:
            g = np.empty_like(self._loc_grads)
            g[self._elem_order] = self._loc_grads
            self._grads = g
        return self._grads

    def _to_local(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1)[self._node_order])

    def _to_mesh(self, x_loc: np.ndarray) -> np.ndarray:
        return x_loc[self._node_rank]

    # ------------------------------------------------------------------ solving
    def setup(self) -> None:
        """Build the AMG hierarchy / factorization now (else on the first solve)."""
        t0 = time.perf_counter()
        self.solver.setup()
        self.timings.setdefault("solver_setup", time.perf_counter() - t0)

    def solve(self, rhs: np.ndarray, *, rtol: float = DEFAULT_RTOL, x0: np.ndarray | None = None) -> SolveResult:
        """Solve (K [+ boundary]) v = rhs for nodal currents ``rhs`` (A); returns v in V."""
        self.setup()
        b = np.asarray(rhs, dtype=np.float64).reshape(-1)
        if len(b) != self.n_nodes:
            raise ValueError(f"rhs has {len(b)} entries for {self.n_nodes} nodes")
        b = self._to_local(b)
        x0_loc = None if x0 is None else self._to_local(x0)
        if self.ground_node is not None:
            g = int(self._node_rank[self.ground_node])
            b[g] = 0.0
            if x0_loc is not None:
                x0_loc -= x0_loc[g]
        v_loc, info = self.solver.solve(b, rtol=rtol, x0=x0_loc)
        v = self._to_mesh(v_loc)
        if self.ground_node is not None:
            v = v - v.mean()
        return SolveResult(v, info.iterations, info.residual, info.seconds)

    def solve_many(self, rhs_matrix: np.ndarray, *, rtol: float = DEFAULT_RTOL) -> list[SolveResult]:
        """Solve for each column of an (N, k) right-hand-side matrix, reusing the preconditioner."""
        R = np.asarray(rhs_matrix, dtype=np.float64)
        if R.ndim == 1:
            R = R[:, None]
        return [self.solve(R[:, j], rtol=rtol) for j in range(R.shape[1])]

    # ------------------------------------------------------------------ fields
    def gradient(self, v: np.ndarray) -> np.ndarray:
        """(M, 3) grad v per tetrahedron in V/m (E = -gradient for tDCS)."""
        g_loc = gradient_per_tet(self._loc_tets, self._loc_grads, self._to_local(v))
        out = np.empty_like(g_loc)
        out[self._elem_order] = g_loc
        return out

    def rhs_divergence(self, flux_per_tet: np.ndarray) -> np.ndarray:
        """b_i = sum_e vol_e flux_e . grad phi_i (N,) for a piecewise-constant flux (M, 3).

        With flux = sigma D (A/m^2) this is the nodal current (A) of that current density.
        """
        flux = np.asarray(flux_per_tet, dtype=np.float64).reshape(-1, 3)[self._elem_order]
        b_loc = load_vector_divergence(self._loc_tets, self._loc_grads, self._loc_volumes, flux, self.n_nodes,
                                       self._loc_adjacency)
        return self._to_mesh(b_loc)

    def rhs_impressed_field(self, D_per_tet: np.ndarray) -> np.ndarray:
        """Right-hand side for an impressed field D (V/m per tet), e.g. D = dA/dt for TMS.

        Solves div(sigma (grad v + D)) = 0 with sigma (grad v + D) . n = 0 on the boundary;
        the weak form gives K v = rhs with rhs_i = -int sigma D . grad phi_i dV (A). The total
        field is then E = -grad v - D.
        """
        D = np.asarray(D_per_tet, dtype=np.float64).reshape(-1, 3)
        return -self.rhs_divergence(self.sigma[:, None] * D)

    def rhs_impressed_nodal_field(self, d_nodes: np.ndarray) -> np.ndarray:
        """:meth:`rhs_impressed_field` for an impressed field given at the nodes, (N, 3) V/m:
        each element's D is the mean of its four nodal values (the element means are never
        formed; same result as ``rhs_impressed_field(element_mean(tets, d_nodes))``)."""
        from navigator.fem.kernels import nodal_divergence_load

        d = np.asarray(d_nodes, dtype=np.float64).reshape(-1, 3)
        if len(d) != self.n_nodes:
            raise ValueError(f"d_nodes has {len(d)} rows for {self.n_nodes} nodes")
        if self._loc_sigma_volume is None:
            self._loc_sigma_volume = self.sigma[self._elem_order] * self._loc_volumes
        b_loc = nodal_divergence_load(self._loc_tets, self._loc_grads, self._loc_sigma_volume,
                                      np.ascontiguousarray(d[self._node_order]), self._loc_adjacency.start,
                                      self._loc_adjacency.elems)
        return -self._to_mesh(b_loc)

    def nodal_current(self, v: np.ndarray) -> np.ndarray:
        """K v (A): the net current injected into the tissue at each node (boundary sources)."""
        return self._to_mesh(self._K_loc @ self._to_local(v))


def _ground(K: sp.csr_matrix, node: int) -> sp.csr_matrix:
    """K with row and column ``node`` replaced by the identity (on a copy; pattern kept sorted)."""
    A = K.copy()
    lo, hi = A.indptr[node], A.indptr[node + 1]
    A.data[lo:hi] = 0.0
    A.data[A.indices == node] = 0.0
    A.data[lo + int(np.searchsorted(A.indices[lo:hi], node))] = 1.0
    A.eliminate_zeros()
    return A
