"""Background work for the GUI: every long step runs on a QThreadPool thread.

A :class:`Task` wraps a plain function ``fn(progress, *args, **kwargs)``; the function gets a
:class:`navigator.core.progress.Progress` whose callback emits a queued Qt signal (so the UI
thread only ever receives small messages) and whose :class:`CancelToken` the Cancel button
sets. The result (or the exception) comes back through ``finished`` / ``failed`` signals,
delivered on the UI thread. Heavy post-processing (reading result files, resampling maps)
belongs in the task function too, never in the slot that receives the result.

With ``in_process=True`` the function runs in a separate (spawned) process and the pool
thread only relays its messages: numerical libraries that hold the interpreter lock for long
stretches then cannot stall the UI, and Cancel can stop the process outright if it does not
react in time. Such functions and their arguments must be picklable (see
:mod:`navigator.gui.jobs`).
"""

from __future__ import annotations

# The multiprocessing machinery is imported here, at start-up: imported the first time on a
# relay thread, it would hold the interpreter lock (and stall the UI) while a task starts.
import multiprocessing as mp
import multiprocessing.queues  # noqa: F401
import multiprocessing.synchronize  # noqa: F401
import queue as queue_mod
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PyQt6.QtCore import QObject, QRunnable, QThreadPool, pyqtSignal, pyqtSlot

from navigator.core.errors import Cancelled
from navigator.core.progress import CancelToken, Progress

try:
    import multiprocessing.popen_spawn_posix  # noqa: F401
except ImportError:  # Windows
    pass


@dataclass
class TaskError:
    """A failure reported by a task: the exception, its one-line message and the traceback."""

    exception: BaseException
    message: str
    details: str


class TaskSignals(QObject):
    progress = pyqtSignal(float, str)
    finished = pyqtSignal(object)
    failed = pyqtSignal(object)  # TaskError
    cancelled = pyqtSignal()


class Task(QRunnable):
    """One background job; see the module docstring."""

    #: seconds a cancelled child process gets to stop by itself before it is terminated
    CANCEL_GRACE_S = 10.0

    def __init__(self, name: str, fn: Callable[..., Any], *args: Any, in_process: bool = False, **kwargs: Any):
        super().__init__()
        self.name = name
        self.in_process = in_process
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.token = CancelToken()
        self.signals = TaskSignals()
        self.started_at: float | None = None
        self.setAutoDelete(False)  # the TaskRunner keeps a reference until the task reports back
        self._last_emit = 0.0

    def _emit_progress(self, fraction: float, message: str) -> None:
        # throttle: at most ~4 progress messages per second reach the UI thread
        now = time.perf_counter()
        if now - self._last_emit >= 0.25 or fraction >= 1.0:
            self._last_emit = now
            self.signals.progress.emit(float(fraction), str(message))

    def cancel(self) -> None:
        self.token.cancel()

    def _run_in_process(self) -> None:
        from navigator.core.errors import NavigatorError
        from navigator.gui.jobs import child_main

        ctx = mp.get_context("spawn")  # never fork a process that runs Qt threads
        q = ctx.Queue()
        ev = ctx.Event()
        proc = ctx.Process(target=child_main, args=(self.fn, self.args, self.kwargs, q, ev), daemon=True)
        try:
            proc.start()
        except Exception as exc:  # noqa: BLE001 - e.g. unpicklable arguments
            self.signals.failed.emit(TaskError(exc, f"could not start the worker process: {exc}",
                                               traceback.format_exc()))
            return
        cancel_at = None
        try:
            while True:
                if self.token.cancelled and cancel_at is None:
                    ev.set()
                    cancel_at = time.perf_counter()
                if cancel_at is not None and time.perf_counter() - cancel_at > self.CANCEL_GRACE_S:
                    proc.terminate()
                    self.signals.cancelled.emit()
                    return
                try:
                    msg = q.get(timeout=0.1)
                except queue_mod.Empty:
                    if not proc.is_alive():
                        try:
                            msg = q.get(timeout=0.5)
                        except queue_mod.Empty:
                            err = RuntimeError(f"the worker process ended unexpectedly (exit code {proc.exitcode})")
                            self.signals.failed.emit(TaskError(err, str(err), ""))
                            return
                    else:
                        continue
                kind = msg[0]
                if kind == "progress":
                    self.signals.progress.emit(msg[1], msg[2])
                elif kind == "result":
                    self.signals.finished.emit(msg[1])
                    return
                elif kind == "cancelled":
                    self.signals.cancelled.emit()
                    return
                elif kind == "error":
                    _, is_nav, tname, message, tb = msg
                    exc = NavigatorError(message) if is_nav else RuntimeError(f"{tname}: {message}")
                    self.signals.failed.emit(TaskError(exc, message, tb))
                    return
        finally:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
            q.close()

    @pyqtSlot()
    def run(self) -> None:
        self.started_at = time.perf_counter()
        if self.in_process:
            self._run_in_process()
            return
        progress = Progress(callback=self._emit_progress, token=self.token)
        try:
            result = self.fn(progress, *self.args, **self.kwargs)
        except Cancelled:
            self.signals.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure is reported to the UI
            self.signals.failed.emit(TaskError(exc, str(exc) or type(exc).__name__, traceback.format_exc()))
        else:
            self.signals.finished.emit(result)


class TaskRunner(QObject):
    """Starts tasks on a thread pool and tracks the one the progress bar shows.

    Signals: ``started(name)``, ``progress(fraction, message)``, ``done(name)`` (success, failure
    or cancellation); per-task callbacks are given to :meth:`start`.
    """

    started = pyqtSignal(str)
    progress = pyqtSignal(float, str)
    done = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(2)
        self.current: Task | None = None
        self._tasks: set[Task] = set()

    @property
    def busy(self) -> bool:
        return self.current is not None

    @property
    def idle(self) -> bool:
        """No task at all (main or side) is running."""
        return not self._tasks

    def start(self, name: str, fn: Callable[..., Any], *args: Any,
              on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[TaskError], None] | None = None,
              on_cancel: Callable[[], None] | None = None, in_process: bool = False, side: bool = False,
              **kwargs: Any) -> Task:
        """Start a task; a ``side`` task (short, e.g. reading a stored result) runs beside the
        current one and is not shown in the progress bar or cancelled by Cancel."""
        task = Task(name, fn, *args, in_process=in_process, **kwargs)
        self._tasks.add(task)
        if not side:
            self.current = task

        def finish() -> None:
            self._tasks.discard(task)
            if self.current is task:
                self.current = None
            if not side:
                self.done.emit(name)

        def ok(result: Any) -> None:
            finish()
            if on_done is not None:
                on_done(result)

        def err(error: TaskError) -> None:
            finish()
            if on_error is not None:
                on_error(error)

        def cancelled() -> None:
            finish()
            if on_cancel is not None:
                on_cancel()

        if not side:
            task.signals.progress.connect(self.progress)
        task.signals.finished.connect(ok)
        task.signals.failed.connect(err)
        task.signals.cancelled.connect(cancelled)
        if not side:
            self.started.emit(name)
        self.pool.start(task)
        return task

    def cancel(self) -> None:
        if self.current is not None:
            self.current.cancel()

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)
