"""The :class:`Coil` record: what a TMS coil model is made of.

Coil frame: origin at the centre of the coil's bottom face (the face that touches the head),
**z = coil normal pointing into the head**, **y = handle direction**, x = y cross z.
All geometry is in **millimetres in the coil frame** (``.ccd`` files store metres; the reader
converts). Sources are given per ampere of coil current, so the primary field is
``dA/dt = dI/dt * A_per_ampere``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from navigator.core.surface import Surface


@dataclass
class GridField:
    """Vector potential sampled on a regular grid (NIfTI coils, ``.tcd`` type-3 elements).

    Attributes:
        data: (X, Y, Z, 3) float array, vector potential per ampere of coil current in T m / A
            (equivalently dA/dt in V/m per A/s), components along the coil-frame axes.
        affine: 4x4 voxel index -> coil-frame mm.
    """

    data: np.ndarray
    affine: np.ndarray

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, dtype=np.float64)
        self.affine = np.asarray(self.affine, dtype=np.float64).reshape(4, 4)
        if self.data.ndim != 4 or self.data.shape[3] != 3:
            raise ValueError(f"grid coil data must be (X, Y, Z, 3), got {self.data.shape}")

    def sample(self, points_mm: np.ndarray) -> np.ndarray:
        """(N, 3) vector potential per ampere (T m / A) at (N, 3) coil-frame points (mm), by
        trilinear interpolation; 0 outside the grid."""
        from scipy.ndimage import map_coordinates

        pts = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
        inv = np.linalg.inv(self.affine)
        ijk = (pts @ inv[:3, :3].T + inv[:3, 3]).T
        out = np.empty((len(pts), 3))
        for c in range(3):
            out[:, c] = map_coordinates(self.data[..., c], ijk, order=1, mode="constant", cval=0.0)
        return out


@dataclass
class Coil:
    """A TMS coil model; every source is optional, the field is the sum of all of them.

    Attributes:
        name: display name (e.g. ``"Magstim D70"``).
        dipole_positions: (D, 3) magnetic dipole positions, **mm**, coil frame.
        dipole_moments: (D, 3) dipole moments per ampere of coil current, A m^2 / A.
        segment_starts: (S, 3) start points of straight current segments, mm, coil frame.
        segment_ends: (S, 3) end points, mm; current flows start -> end.
        segment_currents: (S,) current in each segment per ampere of coil current
            (1 for a single wire; n for n conductors modelled by one segment).
        grid: optional sampled vector potential (:class:`GridField`).
        casing: optional closed triangle surfaces of the coil housing, coil frame mm
            (for display and the scalp collision check).
        max_didt: the stimulator's maximum dI/dt at 100 % MSO with this coil, A/s
            (None if unknown: intensity must then be given as dI/dt).
        stimulator, brand: free text from the file or library entry.
        source: where the model came from (file path, "library", "parametric ...").
        notes: provenance and uncertainty of the numbers (library entries).
    """

    name: str
    dipole_positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    dipole_moments: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    segment_starts: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    segment_ends: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    segment_currents: np.ndarray = field(default_factory=lambda: np.zeros(0))
    grid: GridField | None = None
    casing: list[Surface] = field(default_factory=list)
    max_didt: float | None = None
    stimulator: str = ""
    brand: str = ""
    source: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        self.dipole_positions = np.asarray(self.dipole_positions, dtype=np.float64).reshape(-1, 3)
        self.dipole_moments = np.asarray(self.dipole_moments, dtype=np.float64).reshape(-1, 3)
        if len(self.dipole_positions) != len(self.dipole_moments):
            raise ValueError("dipole_positions and dipole_moments must have the same length")
        self.segment_starts = np.asarray(self.segment_starts, dtype=np.float64).reshape(-1, 3)
        self.segment_ends = np.asarray(self.segment_ends, dtype=np.float64).reshape(-1, 3)
        self.segment_currents = np.asarray(self.segment_currents, dtype=np.float64).reshape(-1)
        if len(self.segment_currents) == 0 and len(self.segment_starts):
            self.segment_currents = np.ones(len(self.segment_starts))
        if not (len(self.segment_starts) == len(self.segment_ends) == len(self.segment_currents)):
            raise ValueError("segment_starts, segment_ends and segment_currents must have the same length")

    @property
    def n_dipoles(self) -> int:
        return len(self.dipole_positions)

    @property
    def n_segments(self) -> int:
        return len(self.segment_starts)

    def is_empty(self) -> bool:
        return self.n_dipoles == 0 and self.n_segments == 0 and self.grid is None

    def kind(self) -> str:
        """Short description of the source representation (for listings)."""
        parts = []
        if self.n_dipoles:
            parts.append(f"{self.n_dipoles} dipoles")
        if self.n_segments:
            parts.append(f"{self.n_segments} segments")
        if self.grid is not None:
            parts.append("grid " + "x".join(str(s) for s in self.grid.data.shape[:3]))
        return ", ".join(parts) or "empty"

    def didt_from_percent_mso(self, percent: float) -> float:
        """dI/dt in A/s for an intensity in % of maximum stimulator output."""
        from navigator.core.errors import NavigatorError

        if self.max_didt is None:
            raise NavigatorError(
                f"coil {self.name!r} has no maximum dI/dt: give the intensity as --didt (A/s) instead of %MSO")
        if not (0.0 < percent <= 100.0):
            raise NavigatorError(f"intensity {percent} %MSO out of range (0, 100]")
        return float(self.max_didt) * percent / 100.0

    def posed_casing(self, pose: np.ndarray) -> Surface | None:
        """All casing surfaces merged into one surface in world mm for a 4x4 pose (None without casing)."""
        if not self.casing:
            return None
        verts, faces, off = [], [], 0
        for s in self.casing:
            verts.append(s.vertices @ pose[:3, :3].T + pose[:3, 3])
            faces.append(s.faces + off)
            off += len(s.vertices)
        return Surface(np.concatenate(verts), np.concatenate(faces))

    def source_points(self) -> np.ndarray:
        """(P, 3) mm points where the coil's sources lie (dipoles, segment ends, grid excluded)."""
        pts = [self.dipole_positions, self.segment_starts, self.segment_ends]
        return np.concatenate([p for p in pts if len(p)] or [np.zeros((0, 3))])
