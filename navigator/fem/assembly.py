"""Vectorized P1 (linear tetrahedral) finite-element assembly in SI units.

Node coordinates come in millimetres and are converted to metres here, so gradients are in
1/m, volumes in m^3 and the stiffness matrix K_ij = sum_e sigma_e vol_e grad(phi_i).grad(phi_j)
in S (siemens). A potential v (V) then gives E = -grad v in V/m and K v in A (nodal currents).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from navigator.core.errors import NavigatorError

MM = 1e-3  # metres per millimetre


def p1_gradients(nodes_mm: np.ndarray, tets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the four P1 shape functions of every tetrahedron and the volumes.

    Args:
        nodes_mm: (N, 3) node coordinates, mm.
        tets: (M, 4) node indices.

    Returns:
        grads: (M, 4, 3) float64, 1/m; grads[e, a] = grad phi_a on element e.
        volumes: (M,) float64, m^3 (absolute value; inverted tets are accepted, degenerate are not).
    """
    p0 = nodes_mm[tets[:, 0]] * MM
    e1 = nodes_mm[tets[:, 1]] * MM - p0
    e2 = nodes_mm[tets[:, 2]] * MM - p0
    e3 = nodes_mm[tets[:, 3]] * MM - p0
    c1 = np.cross(e2, e3)  # columns of inv([e1; e2; e3]) times det
    det = np.einsum("ij,ij->i", e1, c1)
    if np.any(np.abs(det) < 1e-30):
        bad = int(np.count_nonzero(np.abs(det) < 1e-30))
        raise NavigatorError(f"mesh has {bad} degenerate (zero-volume) tetrahedra")
    grads = np.empty((len(tets), 4, 3))
    grads[:, 1] = c1 / det[:, None]
    grads[:, 2] = np.cross(e3, e1) / det[:, None]
    grads[:, 3] = np.cross(e1, e2) / det[:, None]
    grads[:, 0] = -(grads[:, 1] + grads[:, 2] + grads[:, 3])
    return grads, np.abs(det) / 6.0


def stiffness_matrix(
    tets: np.ndarray, grads: np.ndarray, volumes: np.ndarray, sigma: np.ndarray, n_nodes: int
) -> sp.csr_matrix:
    """Assemble K_ij = sum_e sigma_e vol_e grad phi_i . grad phi_j (S), CSR, symmetric.

    Args:
        tets: (M, 4) node indices; grads: (M, 4, 3) 1/m; volumes: (M,) m^3; sigma: (M,) S/m.
    """
    w = sigma * volumes
    # sort each tet's nodes so that local pairs (a < b) are global pairs (i < j): only the
    # strictly upper triangle goes through COO -> CSR (6 instead of 16 entries per tet)
    order = np.argsort(tets, axis=1)
    st = np.take_along_axis(tets, order, axis=1)
    g = np.take_along_axis(grads, order[:, :, None], axis=1)
    gx, gy, gz = (np.ascontiguousarray(g[:, :, k].T) for k in range(3))  # (4, M) each
    itype = np.int32 if n_nodes < 2**31 - 1 else np.int64
    diag = np.zeros(n_nodes)
    rows, cols, vals = [], [], []
    for a in range(4):
        for b in range(a, 4):
            val = (gx[a] * gx[b] + gy[a] * gy[b] + gz[a] * gz[b]) * w
            if a == b:
                diag += np.bincount(st[:, a], weights=val, minlength=n_nodes)
            else:
                rows.append(st[:, a].astype(itype))
                cols.append(st[:, b].astype(itype))
                vals.append(val)
    U = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n_nodes, n_nodes)).tocsr()
    U.sum_duplicates()
    K = (U + U.T.tocsr() + sp.diags(diag, format="csr")).tocsr()
    K.sort_indices()
    return K


def gradient_per_tet(tets: np.ndarray, grads: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(M, 3) gradient of the P1 field ``v`` (node values) on each tetrahedron, units of v per metre."""
    vt = v[tets]
    return (grads[:, 0] * vt[:, 0, None] + grads[:, 1] * vt[:, 1, None]
            + grads[:, 2] * vt[:, 2, None] + grads[:, 3] * vt[:, 3, None])


def load_vector_divergence(
    tets: np.ndarray, grads: np.ndarray, volumes: np.ndarray, flux_per_tet: np.ndarray, n_nodes: int
) -> np.ndarray:
    """b_i = sum_e vol_e flux_e . grad phi_i  (flux piecewise constant per tet), shape (N,).

    With flux = sigma D (A/m^2) this is the nodal current (A) of the impressed current density.
    """
    contrib = (grads * flux_per_tet[:, None, :]).sum(axis=2) * volumes[:, None]
    return np.bincount(tets.ravel(), weights=contrib.ravel(), minlength=n_nodes)


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
