"""Scalp-measurement rules clinicians use to find the DLPFC without an MRI-based target.

- **Beam F3** (Beam et al. 2009, Brain Stimul 2:50-54): from the nasion-inion (NI) and
  tragus-tragus (TT) arcs over the vertex and the head circumference (HC) through Fpz, T7, Oz
  and T8, F3 lies ``Y = 0.2637 (NI + TT) / 2`` along the scalp from the vertex towards the point
  ``X = 0.1154 HC`` along the circumference from the midline (Fpz) to the left. These are the
  constants used by published reimplementations of the Beam spreadsheet; the resulting F3 is
  compared with the 10-10 F3 in the validation docs. The tragus is approximated by the
  preauricular points. All arcs are measured on this subject's scalp surface.
- **5 cm / 5.5 cm rules**: the point 5 (5.5) cm anterior to the motor hotspot along the scalp,
  in the parasagittal plane through the hotspot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from navigator.core.surface import Surface
from navigator.io.eeg_positions import EegPositions
from navigator.targets.eeg import Fiducials
from navigator.targets.geometry import (
    SurfaceQuery,
    point_at_length,
    polyline_length,
    surface_arc,
    walk_in_plane,
)

BEAM_X_FRACTION = 0.1154
BEAM_Y_FRACTION = 0.2637


@dataclass
class HeadMeasurements:
    """Scalp arc lengths in mm."""

    nasion_inion: float
    tragus_tragus: float
    circumference: float


def head_measurements(scalp: Surface, fid: Fiducials, eeg: EegPositions) -> HeadMeasurements:
    cz = eeg["Cz"]
    ni = polyline_length(surface_arc(scalp, eeg["Nz"], eeg["Iz"], cz))
    tt = polyline_length(surface_arc(scalp, eeg["LPA"], eeg["RPA"], cz))
    left = polyline_length(surface_arc(scalp, eeg["Fpz"], eeg["Oz"], eeg["T7"]))
    right = polyline_length(surface_arc(scalp, eeg["Fpz"], eeg["Oz"], eeg["T8"]))
    return HeadMeasurements(ni, tt, left + right)


def beam_f3(scalp: Surface, fid: Fiducials, eeg: EegPositions) -> tuple[np.ndarray, HeadMeasurements]:
    """Beam F3 on the scalp (subject RAS mm) and the head measurements it used."""
    m = head_measurements(scalp, fid, eeg)
    ring_left = surface_arc(scalp, eeg["Fpz"], eeg["Oz"], eeg["T7"])
    x_point = point_at_length(ring_left, BEAM_X_FRACTION * m.circumference)
    centre = (eeg["Nz"] + eeg["Iz"] + eeg["LPA"] + eeg["RPA"]) / 4
    arc = surface_arc(scalp, eeg["Cz"], x_point, centre, shortest=True)
    y = BEAM_Y_FRACTION * (m.nasion_inion + m.tragus_tragus) / 2
    return point_at_length(arc, min(y, polyline_length(arc))), m


def anterior_rule(scalp: Surface, fid: Fiducials, hotspot: np.ndarray, distance_mm: float) -> np.ndarray:
    """The scalp point ``distance_mm`` anterior to ``hotspot`` in its parasagittal plane."""
    q = SurfaceQuery(scalp)
    start = q.closest_point(hotspot)[0][0]
    left_right = fid.rpa - fid.lpa
    anterior = fid.nasion - fid.inion
    normal = left_right - anterior * (left_right @ anterior) / (anterior @ anterior)
    return walk_in_plane(scalp, start, normal, anterior, distance_mm)
