"""`navigator optimize ti|center-surround SUBJECT_DIR --target SPEC --out OUT`: tES montages
beyond HD currents and pad pairs (temporal interference, centre-surround Nx1).

Both write plan.json, summary.json and fields/ like `navigator optimize tdcs` and share its
parameter record (:class:`navigator.optimize.tdcs.TdcsSearch`, also used by the GUI and the batch).
"""

from __future__ import annotations

import argparse

from navigator.cli import cli_progress, console, subcommand
from navigator.core.errors import NavigatorError
from navigator.core.workspace import Workspace
from navigator.optimize.tdcs import TdcsSearch
from navigator.targets.eeg import CAP_SYSTEMS

_DEF = TdcsSearch()


def _common(p) -> None:
    p.add_argument("subject_dir", help="subject workspace (needs mesh/head.msh and targets/eeg.csv)")
    p.add_argument("--target", required=True, metavar="SPEC", help="target SPEC (fox, mni:x,y,z, subject:x,y,z, ...)")
    p.add_argument("--roi-radius", type=float, default=_DEF.roi_radius_mm, metavar="MM",
                   help=f"target sphere radius in grey matter ({_DEF.roi_radius_mm:g})")
    p.add_argument("--avoid", action="append", default=[], metavar="SPEC:RADIUS",
                   help="region to keep the field out of (repeatable; limit --avoid-max)")
    p.add_argument("--avoid-max", type=_limit, default=argparse.SUPPRESS, metavar="V_PER_M",
                   help=f"largest mean field (TI: mean envelope) allowed in avoid regions ({_DEF.avoid_max_v_per_m:g}; "
                        "'none': no limit; TI with --focality: no limit unless given)")
    p.add_argument("--electrode-diameter", type=float, default=_DEF.electrode_diameter_mm, metavar="MM",
                   help=f"disc electrode diameter ({_DEF.electrode_diameter_mm:g})")
    p.add_argument("--cap", choices=list(CAP_SYSTEMS), default=_DEF.cap,
                   help=f"EEG cap of the electrode sites: 10-10 or 10-05 (345 positions; sites closer than the "
                        f"disc diameter + --electrode-gap are left out, 10-10 ones first); default {_DEF.cap}")
    p.add_argument("--electrode-gap", type=float, default=_DEF.electrode_gap_mm, metavar="MM",
                   help=f"smallest edge-to-edge gap between cap discs ({_DEF.electrode_gap_mm:g})")
    p.add_argument("--no-nifti", action="store_true", help="skip NIfTI field maps")
    p.add_argument("--out", "-o", required=True, help="output folder")


def register(sub) -> None:
    """Add `ti` and `center-surround` under `navigator optimize` (the CLI registers the cmd_*
    modules in name order, so cmd_optimize has made `optimize` already)."""
    import argparse

    optimize = sub.choices["optimize"]
    subs = next(a for a in optimize._actions if isinstance(a, argparse._SubParsersAction))
    t = subcommand(subs, "ti", "Temporal-interference montage: two electrode pairs on the cap and their "
                               "currents maximizing the mean envelope in the target.")
    _common(t)
    t.add_argument("--direction", choices=["normal", "magnitude"], default=_DEF.objective,
                   help="envelope along the cortical normal (normal) or maximal over directions (magnitude); "
                        f"default {_DEF.objective}")
    t.add_argument("--channel-ma", type=float, default=_DEF.ti_channel_ma, metavar="MA",
                   help=f"largest current per channel, mA ({_DEF.ti_channel_ma:g})")
    t.add_argument("--total-ma", type=float, default=_DEF.ti_total_ma, metavar="MA",
                   help=f"largest sum of the two channel currents, mA ({_DEF.ti_total_ma:g})")
    t.add_argument("--focality", type=float, default=_DEF.ti_avoid_weight, metavar="WEIGHT",
                   help="focality objective: maximize the mean target envelope minus WEIGHT x the mean envelope "
                        "in the --avoid regions (default 0: the target envelope alone)")
    t.add_argument("--frequencies", default=",".join(f"{f:g}" for f in _DEF.ti_frequencies_hz), metavar="F1,F2",
                   help="carrier frequencies of channel 1 and 2, Hz (default {})".format(
                       ",".join(f"{f:g}" for f in _DEF.ti_frequencies_hz)))
    t.set_defaults(func=run_ti)

    c = subcommand(subs, "center-surround", "Centre-surround (Nx1, e.g. 4x1 HD) montage: a disc over the target "
                                            "and N return discs on a ring, currents optimized or standard.")
    _common(c)
    c.add_argument("--direction", choices=["normal", "magnitude"], default=_DEF.objective,
                   help=f"objective: ROI-mean E into the cortex or |ROI-mean E| (default {_DEF.objective})")
    c.add_argument("--returns", type=int, default=_DEF.n_returns, metavar="N",
                   help=f"number of return electrodes ({_DEF.n_returns})")
    c.add_argument("--ring-radius", type=float, default=_DEF.ring_radius_mm, metavar="MM",
                   help=f"ring radius around the centre electrode ({_DEF.ring_radius_mm:g})")
    c.add_argument("--currents", choices=["optimized", "standard"], default=_DEF.surround_currents,
                   help="optimized (linear programme) or standard (centre +total, returns share it equally)")
    c.add_argument("--max-total-ma", type=float, default=_DEF.max_total_ma, metavar="MA",
                   help=f"centre current = total injected, mA ({_DEF.max_total_ma:g})")
    c.add_argument("--max-electrode-ma", type=float, default=_DEF.max_electrode_ma, metavar="MA",
                   help=f"largest current per return electrode, mA ({_DEF.max_electrode_ma:g})")
    c.add_argument("--on-cap", action="store_true",
                   help="move the centre and the returns to the nearest free positions of --cap (e.g. 4x1 on the 10-05 cap)")
    c.set_defaults(func=run_center_surround)


