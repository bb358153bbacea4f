"""Compiled (numba) loops of the P1 assembly and field evaluation.

The numpy formulation of the assembly (COO triplets -> CSR with duplicate summation) moves
~35 M index pairs through sorts and temporaries at 1 M nodes and was the largest cost of a
simulation. These kernels build the CSR sparsity pattern once from the node -> element
adjacency and then fill each row independently (rows in parallel, no write conflicts), so the
stiffness matrix costs about one pass over the elements.

Units are whatever the caller passes (the callers in :mod:`navigator.fem.assembly` use metres,
1/m, m^3 and S/m). Indices are int64 on input; CSR indices are int32 (the type SciPy and pyamg
use for matrices below 2**31 non-zeros).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def tet_edges(nodes: np.ndarray, i0: int, i1: int, i2: int, i3: int
              ) -> tuple[float, float, float, float, float, float, float, float, float]:
    """Edge vectors a = x1 - x0, b = x2 - x0, c = x3 - x0 of the tet (i0, i1, i2, i3), as
    (ax, ay, az, bx, by, bz, cx, cy, cz) in the nodes' unit."""
    return (nodes[i1, 0] - nodes[i0, 0], nodes[i1, 1] - nodes[i0, 1], nodes[i1, 2] - nodes[i0, 2],
            nodes[i2, 0] - nodes[i0, 0], nodes[i2, 1] - nodes[i0, 1], nodes[i2, 2] - nodes[i0, 2],
            nodes[i3, 0] - nodes[i0, 0], nodes[i3, 1] - nodes[i0, 1], nodes[i3, 2] - nodes[i0, 2])


@nb.njit(cache=True, parallel=True)
def p1_gradients_kernel(nodes: np.ndarray, tets: np.ndarray, grads: np.ndarray, dets: np.ndarray) -> None:
    """Fill grads (M, 4, 3) with the shape-function gradients and dets (M,) with 6 x signed volume."""
    m = tets.shape[0]
    for e in nb.prange(m):
        i0, i1, i2, i3 = tets[e, 0], tets[e, 1], tets[e, 2], tets[e, 3]
        ax, ay, az, bx, by, bz, cx, cy, cz = tet_edges(nodes, i0, i1, i2, i3)
        # rows of inv([a; b; c]^T) = (b x c, c x a, a x b) / det
        g1x = by * cz - bz * cy
        g1y = bz * cx - bx * cz
        g1z = bx * cy - by * cx
        det = ax * g1x + ay * g1y + az * g1z
        dets[e] = det
        if det == 0.0:
            for a in range(4):
                for k in range(3):
                    grads[e, a, k] = 0.0
            continue
        inv = 1.0 / det
        g2x = (cy * az - cz * ay) * inv
        g2y = (cz * ax - cx * az) * inv
        g2z = (cx * ay - cy * ax) * inv
        g3x = (ay * bz - az * by) * inv
        g3y = (az * bx - ax * bz) * inv
        g3z = (ax * by - ay * bx) * inv
        g1x *= inv
        g1y *= inv
        g1z *= inv
        grads[e, 1, 0] = g1x
        grads[e, 1, 1] = g1y
        grads[e, 1, 2] = g1z
        grads[e, 2, 0] = g2x
        grads[e, 2, 1] = g2y
        grads[e, 2, 2] = g2z
        grads[e, 3, 0] = g3x
        grads[e, 3, 1] = g3y
        grads[e, 3, 2] = g3z
        grads[e, 0, 0] = -(g1x + g2x + g3x)
        grads[e, 0, 1] = -(g1y + g2y + g3y)
        grads[e, 0, 2] = -(g1z + g2z + g3z)


