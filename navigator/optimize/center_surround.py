"""Centre-surround (Nx1, e.g. 4x1 HD) tES montages around a target.

Geometry: the centre disc sits on the scalp at the target's scalp entry point; the N return
discs sit on a ring of radius R (mm, measured in the scalp's tangent plane at the entry, then
projected onto the scalp) at angles phase + 360 k / N degrees from the anterior direction
(world +y projected), counter-clockwise seen from outside.

Currents (A, into the head), centre first:

* ``standard``: the centre carries ``max_total``, each return ``-max_total / N``;
* ``optimized``: with the ROI-mean leadfield G (3, N+1) of these N+1 discs (complete electrode
  model, :func:`navigator.optimize.leadfield.hd_leadfield`) and return magnitudes r_k,

      maximize d . G [sum r, -r_1, ..., -r_N]
      subject to 0 <= r_k <= max_return, sum r <= max_total,
                 |a_j . G_avoid I| <= avoid_max for each avoid region and axis j,

  a linear programme (HiGHS) in r; the centre stays the only anode. For the magnitude
  objective the direction d is refined as in :func:`navigator.optimize.tdcs.optimize_hd`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.optimize.tes_common import MethodOutput


def ring_points(scalp, entry: np.ndarray, normal: np.ndarray, radius_mm: float, n: int,
                phase_deg: float = 0.0) -> np.ndarray:
    """(n, 3) scalp points (mm) of the return electrodes (module docstring)."""
    nrm = np.asarray(normal, float) / np.linalg.norm(normal)
    ant = np.array([0.0, 1.0, 0.0]) - nrm[1] * nrm
    if np.linalg.norm(ant) < 0.2:
        ant = np.array([0.0, 0.0, 1.0]) - nrm[2] * nrm
    ant /= np.linalg.norm(ant)
    lat = np.cross(ant, nrm)
    out = []
    for k in range(int(n)):
        a = np.radians(phase_deg + 360.0 * k / n)
        p = np.asarray(entry, float) + radius_mm * (np.cos(a) * ant - np.sin(a) * lat)
        out.append(scalp.project(p)[0])
    return np.array(out)


def surround_currents(G: np.ndarray, d: np.ndarray, *, max_total_a: float, max_return_a: float,
                      avoid: list[tuple[np.ndarray, float]] | None = None) -> np.ndarray:
    """(N+1,) currents (A; centre first, >= 0; returns <= 0) maximizing d . G I (module docstring)."""
    from scipy.optimize import linprog

    G = np.asarray(G, float)
    N = G.shape[1] - 1
    d = np.asarray(d, float) / np.linalg.norm(d)
    M = np.vstack([np.ones((1, N)), -np.eye(N)])  # I = M r (mA)
    c = -(d @ G @ M) * 1e-3
    A_ub, b_ub = [np.ones(N)], [max_total_a * 1e3]
    for Ga, lim in avoid or []:
        for j in range(3):
            row = np.asarray(Ga, float)[j] @ M * 1e-3
            A_ub += [row, -row]
            b_ub += [float(lim), float(lim)]
    res = linprog(c, A_ub=np.array(A_ub), b_ub=np.array(b_ub), bounds=[(0.0, max_return_a * 1e3)] * N,
                  method="highs")
    if res.status != 0 or res.x is None:
        raise NavigatorError(f"centre-surround currents: no feasible currents ({res.message}); "
                             "relax the avoid limit or the current limits")
    r = np.clip(res.x, 0.0, max_return_a * 1e3) * 1e-3
    r[r < 1e-12] = 0.0
    return M @ r


def optimize_surround(G: np.ndarray, *, objective: str, direction: np.ndarray | None, max_total_a: float,
                      max_return_a: float, avoid: list[tuple[np.ndarray, float]] | None = None) -> np.ndarray:
    """Optimized currents for the "normal" (along ``direction``) or "magnitude" objective."""
    if objective == "normal":
        return surround_currents(G, direction, max_total_a=max_total_a, max_return_a=max_return_a, avoid=avoid)
    if objective != "magnitude":
        raise NavigatorError(f"unknown objective {objective!r}; use normal or magnitude")
    from navigator.optimize.tes_common import sphere_directions

    best, best_v = None, -np.inf
    for d in sphere_directions():
        try:
            I = surround_currents(G, d, max_total_a=max_total_a, max_return_a=max_return_a, avoid=avoid)
        except NavigatorError:
            continue
        v = float(np.linalg.norm(G @ I))
        if v > best_v:
            best, best_v = I, v
    if best is None:
        raise NavigatorError("centre-surround currents: no feasible currents; relax the avoid limit")
    for _ in range(20):
        d = G @ best
        if np.linalg.norm(d) == 0:
            break
        I = surround_currents(G, d, max_total_a=max_total_a, max_return_a=max_return_a, avoid=avoid)
        v = float(np.linalg.norm(G @ I))
        if v <= best_v * (1 + 1e-9):
            break
        best, best_v = I, v
    return best


def snap_to_cap(positions: dict[str, np.ndarray], cap: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The centre and each return moved to the nearest cap position not taken yet (in the given
    order, centre first), named by it: {cap name: position mm}."""
    names, P = list(cap), np.array(list(cap.values()), float)
    if len(names) < len(positions):
        raise NavigatorError(f"the cap has {len(names)} positions, fewer than the {len(positions)} discs")
    out: dict[str, np.ndarray] = {}
    for p in positions.values():
        d = np.linalg.norm(P - np.asarray(p, float), axis=1)
        for k in np.argsort(d, kind="stable"):
            if names[k] not in out:
                out[names[k]] = P[k].copy()
                break
    return out


