"""`navigator prepare IMAGE --out SUBJECT_DIR [--t2 IMAGE] [--inv2 IMAGE]`: MRI to a ready head model.

`--inv2` gives the second inversion of an MP2RAGE whose UNI image is IMAGE: the two are combined
into a background-suppressed T1-weighted image before segmentation.

Mesh options (`--cell-size`, `--facet-size`, ...) are those of `navigator mesh`; `--use-labels`
meshes the labels a workspace was given (a sample subject's, an imported model's) instead of
segmenting its T1.
"""

from __future__ import annotations

from pathlib import Path

from navigator.cli import cli_progress, console, subcommand
from navigator.cli.cmd_mesh import add_mesh_options, params_from_args
from navigator.core.workspace import MANIFEST_NAME, Workspace


def register(sub) -> None:
    p = subcommand(
        sub, "prepare",
        "Create a subject workspace from a T1 image (NIfTI or DICOM folder) and run every preparation "
        "step: segmentation and MNI registration, head mesh and surfaces, fiducials and EEG positions. "
        "Steps already done with the same inputs and parameters are skipped.",
    )
    p.add_argument("image", help="T1-weighted image (.nii/.nii.gz/.mgz/.nrrd/.mha or DICOM folder), or an existing workspace")
    p.add_argument("--out", help="subject workspace folder to create or continue (not needed when IMAGE is a workspace)")
    p.add_argument("--t2", help="optional T2-weighted image; improves the skull")
    p.add_argument("--inv2", help="MP2RAGE: the second inversion (INV2) image when IMAGE is the UNI image; the two "
                   "are combined into a background-suppressed T1-weighted image (a raw UNI alone is refused)")
    p.add_argument("--series", metavar="UID_OR_NUMBER",
                   help="DICOM folder of a whole exam: the T1 series to use (default: its only 3-D T1-weighted "
                        "series; `navigator info FOLDER` lists them)")
    p.add_argument("--t2-series", metavar="UID_OR_NUMBER",
                   help="the same for --t2 (default: the folder's only 3-D T2-weighted series)")
    p.add_argument("--inv2-series", metavar="UID_OR_NUMBER",
                   help="the same for --inv2; without --inv2, a series of IMAGE's own DICOM exam (an exam whose "
                        "T1 is a raw MP2RAGE UNI gets its INV2 series without either)")
    p.add_argument("--subject-id", help="subject identifier (default: the output folder's name)")
    p.add_argument("--force", action="store_true", help="re-run steps even when they are current")
    p.add_argument("--stop-after", choices=["segment", "mesh", "head-coordinates"], help="stop after this step")
    p.add_argument("--use-labels", action="store_true",
                   help="mesh the tissue labels the workspace was given (sample subject, imported head model) "
                        "instead of segmenting the T1")
    add_mesh_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from navigator.core.errors import NavigatorError
    from navigator.pipeline import create_workspace_from_image, prepare

    src = Path(args.image)
    if (src / MANIFEST_NAME).exists():
        if args.out and Path(args.out).resolve() != src.resolve():
            raise NavigatorError(f"{src} is a workspace; leave out --out or point --out at it")
        ws = Workspace.open(src)
        if args.t2 or args.inv2:
            ws = create_workspace_from_image(ws.source_path("T1"), src, t2=args.t2, t2_series=args.t2_series,
                                             inv2=args.inv2, inv2_series=args.inv2_series)
    else:
        if not args.out:
            raise NavigatorError("--out SUBJECT_DIR is required when IMAGE is an image")
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise NavigatorError(f"{out}: --out exists and is a file; give a new or existing workspace folder")
        ws = create_workspace_from_image(src, args.out, t2=args.t2, subject_id=args.subject_id,
                                         series=args.series, t2_series=args.t2_series, inv2=args.inv2,
                                         inv2_series=args.inv2_series)
    with cli_progress(args, "prepare") as progress:
        mesh = params_from_args(args)
        report = prepare(ws, progress=progress, force=args.force, stop_after=args.stop_after,
                         stage_params={"mesh": mesh} if mesh else None, use_given_labels=args.use_labels)
    out = console(args)
    out.print(f"workspace: {report.workspace}")
    for name, status in report.stages.items():
        out.print(f"  {name}: {status} ({report.seconds[name]:.1f} s)")
    from navigator.segmentation.qc import verdict_lines
    from navigator.segmentation.step import load_qc

    qc = load_qc(ws)
    if qc is not None:
        for w in qc.get("warnings", []):
            out.print(f"[yellow]segmentation warning:[/yellow] {w}")
        for line in verdict_lines(qc):
            out.print(line)
        out.print(f"segmentation QC report: {ws.path('qc') / 'segmentation_qc.png'}")
    return 0
