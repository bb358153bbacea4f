"""Subject workspace: manifest schema, validation, step records and atomic writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from navigator.core import atomic
from navigator.core.errors import WorkspaceError
from navigator.core.workspace import MANIFEST_NAME, SCHEMA_VERSION, Workspace


def test_create_and_reopen(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "sub-01")
    assert ws.subject_id == "sub-01"
    m = json.loads((tmp_path / "sub-01" / MANIFEST_NAME).read_text())
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["sources"] == {} and m["steps"] == {}
    again = Workspace.open(tmp_path / "sub-01")
    assert again.subject_id == "sub-01"


def test_rejects_bad_subject_id_and_nonempty_folder(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="invalid subject id"):
        Workspace.create(tmp_path / "x", subject_id="../evil")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="not empty"):
        Workspace.create(tmp_path / "full")


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "s")
    m = ws.manifest
    m["schema_version"] = SCHEMA_VERSION + 1
    (ws.root / MANIFEST_NAME).write_text(json.dumps(m))
    with pytest.raises(WorkspaceError, match="newer than this navigator"):
        Workspace.open(ws.root)


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"schema_version": 1}', "subject_id"),
])
def test_corrupt_manifest(tmp_path: Path, content: str, match: str) -> None:
    ws = Workspace.create(tmp_path / "s")
    (ws.root / MANIFEST_NAME).write_text(content)
    with pytest.raises(WorkspaceError, match=match):
        Workspace.open(ws.root)


def test_missing_recorded_file_detected(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "s")
    img = ws.path("t1")
    img.parent.mkdir(parents=True)
    img.write_bytes(b"image bytes")
    ws.add_source("T1", img, original="/data/t1.nii.gz")
    Workspace.open(ws.root)
    img.unlink()
    with pytest.raises(WorkspaceError, match="missing"):
        Workspace.open(ws.root)


def test_changed_file_detected_with_verify(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "s")
    img = ws.path("t1")
    img.parent.mkdir(parents=True)
    img.write_bytes(b"image bytes")
    ws.add_source("T1", img)
    img.write_bytes(b"other bytes")
    Workspace.open(ws.root)  # cheap check passes
    with pytest.raises(WorkspaceError, match="sha256 mismatch"):
        Workspace.open(ws.root, verify_hashes=True)


def test_step_records_and_skipping(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "s")
    t1 = ws.path("t1")
    t1.parent.mkdir(parents=True)
    t1.write_bytes(b"t1")
    ws.add_source("T1", t1)
    out = ws.path("labels")
    out.parent.mkdir(parents=True)
    out.write_bytes(b"labels v1")
    params = {"resolution_mm": 1.0, "t2": None}
    assert not ws.step_is_current("segment", params, [t1])
    ws.record_step("segment", params, inputs=[t1], outputs=[out], seconds=1.5)
    ws2 = Workspace.open(ws.root)
    rec = ws2.step("segment")
    assert rec is not None and rec.software_version and rec.seconds == 1.5
    assert ws2.step_is_current("segment", params, [t1])
    assert not ws2.step_is_current("segment", {**params, "resolution_mm": 2.0}, [t1])  # parameters changed
    out.write_bytes(b"labels edited by hand")
    assert not ws2.step_is_current("segment", params, [t1])  # output changed
    out.write_bytes(b"labels v1")
    t1.write_bytes(b"new t1")
    assert not ws2.step_is_current("segment", params, [t1])  # input changed


def test_interrupted_manifest_write_keeps_previous_manifest(tmp_path: Path, monkeypatch) -> None:
    """A write that dies part-way (here: after half the bytes) leaves the old manifest loadable."""
    ws = Workspace.create(tmp_path / "s")
    before = (ws.root / MANIFEST_NAME).read_bytes()

    real_write_bytes = Path.write_bytes

    def dying_write(self: Path, data: bytes) -> int:
        real_write_bytes(self, data[: len(data) // 2])  # half the file reaches the disk...
        raise OSError("disk full")  # ...then the write fails

    monkeypatch.setattr(Path, "write_bytes", dying_write)
    ws._manifest["steps"]["segment"] = {"parameters": {}, "outputs": {}}
    with pytest.raises(OSError, match="disk full"):
        ws.save()
    monkeypatch.undo()

    assert (ws.root / MANIFEST_NAME).read_bytes() == before
    reopened = Workspace.open(ws.root)
    assert reopened.steps() == {}
    leftovers = [p for p in os.listdir(ws.root) if p.endswith(".tmp.json") or ".tmp" in p]
    assert leftovers == []


def test_interrupted_by_kill_keeps_previous_manifest(tmp_path: Path) -> None:
    """A process killed in the middle of writing (SIGKILL) leaves the manifest intact."""
    import signal
    import subprocess
    import sys
    import time

    ws = Workspace.create(tmp_path / "s")
    before = (ws.root / MANIFEST_NAME).read_bytes()
    script = f"""