def optimize_center_surround_workspace(head, search, *, target, out: Path,
                                       progress: Progress | None = None) -> MethodOutput:
    """Centre-surround montage on a head; returns the pieces that
    :func:`navigator.optimize.tdcs.optimize_tdcs_workspace` writes (numbers, summary block, plan
    electrodes, notes) and writes the field outputs into ``out/fields``."""
    from navigator.export.plan import Electrode
    from navigator.fem.outputs import TargetRegion, write_field_outputs
    from navigator.optimize.leadfield import hd_leadfield
    from navigator.optimize.tes_common import cap_positions, target_setup
    from navigator.optimize.tms import target_direction
    from navigator.tes.electrodes import Scalp

    progress = ensure_progress(progress)
    mesh, sigma = head.mesh, head.sigma
    rt, centre, masks, avoid_specs = target_setup(head, target, float(search.roi_radius_mm), search.avoid)
    objective, direction = search.objective, target_direction(rt)
    N, R = int(search.n_returns), float(search.ring_radius_mm)
    max_total, max_ret = float(search.max_total_ma) * 1e-3, float(search.max_electrode_ma) * 1e-3
    diameter = float(search.electrode_diameter_mm)
    scalp = Scalp(mesh)
    entry = scalp.project(np.asarray(rt.scalp_entry, float))[0]
    ring = ring_points(scalp, entry, np.asarray(rt.scalp_normal, float), R, N)
    names = ["centre"] + [f"return{k + 1}" for k in range(N)]
    positions = dict(zip(names, [entry, *ring]))
    if getattr(search, "surround_on_cap", False):
        positions = snap_to_cap(positions, cap_positions(head, getattr(search, "cap", "10-10")))
        names = list(positions)
    progress.update(0.05, "centre-surround leadfield")
    lf = hd_leadfield(mesh, sigma, positions, masks, diameter_mm=diameter,
                      progress=progress.sub(0.05, 0.7, "centre-surround leadfield"))
    G = lf.roi["target"]
    avoid = ([] if search.avoid_max_v_per_m is None else
             [(lf.roi[f"avoid{k}"], float(search.avoid_max_v_per_m)) for k in range(len(avoid_specs))])

    def score(I: np.ndarray) -> float:
        E = G @ I
        return float(np.linalg.norm(E) if objective == "magnitude" else E @ direction)

    standard = np.concatenate([[max_total], np.full(N, -max_total / N)])
    if search.surround_currents == "standard":
        I = standard
    else:
        I = optimize_surround(G, objective=objective, direction=direction, max_total_a=max_total,
                              max_return_a=max_ret, avoid=avoid)
    progress.update(0.7, "fields")
    sol = lf.system.solve(I)
    E = -lf.system.fem.gradient(sol.v)
    region = TargetRegion(tuple(float(x) for x in centre), float(search.roi_radius_mm), "target")
    write_field_outputs(out / "fields", mesh, sol.v, E, sigma, grids=head.output_grids(bool(search.nifti)),
                        target=region, progress=progress.sub(0.72, 0.97, "fields"), nifti=bool(search.nifti))
    cap_name = getattr(search, "cap", "10-10")
    try:  # the nearest cap position of every disc (of the chosen cap), for the operator
        cap = cap_positions(head, cap_name)
        cn, cp = list(cap), np.array(list(cap.values()))
        near = {n: cn[int(np.argmin(np.linalg.norm(cp - p, axis=1)))] for n, p in zip(lf.names, lf.positions)}
    except NavigatorError:
        near = {}
    electrodes = [Electrode(n, p, i * 1e3, "disc", (diameter, diameter))
                  for n, p, i in zip(lf.names, lf.positions, I) if abs(i) > 1e-12]
    radii = np.linalg.norm(lf.positions[1:] - lf.positions[0], axis=1)
    numbers: dict[str, Any] = {
        "field_at_target_v_per_m": score(I), "standard_surround_v_per_m": score(standard),
        "n_returns": N, "ring_radius_mm": R, "centre_ma": float(I[0] * 1e3),
        "n_active_electrodes": int(np.count_nonzero(np.abs(I) > 1e-12)),
        "leadfield_seconds": float(sum(v for k, v in lf.timings.items() if not k.startswith("fem_"))),
    }
    for n, i in zip(lf.names[1:], I[1:]):
        numbers[f"current_{n}_ma"] = float(i * 1e3)
    block = {
        "currents": search.surround_currents, "ring_radius_mm": R, "n_returns": N, "cap": cap_name,
        "electrode": {"shape": "disc", "diameter_mm": diameter},
        "electrodes": [{"name": n, "center_mm": p, "current_mA": float(i * 1e3), "nearest_cap_position": near.get(n)}
                       for n, p, i in zip(lf.names, lf.positions, I)],
        "centre_to_return_distance_mm": radii,
        "field_vector_v_per_m": G @ I, "objective_v_per_m": score(I),
        "standard": {"currents_mA": (standard * 1e3).tolist(), "objective_v_per_m": score(standard)},
        "limits_mA": {"total": max_total * 1e3, "return": max_ret * 1e3},
        "avoid": [{"spec": s, "radius_mm": r, "mean_field_v_per_m": lf.roi[f"avoid{k}"] @ I}
                  for k, (s, r) in enumerate(avoid_specs)],
        "timings_s": lf.timings,
    }
    notes = (f"centre-surround {N}x1 ({search.surround_currents} currents), ring {R:g} mm around the target's "
             f"scalp entry; objective {objective}")
    return MethodOutput(rt, numbers, block, electrodes, notes)
