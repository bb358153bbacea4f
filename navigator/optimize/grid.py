"""Candidate coil placements on the scalp around a target: centres x handle angles.

Centres: a square grid of ``spacing_mm`` in the scalp's tangent plane at the target's scalp
point, kept within ``radius_mm``, each projected onto the scalp (closest point) and moved
``distance_mm`` outward along the smoothed scalp normal there (as
:func:`navigator.tms.pose.place_coil` does). Angles: handle angles in degrees with the
convention of :func:`navigator.tms.pose.handle_from_angle` (0 = posterior, 45 = posterior and
lateral for the target's hemisphere, 90 = lateral). Poses follow the coil frame of
:mod:`navigator.tms.coil` (z into the head, y handle); coordinates are world (subject RAS) mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface
from navigator.tms.pose import (
    DEFAULT_DISTANCE_MM,
    NORMAL_SMOOTHING_MM,
    handle_from_angle,
    pose_matrix,
    pose_rotations,
    project_to_surface,
    smoothed_normal,
)


@dataclass
class PlacementGrid:
    """Candidate placements.

    Attributes:
        centres: (C, 3) coil centres, mm (``distance_mm`` outside the scalp).
        scalp_points: (C, 3) scalp points under the centres, mm.
        normals: (C, 3) outward smoothed scalp normals (unit).
        angles_deg: (A,) handle angles, degrees.
        left: hemisphere used for the angle convention.
        offsets_mm: (C, 2) planned in-plane offsets of each centre from the target's scalp point.
    """

    centres: np.ndarray
    scalp_points: np.ndarray
    normals: np.ndarray
    angles_deg: np.ndarray
    left: bool
    offsets_mm: np.ndarray

    @property
    def n_centres(self) -> int:
        return len(self.centres)

    @property
    def n_angles(self) -> int:
        return len(self.angles_deg)

    @property
    def n_placements(self) -> int:
        return self.n_centres * self.n_angles

    def pose(self, i: int, a: int) -> np.ndarray:
        """4x4 coil pose (world mm) of centre ``i`` and angle index ``a``."""
        h = handle_from_angle(self.normals[i], float(self.angles_deg[a]), self.left)
        return pose_matrix(self.centres[i], self.normals[i], h)

    def rotations(self) -> np.ndarray:
        """(C, A, 3, 3) rotation parts of all poses (columns x, y = handle, z = into the head)."""
        return pose_rotations(self.normals, self.angles_deg, self.left)

    def centre_frames(self) -> np.ndarray:
        """(C, 3, 3) frame of angle 0 at each centre (the angle-a frame is this times Rz)."""
        return pose_rotations(self.normals, np.zeros(1), self.left)[:, 0]


def angle_list(angle_step_deg: float = 10.0, angles_deg: list[float] | None = None) -> np.ndarray:
    """Handle angles: explicit ``angles_deg`` or a full circle in ``angle_step_deg`` steps."""
    if angles_deg is not None:
        a = np.asarray(angles_deg, float).reshape(-1)
        if len(a) == 0:
            raise NavigatorError("no handle angles given")
        return a
    if not (0 < angle_step_deg <= 360):
        raise NavigatorError(f"angle step must be in (0, 360] degrees, got {angle_step_deg}")
    n = max(1, math.ceil(360.0 / angle_step_deg - 1e-9))
    return np.arange(n) * (360.0 / n)


def in_plane_offsets(radius_mm: float, spacing_mm: float) -> np.ndarray:
    """(C, 2) square-grid offsets of ``spacing_mm`` within ``radius_mm`` (always includes 0)."""
    if radius_mm < 0 or spacing_mm <= 0:
        raise NavigatorError("search radius must be >= 0 and spacing > 0 mm")
    n = math.floor(radius_mm / spacing_mm + 1e-9)
    k = np.arange(-n, n + 1) * spacing_mm
    u, v = np.meshgrid(k, k, indexing="ij")
    uv = np.stack([u.ravel(), v.ravel()], 1)
    return uv[np.linalg.norm(uv, axis=1) <= radius_mm + 1e-9]


def placement_grid(scalp: Surface, scalp_point: np.ndarray, *, radius_mm: float = 20.0, spacing_mm: float = 2.0,
                   angle_step_deg: float = 10.0, angles_deg: list[float] | None = None,
                   distance_mm: float = DEFAULT_DISTANCE_MM, normal_radius_mm: float = NORMAL_SMOOTHING_MM,
                   offsets_mm: np.ndarray | None = None) -> PlacementGrid:
    """Build the candidate placements around ``scalp_point`` (world mm); see the module docstring."""
    p0 = project_to_surface(scalp, np.asarray(scalp_point, float))
    n0 = smoothed_normal(scalp, p0, normal_radius_mm)
    ref = np.array([0.0, 0.0, 1.0]) if abs(n0[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = ref - (ref @ n0) * n0
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n0, e1)
    uv = in_plane_offsets(radius_mm, spacing_mm) if offsets_mm is None else np.asarray(offsets_mm, float).reshape(-1, 2)
    pts = np.empty((len(uv), 3))
    normals = np.empty((len(uv), 3))
    # faces once, then the same Gaussian-weighted normal as tms.pose.smoothed_normal
    tri = scalp.vertices[scalp.faces]
    cen = tri.mean(axis=1)
    n2a = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    from scipy.spatial import cKDTree

    tree = cKDTree(cen)
    moved = (uv != 0).any(axis=1)
    pts[~moved] = p0
    if moved.any():
        from navigator.targets.geometry import SurfaceQuery

        pts[moved] = SurfaceQuery(scalp).closest_point(
            p0 + uv[moved, :1] * e1 + uv[moved, 1:] * e2 + 5.0 * n0, k=16)[0]
    for i, q in enumerate(pts):
        idx = np.asarray(tree.query_ball_point(q, normal_radius_mm), dtype=np.int64)
        if len(idx) == 0:
            normals[i] = smoothed_normal(scalp, q, normal_radius_mm)
            continue
        d = np.linalg.norm(cen[idx] - q, axis=1)
        w = np.exp(-0.5 * (d / max(normal_radius_mm / 2.0, 1e-6)) ** 2)
        n = (n2a[idx] * w[:, None]).sum(axis=0)
        normals[i] = n / np.linalg.norm(n)
    midline_x = float(scalp.vertices[:, 0].mean())
    return PlacementGrid(centres=pts + distance_mm * normals, scalp_points=pts, normals=normals,
                         angles_deg=angle_list(angle_step_deg, angles_deg), left=bool(p0[0] <= midline_x),
                         offsets_mm=uv)
