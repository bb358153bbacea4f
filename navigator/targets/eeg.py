"""EEG 10-10 positions constructed on the subject's own scalp from the four fiducials.

The arc-percentage procedure (Jurcak et al. 2007, the "UI 10/10" variant used by SimNIBS):

1. Cz halves both the nasion-inion and the LPA-RPA scalp arcs (iterated to convergence).
2. The midline arc Nz-Cz-Iz is cut in 10 % steps (Fpz, AFz, Fz, FCz, Cz, CPz, Pz, POz, Oz);
   the coronal arc LPA-Cz-RPA likewise (T9, T7, C5, C3, C1, Cz, C2, C4, C6, T8, T10).
3. The circumference through Fpz, T7 and Oz (left) and Fpz, T8, Oz (right) is cut in 10 %
   steps of each half (Fp1, AF7, F7, FT7, T7, TP7, P7, PO7, O1 and their right twins); the
   lower ring through Nz, T9 and Iz likewise (N1, AF9, F9, FT9, T9, TP9, P9, PO9, I1 ...).
4. Each coronal row (AF, F, FC, CP, P, PO) is the arc through X7, Xz and X8, each half cut in
   quarters (X5, X3, X1 / X2, X4, X6); the AF and PO rows keep only the 10-10 subset.

Arcs are plane sections of the scalp surface (see :mod:`navigator.targets.geometry`), so every
position lies on the scalp. Coordinates are subject world RAS mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface
from navigator.targets.geometry import (
    SurfaceQuery,
    locate_on_polyline,
    point_at_fraction,
    point_at_length,
    polyline_length,
    surface_arc,
)

FIDUCIAL_NAMES = ("nasion", "inion", "lpa", "rpa")


@dataclass
class Fiducials:
    """Nasion, inion and left/right preauricular points, subject RAS mm."""

    nasion: np.ndarray
    inion: np.ndarray
    lpa: np.ndarray
    rpa: np.ndarray
    source: str = "user"  # "auto", "user", "ground truth", "simnibs"

    def __post_init__(self) -> None:
        for n in FIDUCIAL_NAMES:
            v = np.asarray(getattr(self, n), dtype=np.float64).reshape(3)
            if not np.isfinite(v).all():
                raise NavigatorError(f"fiducial {n} is not a finite 3-D point")
            setattr(self, n, v)

    def as_dict(self) -> dict[str, list[float]]:
        return {n: [float(x) for x in getattr(self, n)] for n in FIDUCIAL_NAMES}

    def check_plausible(self) -> list[str]:
        """Problems with the fiducials' geometry (empty when plausible)."""
        problems = []
        lr = self.rpa - self.lpa
        ap = self.nasion - self.inion
        if np.linalg.norm(lr) < 80 or np.linalg.norm(lr) > 220:
            problems.append(f"LPA-RPA distance {np.linalg.norm(lr):.0f} mm is implausible for a head")
        if np.linalg.norm(ap) < 120 or np.linalg.norm(ap) > 260:
            problems.append(f"nasion-inion distance {np.linalg.norm(ap):.0f} mm is implausible for a head")
        if lr[0] <= 0:
            problems.append("LPA is not left of RPA in world RAS (x(LPA) >= x(RPA)): left/right swapped?")
        if ap[1] <= 0:
            problems.append("nasion is not anterior to inion in world RAS: image orientation wrong?")
        return problems


