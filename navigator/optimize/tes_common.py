"""Pieces the tES montage methods share: cap sites, target and avoid regions, element normals,
the avoid-region SPEC parser and the direction set of magnitude objectives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
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
    """

    target: ResolvedTarget
    numbers: dict[str, Any]
    summary: dict[str, Any]
    electrodes: list
    notes: str


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


def cap_positions(head: Head) -> dict[str, np.ndarray]:
    """Cap electrode sites of the head (name -> subject RAS mm), landmarks left out."""
    if not head.has_eeg:
        raise NavigatorError(f"{head.ws.root}: subject has no EEG positions (targets/eeg.csv); "
                             "run `navigator prepare` (EEG 10-10 step) first")
    return {n: np.asarray(head.eeg[n], float) for n in head.eeg.names() if n not in LANDMARKS}


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
