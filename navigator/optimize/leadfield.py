"""tDCS leadfields: the ROI-mean field of every electrode of a cap, from one FEM system.

HD leadfield (:func:`hd_leadfield`): all cap electrodes (default 10 mm gel discs) are attached
to the head at once with the complete electrode model (:class:`navigator.tes.cem.ElectrodeSystem`);
one AMG hierarchy is built and reused for the unit solves. Column i holds the ROI-mean field
(V/m per A) for +1 A into electrode i returned through the reference electrode (the last one,
whose column is zero), so for currents I summing to zero the ROI-mean field is ``G @ I``.

With ``keep_elements=True`` the per-element fields of every region are kept as well
(``Leadfield.elements[name]``: (L, M_k, 3) V/m per A, with the tet volumes in
``Leadfield.volumes[name]``), which nonlinear objectives (temporal-interference envelopes)
need: the field of pair (a, b) at current I is ``I * (elements[a] - elements[b])``.
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
        elements: region name -> (L, M_k, 3) per-element field per unit current (V/m per A),
            only with ``keep_elements``; volumes: region name -> (M_k,) tet volumes, m^3;
            indices: region name -> (M_k,) tet indices of the region.
        dropped: names left out because their disc shared scalp nodes with an earlier one
            (only with ``drop_overlaps``).
    """

    names: list[str]
    positions: np.ndarray
    roi: dict[str, np.ndarray]
    system: object = None
    electrodes: list = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    elements: dict[str, np.ndarray] = field(default_factory=dict)
    volumes: dict[str, np.ndarray] = field(default_factory=dict)
    indices: dict[str, np.ndarray] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

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
                 diameter_mm: float = 10.0, keep_elements: bool = False, drop_overlaps: bool = False,
                 progress: Progress | None = None) -> Leadfield:
    """Leadfield of disc electrodes at ``positions`` (name -> mm) for the tet ``masks`` (name -> bool);
    ``keep_elements`` also keeps the per-element fields of the masks (see the module docstring).
    Overlapping discs (sharing a scalp node) are an error, or with ``drop_overlaps`` left out
    greedily in the order of ``positions`` (earlier ones kept; ``Leadfield.dropped``)."""
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
    dropped: list[str] = []
    if drop_overlaps:
        taken: set[int] = set()
        keep = []
        for e in placed:
            nodes = {int(e.node)} if e.is_point else set(np.unique(e.triangles).tolist())
            if nodes & taken:
                dropped.append(e.name)
                continue
            taken |= nodes
            keep.append(e)
        placed = keep
        names = [e.name for e in placed]
        if len(placed) < 2:
            raise NavigatorError("fewer than two cap discs fit on the scalp without overlapping")
    check_overlaps(placed)
    timings["place"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    system = ElectrodeSystem(mesh, sigma, placed, progress.sub(0.0, 0.05, "assembly"))
    timings["assembly"] = time.perf_counter() - t0
    L = len(names)
    roi = {k: np.zeros((3, L)) for k in masks}
    vol = system.fem.volumes
    idx = {k: np.flatnonzero(m) for k, m in masks.items()}
    elements = {k: np.zeros((L, len(i), 3)) for k, i in idx.items()} if keep_elements else {}
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
        for k, el in elements.items():
            el[i] = E[idx[k]]
    timings["solves"] = time.perf_counter() - t0
    timings.update({f"fem_{k}": v for k, v in system.fem.timings.items()})
    sub.update(1.0, "leadfield done")
    return Leadfield(names, np.array([e.center for e in placed]), roi, system, placed, timings, elements,
                     {k: np.asarray(vol[i], float) for k, i in idx.items()}, idx, dropped)