@dataclass
class EegPositions:
    """Named positions on the scalp (subject RAS mm), in construction order."""

    positions: dict[str, np.ndarray] = field(default_factory=dict)
    system: str = "10-10"

    def __getitem__(self, name: str) -> np.ndarray:
        key = self.lookup(name)
        return self.positions[key]

    def lookup(self, name: str) -> str:
        """Case-insensitive name lookup; raises NavigatorError listing close names."""
        for k in self.positions:
            if k.lower() == name.lower():
                return k
        import difflib

        close = difflib.get_close_matches(name, list(self.positions), n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NavigatorError(f"unknown EEG position {name!r}{hint}")

    def names(self) -> list[str]:
        return list(self.positions)


def _mirror(name: str) -> str:
    """Left name -> right name (odd -> even number: F3 -> F4, T9 -> T10, AF7 -> AF8)."""
    head = name.rstrip("0123456789")
    num = int(name[len(head):])
    return f"{head}{num + 1}"


def construct_10_10(scalp: Surface, fid: Fiducials, *, max_iter: int = 30, tol_mm: float = 0.01) -> EegPositions:
    """Build the 10-10 positions on ``scalp`` from ``fid`` (see module docstring)."""
    problems = fid.check_plausible()
    if problems:
        raise NavigatorError("fiducials are implausible: " + "; ".join(problems))
    q = SurfaceQuery(scalp)
    nz, iz, lpa, rpa = (q.closest_point(p)[0][0] for p in (fid.nasion, fid.inion, fid.lpa, fid.rpa))

    # 1. Cz: start above the fiducials' centroid, then alternate the two arc midpoints.
    centre = (nz + iz + lpa + rpa) / 4
    up = np.cross(rpa - lpa, nz - iz)
    up /= np.linalg.norm(up)
    cz = q.ray_hit(centre, up)
    if cz is None:
        raise NavigatorError("cannot find the vertex: the scalp surface is not closed above the fiducials")
    for _ in range(max_iter):
        ap = surface_arc(scalp, nz, iz, cz)
        lr = surface_arc(scalp, lpa, rpa, cz)
        new = q.closest_point((point_at_fraction(ap, 0.5) + point_at_fraction(lr, 0.5)) / 2)[0][0]
        moved = np.linalg.norm(new - cz)
        cz = new
        if moved < tol_mm:
            break
    ap = surface_arc(scalp, nz, iz, cz)
    lr = surface_arc(scalp, lpa, rpa, cz)

    pos: dict[str, np.ndarray] = {"Nz": nz, "Iz": iz, "LPA": lpa, "RPA": rpa}
    midline = ["Nz", "Fpz", "AFz", "Fz", "FCz", "Cz", "CPz", "Pz", "POz", "Oz", "Iz"]
    for k, name in enumerate(midline):
        if name not in ("Nz", "Iz"):
            pos[name] = point_at_fraction(ap, k / 10)
    coronal = ["T9", "T7", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "T8", "T10"]
    for k, name in enumerate(coronal):
        if name != "Cz":
            pos[name] = point_at_fraction(lr, k / 10)

    # 3. Circumferences: 10 % ring through Fpz-T7-Oz and the 0 % ring through Nz-T9-Iz.
    ring10 = ["Fpz", "Fp1", "AF7", "F7", "FT7", "T7", "TP7", "P7", "PO7", "O1", "Oz"]
    ring0 = ["Nz", "N1", "AF9", "F9", "FT9", "T9", "TP9", "P9", "PO9", "I1", "Iz"]
    for ring, front, back, side_l in ((ring10, "Fpz", "Oz", "T7"), (ring0, "Nz", "Iz", "T9")):
        for side, mirror in ((side_l, False), (_mirror(side_l), True)):
            half = surface_arc(scalp, pos[front], pos[back], pos[side])
            for k in range(1, 10):
                if k == 5:
                    continue  # T7/T9 (T8/T10) come from the coronal arc
                name = _mirror(ring[k]) if mirror else ring[k]
                pos[name] = point_at_fraction(half, k / 10)

    # 4. Rows through X7 - Xz - X8, halves in quarters.
    rows = {
        "AF": (["AF7", "AF3", "AFz"], None),
        "F": (["F7", "F5", "F3", "F1", "Fz"], None),
        "FC": (["FT7", "FC5", "FC3", "FC1", "FCz"], None),
        "CP": (["TP7", "CP5", "CP3", "CP1", "CPz"], None),
        "P": (["P7", "P5", "P3", "P1", "Pz"], None),
        "PO": (["PO7", "PO3", "POz"], None),
    }
    for row, (names, _) in rows.items():
        left, mid = names[0], names[-1]
        right = _mirror(left)
        arc = surface_arc(scalp, pos[left], pos[right], pos[mid])
        s_mid, _ = locate_on_polyline(arc, pos[mid])
        s_end = polyline_length(arc)
        inner = names[1:-1]
        fractions = [k / 4 for k in range(1, 4)] if len(inner) == 3 else [0.5]
        for name, f in zip(inner, fractions):
            pos[name] = point_at_length(arc, f * s_mid)
            pos[_mirror(name)] = point_at_length(arc, s_end - f * (s_end - s_mid))
    return EegPositions(positions=_ordered(pos))


def _ordered(pos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fiducials first, then front-to-back, left-to-right."""
    fids = ["Nz", "Iz", "LPA", "RPA"]
    rest = sorted((k for k in pos if k not in fids), key=lambda k: (-pos[k][1], pos[k][0]))
    return {k: pos[k] for k in fids + rest}
