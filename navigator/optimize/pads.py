"""Conventional two-pad tDCS montage search on the 10-10 positions.

Each candidate pad (default 5 x 5 cm) at a 10-10 position is modelled, for the search, as a
current-controlled electrode with a uniform current density over its scalp footprint (a
Neumann source, so fields superpose exactly): one grounded FEM system, one AMG hierarchy,
one solve per candidate for +1 A into the pad and -1 A out of a reference pad. The field of
the pair (anode a, cathode c) at current I is then I (L_a - L_c). Pairs whose footprints
overlap are skipped. The best pair is re-simulated with the complete electrode model
(:func:`navigator.tes.simulate.simulate_tdcs`) for the reported field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress


@dataclass
class PadLeadfield:
    """names (P,), roi: region -> (3, P) mean field per A (V/m per A) vs the reference pad
    (names[-1], zero column), nodes: per pad the set of scalp nodes under it."""

    names: list[str]
    roi: dict[str, np.ndarray]
    nodes: list[set]
    timings: dict[str, float] = field(default_factory=dict)


def pad_leadfield(mesh: Mesh, sigma: np.ndarray, positions: dict[str, np.ndarray], masks: dict[str, np.ndarray], *,
                  size_mm: tuple[float, float] = (50.0, 50.0), progress: Progress | None = None) -> PadLeadfield:
    from navigator.fem.assembly import triangle_mass
    from navigator.fem.system import FemSystem
    from navigator.optimize.leadfield import roi_means
    from navigator.tes.electrodes import ElectrodeSpec, Scalp, place_electrode

    progress = ensure_progress(progress)
    t0 = time.perf_counter()
    scalp = Scalp(mesh)
    names, loads, nodes = [], [], []
    for n, p in positions.items():
        try:
            e = place_electrode(scalp, ElectrodeSpec(n, 0.0, "rect", size_mm), np.asarray(p, float))
        except NavigatorError:
            continue
        _, b, areas = triangle_mass(mesh.nodes, e.triangles, np.full(len(e.triangles), 1.0), mesh.n_nodes)
        names.append(n)
        loads.append(b / areas.sum())  # 1 A spread uniformly over the footprint
        nodes.append(set(np.unique(e.triangles).tolist()))
    if len(names) < 2:
        raise NavigatorError("fewer than two pad positions fit on the scalp")
    timings = {"place": time.perf_counter() - t0}
    t0 = time.perf_counter()
    system = FemSystem(mesh, sigma)
    system.setup()
    timings["assembly_setup"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    roi = {k: np.zeros((3, len(names))) for k in masks}
    for i in range(len(names) - 1):
        progress.update(i / (len(names) - 1), f"pad {i + 1}/{len(names) - 1}")
        r = system.solve(loads[i] - loads[-1])
        E = -system.gradient(r.v)
        for k, m in roi_means(E, system.volumes, masks).items():
            roi[k][:, i] = m
    timings["solves"] = time.perf_counter() - t0
    return PadLeadfield(names, roi, nodes, timings)


def best_pad_pair(lf: PadLeadfield, current_a: float, *, objective: str = "normal",
                  direction: np.ndarray | None = None) -> dict:
    """The (anode, cathode) pair maximizing the objective at ``current_a``; returns a dict."""
    G = lf.roi["target"] * current_a
    P = len(lf.names)
    E = G[:, :, None] - G[:, None, :]  # (3, a, c)
    if objective == "magnitude":
        score = np.linalg.norm(E, axis=0)
    else:
        d = np.asarray(direction, float)
        score = np.einsum("i,iac->ac", d / np.linalg.norm(d), E)
    for a in range(P):
        score[a, a] = -np.inf
        for c in range(a + 1, P):
            if lf.nodes[a] & lf.nodes[c]:
                score[a, c] = score[c, a] = -np.inf
    a, c = np.unravel_index(int(np.argmax(score)), score.shape)
    return {"anode": lf.names[a], "cathode": lf.names[c], "objective_v_per_m": float(score[a, c]),
            "field_vector_v_per_m": E[:, a, c].tolist(), "pairs_searched": int(np.isfinite(score).sum())}
