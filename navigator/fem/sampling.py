"""Sampling piecewise-constant / P1 fields of a tetrahedral mesh at points and on voxel grids.

Point location uses barycentric coordinates; grids are filled by rasterizing each
tetrahedron's bounding box of voxel centres (exact, O(number of tets)). The per-point and
per-tetrahedron loops are compiled with numba (tets / points in parallel, each writing only
its own rows).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress


def _barycentric(p: np.ndarray, tet_pts: np.ndarray) -> np.ndarray:
    """(P, 4) barycentric coordinates of points p (P, 3) in tets (P, 4, 3)."""
    T = np.transpose(tet_pts[:, 1:] - tet_pts[:, :1], (0, 2, 1))  # columns = edges
    lam = np.linalg.solve(T, (p - tet_pts[:, 0])[..., None])[..., 0]
    return np.concatenate([1.0 - lam.sum(axis=1, keepdims=True), lam], axis=1)


@nb.njit(cache=True, inline="always")
def _bary_solve(nodes: np.ndarray, tets: np.ndarray, t: int, x: float, y: float, z: float,
                out: np.ndarray) -> None:
    """Barycentric coordinates of (x, y, z) in tet t into out (4,): solve [p1-p0 p2-p0 p3-p0] lam
    = x - p0 by Gaussian elimination with partial pivoting (as LAPACK gesv)."""
    A = np.empty((3, 4))
    i0 = tets[t, 0]
    for r in range(3):
        for c in range(3):
            A[r, c] = nodes[tets[t, c + 1], r] - nodes[i0, r]
    A[0, 3] = x - nodes[i0, 0]
    A[1, 3] = y - nodes[i0, 1]
    A[2, 3] = z - nodes[i0, 2]
    for k in range(3):
        piv = k
        for i in range(k + 1, 3):
            if abs(A[i, k]) > abs(A[piv, k]):
                piv = i
        if piv != k:
            for j in range(4):
                tmp = A[k, j]
                A[k, j] = A[piv, j]
                A[piv, j] = tmp
        if A[k, k] == 0.0:
            for j in range(4):
                out[j] = np.nan
            return
        for i in range(k + 1, 3):
            f = A[i, k] / A[k, k]
            for j in range(k + 1, 4):
                A[i, j] -= f * A[k, j]
    l2 = A[2, 3] / A[2, 2]
    l1 = (A[1, 3] - A[1, 2] * l2) / A[1, 1]
    l0 = (A[0, 3] - A[0, 1] * l1 - A[0, 2] * l2) / A[0, 0]
    out[0] = 1.0 - ((l0 + l1) + l2)
    out[1] = l0
    out[2] = l1
    out[3] = l2


@nb.njit(cache=True, parallel=True, nogil=True)
def _best_candidates(nodes: np.ndarray, tets: np.ndarray, pts: np.ndarray, cand_tets: np.ndarray, n_try: int,
                     tet: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """For each point, among its first ``n_try`` candidate tets, the one with the largest
    smallest barycentric coordinate (the first of equal ones, 1e-12 tolerance) -> tet, bary.
    Returns per point the number of candidates tried until it was inside one (-1e-9
    tolerance), or n_try + 1 when never."""
    n = pts.shape[0]
    first_inside = np.empty(n, np.int64)
    for i in nb.prange(n):
        b = np.empty(4)
        best = -np.inf
        first_inside[i] = n_try + 1
        tet[i] = cand_tets[i, 0]
        for j in range(n_try):
            t = cand_tets[i, j]
            _bary_solve(nodes, tets, t, pts[i, 0], pts[i, 1], pts[i, 2], b)
            score = min(min(b[0], b[1]), min(b[2], b[3]))
            if score > best + 1e-12:
                best = score
                tet[i] = t
                for k in range(4):
                    bary[i, k] = b[k]
            if best >= -1e-9 and first_inside[i] > n_try:
                first_inside[i] = j + 1
    return first_inside


def locate_points(
    mesh: Mesh, points: np.ndarray, tet_mask: np.ndarray | None = None, k: int = 24,
    centroids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Tetrahedron containing each point and its barycentric coordinates.

    Args:
        points: (P, 3) mm. tet_mask: optional (M,) bool restricting the candidate tets.
        k: nearest tet centroids tried per point.
        centroids: optional (M, 3) ``mesh.tet_centroids()`` when the caller already has them.

    Returns:
        tet: (P,) index into the mesh's tets (the nearest-centroid candidate when no candidate
        contains the point, e.g. outside the mesh); bary: (P, 4) barycentric coordinates
        (clipped to [0, 1] and renormalised for points outside).
    """
    from scipy.spatial import cKDTree

    pts = np.ascontiguousarray(np.atleast_2d(np.asarray(points, dtype=np.float64)))
    ids = np.arange(mesh.n_tets) if tet_mask is None else np.flatnonzero(tet_mask)
    if centroids is None:
        cent = mesh.nodes[mesh.tetrahedra[ids]].mean(axis=1)
    else:
        cent = np.asarray(centroids, dtype=np.float64)[ids]
    tree = cKDTree(cent, balanced_tree=False, compact_nodes=False)  # faster to build, same neighbours
    k = int(min(k, len(ids)))
    _, cand = tree.query(pts, k=k, workers=-1)
    cand = np.ascontiguousarray(ids[cand.reshape(len(pts), k)], dtype=np.int64)
    nodes = np.ascontiguousarray(mesh.nodes, dtype=np.float64)
    tets = np.ascontiguousarray(mesh.tetrahedra, dtype=np.int64)
    best_tet = np.empty(len(pts), np.int64)
    best_bary = np.zeros((len(pts), 4))
    # candidates are tried in rounds until every point is inside one: the first round in which
    # all points are inside decides how many candidates every point tries
    first_inside = _best_candidates(nodes, tets, pts, cand, k, best_tet, best_bary)
    n_try = int(first_inside.max()) if len(pts) else 0
    if n_try < k:
        _best_candidates(nodes, tets, pts, cand, n_try, best_tet, best_bary)
    b = np.clip(best_bary, 0.0, None)
    b /= b.sum(axis=1, keepdims=True)
    return best_tet, b


