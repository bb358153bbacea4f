"""Coil casings for the scalp collision check: the model's own casing, or an outline from the windings.

A coil file may come without a casing (``.ccd`` files never have one; ``.tcd`` files may).
:func:`coil_casing` then builds a plausible housing from the winding extent: the convex
outline of the sources seen along the coil axis, widened by ``margin_mm`` (the casing wall and
potting around the windings; 5 mm as the bundled library coils), extruded from the coil's
bottom face (z = 0, or just below the lowest source if sources reach below it) up to
``top_mm`` above the highest source. Coil frame as :mod:`navigator.tms.coil` (z into the head,
mm). The outline is convex, so it covers the real housing of flat figure-of-eight and circular
coils with some excess between the wings, and is conservative for the collision check.
"""

from __future__ import annotations

import math

import numpy as np

from navigator.core.surface import Surface
from navigator.tms.coil import Coil

OUTLINE_MARGIN_MM = 5.0
OUTLINE_TOP_MM = 5.0


def outline_casing(coil: Coil, margin_mm: float = OUTLINE_MARGIN_MM, top_mm: float = OUTLINE_TOP_MM,
                   arc_step_deg: float = 10.0) -> Surface:
    """A closed prism (outward normals) around the coil's sources; see the module docstring."""
    from scipy.spatial import ConvexHull

    pts = coil.source_points()
    if coil.grid is not None and len(pts) == 0:
        # a sampled-potential coil: the central part of the grid where the potential is strong
        g = coil.grid
        mag = np.linalg.norm(g.data, axis=-1)
        ijk = np.argwhere(mag >= 0.5 * mag.max())
        pts = ijk @ g.affine[:3, :3].T + g.affine[:3, 3]
    if len(pts) == 0:
        raise ValueError(f"coil {coil.name!r} has no sources to outline")
    xy = pts[:, :2]
    # Minkowski sum of the outline with a disc of margin_mm: hull of the vertices' circles
    hull_xy = xy[ConvexHull(xy).vertices] if len(xy) >= 3 and np.ptp(xy, axis=0).min() > 1e-6 else xy
    t = np.radians(np.arange(0.0, 360.0, arc_step_deg))
    circ = np.stack([np.cos(t), np.sin(t)], 1) * margin_mm
    ring = (hull_xy[:, None, :] + circ[None]).reshape(-1, 2)
    ring = ring[ConvexHull(ring).vertices]  # counter-clockwise seen from +z
    z_bottom = max(0.0, float(pts[:, 2].max()) + 1.0)
    z_top = float(pts[:, 2].min()) - top_mm
    return prism(ring, z_bottom, z_top)


def prism(ring_xy: np.ndarray, z_bottom: float, z_top: float) -> Surface:
    """Closed prism over a convex counter-clockwise (seen from +z) polygon between two heights;
    caps are fans from the polygon's centroid; normals point outward."""
    n = len(ring_xy)
    c = ring_xy.mean(axis=0)
    verts = np.concatenate([np.column_stack([ring_xy, np.full(n, z_bottom)]),
                            np.column_stack([ring_xy, np.full(n, z_top)]),
                            [[c[0], c[1], z_bottom], [c[0], c[1], z_top]]])
    faces = []
    cb, ct = 2 * n, 2 * n + 1
    up = z_bottom > z_top  # the bottom face lies at larger z
    for i in range(n):
        j = (i + 1) % n
        a, b, a2, b2 = i, j, n + i, n + j
        side = [[a, b, b2], [a, b2, a2]]
        faces.extend(side if not up else [[f[0], f[2], f[1]] for f in side])
        # bottom cap normal along +z when the bottom is the larger z
        faces.append([cb, a, b] if up else [cb, b, a])
        faces.append([ct, b2, a2] if up else [ct, a2, b2])
    return Surface(verts, np.asarray(faces))


def coil_casing(coil: Coil) -> tuple[list[Surface], str]:
    """The casing surfaces used for the collision check and where they come from
    (``"model"``: the coil's own casing, ``"outline"``: :func:`outline_casing`)."""
    if coil.casing:
        return list(coil.casing), "model"
    return [outline_casing(coil)], "outline"


def surface_samples(surfaces: list[Surface], spacing_mm: float) -> np.ndarray:
    """(N, 3) points on the surfaces at most about ``spacing_mm`` apart (vertices, and a
    barycentric grid on every triangle larger than the spacing)."""
    out = []
    for s in surfaces:
        tri = s.vertices[s.faces]
        out.append(s.vertices)
        edge = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
        nsub = np.maximum(1, np.ceil(edge / spacing_mm).astype(int))
        for n in np.unique(nsub):
            if n == 1:
                continue
            sel = tri[nsub == n]
            i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
            keep = (i + j) <= n
            u = i[keep] / n
            v = j[keep] / n
            w = 1.0 - u - v
            out.append((sel[:, None, 0] * w[None, :, None] + sel[:, None, 1] * u[None, :, None]
                        + sel[:, None, 2] * v[None, :, None]).reshape(-1, 3))
    pts = np.concatenate(out)
    # drop duplicates on shared edges (to 1e-3 mm)
    _, idx = np.unique(np.round(pts, 3), axis=0, return_index=True)
    return pts[np.sort(idx)]


def thin_points(points: np.ndarray, spacing_mm: float) -> np.ndarray:
    """A subset of (N, 3) points with one point per ``spacing_mm`` voxel (the first)."""
    key = np.floor(points / spacing_mm).astype(np.int64)
    _, idx = np.unique(key, axis=0, return_index=True)
    return points[np.sort(idx)]


def max_radius(points: np.ndarray) -> float:
    """Largest distance of points from the coil axis (z), mm."""
    return float(math.sqrt(float((points[:, :2] ** 2).sum(axis=1).max()))) if len(points) else 0.0
