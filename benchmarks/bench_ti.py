"""Benchmark of the temporal-interference (TI) montage optimization (navigator.optimize.ti).

Usage::

    python benchmarks/bench_ti.py --workspace DIR [--target fox]   # e.g. the demo's phantom workspace
    python benchmarks/bench_ti.py --workspace DIR --ablation        # + the search measurements below
    python benchmarks/bench_ti.py --workspace DIR --sphere-head --target subject:-30,20,75 \
        --avoid subject:-45,-15,65:15 --focality 2 --cap 10-05        # five-shell test head (made if absent)

Prints, for ``navigator optimize ti`` with default settings (2 mA per channel, 4 mA in total,
envelope along the cortical normal, 10 mm target sphere):

* the leadfield time (all cap discs, one AMG hierarchy) and the time after the leadfield
  (the search, the standard montages);
* the optimized montage vs every standard montage (navigator.optimize.ti_montages) at equal
  currents, in the leadfield model, and the optimized vs the best standard one simulated alone
  with the complete electrode model (the independent check).

With ``--avoid SPEC:RADIUS --focality W`` the product run uses the focality objective (mean target
envelope - W x mean avoid envelope, no avoid limit) and prints it against the plain objective's
montage from the same leadfield, both in the leadfield model and simulated alone with the
complete electrode model. ``--cap 10-05`` uses the 10-05 cap's sites (thinned to the disc size).

With ``--ablation`` (one more leadfield; ``--ablation-only`` skips the product run): the same
search for the magnitude objective; the branch-and-bound optimum vs brute force over every
quadruple of the 20 cap sites nearest the target (and with ``--brute-force-cap`` of the whole
cap, normal objective); and, when the total limit binds (1.5 mA per channel, 2 mA in total), the
split grid of 11 values + golden refinement vs a grid of 201 values.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", required=True, help="prepared subject workspace (mesh, EEG positions)")
    ap.add_argument("--target", default="fox")
    ap.add_argument("--out", default=None)
    ap.add_argument("--ablation", action="store_true")
    ap.add_argument("--ablation-only", action="store_true", help="skip the product run")
    ap.add_argument("--cap", default="10-10", choices=["10-10", "10-05"])
    ap.add_argument("--sphere-head", action="store_true",
                    help="--workspace is the five-shell test head of navigator.gui.testing (6 mm mesh; made if absent)")
    ap.add_argument("--avoid", action="append", default=[], metavar="SPEC:RADIUS")
    ap.add_argument("--focality", type=float, default=0.0, metavar="W")
    ap.add_argument("--brute-force-cap", action="store_true",
                    help="ablation: also brute force over every quadruple of the whole cap (normal objective)")
    a = ap.parse_args()
    from navigator.core.workspace import Workspace
    from navigator.optimize.tdcs import TdcsSearch, optimize_tdcs_workspace

    if a.sphere_head and not Path(a.workspace).exists():
        from navigator.gui.testing import write_sphere_subject

        write_sphere_subject(a.workspace, mesh_size_mm=6.0, t1_spacing_mm=4.0)
    ws = Workspace.open(a.workspace)
    if a.ablation_only:
        ablation(ws, a.target, a.brute_force_cap)
        return
    out = Path(a.out or tempfile.mkdtemp(prefix="bench_ti_"))
    print(f"workspace {ws.root}, target {a.target}, out {out}")
    t0 = time.perf_counter()
    search = TdcsSearch(mode="ti", nifti=False, cap=a.cap, avoid=a.avoid, ti_avoid_weight=a.focality,
                        avoid_max_v_per_m=None if a.avoid else TdcsSearch().avoid_max_v_per_m)
    res = optimize_tdcs_workspace(ws, target=a.target, out_dir=out, search=search)
    wall = time.perf_counter() - t0
    n, ti = res.numbers, res.summary["ti"]
    print(f"mesh: {ws.root / 'mesh/head.msh'}; cap {a.cap}: {n['leadfield_electrodes']} electrodes in the leadfield "
          f"({ti['cap']['positions']} positions, {len(ti['cap']['left_out'])} left out closer than "
          f"{ti['cap']['min_spacing_mm']:g} mm)")
    print(f"leadfield: {n['leadfield_seconds']:.1f} s; after the leadfield: {n['seconds_after_leadfield']:.2f} s "
          f"(search {n['ti_search_seconds']:.2f} s, {n['montages_evaluated']} of {n['montages_total']} montages "
          f"evaluated, {100 * ti['search']['bound_pruned_fraction']:.2f} % pruned by the bound); whole run {wall:.1f} s")
    print(f"optimized: ch1 {n['channel1']} {n['channel1_ma']:.2f} mA, ch2 {n['channel2']} {n['channel2_ma']:.2f} mA: "
          f"mean target envelope {n['field_at_target_leadfield_v_per_m']:.4f} V/m (leadfield), "
          f"{n['field_at_target_v_per_m']:.4f} V/m (CEM, its 4 discs alone)")
    for m in sorted(ti["standard_montages"], key=lambda m: -m["mean_envelope_leadfield_v_per_m"]):
        print(f"  standard {m['name']:16s} {'-'.join(m['channel1'])} + {'-'.join(m['channel2'])}: "
              f"{m['mean_envelope_leadfield_v_per_m']:.4f} V/m (leadfield)")
    b = ti["best_standard"]
    print(f"best standard {b['name']}: {b['mean_envelope_cem_v_per_m']:.4f} V/m (CEM); "
          f"optimized / best standard = {n['gain_over_best_standard']:.3f} (CEM), "
          f"{n['field_at_target_leadfield_v_per_m'] / b['mean_envelope_leadfield_v_per_m']:.3f} (leadfield)")
    if ti.get("focality"):
        focality_report(ws, res, out)
    if a.ablation:
        ablation(ws, a.target, a.brute_force_cap)


def focality_report(ws, res, out: Path) -> None:
    """The focal montage vs the plain objective's montage: leadfield numbers from the summary, and
    both simulated alone (CEM) for the mean envelope in the target and the avoid regions."""
    from navigator.optimize.tes_common import cap_positions, element_normals, target_setup
    from navigator.optimize.ti_workspace import mean_envelope
    from navigator.optimize.tms import target_direction
    from navigator.targets.head import Head
    from navigator.tes.electrodes import ElectrodeSpec
    from navigator.tes.simulate_ac import simulate_ti

    ti, n = res.summary["ti"], res.numbers
    foc = ti["focality"]
    p = foc["plain_objective"]
    print(f"focality ({foc['objective']}), leadfield model: focal {n['channel1']} + {n['channel2']}: target "
          f"{foc['target_v_per_m']:.4f} V/m, avoid {foc['avoid_mean_v_per_m']:.4f} V/m; plain {p['channel1']} + "
          f"{p['channel2']}: target {p['target_v_per_m']:.4f}, avoid {p['avoid_mean_v_per_m']:.4f} V/m; "
          f"target x{foc['target_ratio_vs_plain']:.3f}, avoid x{foc['avoid_ratio_vs_plain']:.3f}")
    head = Head.of(ws)
    rt, _c, masks, specs = target_setup(head, res.summary["target"]["spec"], float(res.summary["roi_radius_mm"]),
                                        [f"{s['spec']}:{s['radius_mm']}" for s in ti["avoid"]])
    cap = ti["cap"]["cap"]
    positions = cap_positions(head, cap)
    d = float(ti["electrode"]["diameter_mm"])
    vol = np.abs(head.mesh.tet_volumes())
    nrm = {k: element_normals(head, head.mesh, m, target_direction(rt))[0] for k, m in masks.items()}

    def cem(ch1: str, ch2: str, currents) -> tuple[float, float]:
        (a, b), (c, e) = ch1.split("-"), ch2.split("-")
        r = simulate_ti(head.mesh, [ElectrodeSpec(a, currents[0], "disc", (d,)), ElectrodeSpec(b, -currents[0], "disc", (d,))],
                        [ElectrodeSpec(c, currents[1], "disc", (d,)), ElectrodeSpec(e, -currents[1], "disc", (d,))],
                        None, direction="normal", eeg_positions=positions)
        t = mean_envelope(r.E1, r.E2, masks["target"], vol, nrm["target"])
        av = np.mean([mean_envelope(r.E1, r.E2, masks[f"avoid{k}"], vol, nrm[f"avoid{k}"]) for k in range(len(specs))])
        return t, float(av)

    t0 = time.perf_counter()
    tp, ap_ = cem(p["channel1"], p["channel2"], p["currents_mA"])
    print(f"CEM (each montage's 4 discs alone): focal target {n['field_at_target_v_per_m']:.4f} V/m, avoid "
          f"{n['avoid_envelope_v_per_m']:.4f} V/m; plain target {tp:.4f}, avoid {ap_:.4f} V/m; target "
          f"x{n['field_at_target_v_per_m'] / tp:.3f}, avoid x{n['avoid_envelope_v_per_m'] / ap_:.3f} "
          f"({time.perf_counter() - t0:.0f} s)")


def ablation(ws, target: str, brute_force_cap: bool = False) -> None:
    from navigator.optimize.leadfield import hd_leadfield
    from navigator.optimize.tes_common import cap_positions, element_normals, target_setup
    from navigator.optimize.ti import TiRegion, exhaustive_ti, optimize_ti
    from navigator.optimize.tms import target_direction
    from navigator.targets.head import Head

    head = Head.of(ws)
    rt, _c, masks, _ = target_setup(head, target, 10.0, [])
    pos = cap_positions(head)
    t0 = time.perf_counter()
    lf = hd_leadfield(head.mesh, head.sigma, pos, masks, diameter_mm=10.0, keep_elements=True)
    print(f"[ablation] leadfield again: {time.perf_counter() - t0:.1f} s, {lf.n} electrodes, "
          f"{len(lf.indices['target'])} target tets")
    nrm, _ = element_normals(head, head.mesh, masks["target"], target_direction(rt))
    reg_n = TiRegion(lf.elements["target"], lf.volumes["target"], nrm)
    reg_m = TiRegion(lf.elements["target"], lf.volumes["target"], None)
    for name, reg, obj in (("normal", reg_n, "normal"), ("magnitude", reg_m, "magnitude")):
        s = optimize_ti(reg, objective=obj)
        print(f"[ablation] {name}: {s.objective:.4f} V/m, {s.evaluated} of {s.total_quadruples} evaluated, "
              f"{s.seconds:.2f} s")
    near = np.argsort(np.linalg.norm(lf.positions - np.asarray(rt.scalp_entry), axis=1))[:20]
    for name, reg, obj in (("normal", reg_n, "normal"), ("magnitude", reg_m, "magnitude")):
        t0 = time.perf_counter()
        s = optimize_ti(reg, objective=obj, candidates=near)
        tb = time.perf_counter() - t0
        t0 = time.perf_counter()
        e = exhaustive_ti(reg, objective=obj, candidates=near)
        te = time.perf_counter() - t0
        print(f"[ablation] 20 nearest sites, {name}: branch and bound {s.objective:.6f} V/m ({s.evaluated} "
              f"evaluated, {tb:.2f} s) vs brute force {e.objective:.6f} V/m ({e.evaluated}, {te:.2f} s); "
              f"same montage: {set(map(frozenset, s.pairs)) == set(map(frozenset, e.pairs))}")
    if brute_force_cap:
        t0 = time.perf_counter()
        e = exhaustive_ti(reg_n, objective="normal")
        s = optimize_ti(reg_n, objective="normal")
        print(f"[ablation] whole cap, normal: brute force {e.objective:.6f} V/m over {e.evaluated} montages "
              f"({time.perf_counter() - t0:.1f} s) vs branch and bound {s.objective:.6f} V/m; same montage: "
              f"{set(map(frozenset, s.pairs)) == set(map(frozenset, e.pairs))}")
    s = optimize_ti(reg_n, objective="normal", channel_max_a=1.5e-3, total_max_a=2e-3, candidates=near)
    fine = max(exhaustive_ti(reg_n, objective="normal", candidates=near, currents_a=(t, 2e-3 - t)).objective
               for t in np.linspace(0.5e-3, 1.5e-3, 201))
    print(f"[ablation] split (1.5 mA/channel, 2 mA total, 20 sites): grid 11 + golden {s.objective:.6f} V/m "
          f"({s.currents_a[0] * 1e3:.3f}/{s.currents_a[1] * 1e3:.3f} mA) vs grid 201 brute force {fine:.6f} V/m")


if __name__ == "__main__":
    main()