@nb.njit(cache=True, inline="always")
def _tet_box(ijk: np.ndarray, tets: np.ndarray, t: int, shape: np.ndarray, lo: np.ndarray, cnt: np.ndarray,
             Ti: np.ndarray) -> bool:
    """Voxel box (lo, cnt) and float32 inverse edge matrix of tet t; False when the box is
    empty or the tet degenerate (|det| <= 1e-12 voxel^3)."""
    for c in range(3):
        mn = ijk[tets[t, 0], c]
        mx = mn
        for a in range(1, 4):
            v = ijk[tets[t, a], c]
            mn = min(mn, v)
            mx = max(mx, v)
        l = max(np.int64(np.ceil(mn - 1e-9)), 0)
        h = min(np.int64(np.floor(mx + 1e-9)), shape[c] - 1)
        lo[c] = l
        cnt[c] = h - l + 1
        if cnt[c] <= 0:
            return False
    i0 = tets[t, 0]
    # T[r, c] = p[c + 1, r] - p[0, r] (columns = edges)
    a00 = ijk[tets[t, 1], 0] - ijk[i0, 0]
    a01 = ijk[tets[t, 2], 0] - ijk[i0, 0]
    a02 = ijk[tets[t, 3], 0] - ijk[i0, 0]
    a10 = ijk[tets[t, 1], 1] - ijk[i0, 1]
    a11 = ijk[tets[t, 2], 1] - ijk[i0, 1]
    a12 = ijk[tets[t, 3], 1] - ijk[i0, 1]
    a20 = ijk[tets[t, 1], 2] - ijk[i0, 2]
    a21 = ijk[tets[t, 2], 2] - ijk[i0, 2]
    a22 = ijk[tets[t, 3], 2] - ijk[i0, 2]
    c00 = a11 * a22 - a12 * a21
    c01 = a02 * a21 - a01 * a22
    c02 = a01 * a12 - a02 * a11
    det = a00 * c00 + a10 * c01 + a20 * c02
    if not abs(det) > 1e-12:
        return False
    inv = 1.0 / det
    Ti[0, 0] = np.float32(c00 * inv)
    Ti[0, 1] = np.float32(c01 * inv)
    Ti[0, 2] = np.float32(c02 * inv)
    Ti[1, 0] = np.float32((a12 * a20 - a10 * a22) * inv)
    Ti[1, 1] = np.float32((a00 * a22 - a02 * a20) * inv)
    Ti[1, 2] = np.float32((a02 * a10 - a00 * a12) * inv)
    Ti[2, 0] = np.float32((a10 * a21 - a11 * a20) * inv)
    Ti[2, 1] = np.float32((a01 * a20 - a00 * a21) * inv)
    Ti[2, 2] = np.float32((a00 * a11 - a01 * a10) * inv)
    return True


