"""A computation in a child process ``python -m MODULE FOLDER`` that exchanges files through a private folder.

Used where a single-threaded computation that holds Python's GIL (the FMM of ``fmm3dpy``)
should run beside this process's own work: :mod:`navigator.fem.fmm` (half of a multi-density
FMM) and :mod:`navigator.tms.primary_job` (a coil's primary field). The payload (which files,
what the child computes, what a failure means) stays with those modules; this one owns the
protocol they share:

* a private temporary folder (``tempfile.mkdtemp``, optionally in /dev/shm when it has room:
  :func:`shared_memory_dir`) into which the caller writes the inputs;
* ``sys.executable -m MODULE FOLDER`` with one compute thread (``OMP_NUM_THREADS`` and
  ``NUMBA_NUM_THREADS`` = 1), its stdout and stderr in ``FOLDER/child.log``; optionally held
  until :meth:`ChildProcess.release` writes ``go`` to its stdin (the child reads it with
  :func:`wait_for_go_ahead`);
* waiting that honours :class:`~navigator.core.progress.Progress` cancellation, the exit code
  and the log's last lines on failure (:meth:`ChildProcess.failure`);
* :meth:`ChildProcess.close`: the child killed if still running and the folder removed, also
  on cancellation or when the object is garbage-collected.

A plain subprocess (not ``multiprocessing``) is used so that the caller's ``__main__`` module
is never re-imported and daemon processes (batch workers) may use it too. Nothing here falls
back to computing in this process: the callers decide that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from navigator.core.progress import Progress

#: The child's combined stdout and stderr, inside its folder.
LOG_NAME = "child.log"
#: Seconds between two looks at the child (and at the cancel flag) while waiting.
POLL_SECONDS = 0.01
#: The line a held child waits for on its stdin (see :meth:`ChildProcess.release`).
GO_AHEAD = b"go\n"


def shared_memory_dir(need_bytes: int) -> str | None:
    """Shared memory (/dev/shm) for exchange files when it is writable and has ``need_bytes``
    (bytes) free (a container's is often 64 MB), else the default temporary folder (None)."""
    shm = "/dev/shm"
    try:
        if os.path.isdir(shm) and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free >= need_bytes:
            return shm
    except OSError:
        pass
    return None


class ChildProcess:
    """One running (or finished) ``python -m MODULE FOLDER`` child and its private folder.

    Attributes:
        folder: the private exchange folder (inputs written by the caller, outputs by the child,
            the log in :data:`LOG_NAME`); removed by :meth:`close`.
        proc: the child process; ``proc.stdin`` is a pipe only for a held child.
    """

    def __init__(self, folder: Path, proc: subprocess.Popen) -> None:
        self.folder, self.proc = folder, proc

    @classmethod
    def start(cls, module: str, write_inputs: Callable[[Path], None], *, prefix: str,
              parent_dir: str | Path | None = None, hold: bool = False) -> "ChildProcess":
        """Make a private folder, let ``write_inputs(folder)`` fill it, start the child.

        Args:
            module: the module the child runs (``python -m module FOLDER``).
            write_inputs: writes the payload's input files into the folder.
            prefix: the folder's name prefix (``navigator-...-``).
            parent_dir: where the folder is made (None: the default temporary folder).
            hold: the child gets a stdin pipe and is expected to wait for :meth:`release`.
        Raises:
            whatever making the folder, writing the inputs or starting the process raised;
            the folder is then already removed.
        """
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent_dir))
        try:
            write_inputs(folder)
            env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
            with open(folder / LOG_NAME, "wb") as logf:
                proc = subprocess.Popen([sys.executable, "-m", module, str(folder)], stdout=logf,
                                        stderr=subprocess.STDOUT,
                                        stdin=subprocess.PIPE if hold else subprocess.DEVNULL, env=env)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(folder, proc)

    def release(self) -> None:
        """Let a held child compute now (no-op when not held or already released; a child that
        died meanwhile is noticed by :meth:`failure`)."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.write(GO_AHEAD)
            except OSError:
                pass
            self._close_stdin()

    def wait(self, progress: Progress) -> int:
        """Wait for the child to exit, checking ``progress`` for cancellation; its exit code.

        On cancellation (or any other exception while waiting) the child is stopped and its
        folder removed (:meth:`close`) before the exception propagates.
        """
        try:
            while self.proc.poll() is None:
                progress.check()
                time.sleep(POLL_SECONDS)
        except BaseException:
            self.close()
            raise
        return self.proc.returncode

    def failure(self, tail_lines: int = 3) -> str | None:
        """None if the child exited with code 0, else ``"exit code N: <last lines of its log>"``
        (the lines joined by `` | ``). Call after :meth:`wait`; raises OSError if the log is unreadable."""
        code = self.proc.returncode
        if code == 0:
            return None
        tail = (self.folder / LOG_NAME).read_text(errors="replace").splitlines()[-tail_lines:]
        return f"exit code {code}: " + " | ".join(tail)

    def close(self) -> None:
        """Stop the child (if still running) and remove its folder; safe to call again."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_stdin()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _close_stdin(self) -> None:
        """Close a held child's stdin pipe (the child then reads end of file); a dead child's errors
        are ignored."""
        stdin = self.proc.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()
            except OSError:
                pass

    def __del__(self) -> None:  # a child abandoned by an exception in the caller
        try:
            self.close()
        except Exception:
            pass


# --- the child's side -------------------------------------------------------------------------


def wait_for_go_ahead() -> bool:
    """In a held child: block until the parent's :meth:`ChildProcess.release`; False if the
    parent closed the pipe (or died) without it."""
    return sys.stdin.readline().strip() == GO_AHEAD.decode().strip()


def save_output(path: Path, array: np.ndarray) -> None:
    """In the child: write ``array`` to ``path`` (a ``.npy`` name) through a temporary file, so
    the parent never reads a half-written file."""
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
