"""Collision-free coil placement: the casing kept at the coil-scalp distance at its closest point.

The scalp's signed distance (mm; positive outside the head) is sampled once on a lattice
around the search region (:class:`ScalpDistanceField`: the distance to dense points on the
scalp triangles, the sign from their face normals). A candidate placement is a coil
orientation R and a reference position t (the coil centre ``distance`` mm along the scalp
normal, as :func:`navigator.tms.pose.place_coil` puts it); the coil is then moved along its own
axis (outward = -z, the "lift"; negative = towards the head) until the minimum signed distance
of its casing points equals ``distance``: the casing touches the distance shell at its closest
point instead of only at the centre. Candidates for which no lift within ``max_lift_mm``
reaches it (e.g. the casing cannot clear an ear within that range) are *not placed*: reported,
never chosen. The compiled secant solve is :func:`navigator.optimize.kernels.casing_lifts`.

Casing points: the coil's casing surfaces (:func:`navigator.tms.casing.coil_casing`: the model's
own, or an outline from the windings when it has none) sampled every ``spacing_mm``. The
placement of the final pose is re-checked with points every 1 mm and the exact distance to the
scalp triangles (:func:`exact_clearance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface
from navigator.tms.casing import coil_casing, max_radius, surface_samples, thin_points

FAR_MM = 1e3


@dataclass
class ScalpDistanceField:
    """Signed distance to the scalp (mm, > 0 outside) on a lattice in a local frame.

    Lattice coordinates of a world point p are ``A @ p + b`` (``A = axes.T / h``); values in
    ``sdf`` (nx, ny, nz).
    """

    sdf: np.ndarray
    A: np.ndarray
    b: np.ndarray
    h: float

    @classmethod
    def build(cls, scalp: Surface, origin: np.ndarray, axes: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              h_mm: float = 2.0, sample_mm: float = 0.7, band_mm: float = 25.0) -> ScalpDistanceField:
        """Signed distance on the box ``lo..hi`` (mm, in the frame ``axes`` (3x3 columns) at
        ``origin``). Distances are to points on the scalp triangles at most ``sample_mm`` apart
        (error below ``sample_mm**2 / (8 d)`` at distance d, 0.015 mm at 4 mm), exact up to
        ``band_mm``; farther nodes get +-``band_mm``, the sign of the band around their region."""
        from scipy import ndimage
        from scipy.spatial import cKDTree

        h = float(h_mm)
        lo = np.asarray(lo, float)
        hi = np.asarray(hi, float)
        n = np.ceil((hi - lo) / h).astype(int) + 1
        axes = np.asarray(axes, float)
        # the scalp triangles near the box (in the local frame)
        loc = (scalp.vertices - origin) @ axes
        reach = band_mm + 3 * h
        near_v = ((loc >= lo - reach) & (loc <= hi + reach)).all(axis=1)
        faces = scalp.faces[near_v[scalp.faces].any(axis=1)]
        if len(faces) == 0:
            raise NavigatorError("no scalp surface near the coil search region")
        sub = Surface(scalp.vertices, faces)
        fn = sub.face_normals()
        ftree = cKDTree(scalp.vertices[faces].mean(axis=1))
        vtree = cKDTree(scalp.vertices)
        vn = scalp.vertex_normals()

        def samples(spacing: float) -> tuple[np.ndarray, np.ndarray]:
            # points on the triangles and their normals: the face's, the vertex normal at vertices
            pts = surface_samples([sub], spacing)
            _, fi = ftree.query(pts, workers=-1)
            nrm = fn[fi]
            dv, vi = vtree.query(pts, workers=-1)
            at_v = dv < 1e-6
            nrm[at_v] = vn[vi[at_v]]
            return pts, nrm

        gi, gj, gk = np.meshgrid(np.arange(n[0]), np.arange(n[1]), np.arange(n[2]), indexing="ij")
        world = origin + (lo + np.stack([gi.ravel(), gj.ravel(), gk.ravel()], 1) * h) @ axes.T
        del gi, gj, gk
        sdf = np.full(len(world), np.nan)
        # two levels: 3 mm samples for the whole band (error <= 9/(8 d) mm: 0.19 mm at 6 mm, less
        # farther), ``sample_mm`` samples for the nodes within 6 mm (the distances of contacts)
        near_mm = 6.0
        for spacing, sel_max, bound in ((3.0, None, band_mm), (sample_mm, near_mm, near_mm + 2.0)):
            pts, nrm = samples(spacing)
            sel = np.arange(len(world)) if sel_max is None else np.flatnonzero(np.abs(sdf) < sel_max)
            d, idx = cKDTree(pts).query(world[sel], workers=-1, distance_upper_bound=bound)
            ok = np.isfinite(d)
            ib, d, idx = sel[ok], d[ok], idx[ok]
            sign = np.einsum("ij,ij->i", world[ib] - pts[idx], nrm[idx])
            sdf[ib] = np.where(sign < 0, -d, d)
        band = np.isfinite(sdf)
        del world
        sdf = sdf.reshape(tuple(n))
        # nodes beyond the band: +-band_mm, the sign of the band nodes next to their region
        far = ~band.reshape(tuple(n))
        if far.any():
            lab, nlab = ndimage.label(far)
            ring = ndimage.binary_dilation(far) & ~far
            near_lab = ndimage.grey_dilation(lab, size=(3, 3, 3))
            for r in range(1, nlab + 1):
                edge = ring & (near_lab == r)
                sgn = np.sign(np.nanmean(sdf[edge])) if edge.any() else 1.0
                sdf[lab == r] = band_mm * (sgn if sgn != 0 else 1.0)
        A = axes.T / h
        b = -(A @ origin) - lo / h
        return cls(np.ascontiguousarray(sdf), np.ascontiguousarray(A), b, h)

    def sample(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (mm) at (N, 3) world points (trilinear; FAR_MM outside the lattice)."""
        from scipy.ndimage import map_coordinates

        g = np.atleast_2d(points) @ self.A.T + self.b
        return map_coordinates(self.sdf, g.T, order=1, mode="constant", cval=FAR_MM)


