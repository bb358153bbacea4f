"""Live field benchmark: update time and accuracy of the live field engine against full FEM solves.

Opens (or, by default, rebuilds) the live-field precomputation of a workspace for one coil and
target (:func:`navigator.optimize.live_field.open_live_field`), then at ``--poses`` random poses
of the validity region (centre within 30 mm of the target's scalp point, any handle angle,
coil-scalp distance 2-15 mm, tilt <= 10 deg; seed ``--seed``, independent of the poses the
precomputation sampled):

* times ``LiveFieldEngine.evaluate`` (``--repeats`` updates per pose, after one warm-up update);
* solves the full FEM problem at the same pose (``solve_tms``, AMG-CG to rtol 1e-8, P0 field)
  and samples it on the region with the engine's own observable (``observe``: the same patch
  recovery at the middle-GM vertices), and reports the relative L2 error of |E| over the region
  (and of E . n, and of |E| at the target).

Run: ``python benchmarks/bench_live_field.py --workspace DEMO_DIR [--coil Magstim_D70]``
(``navigator demo --out DEMO_DIR`` makes the phantom workspace). Last line:
``live field: <median> ms per update (p95 <p95> ms), relative L2 error <median> % (max <max> %) vs full FEM over <n> poses; precompute <s> s``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", required=True, help="subject workspace (e.g. from `navigator demo`)")
    ap.add_argument("--coil", default="Magstim_D70", help="library coil name or coil file (default Magstim_D70)")
    ap.add_argument("--target", default="fox", help="target SPEC (default fox)")
    ap.add_argument("--poses", type=int, default=24, help="random validation poses (default 24)")
    ap.add_argument("--repeats", type=int, default=5, help="timed updates per pose (default 5)")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--reuse", action="store_true", help="use the cached precomputation when current "
                    "(precompute then reports the recorded build time)")
    args = ap.parse_args(argv)

    from navigator.core.progress import Progress
    from navigator.core.workspace import Workspace
    from navigator.optimize.live_field import open_live_field
    from navigator.targets.head import Head
    from navigator.tms.library import load_coil
    from navigator.tms.simulate import solve_tms

    ws = Workspace.open(args.workspace)
    head = Head.of(ws)
    coil = load_coil(args.coil)
    target = head.target(args.target)
    last = [0.0]

    def report(frac, msg):
        now = time.perf_counter()
        if now - last[0] > 15 or frac >= 1.0:
            print(f"  [{frac * 100:5.1f} %] {msg}", flush=True)
            last[0] = now

    t0, c0 = time.perf_counter(), time.process_time()
    engine = open_live_field(head, coil, target, rebuild=not args.reuse, keep_sampling=True,
                             progress=Progress(callback=report))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    info = engine.info
    precompute = float(info["timings_s"]["total"]) if info.get("loaded_from_cache") else wall
    t = info["timings_s"]
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"mesh: {head.mesh.n_nodes} nodes / {head.mesh.n_tets} tets; coil {coil.name} ({coil.n_dipoles} dipoles); "
          f"target {target.name}: region {len(engine.region_vertices)} middle-GM vertices")
    print(f"precompute: {precompute:.1f} s wall"
          + ("" if info.get("loaded_from_cache") else f", {cpu:.1f} s CPU (this process, all threads)")
          + f" ({'recorded build, loaded from cache' if info.get('loaded_from_cache') else 'built now'}); "
          + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
    print(f"rank {engine.rank} from {info['n_samples']} sampled solves (sample residual "
          f"{info['sample_residual'] * 100:.2f} %), {info['source_nodes']} source points "
          f"({info.get('source_points', 'nodes')}), coil lattice "
          f"{'x'.join(map(str, info['a_lattice_shape']))}")

    didt = 0.5 * coil.max_didt if coil.max_didt else 1.0e8
    rng = np.random.default_rng(args.seed)
    poses = engine.validity.sample_poses(args.poses, rng)
    engine.evaluate(poses[0], didt)  # warm-up (compiled kernels are cached on disk, loaded once)
    times, cpus, errs, nerrs, terrs, parts = [], [], [], [], [], []
    for i, pose in enumerate(poses):
        for _ in range(args.repeats):
            ts, cs = time.perf_counter(), time.process_time()
            live = engine.evaluate(pose, didt)
            times.append(time.perf_counter() - ts)
            cpus.append(time.process_time() - cs)
        fields = solve_tms(head.mesh, coil, pose, didt, system=head.system, field="element")
        ref = engine.observe(fields.E_element + fields.D, pose, didt)
        # where the error comes from: the basis (what U does not span) and the coupling (coil
        # lattice, dropped nodes), as shares of |E| over the region
        y = np.asarray(engine.sampling() @ (fields.E_element + fields.D))
        U = engine.pre.U
        proj = (U @ (U.T @ y.ravel())).reshape(-1, 3)
        norm_e = np.linalg.norm(ref.magnitude)
        parts.append((np.linalg.norm(proj - y) / norm_e, np.linalg.norm(engine.secondary(pose, didt) - proj) / norm_e))
        err = np.linalg.norm(live.magnitude - ref.magnitude) / np.linalg.norm(ref.magnitude)
        nerr = np.linalg.norm(live.normal - ref.normal) / np.linalg.norm(ref.normal)
        terr = abs(live.target_magnitude - ref.target_magnitude) / ref.target_magnitude
        errs.append(err)
        nerrs.append(nerr)
        terrs.append(terr)
        c = pose[:3, 3]
        print(f"pose {i + 1:2d}: centre {c[0]:7.1f} {c[1]:7.1f} {c[2]:7.1f} mm; |E| max {ref.magnitude.max():6.1f} V/m, "
              f"target {ref.target_magnitude:6.1f} (live {live.target_magnitude:6.1f}); error |E| {err * 100:5.2f} %, "
              f"E.n {nerr * 100:5.2f} %; update {np.median(times[-args.repeats:]) * 1e3:.1f} ms", flush=True)
    ms = np.array(times) * 1e3
    e = np.array(errs) * 100
    print(f"E.n relative L2 error: median {np.median(nerrs) * 100:.2f} %, max {np.max(nerrs) * 100:.2f} %; "
          f"target |E| error: median {np.median(terrs) * 100:.2f} %, max {np.max(terrs) * 100:.2f} %")
    pa = np.array(parts) * 100
    print(f"update CPU time (all threads): median {np.median(cpus) * 1e3:.1f} ms; wall median "
          f"{np.median(times) * 1e3:.1f} ms at load average {os.getloadavg()[0]:.2f}")
    print(f"error sources (share of |E|, median / max): basis {np.median(pa[:, 0]):.2f} / {pa[:, 0].max():.2f} %, "
          f"coupling (coil lattice, dropped nodes) {np.median(pa[:, 1]):.2f} / {pa[:, 1].max():.2f} %")
    print(f"live field: {np.median(ms):.1f} ms per update (p95 {np.percentile(ms, 95):.1f} ms), relative L2 error "
          f"{np.median(e):.2f} % (max {np.max(e):.2f} %) vs full FEM over {len(poses)} poses; precompute {precompute:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
