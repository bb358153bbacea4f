"""`navigator targets`, `navigator target`, `navigator fiducials`: head coordinates and targets."""

from __future__ import annotations

import json

from navigator.cli import console, subcommand
from navigator.core.workspace import Workspace


def register(sub) -> None:
    p = subcommand(sub, "targets", "List every target resolvable on a subject: library DLPFC targets, "
                   "user targets, EEG F3/F4 and Beam F3, with subject RAS, MNI, scalp entry and cortical point.")
    p.add_argument("subject_dir")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run_list)

    p = subcommand(sub, "target", "Resolve one target SPEC on a subject (library name, mni:x,y,z, "
                   "subject:x,y,z, eeg:F3, beam-f3, rule:5.5cm:hotspot=x,y,z).")
    p.add_argument("subject_dir")
    p.add_argument("spec")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--save-as", metavar="NAME", help="save the resolved cortical point as a named user target")
    p.set_defaults(func=run_one)

    p = subcommand(sub, "fiducials", "Show the subject's fiducials, or set them by hand "
                   "(then EEG positions are rebuilt from them).")
    p.add_argument("subject_dir")
    for name in ("nasion", "inion", "lpa", "rpa"):
        p.add_argument(f"--{name}", metavar="X,Y,Z", help=f"set the {name} (subject RAS mm)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_fiducials)

    p = subcommand(sub, "fmri-target", "Personalized DLPFC target from resting-state fMRI: the cluster most "
                   "anticorrelated with the subgenual cingulate, saved as target 'fmri' (or --name).")
    p.add_argument("subject_dir")
    p.add_argument("rest", help="4-D resting-state fMRI NIfTI of the same subject")
    p.add_argument("--tr", type=float, help="repetition time in seconds (default: from the header)")
    p.add_argument("--name", default="fmri", help="name of the saved target (default: fmri)")
    p.set_defaults(func=run_fmri)


def _fmt(p) -> str:
    return "-" if p is None else "(" + ", ".join(f"{v:7.1f}" for v in p) + ")"


def run_list(args) -> int:
    from navigator.targets.head import Head
    from navigator.targets.resolve import list_targets

    ctx = Head.of(Workspace.open(args.subject_dir))
    targets = list_targets(ctx)
    if args.json:
        print(json.dumps([t.to_json() for t in targets], indent=2))
        return 0
    from rich.table import Table

    table = Table(title=f"targets on {ctx.ws.subject_id} (subject scanner RAS mm; MNI152 mm)")
    for col in ("name", "kind", "cortical point", "MNI", "scalp entry", "scalp-cortex mm"):
        table.add_column(col)
    for t in targets:
        table.add_row(t.name, t.kind, _fmt(t.cortical_point), _fmt(t.mni), _fmt(t.scalp_entry),
                      "-" if t.scalp_cortex_distance_mm is None else f"{t.scalp_cortex_distance_mm:.1f}")
    console(args).print(table)
    return 0


def run_one(args) -> int:
    from navigator.targets.head import Head
    from navigator.targets.resolve import resolve_target

    ctx = Head.of(Workspace.open(args.subject_dir))
    t = resolve_target(ctx, args.spec)
    if args.save_as:
        point = t.cortical_point or t.point
        ctx.save_user_target(args.save_as, {"point": point, "space": "subject", "kind": t.kind,
                                            "description": f"saved from {args.spec}"})
    if args.json:
        print(json.dumps(t.to_json(), indent=2))
        return 0
    out = console(args)
    out.print(f"{t.name} ({t.kind}) {t.description}")
    out.print(f"  point            {_fmt(t.point)}  subject RAS mm")
    out.print(f"  cortical point   {_fmt(t.cortical_point)}  subject RAS mm")
    out.print(f"  MNI              {_fmt(t.mni)}  MNI152 mm")
    out.print(f"  scalp entry      {_fmt(t.scalp_entry)}  subject RAS mm")
    out.print(f"  scalp normal prj {_fmt(t.scalp_normal_projection)}  subject RAS mm")
    if t.scalp_cortex_distance_mm is not None:
        out.print(f"  scalp-cortex     {t.scalp_cortex_distance_mm:.1f} mm")
    return 0


def run_fiducials(args) -> int:
    from navigator.targets.fiducials import load_fiducials, save_fiducials
    from navigator.targets.eeg import Fiducials
    from navigator.targets.resolve import parse_xyz

    ws = Workspace.open(args.subject_dir)
    path = ws.path("fiducials")
    changes = {n: getattr(args, n) for n in ("nasion", "inion", "lpa", "rpa") if getattr(args, n)}
    if changes:
        before = load_fiducials(path) if path.exists() else None
        current = before.as_dict() if before else {}
        current.update({n: parse_xyz(v).tolist() for n, v in changes.items()})
        missing = {"nasion", "inion", "lpa", "rpa"} - set(current)
        if missing:
            from navigator.core.errors import NavigatorError

            raise NavigatorError(f"no automatic fiducials to edit; give all four (missing: {', '.join(sorted(missing))})")
        still_estimated = tuple(n for n in (before.estimated if before else ()) if n not in changes)
        fid = Fiducials(**current, source="user", estimated=still_estimated)
        problems = fid.check_plausible()
        if problems:
            from navigator.core.errors import NavigatorError

            raise NavigatorError("fiducials rejected: " + "; ".join(problems))
        save_fiducials(fid, path)
        from navigator.targets.step import head_coordinates_workspace

        head_coordinates_workspace(ws, force=True)
    fid = load_fiducials(path)
    if args.json:
        print(json.dumps({"source": fid.source, **fid.as_dict(), "estimated_from_template": list(fid.estimated)},
                         indent=2))
    else:
        out = console(args)
        out.print(f"fiducials ({fid.source}), subject scanner RAS mm:")
        for n, v in fid.as_dict().items():
            note = "  estimated from the MNI template (no scalp there in the image): check it" \
                if n in fid.estimated else ""
            out.print(f"  {n:7s} {_fmt(v)}{note}")
    return 0


def run_fmri(args) -> int:
    from navigator.cli import cli_progress
    from navigator.targets.fmri import fmri_target_workspace

    ws = Workspace.open(args.subject_dir)
    with cli_progress(args, "fMRI target") as progress:
        res = fmri_target_workspace(ws, args.rest, tr_s=args.tr, name=args.name, progress=progress)
    out = console(args)
    out.print(f"target '{args.name}': {_fmt(res.point)} subject RAS mm; cluster mean r = {res.correlation:.3f} "
              f"(peak {res.peak_correlation:.3f}), {res.cluster_volume_mm3:.0f} mm^3, {res.n_volumes} volumes")
    out.print(f"use it as --target {args.name}")
    return 0
