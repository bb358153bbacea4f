"""`navigator export PLAN --format NAME --out FILE`, `navigator export --list`,
`navigator import-plan FILE --out plan.json`."""

from __future__ import annotations

import logging
from pathlib import Path

from navigator.cli import console, subcommand
from navigator.core.errors import NavigatorError

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = subcommand(sub, "export", "Export a plan (plan.json) to a neuronavigation system's file format.")
    p.add_argument("plan", nargs="?", help="plan.json (subject RAS mm, navigator coil axes)")
    p.add_argument("--format", "-f", dest="format", help="format name (see --list)")
    p.add_argument("--out", "-o", help="file to write")
    p.add_argument("--space", choices=["ras", "lps"], help="coordinate space, for formats that offer a choice")
    p.add_argument("--subject", help="subject workspace: refuse if the plan's image is not its T1")
    p.add_argument("--force", action="store_true", help="export even if the plan's image hash does not match")
    p.add_argument("--list", action="store_true", help="list the available formats and exit")
    p.set_defaults(func=run_export)

    q = subcommand(sub, "import-plan", "Read a neuronavigation file back into a plan.json (subject RAS mm).")
    q.add_argument("file", help="navigation file to read")
    q.add_argument("--format", "-f", dest="format", help="format name (default: detect from the file)")
    q.add_argument("--out", "-o", required=True, help="plan.json to write")
    q.add_argument("--image", help="NIfTI the coordinates refer to: recorded (with its sha256) in the plan")
    q.add_argument("--subject-id", help="subject id to record in the plan")
    q.set_defaults(func=run_import)


def _list(args) -> int:
    from navigator.export.registry import plugins

    out = console(args)
    out.print("Formats (plugins in entry-point group navigator.plugins):")
    for p in plugins():
        kind = p.kind + (" + importer" if p.kind == "exporter" and p.can_import else "")
        space = p.coordinate_space + (f" (--space {'|'.join(p.spaces)})" if p.spaces else "")
        out.print(f"  {p.name:<22} {kind:<20} {' '.join(p.extensions):<10} {space}")
        out.print(f"      {p.description}")
        out.print(f"      coil axes: {p.coil_axes}; carries: {', '.join(p.carries)}")
    return 0


def run_export(args) -> int:
    if args.list:
        return _list(args)
    if not args.plan or not args.format or not args.out:
        raise NavigatorError("export needs PLAN, --format and --out (or --list)")
    from navigator.export import export_plan, load_plan
    from navigator.export.safety import check_plan_image, subject_t1

    plan = load_plan(args.plan)
    if not plan.targets and not plan.coil_poses and not plan.montages:
        from navigator.core.errors import InputError

        raise InputError(args.plan, "the plan has no targets, coil poses or montages to export")
    if args.subject:
        t1, digest = subject_t1(args.subject)
        check_plan_image(plan, t1_path=t1, t1_sha256=digest, force=args.force)
    else:
        image_file = _recorded_image(Path(args.plan), plan)
        if image_file is not None:
            check_plan_image(plan, t1_path=image_file, force=args.force)
        else:
            if plan.image is not None:
                log.warning("%s: the plan's image %s was not found, so its sha256 cannot be checked; "
                            "pass --subject SUBJECT_DIR to check against the subject's T1",
                            args.plan, plan.image.path)
            check_plan_image(plan, force=args.force)
    out = export_plan(plan, args.format, args.out, args.space)
    console(args).print(f"wrote {out} ({args.format}, {len(plan.coil_poses)} coil pose(s), "
                        f"{len(plan.targets)} target(s))")
    return 0


def _recorded_image(plan_path: Path, plan) -> Path | None:
    """The plan's image file: absolute, or relative to the working directory, the plan's folder
    or the subject workspace root (plans/NAME/plan.json -> root)."""
    if plan.image is None:
        return None
    p = Path(plan.image.path)
    folder = plan_path.resolve().parent
    candidates = [p] if p.is_absolute() else [p, folder / p, folder.parent.parent / p]
    return next((c for c in candidates if c.is_file()), None)


def run_import(args) -> int:
    from navigator.export import import_plan, save_plan
    from navigator.export.plan import ImageInfo

    plan = import_plan(args.file, args.format)
    if args.image:
        plan.image = ImageInfo.from_nifti(args.image)
    if args.subject_id:
        plan.subject = args.subject_id
    save_plan(plan, args.out)
    out = console(args)
    out.print(f"wrote {args.out} ({len(plan.coil_poses)} coil pose(s), {len(plan.targets)} target(s)) "
              f"from {plan.source}")
    if plan.pose_corrections:
        from navigator.export.rigid import summarize_corrections

        out.print(summarize_corrections(plan.pose_corrections, len(plan.coil_poses)))
        shown = plan.pose_corrections[:10]
        for c in shown:
            out.print(f"  {c.name}: orthonormality error {c.orthonormality_error:.2g}, "
                      f"axes moved by up to {c.correction_deg:.3g} degree")
        if len(plan.pose_corrections) > len(shown):
            out.print(f"  ... and {len(plan.pose_corrections) - len(shown)} more (see pose_corrections in {args.out})")
    else:
        out.print("all coil poses were exact rotations (no re-orthonormalization needed)"
                  if plan.coil_poses else "no coil poses")
    return 0
