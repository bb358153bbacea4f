"""`navigator optimize tms|tdcs SUBJECT_DIR --target SPEC ... --out OUT`: placement and montage optimization."""

from __future__ import annotations

from navigator.cli import cli_progress, console, subcommand
from navigator.core.workspace import Workspace
from navigator.optimize.tdcs import TdcsSearch
from navigator.optimize.tms import MODES, OBJECTIVES, TmsSearch

#: the defaults of a placement search and of a montage optimization (shared with the GUI and the batch)
_TMS = TmsSearch()
_TDCS = TdcsSearch()


def register(sub) -> None:
    p = subcommand(sub, "optimize", "Optimize TMS coil placement or a tDCS montage for a target on a subject.")
    subs = p.add_subparsers(dest="stimulus", metavar="STIMULUS")
    subs.required = True
    t = subcommand(subs, "tms", "Best coil centre and handle angle over a target (reciprocity or direct FEM).")
    t.add_argument("subject_dir", help="subject workspace (needs mesh/head.msh and surfaces/scalp.surf.gii)")
    t.add_argument("--target", required=True, metavar="SPEC", help="target SPEC (fox, mni:x,y,z, subject:x,y,z, eeg:F3, ...)")
    t.add_argument("--coil", default=None, metavar="NAME", help="library coil or .ccd/.tcd file (default Magstim_D70)")
    t.add_argument("--direction", choices=list(OBJECTIVES), default=_TMS.objective,
                   help=f"objective: magnitude = |ROI-mean E|, normal = ROI-mean E into the cortex along the normal "
                        f"(default {_TMS.objective})")
    t.add_argument("--radius", type=float, default=_TMS.radius_mm, metavar="MM",
                   help=f"search radius around the target ({_TMS.radius_mm:g})")
    t.add_argument("--spacing", type=float, default=_TMS.spacing_mm, metavar="MM",
                   help=f"centre spacing ({_TMS.spacing_mm:g})")
    t.add_argument("--angle-step", type=float, default=_TMS.angle_step_deg, metavar="DEG",
                   help=f"handle angle step ({_TMS.angle_step_deg:g})")
    t.add_argument("--mode", choices=list(MODES), default=_TMS.mode,
                   help="reciprocity (few FEM solves) or direct (one FEM solve per placement: give a coarse grid)")
    t.add_argument("--roi-radius", type=float, default=_TMS.roi_radius_mm, metavar="MM",
                   help=f"target sphere radius in GM ({_TMS.roi_radius_mm:g})")
    t.add_argument("--distance", type=float, default=_TMS.distance_mm, metavar="MM",
                   help=f"coil-scalp distance at the casing's closest point ({_TMS.distance_mm:g})")
    t.add_argument("--no-refine", action="store_true",
                   help="stop at the grid (default: refine the best candidates: centre offset, finer angle, tilt)")
    t.add_argument("--tilt", type=float, default=_TMS.tilt_deg, metavar="DEG",
                   help=f"largest coil tilt in the refinement ({_TMS.tilt_deg:g}; 0: coil flat on the normal)")
    t.add_argument("--max-lift", type=float, default=_TMS.max_lift_mm, metavar="MM",
                   help="candidates whose casing must be lifted more than this to clear the scalp are not placed "
                        f"({_TMS.max_lift_mm:g})")
    t.add_argument("--avoid", action="append", default=[], metavar="SPEC:RADIUS",
                   help="keep the field off this region (repeatable): the objective becomes target / |mean E avoid|")
    t.add_argument("--avoid-mask", default=None, metavar="NIFTI",
                   help="avoid region as a NIfTI mask in subject space (focality objective)")
    t.add_argument("--rmt", type=float, default=None, metavar="PERCENT", help="resting motor threshold, %% MSO")
    t.add_argument("--hotspot", default=None, metavar="SPEC", help="motor hotspot SPEC (with --rmt)")
    t.add_argument("--target-field", type=float, default=None, metavar="V_PER_M",
                   help="field wanted at the target: report the %% MSO needed")
    t.add_argument("--no-nifti", action="store_true", help="skip NIfTI field maps")
    t.add_argument("--out", "-o", required=True, help="output folder")
    t.set_defaults(func=run_tms)

    d = subcommand(subs, "tdcs", "Optimal HD electrode currents or the best conventional pad pair for a target.")
    d.add_argument("subject_dir", help="subject workspace (needs mesh/head.msh and targets/eeg.csv)")
    d.add_argument("--target", required=True, metavar="SPEC", help="target SPEC")
    d.add_argument("--mode", choices=["hd", "pads"], default=_TDCS.mode,
                   help="hd (cap electrodes, LP) or pads (two pads)")
    d.add_argument("--direction", choices=["normal", "magnitude"], default=_TDCS.objective,
                   help="objective: ROI-mean E into the cortex (normal) or |ROI-mean E| (magnitude); "
                        f"default {_TDCS.objective}")
    d.add_argument("--roi-radius", type=float, default=_TDCS.roi_radius_mm, metavar="MM",
                   help=f"target sphere radius ({_TDCS.roi_radius_mm:g})")
    d.add_argument("--max-total-ma", type=float, default=_TDCS.max_total_ma,
                   help=f"total injected current, mA ({_TDCS.max_total_ma:g})")
    d.add_argument("--max-electrode-ma", type=float, default=_TDCS.max_electrode_ma,
                   help=f"current per electrode, mA ({_TDCS.max_electrode_ma:g})")
    d.add_argument("--max-electrodes", type=int, default=_TDCS.max_electrodes, metavar="N",
                   help="at most N active electrodes (MILP)")
    d.add_argument("--avoid", action="append", default=[], metavar="SPEC:RADIUS",
                   help="region whose mean field components must stay below --avoid-max (repeatable)")
    d.add_argument("--avoid-max", type=float, default=_TDCS.avoid_max_v_per_m, metavar="V_PER_M",
                   help=f"limit in avoid regions ({_TDCS.avoid_max_v_per_m:g})")
    d.add_argument("--electrode-diameter", type=float, default=_TDCS.electrode_diameter_mm, metavar="MM",
                   help=f"HD disc diameter ({_TDCS.electrode_diameter_mm:g})")
    d.add_argument("--cap", choices=["10-10", "10-05"], default=_TDCS.cap,
                   help=f"EEG cap of the HD disc sites and pad centres (10-05: 345 positions; HD sites closer than "
                        f"the disc diameter + {_TDCS.electrode_gap_mm:g} mm are left out, 10-10 ones first); default {_TDCS.cap}")
    d.add_argument("--pad-size", default="x".join(f"{v:g}" for v in _TDCS.pad_size_mm), metavar="WxH",
                   help="pad size in mm (default {}; e.g. 50x70)".format("x".join(f"{v:g}" for v in _TDCS.pad_size_mm)))
    d.add_argument("--current-ma", type=float, default=_TDCS.current_ma, help=f"pad current, mA ({_TDCS.current_ma:g})")
    d.add_argument("--no-nifti", action="store_true", help="skip NIfTI field maps")
    d.add_argument("--out", "-o", required=True, help="output folder")
    d.add_argument("--pad-angle-step", type=float, default=_TDCS.pad_angle_step_deg, metavar="DEG",
                   help=f"pads: rotation search step about the pad normals, 0 = none ({_TDCS.pad_angle_step_deg:g})")
    d.set_defaults(func=run_tdcs)


