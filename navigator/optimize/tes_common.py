"""Pieces the tES montage methods share: cap sites (10-10 or 10-05, thinned to the disc size),
target and avoid regions, element normals, the avoid-region SPEC parser and the direction set of
magnitude objectives."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.io.eeg_positions import EegPositions
from navigator.targets.head import Head
from navigator.targets.resolve import ResolvedTarget


@dataclass
class MethodOutput:
    """What a tES method (TI, centre-surround) hands to
    :func:`navigator.optimize.tdcs.optimize_tdcs_workspace` for plan.json and summary.json.

    Attributes:
        target: the resolved target. numbers: flat key numbers ("batch_numbers"). summary: the
        method's block of summary.json. electrodes: the plan's electrodes
        (:class:`navigator.export.plan.Electrode`, currents mA). notes: one line for the plan.
        extra_targets: more plan targets after the target (:class:`navigator.export.plan.Target`,
        e.g. the avoid regions).
    """

    target: ResolvedTarget
    numbers: dict[str, Any]
    summary: dict[str, Any]
    electrodes: list
    notes: str
    extra_targets: list = field(default_factory=list)


def parse_avoid(spec: str) -> tuple[str, float]:
    """``SPEC:RADIUS`` -> (target SPEC, radius mm); the radius is the text after the last colon."""
    if ":" not in spec:
        raise NavigatorError(f"bad --avoid {spec!r}: expected SPEC:RADIUS_MM, e.g. mni:0,60,0:15")
    s, r = spec.rsplit(":", 1)
    try:
        radius = float(r)
    except ValueError:
        raise NavigatorError(f"bad --avoid {spec!r}: radius {r!r} is not a number (mm)") from None
    if radius <= 0:
        raise NavigatorError(f"bad --avoid {spec!r}: radius must be > 0 mm")
    return s, radius


def sphere_directions() -> np.ndarray:
    """The 26 unit directions of a 3x3x3 grid (start set of magnitude objectives)."""
    v = [np.array(p, float) for p in np.ndindex(3, 3, 3)]
    v = [p - 1 for p in v if np.any(p != 1)]
    return np.array([p / np.linalg.norm(p) for p in v])


#: EEG entries that are landmarks, not electrode sites
LANDMARKS = ("Nz", "Iz", "LPA", "RPA")

_BUILT_CAPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def cap_eeg(head: Head, cap: str = "10-10") -> EegPositions:
    """The head's EEG positions of cap system ``cap`` ("10-10" or "10-05", subject RAS mm).

    10-10: ``targets/eeg.csv``. 10-05: the targets step's ``targets/eeg_caps/EEG10-05.csv``; a
    workspace prepared before that file existed gets the cap built on the scalp from its
    fiducials (in memory, once per head session; ``navigator prepare`` stores it).
    """
    from navigator.targets.eeg import CAP_SYSTEMS, construct_cap
    from navigator.targets.step import CAP_FILES, stored_cap

    if cap not in CAP_SYSTEMS:
        raise NavigatorError(f"unknown EEG cap {cap!r}; use {' or '.join(CAP_SYSTEMS)}")
    if cap == "10-10":
        if not head.has_eeg:
            raise NavigatorError(f"{head.ws.root}: subject has no EEG positions (targets/eeg.csv); "
                                 "run `navigator prepare` (EEG 10-10 step) first")
        return head.eeg
    stored = stored_cap(head.ws, cap)
    if stored is not None:
        return stored
    built = _BUILT_CAPS.setdefault(head, {})
    if cap not in built:
        if not head.ws.has("fiducials"):
            raise NavigatorError(f"{head.ws.root}: no EEG {cap} positions ({CAP_FILES[cap]}) and no fiducials "
                                 "to build them from; run `navigator prepare` or set the fiducials "
                                 "(`navigator fiducials`)")
        built[cap] = construct_cap(head.scalp, head.fiducials, cap)
    return built[cap]


def cap_positions(head: Head, cap: str = "10-10") -> dict[str, np.ndarray]:
    """Cap electrode sites of the head (name -> subject RAS mm), landmarks left out; ``cap``:
    "10-10" (default) or "10-05" (:func:`cap_eeg`)."""
    return {n: p for n, p in cap_eeg(head, cap).electrodes().items() if n not in LANDMARKS}


def spaced_sites(positions: dict[str, np.ndarray], min_distance_mm: float,
                 first: Callable[[str], bool] | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Cap sites at least ``min_distance_mm`` apart (centre to centre, mm), so that discs of
    that diameter can be attached together, and the names left out.

    Greedy in a fixed order: the names for which ``first`` is true (e.g. the 10-10 positions of a
    10-05 cap), then the others, each group in the given order; a site is kept when it is far
    enough from every site kept before it. Deterministic; the kept sites come in that order.
    """
    names = list(positions)
    if first is not None:
        names = [n for n in names if first(n)] + [n for n in names if not first(n)]
    kept: list[str] = []
    P = np.zeros((0, 3))
    dropped = []
    for n in names:
        p = np.asarray(positions[n], float)
        if len(P) and np.min(np.linalg.norm(P - p, axis=1)) < min_distance_mm:
            dropped.append(n)
            continue
        kept.append(n)
        P = np.vstack([P, p])
    return {n: np.asarray(positions[n], float) for n in kept}, dropped


