"""Benchmark the meshing step: wall time, peak memory, node/element counts and quality.

Usage::

    python benchmarks/bench_meshing.py                  # sphere + phantom samples, default settings
    python benchmarks/bench_meshing.py --samples sphere
    python benchmarks/bench_meshing.py --compare        # mesher variants on a synthetic folded head
    python benchmarks/bench_meshing.py --labels FILE.nii.gz
    python benchmarks/bench_meshing.py --samples phantom --set perturb=true   # non-default parameters

The samples come from ``navigator.samples.write_sample``; if that is unavailable, a synthetic
folded head (``synthetic_head``) stands in for the phantom and the sphere is built here
(labels 3 r <= 85, 4 85-90, 5 90-95 mm, 1 mm voxels). Peak memory is the maximum resident set
of this process and of the CGAL child process (getrusage), in GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from navigator.core.volume import Volume
from navigator.meshing.mesher import MeshParameters, labels_to_mesh
from navigator.meshing.quality import check_mesh, mesh_quality, volume_errors
from navigator.meshing.surfaces import extract_surfaces


def sphere_labels(h: float = 1.0) -> Volume:
    """The sphere sample's geometry: 3 r <= 85, 4 85-90, 5 90-95 mm, centred at the origin."""
    n = int(np.ceil(100 / h))
    x = np.arange(-n, n + 1) * h
    xx, yy, zz = np.meshgrid(x, x, x, indexing="ij", sparse=True)
    r = np.sqrt(xx**2 + yy**2 + zz**2)
    lab = np.zeros(r.shape, np.uint8)
    lab[r <= 95] = 5
    lab[r <= 90] = 4
    lab[r <= 85] = 3
    aff = np.diag([h, h, h, 1.0])
    aff[:3, 3] = -n * h
    return Volume(lab, aff, source="sphere (synthetic)")


def synthetic_head(h: float = 1.0) -> Volume:
    """A folded head: WM, GM 2.5 mm, sulcal + outer CSF (absent over one patch, so GM touches
    bone), bone 6 mm with a frontal air sinus, scalp 5 mm, two eyes. 1 mm voxels."""
    from scipy import ndimage

    ext = np.array([90, 110, 100])
    axes = [np.arange(-e, e + 1, h) for e in ext]
    X, Y, Z = np.meshgrid(*axes, indexing="ij")
    rho = np.sqrt((X / 70) ** 2 + (Y / 88) ** 2 + (Z / 66) ** 2)  # ellipsoidal radius (1 at the brain)
    lam = 5.5
    fold = np.sin(X / lam) * np.sin(Y / lam) * np.sin(Z / lam)
    brain = rho * 68 < 61 + 9 * fold  # folded pial surface: gyri and sulci up to ~18 mm deep
    depth = ndimage.distance_transform_edt(brain, sampling=h)
    lab = np.zeros(X.shape, np.uint8)
    csf_out = rho * 68 < 70.5
    # Over a patch on the left, the CSF layer vanishes: grey matter reaches the skull.
    patch = (X < -35) & (Z > 10)
    lab[csf_out] = 3
    skull_in = np.where(patch, brain, csf_out)
    dist_out = ndimage.distance_transform_edt(~skull_in, sampling=h)
    lab[(dist_out > 0) & (dist_out <= 6)] = 4
    lab[(dist_out > 6) & (dist_out <= 11)] = 5
    lab[brain] = 2
    lab[depth > 2.5] = 1
    sinus = ((X / 12) ** 2 + ((Y - 78) / 6) ** 2 + ((Z + 5) / 8) ** 2) < 1
    lab[sinus & (lab == 4)] = 0
    for sx in (-32, 32):
        eye = (X - sx) ** 2 + (Y - 82) ** 2 + (Z + 30) ** 2 < 12**2
        lab[eye & (lab != 0)] = 6
    aff = np.diag([h, h, h, 1.0])
    aff[:3, 3] = -ext
    return Volume(lab, aff, source="synthetic folded head")


def sample_labels(name: str, folder: Path) -> Volume:
    """Labels of a navigator sample (write_sample), or the local stand-in if unavailable."""
    try:
        from navigator.meshing.step import read_labels
        from navigator.samples import write_sample  # type: ignore[attr-defined]

        ws = write_sample(name, folder / name)
        if ws.path("labels").exists():
            return read_labels(ws.path("labels"))
        print(f"  ({name}: the sample has no labels file; using the local stand-in)")
    except Exception as exc:  # noqa: BLE001 - the samples module is optional here
        print(f"  ({name}: write_sample unavailable: {type(exc).__name__}: {exc}; using the local stand-in)")
    return sphere_labels() if name == "sphere" else synthetic_head()


