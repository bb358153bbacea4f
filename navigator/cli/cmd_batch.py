"""`navigator batch CONFIG.toml`: plan many subjects on Dask."""

from __future__ import annotations

from navigator.cli import console, subcommand


def register(sub) -> None:
    p = subcommand(sub, "batch", "Plan many subjects from a BIDS dataset or a list of T1 images on Dask "
                   "(a local cluster by default). Resumable: finished steps are skipped.")
    p.add_argument("config", help="batch configuration (TOML); see docs/batch.md")
    p.add_argument("--scheduler", metavar="ADDRESS", help="use an existing Dask scheduler (tcp://host:port)")
    p.add_argument("--workers", type=int, help="local workers (default: sized to cores and memory)")
    p.add_argument("--dry-run", action="store_true", help="list the subjects and the steps that would run")
    p.set_defaults(func=run)


def run(args) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from navigator.batch.config import load_config
    from navigator.batch.runner import run_batch

    cfg = load_config(args.config)
    out = console(args)
    if args.dry_run:
        outcome = run_batch(cfg, dry_run=True)
        out.print(f"{len(outcome.results)} subject(s); output root {cfg.output}; steps: {', '.join(cfg.steps)}")
        for r in outcome.results:
            out.print(f"  {r.subject_id}: " + ", ".join(f"{s} {o.status}" for s, o in r.steps.items()))
        return 0
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=out) as bar:
        task = bar.add_task("subjects", total=None)

        def on_result(res, done, total):
            bar.update(task, completed=done, total=total,
                       description=f"subjects (last: {res.subject_id} {'ok' if res.ok else 'FAILED'})")

        outcome = run_batch(cfg, scheduler=args.scheduler, workers=args.workers, on_result=on_result)
    ok = len(outcome.results) - len(outcome.failed)
    out.print(f"{ok}/{len(outcome.results)} subjects done in {outcome.seconds:.0f} s; summary: {outcome.summary_csv}")
    for r in outcome.failed:
        out.print(f"  [red]FAILED[/red] {r.subject_id}: {r.error}")
    return 0 if not outcome.failed else 3
