"""Progress reporting and cancellation for long-running steps.

A step takes an optional :class:`Progress`; it calls ``progress.update(fraction, message)``
now and then (fraction in [0, 1] of *its own* work) and ``progress.check()`` at safe points,
which raises :class:`~navigator.core.errors.Cancelled` once ``cancel()`` was requested.
``progress.sub(a, b)`` hands a sub-step the slice [a, b] of the parent's range, so nested
steps report one monotone overall fraction. Nothing here knows about Qt or terminals.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

from navigator.core.errors import Cancelled

#: Receives (overall fraction in [0, 1], human-readable message).
ProgressCallback = Callable[[float, str], None]


class CancelToken:
    """Thread-safe flag shared between the UI (which sets it) and the worker (which polls it)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


@dataclass
class Progress:
    """Progress sink for one step; see the module docstring."""

    callback: ProgressCallback | None = None
    token: CancelToken = field(default_factory=CancelToken)
    start: float = 0.0
    end: float = 1.0
    prefix: str = ""

    def update(self, fraction: float, message: str = "") -> None:
        """Report that ``fraction`` (0..1) of this step is done; also checks cancellation."""
        self.check()
        if self.callback is not None:
            f = min(max(float(fraction), 0.0), 1.0)
            text = f"{self.prefix}{message}" if message else self.prefix.rstrip(": ")
            self.callback(self.start + (self.end - self.start) * f, text)

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self.token.cancelled:
            raise Cancelled(self.prefix.rstrip(": ") or "operation")

    def sub(self, start: float, end: float, name: str = "") -> "Progress":
        """A child sink covering [start, end] of this step's range."""
        span = self.end - self.start
        return Progress(
            callback=self.callback,
            token=self.token,
            start=self.start + span * start,
            end=self.start + span * end,
            prefix=f"{name}: " if name else self.prefix,
        )


def ensure_progress(progress: Progress | None) -> Progress:
    """Return ``progress`` or a silent sink, so callees never test for None."""
    return progress if progress is not None else Progress()
