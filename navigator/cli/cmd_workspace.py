"""`navigator workspace show SUBJECT_DIR`: print a workspace's manifest summary."""

from __future__ import annotations

from navigator.cli import console, subcommand
from navigator.core.workspace import Workspace


def register(sub) -> None:
    p = subcommand(sub, "workspace", "Inspect a subject workspace: sources, completed steps, files.")
    p.add_argument("subject_dir", help="subject workspace folder")
    p.add_argument("--verify", action="store_true", help="re-hash every recorded file (slow)")
    p.set_defaults(func=run)


def run(args) -> int:
    ws = Workspace.open(args.subject_dir, verify_hashes=args.verify)
    out = console(args)
    out.print(f"subject: {ws.subject_id}  ({ws.root})")
    for role, src in ws.sources().items():
        out.print(f"  source {role}: {src['path']}  sha256 {src['sha256'][:12]}...  from {src.get('original')}")
    for name, step in ws.steps().items():
        secs = f"{step.seconds:.1f} s" if step.seconds is not None else "?"
        missing = [rel for rel in step.outputs if not (ws.root / rel).exists()]
        if missing:
            out.print(f"  step {name}: STALE, output missing: {', '.join(missing)} "
                      f"(navigator prepare {ws.root} remakes it)")
        else:
            out.print(f"  step {name}: done {step.completed} ({secs}, navigator {step.software_version})")
    if args.verify:
        out.print("all recorded files verified")
    return 0
