"""`navigator simulate tms SUBJECT_DIR --coil NAME|FILE (--target SPEC [...] | --pose ...)
(--didt A_PER_S | --intensity PERCENT_MSO) --out OUT`.

Registered under the ``simulate`` verb by :mod:`navigator.cli.cmd_simulate`.
"""

from __future__ import annotations

from navigator.cli import cli_progress, console, subcommand
from navigator.core.workspace import Workspace


def register(simulate_subparsers) -> None:
    p = subcommand(simulate_subparsers, "tms",
                   "Simulate the electric field of a TMS coil placement on a subject's head mesh.")
    p.add_argument("subject_dir", help="subject workspace folder (needs mesh/head.msh)")
    p.add_argument("--coil", required=True, metavar="NAME|FILE",
                   help="library coil name (`navigator coils list`) or a .ccd/.tcd/.nii.gz coil file")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--target", metavar="SPEC",
                       help="target SPEC: a library name (fox, ba46, ...), mni:x,y,z, subject:x,y,z or x,y,z "
                            "(subject mm), eeg:NAME, beam-f3, rule:5.5cm:hotspot=SPEC (see `navigator targets`)")
    where.add_argument("--pose", metavar="m00,...,m33",
                       help="explicit 4x4 coil pose, 16 numbers row-major, columns [x y(handle) z(into head) "
                            "centre] in world mm; a rotation rounded to a few decimals is re-orthonormalized "
                            "(tolerance 1e-2 on max|R^T R - I|), shear/scaling/reflection refused")
    where.add_argument("--poses", metavar="FILE",
                       help="re-simulate the pulses delivered in a session: a Localite TriggerMarkers XML or "
                            "Brainsight samples file (untracked pulses are skipped and counted); each pulse is "
                            "scaled by its logged dI/dt (else its %%MSO x the coil's max dI/dt; --didt/--intensity "
                            "only fill pulses the log gives no intensity)")
    handle = p.add_mutually_exclusive_group()
    handle.add_argument("--handle-angle", type=float, metavar="DEG",
                        help="handle angle in the scalp tangent plane from posterior towards lateral "
                             "(default 45: back and outwards, the DLPFC convention)")
    handle.add_argument("--handle-dir", metavar="x,y,z", help="handle direction (world), projected on the scalp")
    p.add_argument("--distance", type=float, default=4.0, metavar="MM", help="coil-scalp distance (default 4 mm)")
    amp = p.add_mutually_exclusive_group()  # required except with --poses (logs carry intensities)
    amp.add_argument("--didt", type=float, metavar="A_PER_S", help="rate of change of the coil current, A/s (e.g. 1e6)")
    amp.add_argument("--intensity", type=float, metavar="PERCENT_MSO",
                     help="stimulator output in %% of maximum (uses the coil's max dI/dt)")
    p.add_argument("--conductivity", action="append", default=[], metavar="TAG=S_PER_M",
                   help="override a tissue conductivity, e.g. 4=0.008 (repeatable)")
    p.add_argument("--target-radius", type=float, default=10.0, metavar="MM",
                   help="radius of the summary's target sphere (default 10 mm)")
    p.add_argument("--no-nifti", action="store_true", help="skip the NIfTI maps")
    p.add_argument("--out", "-o", help="output folder (default SUBJECT_DIR/simulations/tms)")
    p.set_defaults(func=run)