@nb.njit(cache=True, inline="always")
def _tet_voxels(ijk: np.ndarray, tets: np.ndarray, t: int, lo: np.ndarray, cnt: np.ndarray, Ti: np.ndarray,
                shape: np.ndarray, write: bool, out_flat: np.ndarray, out_bary: np.ndarray, q: int) -> int:
    """Voxel centres of tet ``t`` inside it (barycentric tolerance 1e-6) among the ``cnt`` box
    voxels from ``lo`` (from :func:`_tet_box`, with ``Ti`` its inverse edge matrix); returns how
    many. With ``write``, their flat indices and barycentric coordinates (float32) go to
    ``out_flat[q:]`` and ``out_bary[q:]``."""
    eps = np.float32(1e-6)
    one = np.float32(1.0)
    top = one + eps
    s1 = shape[1] * shape[2]
    n_in = 0
    for a in range(cnt[0]):
        d0 = np.float32(lo[0] + a - ijk[tets[t, 0], 0])
        for b in range(cnt[1]):
            d1 = np.float32(lo[1] + b - ijk[tets[t, 0], 1])
            # float32 (T0 d0 + T1 d1) + T2 d2, the row part first (same rounding)
            r0 = Ti[0, 0] * d0 + Ti[0, 1] * d1
            r1 = Ti[1, 0] * d0 + Ti[1, 1] * d1
            r2 = Ti[2, 0] * d0 + Ti[2, 1] * d1
            for c in range(cnt[2]):
                d2 = np.float32(lo[2] + c - ijk[tets[t, 0], 2])
                l0 = r0 + Ti[0, 2] * d2
                l1 = r1 + Ti[1, 2] * d2
                l2 = r2 + Ti[2, 2] * d2
                if l0 >= -eps and l1 >= -eps and l2 >= -eps and l0 + l1 + l2 <= top:
                    if write:
                        out_flat[q + n_in] = (lo[0] + a) * s1 + (lo[1] + b) * shape[2] + lo[2] + c
                        out_bary[q + n_in, 0] = one - (l0 + l1 + l2)
                        out_bary[q + n_in, 1] = l0
                        out_bary[q + n_in, 2] = l1
                        out_bary[q + n_in, 3] = l2
                    n_in += 1
    return n_in


