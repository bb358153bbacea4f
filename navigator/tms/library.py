"""Bundled coil library: parametric models of commonly used coils from published dimensions.

Each entry is built with :mod:`navigator.tms.parametric` (dipole representation) from the
winding dimensions given below, with the maximum dI/dt of the usual stimulator at 100 % MSO.
The numbers and their sources/uncertainty are stored with each entry (``notes``) and listed
in ``docs/tms.md``. These are *approximations* of the real coils: only the Magstim D70 model
is checked against a measured model (|dA/dt| within about 5 % of peak on a plane 15 mm below
the coil; ``tests/test_coils_library.py``). For quantitative work use a measured model
(e.g. the SimNIBS/Drakaki 2022 ``.ccd`` files) with ``--coil FILE``.

Coil files can also be given by path: ``.ccd``, ``.tcd``, ``.nii``/``.nii.gz``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from navigator.core.errors import InputError, NavigatorError
from navigator.tms.coil import Coil
from navigator.tms.parametric import WindingGeometry, circular_coil, double_cone_coil, figure_of_eight_coil


@dataclass(frozen=True)
class LibraryEntry:
    """One bundled coil: how to build it and what its numbers rest on."""

    name: str
    kind: str  # "figure-of-eight", "double-cone", "circular"
    brand: str
    stimulator: str
    max_didt: float  # A/s at 100 % MSO
    geometry: WindingGeometry
    wing_spacing: float | None = None  # mm, figure-of-eight / double cone
    wing_angle: float = 0.0  # degrees
    aliases: tuple[str, ...] = ()
    notes: str = ""
    extra: dict = field(default_factory=dict)

    def build(self) -> Coil:
        meta = dict(max_didt=self.max_didt, stimulator=self.stimulator, brand=self.brand,
                    source="library", notes=self.notes)
        if self.kind == "circular":
            return circular_coil(self.name, self.geometry, **meta)
        if self.kind == "double-cone":
            return double_cone_coil(self.name, self.geometry, wing_angle=self.wing_angle,
                                    wing_spacing=self.wing_spacing, **meta)
        return figure_of_eight_coil(self.name, self.geometry, wing_spacing=self.wing_spacing,
                                    wing_angle=self.wing_angle, **meta)


A_PER_US = 1e6  # A/s per A/us

LIBRARY: dict[str, LibraryEntry] = {e.name: e for e in [
    LibraryEntry(
        name="Magstim_D70", kind="figure-of-eight", brand="Magstim", stimulator="Magstim Rapid2",
        max_didt=114.73 * A_PER_US,
        geometry=WindingGeometry(inner_radius=28.0, outer_radius=43.5, turns=9, layers=1,
                                 winding_height=7.0, bottom_offset=6.0),
        wing_spacing=92.0, aliases=("D70", "Magstim_70mm", "Magstim_70mm_Fig8"),
        notes="Windings per wing: inner diameter 56 mm, outer 87 mm, 9 turns, one layer (Thielscher & "
              "Kammer 2004, Magstim 70 mm double coil). Winding height 7 mm, casing bottom 6 mm and wing "
              "centre spacing 92 mm (outer diameter + 5 mm) are estimates. dI/dt max 114.73 A/us with a "
              "Magstim Rapid (header of the Drakaki et al. 2022 D70 model). Checked against that "
              "measured model: |dA/dt| within ~5 % of peak 15 mm below the coil."),
    LibraryEntry(
        name="MagVenture_MCF-B65", kind="figure-of-eight", brand="MagVenture", stimulator="MagPro X100",
        max_didt=150.0 * A_PER_US,
        geometry=WindingGeometry(inner_radius=10.0, outer_radius=37.5, turns=10, layers=2,
                                 winding_height=8.0, bottom_offset=4.0),
        wing_spacing=77.0, aliases=("MCF-B65", "Cool-B65", "MagVenture_Cool-B65", "B65"),
        notes="Outer winding diameter 75 mm per wing (manufacturer nominal), 10 turns per wing in two "
              "layers of 5 (as the MC-B70 family); inner diameter 20 mm, winding height 8 mm, casing "
              "bottom 4 mm and 77 mm wing spacing are estimates. dI/dt max ~150 A/us with MagPro X100 "
              "(order of the Drakaki 2022 values for B65-type coils; uncertainty ~ +-10 %). The Cool-B65 "
              "has the same windings as the MCF-B65."),
    LibraryEntry(
        name="MagVenture_C-B60", kind="figure-of-eight", brand="MagVenture", stimulator="MagPro X100",
        max_didt=160.0 * A_PER_US,
        geometry=WindingGeometry(inner_radius=10.0, outer_radius=33.0, turns=10, layers=2,
                                 winding_height=8.0, bottom_offset=4.0),
        wing_spacing=68.0, wing_angle=5.0, aliases=("C-B60", "B60"),
        notes="Slightly curved butterfly coil: outer winding diameter ~66 mm per wing, 2 x 5 turns, wings "
              "tilted ~5 degrees towards the head; inner diameter, winding height and spacing are estimates. "
              "dI/dt max ~160 A/us with MagPro X100 (uncertainty ~ +-15 %)."),
    LibraryEntry(
        name="Magstim_DCC_110mm", kind="double-cone", brand="Magstim", stimulator="Magstim 200^2",
        max_didt=80.0 * A_PER_US,
        geometry=WindingGeometry(inner_radius=32.0, outer_radius=62.5, turns=10, layers=1,
                                 winding_height=8.0, bottom_offset=6.0),
        wing_spacing=129.0, wing_angle=42.5, aliases=("DCC", "double-cone", "Magstim_DCC"),
        notes="Magstim 110 mm double-cone coil: two wings of ~110 mm mean diameter (outer ~125 mm), "
              "10 turns each, ~95 degrees between the wings (tilt 42.5 degrees each). Turn count, inner "
              "diameter and dI/dt max (~80 A/us with a Magstim 200^2) are estimates (uncertainty ~ +-25 %)."),
    LibraryEntry(
        name="Magstim_90mm_circular", kind="circular", brand="Magstim", stimulator="Magstim 200^2",
        max_didt=90.0 * A_PER_US,
        geometry=WindingGeometry(inner_radius=33.0, outer_radius=57.0, turns=14, layers=1,
                                 winding_height=8.0, bottom_offset=6.0),
        aliases=("90mm", "circular", "Magstim_90mm"),
        notes="Magstim 90 mm circular coil: mean winding diameter ~90 mm (inner ~66 mm, outer ~114 mm), "
              "14 turns. Turn count and dI/dt max (~90 A/us with a Magstim 200^2) are estimates "
              "(uncertainty ~ +-25 %)."),
]}

_cache: dict[str, Coil] = {}


def library_names() -> list[str]:
    return sorted(LIBRARY)


def find_entry(name: str) -> LibraryEntry | None:
    """Library entry by name or alias (case-insensitive), or None."""
    key = name.strip().lower()
    for e in LIBRARY.values():
        if key == e.name.lower() or key in (a.lower() for a in e.aliases):
            return e
    return None


def library_coil(name: str) -> Coil:
    """Build (and cache) a bundled coil by name or alias."""
    e = find_entry(name)
    if e is None:
        raise NavigatorError(f"unknown coil {name!r}; `navigator coils list` shows the library "
                             f"({', '.join(library_names())}) or give a .ccd/.tcd/.nii.gz file")
    if e.name not in _cache:
        _cache[e.name] = e.build()
    return _cache[e.name]


def load_coil(name_or_path: str | Path) -> Coil:
    """A library coil by name, or a coil file (.ccd, .tcd, .nii, .nii.gz) by path."""
    p = Path(name_or_path)
    lower = p.name.lower()
    if lower.endswith((".ccd", ".tcd", ".nii", ".nii.gz")):
        if not p.is_file():
            raise InputError(p, "coil file not found")
        if lower.endswith(".ccd"):
            from navigator.tms.ccd import read_ccd

            return read_ccd(p)
        if lower.endswith(".tcd"):
            from navigator.tms.tcd import read_tcd

            return read_tcd(p)
        from navigator.tms.grid_coil import read_nifti_coil

        return read_nifti_coil(p)
    if p.is_file():
        raise InputError(p, "unknown coil file type (use .ccd, .tcd, .nii or .nii.gz)")
    return library_coil(str(name_or_path))


