"""Errors that reach the user.

Every error the user can cause (a bad file, a bad option) is a :class:`NavigatorError` whose
message is one line that says what is wrong and, where a file is involved, names it. The CLI
prints that line and exits non-zero; the GUI shows it in a dialog.
"""

from __future__ import annotations

from pathlib import Path


class NavigatorError(Exception):
    """A problem the user can understand and fix; ``str(err)`` is a one-line message."""


class InputError(NavigatorError):
    """A bad input file: the message names the file and the problem."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path is not None else problem)


class WorkspaceError(NavigatorError):
    """A subject workspace is missing, damaged or from a newer version of navigator."""


class Cancelled(NavigatorError):
    """A long-running step was cancelled by the user."""

    def __init__(self, what: str = "operation"):
        super().__init__(f"{what} cancelled")