def _print(args, numbers: dict) -> None:
    out = console(args)
    for k, v in numbers.items():
        if v is None:
            continue
        out.print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")


def run_tms(args) -> int:
    from navigator.optimize.tms import DEFAULT_COIL, optimize_tms_workspace

    search = TmsSearch(objective=args.direction, radius_mm=args.radius, spacing_mm=args.spacing,
                       angle_step_deg=args.angle_step, mode=args.mode, roi_radius_mm=args.roi_radius,
                       distance_mm=args.distance, refine=not args.no_refine, tilt_deg=args.tilt,
                       max_lift_mm=args.max_lift, avoid=args.avoid, avoid_mask=args.avoid_mask,
                       rmt_percent_mso=args.rmt, hotspot=args.hotspot,
                       target_field_v_per_m=args.target_field, nifti=not args.no_nifti)
    ws = Workspace.open(args.subject_dir)
    with cli_progress(args, "TMS optimization") as progress:
        result = optimize_tms_workspace(ws, target=args.target, out_dir=args.out, coil=args.coil or DEFAULT_COIL,
                                        search=search, progress=progress)
    _print(args, result.numbers)
    return 0


def run_tdcs(args) -> int:
    from navigator.core.errors import NavigatorError
    from navigator.optimize.tdcs import optimize_tdcs_workspace

    try:
        size = tuple(float(s) for s in args.pad_size.lower().split("x"))
    except ValueError:
        size = ()
    if len(size) != 2:
        raise NavigatorError(f"bad --pad-size {args.pad_size!r}: expected WxH in mm, e.g. 50x70")
    with cli_progress(args, "tDCS optimization") as progress:
        search = TdcsSearch(mode=args.mode, objective=args.direction, roi_radius_mm=args.roi_radius,
                            max_total_ma=args.max_total_ma, max_electrode_ma=args.max_electrode_ma,
                            max_electrodes=args.max_electrodes, avoid=args.avoid, avoid_max_v_per_m=args.avoid_max,
                            electrode_diameter_mm=args.electrode_diameter, pad_size_mm=size,
                            current_ma=args.current_ma, pad_angle_step_deg=args.pad_angle_step,
                            nifti=not args.no_nifti, cap=args.cap)
        result = optimize_tdcs_workspace(Workspace.open(args.subject_dir), target=args.target, out_dir=args.out,
                                         search=search, progress=progress)
    _print(args, result.numbers)
    return 0
