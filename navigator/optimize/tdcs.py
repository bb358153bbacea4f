"""tDCS optimization: HD electrode currents (LP / MILP) and conventional two-pad montages.

HD problem (currents I in A over the L cap electrodes, ROI-mean field ``G @ I`` with the
leadfield G (3, L), see :mod:`navigator.optimize.leadfield`):

    maximize d . G I
    subject to sum(I) = 0, sum(max(I, 0)) <= max_total, |I_i| <= max_electrode,
               |a_j . G_avoid I| <= avoid_max for each avoid region and axis j,
               [at most N electrodes with I_i != 0]

solved with I = I+ - I- (I+, I- >= 0) by ``scipy.optimize.linprog(method="highs")``, or by
``scipy.optimize.milp`` (HiGHS branch and bound) with binary switches z_i (I+_i, I-_i <=
max_electrode z_i, sum z <= N) when N is given. Internally currents are in mA so HiGHS's
feasibility tolerance (1e-7) is 1e-10 A; the solution is then projected exactly onto the
constraints. The magnitude objective |G I| is maximized over directions d (the best of a
set of directions, refined by d <- G I / |G I| until it stops improving).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.workspace import Workspace
from navigator.export.plan import Montage, Plan
from navigator.optimize.result import OptimizationResult
from navigator.optimize.tes_common import cap_positions, cap_sites, parse_avoid, sphere_directions, update_sites
from navigator.targets.head import Head
from navigator.targets.resolve import ResolvedTarget

log = logging.getLogger(__name__)


@dataclass
class HdSolution:
    """currents_a: (L,) A into the head; field: (3,) ROI-mean E (V/m); objective value V/m."""

    currents_a: np.ndarray
    field: np.ndarray
    objective: float
    direction: np.ndarray
    status: str
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_active(self) -> int:
        return int(np.count_nonzero(np.abs(self.currents_a) > 1e-12))


def _project(I: np.ndarray, max_total: float, max_el: float) -> np.ndarray:
    """Exactly feasible currents near I: clip, balance the sum, cap the total injected current."""
    I = np.clip(np.where(np.abs(I) < 1e-12 * max(max_el, 1e-30), 0.0, I), -max_el, max_el)
    pos, neg = I[I > 0].sum(), -I[I < 0].sum()
    target = min(pos, neg, max_total)
    if pos > 0:
        I[I > 0] *= target / pos
    if neg > 0:
        I[I < 0] *= target / neg
    return I


def solve_direction(G: np.ndarray, d: np.ndarray, *, max_total_a: float = 2e-3, max_electrode_a: float = 1e-3,
                    max_electrodes: int | None = None, avoid: list[tuple[np.ndarray, float]] | None = None) -> HdSolution:
    """Maximize d . G I under the constraints of the module docstring (one direction)."""
    from scipy.optimize import LinearConstraint, linprog, milp

    t0 = time.perf_counter()
    G = np.asarray(G, float)
    L = G.shape[1]
    d = np.asarray(d, float) / np.linalg.norm(d)
    c_ma = (d @ G) * 1e-3  # V/m per mA
    mt, me = max_total_a * 1e3, max_electrode_a * 1e3
    rows, lo, hi = [], [], []
    rows.append(np.concatenate([np.ones(L), -np.ones(L)])); lo.append(0.0); hi.append(0.0)
    rows.append(np.concatenate([np.ones(L), np.zeros(L)])); lo.append(-np.inf); hi.append(mt)
    rows.append(np.concatenate([np.zeros(L), np.ones(L)])); lo.append(-np.inf); hi.append(mt)
    for Ga, limit in avoid or []:
        for j in range(3):
            g = np.asarray(Ga, float)[j] * 1e-3
            rows.append(np.concatenate([g, -g])); lo.append(-float(limit)); hi.append(float(limit))
    A = np.array(rows)
    obj = -np.concatenate([c_ma, -c_ma])
    if max_electrodes is None:
        A_ub, b_ub = [], []
        for row, l, h in zip(A[1:], lo[1:], hi[1:]):
            if np.isfinite(h):
                A_ub.append(row); b_ub.append(h)
            if np.isfinite(l):
                A_ub.append(-row); b_ub.append(-l)
        res = linprog(obj, A_ub=np.array(A_ub), b_ub=np.array(b_ub), A_eq=A[:1], b_eq=[0.0],
                      bounds=[(0.0, me)] * (2 * L), method="highs")
        x = res.x if res.x is not None else np.zeros(2 * L)
        status = res.message
        ok = res.status == 0
    else:
        n = int(max_electrodes)
        if n < 2:
            raise NavigatorError("the maximum number of electrodes must be at least 2")
        full = np.hstack([A, np.zeros((len(A), L))])
        sw = np.hstack([np.eye(L), np.zeros((L, L)), -me * np.eye(L)])
        sw2 = np.hstack([np.zeros((L, L)), np.eye(L), -me * np.eye(L)])
        cnt = np.concatenate([np.zeros(2 * L), np.ones(L)])[None]
        cons = [LinearConstraint(full, lo, hi), LinearConstraint(sw, -np.inf, 0.0), LinearConstraint(sw2, -np.inf, 0.0),
                LinearConstraint(cnt, 0, n)]
        from scipy.optimize import Bounds

        res = milp(np.concatenate([obj, np.zeros(L)]), constraints=cons,
                   integrality=np.concatenate([np.zeros(2 * L), np.ones(L)]),
                   bounds=Bounds(np.zeros(3 * L), np.concatenate([np.full(2 * L, me), np.ones(L)])),
                   options={"time_limit": 60.0})
        x = res.x[:2 * L] if res.x is not None else np.zeros(2 * L)
        status = res.message
        ok = res.status == 0
    if not ok:
        log.warning("HD optimization: %s", status)
    I = _project((x[:L] - x[L:]) * 1e-3, max_total_a, max_electrode_a)
    if max_electrodes is not None:  # the projection never adds electrodes; drop round-off ones
        order = np.argsort(-np.abs(I))
        I[order[int(max_electrodes):]] = 0.0
        I = _project(I, max_total_a, max_electrode_a)
    E = G @ I
    return HdSolution(I, E, float(d @ E), d, str(status), time.perf_counter() - t0)


def optimize_hd(G: np.ndarray, *, objective: str = "normal", direction: np.ndarray | None = None,
                max_total_a: float = 2e-3, max_electrode_a: float = 1e-3, max_electrodes: int | None = None,
                avoid: list[tuple[np.ndarray, float]] | None = None) -> HdSolution:
    """Optimal HD currents for the ROI-mean field along ``direction`` or its magnitude."""
    t0 = time.perf_counter()
    kw = {"max_total_a": max_total_a, "max_electrode_a": max_electrode_a, "max_electrodes": max_electrodes,
          "avoid": avoid}
    if objective == "normal":
        if direction is None:
            raise NavigatorError("the 'normal' objective needs a direction")
        sol = solve_direction(G, direction, **kw)
    elif objective == "magnitude":
        best = None
        for d in sphere_directions():
            s = solve_direction(G, d, **kw)
            if best is None or np.linalg.norm(s.field) > np.linalg.norm(best.field):
                best = s
        for _ in range(20):
            if np.linalg.norm(best.field) == 0:
                break
            s = solve_direction(G, best.field / np.linalg.norm(best.field), **kw)
            if np.linalg.norm(s.field) <= np.linalg.norm(best.field) * (1 + 1e-9):
                break
            best = s
        sol = best
        sol.objective = float(np.linalg.norm(sol.field))
    else:
        raise NavigatorError(f"unknown objective {objective!r}; use normal or magnitude")
    sol.seconds = time.perf_counter() - t0
    return sol


def constraint_violations(I: np.ndarray, max_total_a: float, max_electrode_a: float) -> dict[str, float]:
    """Amounts (A) by which currents violate each constraint (0 when satisfied)."""
    I = np.asarray(I, float)
    return {"sum": abs(float(I.sum())), "total": max(0.0, float(I[I > 0].sum()) - max_total_a),
            "electrode": max(0.0, float(np.abs(I).max()) - max_electrode_a)}


# --------------------------------------------------------------------------- workspace
#: the montage optimization methods (``TdcsSearch.mode``)
MODES = ("hd", "pads", "ti", "center-surround")


@dataclass
class TdcsSearch:
    """Parameters of a tDCS montage optimization; the defaults are shared by `navigator optimize
    tdcs`, the GUI's tDCS panel and the batch step ``optimize-tdcs``.

    Attributes:
        mode: "hd" (currents of the cap's disc electrodes, linear programme), "pads" (the best
            pair of two pads, then their rotation), "ti" (temporal interference: two disc pairs on
            the cap and their currents, :mod:`navigator.optimize.ti`) or "center-surround" (a
            disc over the target and ``n_returns`` discs on a ring, :mod:`navigator.optimize.center_surround`).
        objective: "normal" (ROI-mean E into the cortex) or "magnitude" (|ROI-mean E|).
        roi_radius_mm: target sphere, mm. max_total_ma, max_electrode_ma: current limits, mA.
        max_electrodes: at most this many active electrodes (None: no limit).
        avoid: regions "SPEC:RADIUS_MM" whose mean field components (TI: mean envelope) stay
            below ``avoid_max_v_per_m`` (V/m; None: no limit, the regions are only reported or,
            with ``ti_avoid_weight``, part of the TI objective). electrode_diameter_mm: HD disc
            diameter, mm.
        cap: the EEG cap whose positions are the HD and TI disc sites: "10-10" (``targets/eeg.csv``)
            or "10-05" (345 positions, ``targets/eeg_caps/EEG10-05.csv``); sites closer than
            ``electrode_diameter_mm + electrode_gap_mm`` (centre to centre) are left out, 10-10
            positions first (:func:`navigator.optimize.tes_common.cap_sites`).
        pad_size_mm: (width, height) of the pads, mm. current_ma: pad current, mA.
        pad_angle_step_deg: step of the pads' rotation search about their normals, degrees
            (0: no rotation search).
        ti_channel_ma, ti_total_ma: TI current limits per channel and in total, mA.
        ti_frequencies_hz: TI carrier frequencies of channel 1 and 2, Hz.
        ti_avoid_weight: w >= 0 of the TI focality objective: maximize the mean target envelope
            minus w times the mean envelope over the avoid regions (0: the target envelope alone;
            :func:`navigator.optimize.ti.optimize_ti`).
        ring_radius_mm, n_returns: centre-surround ring radius (mm, in the scalp's tangent plane)
            and number of return electrodes. surround_currents: "optimized" (linear programme
            under the current limits and avoid regions) or "standard" (centre carries
            ``max_total_ma``, the returns share it equally). surround_on_cap: move the centre and
            the returns to the nearest free positions of ``cap`` (named by them).
        nifti: write NIfTI field maps.
    """

    mode: str = "hd"
    objective: str = "normal"
    roi_radius_mm: float = 10.0
    max_total_ma: float = 2.0
    max_electrode_ma: float = 1.0
    max_electrodes: int | None = None
    avoid: list[str] = field(default_factory=list)
    avoid_max_v_per_m: float | None = 0.05
    electrode_diameter_mm: float = 10.0
    pad_size_mm: tuple[float, float] = (50.0, 50.0)
    current_ma: float = 2.0
    pad_angle_step_deg: float = 15.0
    ti_channel_ma: float = 2.0
    ti_total_ma: float = 4.0
    ti_frequencies_hz: tuple[float, float] = (2000.0, 2010.0)
    ti_avoid_weight: float = 0.0
    ring_radius_mm: float = 50.0
    n_returns: int = 4
    surround_currents: str = "optimized"
    nifti: bool = True
    cap: str = "10-10"
    electrode_gap_mm: float = 2.0
    surround_on_cap: bool = False

    #: the short names of batch configuration files -> attribute
    SHORT_NAMES: ClassVar[dict[str, str]] = {
        "mode": "mode", "direction": "objective", "roi_radius": "roi_radius_mm", "max_total_ma": "max_total_ma",
        "max_electrode_ma": "max_electrode_ma", "max_electrodes": "max_electrodes", "avoid": "avoid",
        "avoid_max_v_per_m": "avoid_max_v_per_m", "electrode_diameter_mm": "electrode_diameter_mm",
        "pad_size_mm": "pad_size_mm", "current_ma": "current_ma", "nifti": "nifti",
        "pad_angle_step_deg": "pad_angle_step_deg", "ti_channel_ma": "ti_channel_ma", "ti_total_ma": "ti_total_ma",
        "ti_frequencies_hz": "ti_frequencies_hz", "ring_radius_mm": "ring_radius_mm", "n_returns": "n_returns",
        "surround_currents": "surround_currents", "cap": "cap", "electrode_gap_mm": "electrode_gap_mm",
        "ti_avoid_weight": "ti_avoid_weight", "surround_on_cap": "surround_on_cap",
    }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TdcsSearch:
        """A search from short-named parameters (:attr:`SHORT_NAMES`); an error naming unknown ones."""
        unknown = set(params) - set(cls.SHORT_NAMES)
        if unknown:
            raise NavigatorError(f"unknown tDCS optimization parameter(s): {', '.join(sorted(unknown))}")
        return cls(**{cls.SHORT_NAMES[k]: v for k, v in params.items()})

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise NavigatorError(f"unknown tDCS optimization mode {self.mode!r}; use {', '.join(MODES)}")
        self.avoid = list(self.avoid or [])
        self.pad_size_mm = tuple(float(v) for v in self.pad_size_mm)  # type: ignore[assignment]
        self.ti_frequencies_hz = tuple(float(v) for v in self.ti_frequencies_hz)  # type: ignore[assignment]
        if len(self.ti_frequencies_hz) != 2 or min(self.ti_frequencies_hz) <= 0:
            raise NavigatorError(f"TI needs two positive carrier frequencies (Hz), got {self.ti_frequencies_hz}")
        if self.ti_channel_ma <= 0 or self.ti_total_ma <= 0:
            raise NavigatorError("TI current limits must be > 0 mA")
        if self.surround_currents not in ("optimized", "standard"):
            raise NavigatorError(f"surround currents must be 'optimized' or 'standard', not {self.surround_currents!r}")
        if int(self.n_returns) < 1 or self.ring_radius_mm <= 0:
            raise NavigatorError("centre-surround needs at least one return electrode and a ring radius > 0 mm")
        self.n_returns = int(self.n_returns)
        from navigator.targets.eeg import CAP_SYSTEMS

        if self.cap not in CAP_SYSTEMS:
            raise NavigatorError(f"unknown EEG cap {self.cap!r}; use {' or '.join(CAP_SYSTEMS)}")
        if self.electrode_gap_mm < 0:
            raise NavigatorError("the gap between cap discs must be >= 0 mm")
        if not self.ti_avoid_weight >= 0:
            raise NavigatorError("the TI avoid weight must be >= 0")
        if self.ti_avoid_weight > 0 and not self.avoid:
            raise NavigatorError("the TI focality objective (avoid weight > 0) needs at least one avoid region")
        if self.avoid_max_v_per_m is not None:
            self.avoid_max_v_per_m = float(self.avoid_max_v_per_m)
        if self.pad_angle_step_deg < 0:
            raise NavigatorError("the pad rotation step must be >= 0 degrees (0: no rotation search)")


@dataclass
class TdcsOptimization(OptimizationResult):
    """What :func:`optimize_tdcs_workspace` produced: the :class:`OptimizationResult` fields
    (out_dir with plan.json, summary.json, fields/; plan; numbers such as the field at the
    target V/m and the currents mA; summary) and

    Attributes:
        montage: the optimized montage (electrode positions subject RAS mm, currents mA).
    """

    montage: Montage


def optimize_tdcs_workspace(ws: Workspace, *, target: str | ResolvedTarget, out_dir: str | Path,
                            search: TdcsSearch | None = None, progress: Progress | None = None) -> TdcsOptimization:
    """Optimize a tDCS montage for ``target`` on a workspace and write OUT (see docs/optimization.md).

    ``search``: mode, objective, limits and output options (:class:`TdcsSearch`; defaults when None).
    Returns a :class:`TdcsOptimization` (its ``numbers`` are also in summary.json as "batch_numbers").
    """
    from navigator.export.plan import Electrode
    from navigator.fem.outputs import TargetRegion, write_field_outputs
    from navigator.optimize.leadfield import hd_leadfield, roi_means
    from navigator.optimize.tms import image_info, plan_target, target_direction
    from navigator.targets.roi import SphereRoi

    search = search or TdcsSearch()
    mode = search.mode
    progress = ensure_progress(progress)
    t_all = time.perf_counter()
    head = Head.of(ws)
    mesh = head.mesh  # a clear error without a head mesh, before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if mode in ("ti", "center-surround"):
        return _optimize_method(head, search, target=target, out=out, progress=progress)
    sigma = head.sigma
    rt = head.target(target)
    centre = np.asarray(rt.cortical_point if rt.cortical_point is not None else rt.point, float)
    roi_radius = float(search.roi_radius_mm)
    masks = {"target": SphereRoi(centre, roi_radius).tet_mask(mesh)}
    avoid_specs = [parse_avoid(a) for a in search.avoid]
    for k, (spec, rad) in enumerate(avoid_specs):
        art = head.target(spec)
        ac = np.asarray(art.cortical_point if art.cortical_point is not None else art.point, float)
        masks[f"avoid{k}"] = SphereRoi(ac, rad).tet_mask(mesh)
    objective = search.objective
    direction = target_direction(rt)
    max_total = float(search.max_total_ma) * 1e-3
    max_el = float(search.max_electrode_ma) * 1e-3
    if mode == "hd":
        positions, sites_info = cap_sites(head, search)
    else:
        positions, sites_info = cap_positions(head, search.cap), None
    numbers: dict[str, Any] = {}
    summary: dict[str, Any] = {"type": "tdcs-optimization", "mode": mode, "target": rt.to_json(),
                               "objective": objective, "objective_direction": direction, "roi_radius_mm": roi_radius}
    # reference: F3-Fp2 5x5 cm pads at 2 mA (complete electrode model)
    reference = None
    try:
        from navigator.tes.electrodes import ElectrodeSpec
        from navigator.tes.simulate import simulate_tdcs

        ref = simulate_tdcs(mesh, [ElectrodeSpec("F3", 2.0, "rect", (50, 50)), ElectrodeSpec("Fp2", -2.0, "rect", (50, 50))],
                            None, eeg_positions=positions)
        vol = np.abs(mesh.tet_volumes())
        Eref = roi_means(ref.E, vol, masks)["target"]
        reference = {"field": Eref, "objective": float(np.linalg.norm(Eref) if objective == "magnitude" else Eref @ direction)}
    except (NavigatorError, KeyError) as exc:
        log.warning("no F3-Fp2 reference montage: %s", exc)
    progress.update(0.1, "leadfield")
    electrodes_out: list = []
    if mode == "hd":
        lf = hd_leadfield(mesh, sigma, positions, masks, diameter_mm=float(search.electrode_diameter_mm),
                          drop_overlaps=True, progress=progress.sub(0.1, 0.8, "leadfield"))
        positions = update_sites(positions, sites_info, lf)
        avoid = ([] if search.avoid_max_v_per_m is None else
                 [(lf.roi[f"avoid{k}"], float(search.avoid_max_v_per_m)) for k in range(len(avoid_specs))])
        sol = optimize_hd(lf.roi["target"], objective=objective, direction=direction, max_total_a=max_total,
                          max_electrode_a=max_el, max_electrodes=search.max_electrodes, avoid=avoid)
        viol = constraint_violations(sol.currents_a, max_total, max_el)
        full = lf.system.solve(sol.currents_a) if sol.n_active else None
        v = full.v if full is not None else np.zeros(mesh.n_nodes)
        E = -lf.system.fem.gradient(v)
        for name, pos, I in zip(lf.names, lf.positions, sol.currents_a):
            if abs(I) > 1e-12:
                electrodes_out.append(Electrode(name, pos, I * 1e3, "disc", (lf.electrodes[0].spec.size_mm[0],) * 2))
        numbers.update({"field_at_target_v_per_m": sol.objective, "n_active_electrodes": sol.n_active,
                        "total_injected_ma": float(sol.currents_a[sol.currents_a > 0].sum() * 1e3),
                        "hd_optimization_seconds": sol.seconds, "leadfield_electrodes": lf.n,
                        "leadfield_seconds": float(sum(v for k, v in lf.timings.items() if not k.startswith("fem_")))})
        for e in electrodes_out:
            numbers[f"current_{e.name}_ma"] = e.current_ma
        summary["hd"] = {"currents_mA": {n: float(I * 1e3) for n, I in zip(lf.names, sol.currents_a)},
                         "field_vector_v_per_m": sol.field, "objective_v_per_m": sol.objective, "status": sol.status,
                         "constraint_violations_A": viol, "limits_mA": {"total": max_total * 1e3, "electrode": max_el * 1e3,
                                                                         "max_electrodes": search.max_electrodes},
                         "avoid": [{"spec": s, "radius_mm": r, "mean_field_v_per_m": lf.roi[f"avoid{k}"] @ sol.currents_a}
                                   for k, (s, r) in enumerate(avoid_specs)],
                         "cap": sites_info, "timings_s": {**lf.timings, "optimization": sol.seconds}}
    else:
        from navigator.optimize.pads import best_pad_pair, best_pad_rotation, pad_leadfield

        size = tuple(float(s) for s in search.pad_size_mm)
        cur = float(search.current_ma) * 1e-3
        plf = pad_leadfield(mesh, sigma, positions, masks, size_mm=size, progress=progress.sub(0.1, 0.65, "pad leadfield"))
        pair = best_pad_pair(plf, cur, objective=objective, direction=direction)
        an, ca = pair["anode"], pair["cathode"]
        rot = best_pad_rotation(mesh, sigma, (an, positions[an]), (ca, positions[ca]), masks, size_mm=size,
                                current_a=cur, objective=objective, direction=direction,
                                step_deg=float(search.pad_angle_step_deg), progress=progress.sub(0.65, 0.8, "pad rotation"))
        from navigator.tes.electrodes import ElectrodeSpec
        from navigator.tes.simulate import simulate_tdcs

        res = simulate_tdcs(mesh, [ElectrodeSpec(an, cur * 1e3, "rect", size, angle_deg=rot["anode_angle_deg"]),
                                   ElectrodeSpec(ca, -cur * 1e3, "rect", size, angle_deg=rot["cathode_angle_deg"])],
                            None, eeg_positions=positions)
        v, E = res.solution.v, res.E
        Ecem = roi_means(E, np.abs(mesh.tet_volumes()), masks)["target"]
        obj_cem = float(np.linalg.norm(Ecem) if objective == "magnitude" else Ecem @ direction)
        electrodes_out = [Electrode(an, positions[an], cur * 1e3, "rect", size, y_axis=res.electrodes[0].y_axis),
                          Electrode(ca, positions[ca], -cur * 1e3, "rect", size, y_axis=res.electrodes[1].y_axis)]
        numbers.update({"field_at_target_v_per_m": obj_cem, "anode": an, "cathode": ca,
                        "current_ma": cur * 1e3, "pairs_searched": pair["pairs_searched"],
                        "anode_angle_deg": rot["anode_angle_deg"], "cathode_angle_deg": rot["cathode_angle_deg"],
                        "rotation_gain": (rot["objective_v_per_m"] / rot["objective_unrotated_v_per_m"]
                                          if rot["objective_unrotated_v_per_m"] > 0 else None)})
        summary["pads"] = {**pair, "objective_cem_v_per_m": obj_cem, "size_mm": size, "rotation": rot,
                           "timings_s": plf.timings}
    if reference is not None:
        numbers["reference_f3_fp2_v_per_m"] = reference["objective"]
        numbers["gain_over_reference"] = (numbers["field_at_target_v_per_m"] / reference["objective"]
                                          if reference["objective"] > 0 else None)
        summary["reference_F3_Fp2_pads_2mA"] = reference
    progress.update(0.85, "writing outputs")
    write_field_outputs(out / "fields", mesh, v, E, sigma, grids=head.output_grids(bool(search.nifti)),
                        target=TargetRegion(tuple(float(x) for x in centre), roi_radius, "target"),
                        progress=progress.sub(0.85, 0.97, "fields"), nifti=bool(search.nifti))
    plan = Plan(name=f"tdcs-{mode}-optimized", subject=head.ws.subject_id, image=image_info(head.ws), targets=[plan_target(rt)],
                montages=[Montage(f"{mode}-optimized", electrodes_out)],
                notes=f"objective {objective}; ROI {roi_radius} mm sphere in grey matter at the target")
    return _finish(out, plan, numbers, summary, t_all, progress)


def _finish(out: Path, plan: Plan, numbers: dict[str, Any], summary: dict[str, Any], t_start: float,
            progress: Progress) -> TdcsOptimization:
    """Write plan.json and summary.json (with the run's wall time) into ``out``; the result."""
    from navigator.core.atomic import atomic_write_json
    from navigator.export.plan import save_plan

    save_plan(plan, out / "plan.json")
    numbers["seconds"] = time.perf_counter() - t_start
    summary["batch_numbers"] = numbers
    summary["files"] = ["plan.json", "summary.json", "fields/"]
    atomic_write_json(out / "summary.json", summary)
    progress.update(1.0, "done")
    return TdcsOptimization(out_dir=out, plan=plan, numbers=numbers, summary=summary, montage=plan.montages[0])


def _optimize_method(head: Head, search: TdcsSearch, *, target: str | ResolvedTarget, out: Path,
                     progress: Progress | None = None) -> TdcsOptimization:
    """Run ``search.mode`` ("ti" or "center-surround") on ``head``, write plan.json and
    summary.json into ``out`` and return the :class:`TdcsOptimization`."""
    from navigator.optimize.tms import image_info, plan_target, target_direction

    progress = ensure_progress(progress)
    t_all = time.perf_counter()
    if search.mode == "ti":
        from navigator.optimize.ti_workspace import optimize_ti_workspace

        r = optimize_ti_workspace(head, search, target=target, out=out, progress=progress)
    elif search.mode == "center-surround":
        from navigator.optimize.center_surround import optimize_center_surround_workspace

        r = optimize_center_surround_workspace(head, search, target=target, out=out, progress=progress)
    else:
        raise NavigatorError(f"not a tES method of this module: {search.mode!r}")
    rt = r.target
    summary: dict[str, Any] = {"type": "tdcs-optimization", "mode": search.mode, "target": rt.to_json(),
                               "objective": search.objective, "objective_direction": target_direction(rt),
                               "roi_radius_mm": float(search.roi_radius_mm),
                               search.mode.replace("-", "_"): r.summary}
    numbers = r.numbers
    plan = Plan(name=f"tdcs-{search.mode}-optimized", subject=head.ws.subject_id, image=image_info(head.ws),
                targets=[plan_target(rt), *r.extra_targets],
                montages=[Montage(f"{search.mode}-optimized", r.electrodes)],
                notes=r.notes)
    return _finish(out, plan, numbers, summary, t_all, progress)
