"""Coil placement: target resolution, scalp projection, handle direction and the 4x4 pose.

Coil frame (see :mod:`navigator.tms.coil`): z into the head, y along the handle,
x = y cross z, origin at the centre of the coil's bottom face. A pose is the 4x4 matrix
whose columns are [x y z centre] in world (subject scanner RAS) millimetres.

Placement from a target: the target point is projected onto the scalp (closest point); the
coil normal is the scalp normal smoothed over ``normal_radius`` mm (area-weighted face
normals); the coil centre sits ``distance`` mm (default 4) outside the scalp along that
normal. The handle lies in the tangent plane:

* ``handle_angle`` (degrees, default 45): measured in the tangent plane from the *posterior*
  direction (world -y projected onto the plane) towards the *lateral* direction of the target's
  hemisphere (world -x for a left target, +x for a right one, projected and made orthogonal).
  So 0 points straight back, 45 (default, the usual DLPFC convention) points back and outwards
  (towards -x, -y for a left target; +x, -y for a right one), 90 points laterally, negative values
  point medially. The hemisphere is the side of the head's mid-sagittal plane (x of the scalp
  centroid) the scalp point lies on; points on the plane count as left.
  Where posterior is (nearly) normal to the scalp (occipital pole) world -z takes its place.
* ``handle_dir``: a world direction, projected onto the tangent plane.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface
from navigator.targets.head import Head

DEFAULT_DISTANCE_MM = 4.0
DEFAULT_HANDLE_ANGLE_DEG = 45.0
NORMAL_SMOOTHING_MM = 10.0


@dataclass
class CoilPlacement:
    """A resolved coil placement.

    Attributes:
        pose: 4x4 coil-to-world matrix, mm.
        target: (3,) the target point as resolved (scalp or cortex), world mm.
        scalp_point: (3,) the target's projection on the scalp, mm (None for explicit poses).
        normal: (3,) outward smoothed scalp normal (unit; None for explicit poses).
        handle: (3,) unit handle direction (pose column y).
        distance_mm: coil-scalp distance used (None for explicit poses).
        handle_angle_deg: the handle angle if the handle came from an angle.
        spec: how the placement was specified (for the record).
    """

    pose: np.ndarray
    target: np.ndarray | None
    scalp_point: np.ndarray | None = None
    normal: np.ndarray | None = None
    handle: np.ndarray | None = None
    distance_mm: float | None = None
    handle_angle_deg: float | None = None
    spec: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def lst(a):
            return None if a is None else np.asarray(a, float).tolist()

        return {
            "pose": lst(self.pose),
            "pose_convention": "columns [x y(handle) z(into head) centre], world RAS mm",
            "target": lst(self.target),
            "scalp_point": lst(self.scalp_point),
            "scalp_normal": lst(self.normal),
            "handle": lst(self.handle),
            "distance_mm": self.distance_mm,
            "handle_angle_deg": self.handle_angle_deg,
            "spec": self.spec,
        }


# ---------------------------------------------------------------------- scalp geometry
def project_to_surface(surface: Surface, point: np.ndarray, k: int = 16) -> np.ndarray:
    """Closest point on ``surface`` to ``point`` (3,), mm (among the faces of its ``k`` nearest vertices)."""
    from navigator.targets.geometry import SurfaceQuery

    return SurfaceQuery(surface).closest_point(np.asarray(point, dtype=np.float64).reshape(1, 3), k=k)[0][0]


def smoothed_normal(surface: Surface, point: np.ndarray, radius_mm: float = NORMAL_SMOOTHING_MM) -> np.ndarray:
    """Area-weighted mean outward face normal of the faces within ``radius_mm`` of ``point``."""
    p = surface.vertices[surface.faces]
    cen = p.mean(axis=1)
    n2a = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])  # length = 2 * area
    d = np.linalg.norm(cen - np.asarray(point, float), axis=1)
    sel = d <= radius_mm
    if not sel.any():
        sel = d <= d.min() + 1e-9
    w = np.exp(-0.5 * (d[sel] / max(radius_mm / 2.0, 1e-6)) ** 2)
    n = (n2a[sel] * w[:, None]).sum(axis=0)
    norm = np.linalg.norm(n)
    if norm == 0:
        raise NavigatorError("scalp normal undefined at the target (degenerate surface)")
    return n / norm


# ---------------------------------------------------------------------- handle and pose
def _tangent(v: np.ndarray, n: np.ndarray) -> np.ndarray:
    t = v - np.dot(v, n) * n
    return t


def handle_basis(normals: np.ndarray, left: bool) -> tuple[np.ndarray, np.ndarray]:
    """Posterior (angle 0) and lateral (angle 90) unit tangents at outward normals (N, 3).

    The handle at ``angle_deg`` is cos(angle) posterior + sin(angle) lateral (see the module
    docstring); both are in the tangent plane and orthogonal. Vectorized over the normals.
    """
    n = np.atleast_2d(np.asarray(normals, float))
    n = n / np.linalg.norm(n, axis=1, keepdims=True)

    def tangent(v: np.ndarray) -> np.ndarray:
        return v - (v * n).sum(axis=1, keepdims=True) * n

    post = tangent(np.broadcast_to([0.0, -1.0, 0.0], n.shape))
    weak = np.linalg.norm(post, axis=1) < 0.1
    if weak.any():
        post[weak] = tangent(np.broadcast_to([0.0, 0.0, -1.0], n.shape))[weak]
    post /= np.linalg.norm(post, axis=1, keepdims=True)
    lat_world = np.array([-1.0, 0.0, 0.0]) if left else np.array([1.0, 0.0, 0.0])
    lat = tangent(np.broadcast_to(lat_world, n.shape))
    lat -= (lat * post).sum(axis=1, keepdims=True) * post
    flat = np.linalg.norm(lat, axis=1) < 1e-6
    if flat.any():  # lateral normal to the scalp: use the in-plane perpendicular
        alt = np.cross(n[flat], post[flat]) * (1.0 if left else -1.0)
        alt[alt @ lat_world < 0] *= -1.0
        lat[flat] = alt
    lat /= np.linalg.norm(lat, axis=1, keepdims=True)
    return post, lat


def handle_from_angle(normal: np.ndarray, angle_deg: float, left: bool) -> np.ndarray:
    """Unit handle direction in the tangent plane for ``angle_deg`` (see the module docstring)."""
    post, lat = handle_basis(np.asarray(normal, float).reshape(1, 3), left)
    a = math.radians(angle_deg)
    h = math.cos(a) * post[0] + math.sin(a) * lat[0]
    return h / np.linalg.norm(h)


def pose_rotations(normals: np.ndarray, angles_deg: np.ndarray, left: bool) -> np.ndarray:
    """(N, A, 3, 3) rotations of :func:`pose_matrix` for every normal and handle angle
    (columns x, y = handle, z = into the head), vectorized."""
    n = np.atleast_2d(np.asarray(normals, float))
    post, lat = handle_basis(n, left)
    a = np.radians(np.asarray(angles_deg, float).reshape(-1))
    z = -n / np.linalg.norm(n, axis=1, keepdims=True)
    y = np.cos(a)[None, :, None] * post[:, None] + np.sin(a)[None, :, None] * lat[:, None]
    zz = np.broadcast_to(z[:, None], y.shape)
    y = y - (y * zz).sum(axis=-1, keepdims=True) * zz
    y /= np.linalg.norm(y, axis=-1, keepdims=True)
    return np.stack([np.cross(y, zz), y, zz], axis=-1)


def pose_matrix(centre: np.ndarray, normal_out: np.ndarray, handle: np.ndarray) -> np.ndarray:
    """4x4 pose from the coil centre (mm), the outward scalp normal and a handle direction."""
    z = -np.asarray(normal_out, float)
    z /= np.linalg.norm(z)
    y = _tangent(np.asarray(handle, float), z)
    if np.linalg.norm(y) < 1e-6:
        raise NavigatorError("handle direction is parallel to the scalp normal")
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, centre
    return m


def place_coil(scalp: Surface, target: np.ndarray, *, handle_angle: float | None = None,
               handle_dir: np.ndarray | None = None, distance: float = DEFAULT_DISTANCE_MM,
               normal_radius: float = NORMAL_SMOOTHING_MM, spec: dict | None = None) -> CoilPlacement:
    """Coil placement over ``target`` (world mm): see the module docstring."""
    if handle_angle is not None and handle_dir is not None:
        raise NavigatorError("give either a handle angle or a handle direction, not both")
    if not math.isfinite(distance) or distance < 0:
        raise NavigatorError(f"coil-scalp distance must be >= 0 mm, got {distance}")
    target = np.asarray(target, dtype=np.float64).reshape(3)
    sp = project_to_surface(scalp, target)
    n = smoothed_normal(scalp, sp, normal_radius)
    centre = sp + distance * n
    angle = None
    if handle_dir is not None:
        h = np.asarray(handle_dir, float).reshape(3)
        if np.linalg.norm(_tangent(h, n)) < 1e-3 * max(np.linalg.norm(h), 1e-12):
            raise NavigatorError("handle direction is (nearly) parallel to the scalp normal at the target")
    else:
        angle = DEFAULT_HANDLE_ANGLE_DEG if handle_angle is None else float(handle_angle)
        midline_x = float(scalp.vertices[:, 0].mean())
        h = handle_from_angle(n, angle, left=bool(sp[0] <= midline_x))
    pose = pose_matrix(centre, n, h)
    return CoilPlacement(pose=pose, target=target, scalp_point=sp, normal=n, handle=pose[:3, 1].copy(),
                         distance_mm=float(distance), handle_angle_deg=angle, spec=dict(spec or {}))


def parse_pose(text: str) -> np.ndarray:
    """16 comma/space-separated numbers (row-major, world mm) -> rigid 4x4 pose.

    The same rule as every importer (:func:`navigator.export.rigid.rigidify`): a rotation
    rounded to a few decimals is accepted and re-orthonormalized; shear, scaling and reflections
    are refused. Use :func:`parse_pose_checked` to also learn what was corrected.
    """
    return parse_pose_checked(text).matrix


def parse_pose_checked(text: str):
    """:func:`parse_pose` returning the :class:`navigator.export.rigid.RigidPose` (matrix and deviation)."""
    from navigator.export.rigid import NotRigid, rigidify

    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        raise NavigatorError(f"--pose: not a list of numbers: {text!r}") from None
    if len(vals) != 16:
        raise NavigatorError(f"--pose needs 16 numbers (row-major 4x4), got {len(vals)}")
    try:
        return rigidify(np.asarray(vals).reshape(4, 4))
    except NotRigid as exc:
        raise NavigatorError(f"--pose is not a rigid pose: {exc}") from None


def parse_vector(text: str, what: str = "vector") -> np.ndarray:
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    try:
        v = np.asarray([float(p) for p in parts])
    except ValueError:
        raise NavigatorError(f"{what}: expected x,y,z numbers, got {text!r}") from None
    if v.shape != (3,) or not np.isfinite(v).all():
        raise NavigatorError(f"{what}: expected three numbers x,y,z, got {text!r}")
    return v


# ---------------------------------------------------------------------- targets
def resolve_target_point(head: Head, spec: str) -> tuple[np.ndarray, str]:
    """Resolve a target SPEC on ``head`` (see :mod:`navigator.targets.resolve`) to the point the
    coil aims at (subject RAS mm) and a label: the cortical point for targets defined in the
    brain, the scalp point for targets defined on the scalp (EEG positions, Beam F3, scalp rules).
    """
    t = head.target(spec)
    if t.kind == "cortical" and t.cortical_point is not None:
        return np.asarray(t.cortical_point), f"{t.name} (cortical point)"
    return np.asarray(t.point), t.name


# ---------------------------------------------------------------------- casing collision
@dataclass
class Clearance:
    """Casing-scalp clearance: ``min_distance_mm`` (signed; negative = inside the head) and
    the number of casing points inside the scalp."""

    min_distance_mm: float
    n_inside: int
    n_points: int

    @property
    def collides(self) -> bool:
        return self.n_inside > 0


def casing_clearance(coil, pose: np.ndarray, scalp: Surface) -> Clearance | None:
    """Signed distance of the posed coil casing's vertices to the scalp (None without casing).

    Inside/outside is decided with the nearest scalp vertex's normal, which is reliable for
    points within a few cm of a smooth closed scalp (the case that matters)."""
    from scipy.spatial import cKDTree

    if not coil.casing:
        return None
    pts = np.concatenate([s.vertices for s in coil.casing])
    world = pts @ pose[:3, :3].T + pose[:3, 3]
    d, idx = cKDTree(scalp.vertices).query(world)
    normals = scalp.vertex_normals()
    sign = np.sign(np.einsum("ij,ij->i", world - scalp.vertices[idx], normals[idx]))
    sd = np.where(sign == 0, 1.0, sign) * d
    return Clearance(float(sd.min()), int((sd < 0).sum()), len(sd))
