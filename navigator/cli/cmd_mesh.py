"""`navigator mesh SUBJECT_DIR`: tetrahedral head mesh, surfaces and quality report from the labels."""

from __future__ import annotations

import argparse

from navigator.cli import cli_progress, console, subcommand
from navigator.core.workspace import Workspace


def _tissue_size(text: str) -> tuple[int, float]:
    try:
        tag, size = text.split("=")
        return int(tag), float(size)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TAG=MM (e.g. 2=1.2), got {text!r}") from None


def register(sub) -> None:
    p = subcommand(sub, "mesh", "Mesh a subject's tissue labels into a tetrahedral head model "
                                "(mesh/head.msh), extract surfaces and check mesh quality.")
    p.add_argument("subject_dir", help="subject workspace folder (with labels/labels.nii.gz)")
    p.add_argument("--force", action="store_true", help="re-mesh even if the mesh is up to date")
    add_mesh_options(p)
    p.set_defaults(func=run)


def add_mesh_options(p) -> None:
    """The meshing parameters as options of ``p`` (shared by `mesh` and `prepare`)."""
    p.add_argument("--cell-size", type=float, metavar="MM",
                   help="max tetrahedron circumradius for tissues without a specific size (default 3.5)")
    p.add_argument("--tissue-size", type=_tissue_size, action="append", metavar="TAG=MM",
                   help="max circumradius for one tissue tag, e.g. 2=1.2 (repeatable; defaults: "
                        "GM/CSF 2, bone 3, WM 3.5, scalp 4)")
    p.add_argument("--facet-size", type=float, metavar="MM", help="surface triangle size: surface Delaunay ball radius (default 2)")
    p.add_argument("--facet-distance", type=float, metavar="MM",
                   help="max distance of surface triangles from the tissue boundary (default 0.4)")
    p.add_argument("--upsample", type=float, metavar="MM",
                   help="resample labels to this voxel size before meshing, 0 = off (default 0.5)")
    p.add_argument("--smooth", type=float, metavar="MM",
                   help="Gaussian sigma for label smoothing, 0 = off (default 0.6)")
    p.add_argument("--no-exude", action="store_true", help="skip sliver exudation (faster, worse angles)")
    p.add_argument("--seed", type=int, help="random seed of the mesher (default 0)")


def params_from_args(args) -> dict:
    """Mesh parameters given on the command line, as keyword arguments of ``mesh_workspace``."""
    params: dict = {}
    for opt, name in (("cell_size", "cell_size_mm"), ("facet_size", "facet_size_mm"),
                      ("facet_distance", "facet_distance_mm"), ("upsample", "upsample_mm"),
                      ("smooth", "smooth_sigma_mm"), ("seed", "seed")):
        v = getattr(args, opt, None)
        if v is not None:
            params[name] = v
    if args.tissue_size:
        params["tissue_cell_sizes"] = dict(args.tissue_size)
    if args.no_exude:
        params["exude"] = False
    return params


def run(args) -> int:
    from navigator.core.tissues import tissue_name
    from navigator.meshing.step import mesh_workspace, read_quality

    ws = Workspace.open(args.subject_dir)
    out = console(args)
    with cli_progress(args, "Meshing") as progress:
        ran = mesh_workspace(ws, progress=progress, force=args.force, **params_from_args(args))
    if not ran:
        out.print("mesh is up to date (use --force to re-mesh)")
    report = read_quality(ws) or {}
    q = report.get("quality", {})
    if q:
        out.print(f"nodes {q['n_nodes']:,}  tetrahedra {q['n_tets']:,}  triangles {q['n_triangles']:,}")
        out.print(f"dihedral angle min {q['min_dihedral_deg']:.1f} deg (1st percentile "
                  f"{q['dihedral_percentiles']['1.0']:.1f}), radius ratio min {q['min_radius_ratio']:.3f} "
                  f"mean {q['mean_radius_ratio']:.3f}; inverted {q['n_inverted']}, degenerate {q['n_degenerate']}")
    for tag, v in report.get("volumes", {}).items():
        out.print(f"  tissue {tag:>3} {tissue_name(int(tag)):<14} label {v['label_mm3'] / 1000:9.1f} cm3  "
                  f"mesh {v['mesh_mm3'] / 1000:9.1f} cm3  error {100 * v['relative_error']:+.2f}%")
    if report.get("surfaces"):
        out.print("surfaces: " + ", ".join(f"{n} ({s['faces']:,} faces)" for n, s in report["surfaces"].items()))
    problems = report.get("problems", [])
    for pr in problems:
        out.print(f"[red]quality problem:[/red] {pr}")
    if problems:
        out.print("mesh written, but it failed quality checks (see mesh/quality.json)")
        return 1
    return 0
