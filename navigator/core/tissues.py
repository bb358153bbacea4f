"""Tissue labels and default conductivities (SimNIBS numbering; values in S/m).

Volume tag N is a tissue; surface triangles bounding tissue N carry tag 1000 + N.
Label 0 in label images is background (air outside the head and air cavities inside it).
"""

from __future__ import annotations

from dataclasses import dataclass

WM, GM, CSF, BONE, SCALP, EYES, COMPACT_BONE, SPONGY_BONE, BLOOD, MUSCLE = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
SURFACE_OFFSET = 1000


@dataclass(frozen=True)
class Tissue:
    tag: int
    name: str
    conductivity: float  # S/m


TISSUES: dict[int, Tissue] = {
    t.tag: t
    for t in [
        Tissue(WM, "white matter", 0.126),
        Tissue(GM, "grey matter", 0.275),
        Tissue(CSF, "CSF", 1.654),
        Tissue(BONE, "bone", 0.010),
        Tissue(SCALP, "scalp", 0.465),
        Tissue(EYES, "eye balls", 0.5),
        Tissue(COMPACT_BONE, "compact bone", 0.008),
        Tissue(SPONGY_BONE, "spongy bone", 0.025),
        Tissue(BLOOD, "blood", 0.6),
        Tissue(MUSCLE, "muscle", 0.16),
    ]
}

ELECTRODE_RUBBER_RANGE = range(100, 500)
ELECTRODE_GEL_RANGE = range(500, 900)
RUBBER_CONDUCTIVITY = 29.4
GEL_CONDUCTIVITY = 1.0


def default_conductivity(tag: int) -> float:
    """SimNIBS default conductivity (S/m) for a volume tag; KeyError for an unknown tag."""
    if tag in TISSUES:
        return TISSUES[tag].conductivity
    if tag in ELECTRODE_RUBBER_RANGE:
        return RUBBER_CONDUCTIVITY
    if tag in ELECTRODE_GEL_RANGE:
        return GEL_CONDUCTIVITY
    raise KeyError(f"no default conductivity for tissue tag {tag}")


def tissue_name(tag: int) -> str:
    if tag in TISSUES:
        return TISSUES[tag].name
    if tag in ELECTRODE_RUBBER_RANGE:
        return f"electrode rubber {tag}"
    if tag in ELECTRODE_GEL_RANGE:
        return f"electrode gel {tag}"
    if tag > SURFACE_OFFSET:
        return f"surface of {tissue_name(tag - SURFACE_OFFSET)}"
    return f"tag {tag}"
