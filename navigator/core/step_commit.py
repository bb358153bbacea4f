"""All-or-nothing workspace steps: outputs are staged, then committed with their manifest record.

A step writes its outputs into a staging folder inside the subject folder
(``.staging/<id>/new/<relative path>``) instead of over the current files. :meth:`StepCommit.commit`
then

1. writes a journal (``.staging/<id>/journal.json``: the files to install, the files to remove
   and which of them existed before);
2. moves every current file that will be replaced or removed aside into ``.staging/<id>/old/``;
3. moves the staged files into place;
4. writes the manifest (``subject.json``) with the new step record and ``last_commit = <id>``:
   this atomic rename is the commit point;
5. deletes the staging folder.

If anything fails before step 4 completes (an exception, or the process is killed), the commit
is rolled back: in-process at once, or by :func:`recover` the next time the workspace is opened
(``Workspace.open`` calls it). Rolling back puts the moved-aside files back and removes the
newly installed ones, so the workspace holds the previous outputs and the previous record,
never a mix. A staging folder whose id equals the manifest's ``last_commit`` was committed and
is only cleaned up. Staging folders of a process that is still running (``owner.json``: pid and
host; a step in another thread or program) are left alone. One writer per step at a time is
assumed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from navigator.core.atomic import _fsync_dir, atomic_write_json

if TYPE_CHECKING:  # pragma: no cover
    from navigator.core.workspace import StepRecord, Workspace

log = logging.getLogger("navigator")

#: Folder (relative to the subject folder) holding staged outputs of running steps.
STAGING_DIR = ".staging"
JOURNAL_NAME = "journal.json"


@dataclass
class CommitJournal:
    """What a commit changes (paths relative to the subject folder, POSIX separators).

    Attributes:
        id: the commit id (also the staging folder name).
        step: the step being recorded.
        install: staged files moved into place.
        remove: current files deleted by the step (stale outputs).
        existed: those of ``install`` + ``remove`` that existed before the commit.
    """

    id: str
    step: str
    install: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    existed: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "step": self.step, "install": self.install, "remove": self.remove,
                "existed": self.existed}

    @classmethod
    def read(cls, path: Path) -> "CommitJournal | None":
        """The journal at ``path``, or None when it is missing or unreadable (never committed)."""
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(id=str(d["id"]), step=str(d["step"]), install=[str(x) for x in d["install"]],
                       remove=[str(x) for x in d["remove"]], existed=[str(x) for x in d["existed"]])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)


def _walk_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _roll_back(root: Path, folder: Path, journal: CommitJournal) -> None:
    """Undo a partly applied commit: restore moved-aside files, remove newly installed ones."""
    old, new = folder / "old", folder / "new"
    existed = set(journal.existed)
    for rel in journal.install:
        target = root / rel
        if rel in existed:
            if (old / rel).exists():  # moved aside: put it back (over the new file if installed)
                _move(old / rel, target)
        elif not (new / rel).exists() and target.exists():  # the new file was installed: remove it
            target.unlink()
    for rel in journal.remove:
        if rel in existed and (old / rel).exists() and rel not in journal.install:
            _move(old / rel, root / rel)
    _fsync_dir(root)


OWNER_NAME = "owner.json"


def _write_owner(folder: Path) -> None:
    """Record which process stages into ``folder`` (so others leave a running step alone)."""
    atomic_write_json(folder / OWNER_NAME, {"pid": os.getpid(), "host": socket.gethostname()})


def _owner_alive(folder: Path) -> bool:
    """True when the process that created staging folder ``folder`` is still running here."""
    try:
        owner = json.loads((folder / OWNER_NAME).read_text(encoding="utf-8"))
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if host != socket.gethostname():
        return True  # another machine's process (shared folder): cannot tell, do not touch
    if pid == os.getpid():
        return True  # this process: a step running in another thread
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def recover(root: Path, manifest: dict[str, Any]) -> list[str]:
    """Finish or undo interrupted commits in subject folder ``root``; returns what was done.

    ``manifest`` is the manifest as read from disk. Staging folders without a journal (a step
    that never reached its commit) are deleted; journals whose id is the manifest's
    ``last_commit`` were committed (their leftovers are deleted); the others are rolled back.
    """
    staging = Path(root) / STAGING_DIR
    if not staging.is_dir():
        return []
    done = []
    for folder in sorted(p for p in staging.iterdir() if p.is_dir()):
        if _owner_alive(folder):
            continue  # a step still running (another thread or process): not ours to undo
        journal = CommitJournal.read(folder / JOURNAL_NAME)
        if journal is None:
            done.append(f"discarded the unfinished outputs of an interrupted step ({folder.name})")
        elif journal.id == manifest.get("last_commit"):
            done.append(f"cleaned up after the committed step {journal.step!r}")
        else:
            _roll_back(Path(root), folder, journal)
            done.append(f"rolled back the interrupted commit of step {journal.step!r}: previous outputs restored")
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        staging.rmdir()
    for msg in done:
        log.warning("%s: %s", root, msg)
    return done


class StepCommit:
    """Staging area of one step run; use through :meth:`Workspace.step_commit`.

    ``stage(path)`` gives where to write the output that will end up at ``path``;
    ``remove(path)`` marks a current file for deletion at the commit; ``commit(...)`` installs
    the staged files and records the step in one all-or-nothing operation.
    """

    def __init__(self, ws: "Workspace", step: str):
        self.ws = ws
        self.step = step
        self.id = f"{step.replace('/', '_').replace(':', '_')}-{uuid.uuid4().hex[:12]}"
        self.folder = ws.root / STAGING_DIR / self.id
        self.new_root = self.folder / "new"
        self.new_root.mkdir(parents=True)
        _write_owner(self.folder)
        self._remove: list[str] = []
        self.committed = False

    def stage(self, final: str | Path) -> Path:
        """The staging path for the output whose final place is ``final`` (its folder exists)."""
        p = self.new_root / self.ws.relpath(final)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def staged_final(self, staged: str | Path) -> Path:
        """The final workspace path of a path inside the staging area."""
        rel = Path(staged).absolute().relative_to(self.new_root.absolute())
        return self.ws.root / rel

    def remove(self, final: str | Path) -> None:
        """Delete the current file at ``final`` when the step commits (a stale output)."""
        rel = self.ws.relpath(final)
        if (self.ws.root / rel).exists() and rel not in self._remove:
            self._remove.append(rel)

    def commit(self, parameters: dict[str, Any], inputs: list[str | Path], outputs: list[str | Path],
               seconds: float | None = None) -> "StepRecord":
        """Install the staged files and record the step; all or nothing (see the module doc).

        ``outputs`` are the final paths (staged ones are mapped back); outputs that were not
        staged must already be in the workspace (kept unchanged).
        """
        if self.committed:
            raise RuntimeError(f"step {self.step!r} already committed")
        ws = self.ws
        outs = []
        for p in outputs:
            p = Path(p)
            try:
                p = self.staged_final(p)
            except ValueError:
                pass
            outs.append(p)
        missing = [p for p in outs if not (self.new_root / ws.relpath(p)).exists() and not p.exists()]
        if missing:  # recording it would leave a manifest naming a file that is not there
            raise FileNotFoundError(f"step {self.step!r}: output {missing[0]} was neither staged nor present")
        record = ws._make_record(self.step, parameters, inputs, outs, seconds, staged=self.new_root)
        install = _walk_files(self.new_root)
        remove = [r for r in self._remove if r not in install]
        journal = CommitJournal(id=self.id, step=self.step, install=install, remove=remove,
                                existed=[r for r in install + remove if (ws.root / r).exists()])
        new_manifest = ws.manifest
        new_manifest["steps"][self.step] = record.to_json()
        new_manifest["last_commit"] = self.id
        atomic_write_json(self.folder / JOURNAL_NAME, journal.to_json())
        try:
            for rel in journal.existed:
                _move(ws.root / rel, self.folder / "old" / rel)
            for rel in install:
                _move(self.new_root / rel, ws.root / rel)
            for folder in sorted({(ws.root / rel).parent for rel in install} | {ws.root}):
                _fsync_dir(folder)  # the renames reach the disk before the manifest names them
            atomic_write_json(ws.manifest_path, new_manifest)  # the commit point
        except BaseException:
            _roll_back(ws.root, self.folder, journal)
            self.discard()
            raise
        ws._manifest = new_manifest
        self.committed = True
        self.discard()
        return record

    def discard(self) -> None:
        """Delete the staging folder (staged outputs of an uncommitted step are dropped)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.folder.parent.rmdir()

    def __enter__(self) -> "StepCommit":
        return self

    def __exit__(self, *exc) -> bool:
        if not self.committed:
            self.discard()
        return False
