"""tDCS leadfields: the ROI-mean field of every electrode of a cap, from one FEM system.

HD leadfield (:func:`hd_leadfield`): all cap electrodes (default 10 mm gel discs) are attached
to the head at once with the complete electrode model (:class:`navigator.tes.cem.ElectrodeSystem`);
one AMG hierarchy is built and reused for the unit solves. Column i holds the ROI-mean field
(V/m per A) for +1 A into electrode i returned through the reference electrode (the last one,
whose column is zero), so for currents I summing to zero the ROI-mean field is ``G @ I``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress


@dataclass
class Leadfield:
    """Per-electrode ROI-mean fields.

    Attributes:
        names: (L,) electrode names; positions: (L, 3) electrode centres on the scalp, mm.
        roi: region name -> (3, L) mean field per unit current (V/m per A).
        system: the electrode system (``system.solve(currents_a)`` gives the full potential).
        electrodes: the placed electrodes. timings: seconds per stage.
    """

    names: list[str]
    positions: np.ndarray
    roi: dict[str, np.ndarray]
    system: object = None
    electrodes: list = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.names)


def roi_means(E: np.ndarray, volumes: np.ndarray, masks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """name -> (3,) volume-weighted mean of E (M, 3) over each mask."""
    out = {}
    for name, m in masks.items():
        v = volumes[m]
        out[name] = (E[m] * v[:, None]).sum(axis=0) / v.sum()
    return out


def hd_leadfield(mesh: Mesh, sigma: np.ndarray, positions: dict[str, np.ndarray], masks: dict[str, np.ndarray], *,
                 diameter_mm: float = 10.0, progress: Progress | None = None) -> Leadfield:
    """Leadfield of disc electrodes at ``positions`` (name -> mm) for the tet ``masks`` (name -> bool)."""
    from navigator.tes.cem import ElectrodeSystem
    from navigator.tes.electrodes import ElectrodeSpec, Scalp, check_overlaps, place_electrode

    progress = ensure_progress(progress)
    if len(positions) < 2:
        raise NavigatorError("a leadfield needs at least two electrode positions")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    scalp = Scalp(mesh)
    names = list(positions)
    placed = [place_electrode(scalp, ElectrodeSpec(position=n, current_ma=0.0, shape="disc", size_mm=(diameter_mm,),
                                                    name=n), np.asarray(positions[n], float)) for n in names]
    check_overlaps(placed)
    timings["place"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    system = ElectrodeSystem(mesh, sigma, placed, progress.sub(0.0, 0.05, "assembly"))
    timings["assembly"] = time.perf_counter() - t0
    L = len(names)
    roi = {k: np.zeros((3, L)) for k in masks}
    vol = system.fem.volumes
    t0 = time.perf_counter()
    sub = progress.sub(0.05, 1.0, "leadfield")
    for i in range(L - 1):
        sub.update(i / (L - 1), f"electrode {i + 1}/{L - 1}")
        I = np.zeros(L)
        I[i], I[-1] = 1.0, -1.0
        sol = system.solve(I)  # the first call runs the L-1 unit solves (one AMG hierarchy)
        E = -system.fem.gradient(sol.v)
        for k, m in roi_means(E, vol, masks).items():
            roi[k][:, i] = m
    timings["solves"] = time.perf_counter() - t0
    timings.update({f"fem_{k}": v for k, v in system.fem.timings.items()})
    sub.update(1.0, "leadfield done")
    return Leadfield(names, np.array([e.center for e in placed]), roi, system, placed, timings)