def cap_sites(head: Head, search) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The disc sites of ``search.cap`` for the HD and TI leadfields: :func:`cap_positions` thinned
    by :func:`spaced_sites` to ``electrode_diameter_mm + electrode_gap_mm`` centre spacing
    (the sites of the subject's 10-10 cap first), and a summary block (cap, sites used, left out). Build the leadfield
    with ``drop_overlaps=True`` and pass it to :func:`update_sites` (discs of a coarse scalp mesh
    can share nodes at that spacing)."""
    from navigator.targets.eeg import is_10_10_name

    cap = getattr(search, "cap", "10-10")
    positions = cap_positions(head, cap)
    spacing = float(search.electrode_diameter_mm) + float(getattr(search, "electrode_gap_mm", 0.0))
    ten = set(head.eeg.names) if cap != "10-10" and head.has_eeg else None  # the subject's 10-10 cap
    sites, dropped = spaced_sites(positions, spacing, first=(ten.__contains__ if ten else is_10_10_name))
    info = {"cap": cap, "positions": len(positions), "sites": len(sites), "min_spacing_mm": spacing,
            "left_out": dropped}
    return sites, info


def update_sites(positions: dict[str, np.ndarray], info: dict[str, Any], lf) -> dict[str, np.ndarray]:
    """The sites of leadfield ``lf`` (its overlap-dropped ones removed from ``positions``;
    ``info`` of :func:`cap_sites` updated in place)."""
    info["left_out"] = list(info["left_out"]) + list(lf.dropped)
    info["left_out_overlapping"] = list(lf.dropped)
    info["sites"] = lf.n
    return {n: positions[n] for n in lf.names}


def element_normals(head: Head, mesh, mask: np.ndarray, fallback: np.ndarray) -> tuple[np.ndarray, str]:
    """(M, 3) unit cortical normals of the masked tets: the normal of the nearest middle grey-matter
    vertex, or ``fallback`` for all when the head has no cortex surface; and which was used."""
    cortex = head.cortex
    if cortex is None:
        return np.repeat(np.asarray(fallback, float)[None], int(mask.sum()), axis=0), "target direction"
    from scipy.spatial import cKDTree

    _, idx = cKDTree(cortex.vertices).query(mesh.tet_centroids()[mask])
    return cortex.vertex_normals()[idx], "nearest middle grey-matter vertex"


def target_setup(head: Head, target: str | ResolvedTarget, roi_radius: float, avoid_specs: list[str]):
    """The resolved target, its cortical centre (mm), tet masks ("target", "avoid0", ...) and the
    parsed avoid SPECs [(spec, radius mm)]."""
    from navigator.targets.roi import SphereRoi

    mesh = head.mesh
    rt = head.target(target)
    centre = np.asarray(rt.cortical_point if rt.cortical_point is not None else rt.point, float)
    masks = {"target": SphereRoi(centre, roi_radius).tet_mask(mesh)}
    avoid = [parse_avoid(a) for a in avoid_specs]
    for k, (spec, rad) in enumerate(avoid):
        art = head.target(spec)
        ac = np.asarray(art.cortical_point if art.cortical_point is not None else art.point, float)
        masks[f"avoid{k}"] = SphereRoi(ac, rad).tet_mask(mesh)
    return rt, centre, masks, avoid