def _limit(text: str) -> float | None:
    """--avoid-max: a number (V/m) or 'none'."""
    if text.strip().lower() in ("none", "off", "inf"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected V/m or 'none', got {text!r}") from None


def _avoid_max(args, focality: float = 0.0) -> float | None:
    """The avoid limit: as given; else the default, or none for the TI focality objective."""
    if hasattr(args, "avoid_max"):  # given (a number, or None for 'none')
        return args.avoid_max
    return None if focality > 0 else _DEF.avoid_max_v_per_m


def _frequencies(text: str) -> tuple[float, float]:
    try:
        f = tuple(float(x) for x in text.split(","))
    except ValueError:
        f = ()
    if len(f) != 2:
        raise NavigatorError(f"bad --frequencies {text!r}: expected F1,F2 in Hz, e.g. 2000,2010")
    return f  # type: ignore[return-value]


def _run(args, search: TdcsSearch, title: str) -> int:
    from navigator.optimize.tdcs import optimize_tdcs_workspace

    ws = Workspace.open(args.subject_dir)
    with cli_progress(args, title) as progress:
        result = optimize_tdcs_workspace(ws, target=args.target, out_dir=args.out, search=search, progress=progress)
    out = console(args)
    for k, v in result.numbers.items():
        if v is not None:
            out.print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    return 0


def run_ti(args) -> int:
    search = TdcsSearch(mode="ti", objective=args.direction, roi_radius_mm=args.roi_radius, avoid=args.avoid,
                        avoid_max_v_per_m=_avoid_max(args, args.focality), electrode_diameter_mm=args.electrode_diameter,
                        ti_channel_ma=args.channel_ma, ti_total_ma=args.total_ma,
                        ti_frequencies_hz=_frequencies(args.frequencies), nifti=not args.no_nifti,
                        ti_avoid_weight=args.focality, cap=args.cap, electrode_gap_mm=args.electrode_gap)
    return _run(args, search, "TI optimization")


def run_center_surround(args) -> int:
    search = TdcsSearch(mode="center-surround", objective=args.direction, roi_radius_mm=args.roi_radius,
                        avoid=args.avoid, avoid_max_v_per_m=_avoid_max(args),
                        electrode_diameter_mm=args.electrode_diameter, cap=args.cap,
                        electrode_gap_mm=args.electrode_gap, surround_on_cap=args.on_cap, n_returns=args.returns,
                        ring_radius_mm=args.ring_radius, surround_currents=args.currents,
                        max_total_ma=args.max_total_ma, max_electrode_ma=args.max_electrode_ma,
                        nifti=not args.no_nifti)
    return _run(args, search, "centre-surround optimization")