@dataclass
class CasingModel:
    """A coil's casing as points for the collision check (coil frame, mm).

    Attributes:
        coarse: points every ~``spacing`` mm (the search). fine: points every ~1 mm (final check).
        source: "model" (the coil's casing) or "outline" (built from the windings).
        surfaces: the casing surfaces (coil frame).
    """

    coarse: np.ndarray
    fine: np.ndarray
    source: str
    surfaces: list[Surface]
    group_start: np.ndarray = None  # type: ignore[assignment]
    group_centres: np.ndarray = None  # type: ignore[assignment]
    group_radii: np.ndarray = None  # type: ignore[assignment]

    @classmethod
    def of(cls, coil, spacing_mm: float = 3.0, group_mm: float = 10.0) -> CasingModel:
        """Casing points of ``coil``; the coarse points sorted into groups (``group_mm`` cubes)
        with a bounding ball each, for the pruned minimum of :func:`navigator.optimize.kernels._grouped_min`.
        The group size only changes the speed (the pruning is exact): 10 mm placed the demo
        phantom's 1,261,800 placements in 10.8 s against 13.6 s (15 mm) and 16.6 s (6 mm: more
        group centres to sample than it prunes) on the idle 2-core machine, same lifts."""
        surfaces, source = coil_casing(coil)
        fine = surface_samples(surfaces, 1.0)
        coarse = thin_points(surface_samples(surfaces, spacing_mm), spacing_mm)
        # parts of the casing facing away from the head (outward normal within 45 degrees of -z,
        # e.g. the top face) are never the first to touch it; the final check uses every point
        facing = _facing_head(surfaces, coarse)
        coarse = coarse[facing] if facing.any() else coarse
        key = np.floor(coarse / group_mm).astype(np.int64)
        _, inv = np.unique(key, axis=0, return_inverse=True)
        inv = inv.ravel()
        order = np.argsort(inv, kind="stable")
        coarse = coarse[order]
        inv = inv[order]
        start = np.searchsorted(inv, np.arange(inv.max() + 2))
        cen = np.array([coarse[start[g]:start[g + 1]].mean(axis=0) for g in range(len(start) - 1)])
        rad = np.array([np.linalg.norm(coarse[start[g]:start[g + 1]] - cen[g], axis=1).max() for g in range(len(cen))])
        return cls(np.ascontiguousarray(coarse), np.ascontiguousarray(fine), source, surfaces,
                   start.astype(np.int64), np.ascontiguousarray(cen), rad + 1e-9)

    @property
    def radius_mm(self) -> float:
        return max_radius(self.fine)

    @property
    def z_range(self) -> tuple[float, float]:
        return float(self.fine[:, 2].min()), float(self.fine[:, 2].max())


def _facing_head(surfaces: list[Surface], points: np.ndarray) -> np.ndarray:
    """(N,) True where the nearest casing face's outward normal does not point away from the
    head (n_z > -0.7; coil frame z into the head)."""
    from scipy.spatial import cKDTree

    cen = np.concatenate([s.vertices[s.faces].mean(axis=1) for s in surfaces])
    nz = np.concatenate([s.face_normals()[:, 2] for s in surfaces])
    _, idx = cKDTree(cen).query(points)
    # points on edges between a top face and a side wall: keep (the rim can touch)
    near = cKDTree(cen).query_ball_point(points, r=2.0)
    return np.array([nz[i] > -0.7 or (nz[n] > -0.7).any() for i, n in zip(idx, near)])


