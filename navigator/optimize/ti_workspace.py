"""Temporal-interference optimization on a subject's head (``navigator optimize ti``).

Called by :func:`navigator.optimize.tdcs.optimize_tdcs_workspace` (``mode="ti"``), which writes
``plan.json`` (TI electrodes carry their channel and frequency) and ``summary.json``; this module
builds the per-element leadfield of the cap, runs :func:`navigator.optimize.ti.optimize_ti`,
scores the standard montages (:mod:`navigator.optimize.ti_montages`) at the same currents, and
simulates the chosen montage and the best standard one with only their own four electrodes
attached (complete electrode model) into ``fields/``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.progress import Progress, ensure_progress
from navigator.fem.outputs import TargetRegion
from navigator.optimize.tes_common import MethodOutput, cap_sites, element_normals, target_setup, update_sites
from navigator.targets.head import Head
from navigator.targets.resolve import ResolvedTarget

def mean_envelope(E1: np.ndarray, E2: np.ndarray, mask: np.ndarray, volumes: np.ndarray,
                  normals: np.ndarray | None) -> float:
    """Volume-weighted mean TI envelope (V/m) of full-mesh carriers over the masked tets."""
    from navigator.optimize.ti import envelope

    env = envelope(E1[mask], E2[mask], normals)
    w = np.abs(volumes[mask])
    return float((env * w).sum() / w.sum())


def optimize_ti_workspace(head: Head, search, *, target: str | ResolvedTarget, out: Path,
                          progress: Progress | None = None) -> MethodOutput:
    """Temporal-interference optimization on a head (see :mod:`navigator.optimize.ti`); writes
    ``out/fields`` and returns what the caller puts into plan.json and summary.json."""
    from navigator.export.plan import Electrode
    from navigator.optimize.leadfield import hd_leadfield
    from navigator.optimize.ti import TiRegion, evaluate_montage, optimize_ti
    from navigator.optimize.ti_montages import standard_ti_montages
    from navigator.optimize.tms import target_direction
    from navigator.tes.electrodes import ElectrodeSpec
    from navigator.tes.simulate_ac import simulate_ti

    progress = ensure_progress(progress)
    mesh, sigma = head.mesh, head.sigma
    from navigator.targets.eeg import is_10_10_name

    rt, centre, masks, avoid_specs = target_setup(head, target, float(search.roi_radius_mm), search.avoid)
    positions, sites_info = cap_sites(head, search)
    objective = search.objective
    weight = float(getattr(search, "ti_avoid_weight", 0.0))
    limit = search.avoid_max_v_per_m
    direction = target_direction(rt)
    cap_a, total_a = float(search.ti_channel_ma) * 1e-3, float(search.ti_total_ma) * 1e-3
    f1, f2 = (float(f) for f in search.ti_frequencies_hz)
    diameter = float(search.electrode_diameter_mm)

    progress.update(0.02, "TI leadfield")
    lf = hd_leadfield(mesh, sigma, positions, masks, diameter_mm=diameter, keep_elements=True, drop_overlaps=True,
                      progress=progress.sub(0.02, 0.6, "TI leadfield"))
    positions = update_sites(positions, sites_info, lf)
    lf_seconds = float(sum(v for k, v in lf.timings.items() if not k.startswith("fem_")))
    t_after = time.perf_counter()
    normal_info = "not used (magnitude objective)"
    regions = {}
    for name, mask in masks.items():
        nrm = None
        if objective == "normal":
            nrm, normal_info = element_normals(head, mesh, mask, direction)
        regions[name] = TiRegion(lf.elements[name], np.abs(lf.volumes[name]), nrm)
    lim = np.inf if limit is None else float(limit)
    avoid = [(regions[f"avoid{k}"], lim) for k in range(len(avoid_specs))]
    idx = {n: i for i, n in enumerate(lf.names)}
    entry = np.asarray(rt.scalp_entry, float)
    # the standard montages are laid out on the 10-10 sites (arms in 10-10 spacings) of either cap
    std_sites = {n: p for n, p in positions.items() if is_10_10_name(n)}
    std = [(name, ((a, b), (c, d))) for name, ((a, b), (c, d))
           in standard_ti_montages(std_sites if len(std_sites) >= 4 else positions, entry,
                                   np.asarray(rt.scalp_normal, float))]
    std_idx = [((idx[a], idx[b]), (idx[c], idx[d])) for _, ((a, b), (c, d)) in std]
    sol = optimize_ti(regions["target"], objective=objective, channel_max_a=cap_a, total_max_a=total_a, avoid=avoid,
                      initial=std_idx, avoid_weight=weight, progress=progress.sub(0.6, 0.75, "TI search"))
    plain = None
    if weight > 0:  # the same search without the focality term: what focality costs and gains
        plain = optimize_ti(regions["target"], objective=objective, channel_max_a=cap_a, total_max_a=total_a,
                            avoid=avoid, initial=std_idx)
    # the standard montages at equal currents and the same total as the optimized one
    std_I = (sol.currents_a[0] + sol.currents_a[1]) / 2
    standards = []
    for (name, ((a, b), (c, d))), q in zip(std, std_idx):
        s = evaluate_montage(regions["target"], q, (std_I, std_I), objective=objective, avoid=avoid,
                             avoid_weight=weight)
        standards.append({"name": name, "channel1": [a, b], "channel2": [c, d], "currents_mA": [std_I * 1e3] * 2,
                          "mean_envelope_leadfield_v_per_m": s.objective,
                          "avoid_mean_envelope_v_per_m": s.avoid, "score_v_per_m": s.score})
    after_leadfield = time.perf_counter() - t_after
    (a, b), (c, d) = ((lf.names[i] for i in p) for p in sol.pairs)
    I1, I2 = sol.currents_a

    # the chosen montage and the best standard one, each simulated alone (complete electrode model)
    def specs(pa: str, pb: str, cur: float) -> list[ElectrodeSpec]:
        return [ElectrodeSpec(pa, cur * 1e3, "disc", (diameter,)), ElectrodeSpec(pb, -cur * 1e3, "disc", (diameter,))]

    roi_radius = float(search.roi_radius_mm)
    region = TargetRegion(tuple(float(x) for x in centre), roi_radius, "target")
    vol = np.abs(mesh.tet_volumes())
    normals_full = regions["target"].normals
    progress.update(0.75, "simulating the optimized montage")
    res = simulate_ti(mesh, specs(a, b, I1), specs(c, d, I2), out / "fields", direction="normal",
                      eeg_positions=positions, grids=head.output_grids(bool(search.nifti)), target=region,
                      nifti=bool(search.nifti), progress=progress.sub(0.75, 0.92, "TI fields"))
    opt_cem = mean_envelope(res.E1, res.E2, masks["target"], vol, normals_full)
    opt_avoid = [mean_envelope(res.E1, res.E2, masks[f"avoid{k}"], vol, regions[f"avoid{k}"].normals)
                 for k in range(len(avoid_specs))]
    best_std = max(standards, key=lambda s: s["mean_envelope_leadfield_v_per_m"]) if standards else None
    std_cem = None
    if best_std is not None:
        progress.update(0.92, f"simulating the best standard montage ({best_std['name']})")
        rs = simulate_ti(mesh, specs(*best_std["channel1"], std_I), specs(*best_std["channel2"], std_I), None,
                         direction="normal", eeg_positions=positions, target=region)
        std_cem = mean_envelope(rs.E1, rs.E2, masks["target"], vol, normals_full)
        best_std["mean_envelope_cem_v_per_m"] = std_cem

    electrodes = []
    for ch, (pa, pb, cur, f) in enumerate(((a, b, I1, f1), (c, d, I2, f2)), start=1):
        for nm, sign in ((pa, 1.0), (pb, -1.0)):
            electrodes.append(Electrode(nm, positions[nm], sign * cur * 1e3, "disc", (diameter, diameter),
                                        channel=ch, frequency_hz=f))
    focality = None
    if weight > 0:
        (pa_, pb_), (pc_, pd_) = ((lf.names[i] for i in p) for p in plain.pairs)
        plain_avoid = float(np.mean(plain.avoid))
        opt_avoid_lf = float(np.mean(sol.avoid))
        focality = {
            "objective": f"mean target envelope - {weight:g} x mean avoid-region envelope",
            "avoid_weight": weight, "score_v_per_m": sol.score,
            "target_v_per_m": sol.objective, "avoid_mean_v_per_m": opt_avoid_lf,
            "plain_objective": {"channel1": f"{pa_}-{pb_}", "channel2": f"{pc_}-{pd_}",
                                "currents_mA": [plain.currents_a[0] * 1e3, plain.currents_a[1] * 1e3],
                                "target_v_per_m": plain.objective, "avoid_mean_v_per_m": plain_avoid,
                                "score_v_per_m": plain.objective - weight * plain_avoid},
            "target_ratio_vs_plain": sol.objective / plain.objective if plain.objective > 0 else None,
            "avoid_ratio_vs_plain": opt_avoid_lf / plain_avoid if plain_avoid > 0 else None,
            "model": "leadfield (all cap discs attached)",
        }
    numbers: dict[str, Any] = {
        "field_at_target_v_per_m": opt_cem,
        "field_at_target_leadfield_v_per_m": sol.objective,
        "channel1": f"{a}-{b}", "channel2": f"{c}-{d}",
        "channel1_ma": I1 * 1e3, "channel2_ma": I2 * 1e3,
        "best_standard": best_std["name"] if best_std else None,
        "best_standard_v_per_m": std_cem,
        "gain_over_best_standard": (opt_cem / std_cem) if std_cem else None,
        "montages_evaluated": sol.evaluated, "montages_total": sol.total_quadruples,
        "ti_search_seconds": sol.seconds, "seconds_after_leadfield": after_leadfield,
        "leadfield_electrodes": lf.n, "leadfield_seconds": lf_seconds, "cap": sites_info["cap"],
    }
    if avoid_specs:
        numbers["avoid_envelope_v_per_m"] = float(np.mean(opt_avoid))
        numbers["avoid_envelope_leadfield_v_per_m"] = float(np.mean(sol.avoid))
    if focality is not None:
        numbers.update({"ti_avoid_weight": weight, "focality_score_v_per_m": sol.score,
                        "plain_target_v_per_m": plain.objective,
                        "plain_avoid_envelope_v_per_m": focality["plain_objective"]["avoid_mean_v_per_m"],
                        "target_ratio_vs_plain": focality["target_ratio_vs_plain"],
                        "avoid_ratio_vs_plain": focality["avoid_ratio_vs_plain"]})
    summary_block = {
        "objective": f"mean TI envelope {'along the cortical normal' if objective == 'normal' else '(maximal over directions)'} "
                     f"in the target sphere" + (f" minus {weight:g} x the mean envelope in the avoid regions"
                                                if weight > 0 else ""),
        "focality": focality,
        "cap": sites_info,
        "element_normals": normal_info,
        "channels": [{"channel": 1, "anode": a, "cathode": b, "current_mA": I1 * 1e3, "frequency_Hz": f1},
                     {"channel": 2, "anode": c, "cathode": d, "current_mA": I2 * 1e3, "frequency_Hz": f2}],
        "limits_mA": {"channel": cap_a * 1e3, "total": total_a * 1e3},
        "electrode": {"shape": "disc", "diameter_mm": diameter},
        "mean_envelope_leadfield_v_per_m": sol.objective,
        "mean_envelope_cem_v_per_m": opt_cem,
        "avoid": [{"spec": s, "radius_mm": r, "limit_v_per_m": limit,
                   "mean_envelope_leadfield_v_per_m": sol.avoid[k], "mean_envelope_cem_v_per_m": opt_avoid[k]}
                  for k, (s, r) in enumerate(avoid_specs)],
        "search": {"candidates": sol.info["candidates"], "pairs": sol.info["pairs"],
                   "montages_evaluated": sol.evaluated, "montages_total": sol.total_quadruples,
                   "bound_pruned_fraction": sol.info["bound_pruned_fraction"], "split_grid": sol.info["split_grid"],
                   "split_refined": sol.info["split_refined"], "seconds": sol.seconds},
        "standard_montages": standards,
        "best_standard": best_std,
        "timings_s": {**lf.timings, "search": sol.seconds, "after_leadfield": after_leadfield},
        "model": "leadfield: all cap discs attached (floating when unused); cem: the montage's four discs only",
    }
    notes = (f"TI: channel 1 {a}-{b} {I1 * 1e3:.3g} mA at {f1:g} Hz, channel 2 {c}-{d} {I2 * 1e3:.3g} mA at {f2:g} Hz; "
             f"objective {objective}; ROI {roi_radius} mm sphere; cap {sites_info['cap']}")
    if weight > 0:
        notes += (f"; focality: target - {weight:g} x avoid envelope (target {sol.objective:.3g} V/m, "
                  f"avoid {float(np.mean(sol.avoid)):.3g} V/m in the leadfield model)")
    extra = avoid_targets(head, avoid_specs, opt_avoid)
    return MethodOutput(rt, numbers, summary_block, electrodes, notes, extra)


def avoid_targets(head: Head, avoid_specs: list[tuple[str, float]], envelopes: list[float] | None = None) -> list:
    """The avoid regions as plan targets ("avoid1", ... at the region's cortical centre, subject RAS
    mm; the description names the SPEC, radius and, when given, the mean envelope V/m)."""
    from navigator.optimize.tms import plan_target

    out = []
    for k, (spec, radius) in enumerate(avoid_specs):
        t = plan_target(head.target(spec), name=f"avoid{k + 1}")
        env = "" if envelopes is None else f"; mean envelope {envelopes[k]:.4g} V/m (CEM)"
        t.description = f"avoid region {spec}, {radius:g} mm sphere{env}"
        out.append(t)
    return out

