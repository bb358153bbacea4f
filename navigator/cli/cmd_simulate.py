"""`navigator simulate tdcs SUBJECT_DIR --electrode SPEC ... --out OUT` (and `simulate tms`).

SPEC = ``POSITION:CURRENT_MA[:SHAPE[:SIZE]]`` (see :mod:`navigator.tes.montage`), or a
montage JSON with ``--montage``. The TMS sub-command is registered by
:mod:`navigator.cli.simulate_tms`.

``simulate tacs`` / ``simulate trns`` (amplitude maps; same SPECs, CURRENT_MA = peak current
for tACS, the noise's standard deviation or peak for tRNS) and ``simulate ti SUBJECT_DIR
--pair1 SPEC SPEC --pair2 SPEC SPEC`` (temporal interference) use
:mod:`navigator.tes.simulate_ac`.
"""

from __future__ import annotations

from navigator.cli import cli_progress, console, subcommand
from navigator.core.workspace import Workspace

from navigator.cli import simulate_tms


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
    _register_ac(subs)
    simulate_tms.register(subs)


def run_tdcs(args) -> int:
    from navigator.core.errors import NavigatorError
    from navigator.fem.outputs import TargetRegion
    from navigator.fem.solver import DEFAULT_RTOL
    from navigator.tes.simulate import simulate_tdcs_workspace

    specs, conductivity, target = _montage_settings(args)
    if args.target:
        try:
            vals = [float(x) for x in args.target.split(",")]
        except ValueError:
            vals = []
        if len(vals) not in (3, 4):
            raise NavigatorError(f"bad --target {args.target!r}: expected X,Y,Z or X,Y,Z,RADIUS (mm)")
        target = TargetRegion(tuple(vals[:3]), vals[3] if len(vals) == 4 else 10.0)
    with cli_progress(args, "tDCS simulation") as progress:
        res = simulate_tdcs_workspace(_workspace(args), specs, args.out, conductivity=conductivity, target=target,
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


# ---------------------------------------------------------------------- tACS, tRNS, TI
_SPEC_HELP = ("POSITION:CURRENT_MA[:SHAPE[:SIZE]] as for `simulate tdcs` (POSITION = 10-10 name or x,y,z subject mm; "
              "SHAPE = point|disc|ring|rect|ellipse)")
_TARGET_HELP = ("target region for the summary: X,Y,Z[,R] (subject mm, radius default --target-radius) or a "
                "target SPEC (library name, mni:x,y,z, subject:x,y,z; see `navigator targets`)")


def _add_shared(p, default_out: str, target: bool = True) -> None:
    p.add_argument("--conductivity", action="append", default=[], metavar="TAG=S_PER_M",
                   help="override a tissue conductivity, e.g. 4=0.008 (repeatable)")
    if target:
        p.add_argument("--target", metavar="X,Y,Z[,R]|SPEC", help=_TARGET_HELP)
        p.add_argument("--target-radius", type=float, default=10.0, metavar="MM",
                       help="radius of the target sphere (default 10 mm)")
    p.add_argument("--solver", choices=["amg", "direct"], default="amg", help="linear solver (default amg)")
    p.add_argument("--rtol", type=float, default=None, help="CG relative residual tolerance (default 1e-8)")
    p.add_argument("--no-nifti", action="store_true", help="skip the NIfTI maps")
    p.add_argument("--out", "-o", help=f"output folder (default SUBJECT_DIR/simulations/{default_out})")


def _register_ac(subs) -> None:
    for name, desc in (
        ("tacs", "tACS: peak-amplitude field maps of sinusoidal currents (CURRENT_MA = peak current; quasi-static, "
                 "so one tDCS solve scaled to the peak)."),
        ("trns", "tRNS: field maps of a random-noise current (CURRENT_MA = the noise's standard deviation, or its "
                 "peak with --amplitude peak); one noise waveform drives all electrodes."),
    ):
        t = subcommand(subs, name, desc)
        t.add_argument("subject_dir", help="subject workspace folder (needs mesh/head.msh)")
        t.add_argument("--electrode", "-e", action="append", default=[], metavar="SPEC",
                       help=_SPEC_HELP + "; repeat for each electrode, currents sum to zero "
                            "(opposite signs = antiphase)")
        t.add_argument("--montage", metavar="JSON", help="montage file as for `simulate tdcs` (see docs/tdcs.md)")
        if name == "tacs":
            t.add_argument("--frequency", type=float, metavar="HZ",
                           help="stimulation frequency, recorded in summary.json (the maps do not depend on it)")
        else:
            t.add_argument("--amplitude", choices=["sd", "peak"], default="sd",
                           help="CURRENT_MA is the noise current's standard deviation (default) or its peak |I|; "
                                "the maps are the field's SD or peak accordingly")
            t.add_argument("--band", metavar="LOW-HIGH", default="100-640",
                           help="noise frequency band in Hz, recorded in summary.json (default 100-640)")
        _add_shared(t, name)
        t.set_defaults(func=run_tacs, waveform=name)
    ti = subcommand(subs, "ti", "Temporal interference (Grossman et al. 2017): maximal envelope modulation of two "
                                "electrode pairs at nearby frequencies, magnitude and along a direction.")
    ti.add_argument("subject_dir", help="subject workspace folder (needs mesh/head.msh)")
    ti.add_argument("--pair1", nargs="+", action="extend", default=[], metavar="SPEC",
                    help="the two electrodes of pair 1 (currents sum to zero): " + _SPEC_HELP)
    ti.add_argument("--pair2", nargs="+", action="extend", default=[], metavar="SPEC",
                    help="the two electrodes of pair 2 (currents sum to zero)")
    ti.add_argument("--montage", metavar="JSON",
                    help="montage file as for `simulate tdcs` with \"pair\": 1 or 2 on every electrode "
                         "(replaces --pair1/--pair2)")
    ti.add_argument("--direction", default="normal", metavar="normal|x,y,z",
                    help="also map the envelope along this direction: 'normal' (default) = the cortical normal on "
                         "the middle-GM surface; x,y,z = a fixed direction (also volumetric, 'TIdir')")
    _add_shared(ti, "ti")
    ti.set_defaults(func=run_ti)


def _workspace(args) -> Workspace:
    """The subject's workspace, opened once per command (its Head is shared by the target lookup
    and the simulation)."""
    ws = getattr(args, "_workspace", None)
    if ws is None:
        ws = args._workspace = Workspace.open(args.subject_dir)
    return ws


def _target_region(args, montage_target=None):
    """--target X,Y,Z[,R] or a target SPEC resolved on the subject (cortical point), else the montage's."""
    from navigator.core.errors import NavigatorError
    from navigator.fem.outputs import TargetRegion

    text = args.target
    if not text:
        return montage_target
    if args.target_radius <= 0:
        raise NavigatorError(f"--target-radius must be > 0 mm, got {args.target_radius:g}")
    try:
        vals = [float(x) for x in text.split(",")]
    except ValueError:
        vals = None
    if vals is not None:
        if len(vals) not in (3, 4):
            raise NavigatorError(f"bad --target {text!r}: expected X,Y,Z or X,Y,Z,RADIUS (mm) or a target SPEC")
        return TargetRegion(tuple(vals[:3]), vals[3] if len(vals) == 4 else args.target_radius)
    from navigator.targets.head import Head

    t = Head.of(_workspace(args)).target(text)
    point = t.cortical_point if t.cortical_point is not None else t.point
    return TargetRegion(tuple(float(c) for c in point), args.target_radius, t.name)


def _montage_settings(args):
    """(electrode specs, conductivity overrides, montage target or None) from --montage,
    --electrode and --conductivity (command-line electrodes after the montage's)."""
    from navigator.core.errors import NavigatorError
    from navigator.fem.conductivity import parse_conductivity_overrides
    from navigator.tes.montage import load_montage, parse_electrode_spec

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
    return specs, conductivity, target


def _specs_and_settings(args):
    specs, conductivity, target = _montage_settings(args)
    return specs, conductivity, _target_region(args, target)


def run_tacs(args) -> int:
    from navigator.core.errors import NavigatorError
    from navigator.fem.solver import DEFAULT_RTOL
    from navigator.tes.simulate_ac import simulate_tacs_workspace

    specs, conductivity, target = _specs_and_settings(args)
    band = None
    if args.waveform == "trns":
        try:
            lo, hi = (float(x) for x in args.band.split("-"))
        except ValueError:
            raise NavigatorError(f"bad --band {args.band!r}: expected LOW-HIGH in Hz, e.g. 100-640") from None
        band = (lo, hi)
    label = "tACS" if args.waveform == "tacs" else "tRNS"
    with cli_progress(args, f"{label} simulation") as progress:
        res = simulate_tacs_workspace(
            _workspace(args), specs, args.out, waveform=args.waveform,
            frequency_hz=getattr(args, "frequency", None), band_hz=band,
            amplitude=getattr(args, "amplitude", "peak"), conductivity=conductivity, target=target,
            solver=args.solver, rtol=args.rtol or DEFAULT_RTOL, nifti=not args.no_nifti, progress=progress)
    s = res.summary
    b = s[args.waveform]
    kind = "peak amplitude" if b["current_amplitude"] == "peak" else "standard deviation"
    gm = "E_gm_p99_9_V_per_m" in s
    out = console(args)
    out.print(f"{label} field {kind} (99.9th percentile{' in GM' if gm else ''}): "
              f"{s['E_roi_p99_9_V_per_m']:.3f} V/m ({b['E_roi_p99_9_V_per_m_per_mA']:.3f} V/m per mA injected)")
    for e in s["electrodes"]:
        out.print(f"  {e['name']}: {e['delivered_current_mA']:+.3f} mA")
    if s.get("target") and s["target"].get("mean_magnE_V_per_m") is not None:
        out.print(f"  target mean |E|: {s['target']['mean_magnE_V_per_m']:.3f} V/m")
    out.print(f"solver: {s['solver']['iterations']} iterations, residual {s['solver']['final_relative_residual']:.1e}")
    return 0


def _ti_pairs(args):
    """(pair1, pair2, conductivity, montage target) from --pair1/--pair2 or --montage."""
    import json
    from pathlib import Path

    from navigator.core.errors import InputError, NavigatorError
    from navigator.fem.conductivity import parse_conductivity_overrides
    from navigator.tes.montage import load_montage, parse_electrode_spec

    conductivity: dict[int, float] = {}
    target = None
    if args.montage:
        if args.pair1 or args.pair2:
            raise NavigatorError("give either --montage or --pair1/--pair2, not both")
        m = load_montage(args.montage)
        raw = json.loads(Path(args.montage).read_text(encoding="utf-8"))["electrodes"]
        pairs = [e.get("pair") for e in raw]
        if any(p not in (1, 2) for p in pairs):
            raise InputError(args.montage, "for `simulate ti` every electrode needs \"pair\": 1 or 2")
        pair1 = [s for s, p in zip(m.electrodes, pairs) if p == 1]
        pair2 = [s for s, p in zip(m.electrodes, pairs) if p == 2]
        conductivity.update(m.conductivity)
        target = m.target
    else:
        if not args.pair1 or not args.pair2:
            raise NavigatorError("give both pairs: --pair1 SPEC SPEC --pair2 SPEC SPEC (or --montage FILE)")
        pair1 = [parse_electrode_spec(s) for s in args.pair1]
        pair2 = [parse_electrode_spec(s) for s in args.pair2]
    conductivity.update(parse_conductivity_overrides(args.conductivity))
    return pair1, pair2, conductivity, target


def run_ti(args) -> int:
    from navigator.fem.solver import DEFAULT_RTOL
    from navigator.tes.simulate_ac import check_pair, parse_direction, simulate_ti_workspace

    pair1, pair2, conductivity, target = _ti_pairs(args)
    check_pair(pair1, "--pair1")
    check_pair(pair2, "--pair2")
    direction = parse_direction(args.direction)
    target = _target_region(args, target)
    with cli_progress(args, "TI simulation") as progress:
        res = simulate_ti_workspace(_workspace(args), pair1, pair2, args.out, direction=direction,
                                    conductivity=conductivity, target=target, solver=args.solver,
                                    rtol=args.rtol or DEFAULT_RTOL, nifti=not args.no_nifti, progress=progress)
    s = res.summary
    gm = "TImax_gm_p99_9_V_per_m" in s
    out = console(args)
    out.print(f"peak TI envelope (99.9th percentile{' in GM' if gm else ''}): {s['TImax_roi_p99_9_V_per_m']:.3f} V/m; "
              f"carriers {s['carriers']['pair1']['E_roi_p99_9_V_per_m']:.3f} and "
              f"{s['carriers']['pair2']['E_roi_p99_9_V_per_m']:.3f} V/m")
    if "middle_gm" in s:
        out.print(f"  middle GM: TImax p99.9 {s['middle_gm']['TImax_p99_9_V_per_m']:.3f} V/m, along the normal "
                  f"{s['middle_gm']['TInormal_p99_9_V_per_m']:.3f} V/m")
    if "TIdir_roi_p99_9_V_per_m" in s:
        out.print(f"  along {', '.join(f'{c:.2f}' for c in s['direction'])}: {s['TIdir_roi_p99_9_V_per_m']:.3f} V/m")
    if s.get("target") and s["target"].get("mean_TImax_V_per_m") is not None:
        out.print(f"  target mean TI envelope: {s['target']['mean_TImax_V_per_m']:.3f} V/m")
    out.print(f"  focality: {s['focality_mm3']['50']:.0f} mm3 above 50 % of the peak")
    out.print(f"solver: {s['solver']['iterations']} iterations for both pairs (one system), "
              f"residual {s['solver']['final_relative_residual']:.1e}")
    return 0