@nb.njit(cache=True)
def node_elements(tets: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Node -> element adjacency in CSR form: elements of node i are elems[start[i]:start[i+1]]."""
    m, k = tets.shape
    start = np.zeros(n_nodes + 1, np.int64)
    for e in range(m):
        for a in range(k):
            start[tets[e, a] + 1] += 1
    for i in range(n_nodes):
        start[i + 1] += start[i]
    fill = start[:-1].copy()
    elems = np.empty(start[n_nodes], np.int64)
    for e in range(m):
        for a in range(k):
            n = tets[e, a]
            elems[fill[n]] = e
            fill[n] += 1
    return start, elems


def _n_chunks(n: int) -> int:
    return max(1, min(n, 4 * nb.get_num_threads()))


@nb.njit(cache=True, inline="always")
def _row_neighbours(i: int, tets: np.ndarray, start: np.ndarray, elems: np.ndarray, marker: np.ndarray,
                    out: np.ndarray, q: int) -> int:
    """Distinct nodes sharing an element with node i (i included): written to out[q:] when
    ``out`` is not empty; returns the position after the last one (q + their number).
    ``marker`` (per thread) remembers which nodes row i has seen."""
    for p in range(start[i], start[i + 1]):
        e = elems[p]
        for a in range(tets.shape[1]):
            j = tets[e, a]
            if marker[j] != i:
                marker[j] = i
                if out.shape[0] > 0:
                    out[q] = j
                q += 1
    return q


@nb.njit(cache=True, parallel=True)
def _row_counts(tets: np.ndarray, start: np.ndarray, elems: np.ndarray, n_nodes: int, n_chunks: int) -> np.ndarray:
    counts = np.zeros(n_nodes + 1, np.int64)
    none = np.empty(0, np.int32)
    for c in nb.prange(n_chunks):
        marker = np.full(n_nodes, -1, np.int64)
        for i in range(c * n_nodes // n_chunks, (c + 1) * n_nodes // n_chunks):
            counts[i + 1] = _row_neighbours(i, tets, start, elems, marker, none, 0)
    return counts


@nb.njit(cache=True, parallel=True)
def _row_fill(tets: np.ndarray, start: np.ndarray, elems: np.ndarray, indptr: np.ndarray, n_chunks: int) -> np.ndarray:
    n_nodes = indptr.shape[0] - 1
    indices = np.empty(indptr[n_nodes], np.int32)
    for c in nb.prange(n_chunks):
        marker = np.full(n_nodes, -1, np.int64)
        for i in range(c * n_nodes // n_chunks, (c + 1) * n_nodes // n_chunks):
            _row_neighbours(i, tets, start, elems, marker, indices, indptr[i])
            indices[indptr[i]:indptr[i + 1]].sort()
    return indices


def csr_pattern(tets: np.ndarray, start: np.ndarray, elems: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted CSR pattern (indptr int64, indices int32) of the node graph of the elements."""
    nc = _n_chunks(n_nodes)
    indptr = np.cumsum(_row_counts(tets, start, elems, n_nodes, nc))
    return indptr, _row_fill(tets, start, elems, indptr, nc)


@nb.njit(cache=True, inline="always")
def _corner(tets: np.ndarray, e: int, i: int) -> int:
    """Position (0-3) of node i among element e's nodes (i must be one of them)."""
    a = 0
    while tets[e, a] != i:
        a += 1
    return a


@nb.njit(cache=True, parallel=True)
def _stiffness_values(tets: np.ndarray, grads: np.ndarray, weight: np.ndarray, start: np.ndarray,
                      elems: np.ndarray, indptr: np.ndarray, indices: np.ndarray, n_chunks: int) -> np.ndarray:
    n = indptr.shape[0] - 1
    data = np.zeros(indices.shape[0])
    for c in nb.prange(n_chunks):
        pos = np.zeros(n, np.int64)  # column -> position in the current row
        for i in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            for q in range(indptr[i], indptr[i + 1]):
                pos[indices[q]] = q
            for p in range(start[i], start[i + 1]):
                e = elems[p]
                a = _corner(tets, e, i)
                w = weight[e]
                gx = grads[e, a, 0] * w
                gy = grads[e, a, 1] * w
                gz = grads[e, a, 2] * w
                for b in range(4):
                    data[pos[tets[e, b]]] += gx * grads[e, b, 0] + gy * grads[e, b, 1] + gz * grads[e, b, 2]
    return data


def stiffness_values(tets: np.ndarray, grads: np.ndarray, weight: np.ndarray, start: np.ndarray,
                     elems: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """CSR values of K_ij = sum_e weight_e grad phi_i . grad phi_j on the given pattern.

    Row i is filled from the elements around node i only, so rows are independent (parallel).
    """
    return _stiffness_values(tets, grads, weight, start, elems, indptr, indices, _n_chunks(len(indptr) - 1))


@nb.njit(cache=True, parallel=True)
def gradient_kernel(tets: np.ndarray, grads: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(M, 3) gradient of the nodal field v on each element."""
    m = tets.shape[0]
    out = np.empty((m, 3))
    for e in nb.prange(m):
        sx = 0.0
        sy = 0.0
        sz = 0.0
        for a in range(4):
            va = v[tets[e, a]]
            sx += grads[e, a, 0] * va
            sy += grads[e, a, 1] * va
            sz += grads[e, a, 2] * va
        out[e, 0] = sx
        out[e, 1] = sy
        out[e, 2] = sz
    return out


@nb.njit(cache=True, parallel=True)
def divergence_load(tets: np.ndarray, grads: np.ndarray, volumes: np.ndarray, flux: np.ndarray,
                    start: np.ndarray, elems: np.ndarray) -> np.ndarray:
    """b_i = sum_e vol_e flux_e . grad phi_i for piecewise-constant flux (M, 3); rows in parallel."""
    n = start.shape[0] - 1
    b = np.zeros(n)
    for i in nb.prange(n):
        s = 0.0
        for p in range(start[i], start[i + 1]):
            e = elems[p]
            a = _corner(tets, e, i)
            s += volumes[e] * (flux[e, 0] * grads[e, a, 0] + flux[e, 1] * grads[e, a, 1]
                               + flux[e, 2] * grads[e, a, 2])
        b[i] = s
    return b


@nb.njit(cache=True, parallel=True)
def nodal_divergence_load(tets: np.ndarray, grads: np.ndarray, weight: np.ndarray, d_nodes: np.ndarray,
                          start: np.ndarray, elems: np.ndarray) -> np.ndarray:
    """b_i = sum_e weight_e D_e . grad phi_i with D_e the mean of the nodal vectors d_nodes (N, 3)
    at element e's four nodes (divergence_load of the element means, without forming them)."""
    n = start.shape[0] - 1
    b = np.zeros(n)
    for i in nb.prange(n):
        s = 0.0
        for p in range(start[i], start[i + 1]):
            e = elems[p]
            a = _corner(tets, e, i)
            dx = 0.0
            dy = 0.0
            dz = 0.0
            for k in range(4):
                j = tets[e, k]
                dx += d_nodes[j, 0]
                dy += d_nodes[j, 1]
                dz += d_nodes[j, 2]
            s += 0.25 * weight[e] * (dx * grads[e, a, 0] + dy * grads[e, a, 1] + dz * grads[e, a, 2])
        b[i] = s
    return b


@nb.njit(cache=True, parallel=True)
def morton_keys(points: np.ndarray, lo: np.ndarray, scale: float) -> np.ndarray:
    """Z-order (Morton) keys of points on a 2**20 grid per axis: sorting by them keeps
    points that are close in space close in memory."""
    n = points.shape[0]
    keys = np.empty(n, np.uint64)
    for p in nb.prange(n):
        key = np.uint64(0)
        for d in range(3):
            q = np.uint64(min(max((points[p, d] - lo[d]) * scale, 0.0), 1048575.0))
            for b in range(20):
                key |= ((q >> np.uint64(b)) & np.uint64(1)) << np.uint64(3 * b + d)
        keys[p] = key
    return keys


@nb.njit(cache=True)
def counting_order(key: np.ndarray, n_keys: int) -> np.ndarray:
    """Stable order sorting the integer keys ``key`` (all in [0, n_keys)): a counting sort."""
    m = key.shape[0]
    count = np.zeros(n_keys + 1, np.int64)
    for e in range(m):
        count[key[e] + 1] += 1
    for i in range(n_keys):
        count[i + 1] += count[i]
    order = np.empty(m, np.int64)
    for e in range(m):
        order[count[key[e]]] = e
        count[key[e]] += 1
    return order


@nb.njit(cache=True)
def order_by_min_node(tets: np.ndarray, n_nodes: int) -> np.ndarray:
    """Element order sorting by the smallest node index (a counting sort, stable)."""
    m, k = tets.shape
    key = np.empty(m, np.int64)
    for e in range(m):
        v = tets[e, 0]
        for a in range(1, k):
            if tets[e, a] < v:
                v = tets[e, a]
        key[e] = v
    return counting_order(key, n_nodes)


@nb.njit(cache=True, parallel=True)
def element_mean(tets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(M, C) mean over each element's nodes of nodal values (N, C)."""
    m, k = tets.shape
    c = values.shape[1]
    out = np.zeros((m, c))
    inv = 1.0 / k
    for e in nb.prange(m):
        for a in range(k):
            n = tets[e, a]
            for j in range(c):
                out[e, j] += values[n, j]
        for j in range(c):
            out[e, j] *= inv
    return out
