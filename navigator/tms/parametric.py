"""Parametric coil builder: circular, figure-of-eight and double-cone coils from geometry.

Winding model: each wing has ``turns`` circular turns split evenly over ``layers`` stacked
layers; within a layer the turn centre-lines are evenly spaced between the inner and outer
winding radius (``r_k = r_in + (k + 1/2)(r_out - r_in)/n``); layers are spread over the
``winding_height`` starting ``bottom_offset`` above the casing's bottom face. The slow radial
advance of a real spiral (one wire width per turn) is neglected, as are the leads.

Representations (coil frame, mm, see :mod:`navigator.tms.coil`):

* ``"segments"``: every turn as a closed polygon of straight segments (exact wire path up
  to the polygon approximation);
* ``"dipoles"``: every turn as a uniform magnetic dipole sheet over the disc it encloses
  (a planar loop of current I equals a sheet of moment density I n), summed over turns and
  sampled on polar cells of about ``dipole_spacing`` mm; fast with the FMM.

Orientation: wing centres on the x axis (``+-wing_spacing/2``), the handle along +y; the
+x wing's moment points along +z, the -x wing's along -z, so under the centre the induced
field runs along the y axis. ``wing_angle`` tilts each wing about the y-parallel line
through the junction so that the wings' outer ends move towards +z (into the head), as in a
double-cone coil; 0 gives a flat figure-of-eight.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from navigator.core.surface import Surface
from navigator.tms.coil import Coil


@dataclass(frozen=True)
class WindingGeometry:
    """Geometry of one wing (mm) — see the module docstring."""

    inner_radius: float
    outer_radius: float
    turns: int
    layers: int = 1
    winding_height: float = 0.0
    bottom_offset: float = 5.0

    def __post_init__(self) -> None:
        if not (0 <= self.inner_radius < self.outer_radius):
            raise ValueError("need 0 <= inner_radius < outer_radius")
        if self.turns < 1 or self.layers < 1 or self.turns % self.layers:
            raise ValueError("turns must be a positive multiple of layers")
        if self.winding_height < 0 or self.bottom_offset < 0:
            raise ValueError("winding_height and bottom_offset must be >= 0")

    def turn_radii(self) -> np.ndarray:
        n = self.turns // self.layers
        w = (self.outer_radius - self.inner_radius) / n
        return self.inner_radius + (np.arange(n) + 0.5) * w

    def layer_heights(self) -> np.ndarray:
        """Distance of each layer's mid-plane above the bottom face (mm, positive)."""
        dz = self.winding_height / self.layers
        return self.bottom_offset + (np.arange(self.layers) + 0.5) * dz


def _loop_segments(radius: float, z: float, n: int, sense: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 2 * math.pi, n + 1)
    if sense < 0:
        t = t[::-1]
    pts = np.stack([radius * np.cos(t), radius * np.sin(t), np.full_like(t, z)], axis=1)
    return pts[:-1], pts[1:]


