"""The ``navigator`` command line.

Each ``navigator/cli/cmd_*.py`` module defines ``register(subparsers)`` which adds its
sub-command(s) with ``set_defaults(func=...)``; the function receives the parsed arguments
and returns an exit code (or None for 0). Errors the user can fix are raised as
:class:`~navigator.core.errors.NavigatorError` and printed as one line; tracebacks appear
only with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import re
import sys
from typing import Sequence

from navigator import __version__
from navigator.core.errors import NavigatorError

log = logging.getLogger("navigator")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="navigator",
        description="Plan TMS and tDCS on each subject's own head: segment, mesh, simulate, "
        "optimize, and export to neuronavigation systems.",
    )
    parser.add_argument("--version", action="version", version=f"navigator {__version__}")
    add_common_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import navigator.cli as pkg

    for mod in sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_")):
        importlib.import_module(f"navigator.cli.{mod}").register(sub)
    _accept_negative_vectors(parser)
    return parser


#: "-38,44,26", "-1.5", "-0.2,3,-4e-3", "-40,20,60:-1:disc:12": values, not options (coordinates
#: are often negative; electrode SPECs append ":..." to a position).
_NEGATIVE_VALUES = re.compile(r"^-\d*\.?\d+(?:[eE][-+]?\d+)?(?:,\s*-?\d*\.?\d+(?:[eE][-+]?\d+)?)*(?::\S*)?$")


def _accept_negative_vectors(parser: argparse.ArgumentParser) -> None:
    """Let every (sub-)parser take negative numbers and vectors such as ``--lpa -80,0,0`` as values."""
    parser._negative_number_matcher = _NEGATIVE_VALUES
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _accept_negative_vectors(child)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """-v/--quiet/--debug, accepted before or after the sub-command."""
    default = argparse.SUPPRESS if parser.prog != "navigator" else None
    parser.add_argument("-v", "--verbose", action="count", default=default if default else 0,
                        help="more output (repeat for debug logging)")
    parser.add_argument("-q", "--quiet", action="store_true", default=default if default else False,
                        help="only errors")
    parser.add_argument("--debug", action="store_true", default=default if default else False,
                        help="show full tracebacks on errors")


def subcommand(sub, name: str, help: str, **kwargs) -> argparse.ArgumentParser:
    """Add a sub-command parser that also accepts the common options."""
    p = sub.add_parser(name, help=help, description=help, **kwargs)
    add_common_options(p)
    return p


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING
    if getattr(args, "quiet", False):
        level = logging.ERROR
    elif getattr(args, "verbose", 0) >= 2:
        level = logging.DEBUG
    elif getattr(args, "verbose", 0) == 1:
        level = logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr, force=True)
    logging.captureWarnings(True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    try:
        rc = args.func(args)
        return 0 if rc is None else int(rc)
    except NavigatorError as exc:
        if args.debug:
            raise
        print(f"navigator: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("navigator: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`navigator target ... --json | head`): stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
        except (OSError, ValueError, AttributeError):
            pass
        return 141
    except Exception as exc:  # noqa: BLE001 - last-resort: one line unless --debug
        if args.debug:
            raise
        print(f"navigator: internal error: {type(exc).__name__}: {exc} (rerun with --debug for details)",
              file=sys.stderr)
        return 2


def console(args: argparse.Namespace):
    """A rich console honouring --quiet (prints nothing when quiet)."""
    from rich.console import Console

    return Console(quiet=bool(getattr(args, "quiet", False)), highlight=False)


def cli_progress(args: argparse.Namespace, description: str):
    """A :class:`~navigator.core.progress.Progress` that draws a rich progress bar on stderr.

    Use as a context manager: ``with cli_progress(args, "Segmenting") as progress: ...``.
    """
    return _RichProgress(args, description)


class _RichProgress:
    def __init__(self, args, description):
        self.args = args
        self.description = description

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, Progress as RP, TextColumn, TimeElapsedColumn

        from navigator.core.progress import Progress

        quiet = bool(getattr(self.args, "quiet", False))
        self._rp = RP(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeElapsedColumn(), console=Console(stderr=True, quiet=quiet), transient=False)
        self._rp.start()
        task = self._rp.add_task(self.description, total=1.0)

        def cb(fraction: float, message: str) -> None:
            self._rp.update(task, completed=fraction,
                            description=f"{self.description}: {message}" if message else self.description)

        return Progress(callback=cb)

    def __exit__(self, exc_type, *exc):
        if exc_type is not None and not self._rp.console.is_terminal:
            # logs and scripts: the error line stands alone (no final frame of the bar before it)
            self._rp.console.quiet = True
        self._rp.stop()
        return False
