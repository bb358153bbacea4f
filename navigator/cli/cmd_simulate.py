"""`navigator simulate tdcs SUBJECT_DIR --electrode SPEC ... --out OUT` (and `simulate tms`).

SPEC = ``POSITION:CURRENT_MA[:SHAPE[:SIZE]]`` (see :mod:`navigator.tes.montage`), or a
montage JSON with ``--montage``. The TMS sub-command is registered by
:mod:`navigator.cli.simulate_tms` when that module is present.
"""

from __future__ import annotations

from navigator.cli import cli_progress, console, subcommand

try:
    from navigator.cli import simulate_tms
except ImportError:
    simulate_tms = None


def register(sub) -> None:
    p = subcommand(sub, "simulate", "Simulate the electric field of a stimulation (tDCS/tES, TMS).")
    subs = p.add_subparsers(dest="stimulus", metavar="STIMULUS")
    subs.required = True
    t = subcommand(subs, "tdcs", "Simulate a current-controlled tDCS/tES montage on a subject's head mesh.")
    t.add_argument("subject_dir", help="subject workspace folder (needs mesh/head.msh)")
    t.add_argument("--electrode", "-e", action="append", default=[], metavar="SPEC",
                   help="POSITION:CURRENT_MA[:SHAPE[:SIZE]], e.g. F3:2:rect:50x50 or -40,20,60:-1:disc:12; "
                        "POSITION = 10-10 name (targets/eeg.csv) or x,y,z subject mm; "
                        "SHAPE = point|disc|ring|rect|ellipse (repeat for each electrode)")
    t.add_argument("--montage", metavar="JSON", help="montage file (electrodes, conductivity, target); see docs/tdcs.md")
    t.add_argument("--conductivity", action="append", default=[], metavar="TAG=S_PER_M",
                   help="override a tissue conductivity, e.g. 4=0.008 (repeatable)")
    t.add_argument("--target", metavar="X,Y,Z[,R]", help="target sphere (subject mm, radius default 10 mm) for the summary")
    t.add_argument("--solver", choices=["amg", "direct"], default="amg", help="linear solver (default amg)")
    t.add_argument("--rtol", type=float, default=None, help="CG relative residual tolerance (default 1e-8)")
    t.add_argument("--no-nifti", action="store_true", help="skip the NIfTI maps")
    t.add_argument("--out", "-o", help="output folder (default SUBJECT_DIR/simulations/tdcs)")
    t.set_defaults(func=run_tdcs)
    if simulate_tms is not None:
        simulate_tms.register(subs)


def run_tdcs(args) -> int:
    from navigator.core.errors import NavigatorError
    from navigator.fem.conductivity import parse_conductivity_overrides
    from navigator.fem.outputs import TargetRegion
    from navigator.fem.solver import DEFAULT_RTOL
    from navigator.tes.montage import load_montage, parse_electrode_spec
    from navigator.tes.simulate import simulate_tdcs_workspace

    specs = [parse_electrode_spec(s) for s in args.electrode]
    conductivity: dict[int, float] = {}
    target = None
    if args.montage:
        m = load_montage(args.montage)
        specs = m.electrodes + specs
        conductivity.update(m.conductivity)
        target = m.target
    conductivity.update(parse_conductivity_overrides(args.conductivity))
    if not specs:
        raise NavigatorError("no electrodes: give --electrode SPEC (at least two) or --montage FILE")
    if args.target:
        try:
            vals = [float(x) for x in args.target.split(",")]
        except ValueError:
            vals = []
        if len(vals) not in (3, 4):
            raise NavigatorError(f"bad --target {args.target!r}: expected X,Y,Z or X,Y,Z,RADIUS (mm)")
        target = TargetRegion(tuple(vals[:3]), vals[3] if len(vals) == 4 else 10.0)
    with cli_progress(args, "tDCS simulation") as progress:
        res = simulate_tdcs_workspace(args.subject_dir, specs, args.out, conductivity=conductivity, target=target,
                                      solver=args.solver, rtol=args.rtol or DEFAULT_RTOL,
                                      nifti=not args.no_nifti, progress=progress)
    s = res.summary
    out = console(args)
    peak_key = "E_gm_p99_9_V_per_m" if "E_gm_p99_9_V_per_m" in s else "E_roi_p99_9_V_per_m"
    out.print(f"peak |E| (99.9th percentile{' in GM' if 'gm' in peak_key else ''}): {s[peak_key]:.3f} V/m")
    for e in s["electrodes"]:
        out.print(f"  {e['name']}: {e['delivered_current_mA']:+.3f} mA at {e['potential_V']:+.3f} V")
    if s.get("target"):
        out.print(f"  target mean |E|: {s['target']['mean_magnE_V_per_m']}")
    out.print(f"solver: {s['solver']['iterations']} iterations, residual {s['solver']['final_relative_residual']:.1e}")
    return 0