def search_field(scalp: Surface, entry: np.ndarray, normal: np.ndarray, casing: CasingModel, *, radius_mm: float,
                 max_lift_mm: float, tilt_deg: float = 0.0, h_mm: float = 2.0) -> ScalpDistanceField:
    """A :class:`ScalpDistanceField` covering every casing point of placements whose centres lie
    within ``radius_mm`` of ``entry`` (outward ``normal``), lifted by up to ``max_lift_mm`` and
    tilted by up to ``tilt_deg``."""
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    ref = np.array([0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = ref - (ref @ n) * n
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    axes = np.column_stack([e1, e2, n])
    rc = casing.radius_mm
    zmin, zmax = casing.z_range
    # casing points over all placements stay in a slab around the tangent plane; its depth grows
    # with the normals' turn across the search disc and the tilt (sagitta of the casing radius)
    turn = np.radians(min(90.0, np.degrees(radius_mm / 60.0) + tilt_deg + 5.0))
    half = radius_mm + rc + 10.0
    below = rc * np.sin(turn) + zmax + max_lift_mm + 15.0
    above = rc * np.sin(turn) + (-zmin) + max_lift_mm + 15.0 + 10.0
    return ScalpDistanceField.build(scalp, np.asarray(entry, float), axes, np.array([-half, -half, -below]),
                                    np.array([half, half, above]), h_mm=h_mm)


def place_lifts(field: ScalpDistanceField, casing: CasingModel, rotations: np.ndarray, translations: np.ndarray,
                distance_mm: float, *, tol_mm: float = 0.05, max_lift_mm: float = 20.0):
    """Lifts (P,) mm, minimum distances (P,) and placed (P,) for poses (see the module docstring)."""
    from navigator.optimize.kernels import casing_lifts_grouped

    R = np.ascontiguousarray(rotations, float).reshape(-1, 3, 3)
    T = np.ascontiguousarray(translations, float).reshape(-1, 3)
    return casing_lifts_grouped(field.sdf, field.A, field.b, R, T, casing.coarse, casing.group_start,
                                casing.group_centres, casing.group_radii, float(distance_mm), float(tol_mm),
                                float(max_lift_mm), FAR_MM)


def place_lifts_grid(field: ScalpDistanceField, casing: CasingModel, frames: np.ndarray, centres: np.ndarray,
                     Q: np.ndarray, distance_mm: float, *, tol_mm: float = 0.05, max_lift_mm: float = 20.0):
    """:func:`place_lifts` for every centre (frames (C, 3, 3)) x angle (Q (A, 3, 3)): (C, A) arrays."""
    from navigator.optimize.kernels import casing_lifts_grid_grouped

    return casing_lifts_grid_grouped(field.sdf, field.A, field.b, np.ascontiguousarray(frames, float),
                                     np.ascontiguousarray(centres, float), np.ascontiguousarray(Q, float),
                                     casing.coarse, casing.group_start, casing.group_centres, casing.group_radii,
                                     float(distance_mm), float(tol_mm), float(max_lift_mm), FAR_MM)


_QUERIES: dict[int, tuple[Surface, object, float]] = {}


def _query(scalp: Surface):
    """A cached closest-point query on ``scalp`` and its 99th-percentile edge length (mm)."""
    from navigator.targets.geometry import SurfaceQuery

    hit = _QUERIES.get(id(scalp))
    if hit is None or hit[0] is not scalp:
        tri = scalp.vertices[scalp.faces]
        edge = float(np.percentile(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), 99))
        _QUERIES.clear()
        hit = (scalp, SurfaceQuery(scalp), edge)
        _QUERIES[id(scalp)] = hit
    return hit[1], hit[2]


def exact_clearance(scalp: Surface, points_world: np.ndarray, k: int = 12, max_points: int = 1500) -> float:
    """Minimum signed distance (mm, > 0 outside) of world points to the scalp triangles (exact
    closest points; the sign from the closest face's normal). Only the points whose nearest
    scalp vertex is within the longest scalp edge of the nearest one can hold the minimum (at
    most ``max_points`` of them, the nearest)."""
    q, edge = _query(scalp)
    d_near, _ = q.tree.query(points_world)
    sel = np.flatnonzero(d_near <= d_near.min() + edge)
    if len(sel) > max_points:
        sel = sel[np.argsort(d_near[sel])[:max_points]]
    cp, face = q.closest_point(points_world[sel], k=k)
    fn = scalp.face_normals()[face]
    diff = points_world[sel] - cp
    dist = np.linalg.norm(diff, axis=1)
    sign = np.sign(np.einsum("ij,ij->i", diff, fn))
    return float((np.where(sign < 0, -dist, dist)).min())
