"""What the 3-D view draws of a TMS coil: its casing and its windings, in the coil frame.

No Qt or VTK here: plain geometry (coil frame mm, z into the head, y handle) that the view
places with the pose matrix. The casing is the coil model's own (``.tcd`` casing, library
casing; ``.ccd`` files have none and show their windings only); it is drawn semi-transparent
so the head stays visible. The windings are drawn as lines:

* wire-segment coils (``.tcd`` windings, parametric "segments" coils): every segment;
* dipole coils (``.ccd``, library dipole models): per wing (dipoles of one current sense,
  connected seen along the coil axis) the outer boundary of the dipole sheet (the outermost
  turn) and, for a ring with a hole, its inner boundary, following the dipoles' height (curved
  and double-cone coils stay curved);
* grid coils: the casing only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from navigator.core.surface import Surface


@dataclass
class CoilGlyph:
    """Coil-frame geometry to draw: casing surfaces and winding polylines (each (k, 3), closed
    when first == last)."""

    casing: list[Surface] = field(default_factory=list)
    windings: list[np.ndarray] = field(default_factory=list)


def coil_glyph(coil, max_segments: int = 20000) -> CoilGlyph:
    g = CoilGlyph(casing=list(coil.casing))
    if coil.n_segments:
        a, b = coil.segment_starts, coil.segment_ends
        step = max(1, int(np.ceil(len(a) / max_segments)))
        g.windings = [np.stack([a[i], b[i]]) for i in range(0, len(a), step)]
    elif coil.n_dipoles:
        g.windings = dipole_outlines(coil.dipole_positions, coil.dipole_moments)
    return g


def dipole_outlines(positions: np.ndarray, moments: np.ndarray, cell_mm: float | None = None) -> list[np.ndarray]:
    """Closed polylines around each wing of a dipole sheet: its outer edge and, for a ring,
    its inner edge (the outermost and innermost turns), at the wings' mean dipole height."""
    from scipy import ndimage

    pos = np.asarray(positions, float)
    if len(pos) < 3:
        return []
    xy = pos[:, :2]
    if cell_mm is None:  # the dipole spacing seen from above (layers stacked in z count once)
        from scipy.spatial import cKDTree

        uxy = np.unique(np.round(xy / 1.0), axis=0) * 1.0
        if len(uxy) > 1:
            d, _ = cKDTree(uxy).query(uxy, k=2)
            cell_mm = float(np.clip(np.median(d[:, 1]), 1.0, 10.0))
        else:
            cell_mm = 2.0
    lo = xy.min(axis=0) - 3 * cell_mm
    ij = np.floor((xy - lo) / cell_mm).astype(int)
    shape = tuple(ij.max(axis=0) + 4)
    # the wings of a figure-of-eight touch seen from above: split by the sense of the current
    # (sign of the moment's z component) first, then by connected footprint
    mz = np.asarray(moments, float)[:, 2] if len(moments) == len(pos) else np.ones(len(pos))
    groups = []
    for sense in (mz >= 0, mz < 0):
        if sense.sum() < 3:
            continue
        occ = np.zeros(shape, bool)
        occ[ij[sense, 0], ij[sense, 1]] = True
        occ = ndimage.binary_dilation(occ)
        lab, n = ndimage.label(occ)
        for k in range(1, n + 1):
            groups.append(sense & (lab[ij[:, 0], ij[:, 1]] == k))
    out = []
    for member in groups:
        if member.sum() < 3:
            continue
        c = xy[member].mean(axis=0)
        rel = xy[member] - c
        ang = np.arctan2(rel[:, 1], rel[:, 0])
        r = np.linalg.norm(rel, axis=1)
        bins = np.linspace(-np.pi, np.pi, 73)
        idx = np.clip(np.digitize(ang, bins) - 1, 0, 71)
        zs = pos[member, 2]
        outer = np.full(72, np.nan)
        inner = np.full(72, np.nan)
        z_out = np.full(72, np.nan)
        z_in = np.full(72, np.nan)
        for b in range(72):
            sel = idx == b
            if sel.any():
                rb, zb = r[sel], zs[sel]
                outer[b], inner[b] = rb.max() + cell_mm / 2, max(rb.min() - cell_mm / 2, 0.0)
                z_out[b], z_in[b] = zb[np.argmax(rb)], zb[np.argmin(rb)]
        good = np.isfinite(outer)
        if good.sum() < 8:
            continue
        mid = 0.5 * (bins[:-1] + bins[1:])
        for radii, heights, keep in ((outer, z_out, True), (inner, z_in, bool(np.nanmin(inner[good]) > 2 * cell_mm))):
            if not keep:
                continue
            rr = np.interp(mid, mid[good], radii[good], period=2 * np.pi)
            zz = np.interp(mid, mid[good], heights[good], period=2 * np.pi)
            ring = np.column_stack([c[0] + rr * np.cos(mid), c[1] + rr * np.sin(mid), zz])
            out.append(np.vstack([ring, ring[:1]]))
    return out