import os, sys, time
from pathlib import Path
from navigator.core.workspace import Workspace
ws = Workspace.open({str(ws.root)!r})
big = "x" * 50_000_000
orig = Path.write_bytes
def slow(self, data):
    with open(self, "wb") as fh:
        fh.write(data[:1000]); fh.flush(); os.fsync(fh.fileno())
        print("writing", flush=True)
        time.sleep(60)
        fh.write(data[1000:])
Path.write_bytes = slow
ws._manifest["steps"]["segment"] = {{"parameters": {{"blob": big}}, "outputs": {{}}}}
ws.save()
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.1)
    assert (ws.root / MANIFEST_NAME).read_bytes() == before
    assert Workspace.open(ws.root).steps() == {}


def test_atomic_path_removes_temp_on_error(tmp_path: Path) -> None:
    target = tmp_path / "f.nii.gz"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            assert tmp.name.endswith(".nii.gz")  # keeps the suffix libraries look at
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.nii.gz"]


def test_atomic_files_get_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic.atomic_write_json(target, {"a": 1})
    mode = target.stat().st_mode & 0o777
    assert mode == 0o666 & ~atomic._UMASK


# ---------------------------------------------------------------------------- all-or-nothing steps
def _dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class _Killed(BaseException):
    """Stands for the process dying: nothing after it runs in this process."""


def _run_demo_step(ws: Workspace, version: str) -> None:
    """A step writing out/a.txt, b.txt (and, in version 2, d.txt; version 2 drops c.txt)."""
    with ws.step_commit("demo") as tx:
        (tx.stage(ws.root / "out" / "a.txt")).write_text(f"a {version}")
        atomic.atomic_write_text(tx.stage(ws.root / "b.txt"), f"b {version}")
        outputs = [ws.root / "out" / "a.txt", ws.root / "b.txt"]
        if version == "1":
            tx.stage(ws.root / "c.txt").write_text("c 1")
            outputs.append(ws.root / "c.txt")
        else:
            tx.stage(ws.root / "out" / "d.txt").write_text("d 2")
            outputs.append(ws.root / "out" / "d.txt")
            tx.remove(ws.root / "c.txt")
        tx.commit({"version": version}, inputs=[], outputs=outputs)


