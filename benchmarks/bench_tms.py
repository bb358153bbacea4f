"""TMS benchmarks: primary field (FMM), one full TMS simulation on a ~1 M-node head-sized mesh,
and (with --convergence) the sphere validation under mesh refinement.

Mesh: a structured grid (Kuhn split, 6 tets per cube) clipped to a 95 mm ball, tagged as five
concentric tissues (WM, GM, CSF, bone, scalp; SimNIBS conductivities). ``--n 124`` with 1.55 mm
spacing gives about 1 M nodes / 5.5 M tets.

Run: ``python benchmarks/bench_tms.py [--n 124] [--convergence]``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from navigator.core.mesh import Mesh

_KUHN = np.array([[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7]])


def ball_grid_mesh(n: int, radius: float = 95.0) -> Mesh:
    spacing = 2 * radius / (n - 1)
    ax = (np.arange(n) - (n - 1) / 2) * spacing
    nodes = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    idx = np.arange(n ** 3).reshape(n, n, n)
    c = idx[:-1, :-1, :-1].reshape(-1)
    corner = np.array([0, n * n, n, n * n + n, 1, n * n + 1, n + 1, n * n + n + 1])
    tets = (c[:, None, None] + corner[_KUHN][None]).reshape(-1, 4)
    r = np.linalg.norm(nodes[tets].mean(axis=1), axis=1)
    keep = r < radius
    tets, r = tets[keep], r[keep]
    tags = np.digitize(r, [60.0, 70.0, 75.0, 85.0]) + 1  # 1 WM, 2 GM, 3 CSF, 4 bone, 5 scalp
    used, inv = np.unique(tets, return_inverse=True)
    mesh = Mesh(nodes[used], inv.reshape(-1, 4), tags)
    vol = mesh.tet_volumes()
    mesh.tetrahedra[vol < 0] = mesh.tetrahedra[vol < 0][:, [0, 2, 1, 3]]
    return mesh


def _clock():
    return time.perf_counter(), time.process_time()


def _since(t0) -> str:
    w, c = _clock()
    return f"{w - t0[0]:.2f} s wall, {c - t0[1]:.2f} s CPU"


def bench_primary(points: np.ndarray) -> None:
    from navigator.tms.library import library_coil
    from navigator.tms.primary import primary_field

    coil = library_coil("MagVenture_MCF-B65")
    pose = np.eye(4)
    pose[:3, 1], pose[:3, 2] = [0, 1, 0], [0, 0, -1]
    pose[:3, 0] = np.cross(pose[:3, 1], pose[:3, 2])
    pose[:3, 3] = [0, 0, 99.0]
    for eps in (1e-3, 1e-4):
        t = _clock()
        primary_field(coil, pose, points, 1e6, method="fmm", eps=eps)
        print(f"primary field: {coil.n_dipoles} dipoles at {len(points)} points (FMM eps {eps:g}): {_since(t)}",
              flush=True)


def bench_simulation(mesh: Mesh, d_at: str) -> None:
    import navigator.fem.system  # noqa: F401  (module imports are start-up, not simulation time)
    from navigator.tms.library import library_coil
    from navigator.tms.simulate import solve_tms

    pose = np.eye(4)
    pose[:3, 1], pose[:3, 2] = [0, 1, 0], [0, 0, -1]
    pose[:3, 0] = np.cross(pose[:3, 1], pose[:3, 2])
    pose[:3, 3] = [0, 0, 99.0]
    t = _clock()
    f = solve_tms(mesh, library_coil("MagVenture_MCF-B65"), pose, 1e6, d_at=d_at)
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in f.timings.items())
    print(f"TMS simulation (D at {d_at}): {_since(t)} total ({parts} wall); {f.iterations} CG iterations; "
          f"peak |E| {np.percentile(f.magnE, 99.9):.1f} V/m at 1 A/us", flush=True)


def bench_convergence(sizes: list[float]) -> None:
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.tms.analytic import sphere_dipole_e_field
    from navigator.tms.coil import Coil
    from navigator.tms.simulate import solve_tms

    r0 = np.array([0.0, 0.0, 110.0])
    m = np.array([1.0, 0.0, 1.0]) / np.sqrt(2)
    coil = Coil("dipole", [[0, 0, 0]], [m])
    pose = np.eye(4)
    pose[:3, 3] = r0
    print("sphere r = 85/90/95 mm, dipole 15 mm above, inner-shell elements:")
    for size in sizes:
        t = time.perf_counter()
        mesh = concentric_sphere_mesh(size=size, threads=os.cpu_count() or 1)
        tm = time.perf_counter() - t
        t = time.perf_counter()
        f = solve_tms(mesh, coil, pose, 1e6)
        ts = time.perf_counter() - t
        sel = mesh.tet_tags == 3
        ea = sphere_dipole_e_field(r0 * 1e-3, m, mesh.tet_centroids()[sel] * 1e-3, 1e6)
        a = f.E[sel]
        rdm = np.linalg.norm(a / np.linalg.norm(a) - ea / np.linalg.norm(ea))
        mag = abs(np.log(np.linalg.norm(a) / np.linalg.norm(ea)))
        print(f"  size {size:4.1f} mm: {mesh.n_tets:8d} tets  RDM {rdm:.4f}  MAG {mag:.4f}  "
              f"(mesh {tm:.1f} s, solve {ts:.1f} s)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=124, help="grid nodes per axis (default 124: ~1 M nodes)")
    ap.add_argument("--convergence", action="store_true", help="also run the sphere refinement study")
    ap.add_argument("--no-sim", action="store_true", help="skip the full simulation (primary field only)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="full simulations to run (the first in a process includes loading compiled kernels)")
    ap.add_argument("--centroids", action="store_true", help="also time the simulation with D at centroids")
    ap.add_argument("--sizes", default="8,6,5,4,3", help="element sizes (mm) for --convergence")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}")
    t = time.perf_counter()
    mesh = ball_grid_mesh(args.n)
    print(f"mesh: {mesh.n_nodes} nodes, {mesh.n_tets} tets ({time.perf_counter() - t:.1f} s to build)", flush=True)
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    bench_primary(mesh.nodes)
    if not args.no_sim:
        for _ in range(args.repeat):
            bench_simulation(mesh, "nodes")
        if args.centroids:
            bench_simulation(mesh, "centroids")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if args.convergence:
        bench_convergence([float(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
