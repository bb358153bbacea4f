"""Compiled (numba) loops of the placement search."""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, parallel=True)
def trilinear_lattice(values: np.ndarray, lut: np.ndarray, shape: np.ndarray, i0: np.ndarray,
                      frac: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of lattice values at points.

    Args:
        values: (U, F) values at the lattice nodes in use.
        lut: flat lattice index (C order over ``shape``) -> row of ``values``.
        shape: (3,) lattice shape.
        i0: (P, 3) lower corner index of each point's cell; frac: (P, 3) position in the cell (0..1).

    Returns:
        (P, F) interpolated values.
    """
    n = i0.shape[0]
    f = values.shape[1]
    out = np.zeros((n, f))
    sy = shape[2]
    sx = shape[1] * shape[2]
    for p in nb.prange(n):
        fx, fy, fz = frac[p, 0], frac[p, 1], frac[p, 2]
        base = i0[p, 0] * sx + i0[p, 1] * sy + i0[p, 2]
        for dx in range(2):
            wx = fx if dx else 1.0 - fx
            for dy in range(2):
                wy = fy if dy else 1.0 - fy
                for dz in range(2):
                    w = wx * wy * (fz if dz else 1.0 - fz)
                    row = lut[base + dx * sx + dy * sy + dz]
                    for c in range(f):
                        out[p, c] += w * values[row, c]
    return out
