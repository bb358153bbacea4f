"""Benchmark of the fine, collision-free TMS placement search (issue 18) on a prepared workspace.

Usage::

    navigator demo --out DEMO                         # the demo phantom (about 4 min)
    python benchmarks/bench_optimize_scale.py --workspace DEMO/phantom [--target fox] [--skip-command]

Prints, in one run:

1. ``optimize_tms_workspace`` with the default :class:`~navigator.optimize.tms.TmsSearch` (what
   ``navigator optimize tms WS --target fox --out OUT`` runs): placements, wall time of the
   search including its FEM solves, and of the whole command (fields and outputs included);
2. the search again step by step (reciprocal solves, fine search): reciprocity vs direct FEM at
   the optimum and at 5 random placements of the grid (relative difference);
3. a coarse exhaustive direct search (every placement of a sub-grid of the fine grid, one FEM
   solve each) and the rank of its best placement among the fine search's scores; and a local
   one (5 x 5 centres 2 grid steps apart x 3 angles 5 degrees apart around the fine optimum);
4. throughput side by side: reciprocity placements/s (incl. its solves) vs direct placements/s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", required=True, help="prepared workspace (e.g. the demo's phantom folder)")
    ap.add_argument("--target", default="fox")
    ap.add_argument("--coil", default="Magstim_D70")
    ap.add_argument("--coarse-spacing", type=float, default=12.0, help="coarse direct search centre spacing, mm")
    ap.add_argument("--coarse-angles", default="0,45,90,135",
                    help="coarse direct search handle angles (|mean E| is the same at a and a+180)")
    ap.add_argument("--local-step", type=int, default=2, help="local direct search: centre step in grid steps")
    ap.add_argument("--skip-command", action="store_true", help="skip step 1 (the whole command)")
    a = ap.parse_args()

    from navigator.core.workspace import Workspace
    from navigator.optimize.fine_search import Objective, fine_search
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
    step = max(1, round(a.coarse_spacing / search.spacing_mm))
    k = np.rint(grid.offsets_mm / search.spacing_mm).astype(int)
    centres = np.flatnonzero((k % step == 0).all(axis=1))
    angles = [int(np.argmin(np.abs(grid.angles_deg - float(x)))) for x in a.coarse_angles.split(",")]
    cand = [(int(c), ai) for c in centres for ai in angles if fs.placed[c, ai]]
    t0 = time.perf_counter()
    dd = obj.score(direct_functionals(system, coil, [fs.grid_pose(c, ai) for c, ai in cand], roi, dirs))
    t_dir = time.perf_counter() - t0
    j = int(np.argmax(dd))
    cb = cand[j]
    finite = fs.scores[np.isfinite(fs.scores)]
    rank = int((finite > fs.scores[cb]).sum())
    print(f"[3] coarse exhaustive direct search: {len(cand)} placements ({len(centres)} centres every "
          f"{step * search.spacing_mm:g} mm x {len(angles)} angles) in {t_dir:.1f} s; its best (centre {cb[0]}, "
          f"{grid.angles_deg[cb[1]]:g} deg, direct {dd[j] * 1e6:.4f}) ranks {rank + 1:,} of {len(finite):,} in the fine "
          f"search = top {100 * (rank + 1) / len(finite):.4f} % (fine best grid {np.nanmax(fs.scores) * 1e6:.4f}, "
          f"refined {fs.best.score * 1e6:.4f} V/m per A/us)")
    rb = int(np.argmax([fs.scores[c] for c in cand]))
    print(f"    the fine search's scores of the same {len(cand)} placements pick the same best: {rb == j} "
          f"(reciprocity {fs.scores[cand[rb]] * 1e6:.4f} vs direct {dd[j] * 1e6:.4f})")
    # a local coarse exhaustive direct search around the fine optimum: 5 x 5 centres --local-step
    # grid steps apart x the best angle -+ 5 degrees
    cbest, abest = fs.best_grid
    kb = k[cbest]
    loc = [int(i) for i in range(grid.n_centres)
           if np.abs(k[i] - kb).max() <= 2 * a.local_step and ((k[i] - kb) % a.local_step == 0).all()]
    angs = [(abest + d_) % grid.n_angles for d_ in (-5, 0, 5)]
    cand2 = [(c, ai) for c in loc for ai in angs if fs.placed[c, ai]]
    t0 = time.perf_counter()
    dd2 = obj.score(direct_functionals(system, coil, [fs.grid_pose(c, ai) for c, ai in cand2], roi, dirs))
    t_dir2 = time.perf_counter() - t0
    j2 = int(np.argmax(dd2))
    rank2 = int((finite > fs.scores[cand2[j2]]).sum())
    print(f"[3b] local coarse exhaustive direct search around the fine optimum: {len(cand2)} placements "
          f"({len(loc)} centres {a.local_step * search.spacing_mm:g} mm apart x 3 angles 5 deg apart) in {t_dir2:.1f} s; "
          f"its best ranks {rank2 + 1:,} = top {100 * (rank2 + 1) / len(finite):.4f} % of the fine search")
    dir_rate = (len(cand) + len(cand2)) / (t_dir + t_dir2)
    print(f"[4] throughput in this run: reciprocity {rec_rate:,.0f} placements/s (incl. its {len(dirs)} FEM solves) vs "
          f"direct {dir_rate:.3f} placements/s (one FEM solve each): x{rec_rate / dir_rate:,.0f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
