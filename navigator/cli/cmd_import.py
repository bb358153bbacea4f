"""`navigator import-simnibs M2M_DIR --out SUBJECT_DIR` and `navigator import-mesh FILE.msh --out SUBJECT_DIR`."""

from __future__ import annotations

from navigator.cli import cli_progress, console, subcommand


def register(sub) -> None:
    p = subcommand(sub, "import-simnibs",
                   "Create a workspace from a SimNIBS 3/4 m2m folder (mesh, T1, labels, MNI transforms, EEG, surfaces).")
    p.add_argument("m2m_dir", help="SimNIBS m2m_<id> folder")
    p.add_argument("--out", required=True, help="new subject workspace folder")
    p.add_argument("--subject-id", help="subject id (default: <id> of m2m_<id>)")
    p.set_defaults(func=run_simnibs)

    p = subcommand(sub, "import-mesh",
                   "Create a workspace holding only a gmsh head mesh (2.2 or 4.1) and its surfaces. "
                   "The mesh is checked first (finite node coordinates, tissue tags, no zero-volume or "
                   "overlapping tetrahedra; negatively oriented tetrahedra are re-ordered); a bad mesh is "
                   "refused naming the file's node or element id.")
    p.add_argument("mesh", help="gmsh .msh file (tetrahedra with tissue tags)")
    p.add_argument("--out", required=True, help="new subject workspace folder")
    p.add_argument("--subject-id", help="subject id (default: the file name)")
    p.set_defaults(func=run_mesh)


def _summary(args, ws) -> None:
    out = console(args)
    out.print(f"workspace {ws.root} (subject {ws.subject_id})")
    for role, src in ws.sources().items():
        out.print(f"  source {role}: {src['path']}")
    for name, step in ws.steps().items():
        out.print(f"  {name}: {', '.join(step.outputs)}")


def run_simnibs(args) -> int:
    from navigator.meshing.import_head import import_simnibs

    with cli_progress(args, "Importing SimNIBS head model") as progress:
        ws = import_simnibs(args.m2m_dir, args.out, progress=progress, subject_id=args.subject_id)
    _summary(args, ws)
    return 0


def run_mesh(args) -> int:
    from navigator.meshing.import_head import import_mesh

    with cli_progress(args, "Importing head mesh") as progress:
        ws = import_mesh(args.mesh, args.out, subject_id=args.subject_id, progress=progress)
    _summary(args, ws)
    return 0
