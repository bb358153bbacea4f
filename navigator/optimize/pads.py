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


def pad_angles(size_mm: tuple[float, float], step_deg: float) -> np.ndarray:
    """Rotation angles (degrees) to search for a pad of ``size_mm``: [0, 90) for a square pad
    (it repeats every 90 degrees), [0, 180) otherwise; just 0 when ``step_deg`` is 0."""
    if step_deg <= 0:
        return np.zeros(1)
    period = 90.0 if abs(size_mm[0] - size_mm[1]) < 1e-9 else 180.0
    return np.arange(0.0, period - 1e-9, float(step_deg))


def best_pad_rotation(mesh: Mesh, sigma: np.ndarray, anode: tuple[str, np.ndarray], cathode: tuple[str, np.ndarray],
                      masks: dict[str, np.ndarray], *, size_mm: tuple[float, float], current_a: float,
                      objective: str = "normal", direction: np.ndarray | None = None, step_deg: float = 15.0,
                      progress: Progress | None = None) -> dict:
    """Rotate both pads of a pair about their centre normals and keep the best pair of angles.

    Each pad at each angle (:func:`pad_angles`) is a uniform-current-density Neumann source as in
    :func:`pad_leadfield`; the field of (anode at a, cathode at c) is the superposition of
    (anode(a) - cathode(0)) and (cathode(c) - cathode(0)) solves on one AMG hierarchy
    (2 K - 1 solves for K angles). Angle pairs whose footprints overlap are skipped. Returns a dict
    with the angles (degrees, counter-clockwise seen from outside, from the default y axis =
    world superior projected), the objective (V/m) at the best angles and at (0, 0), and the grid.
    """
    from navigator.fem.assembly import triangle_mass
    from navigator.fem.system import FemSystem
    from navigator.optimize.leadfield import roi_means
    from navigator.tes.electrodes import ElectrodeSpec, Scalp, place_electrode

    progress = ensure_progress(progress)
    t0 = time.perf_counter()
    angles = pad_angles(size_mm, step_deg)
    scalp = Scalp(mesh)

    def load(name: str, pos: np.ndarray, ang: float):
        e = place_electrode(scalp, ElectrodeSpec(name, 0.0, "rect", size_mm, angle_deg=float(ang)), np.asarray(pos, float))
        _, b, areas = triangle_mass(mesh.nodes, e.triangles, np.full(len(e.triangles), 1.0), mesh.n_nodes)
        return b / areas.sum(), set(np.unique(e.triangles).tolist()), e.y_axis

    A = [load(anode[0], anode[1], a) for a in angles]
    C = [load(cathode[0], cathode[1], a) for a in angles]
    system = FemSystem(mesh, sigma)
    system.setup()
    ref = C[0][0]
    K = len(angles)
    Ea, Ec = np.zeros((K, 3)), np.zeros((K, 3))
    jobs = [("a", k) for k in range(K)] + [("c", k) for k in range(1, K)]
    for n, (kind, k) in enumerate(jobs):
        progress.update(n / len(jobs), f"pad rotation solve {n + 1}/{len(jobs)}")
        rhs = (A[k][0] if kind == "a" else C[k][0]) - ref
        E = -system.gradient(system.solve(rhs).v)
        (Ea if kind == "a" else Ec)[k] = roi_means(E, system.volumes, {"t": masks["target"]})["t"]
    E = (Ea[:, None, :] - Ec[None, :, :]) * current_a  # (K, K, 3)
    if objective == "magnitude":
        score = np.linalg.norm(E, axis=-1)
    else:
        d = np.asarray(direction, float)
        score = E @ (d / np.linalg.norm(d))
    for i in range(K):
        for j in range(K):
            if A[i][1] & C[j][1]:
                score[i, j] = -np.inf
    if not np.isfinite(score).any():
        raise NavigatorError(f"pads {anode[0]} and {cathode[0]} overlap at every rotation")
    i, j = np.unravel_index(int(np.argmax(score)), score.shape)
    progress.update(1.0, "pad rotation done")
    return {"anode_angle_deg": float(angles[i]), "cathode_angle_deg": float(angles[j]),
            "anode_y_axis": A[i][2].tolist(), "cathode_y_axis": C[j][2].tolist(),
            "objective_v_per_m": float(score[i, j]), "objective_unrotated_v_per_m": float(score[0, 0]),
            "angles_deg": angles.tolist(), "score_grid_v_per_m": np.where(np.isfinite(score), score, np.nan).tolist(),
            "solves": len(jobs), "seconds": time.perf_counter() - t0}
