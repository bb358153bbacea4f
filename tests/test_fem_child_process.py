"""The child-process protocol shared by the split FMM and the background primary field:
a child that succeeds, one that fails (its log's last lines in the message), one that is
cancelled or held and released, and nothing left behind in any case."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest

from navigator.core.errors import Cancelled
from navigator.core.progress import Progress
from navigator.fem import child_process
from navigator.fem.child_process import ChildProcess

# A child module (written into a folder on the child's PYTHONPATH): what it does is in job.json.
CHILD = '''
import json, sys, time
from pathlib import Path

import numpy as np

from navigator.fem.child_process import save_output, wait_for_go_ahead

d = Path(sys.argv[1])
job = json.loads((d / "job.json").read_text())
if job.get("held") and not wait_for_go_ahead():
    (d / "no-go-ahead.txt").write_text("parent went away")
    sys.exit(0)
if job["mode"] == "fail":
    for i in range(5):
        print(f"line {i}", flush=True)
    sys.exit(3)
if job["mode"] == "sleep":
    (d / "started.txt").write_text("")
    time.sleep(120)
save_output(d / "out.npy", 2.0 * np.load(d / "in.npy"))
'''


@pytest.fixture
def child_module(tmp_path, monkeypatch):
    """The name of the test child module, importable by the child (not by this process)."""
    src = tmp_path / "child_src"
    src.mkdir()
    (src / "navigator_test_child.py").write_text(CHILD)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")])))
    return "navigator_test_child"


def _writer(mode: str, held: bool):
    def write(d):
        (d / "job.json").write_text(json.dumps({"mode": mode, "held": held}))
        np.save(d / "in.npy", np.arange(6.0))
    return write


def _start(module: str, tmp_path, mode: str, held: bool = False) -> ChildProcess:
    work = tmp_path / "exchange"
    work.mkdir(exist_ok=True)
    return ChildProcess.start(module, _writer(mode, held=held), prefix="navigator-test-", parent_dir=work,
                              hold=held)


def _left(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "exchange").iterdir())


def test_a_child_that_succeeds(child_module, tmp_path):
    child = _start(child_module, tmp_path, "ok")
    assert child.folder.parent == tmp_path / "exchange" and child.folder.name.startswith("navigator-test-")
    assert child.proc.stdin is None  # not held: no pipe
    assert child.wait(Progress()) == 0
    assert child.failure() is None
    np.testing.assert_array_equal(np.load(child.folder / "out.npy"), 2.0 * np.arange(6.0))
    assert not list(child.folder.glob("*.tmp.npy"))  # written through a temporary name, then renamed
    child.close()
    child.close()  # a second close is harmless
    assert _left(tmp_path) == []


def test_a_child_that_fails_reports_its_exit_code_and_log_tail(child_module, tmp_path):
    child = _start(child_module, tmp_path, "fail")
    assert child.wait(Progress()) == 3
    assert child.failure() == "exit code 3: line 2 | line 3 | line 4"
    assert child.failure(tail_lines=1) == "exit code 3: line 4"
    child.close()
    assert _left(tmp_path) == []


def test_a_cancelled_child_is_killed_and_leaves_nothing(child_module, tmp_path):
    child = _start(child_module, tmp_path, "sleep")
    progress = Progress()
    deadline = time.monotonic() + 60
    while not (child.folder / "started.txt").exists():  # the child is running its payload
        assert child.proc.poll() is None, (child.folder / child_process.LOG_NAME).read_text()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    timer = threading.Timer(0.2, progress.token.cancel)
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        child.wait(progress)
    timer.join()
    assert time.monotonic() - t0 < 30  # not the child's 120 s
    assert child.proc.poll() is not None  # killed, not left running
    assert _left(tmp_path) == []


def test_a_held_child_computes_only_after_release(child_module, tmp_path):
    child = _start(child_module, tmp_path, "ok", held=True)
    assert child.proc.stdin is not None and not child.proc.stdin.closed
    time.sleep(0.5)
    assert child.proc.poll() is None and not (child.folder / "out.npy").exists()  # waiting for the go-ahead
    child.release()
    child.release()  # no-op once released
    assert child.wait(Progress()) == 0 and (child.folder / "out.npy").exists()
    child.close()
    # without the go-ahead (the parent closes the pipe): the child computes nothing
    child = _start(child_module, tmp_path, "ok", held=True)
    child.proc.stdin.close()
    assert child.wait(Progress()) == 0
    assert (child.folder / "no-go-ahead.txt").exists() and not (child.folder / "out.npy").exists()
    child.close()
    assert _left(tmp_path) == []


def test_a_child_that_cannot_start_leaves_no_folder(child_module, tmp_path, monkeypatch):
    def broken(d):
        raise OSError("disk full")

    (tmp_path / "exchange").mkdir()
    with pytest.raises(OSError, match="disk full"):
        ChildProcess.start(child_module, broken, prefix="navigator-test-", parent_dir=tmp_path / "exchange")
    monkeypatch.setattr(child_process.sys, "executable", str(tmp_path / "no-such-python"))
    with pytest.raises(OSError):
        _start(child_module, tmp_path, "ok")
    assert _left(tmp_path) == []


def test_an_abandoned_child_is_stopped_when_collected(child_module, tmp_path):
    import gc

    child = _start(child_module, tmp_path, "sleep", held=True)
    proc = child.proc
    del child
    gc.collect()
    assert proc.poll() is not None
    assert _left(tmp_path) == []


def test_shared_memory_only_with_room(monkeypatch):
    import collections

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(child_process.shutil, "disk_usage", lambda p: usage(64 << 20, 60 << 20, 4 << 20))
    assert child_process.shared_memory_dir(100 << 20) is None

    def unreadable(p):
        raise OSError("no such file")

    monkeypatch.setattr(child_process.shutil, "disk_usage", unreadable)
    assert child_process.shared_memory_dir(1) is None
