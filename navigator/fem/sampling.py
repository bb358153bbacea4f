"""Sampling piecewise-constant / P1 fields of a tetrahedral mesh at points and on voxel grids.

Point location uses barycentric coordinates; grids are filled by rasterizing each
tetrahedron's bounding box of voxel centres (exact, O(number of tets)).
"""

from __future__ import annotations

import numpy as np

from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress


def _barycentric(p: np.ndarray, tet_pts: np.ndarray) -> np.ndarray:
    """(P, 4) barycentric coordinates of points p (P, 3) in tets (P, 4, 3)."""
    T = np.transpose(tet_pts[:, 1:] - tet_pts[:, :1], (0, 2, 1))  # columns = edges
    lam = np.linalg.solve(T, (p - tet_pts[:, 0])[..., None])[..., 0]
    return np.concatenate([1.0 - lam.sum(axis=1, keepdims=True), lam], axis=1)


def locate_points(
    mesh: Mesh, points: np.ndarray, tet_mask: np.ndarray | None = None, k: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """Tetrahedron containing each point and its barycentric coordinates.

    Args:
        points: (P, 3) mm. tet_mask: optional (M,) bool restricting the candidate tets.
        k: nearest tet centroids tried per point.

    Returns:
        tet: (P,) index into the mesh's tets (the nearest-centroid candidate when no candidate
        contains the point, e.g. outside the mesh); bary: (P, 4) barycentric coordinates
        (clipped to [0, 1] and renormalised for points outside).
    """
    from scipy.spatial import cKDTree

    pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
    ids = np.arange(mesh.n_tets) if tet_mask is None else np.flatnonzero(tet_mask)
    cent = mesh.nodes[mesh.tetrahedra[ids]].mean(axis=1)
    tree = cKDTree(cent)
    k = int(min(k, len(ids)))
    _, cand = tree.query(pts, k=k)
    cand = cand.reshape(len(pts), k)
    best_tet = ids[cand[:, 0]]
    best_score = np.full(len(pts), -np.inf)
    best_bary = np.zeros((len(pts), 4))
    for j in range(k):
        t = ids[cand[:, j]]
        bary = _barycentric(pts, mesh.nodes[mesh.tetrahedra[t]])
        score = bary.min(axis=1)
        better = score > best_score + 1e-12
        best_score[better], best_tet[better], best_bary[better] = score[better], t[better], bary[better]
        if (best_score >= -1e-9).all():
            break
    b = np.clip(best_bary, 0.0, None)
    b /= b.sum(axis=1, keepdims=True)
    return best_tet, b


def rasterize_tets(
    mesh: Mesh, affine: np.ndarray, shape: tuple[int, int, int], progress: Progress | None = None,
    chunk: int = 200_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxels of a grid whose centres lie inside tetrahedra.

    Args:
        affine: 4x4 voxel -> world mm of the grid. shape: grid shape.

    Returns:
        flat: (V,) flat voxel indices (C order) inside the mesh; tet: (V,) containing tet;
        bary: (V, 4) float32 barycentric coordinates.
    """
    progress = ensure_progress(progress)
    inv = np.linalg.inv(affine)
    ijk_nodes = mesh.nodes @ inv[:3, :3].T + inv[:3, 3]
    tets = mesh.tetrahedra
    M = len(tets)
    shape_a = np.array(shape)
    flat_all, tet_all, bary_all = [], [], []
    for s in range(0, M, chunk):
        progress.update(s / max(M, 1), "voxelizing")
        tid = np.arange(s, min(M, s + chunk))
        p = ijk_nodes[tets[tid]]  # (C, 4, 3) voxel space
        lo = np.ceil(p.min(axis=1) - 1e-9).astype(np.int64)
        hi = np.floor(p.max(axis=1) + 1e-9).astype(np.int64)
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, shape_a - 1)
        cnt = hi - lo + 1
        ok = (cnt > 0).all(axis=1)
        tid, p, lo, cnt = tid[ok], p[ok], lo[ok], cnt[ok]
        if len(tid) == 0:
            continue
        T = np.transpose(p[:, 1:] - p[:, :1], (0, 2, 1))
        det = np.linalg.det(T)
        good = np.abs(det) > 1e-12
        tid, p, lo, cnt, T = tid[good], p[good], lo[good], cnt[good], T[good]
        Tinv = np.linalg.inv(T)
        keys = cnt[:, 0] * 1_000_000 + cnt[:, 1] * 1000 + cnt[:, 2]
        for key in np.unique(keys):
            sel = np.flatnonzero(keys == key)
            cx, cy, cz = cnt[sel[0]]
            off = np.stack(np.meshgrid(np.arange(cx), np.arange(cy), np.arange(cz), indexing="ij"), -1).reshape(-1, 3)
            for s2 in range(0, len(sel), max(1, 2_000_000 // len(off))):
                ss = sel[s2 : s2 + max(1, 2_000_000 // len(off))]
                q = lo[ss, None, :] + off[None]  # (S, O, 3) integer voxel indices
                d = (q - p[ss, None, 0]).astype(np.float32)
                Ti = Tinv[ss].astype(np.float32)
                lam = [Ti[:, i, 0, None] * d[..., 0] + Ti[:, i, 1, None] * d[..., 1] + Ti[:, i, 2, None] * d[..., 2]
                       for i in range(3)]
                eps = np.float32(1e-6)
                inside = (lam[0] >= -eps) & (lam[1] >= -eps) & (lam[2] >= -eps) & (lam[0] + lam[1] + lam[2] <= 1 + eps)
                si, oi = np.nonzero(inside)
                qq = q[si, oi]
                flat_all.append(np.ravel_multi_index(qq.T, shape))
                tet_all.append(tid[ss][si])
                l3 = np.stack([lam[0][si, oi], lam[1][si, oi], lam[2][si, oi]], axis=1)
                bary_all.append(np.concatenate([1 - l3.sum(axis=1, keepdims=True), l3], axis=1).astype(np.float32))
    if not flat_all:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4), np.float32)
    flat = np.concatenate(flat_all)
    tet = np.concatenate(tet_all)
    bary = np.concatenate(bary_all)
    flat, first = np.unique(flat, return_index=True)  # voxel on a shared face: keep one tet
    progress.update(1.0, "voxelized")
    return flat, tet[first], bary[first]


def bbox_grid(mesh: Mesh, spacing_mm: float = 1.0, margin_mm: float = 2.0) -> tuple[np.ndarray, tuple[int, int, int]]:
    """An axis-aligned RAS grid (affine, shape) covering the mesh bounding box."""
    lo = mesh.nodes.min(axis=0) - margin_mm
    hi = mesh.nodes.max(axis=0) + margin_mm
    shape = tuple(int(np.ceil((h - l) / spacing_mm)) + 1 for l, h in zip(lo, hi))
    affine = np.eye(4)
    affine[:3, :3] *= spacing_mm
    affine[:3, 3] = lo
    return affine, shape  # type: ignore[return-value]