def peak_gb() -> tuple[float, float]:
    """(this process, largest child) peak resident memory, GB."""
    s = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6
    return s, c


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children, s."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def measure(vol: Volume, label: str, radii: dict[int, float] | None = None, **params) -> dict:
    import os

    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), cpu_seconds()
    stages: dict = {}
    mesh = labels_to_mesh(vol, timings=stages, **params)
    t_mesh, c_mesh = time.perf_counter() - t0, cpu_seconds() - c0
    q = mesh_quality(mesh)
    problems = check_mesh(mesh, vol, quality=q)
    t1 = time.perf_counter()
    surfs = extract_surfaces(mesh)
    t_surf = time.perf_counter() - t1
    errs = volume_errors(mesh, vol)
    res = {
        "case": label, "params": params, "seconds_mesh": round(t_mesh, 1), "cpu_seconds_mesh": round(c_mesh, 1),
        "load_average_at_start": round(load, 1), "load_average_at_end": round(os.getloadavg()[0], 1),
        "stages_wall_cpu_s": stages, "seconds_surfaces": round(t_surf, 1),
        "nodes": mesh.n_nodes, "tets": mesh.n_tets, "triangles": len(mesh.triangles),
        "min_dihedral": round(q.min_dihedral_deg, 2), "dihedral_p1": round(q.dihedral_percentiles["1.0"], 2),
        "min_radius_ratio": round(q.min_radius_ratio, 3), "mean_radius_ratio": round(q.mean_radius_ratio, 3),
        "inverted": q.n_inverted, "degenerate": q.n_degenerate,
        "max_abs_volume_error_pct": round(100 * max(abs(e[2]) for e in errs.values()), 2),
        "volume_error_pct": {t: round(100 * e[2], 2) for t, e in errs.items()},
        "surfaces": {k: len(s.faces) for k, s in surfs.items()},
        "problems": problems, "peak_gb_self_child": [round(x, 2) for x in peak_gb()],
    }
    if radii:
        out = {}
        for tag, r0 in radii.items():
            tri = mesh.triangles[mesh.triangle_tags == tag]
            r = np.linalg.norm(mesh.nodes[np.unique(tri)], axis=1)
            out[tag] = {"true": r0, "mean": round(float(r.mean()), 3), "rms_dev": round(float(np.sqrt(((r - r0) ** 2).mean())), 3),
                        "max_abs_dev": round(float(np.abs(r - r0).max()), 3)}
        res["radii"] = out
    print(json.dumps(res), flush=True)
    print(f"  {label}: {mesh.n_nodes} nodes, {mesh.n_tets} tets; wall {t_mesh:.1f} s, CPU {c_mesh:.1f} s "
          f"(load {load:.1f}); peak RSS {res['peak_gb_self_child'][0]} GB (CGAL child {res['peak_gb_self_child'][1]} GB); "
          f"min dihedral {q.min_dihedral_deg:.2f} deg; volume errors (%) "
          + ", ".join(f"{t}: {e:+.2f}" for t, e in res["volume_error_pct"].items())
          + ("; radii max |dev| (mm) " + ", ".join(f"{k}: {v['max_abs_dev']}" for k, v in res["radii"].items())
             if radii else "")
          + f"; checks {'passed' if not problems else problems}", flush=True)
    print("  stages (wall / CPU s): " + ", ".join(f"{k} {w:.1f}/{c:.1f}" for k, (w, c) in stages.items()), flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", nargs="*", default=["sphere", "phantom"])
    ap.add_argument("--compare", action="store_true", help="compare mesher settings on the synthetic head")
    ap.add_argument("--labels", nargs="+", help="mesh these label NIfTIs instead (e.g. a segmented phantom: "
                    "navigator sample phantom --out P && navigator segment P, then P/labels/labels.nii.gz)")
    ap.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                    help="override meshing parameters (JSON values), e.g. --set perturb=true cell_size_mm=3")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        try:
            overrides[name] = json.loads(value)
        except json.JSONDecodeError:
            overrides[name] = value
    MeshParameters.from_kwargs(**overrides)  # unknown names fail here, before any meshing
    print(f"defaults: {json.dumps(MeshParameters().to_json())}")
    if args.labels:
        from navigator.meshing.step import read_labels

        for path in args.labels:
            measure(read_labels(path), str(path), **overrides)
        return 0
    if args.compare:
        head = synthetic_head()
        variants = [
            ("labels as is (no upsampling, no smoothing)", {"upsample_mm": 0, "smooth_sigma_mm": 0}),
            ("upsampled 0.5 mm, no smoothing", {"smooth_sigma_mm": 0}),
            ("upsampled 0.5 mm + smoothing 0.6 mm (default)", {}),
            ("default without exude", {"exude": False}),
            ("default + odt", {"odt": True}),
        ]
        for name, kw in variants:
            measure(head, name, **kw)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.samples:
            vol = sample_labels(name, Path(tmp))
            radii = {1003: 85.0, 1004: 90.0, 1005: 95.0} if name == "sphere" else None
            measure(vol, f"{name} ({'default settings' if not overrides else overrides})", radii=radii, **overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
