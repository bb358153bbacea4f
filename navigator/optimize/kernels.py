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


@nb.njit(cache=True, inline="always")
def _trilinear_row(values, lut, sx, sy, nx, ny, nz, gx, gy, gz, out, row_scale):
    """Add ``row_scale`` x the trilinear value at lattice coordinates (gx, gy, gz) to ``out``;
    returns False when the point is outside the lattice or touches a node without a value."""
    ix = int(np.floor(gx))
    iy = int(np.floor(gy))
    iz = int(np.floor(gz))
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx - 1 or iy >= ny - 1 or iz >= nz - 1:
        return False
    fx = gx - ix
    fy = gy - iy
    fz = gz - iz
    f = out.shape[0]
    base = ix * sx + iy * sy + iz
    for dx in range(2):
        wx = fx if dx else 1.0 - fx
        for dy in range(2):
            wy = fy if dy else 1.0 - fy
            for dz in range(2):
                w = wx * wy * (fz if dz else 1.0 - fz) * row_scale
                row = lut[base + dx * sx + dy * sy + dz]
                if row < 0:
                    return False
                for c in range(f):
                    out[c] += w * values[row, c]
    return True


@nb.njit(cache=True, parallel=True)
def lattice_sample(values: np.ndarray, lut: np.ndarray, shape: np.ndarray, origin: np.ndarray, h: float,
                   points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trilinear values (P, F) of an axis-aligned lattice (node ``ijk`` at ``origin + h ijk``,
    values of the nodes in use in ``values`` rows via ``lut``, -1 = no value) at points (P, 3);
    and a (P,) bool: False where a point lies outside the lattice or next to a node without a value."""
    n = points.shape[0]
    f = values.shape[1]
    out = np.zeros((n, f))
    ok = np.zeros(n, np.bool_)
    nx, ny, nz = shape[0], shape[1], shape[2]
    sy = nz
    sx = ny * nz
    for p in nb.prange(n):
        ok[p] = _trilinear_row(values, lut, sx, sy, nx, ny, nz, (points[p, 0] - origin[0]) / h,
                               (points[p, 1] - origin[1]) / h, (points[p, 2] - origin[2]) / h, out[p], 1.0)
    return out, ok


@nb.njit(cache=True, parallel=True)
def aux_node_field(values: np.ndarray, lut: np.ndarray, shape: np.ndarray, origin: np.ndarray, h: float,
                   centres: np.ndarray, frames: np.ndarray, nodes: np.ndarray, pair_centre: np.ndarray,
                   pair_lift: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The reciprocal field at the auxiliary-dipole nodes of (centre, lift) pairs, in each
    centre's frame.

    Args:
        values, lut, shape, origin, h: the world lattice of B (k x 3 values per node, see
            :func:`lattice_sample`).
        centres: (C, 3) mm. frames: (C, 3, 3) columns x, y, z (z into the head).
        nodes: (G, 3) auxiliary nodes in the centre frame, mm.
        pair_centre: (N,) centre index of each pair; pair_lift: (N,) outward lift of the coil
            along -z, mm.

    Returns:
        (N, k, G * 3) local components [j, node, axis] and an (N,) bool (all nodes had values).
    """
    N = pair_centre.shape[0]
    G = nodes.shape[0]
    out = np.zeros((N, k, G * 3))
    ok = np.ones(N, np.bool_)
    nx, ny, nz = shape[0], shape[1], shape[2]
    sy = nz
    sx = ny * nz
    for q in nb.prange(N):
        c = pair_centre[q]
        F = frames[c]
        s = pair_lift[q]
        buf = np.zeros(3 * k)
        for g in range(G):
            lx = nodes[g, 0]
            ly = nodes[g, 1]
            lz = nodes[g, 2] - s
            wx = centres[c, 0] + F[0, 0] * lx + F[0, 1] * ly + F[0, 2] * lz
            wy = centres[c, 1] + F[1, 0] * lx + F[1, 1] * ly + F[1, 2] * lz
            wz = centres[c, 2] + F[2, 0] * lx + F[2, 1] * ly + F[2, 2] * lz
            buf[:] = 0.0
            if not _trilinear_row(values, lut, sx, sy, nx, ny, nz, (wx - origin[0]) / h, (wy - origin[1]) / h,
                                  (wz - origin[2]) / h, buf, 1.0):
                ok[q] = False
                continue
            for j in range(k):
                bx = buf[3 * j]
                by = buf[3 * j + 1]
                bz = buf[3 * j + 2]
                for a in range(3):
                    out[q, j, 3 * g + a] = F[0, a] * bx + F[1, a] * by + F[2, a] * bz
    return out, ok


@nb.njit(cache=True, parallel=True)
def dipole_pose_scores(values: np.ndarray, lut: np.ndarray, shape: np.ndarray, origin: np.ndarray, h: float,
                       rotations: np.ndarray, translations: np.ndarray, positions: np.ndarray,
                       moments: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """sum_d m_d . B_j(r_d) for every pose: the coil's dipoles (positions mm, moments, coil
    frame) posed by rotations (P, 3, 3) and translations (P, 3) mm, B trilinear from the world
    lattice. Returns (P, k) and a (P,) bool (every dipole had lattice values)."""
    P = rotations.shape[0]
    D = positions.shape[0]
    out = np.zeros((P, k))
    ok = np.ones(P, np.bool_)
    nx, ny, nz = shape[0], shape[1], shape[2]
    sy = nz
    sx = ny * nz
    for p in nb.prange(P):
        R = rotations[p]
        buf = np.zeros(3 * k)
        for d in range(D):
            px, py, pz = positions[d, 0], positions[d, 1], positions[d, 2]
            wx = translations[p, 0] + R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz
            wy = translations[p, 1] + R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz
            wz = translations[p, 2] + R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz
            mx, my, mz = moments[d, 0], moments[d, 1], moments[d, 2]
            m0 = R[0, 0] * mx + R[0, 1] * my + R[0, 2] * mz
            m1 = R[1, 0] * mx + R[1, 1] * my + R[1, 2] * mz
            m2 = R[2, 0] * mx + R[2, 1] * my + R[2, 2] * mz
            buf[:] = 0.0
            if not _trilinear_row(values, lut, sx, sy, nx, ny, nz, (wx - origin[0]) / h, (wy - origin[1]) / h,
                                  (wz - origin[2]) / h, buf, 1.0):
                ok[p] = False
                break
            for j in range(k):
                out[p, j] += m0 * buf[3 * j] + m1 * buf[3 * j + 1] + m2 * buf[3 * j + 2]
    return out, ok


@nb.njit(cache=True, inline="always")
def _sdf_at(sdf, A, b, x, y, z, far):
    """Trilinear signed distance at a world point (lattice coordinates A @ p + b); ``far`` outside."""
    gx = A[0, 0] * x + A[0, 1] * y + A[0, 2] * z + b[0]
    gy = A[1, 0] * x + A[1, 1] * y + A[1, 2] * z + b[1]
    gz = A[2, 0] * x + A[2, 1] * y + A[2, 2] * z + b[2]
    nx, ny, nz = sdf.shape[0], sdf.shape[1], sdf.shape[2]
    ix = int(np.floor(gx))
    iy = int(np.floor(gy))
    iz = int(np.floor(gz))
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx - 1 or iy >= ny - 1 or iz >= nz - 1:
        return far
    fx = gx - ix
    fy = gy - iy
    fz = gz - iz
    v = 0.0
    for dx in range(2):
        wx = fx if dx else 1.0 - fx
        for dy in range(2):
            wy = fy if dy else 1.0 - fy
            for dz in range(2):
                v += wx * wy * (fz if dz else 1.0 - fz) * sdf[ix + dx, iy + dy, iz + dz]
    return v


@nb.njit(cache=True, inline="always")
def _mark_cell(x, y, z, origin, h, nx, ny, nz, sx, sy, mask) -> int:
    """Mark the 8 lattice nodes of the cell holding (x, y, z) mm in the flat ``mask``; returns 1
    when the point is outside the lattice (nothing marked), else 0."""
    ix = int(np.floor((x - origin[0]) / h))
    iy = int(np.floor((y - origin[1]) / h))
    iz = int(np.floor((z - origin[2]) / h))
    if ix < 0 or iy < 0 or iz < 0 or ix >= nx - 1 or iy >= ny - 1 or iz >= nz - 1:
        return 1
    base = ix * sx + iy * sy + iz
    for dx in range(2):
        for dy in range(2):
            for dz in range(2):
                mask[base + dx * sx + dy * sy + dz] = True
    return 0


@nb.njit(cache=True, parallel=True)
def mark_cells(points: np.ndarray, origin: np.ndarray, h: float, shape: np.ndarray, mask: np.ndarray) -> int:
    """Set ``mask`` (flat, C order over ``shape``) at the 8 lattice nodes around each point
    (P, 3) mm; returns the number of points outside the lattice (their nodes are not marked)."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    sy = nz
    sx = ny * nz
    n_out = 0
    for p in nb.prange(points.shape[0]):
        n_out += _mark_cell(points[p, 0], points[p, 1], points[p, 2], origin, h, nx, ny, nz, sx, sy, mask)
    return n_out


@nb.njit(cache=True, parallel=True)
def mark_aux_cells(centres: np.ndarray, frames: np.ndarray, nodes: np.ndarray, pair_centre: np.ndarray,
                   pair_lift: np.ndarray, origin: np.ndarray, h: float, shape: np.ndarray, mask: np.ndarray) -> int:
    """:func:`mark_cells` for the auxiliary nodes (G, 3) of (centre, lift) pairs (see
    :func:`aux_node_field`) without forming the points; returns the number outside the lattice."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    sy = nz
    sx = ny * nz
    n_out = 0
    for q in nb.prange(pair_centre.shape[0]):
        c = pair_centre[q]
        F = frames[c]
        s = pair_lift[q]
        for g in range(nodes.shape[0]):
            lx = nodes[g, 0]
            ly = nodes[g, 1]
            lz = nodes[g, 2] - s
            n_out += _mark_cell(centres[c, 0] + F[0, 0] * lx + F[0, 1] * ly + F[0, 2] * lz,
                                centres[c, 1] + F[1, 0] * lx + F[1, 1] * ly + F[1, 2] * lz,
                                centres[c, 2] + F[2, 0] * lx + F[2, 1] * ly + F[2, 2] * lz,
                                origin, h, nx, ny, nz, sx, sy, mask)
    return n_out


@nb.njit(cache=True)
def _grouped_min(sdf, A, b, R, tx, ty, tz, pts, gstart, gcen, grad, far, gval):
    """Minimum signed distance of posed points grouped in balls (centre ``gcen``, radius
    ``grad``; members ``pts[gstart[g]:gstart[g+1]]``): a group is opened only when its centre's
    distance minus its radius (a lower bound, the distance being 1-Lipschitz) is below the
    running minimum."""
    ng = gcen.shape[0]
    g0 = 0
    for g in range(ng):
        px, py, pz = gcen[g, 0], gcen[g, 1], gcen[g, 2]
        gval[g] = _sdf_at(sdf, A, b, tx + R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz,
                          ty + R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz,
                          tz + R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz, far)
        if gval[g] - grad[g] < gval[g0] - grad[g0]:
            g0 = g
    best = far
    for it in range(ng + 1):
        g = g0 if it == 0 else it - 1
        if it > 0 and g == g0:
            continue
        if gval[g] - grad[g] >= best:
            continue
        for i in range(gstart[g], gstart[g + 1]):
            px, py, pz = pts[i, 0], pts[i, 1], pts[i, 2]
            v = _sdf_at(sdf, A, b, tx + R[0, 0] * px + R[0, 1] * py + R[0, 2] * pz,
                        ty + R[1, 0] * px + R[1, 1] * py + R[1, 2] * pz,
                        tz + R[2, 0] * px + R[2, 1] * py + R[2, 2] * pz, far)
            if v < best:
                best = v
    return best


@nb.njit(cache=True)
def _solve_lift_grouped(sdf, A, b, R, t, pts, gstart, gcen, grad, distance, tol, max_lift, far, gval, s_start):
    """Lift (mm, along -z of R; negative = towards the head) at which the posed points' minimum
    signed distance equals ``distance``, by a secant iteration from ``s_start``; returns (lift,
    min distance, placed). A lift s changes every distance by at most |s| (1-Lipschitz)."""
    def m_at(s):
        return _grouped_min(sdf, A, b, R, t[0] - s * R[0, 2], t[1] - s * R[1, 2], t[2] - s * R[2, 2], pts, gstart,
                            gcen, grad, far, gval)

    s0 = min(max(s_start, -max_lift), max_lift)
    m0 = m_at(s0)
    f0 = m0 - distance
    if abs(f0) <= tol:
        return s0, m0, abs(s0) < max_lift
    s1 = s0 - f0
    m1 = m0
    for _ in range(20):
        if s1 > max_lift:
            s1 = max_lift
        if s1 < -max_lift:
            s1 = -max_lift
        m1 = m_at(s1)
        f1 = m1 - distance
        if abs(f1) <= tol:
            return s1, m1, abs(s1) < max_lift
        if f1 == f0 or (s1 >= max_lift and f1 < 0):
            return s1, m1, False
        s_new = s1 - f1 * (s1 - s0) / (f1 - f0)
        if not (s_new == s_new):
            return s1, m1, False
        if f1 < 0 and s_new <= s1:  # still too close: the secant must move outward
            s_new = s1 - f1
        s0, f0 = s1, f1
        s1 = s_new
    return s1, m1, False


@nb.njit(cache=True, parallel=True)
def casing_lifts_grouped(sdf: np.ndarray, A: np.ndarray, b: np.ndarray, rotations: np.ndarray, translations: np.ndarray,
                         pts: np.ndarray, gstart: np.ndarray, gcen: np.ndarray, grad: np.ndarray, distance: float,
                         tol: float, max_lift: float, far: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pose (rotations (P, 3, 3), translations (P, 3) mm): the lift along the coil's
    -z (outward, mm; negative = towards the head) that puts the closest casing point (``pts``
    (N, 3), coil frame mm, grouped: see :func:`_grouped_min`) at ``distance`` mm from the scalp
    (signed distance field ``sdf``, lattice coordinates ``A @ p + b``, ``far`` outside it).
    Returns lifts (P,), the minimum distance there (P,) and placed (P,) bool (False: no lift
    within ``max_lift`` mm reaches the distance within ``tol``)."""
    P = rotations.shape[0]
    lifts = np.zeros(P)
    mind = np.zeros(P)
    placed = np.zeros(P, np.bool_)
    for p in nb.prange(P):
        gval = np.empty(gcen.shape[0])
        s, m, ok = _solve_lift_grouped(sdf, A, b, rotations[p], translations[p], pts, gstart, gcen, grad, distance,
                                       tol, max_lift, far, gval, 0.0)
        lifts[p] = s
        mind[p] = m
        placed[p] = ok
    return lifts, mind, placed


@nb.njit(cache=True, parallel=True)
def casing_lifts_grid_grouped(sdf: np.ndarray, A: np.ndarray, b: np.ndarray, frames: np.ndarray, centres: np.ndarray,
                              Q: np.ndarray, pts: np.ndarray, gstart: np.ndarray, gcen: np.ndarray, grad: np.ndarray,
                              distance: float, tol: float, max_lift: float,
                              far: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`casing_lifts_grouped` for every centre (frames (C, 3, 3), centres (C, 3)) x handle
    angle (rotations Q (A, 3, 3) in the centre frame: pose rotation = F @ Q); the angles of one
    centre run in order, each starting from the previous angle's lift. Returns (C, A) arrays."""
    C = centres.shape[0]
    NA = Q.shape[0]
    lifts = np.zeros((C, NA))
    mind = np.zeros((C, NA))
    placed = np.zeros((C, NA), np.bool_)
    for c in nb.prange(C):
        F = frames[c]
        gval = np.empty(gcen.shape[0])
        R = np.empty((3, 3))
        s_prev = 0.0
        for a in range(NA):
            q = Q[a]
            for i in range(3):
                for j in range(3):
                    R[i, j] = F[i, 0] * q[0, j] + F[i, 1] * q[1, j] + F[i, 2] * q[2, j]
            s, m, ok = _solve_lift_grouped(sdf, A, b, R, centres[c], pts, gstart, gcen, grad, distance, tol, max_lift,
                                           far, gval, s_prev)
            lifts[c, a] = s
            mind[c, a] = m
            placed[c, a] = ok
            if ok:
                s_prev = s
    return lifts, mind, placed


@nb.njit(cache=True, parallel=True)
def biot_savart_sum(sources: np.ndarray, charges: np.ndarray, points: np.ndarray) -> np.ndarray:
    """sum_s q_s x (r - c_s) / |r - c_s|^3 at points (P, 3) for current elements ``charges``
    (k, S, 3) at ``sources`` (S, 3), same length unit; returns (P, k, 3) without the mu0/(4 pi)
    factor. Direct summation, parallel over the points: for a few points next to many sources
    (an FMM's set-up over the sources costs seconds whatever the number of points)."""
    P = points.shape[0]
    S = sources.shape[0]
    k = charges.shape[0]
    out = np.zeros((P, k, 3))
    for p in nb.prange(P):
        rx, ry, rz = points[p, 0], points[p, 1], points[p, 2]
        acc = np.zeros((k, 3))
        for s in range(S):
            dx = rx - sources[s, 0]
            dy = ry - sources[s, 1]
            dz = rz - sources[s, 2]
            r2 = dx * dx + dy * dy + dz * dz
            if r2 == 0.0:
                continue
            inv3 = 1.0 / (r2 * np.sqrt(r2))
            for j in range(k):
                qx, qy, qz = charges[j, s, 0], charges[j, s, 1], charges[j, s, 2]
                acc[j, 0] += (qy * dz - qz * dy) * inv3
                acc[j, 1] += (qz * dx - qx * dz) * inv3
                acc[j, 2] += (qx * dy - qy * dx) * inv3
        out[p] = acc
    return out
