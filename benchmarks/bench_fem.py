"""FEM/tDCS benchmarks and the sphere validation table.

    python benchmarks/bench_fem.py head [--spacing 1.55] [--rhs 3] [--direct]
        One 2-pad tDCS simulation on a structured ~1 M-node three-shell ball ("head-like":
        85/90/95 mm, CSF/bone/scalp conductivities): assembly, AMG setup, solve, then the time
        per additional right-hand side with the reused preconditioner; peak RSS.
    python benchmarks/bench_fem.py sphere [--sizes 8,6,4,3]
        Point-electrode tDCS on gmsh concentric spheres vs the Rush & Driscoll series:
        relative L2 error of E in the inner sphere per mesh size, electrode currents, and the
        field change between solver tolerances.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from navigator.fem.conductivity import conductivity_per_tet
from navigator.fem.spheres import concentric_sphere_mesh, structured_ball_mesh
from navigator.tes.cem import ElectrodeSystem
from navigator.tes.electrodes import ElectrodeSpec, Scalp, place_electrode


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def bench_head(spacing: float, n_rhs: int, solver: str) -> None:
    t0 = time.perf_counter()
    mesh = structured_ball_mesh(spacing)
    print(f"mesh: {mesh.n_nodes} nodes, {mesh.n_tets} tets (built in {time.perf_counter() - t0:.1f} s, "
          f"peak RSS so far {peak_rss_gb():.2f} GB)", flush=True)
    sigma = conductivity_per_tet(mesh)
    t0 = time.perf_counter()
    scalp = Scalp(mesh)
    specs = [ElectrodeSpec((-40.0, 40.0, 80.0), 2.0, "rect", (50, 50)),
             ElectrodeSpec((40.0, 70.0, 40.0), -2.0, "rect", (50, 50))]
    placed = [place_electrode(scalp, s, np.array(s.position)) for s in specs]
    t_place = time.perf_counter() - t0
    t_start = time.perf_counter()
    c_start = time.process_time()
    system = ElectrodeSystem(mesh, sigma, placed, solver=solver)
    sol = system.solve(np.array([2e-3, -2e-3]))
    E = -system.fem.gradient(sol.v)
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - c_start
    tm = sol.timings
    print(f"electrode placement: {t_place:.1f} s")
    print(f"assembly {tm['assembly']:.2f} s + electrode terms {tm['electrode_assembly']:.2f} s, "
          f"solver setup ({system.fem.solver.backend}) {tm['solver_setup']:.2f} s, "
          f"solve {tm['solve']:.2f} s ({sol.iterations} iterations, residual {sol.residual:.1e})")
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"assembly+setup+solve+field wall: {wall:.2f} s (CPU time {cpu:.2f} s; load average {load}); "
          f"peak RSS {peak_rss_gb():.2f} GB")
    print(f"delivered currents (mA): {np.round(sol.delivered_currents * 1e3, 6).tolist()}; "
          f"max |E| {np.linalg.norm(E, axis=1).max():.2f} V/m")
    rng = np.random.default_rng(0)
    times, iters, cpus = [], [], []
    for _ in range(n_rhs):  # same matrix, new right-hand side (as for leadfields / optimization)
        f = rng.normal(size=mesh.n_nodes) * system.b[:, 0].max()
        f[system.b[:, 0] == 0] = 0.0
        c0 = time.process_time()
        r = system.fem.solve(f)
        times.append(r.seconds)
        cpus.append(time.process_time() - c0)
        iters.append(r.iterations)
    if times:
        print(f"additional RHS with reused preconditioner: {np.mean(times):.2f} s each (CPU {np.mean(cpus):.2f} s) "
              f"({np.mean(iters):.0f} iterations), n={len(times)}")
    print(f"final peak RSS {peak_rss_gb():.2f} GB")


def bench_sphere(sizes: list[str]) -> None:
    from navigator.fem.analytic import point_electrodes_potential_field

    radii, sig = (85.0, 90.0, 95.0), (1.654, 0.010, 0.465)
    a = np.array([0.0, 0.0, 95.0])
    c = 95.0 * np.array([np.sin(np.pi / 3), 0.0, np.cos(np.pi / 3)])
    print("| mesh size (mm) | nodes | tets | rel. L2 error of E, r < 85 mm | iterations | currents (mA) |")
    print("|---|---|---|---|---|---|")
    for spec in sizes:  # "H" = uniform size H mm; "H/S": S mm in the outer 25 mm + shells, H at the centre
        h, _, hs = spec.partition("/")
        mesh = concentric_sphere_mesh(radii, (3, 4, 5), size=float(h), size_surface=float(hs) if hs else None, threads=os.cpu_count() or 1)
        sigma = conductivity_per_tet(mesh)
        scalp = Scalp(mesh)
        els = [place_electrode(scalp, ElectrodeSpec(tuple(a), 1.0, "point"), a),
               place_electrode(scalp, ElectrodeSpec(tuple(c), -1.0, "point"), c)]
        system = ElectrodeSystem(mesh, sigma, els)
        sol = system.solve(np.array([1e-3, -1e-3]))
        E = -system.fem.gradient(sol.v)
        inner = mesh.tet_tags == 3
        _, Ea = point_electrodes_potential_field(mesh.tet_centroids()[inner], mesh.nodes[els[0].node],
                                                 mesh.nodes[els[1].node], 1e-3, radii, sig)
        w = system.fem.volumes[inner]
        err = np.sqrt((w * ((E[inner] - Ea) ** 2).sum(1)).sum() / (w * (Ea**2).sum(1)).sum())
        cur = np.round(sol.delivered_currents * 1e3, 5).tolist()
        print(f"| {spec} | {mesh.n_nodes} | {mesh.n_tets} | {err:.4f} | {sol.iterations} | {cur} |", flush=True)
    # tolerance study on the last mesh
    ref = None
    for rtol in (1e-12, 1e-10, 1e-8, 1e-6, 1e-4):
        system = ElectrodeSystem(mesh, sigma, els, rtol=rtol)
        sol = system.solve(np.array([1e-3, -1e-3]))
        E = -system.fem.gradient(sol.v)
        if ref is None:
            ref = E
        d = np.linalg.norm(E - ref) / np.linalg.norm(ref)
        print(f"rtol {rtol:.0e}: {sol.iterations} iterations, field change vs 1e-12: {d:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    h = sub.add_parser("head")
    h.add_argument("--spacing", type=float, default=1.55, help="grid spacing in mm (1.55 -> ~1 M nodes)")
    h.add_argument("--rhs", type=int, default=3)
    h.add_argument("--direct", action="store_true", help="use the direct solver")
    s = sub.add_parser("sphere")
    s.add_argument("--sizes", default="8,6,4,8/3")
    args = ap.parse_args()
    if args.what == "head":
        bench_head(args.spacing, args.rhs, "direct" if args.direct else "amg")
    else:
        bench_sphere(args.sizes.split(","))


if __name__ == "__main__":
    main()
