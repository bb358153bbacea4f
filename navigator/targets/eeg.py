"""EEG 10-10 and 10-05 positions constructed on the subject's own scalp from the four fiducials.

The arc-percentage procedure (Jurcak et al. 2007, the "UI 10/10" variant used by SimNIBS):

1. Cz halves both the nasion-inion and the LPA-RPA scalp arcs (iterated to convergence).
2. The midline arc Nz-Cz-Iz is cut in 10 % steps (Fpz, AFz, Fz, FCz, Cz, CPz, Pz, POz, Oz);
   the coronal arc LPA-Cz-RPA likewise (T9, T7, C5, C3, C1, Cz, C2, C4, C6, T8, T10).
3. The circumference through Fpz, T7 and Oz (left) and Fpz, T8, Oz (right) is cut in 10 %
   steps of each half (Fp1, AF7, F7, FT7, T7, TP7, P7, PO7, O1 and their right twins); the
   lower ring through Nz, T9 and Iz likewise (N1, AF9, F9, FT9, T9, TP9, P9, PO9, I1 ...).
4. Each coronal row (AF, F, FC, CP, P, PO) is the arc through X7, Xz and X8, each half cut in
   quarters (X5, X3, X1 / X2, X4, X6); the AF and PO rows keep only the 10-10 subset.

The 10-05 system (Oostenveld & Praamstra 2001, :func:`construct_10_05`) halves every 10-10
step: 5 % steps on the midline, the coronal arc and three circumferences (0, 5 and 10 %), and
eighths of the rows' halves, 345 positions with the 10-10 ones among them.

Positions are held in :class:`navigator.io.eeg_positions.EegPositions` (the type the EEG CSV
files are read into). Arcs are plane sections of the scalp surface (see
:mod:`navigator.targets.geometry`), so every position lies on the scalp. Coordinates are
subject world RAS mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface
from navigator.io.eeg_positions import EegPositions
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
    #: fiducials placed at the MNI template's landmark because the image has no scalp there
    #: (face or ears removed by defacing, or a cut field of view): estimates, to be checked.
    #: The EEG construction uses their closest scalp points, as for any fiducial.
    estimated: tuple[str, ...] = ()

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


def _mirror(name: str) -> str:
    """Left name -> right name (odd -> even number: F3 -> F4, T9 -> T10, AF7 -> AF8)."""
    head = name.rstrip("0123456789")
    num = int(name[len(head):])
    return f"{head}{num + 1}"


def _vertex_arcs(scalp: Surface, fid: Fiducials, max_iter: int, tol_mm: float):
    """Step 1 of both systems: the fiducials on the scalp, Cz, and the midline (Nz-Cz-Iz) and
    coronal (LPA-Cz-RPA) arcs. Returns (nz, iz, lpa, rpa, cz, midline arc, coronal arc)."""
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
    return nz, iz, lpa, rpa, cz, ap, lr


def construct_10_10(scalp: Surface, fid: Fiducials, *, max_iter: int = 30, tol_mm: float = 0.01) -> EegPositions:
    """Build the 10-10 positions on ``scalp`` from ``fid`` (see module docstring)."""
    nz, iz, lpa, rpa, cz, ap, lr = _vertex_arcs(scalp, fid, max_iter, tol_mm)

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
    return EegPositions.from_dict(_ordered(pos), system="10-10")


#: the rows of the 10-05 system, one per 5 % of the nasion-inion arc (0 % = N ... 100 % = I)
ROWS_10_05 = ("N", "NFp", "Fp", "AFp", "AF", "AFF", "F", "FFC", "FC", "FCC", "C", "CCP", "CP", "CPP", "P",
              "PPO", "PO", "POO", "O", "OI", "I")
#: rows whose lateral positions 7 to 10 are temporal: the T label replaces the row's C
_TEMPORAL = {"FFC": "FFT", "FC": "FT", "FCC": "FTT", "C": "T", "CCP": "TTP", "CP": "TP", "CPP": "TPP"}
#: cap systems :func:`construct_cap` builds
CAP_SYSTEMS = ("10-10", "10-05")


def name_10_05(row: int, lateral: int, right: bool = False) -> str:
    """Label of 10-05 position (``row`` 0-20 in :data:`ROWS_10_05`, ``lateral`` 0-10 steps of
    5 % from the midline outwards; Oostenveld & Praamstra 2001).

    Even lateral steps are the 10-10 numbers (left 1, 3, 5, 7, 9; right 2, 4, ..., 10), odd steps
    the half-way positions labelled with the number of the outer neighbour and "h" (C1h between
    Cz and C1, C3h between C1 and C3, T9h between T7 and T9; C2h between Cz and C2). Lateral 0 is
    the midline ("z"); positions 7 to 10 of the central rows are temporal (FT7, TTP8h, T9).
    """
    r = ROWS_10_05[row]
    if lateral == 0:
        return f"{r}z"
    half = lateral % 2 == 1
    number = (lateral if half else lateral - 1) + (1 if right else 0)  # left odd, right even
    prefix = _TEMPORAL.get(r, r) if number >= 7 else r
    return f"{prefix}{number}{'h' if half else ''}"


def construct_10_05(scalp: Surface, fid: Fiducials, *, max_iter: int = 30, tol_mm: float = 0.01) -> EegPositions:
    """Build the 10-05 positions (Oostenveld & Praamstra 2001) on ``scalp`` from ``fid``.

    The 10-10 arcs cut in halves (every 10-10 position is reproduced exactly, to the last bit):

    1. Cz as for 10-10; the midline Nz-Cz-Iz and the coronal arc LPA-Cz-RPA cut in 5 % steps
       (Nz, NFpz, Fpz, AFpz, AFz, AFFz, ..., OIz, Iz; T9, T9h, T7, T7h, C5, ..., C1h, Cz, C2h, ...).
    2. Three circumferences, each half cut in 5 % steps: the 0 % ring through Nz, T9, Iz (N1h,
       N1, AFp9, AF9, AFF9, ..., I1, I1h), the 5 % ring through NFpz, T9h, OIz (NFp1h, NFp1,
       AFp9h, AF9h, ..., OI1, OI1h) and the 10 % ring through Fpz, T7, Oz (Fp1h, Fp1, AFp7, AF7,
       AFF7, ..., O1, O1h).
    3. The 14 rows from AFp (15 %) to POO (85 %) except C: the arc through X7, Xz and X8 (10 %
       ring and midline), each half cut in eighths (X7h, X5, X5h, X3, X3h, X1, X1h).

    That is the whole system: 21 midline + 20 coronal + 3 x 36 ring + 14 x 14 row positions =
    345 (Nz and Iz stored as fiducials with LPA and RPA, which coincide with T9 and T10).
    Coordinates subject world RAS mm.
    """
    nz, iz, lpa, rpa, cz, ap, lr = _vertex_arcs(scalp, fid, max_iter, tol_mm)
    nrow = len(ROWS_10_05) - 1  # 20 steps of 5 %
    pos: dict[str, np.ndarray] = {"Nz": nz, "Iz": iz, "LPA": lpa, "RPA": rpa}
    # 1. midline and coronal arc in 5 % steps
    for k in range(1, nrow):
        pos[name_10_05(k, 0)] = point_at_fraction(ap, k / nrow)
    for k in range(nrow + 1):
        if k != nrow // 2:
            lateral = abs(nrow // 2 - k)
            pos[name_10_05(nrow // 2, lateral, right=k > nrow // 2)] = point_at_fraction(lr, k / nrow)
    # 2. rings at 0, 5 and 10 %: (front row, back row, outer lateral step of the ring in the rows)
    for level, lateral in ((0, 10), (1, 9), (2, 8)):
        front, back = pos[name_10_05(level, 0)], pos[name_10_05(nrow - level, 0)]
        for right in (False, True):
            side = pos[name_10_05(nrow // 2, lateral, right)]
            half = surface_arc(scalp, front, back, side)
            for k in range(1, nrow):
                if k == nrow // 2:
                    continue  # from the coronal arc
                if k <= 2:
                    name = name_10_05(level, k, right)  # N1h, N1 / NFp1h, NFp1 / Fp1h, Fp1
                elif k >= nrow - 2:
                    name = name_10_05(nrow - level, nrow - k, right)  # I1, I1h / OI1, OI1h / O1, O1h
                else:
                    name = name_10_05(k, lateral, right)
                pos[name] = point_at_fraction(half, k / nrow)
    # 3. rows through X7 - Xz - X8, halves in eighths
    for row in range(3, nrow - 2):
        if row == nrow // 2:
            continue
        left, mid, right = (pos[name_10_05(row, 8, False)], pos[name_10_05(row, 0)], pos[name_10_05(row, 8, True)])
        arc = surface_arc(scalp, left, right, mid)
        s_mid, _ = locate_on_polyline(arc, mid)
        s_end = polyline_length(arc)
        for lateral in range(1, 8):
            f = (8 - lateral) / 8
            pos[name_10_05(row, lateral, False)] = point_at_length(arc, f * s_mid)
            pos[name_10_05(row, lateral, True)] = point_at_length(arc, s_end - f * (s_end - s_mid))
    return EegPositions.from_dict(_ordered(pos), system="10-05")


def construct_cap(scalp: Surface, fid: Fiducials, system: str = "10-10") -> EegPositions:
    """The ``system`` ("10-10" or "10-05", :data:`CAP_SYSTEMS`) positions on ``scalp``."""
    if system == "10-10":
        return construct_10_10(scalp, fid)
    if system == "10-05":
        return construct_10_05(scalp, fid)
    raise NavigatorError(f"unknown EEG cap system {system!r}; use {' or '.join(CAP_SYSTEMS)}")


def is_10_10_name(name: str) -> bool:
    """True for the labels of the 10-10 system (Fp1, AF5, T9, Nz, ...), False for the 10-05
    additions (AFF1h, FCC3, NFpz, ...)."""
    n = name.strip()
    if n.endswith("h"):
        return False
    head = n.rstrip("0123456789z")
    return head in {"N", "Fp", "AF", "F", "FC", "FT", "C", "T", "CP", "TP", "P", "PO", "O", "I", "LPA", "RPA"}


def _ordered(pos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fiducials first, then front-to-back, left-to-right."""
    fids = ["Nz", "Iz", "LPA", "RPA"]
    rest = sorted((k for k in pos if k not in fids), key=lambda k: (-pos[k][1], pos[k][0]))
    return {k: pos[k] for k in fids + rest}