def run(args) -> int:
    from navigator.core.errors import NavigatorError
    from navigator.fem.conductivity import parse_conductivity_overrides
    from navigator.tms.library import load_coil
    from navigator.tms.pose import parse_pose_checked, parse_vector
    from navigator.tms.simulate import simulate_tms_workspace

    if (args.pose or args.poses) and (args.handle_angle is not None or args.handle_dir):
        raise NavigatorError("--handle-angle/--handle-dir apply to --target, not to --pose/--poses")
    coil = load_coil(args.coil)
    if args.poses:
        return _run_delivered(args, coil)
    if args.didt is None and args.intensity is None:
        raise NavigatorError("give the intensity as --didt A_PER_S or --intensity PERCENT_MSO")
    checked = parse_pose_checked(args.pose) if args.pose else None
    pose = None if checked is None else checked.matrix
    if checked is not None and checked.corrected:
        console(args).print(f"--pose re-orthonormalized (rounded rotation): orthonormality error "
                            f"{checked.orthonormality_error:.2g}, axes moved by up to {checked.correction_deg:.3g} degree")
    hdir = parse_vector(args.handle_dir, "--handle-dir") if args.handle_dir else None
    with cli_progress(args, "TMS simulation") as progress:
        run_ = simulate_tms_workspace(
            Workspace.open(args.subject_dir), coil, target_spec=args.target, pose=pose, handle_angle=args.handle_angle,
            handle_dir=hdir, distance=args.distance, didt=args.didt, intensity=args.intensity, out_dir=args.out,
            conductivity=parse_conductivity_overrides(args.conductivity), target_radius=args.target_radius,
            nifti=not args.no_nifti, progress=progress)
    s = run_.summary
    t = s["tms"]
    out = console(args)
    out.print(f"coil {t['coil']['name']} at dI/dt {t['didt_A_per_s'] / 1e6:.1f} A/us"
              + (f" ({t['percent_mso']:.0f} %MSO)" if t["percent_mso"] else ""))
    c = run_.placement.pose[:3, 3]
    out.print(f"coil centre {c[0]:.1f}, {c[1]:.1f}, {c[2]:.1f} mm; handle "
              + ", ".join(f"{x:+.2f}" for x in run_.placement.pose[:3, 1]))
    out.print(f"peak |E| (99.9th percentile): {s['E_roi_p99_9_V_per_m']:.1f} V/m")
    if s.get("target") and s["target"].get("mean_magnE_V_per_m") is not None:
        out.print(f"target ({t['target_region_kind']}) mean |E|: {s['target']['mean_magnE_V_per_m']:.1f} V/m")
    if t["casing_collides"]:
        out.print(f"[yellow]warning: coil casing intersects the scalp (clearance {t['casing_clearance_mm']:.1f} mm)"
                  "[/yellow]")
    out.print(f"outputs: {run_.out_dir}")
    return 0


def _run_delivered(args, coil) -> int:
    from navigator.fem.conductivity import parse_conductivity_overrides
    from navigator.tms.delivered import simulate_pulse_log_workspace

    from navigator.export.pulses import read_pulse_log
    from navigator.tms.delivered import pulse_intensities

    out_dir = args.out
    plog = read_pulse_log(args.poses)  # a bad log or missing intensities fail here, before any work
    pulse_intensities(plog.didt, plog.mso, coil, args.didt, args.intensity, len(plog), args.poses)
    conductivity = parse_conductivity_overrides(args.conductivity)
    with cli_progress(args, "delivered pulses") as progress:
        summary = simulate_pulse_log_workspace(
            Workspace.open(args.subject_dir), coil, args.poses, out_dir=out_dir, didt=args.didt, intensity=args.intensity,
            conductivity=conductivity, target_radius=args.target_radius,
            nifti=not args.no_nifti, progress=progress, pulse_log=plog)
    info = summary["tms_delivered"]
    out = console(args)
    out.print(f"{info['n_pulses']} tracked pulses re-simulated ({info['n_untracked_skipped']} untracked skipped) "
              f"in {info['n_pose_groups']} pose group(s)")
    out.print(info["intensity"]["summary"])
    if info["intensity"]["log_didt_source"]:
        out.print(f"  dI/dt read from the {info['intensity']['log_didt_source']}")
    pc = info["pose_corrections"]
    if pc["n"]:
        out.print(f"{pc['n']} pulse pose(s) re-orthonormalized (rounded rotations): largest orthonormality error "
                  f"{pc['max_orthonormality_error']:.2g}, axes moved by up to {pc['max_correction_deg']:.3g} degree")
    st = info.get("target_mean_magnE_over_pulses_V_per_m")
    if st:
        out.print(f"target mean |E| over pulses: {st['mean']:.1f} V/m (sd {st['sd']:.1f}, "
                  f"range {st['min']:.1f}-{st['max']:.1f})")
    return 0
