"""Electrode specifications and their placement on the scalp of a tetrahedral head mesh.

Shapes (sizes in mm, in the electrode's own tangent plane):

========  =====================  ==============================================
shape     size                   footprint
========  =====================  ==============================================
point     --                     the scalp node nearest the position (validation)
disc      ``D``                  circle of diameter D (default 12, HD electrode)
ring      ``OUTERxINNER``        annulus, outer/inner diameters (default 40x24)
rect      ``WxH``                rectangle, W along x, H along y (default 50x50)
ellipse   ``AxB``                ellipse, diameters A along x, B along y (default 50x50)
========  =====================  ==============================================

Frame of a placed electrode: ``center`` on the scalp, ``normal`` pointing out of the head
(area-weighted scalp normal under the electrode), ``y_axis`` = the ``direction`` point
projected into the tangent plane (default: world superior, or anterior near the vertex),
rotated by ``angle_deg`` about the normal; x = y cross normal, so (x, y, normal) is
right-handed. The footprint is the set of outer-scalp triangles, connected to the triangle
under the centre, whose centroids fall inside the shape after projection onto the tangent
plane (pads bend with the head; sizes are planar). Pads default to a 5 mm saline sponge,
disc/ring HD electrodes to 2 mm of gel; layer conductivity defaults to 1.0 S/m
(:data:`navigator.core.tissues.GEL_CONDUCTIVITY`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.tissues import GEL_CONDUCTIVITY, SCALP

SHAPES = ("point", "disc", "ring", "rect", "ellipse")
DEFAULT_SIZES: dict[str, tuple[float, ...]] = {
    "point": (),
    "disc": (12.0,),
    "ring": (40.0, 24.0),
    "rect": (50.0, 50.0),
    "ellipse": (50.0, 50.0),
}
#: Largest distance (mm) between a given coordinate and the scalp before it counts as off the head.
MAX_PROJECTION_MM = 30.0


@dataclass
class ElectrodeSpec:
    """What the user asked for.

    Attributes:
        position: a 10-10 name (looked up in the workspace's EEG positions) or (x, y, z) subject mm.
        current_ma: current entering the head through this electrode, mA (negative = leaving).
        shape: one of :data:`SHAPES`. size_mm: see the module table (None = default).
        direction: where the electrode's y axis points: a 10-10 name or (x, y, z) mm (None = default).
        angle_deg: extra in-plane rotation about the normal, degrees (counter-clockwise seen from outside).
        layer: "sponge" or "gel" (None: sponge for rect/ellipse, gel for disc/ring).
        thickness_mm: layer thickness (None: 5 mm sponge, 2 mm gel).
        layer_conductivity: S/m (None: 1.0).
        name: label used in outputs (default: the position text).
    """

    position: str | tuple[float, float, float]
    current_ma: float
    shape: str = "rect"
    size_mm: tuple[float, ...] | None = None
    direction: str | tuple[float, float, float] | None = None
    angle_deg: float = 0.0
    layer: str | None = None
    thickness_mm: float | None = None
    layer_conductivity: float | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise NavigatorError(f"unknown electrode shape {self.shape!r}; use one of {', '.join(SHAPES)}")
        if self.size_mm is None:
            self.size_mm = DEFAULT_SIZES[self.shape]
        self.size_mm = tuple(float(s) for s in self.size_mm)
        need = {"point": 0, "disc": 1, "ring": 2, "rect": 2, "ellipse": 2}[self.shape]
        if self.shape in ("rect", "ellipse") and len(self.size_mm) == 1:
            self.size_mm = (self.size_mm[0], self.size_mm[0])
        if len(self.size_mm) != need or any(not np.isfinite(s) or s <= 0 for s in self.size_mm):
            raise NavigatorError(f"electrode {self.label}: shape {self.shape} needs {need} positive size(s), got {self.size_mm}")
        if self.shape == "ring" and self.size_mm[1] >= self.size_mm[0]:
            raise NavigatorError(f"electrode {self.label}: ring inner diameter must be smaller than the outer one")
        if not np.isfinite(self.current_ma):
            raise NavigatorError(f"electrode {self.label}: current is not a number")
        if self.layer is None:
            self.layer = "sponge" if self.shape in ("rect", "ellipse") else "gel"
        if self.layer not in ("sponge", "gel"):
            raise NavigatorError(f"electrode {self.label}: layer must be 'sponge' or 'gel'")
        if self.thickness_mm is None:
            self.thickness_mm = 5.0 if self.layer == "sponge" else 2.0
        if self.layer_conductivity is None:
            self.layer_conductivity = GEL_CONDUCTIVITY
        if self.thickness_mm <= 0 or self.layer_conductivity <= 0:
            raise NavigatorError(f"electrode {self.label}: layer thickness and conductivity must be > 0")

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if isinstance(self.position, str):
            return self.position
        return "(" + ",".join(f"{float(c):g}" for c in self.position) + ")"

    @property
    def contact_conductance(self) -> float:
        """Contact conductance per area of the sponge/gel layer, S/m^2 (sigma / thickness)."""
        return float(self.layer_conductivity) / (float(self.thickness_mm) * 1e-3)

    def nominal_area_mm2(self) -> float:
        s = self.size_mm
        if self.shape == "disc":
            return np.pi * s[0] ** 2 / 4
        if self.shape == "ring":
            return np.pi * (s[0] ** 2 - s[1] ** 2) / 4
        if self.shape == "rect":
            return s[0] * s[1]
        if self.shape == "ellipse":
            return np.pi * s[0] * s[1] / 4
        return 0.0

    def to_json(self) -> dict:
        return {
            "name": self.label,
            "position": self.position if isinstance(self.position, str) else [float(c) for c in self.position],
            "current_mA": float(self.current_ma),
            "shape": self.shape,
            "size_mm": list(self.size_mm),
            "direction": self.direction if (self.direction is None or isinstance(self.direction, str))
            else [float(c) for c in self.direction],
            "angle_deg": float(self.angle_deg),
            "layer": self.layer,
            "thickness_mm": float(self.thickness_mm),
            "layer_conductivity": float(self.layer_conductivity),
        }


@dataclass
class PlacedElectrode:
    """An electrode attached to the mesh.

    Attributes:
        spec: the request. center: (3,) mm on the scalp. normal/x_axis/y_axis: unit vectors.
        triangles: (K, 3) node indices of the contact (outer scalp) triangles; empty for points.
        node: scalp node of a point electrode (-1 otherwise).
        conductance: contact conductance per area used (S/m^2), scaled so that
            conductance * contact area = sigma_layer / thickness * nominal area.
        contact_area_mm2: area of ``triangles``.
    """

    spec: ElectrodeSpec
    center: np.ndarray
    normal: np.ndarray
    x_axis: np.ndarray
    y_axis: np.ndarray
    triangles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    node: int = -1
    conductance: float = 0.0
    contact_area_mm2: float = 0.0

    @property
    def is_point(self) -> bool:
        return self.spec.shape == "point"

    @property
    def name(self) -> str:
        return self.spec.label


class Scalp:
    """Outer boundary of a head mesh (outward-oriented triangles) with lookup helpers."""

    def __init__(self, mesh: Mesh):
        from navigator.io.mesh_boundary import largest_component, outer_boundary

        faces = outer_boundary(mesh)
        if len(faces) == 0:
            raise NavigatorError("mesh has no outer surface")
        faces = largest_component(faces, mesh.n_nodes)
        self.mesh = mesh
        self.faces = faces
        p = mesh.nodes[faces]
        n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        self.areas = 0.5 * np.linalg.norm(n, axis=1)
        self.normals = n / np.maximum(2 * self.areas, 1e-30)[:, None]
        self.centroids = p.mean(axis=1)
        from scipy.spatial import cKDTree

        self.tree = cKDTree(self.centroids)
        self.nodes_idx = np.unique(faces)
        self.node_tree = cKDTree(mesh.nodes[self.nodes_idx])
        # a large tetrahedral scalp exists? (used only for messages)
        self.has_scalp_tissue = bool(np.any(mesh.tet_tags == SCALP))

    def project(self, point: np.ndarray) -> tuple[np.ndarray, int, float]:
        """Closest point on the scalp to ``point`` (mm): (point, face index, distance mm)."""
        from navigator.targets.geometry import closest_point_on_triangles

        point = np.asarray(point, dtype=np.float64).reshape(3)
        k = min(32, len(self.faces))
        _, cand = self.tree.query(point, k=k)
        cand = np.atleast_1d(cand)
        tri = self.mesh.nodes[self.faces[cand]]
        q = closest_point_on_triangles(point, tri)
        d = np.linalg.norm(q - point, axis=1)
        i = int(np.argmin(d))
        return q[i], int(cand[i]), float(d[i])

    def nearest_node(self, point: np.ndarray) -> int:
        return int(self.nodes_idx[self.node_tree.query(np.asarray(point, float).reshape(3))[1]])

    def mean_normal(self, center: np.ndarray, radius: float) -> np.ndarray:
        idx = self.tree.query_ball_point(center, r=max(radius, 1e-6))
        if not idx:
            idx = [int(self.tree.query(center)[1])]
        idx = np.asarray(idx)
        n = (self.normals[idx] * self.areas[idx, None]).sum(axis=0)
        return n / np.linalg.norm(n)


def electrode_frame(normal: np.ndarray, direction: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) unit axes of an unrotated electrode with unit outward ``normal`` (world RAS): y is
    ``direction`` (a world vector) projected onto the scalp's tangent plane, or without one the
    world superior axis projected (world anterior near the vertex); x = y cross normal."""
    if direction is not None:
        y = np.asarray(direction, float)
    else:
        y = np.array([0.0, 0.0, 1.0])
        if np.linalg.norm(y - (y @ normal) * normal) < 0.3:
            y = np.array([0.0, 1.0, 0.0])
    y = y - (y @ normal) * normal
    if np.linalg.norm(y) < 1e-6:
        y = np.array([0.0, 1.0, 0.0]) - normal[1] * normal
    y = y / np.linalg.norm(y)
    return np.cross(y, normal), y


def place_electrode(
    scalp: Scalp, spec: ElectrodeSpec, position_mm: np.ndarray, direction_mm: np.ndarray | None = None
) -> PlacedElectrode:
    """Attach ``spec`` to the scalp at ``position_mm`` (projected onto the scalp).

    ``direction_mm`` is a point toward which the electrode's y axis points (None = default).
    Raises NavigatorError when the position is more than :data:`MAX_PROJECTION_MM` from the scalp
    or the footprint finds no scalp under it.
    """
    center, face, dist = scalp.project(position_mm)
    if dist > MAX_PROJECTION_MM:
        p = ", ".join(f"{c:.1f}" for c in np.asarray(position_mm).ravel())
        raise NavigatorError(
            f"electrode {spec.label}: position ({p}) is {dist:.0f} mm from the scalp "
            f"(more than {MAX_PROJECTION_MM:.0f} mm): off the head?"
        )
    extent = max(spec.size_mm) / 2 if spec.size_mm else 5.0
    normal = scalp.mean_normal(center, max(extent, 5.0))
    x, y = electrode_frame(normal, None if direction_mm is None
                           else np.asarray(direction_mm, float).reshape(3) - center)
    if spec.angle_deg:
        a = np.deg2rad(spec.angle_deg)
        x, y = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y
    if spec.shape == "point":
        node = scalp.nearest_node(center)
        return PlacedElectrode(spec, scalp.mesh.nodes[node].copy(), normal, x, y, node=node)
    tris = _footprint(scalp, spec, center, face, normal, x, y)
    area = float(scalp.areas[tris].sum())
    g = spec.contact_conductance * spec.nominal_area_mm2() / area
    return PlacedElectrode(spec, center, normal, x, y, triangles=scalp.faces[tris], conductance=g, contact_area_mm2=area)


def _inside(spec: ElectrodeSpec, u: np.ndarray, w: np.ndarray) -> np.ndarray:
    s = spec.size_mm
    if spec.shape == "rect":
        return (np.abs(u) <= s[0] / 2) & (np.abs(w) <= s[1] / 2)
    if spec.shape == "ellipse":
        return (u / (s[0] / 2)) ** 2 + (w / (s[1] / 2)) ** 2 <= 1.0
    r2 = u**2 + w**2
    if spec.shape == "disc":
        return r2 <= (s[0] / 2) ** 2
    if spec.shape == "ring":
        return (r2 <= (s[0] / 2) ** 2) & (r2 >= (s[1] / 2) ** 2)
    raise AssertionError(spec.shape)


def _footprint(scalp: Scalp, spec: ElectrodeSpec, center, face, normal, x, y) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    radius = max(spec.size_mm) / 2 * 1.5 + 5.0
    cand = np.asarray(scalp.tree.query_ball_point(center, r=radius), dtype=np.int64)
    d = scalp.centroids[cand] - center
    u, w = d @ x, d @ y
    ok = _inside(spec, u, w) & (scalp.normals[cand] @ normal > 0.0)
    if spec.shape != "ring":
        ok[cand == face] = True  # the face under the centre always belongs (tiny HD electrodes)
    sel = cand[ok]
    if len(sel) == 0:
        raise NavigatorError(f"electrode {spec.label}: no scalp triangles under its footprint (mesh too coarse?)")
    # keep the connected piece around the centre (vertex-sharing faces)
    f = scalp.faces[sel]
    rows = np.repeat(np.arange(len(sel)), 3)
    inc = coo_matrix((np.ones(rows.size), (rows, f.ravel())), shape=(len(sel), scalp.mesh.n_nodes)).tocsr()
    adj = inc @ inc.T
    _, lab = connected_components(adj, directed=False)
    if spec.shape == "ring":  # no face under the centre: keep the largest piece
        keep_label = int(np.bincount(lab, weights=scalp.areas[sel]).argmax())
    else:
        keep_label = lab[int(np.flatnonzero(sel == face)[0])]
    return sel[lab == keep_label]


def check_overlaps(electrodes: list[PlacedElectrode]) -> None:
    """NavigatorError if two electrodes share a scalp node."""
    node_sets = []
    for e in electrodes:
        nodes = {int(e.node)} if e.is_point else set(np.unique(e.triangles).tolist())
        node_sets.append(nodes)
    for i in range(len(electrodes)):
        for j in range(i + 1, len(electrodes)):
            if node_sets[i] & node_sets[j]:
                raise NavigatorError(f"electrodes {electrodes[i].name} and {electrodes[j].name} overlap on the scalp")