@nb.njit(cache=True, parallel=True, nogil=True)
def _rasterize_kernel(ijk: np.ndarray, tets: np.ndarray, orig: np.ndarray, shape: np.ndarray, chunk: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxels inside the tets (see :func:`rasterize_tets`); ``orig`` (M,) = index of each tet in
    the caller's numbering (the tets may come renumbered for memory locality)."""
    m = tets.shape[0]
    counts = np.zeros(m + 1, np.int64)
    no_flat = np.empty(0, np.int64)
    no_bary = np.empty((0, 4), np.float32)
    n_chunks = max(1, min(m, 64))
    for ch in nb.prange(n_chunks):  # pass 1: voxels per tet
        lo = np.empty(3, np.int64)
        cnt = np.empty(3, np.int64)
        Ti = np.empty((3, 3), np.float32)
        for t in range(ch * m // n_chunks, (ch + 1) * m // n_chunks):
            if not _tet_box(ijk, tets, t, shape, lo, cnt, Ti):
                continue
            counts[t + 1] = _tet_voxels(ijk, tets, t, lo, cnt, Ti, shape, False, no_flat, no_bary, 0)
    for t in range(m):
        counts[t + 1] += counts[t]
    n_cand = counts[m]
    c_flat = np.empty(n_cand, np.int64)
    c_bary = np.empty((n_cand, 4), np.float32)
    c_rank = np.empty(m, np.int64)  # order of the tets' voxels before this version: chunk, box size
    s1 = shape[1] * shape[2]
    for ch in nb.prange(n_chunks):  # pass 2: the voxels
        lo = np.empty(3, np.int64)
        cnt = np.empty(3, np.int64)
        Ti = np.empty((3, 3), np.float32)
        for t in range(ch * m // n_chunks, (ch + 1) * m // n_chunks):
            c_rank[t] = 0
            if not _tet_box(ijk, tets, t, shape, lo, cnt, Ti):
                continue
            c_rank[t] = (orig[t] // chunk) * 10**12 + cnt[0] * 1_000_000 + cnt[1] * 1000 + cnt[2]
            _tet_voxels(ijk, tets, t, lo, cnt, Ti, shape, True, c_flat, c_bary, counts[t])
    # a voxel inside several tets (on a shared face, within the tolerance) keeps the tet that
    # came first in the order of the former numpy version: chunk, box size, tet index
    n_vox = shape[0] * s1
    owner = np.full(n_vox, -1, np.int64)
    owner_tet = np.full(n_vox, -1, np.int64)
    for t in range(m):
        for q in range(counts[t], counts[t + 1]):
            v = c_flat[q]
            o = owner_tet[v]
            if o < 0 or c_rank[t] < c_rank[o] or (c_rank[t] == c_rank[o] and orig[t] < orig[o]):
                owner[v] = q
                owner_tet[v] = t
    n_out = 0
    for v in range(n_vox):
        if owner[v] >= 0:
            n_out += 1
    flat = np.empty(n_out, np.int64)
    tet = np.empty(n_out, np.int64)
    bary = np.empty((n_out, 4), np.float32)
    j = 0
    for v in range(n_vox):
        q = owner[v]
        if q >= 0:
            flat[j] = v
            tet[j] = orig[owner_tet[v]]
            for k in range(4):
                bary[j, k] = c_bary[q, k]
            j += 1
    return flat, tet, bary


def rasterize_tets(
    mesh: Mesh, affine: np.ndarray, shape: tuple[int, int, int], progress: Progress | None = None,
    chunk: int = 200_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxels of a grid whose centres lie inside tetrahedra.

    Barycentric coordinates are evaluated in float32 with a 1e-6 tolerance; a voxel inside
    several tets (on a shared face) keeps the first tet in the order (tet // chunk, size of
    the tet's voxel box, tet index), as the earlier chunked numpy version did.

    Args:
        affine: 4x4 voxel -> world mm of the grid. shape: grid shape.

    Returns:
        flat: (V,) flat voxel indices (C order) inside the mesh, ascending; tet: (V,)
        containing tet; bary: (V, 4) float32 barycentric coordinates.
    """
    progress = ensure_progress(progress)
    progress.update(0.0, "voxelizing")
    from navigator.fem.recovery_kernels import morton_node_order, renumber_tets

    inv = np.linalg.inv(affine)
    ijk_nodes = mesh.nodes @ inv[:3, :3].T + inv[:3, 3]
    # renumbered so that neighbouring tets are close in memory (the loops are memory bound)
    node_perm, new_id = morton_node_order(mesh.nodes)
    tet_perm, tets_l = renumber_tets(np.ascontiguousarray(mesh.tetrahedra, dtype=np.int64), new_id)
    flat, tet, bary = _rasterize_kernel(np.ascontiguousarray(ijk_nodes[node_perm]), tets_l, tet_perm,
                                        np.asarray(shape, np.int64), int(chunk))
    progress.update(1.0, "voxelized")
    return flat, tet, bary


@nb.njit(cache=True, parallel=True, nogil=True)
def fill_voxels(flat: np.ndarray, tet: np.ndarray, bary: np.ndarray, tets: np.ndarray, tet_values: np.ndarray,
                node_values: np.ndarray, tet_grid: np.ndarray, node_grid: np.ndarray) -> None:
    """Scatter sampled values into flat float32 grids (zero elsewhere, as allocated by the caller):
    ``tet_grid[flat[j], c] = tet_values[tet[j], c]`` (piecewise-constant fields) and
    ``node_grid[flat[j]] = sum_k node_values[tets[tet[j], k]] * bary[j, k]`` (P1 interpolation,
    summed in corner order in float64)."""
    n = flat.shape[0]
    C = tet_values.shape[1]
    interp = node_values.shape[0] > 0
    for j in nb.prange(n):
        t = tet[j]
        v = flat[j]
        for c in range(C):
            tet_grid[v, c] = np.float32(tet_values[t, c])
        if interp:
            s = node_values[tets[t, 0]] * np.float64(bary[j, 0])
            for k in range(1, 4):
                s += node_values[tets[t, k]] * np.float64(bary[j, k])
            node_grid[v] = np.float32(s)


def bbox_grid(mesh: Mesh, spacing_mm: float = 1.0, margin_mm: float = 2.0) -> tuple[np.ndarray, tuple[int, int, int]]:
    """An axis-aligned RAS grid (affine, shape) covering the mesh bounding box."""
    lo = mesh.nodes.min(axis=0) - margin_mm
    hi = mesh.nodes.max(axis=0) + margin_mm
    shape = tuple(int(np.ceil((h - l) / spacing_mm)) + 1 for l, h in zip(lo, hi))
    affine = np.eye(4)
    affine[:3, :3] *= spacing_mm
    affine[:3, 3] = lo
    return affine, shape  # type: ignore[return-value]
