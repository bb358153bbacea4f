"""Compiled (numba) per-update loops of the live field engine (:mod:`navigator.optimize.live_field`).

Both look up the coil's vector potential trilinearly in a lattice in the coil frame (node
``i, j, k`` at ``origin + (i, j, k) * h`` mm, frame axes) at world points.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def node_coupling(values: np.ndarray, origin: np.ndarray, h: float, R: np.ndarray, centre: np.ndarray,
                  nodes: np.ndarray, q: np.ndarray, n_blocks: int) -> np.ndarray:
    """c_k = sum_n q[n, k] . a(r_n): the coupling of reciprocal node sources with a coil's field.

    Args:
        values: (X, Y, Z, 3) the coil's vector potential per ampere on a lattice in the coil frame
            (frame axes), T m / A; origin (3,) frame mm; h spacing mm.
        R: (3, 3) coil axes as columns (world); centre: (3,) coil centre, world mm.
        nodes: (N, 3) world mm; q: (N, r, 3) reciprocal sources at the nodes (world axes).
        n_blocks: blocks, each summed separately (pairwise-style summation of the partials).

    Returns:
        (r,) coupling; nodes outside the lattice contribute nothing.
    """
    n = nodes.shape[0]
    r = q.shape[1]
    partial = np.zeros((n_blocks, r))
    size = (n + n_blocks - 1) // n_blocks
    for b in range(n_blocks):
        acc = np.zeros(r)
        for p in range(b * size, min(n, (b + 1) * size)):
            inside, w0, w1, w2 = _frame_vector(values, origin, h, R, centre, nodes[p, 0], nodes[p, 1], nodes[p, 2])
            if not inside:
                continue
            for k in range(r):
                acc[k] += q[p, k, 0] * w0 + q[p, k, 1] * w1 + q[p, k, 2] * w2
        partial[b] = acc
    return partial.sum(axis=0)


@nb.njit(cache=True, parallel=True)
def lattice_vectors_parallel(values: np.ndarray, origin: np.ndarray, h: float, R: np.ndarray, centre: np.ndarray,
                    points: np.ndarray, out: np.ndarray) -> int:
    """Vector field of a dense lattice in a moving frame at world points, in world axes.

    Args:
        values: (X, Y, Z, 3) field at the lattice nodes, components along the frame's axes.
        origin, h: lattice origin (frame mm) and spacing (mm).
        R: (3, 3) frame axes as columns in world coordinates; centre: (3,) frame origin, world mm.
        points: (P, 3) world mm.
        out: (P, 3) world-axis field (written).

    Returns:
        the number of points outside the lattice (their value is set to 0).
    """
    n = points.shape[0]
    flags = np.zeros(n, np.int64)
    for p in nb.prange(n):
        _one_vector(values, origin, h, R, centre, points, out, flags, p)
    return int(flags.sum())


@nb.njit(cache=True)
def lattice_vectors(values: np.ndarray, origin: np.ndarray, h: float, R: np.ndarray, centre: np.ndarray,
                    points: np.ndarray, out: np.ndarray) -> int:
    """:func:`lattice_vectors_parallel` on one thread (per-update sizes: thread start-up and
    contention cost more than the loop on a busy machine, measured)."""
    n = points.shape[0]
    flags = np.zeros(n, np.int64)
    for p in range(n):
        _one_vector(values, origin, h, R, centre, points, out, flags, p)
    return int(flags.sum())


@nb.njit(cache=True, inline="always")
def _frame_vector(values, origin, h, R, centre, x, y, z):
    """The lattice's vector at world point (x, y, z) mm, in world axes: (inside, w0, w1, w2);
    (False, 0, 0, 0) outside the lattice."""
    nx, ny, nz = values.shape[0], values.shape[1], values.shape[2]
    d0 = x - centre[0]
    d1 = y - centre[1]
    d2 = z - centre[2]
    l0 = (d0 * R[0, 0] + d1 * R[1, 0] + d2 * R[2, 0] - origin[0]) / h
    l1 = (d0 * R[0, 1] + d1 * R[1, 1] + d2 * R[2, 1] - origin[1]) / h
    l2 = (d0 * R[0, 2] + d1 * R[1, 2] + d2 * R[2, 2] - origin[2]) / h
    ix, iy, iz = int(np.floor(l0)), int(np.floor(l1)), int(np.floor(l2))
    if ix < 0 or iy < 0 or iz < 0 or ix + 1 >= nx or iy + 1 >= ny or iz + 1 >= nz:
        return False, 0.0, 0.0, 0.0
    fx, fy, fz = l0 - ix, l1 - iy, l2 - iz
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    for c in range(8):
        dx, dy, dz = c >> 2, (c >> 1) & 1, c & 1
        w = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy) * (fz if dz else 1.0 - fz)
        a0 += w * values[ix + dx, iy + dy, iz + dz, 0]
        a1 += w * values[ix + dx, iy + dy, iz + dz, 1]
        a2 += w * values[ix + dx, iy + dy, iz + dz, 2]
    return (True, R[0, 0] * a0 + R[0, 1] * a1 + R[0, 2] * a2, R[1, 0] * a0 + R[1, 1] * a1 + R[1, 2] * a2,
            R[2, 0] * a0 + R[2, 1] * a1 + R[2, 2] * a2)


@nb.njit(cache=True, inline="always")
def _one_vector(values, origin, h, R, centre, points, out, flags, p):
    """Point p of :func:`lattice_vectors` (flags[p] = 1 when outside the lattice)."""
    inside, w0, w1, w2 = _frame_vector(values, origin, h, R, centre, points[p, 0], points[p, 1], points[p, 2])
    out[p, 0] = w0
    out[p, 1] = w1
    out[p, 2] = w2
    if not inside:
        flags[p] = 1
