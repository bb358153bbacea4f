"""P1 (linear tetrahedral) finite-element assembly in SI units.

The loops run compiled and in parallel (:mod:`navigator.fem.kernels`); the functions here take
and return numpy/SciPy arrays.

Node coordinates come in millimetres and are converted to metres here, so gradients are in
1/m, volumes in m^3 and the stiffness matrix K_ij = sum_e sigma_e vol_e grad(phi_i).grad(phi_j)
in S (siemens). A potential v (V) then gives E = -grad v in V/m and K v in A (nodal currents).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from navigator.core.errors import NavigatorError
from navigator.fem import kernels

MM = 1e-3  # metres per millimetre


@dataclass(frozen=True)
class NodeAdjacency:
    """Elements around each node (CSR form): the elements of node i are elems[start[i]:start[i+1]].

    Built once per mesh and reused by the stiffness matrix and the divergence loads.
    """

    start: np.ndarray
    elems: np.ndarray

    @classmethod
    def of(cls, tets: np.ndarray, n_nodes: int) -> "NodeAdjacency":
        start, elems = kernels.node_elements(_as_index(tets), int(n_nodes))
        return cls(start, elems)


def _as_index(tets: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(tets, dtype=np.int64)


def p1_gradients(nodes_mm: np.ndarray, tets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the four P1 shape functions of every tetrahedron and the volumes.

    Args:
        nodes_mm: (N, 3) node coordinates, mm.
        tets: (M, 4) node indices.

    Returns:
        grads: (M, 4, 3) float64, 1/m; grads[e, a] = grad phi_a on element e.
        volumes: (M,) float64, m^3 (absolute value; inverted tets are accepted, degenerate are not).
    """
    t = _as_index(tets)
    nodes_m = np.ascontiguousarray(nodes_mm, dtype=np.float64) * MM
    grads = np.empty((len(t), 4, 3))
    det = np.empty(len(t))
    kernels.p1_gradients_kernel(nodes_m, t, grads, det)
    bad = np.abs(det) < 1e-30
    if bad.any():
        raise NavigatorError(f"mesh has {int(np.count_nonzero(bad))} degenerate (zero-volume) tetrahedra")
    return grads, np.abs(det) / 6.0


def stiffness_matrix(
    tets: np.ndarray, grads: np.ndarray, volumes: np.ndarray, sigma: np.ndarray, n_nodes: int,
    adjacency: NodeAdjacency | None = None,
) -> sp.csr_matrix:
    """Assemble K_ij = sum_e sigma_e vol_e grad phi_i . grad phi_j (S), CSR, symmetric.

    The matrix has sorted column indices and no duplicates. Row i is filled from the elements
    around node i (``adjacency``, built here when not given), rows in parallel.

    Args:
        tets: (M, 4) node indices; grads: (M, 4, 3) 1/m; volumes: (M,) m^3; sigma: (M,) S/m.
    """
    t = _as_index(tets)
    adj = adjacency if adjacency is not None else NodeAdjacency.of(t, n_nodes)
    indptr, indices = kernels.csr_pattern(t, adj.start, adj.elems, int(n_nodes))
    w = np.ascontiguousarray(np.asarray(sigma, np.float64) * volumes)
    data = kernels.stiffness_values(t, np.ascontiguousarray(grads), w, adj.start, adj.elems, indptr, indices)
    if len(indices) < 2**31 - 1:
        indptr = indptr.astype(np.int32)
    else:  # pragma: no cover - > 2**31 non-zeros is far beyond a head model
        indices = indices.astype(np.int64)
    K = sp.csr_matrix((data, indices, indptr), shape=(n_nodes, n_nodes))
    K.has_sorted_indices = True
    K.eliminate_zeros()  # exact zeros (orthogonal gradients, e.g. on structured grids) cost SpMV time
    return K


def gradient_per_tet(tets: np.ndarray, grads: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(M, 3) gradient of the P1 field ``v`` (node values) on each tetrahedron, units of v per metre."""
    return kernels.gradient_kernel(_as_index(tets), np.ascontiguousarray(grads),
                                   np.ascontiguousarray(v, dtype=np.float64))


def load_vector_divergence(
    tets: np.ndarray, grads: np.ndarray, volumes: np.ndarray, flux_per_tet: np.ndarray, n_nodes: int,
    adjacency: NodeAdjacency | None = None,
) -> np.ndarray:
    """b_i = sum_e vol_e flux_e . grad phi_i  (flux piecewise constant per tet), shape (N,).

    With flux = sigma D (A/m^2) this is the nodal current (A) of the impressed current density.
    """
    t = _as_index(tets)
    adj = adjacency if adjacency is not None else NodeAdjacency.of(t, n_nodes)
    flux = np.ascontiguousarray(np.asarray(flux_per_tet, np.float64).reshape(-1, 3))
    return kernels.divergence_load(t, np.ascontiguousarray(grads), np.ascontiguousarray(volumes, np.float64),
                                   flux, adj.start, adj.elems)


def triangle_mass(nodes_mm: np.ndarray, tris: np.ndarray, weight: np.ndarray, n_nodes: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Boundary P1 mass matrix and load vector with a per-triangle weight.

    Returns:
        M: (N, N) CSR, M_ij = sum_t w_t int_t phi_i phi_j dS (units of w times m^2).
        b: (N,) b_i = sum_t w_t int_t phi_i dS.
        areas: (K,) triangle areas in m^2.
    """
    p = nodes_mm[tris] * MM
    areas = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    wa = weight * areas
    loc = np.array([[2, 1, 1], [1, 2, 1], [1, 1, 2]], dtype=np.float64) / 12.0
    vals = wa[:, None, None] * loc[None]
    rows = np.repeat(tris, 3, axis=1).ravel()
    cols = np.tile(tris, (1, 3)).ravel()
    M = sp.coo_matrix((vals.ravel(), (rows, cols)), shape=(n_nodes, n_nodes)).tocsr()
    b = np.bincount(tris.ravel(), weights=np.repeat(wa / 3.0, 3), minlength=n_nodes)
    return M, b, areas


def spatial_node_order(nodes_mm: np.ndarray) -> np.ndarray:
    """Node order along a Z-order (Morton) curve: ``order[i]`` is the original index of the
    i-th node. Meshers number nodes in no particular order; renumbering neighbours close
    together made assembly, AMG setup and CG 2-3x faster on a CGAL head mesh."""
    x = np.ascontiguousarray(nodes_mm, dtype=np.float64)
    lo = x.min(axis=0)
    span = float(np.ptp(x, axis=0).max()) or 1.0
    return np.argsort(kernels.morton_keys(x, lo, 1048575.0 / span), kind="stable")


def element_order(tets: np.ndarray, n_nodes: int) -> np.ndarray:
    """Element order by smallest node index, so that the elements around a node are close in memory."""
    return kernels.order_by_min_node(_as_index(tets), int(n_nodes))
