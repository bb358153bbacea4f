"""Piecewise-constant conductivity per tetrahedron (S/m).

Defaults are SimNIBS's (:mod:`navigator.core.tissues`); any tag can be overridden. Unknown
tags (no default and no override) raise a :class:`NavigatorError` naming them.
"""

from __future__ import annotations

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.tissues import default_conductivity, tissue_name


def conductivity_table(tags: list[int] | np.ndarray, overrides: dict[int, float] | None = None) -> dict[int, float]:
    """tag -> conductivity (S/m) for the given volume tags, with ``overrides`` applied.

    Raises NavigatorError for tags with no default and no override, and for non-positive values.
    """
    overrides = {int(k): float(v) for k, v in (overrides or {}).items()}
    table: dict[int, float] = {}
    unknown = []
    for t in sorted({int(t) for t in np.asarray(tags).ravel()}):
        if t in overrides:
            table[t] = overrides[t]
            continue
        try:
            table[t] = default_conductivity(t)
        except KeyError:
            unknown.append(t)
    if unknown:
        raise NavigatorError(
            f"no conductivity for tissue tag(s) {', '.join(map(str, unknown))}: "
            "give one with --conductivity TAG=S_PER_M"
        )
    for t, s in table.items():
        if not np.isfinite(s) or s <= 0:
            raise NavigatorError(f"conductivity of tag {t} ({tissue_name(t)}) must be > 0 S/m, got {s}")
    return table


def conductivity_per_tet(mesh: Mesh, overrides: dict[int, float] | None = None) -> np.ndarray:
    """(M,) float64 conductivity of each tetrahedron in S/m.

    Args:
        mesh: head mesh with ``tet_tags``.
        overrides: tag -> S/m replacing the SimNIBS defaults (tags absent from the mesh are ignored).
    """
    tags = mesh.tet_tags
    uniq, inverse = np.unique(tags, return_inverse=True)
    table = conductivity_table(uniq, overrides)
    values = np.array([table[int(t)] for t in uniq], dtype=np.float64)
    return values[inverse.reshape(-1)]


def parse_conductivity_overrides(items: list[str] | None) -> dict[int, float]:
    """Parse CLI items ``TAG=S_PER_M`` into {tag: S/m}; NavigatorError on bad syntax."""
    out: dict[int, float] = {}
    for item in items or []:
        try:
            tag_s, val_s = item.split("=", 1)
            tag, val = int(tag_s), float(val_s)
        except ValueError:
            raise NavigatorError(f"bad --conductivity {item!r}: expected TAG=S_PER_M, e.g. 2=0.275") from None
        if not np.isfinite(val) or val <= 0:
            raise NavigatorError(f"bad --conductivity {item!r}: conductivity must be > 0 S/m")
        out[tag] = val
    return out
