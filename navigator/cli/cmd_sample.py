"""`navigator sample list` and `navigator sample NAME --out DIR [--seed N] [--force]`."""

from __future__ import annotations

from navigator.cli import cli_progress, console, subcommand


def register(sub) -> None:
    from navigator.samples import SAMPLES

    p = subcommand(sub, "sample", "Write a sample subject with known ground truth (or list the samples).")
    p.add_argument("name", choices=["list", *SAMPLES], help="sample name, or 'list'")
    p.add_argument("--out", metavar="DIR", help="output workspace folder (must be new or empty)")
    p.add_argument("--seed", type=int, default=0, help="phantom variant (0 = the default phantom)")
    p.add_argument("--force", action="store_true", help="replace an existing navigator workspace in DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from navigator.core.errors import NavigatorError
    from navigator.samples import SAMPLES, check_target, write_sample

    out = console(args)
    if args.name == "list":
        width = max(len(n) for n in SAMPLES)
        for name, desc in SAMPLES.items():
            out.print(f"{name:<{width}}  {desc}")
        return 0
    if not args.out:
        raise NavigatorError(f"navigator sample {args.name}: --out DIR is required")
    if args.seed < 0:
        raise NavigatorError(f"--seed must be >= 0, got {args.seed}")
    check_target(args.out, args.force)
    with cli_progress(args, f"Writing sample {args.name}") as progress:
        ws = write_sample(args.name, args.out, seed=args.seed, progress=progress, force=args.force)
    out.print(f"sample {args.name} written to {ws.root}")
    return 0
