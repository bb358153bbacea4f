"""Standard temporal-interference montages around a target, built on the subject's cap.

The comparisons of ``navigator optimize tdcs --mode ti`` (and benchmarks/bench_ti.py): the
montage geometries of the TI literature, placed around the target's scalp entry point with the
cap's own electrode spacing s (median nearest-neighbour distance of the positions within 60 mm):

* ``cross``: channel 1 anterior-posterior, channel 2 left-right, each pair 2 s either side of
  the target (the crossed pairs of Grossman et al. 2017, fig. 1, centred on the target);
* ``diagonal-cross``: the same rotated by 45 degrees;
* ``parallel-ap``: two anterior-posterior pairs (2 s either side), one s lateral and one s medial
  of the target (the side-by-side pairs of Grossman et al. 2017, fig. 2);
* ``parallel-lr``: two left-right pairs, one s anterior and one s posterior;
* ``wide-cross``: the cross with 3 s arms;
* ``simnibs-example``: F5-P5 and F6-P6, the montage of the SimNIBS TI tutorial (when the cap has
  these positions).

Each arm end is the cap position nearest (3-D) to entry + offset in the scalp's tangent plane
(anterior = world +y projected, lateral = anterior x normal). Montages whose four electrodes are
not distinct are dropped, as are duplicates.
"""

from __future__ import annotations

import numpy as np

from navigator.core.errors import NavigatorError


def cap_spacing(positions: np.ndarray, point: np.ndarray, radius_mm: float = 60.0) -> float:
    """Median nearest-neighbour distance (mm) of the cap positions within ``radius_mm`` of ``point``."""
    from scipy.spatial import cKDTree

    P = np.asarray(positions, float)
    near = P[np.linalg.norm(P - point, axis=1) <= radius_mm]
    if len(near) < 3:
        near = P
    d, _ = cKDTree(P).query(near, k=2)
    return float(np.median(d[:, 1]))


def standard_ti_montages(positions: dict[str, np.ndarray], entry: np.ndarray,
                         normal: np.ndarray) -> list[tuple[str, tuple[tuple[str, str], tuple[str, str]]]]:
    """[(name, ((a, b), (c, d)))] electrode names of the standard montages (module docstring).

    ``entry``: the target's scalp point (mm); ``normal``: outward scalp normal there.
    """
    names = list(positions)
    if len(names) < 4:
        raise NavigatorError("standard TI montages need at least 4 cap positions")
    P = np.array([positions[k] for k in names], float)
    entry = np.asarray(entry, float).reshape(3)
    n = np.asarray(normal, float).reshape(3)
    n = n / np.linalg.norm(n)
    ant = np.array([0.0, 1.0, 0.0]) - n[1] * n
    if np.linalg.norm(ant) < 0.2:  # looking along y (frontal pole / occiput): use superior
        ant = np.array([0.0, 0.0, 1.0]) - n[2] * n
    ant /= np.linalg.norm(ant)
    lat = np.cross(ant, n)
    s = cap_spacing(P, entry)

    def at(offset: np.ndarray) -> str:
        return names[int(np.argmin(np.linalg.norm(P - (entry + offset), axis=1)))]

    def pair(u: np.ndarray, arm: float, shift: np.ndarray | None = None) -> tuple[str, str]:
        c = np.zeros(3) if shift is None else shift
        return at(c + arm * u), at(c - arm * u)

    diag1, diag2 = (ant + lat) / np.sqrt(2), (ant - lat) / np.sqrt(2)
    cands = [
        ("cross", (pair(ant, 2 * s), pair(lat, 2 * s))),
        ("diagonal-cross", (pair(diag1, 2 * s), pair(diag2, 2 * s))),
        ("parallel-ap", (pair(ant, 2 * s, s * lat), pair(ant, 2 * s, -s * lat))),
        ("parallel-lr", (pair(lat, 2 * s, s * ant), pair(lat, 2 * s, -s * ant))),
        ("wide-cross", (pair(ant, 3 * s), pair(lat, 3 * s))),
    ]
    lower = {k.lower(): k for k in names}
    if all(k in lower for k in ("f5", "p5", "f6", "p6")):
        cands.append(("simnibs-example", ((lower["f5"], lower["p5"]), (lower["f6"], lower["p6"]))))
    out, seen = [], set()
    for name, ((a, b), (c, d)) in cands:
        key = frozenset((frozenset((a, b)), frozenset((c, d))))
        if len({a, b, c, d}) < 4 or key in seen:
            continue
        seen.add(key)
        out.append((name, ((a, b), (c, d))))
    return out