def _sheet_dipoles(radii: np.ndarray, z: float, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Dipole sheet equivalent to concentric unit-current loops at ``radii`` in plane z.

    Returns positions (P, 3) mm and z-moments (P,) A m^2 per A (moment density = number of
    loops enclosing the point)."""
    edges = np.concatenate([[0.0], np.sort(radii)])
    pos, mom = [], []
    n_loops = len(radii)
    for j in range(n_loops):
        r_lo, r_hi = edges[j], edges[j + 1]
        density = n_loops - j  # loops with radius >= r_hi enclose this ring
        n_r = max(1, math.ceil((r_hi - r_lo) / spacing))
        rb = np.linspace(r_lo, r_hi, n_r + 1)
        for a, b in itertools.pairwise(rb):
            rm = 0.5 * (a + b)
            # cells about `spacing` wide along the ring; the central disc gets a few sectors
            n_t = max(6, math.ceil(2 * math.pi * rm / spacing)) if a > 0 else max(3, math.ceil(math.pi * b / spacing))
            tb = np.linspace(0, 2 * math.pi, n_t + 1)
            tm = 0.5 * (tb[:-1] + tb[1:])
            area = 0.5 * (b * b - a * a) * (2 * math.pi / n_t)  # mm^2
            # area centroid radius of an annular sector
            dth = 2 * math.pi / n_t
            rc = (2.0 / 3.0) * (b ** 3 - a ** 3) / (b * b - a * a) * math.sin(dth / 2) / (dth / 2)
            pos.append(np.stack([rc * np.cos(tm), rc * np.sin(tm), np.full_like(tm, z)], axis=1))
            mom.append(np.full(n_t, density * area * 1e-6))  # A m^2 per A
    return np.concatenate(pos), np.concatenate(mom)


def _cylinder(radius: float, z_bottom: float, z_top: float, n: int = 48, ring_step: float = 4.0) -> Surface:
    """Closed cylinder (outward normals) with caps made of concentric rings (dense vertices)."""
    n_rings = max(1, math.ceil(radius / ring_step))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    verts: list[np.ndarray] = []
    faces: list[list[int]] = []

    def ring(r: float, z: float) -> int:
        start = sum(len(v) for v in verts)
        verts.append(np.stack([r * np.cos(t), r * np.sin(t), np.full(n, z)], axis=1))
        return start

    def centre(z: float) -> int:
        start = sum(len(v) for v in verts)
        verts.append(np.array([[0.0, 0.0, z]]))
        return start

    def strip(i0: int, i1: int, flip: bool) -> None:
        for k in range(n):
            a, b, c, d = i0 + k, i0 + (k + 1) % n, i1 + k, i1 + (k + 1) % n
            tri = [[a, b, d], [a, d, c]]
            faces.extend([[x[0], x[2], x[1]] for x in tri] if flip else tri)

    def cap(z: float, outward_up: bool) -> int:
        c = centre(z)
        prev = None
        for i in range(1, n_rings + 1):
            cur = ring(radius * i / n_rings, z)
            if prev is None:
                for k in range(n):
                    tri = [c, cur + k, cur + (k + 1) % n]
                    faces.append(tri if outward_up else [tri[0], tri[2], tri[1]])
            else:
                strip(prev, cur, flip=outward_up)
            prev = cur
        return prev

    top_outer = cap(z_top, outward_up=True)
    bottom_outer = cap(z_bottom, outward_up=False)
    strip(bottom_outer, top_outer, flip=False)
    surf = Surface(np.concatenate(verts), np.asarray(faces))
    # make the orientation consistent: normals away from the axis on the side wall
    centroid = surf.vertices.mean(axis=0)
    p = surf.vertices[surf.faces].mean(axis=1)
    if np.sum(np.einsum("ij,ij->i", surf.face_normals(), p - centroid) < 0) > len(surf.faces) / 2:
        surf = Surface(surf.vertices, surf.faces[:, ::-1])
    return surf


def _rotation_y(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _wing(g: WindingGeometry, centre_x: float, sense: float, representation: str, polygon_sides: int,
          dipole_spacing: float, tilt_deg: float, pivot_x: float, casing_margin: float,
          casing_top: float) -> dict:
    """One wing: sources + casing in the coil frame (z into the head, windings at z < 0)."""
    seg_a, seg_b, dpos, dmom = [], [], [], []
    for h in g.layer_heights():
        z = -h
        if representation == "segments":
            for r in g.turn_radii():
                a, b = _loop_segments(r, z, polygon_sides, sense)
                seg_a.append(a)
                seg_b.append(b)
        else:
            p, m = _sheet_dipoles(g.turn_radii(), z, dipole_spacing)
            dpos.append(p)
            dmom.append(np.stack([np.zeros_like(m), np.zeros_like(m), sense * m], axis=1))
    top = -(g.bottom_offset + g.winding_height + casing_top)
    cas = _cylinder(g.outer_radius + casing_margin, 0.0, top)
    shift = np.array([centre_x, 0.0, 0.0])
    rot = _rotation_y(math.radians(tilt_deg))
    pivot = np.array([pivot_x, 0.0, 0.0])

    def place(p: np.ndarray) -> np.ndarray:
        return (p + shift - pivot) @ rot.T + pivot

    out = {"casing": Surface(place(cas.vertices), cas.faces)}
    if seg_a:
        out["seg_a"], out["seg_b"] = place(np.concatenate(seg_a)), place(np.concatenate(seg_b))
    if dpos:
        out["dpos"], out["dmom"] = place(np.concatenate(dpos)), np.concatenate(dmom) @ rot.T
    return out


def _assemble(name: str, wings: list[dict], **meta) -> Coil:
    def cat(key: str) -> np.ndarray:
        arr = [w[key] for w in wings if key in w]
        return np.concatenate(arr) if arr else np.zeros((0, 3))

    return Coil(name=name, dipole_positions=cat("dpos"), dipole_moments=cat("dmom"),
                segment_starts=cat("seg_a"), segment_ends=cat("seg_b"),
                casing=[w["casing"] for w in wings], **meta)


def circular_coil(name: str, geometry: WindingGeometry, representation: str = "dipoles",
                  polygon_sides: int = 72, dipole_spacing: float = 3.0, casing_margin: float = 5.0,
                  casing_top: float = 5.0, **meta) -> Coil:
    """A flat circular coil centred on the coil-frame origin (moment along +z).

    ``meta`` is passed to :class:`~navigator.tms.coil.Coil` (max_didt, stimulator, brand,
    source, notes)."""
    _check_repr(representation)
    wing = _wing(geometry, 0.0, +1.0, representation, polygon_sides, dipole_spacing, 0.0, 0.0,
                 casing_margin, casing_top)
    meta.setdefault("source", "parametric circular")
    return _assemble(name, [wing], **meta)


def figure_of_eight_coil(name: str, geometry: WindingGeometry, wing_spacing: float | None = None,
                         wing_angle: float = 0.0, representation: str = "dipoles", polygon_sides: int = 72,
                         dipole_spacing: float = 3.0, casing_margin: float = 5.0, casing_top: float = 5.0,
                         **meta) -> Coil:
    """Two wings with opposite currents, centres at x = +-wing_spacing/2 (mm).

    Args:
        geometry: winding geometry of each wing.
        wing_spacing: centre-to-centre distance, mm (default: 2 * outer radius + 2 mm).
        wing_angle: tilt of each wing about the junction line (degrees; 0 = flat figure-of-eight,
            positive = outer ends towards the head, as in double-cone coils).
        representation: "dipoles" or "segments".
    """
    _check_repr(representation)
    if wing_spacing is None:
        wing_spacing = 2 * geometry.outer_radius + 2.0
    half = 0.5 * wing_spacing
    # pivot on the junction line between the wings (x = 0 at the layer plane level)
    wings = [
        _wing(geometry, +half, +1.0, representation, polygon_sides, dipole_spacing, -wing_angle, 0.0,
              casing_margin, casing_top),
        _wing(geometry, -half, -1.0, representation, polygon_sides, dipole_spacing, +wing_angle, 0.0,
              casing_margin, casing_top),
    ]
    meta.setdefault("source", "parametric figure-of-eight" if wing_angle == 0 else "parametric angled figure-of-eight")
    return _assemble(name, wings, **meta)


def double_cone_coil(name: str, geometry: WindingGeometry, wing_angle: float = 45.0,
                     wing_spacing: float | None = None, **kwargs) -> Coil:
    """A double-cone coil: a figure-of-eight whose wings are tilted by ``wing_angle`` degrees
    each (the angle between the wings is 180 - 2 * wing_angle)."""
    kwargs.setdefault("source", "parametric double-cone")
    return figure_of_eight_coil(name, geometry, wing_spacing=wing_spacing, wing_angle=wing_angle, **kwargs)


def _check_repr(representation: str) -> None:
    if representation not in ("dipoles", "segments"):
        raise ValueError(f"representation must be 'dipoles' or 'segments', not {representation!r}")
