"""Benchmark of navigator.optimize: TMS placement search (reciprocity vs direct) and tDCS HD.

Usage::

    python benchmarks/bench_optimize.py                      # phantom sample (slow to build: meshing)
    python benchmarks/bench_optimize.py --workspace DIR      # an already prepared workspace
    python benchmarks/bench_optimize.py --sphere [--size MM] # 5-shell sphere head, no workspace needed

Prints: mesh size, TMS default search (>= 5000 placements) wall time incl. FEM solves,
placements/s of reciprocity and direct (measured in the same run), the reciprocity vs direct
agreement at a few placements, the 64-electrode HD leadfield time and the HD LP/MILP times.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def phantom_workspace(folder: Path):
    import json

    from navigator.meshing.step import mesh_workspace
    from navigator.samples import write_sample
    from navigator.targets.eeg import Fiducials
    from navigator.targets.fiducials import save_fiducials
    from navigator.targets.step import head_coordinates_workspace

    ws = write_sample("phantom", folder, force=True)
    mesh_workspace(ws)  # ground-truth labels -> mesh
    pts = json.loads((ws.root / "ground_truth" / "fiducials.json").read_text())["points"]
    save_fiducials(Fiducials(nasion=pts["nasion"], inion=pts["inion"], lpa=pts["lpa"], rpa=pts["rpa"],
                             source="user"), ws.path("fiducials"))
    head_coordinates_workspace(ws)
    return ws


def fibonacci_cap(n: int, radius: float) -> dict[str, np.ndarray]:
    k = np.arange(n) + 0.5
    z = 1 - k / n * 0.85  # upper part of the sphere
    phi = k * np.pi * (3 - np.sqrt(5))
    r = np.sqrt(1 - z * z)
    return {f"E{i}": radius * np.array([r[i] * np.cos(phi[i]), r[i] * np.sin(phi[i]), z[i]]) for i in range(n)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace")
    ap.add_argument("--sphere", action="store_true")
    ap.add_argument("--size", type=float, default=5.0, help="sphere mesh element size, mm")
    ap.add_argument("--direct", type=int, default=4, help="direct placements to time")
    a = ap.parse_args()
    from navigator.fem.conductivity import conductivity_per_tet
    from navigator.fem.system import FemSystem
    from navigator.optimize.grid import placement_grid
    from navigator.optimize.leadfield import hd_leadfield
    from navigator.optimize.tdcs import constraint_violations, optimize_hd
    from navigator.optimize.tms import combine, direct_functionals, optimize_placement
    from navigator.targets.roi import SphereRoi
    from navigator.tms.library import library_coil

    t0 = time.perf_counter()
    if a.sphere:
        from navigator.fem.spheres import concentric_sphere_mesh
        from navigator.io.mesh_boundary import outer_surface

        mesh = concentric_sphere_mesh((72.0, 78.0, 81.0, 86.0, 92.0), (1, 2, 3, 4, 5), size=a.size, threads=os.cpu_count() or 1)
        scalp = outer_surface(mesh)
        target = np.array([-30.0, 40.0, 55.0])
        target = target / np.linalg.norm(target) * 75.0
        entry = target / np.linalg.norm(target) * 92.0
        direction = -target / np.linalg.norm(target)
        cap = fibonacci_cap(64, 92.0)
        label = f"5-shell sphere, element size {a.size} mm"
    else:
        from navigator.core.workspace import Workspace
        from navigator.io.gmsh import read_msh
        from navigator.optimize.tms import target_direction
        from navigator.targets.context import HeadContext
        from navigator.targets.resolve import resolve_target

        ws = Workspace.open(a.workspace) if a.workspace else phantom_workspace(Path(tempfile.mkdtemp()) / "phantom")
        mesh = read_msh(ws.path("mesh"))
        ctx = HeadContext(ws)
        rt = resolve_target(ctx, "eeg:F3" if ctx.transform is None else "fox")
        target = np.asarray(rt.cortical_point if rt.cortical_point is not None else rt.point)
        entry, direction, scalp = np.asarray(rt.scalp_entry), target_direction(rt), ctx.scalp
        cap = ctx.eeg.electrodes()
        label = f"workspace {ws.root}"
    print(f"head model: {label}: {mesh.n_nodes} nodes, {mesh.n_tets} tets (prepared in {time.perf_counter() - t0:.1f} s)")
    coil = library_coil("Magstim_D70")

    # ---------------------------------------------------------------- TMS
    t0 = time.perf_counter()
    sigma = conductivity_per_tet(mesh)
    system = FemSystem(mesh, sigma)
    roi = SphereRoi(target, 5.0).tet_mask(mesh)
    grid = placement_grid(scalp, entry, radius_mm=20.0, spacing_mm=2.0, angle_step_deg=10.0)
    t_grid = time.perf_counter() - t0
    opt, _src = optimize_placement(system, coil, grid, roi, objective="magnitude")
    wall = time.perf_counter() - t0
    print(f"TMS reciprocity: {grid.n_placements} placements ({grid.n_centres} centres x {grid.n_angles} angles), "
          f"{coil.n_dipoles}-dipole coil: {wall:.1f} s wall incl. assembly+grid ({t_grid:.1f} s) and 3 FEM solves; "
          f"search {opt.info['timings_s']}; {grid.n_placements / wall:.0f} placements/s overall")
    rng = np.random.default_rng(0)
    picks = [(int(rng.integers(grid.n_centres)), int(rng.integers(grid.n_angles))) for _ in range(a.direct)]
    picks.append(opt.best)
    t0 = time.perf_counter()
    d = direct_functionals(system, coil, [grid.pose(i, j) for i, j in picks], roi, np.eye(3), eps=1e-4)
    t_dir = time.perf_counter() - t0
    dmag = combine(d, "magnitude")
    rec = np.array([opt.scores[p] for p in picks])
    print(f"TMS direct: {len(picks)} placements in {t_dir:.1f} s = {len(picks) / t_dir:.3f} placements/s "
          f"(reciprocity {grid.n_placements / opt.info['timings_s']['total']:.0f} placements/s incl. its solves)")
    print(f"reciprocity vs direct, max relative difference over {len(picks)} placements: "
          f"{np.max(np.abs(rec - dmag) / dmag) * 100:.3f} %")

    # ---------------------------------------------------------------- tDCS HD
    t0 = time.perf_counter()
    lf = hd_leadfield(mesh, sigma, cap, {"target": SphereRoi(target, 10.0).tet_mask(mesh)})
    print(f"HD leadfield: {lf.n} electrodes (10 mm discs) in {time.perf_counter() - t0:.1f} s {lf.timings}")
    for n_max in (None, 8):
        sol = optimize_hd(lf.roi["target"], objective="normal", direction=direction, max_electrodes=n_max)
        viol = constraint_violations(sol.currents_a, 2e-3, 1e-3)
        print(f"HD optimization (max electrodes {n_max}): {sol.seconds:.3f} s, objective {sol.objective:.4f} V/m, "
              f"{sol.n_active} active, max violation {max(viol.values()):.1e} A")
    sol = optimize_hd(lf.roi["target"], objective="magnitude")
    print(f"HD optimization (magnitude): {sol.seconds:.3f} s, |mean E| {sol.objective:.4f} V/m")


if __name__ == "__main__":
    main()
