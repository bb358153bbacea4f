"""Benchmark of the fine, collision-free TMS placement search (issue 18) on a prepared workspace.

Usage::

    navigator demo --out DEMO                         # the demo phantom (about 4 min)
    python benchmarks/bench_optimize_scale.py --workspace DEMO/phantom [--target fox] [--skip-command]

(about 20 min idle on 2 cores, most of it the coarse direct search's 360 FEM solves.)

Prints, in one run:

1. ``optimize_tms_workspace`` with the default :class:`~navigator.optimize.tms.TmsSearch` (what
   ``navigator optimize tms WS --target fox --out OUT`` runs): placements, wall time of the
   search including its FEM solves, and of the whole command (fields and outputs included);
2. the search again step by step (reciprocal solves, fine search): reciprocity vs direct FEM at
   the optimum and at 5 random placements of the grid (relative difference);
3. the coarse exhaustive design over the whole disc predicted from the fine scores alone to put
   its best in their top 0.1 % (``predict_coarse_grid``; angles over 180 degrees only when the
   scores repeat under a half turn), then a coarse exhaustive direct search (``--coarse-spacing``
   x ``--coarse-angle-step``, default the design proven on the demo phantom; ``--coarse-auto``:
   the predicted one; one FEM solve each) and the rank of its best among the fine search's
   scores; optionally (``--local-step``) a local one around the fine optimum;
4. throughput side by side: reciprocity placements/s (incl. its solves) vs direct placements/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


#: The coarse exhaustive direct search's design (whole disc): predicted from the fine scores on the
#: demo phantom (target fox, default search) and confirmed by direct FEM (docs/performance.md).
COARSE_SPACING_MM = 5.4
COARSE_ANGLE_STEP_DEG = 45.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", required=True, help="prepared workspace (e.g. the demo's phantom folder)")
    ap.add_argument("--target", default="fox")
    ap.add_argument("--coil", default="Magstim_D70")
    ap.add_argument("--coarse-spacing", type=float, default=COARSE_SPACING_MM,
                    help="coarse exhaustive direct search over the whole disc: centre spacing, mm "
                         "(a multiple of the search spacing; default: the design proven on the demo phantom)")
    ap.add_argument("--coarse-angle-step", type=float, default=COARSE_ANGLE_STEP_DEG,
                    help="coarse direct search handle angle step, degrees (over 180 degrees when the fine scores "
                         "repeat under a half turn, else 360)")
    ap.add_argument("--coarse-auto", action="store_true",
                    help="run the design predicted from this run's fine scores instead")
    ap.add_argument("--coarse-tol", type=float, default=0.002,
                    help="coarse placements within this relative score of the coarse best count as its best")
    ap.add_argument("--coarse-max", type=int, default=400, help="skip the direct search above this many placements")
    ap.add_argument("--scores-out", help="save the fine scores (npz) here")
    ap.add_argument("--local-step", type=int, default=0,
                    help="also a local direct search around the fine optimum, centres this many grid steps apart (0: no)")
    ap.add_argument("--skip-command", action="store_true", help="skip step 1 (the whole command)")
    a = ap.parse_args()

    from navigator.core.workspace import Workspace
    from navigator.core.errors import NavigatorError
    from navigator.optimize.fine_search import (Objective, coarse_grid_check, coarse_subgrid, fine_ranks, fine_search,
                                                half_turn_asymmetry, predict_coarse_grid)
    from navigator.optimize.grid import placement_grid
    from navigator.optimize.tms import (TmsSearch, direct_functionals, objective_directions, optimize_tms_workspace,
                                        search_sources, target_direction)
    from navigator.targets.head import Head
    from navigator.targets.roi import SphereRoi
    from navigator.tms.library import load_coil

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    ws = Workspace.open(a.workspace)
    search = TmsSearch()
    if not a.skip_command:
        out = Path(tempfile.mkdtemp()) / "opt"
        t0 = time.perf_counter()
        res = optimize_tms_workspace(ws, target=a.target, out_dir=out, coil=a.coil, search=search)
        wall = time.perf_counter() - t0
        info = res.summary["search"]
        t = info["timings_s"]
        print(f"[1] optimize tms (defaults: radius {search.radius_mm:g} mm, spacing {search.spacing_mm:g} mm, "
              f"angle step {search.angle_step_deg:g} deg, refine, tilt <= {search.tilt_deg:g} deg): "
              f"n_placements {res.summary['n_placements']:,} ({info['n_centres']} centres x {info['n_angles']} angles), "
              f"not placed {res.summary['n_not_placed']:,}")
        print(f"    search incl. FEM solves {t['search_incl_solves']:.1f} s (reciprocal solves {t['reciprocal_solves']:.1f} s, "
              f"distance field {t['distance_field']:.1f} s, collision {t['collision']:.1f} s, scores {t['scores']:.1f} s "
              f"[FMM {t['fmm']:.1f} s, node field {t['scores_detail']['node_field']:.1f} s, GEMM "
              f"{t['scores_detail']['gemm']:.1f} s], refine {t['refine']:.1f} s); whole command {wall:.1f} s "
              f"(grid {t['grid']:.1f} s, fields, standard F3 solve, outputs)")
        print(f"    FMM calls {info['fmm_calls']} (lattice nodes {info['lattice_nodes']:,}: grid {info['grid_lattice_nodes']:,}"
              f" + the refinement's reach; later by direct summation {info['direct_lattice_nodes']:,}); refinement: "
              f"{info['refine']['extra_fmm_calls']} extra FMM, {info['refine']['extra_lattice_nodes']:,} extra nodes")
        b = res.summary["best"]
        print(f"    optimum: reciprocity {b['score_reciprocity']:.5g} vs direct {b['score_direct']:.5g} {b['score_unit']} "
              f"({100 * b['reciprocity_vs_direct_relative']:+.3f} %), clearance {b['casing_clearance_mm']:.2f} mm, "
              f"tilt {b['tilt_deg']}, lift {b['lift_mm']:.2f} mm")

    # ---------------------------------------------------------------- step by step
    head = Head.of(ws)
    coil = load_coil(a.coil)
    system, mesh, scalp = head.system, head.mesh, head.scalp
    rt = head.target(a.target)
    centre = np.asarray(rt.cortical_point if rt.cortical_point is not None else rt.point, float)
    roi = SphereRoi(centre, search.roi_radius_mm).tet_mask(mesh)
    dirs = objective_directions(search.objective, target_direction(rt))
    t0 = time.perf_counter()
    grid = placement_grid(scalp, np.asarray(rt.scalp_entry), radius_mm=search.radius_mm, spacing_mm=search.spacing_mm,
                          angle_step_deg=search.angle_step_deg, distance_mm=search.distance_mm)
    t_grid = time.perf_counter() - t0
    t0 = time.perf_counter()
    src = search_sources(system, roi, dirs, None)
    t_src = time.perf_counter() - t0
    obj = Objective(search.objective, len(dirs))
    t0 = time.perf_counter()
    fs = fine_search(src, coil, grid, scalp, obj, distance_mm=search.distance_mm, max_lift_mm=search.max_lift_mm,
                     tilt_deg=search.tilt_deg)
    t_fs = time.perf_counter() - t0
    rec_rate = grid.n_placements / (t_src + t_fs)
    ti = fs.info["timings_s"]
    print(f"    fine search: FMM {ti['fmm']:.1f} s in {fs.info['fmm_calls']} call(s), {fs.info['lattice_nodes']:,} lattice "
          f"nodes (grid {fs.info['grid_lattice_nodes']:,} + the refinement's reach), refinement {ti['refine']:.1f} s "
          f"({fs.info['refine']['extra_lattice_nodes']:,} nodes added)")
    print(f"[2] step by step: grid {t_grid:.1f} s, {len(dirs)} reciprocal solves {t_src:.1f} s, fine search {t_fs:.1f} s "
          f"-> {grid.n_placements / (t_grid + t_src + t_fs):,.0f} placements/s incl. grid and solves")
    rng = np.random.default_rng(0)
    ok = np.argwhere(fs.placed)
    picks = [tuple(ok[i]) for i in rng.choice(len(ok), 5, replace=False)]
    poses = [fs.grid_pose(c, a_) for c, a_ in picks] + [fs.best.pose]
    d = obj.score(direct_functionals(system, coil, poses, roi, dirs))
    r = np.array([fs.scores[p] for p in picks] + [fs.best.score])
    rel = (r - d) / d
    print("    reciprocity vs direct FEM (5 random grid placements, then the refined optimum), relative: "
          + ", ".join(f"{100 * x:+.3f} %" for x in rel) + f"; max |.| {100 * np.abs(rel).max():.3f} %")

    # ---------------------------------------------------------------- coarse exhaustive direct search
    # first from the fine scores alone: the cheapest design over the whole disc whose best (and
    # every coarse placement within --coarse-tol of it) ranks in the top 0.1 %
    ranks, n_fine = fine_ranks(fs.scores)
    asym = half_turn_asymmetry(fs.scores, grid.angles_deg)
    half = asym is not None and asym <= a.coarse_tol / 2
    print(f"[3] half-turn check: max |s(a) - s(a + 180)| / max s = {asym if asym is not None else float('nan'):.2e} -> coarse angles over "
          f"{'180' if half else '360'} degrees")
    try:
        pred, _ = predict_coarse_grid(fs.scores, grid, top_fraction=1e-3, tol_rel=a.coarse_tol)
        print(f"    predicted from the fine scores: {pred.centre_mm:g} mm x {pred.angle_deg:g} deg "
              f"({pred.n_placements} placements) puts its best at rank {pred.rank_at_phase0:,} of {pred.n_fine:,}; "
              f"the same design passes at {pred.phases_ok} of its {pred.phases} lattice phases")
    except NavigatorError as exc:
        pred = None
        print(f"    prediction: {exc}")
    if a.coarse_auto and pred is not None:
        cstep, astep_i = pred.centre_step, pred.angle_step
    else:
        cstep = max(1, round(a.coarse_spacing / search.spacing_mm))
        astep_i = max(1, round(a.coarse_angle_step / search.angle_step_deg))
    chk = coarse_grid_check(fs.scores, grid, cstep, astep_i, half_turn=half, tol_rel=a.coarse_tol, _ranks=(ranks, n_fine))
    print(f"    design run: {chk.centre_mm:g} mm x {chk.angle_deg:g} deg: fine-score prediction rank "
          f"{chk.rank_at_phase0:,} (top {100 * chk.rank_at_phase0 / n_fine:.4f} %); passes at {chk.phases_ok} of "
          f"{chk.phases} phases")
    ci, ai = coarse_subgrid(grid, cstep, astep_i, half_turn=half)
    cand = [(int(c), int(x)) for c in ci for x in ai if fs.placed[c, x]]
    if a.scores_out:
        np.savez_compressed(a.scores_out, scores=fs.scores, offsets_mm=grid.offsets_mm, angles_deg=grid.angles_deg)
    if len(cand) > a.coarse_max:
        print(f"    {len(cand)} coarse placements > --coarse-max {a.coarse_max}: direct search skipped")
        return
    t0 = time.perf_counter()
    dd = obj.score(direct_functionals(system, coil, [fs.grid_pose(c, x) for c, x in cand], roi, dirs))
    t_dir = time.perf_counter() - t0
    j = int(np.argmax(dd))
    cb = cand[j]
    rank = int(ranks[cb])
    print(f"    coarse exhaustive direct search: {len(cand)} placements ({len(ci)} centres every "
          f"{cstep * search.spacing_mm:g} mm x {len(ai)} angles every {grid.angles_deg[astep_i] - grid.angles_deg[0]:g} deg) "
          f"in {t_dir:.1f} s; its best (centre {cb[0]}, {grid.angles_deg[cb[1]]:g} deg, direct {dd[j] * 1e6:.4f}) "
          f"ranks {rank:,} of {n_fine:,} in the fine search = top {100 * rank / n_fine:.4f} % "
          f"({'within' if rank <= 1e-3 * n_fine else 'NOT within'} the top 0.1 %; fine best grid "
          f"{np.nanmax(fs.scores) * 1e6:.4f}, refined {fs.best.score * 1e6:.4f} V/m per A/us)")
    rv = np.array([fs.scores[p] for p in cand])
    rb = int(np.argmax(rv))
    rel_c = (rv - dd) / dd
    print(f"    the fine search's scores of the same {len(cand)} placements pick the same best: {rb == j} "
          f"(reciprocity {rv[rb] * 1e6:.4f} vs direct {dd[j] * 1e6:.4f}); reciprocity vs direct over them: "
          f"max |rel| {100 * np.abs(rel_c).max():.3f} %")
    n_local, t_dir2 = 0, 0.0
    if a.local_step > 0:
        # a local coarse exhaustive direct search around the fine optimum: 5 x 5 centres
        # --local-step grid steps apart x the best angle -+ 5 degrees
        k = np.rint(grid.offsets_mm / search.spacing_mm).astype(int)
        cbest, abest = fs.best_grid
        kb = k[cbest]
        loc = [int(i) for i in range(grid.n_centres)
               if np.abs(k[i] - kb).max() <= 2 * a.local_step and ((k[i] - kb) % a.local_step == 0).all()]
        angs = [(abest + d_) % grid.n_angles for d_ in (-5, 0, 5)]
        cand2 = [(c, ai_) for c in loc for ai_ in angs if fs.placed[c, ai_]]
        t0 = time.perf_counter()
        dd2 = obj.score(direct_functionals(system, coil, [fs.grid_pose(c, ai_) for c, ai_ in cand2], roi, dirs))
        t_dir2 = time.perf_counter() - t0
        n_local = len(cand2)
        rank2 = int(ranks[cand2[int(np.argmax(dd2))]])
        print(f"[3b] local coarse exhaustive direct search around the fine optimum: {len(cand2)} placements "
              f"({len(loc)} centres {a.local_step * search.spacing_mm:g} mm apart x 3 angles 5 deg apart) in "
              f"{t_dir2:.1f} s; its best ranks {rank2:,} = top {100 * rank2 / n_fine:.4f} % of the fine search")
    dir_rate = (len(cand) + n_local) / (t_dir + t_dir2)
    print(f"[4] throughput in this run: reciprocity {rec_rate:,.0f} placements/s (incl. its {len(dirs)} FEM solves) vs "
          f"direct {dir_rate:.3f} placements/s (one FEM solve each): x{rec_rate / dir_rate:,.0f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