def _state(root: Path) -> dict:
    files = {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*.txt")}
    step = json.loads((root / MANIFEST_NAME).read_text())["steps"].get("demo")
    return {"files": files, "parameters": step and step["parameters"], "outputs": step and step["outputs"]}


@pytest.mark.parametrize("mode", ["exception", "kill"])
def test_step_commit_is_all_or_nothing_at_every_point(tmp_path: Path, monkeypatch, mode: str) -> None:
    """Fail at each file rename of a step's commit (outputs, journal, manifest): the workspace
    re-opens with the previous outputs and record, never a mix; past the last rename, the new ones."""
    from navigator.core import step_commit

    old_state = new_state = None
    real_replace = os.replace
    k = 0
    while True:
        root = tmp_path / f"s{mode}{k}"
        ws = Workspace.create(root)
        _run_demo_step(ws, "1")
        old_state = _state(root)
        calls = {"n": 0}

        def failing_replace(src, dst, _k=k):
            calls["n"] += 1
            if calls["n"] == _k + 1:
                raise _Killed() if mode == "kill" else OSError("disk full (simulated)")
            return real_replace(src, dst)

        monkeypatch.setattr(os, "replace", failing_replace)
        if mode == "kill":  # a killed process does not clean up after itself
            monkeypatch.setattr(step_commit, "_roll_back", lambda *a: None)
            monkeypatch.setattr(step_commit.StepCommit, "discard", lambda self: None)
        failed = False
        try:
            _run_demo_step(ws, "2")
        except (_Killed, OSError):
            failed = True
        monkeypatch.undo()
        if mode == "kill":  # the staging folder now belongs to a process that is gone
            for owner in (root / step_commit.STAGING_DIR).glob(f"*/{step_commit.OWNER_NAME}"):
                owner.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
        reopened = Workspace.open(root)  # recovers an interrupted commit
        assert not (root / step_commit.STAGING_DIR).exists()
        state = _state(root)
        if failed:
            assert state == old_state, f"failure at rename {k + 1} ({mode}) left a mix: {state}"
            assert reopened.step("demo").parameters == {"version": "1"}
            k += 1
            continue
        new_state = state
        break
    print(f"commit failure points tested ({mode}): {k}")
    assert k >= 5  # the staged writes, the journal, 3 set-asides, 4 installs and the manifest were all hit
    assert new_state["parameters"] == {"version": "2"}
    assert new_state["files"] == {"out/a.txt": "a 2", "b.txt": "b 2", "out/d.txt": "d 2"}
    assert old_state["files"] == {"out/a.txt": "a 1", "b.txt": "b 1", "c.txt": "c 1"}
    assert Workspace.open(root).step_is_current("demo", {"version": "2"}, [])


def test_step_left_without_commit_leaves_nothing(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "s")
    with pytest.raises(RuntimeError):
        with ws.step_commit("demo") as tx:
            tx.stage(ws.root / "x.txt").write_text("x")
            raise RuntimeError("the step failed")
    assert not (ws.root / "x.txt").exists() and not (ws.root / ".staging").exists()
    assert ws.step("demo") is None


def test_commit_refuses_an_output_that_was_not_written(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "s")
    with pytest.raises(FileNotFoundError, match="neither staged nor present"):
        with ws.step_commit("demo") as tx:
            tx.commit({}, inputs=[], outputs=[ws.root / "never.txt"])
    assert Workspace.open(ws.root).step("demo") is None


def test_relative_workspace_path_records_steps(tmp_path: Path, monkeypatch) -> None:
    """A workspace opened by a relative path records its outputs under the subject folder
    (it used to look for sub-01/sub-01/...)."""
    monkeypatch.chdir(tmp_path)
    Workspace.create("sub-01")
    ws = Workspace.open("sub-01")
    (tmp_path / "sub-01" / "labels").mkdir()
    (tmp_path / "sub-01" / "labels" / "labels.nii.gz").write_bytes(b"x")
    _run_demo_step(ws, "1")
    rec = ws.record_step("other", {}, inputs=[ws.path("labels")], outputs=[Path("sub-01") / "b.txt"])
    assert set(rec.inputs) == {"labels/labels.nii.gz"} and set(rec.outputs) == {"b.txt"}
    assert Workspace.open(tmp_path / "sub-01").step_is_current("demo", {"version": "1"}, [])


def test_file_in_place_of_workspace_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(WorkspaceError, match="not a folder"):
        Workspace.create(tmp_path / "f")
    with pytest.raises(WorkspaceError, match="is a file"):
        Workspace.open(tmp_path / "f")


def test_open_leaves_a_running_step_alone(tmp_path: Path) -> None:
    """Opening a workspace while a step of a live process (here: this one) stages its outputs
    must not discard them; a dead owner's staging folder is cleaned up."""
    from navigator.core import step_commit

    ws = Workspace.create(tmp_path / "s")
    with ws.step_commit("demo") as tx:
        tx.stage(ws.root / "a.txt").write_text("a")
        Workspace.open(ws.root)  # e.g. the GUI refreshing while a step runs in a worker thread
        assert (tx.new_root / "a.txt").exists()
        tx.commit({}, inputs=[], outputs=[ws.root / "a.txt"])
    assert (ws.root / "a.txt").read_text() == "a"
    stale = ws.step_commit("other")
    stale.stage(ws.root / "b.txt").write_text("b")
    (stale.folder / step_commit.OWNER_NAME).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    Workspace.open(ws.root)
    assert not (ws.root / step_commit.STAGING_DIR).exists() and not (ws.root / "b.txt").exists()


def test_missing_step_output_makes_the_step_stale(tmp_path: Path, caplog, capsys) -> None:
    """A deleted output (not a source) does not lock the user out: the workspace opens with a
    warning and the step is no longer current, so the next run remakes it."""
    ws = Workspace.create(tmp_path / "s")
    src = ws.path("t1")
    src.parent.mkdir(parents=True)
    src.write_bytes(b"image bytes")
    ws.add_source("T1", src)
    out = ws.root / "targets" / "fiducials.json"
    out.parent.mkdir()
    out.write_text("{}")
    ws.record_step("head-coordinates", {"system": "10-10"}, [src], [out])
    assert Workspace.open(ws.root).step_is_current("head-coordinates", {"system": "10-10"}, [src])
    out.unlink()
    with caplog.at_level("WARNING", logger="navigator"):
        again = Workspace.open(ws.root)
    assert "head-coordinates" in caplog.text and "missing" in caplog.text
    assert not again.step_is_current("head-coordinates", {"system": "10-10"}, [src])
    from navigator.cli import main

    assert main(["workspace", str(ws.root)]) == 0
    assert "head-coordinates: STALE, output missing: targets/fiducials.json" in capsys.readouterr().out
