"""Subject workspace: one folder per subject with a versioned manifest (``subject.json``).

Layout (paths relative to the subject folder; see ``docs/workspace.md``)::

    subject.json               manifest (this module)
    input/T1.nii.gz            source images as loaded (``input/T2.nii.gz``, ``input/rest.nii.gz``;
                               ``input/INV2.nii.gz``: an MP2RAGE's second inversion when T1 is its UNI)
    labels/labels.nii.gz       tissue labels, SimNIBS numbering
    labels/qc/                 segmentation QC montage (PNG) and metrics (JSON)
    mesh/head.msh              tetrahedral head model, gmsh 2.2
    surfaces/*.surf.gii        scalp, gm, wm, middle_gm (GIFTI, world RAS mm)
    transforms/                subject <-> MNI transforms
    targets/                   fiducials.json, eeg.csv, targets.json
    simulations/NAME/          one folder per simulation (fields.msh, summary.json, ...)
    plans/NAME/plan.json       planned targets, poses and montages
    logs/                      step logs

The manifest records the schema version, subject id, the source images with their SHA-256,
and every completed step with its parameters, the hashes of its inputs and outputs and the
software version, so steps whose inputs and parameters are unchanged can be skipped.
Every write goes through :mod:`navigator.core.atomic` (temp file, then rename).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from navigator import __version__
from navigator.core.atomic import atomic_path, atomic_write_json, sha256_file
from navigator.core.errors import WorkspaceError

log = logging.getLogger("navigator")

if TYPE_CHECKING:  # pragma: no cover
    from navigator.core.step_commit import StepCommit

SCHEMA_VERSION = 1
MANIFEST_NAME = "subject.json"

#: Fixed relative paths of the workspace's well-known files and folders.
LAYOUT: dict[str, str] = {
    "t1": "input/T1.nii.gz",
    "t2": "input/T2.nii.gz",
    "inv2": "input/INV2.nii.gz",
    "rest": "input/rest.nii.gz",
    "labels": "labels/labels.nii.gz",
    "qc": "labels/qc",
    "mesh": "mesh/head.msh",
    "surfaces": "surfaces",
    "scalp": "surfaces/scalp.surf.gii",
    "gm_surface": "surfaces/gm.surf.gii",
    "wm_surface": "surfaces/wm.surf.gii",
    "middle_gm": "surfaces/middle_gm.surf.gii",
    "transforms": "transforms",
    "targets": "targets",
    "fiducials": "targets/fiducials.json",
    "eeg": "targets/eeg.csv",
    "simulations": "simulations",
    "plans": "plans",
    "logs": "logs",
}

_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def parameters_hash(parameters: dict[str, Any], inputs: dict[str, str]) -> str:
    """Stable hash of a step's parameters and input hashes (decides whether a step is current)."""
    blob = json.dumps({"parameters": parameters, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class StepRecord:
    """One completed step in the manifest."""

    name: str
    parameters: dict[str, Any]
    inputs: dict[str, str]  # relative path -> sha256
    outputs: dict[str, str]  # relative path -> sha256
    software_version: str
    completed: str
    key: str  # parameters_hash(parameters, inputs)
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "software_version": self.software_version,
            "completed": self.completed,
            "key": self.key,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, name: str, d: dict[str, Any]) -> "StepRecord":
        return cls(
            name=name,
            parameters=dict(d.get("parameters", {})),
            inputs=dict(d.get("inputs", {})),
            outputs=dict(d.get("outputs", {})),
            software_version=str(d.get("software_version", "")),
            completed=str(d.get("completed", "")),
            key=str(d.get("key", "")),
            seconds=d.get("seconds"),
        )


class Workspace:
    """A subject folder and its manifest. Create with :meth:`create`, open with :meth:`open`."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        # absolute, so paths built from it stay right whatever the working directory
        # (a relative root made relpath() return 'sub-01/labels/...' relative to the cwd)
        self.root = Path(os.path.abspath(root))
        self._manifest = manifest

    # ------------------------------------------------------------------ creation / opening
    @classmethod
    def create(cls, root: str | Path, subject_id: str | None = None, exist_ok: bool = False) -> "Workspace":
        """Create a new, empty workspace folder (or open it if ``exist_ok`` and it exists)."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root}: exists and is not a folder; choose a new workspace folder")
        if (root / MANIFEST_NAME).exists():
            if exist_ok:
                return cls.open(root)
            raise WorkspaceError(f"{root}: a workspace already exists here")
        if root.exists() and any(root.iterdir()):
            raise WorkspaceError(f"{root}: folder is not empty and holds no {MANIFEST_NAME}")
        subject_id = subject_id or root.name
        if not _SUBJECT_ID.match(subject_id):
            raise WorkspaceError(
                f"invalid subject id {subject_id!r}: use letters, digits, '_', '-', '.' (max 128)"
            )
        root.mkdir(parents=True, exist_ok=True)
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "subject_id": subject_id,
            "created": _now(),
            "software": {"name": "navigator", "version": __version__},
            "sources": {},
            "steps": {},
        }
        ws = cls(root, manifest)
        ws.save()
        return ws

    @classmethod
    def open(cls, root: str | Path, verify_hashes: bool = False) -> "Workspace":
        """Open and validate a workspace.

        Checks the manifest's schema and structure and that every file it names exists with
        the recorded size class; with ``verify_hashes`` also re-hashes every file (slow).
        """
        root = Path(root)
        path = root / MANIFEST_NAME
        if root.exists() and not root.is_dir():
            raise WorkspaceError(f"{root}: is a file, not a subject workspace folder")
        if not root.is_dir():
            raise WorkspaceError(f"{root}: no such subject folder")
        if not path.is_file():
            raise WorkspaceError(f"{root}: not a navigator workspace (no {MANIFEST_NAME})")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WorkspaceError(f"{path}: manifest is not valid JSON ({exc})") from None
        cls._validate_manifest(path, manifest)
        from navigator.core.step_commit import recover

        recover(root, manifest)  # undo a step commit interrupted by a crash or kill
        ws = cls(root, manifest)
        ws._check_files(verify_hashes)
        return ws

    @staticmethod
    def _validate_manifest(path: Path, m: Any) -> None:
        if not isinstance(m, dict):
            raise WorkspaceError(f"{path}: manifest must be a JSON object")
        version = m.get("schema_version")
        if not isinstance(version, int):
            raise WorkspaceError(f"{path}: manifest has no integer schema_version")
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"{path}: manifest schema version {version} is newer than this navigator "
                f"({__version__}) understands (version {SCHEMA_VERSION}); upgrade navigator"
            )
        if version < 1:
            raise WorkspaceError(f"{path}: invalid schema_version {version}")
        for key, kind in (("subject_id", str), ("sources", dict), ("steps", dict)):
            if not isinstance(m.get(key), kind):
                raise WorkspaceError(f"{path}: manifest field {key!r} missing or not a {kind.__name__}")
        for role, src in m["sources"].items():
            if not isinstance(src, dict) or "path" not in src or "sha256" not in src:
                raise WorkspaceError(f"{path}: source {role!r} lacks path or sha256")
        for name, step in m["steps"].items():
            if not isinstance(step, dict) or not isinstance(step.get("outputs", {}), dict):
                raise WorkspaceError(f"{path}: step {name!r} is malformed")

    def _check_files(self, verify_hashes: bool) -> None:
        """Sources must exist (they cannot be remade); a missing step output only makes its
        step stale (:meth:`step_is_current` is False), so the next run remakes it: logged."""
        sources = {s["path"] for s in self._manifest["sources"].values()}
        for rel, digest in self._named_files().items():
            p = self.root / rel
            if not p.exists():
                if rel in sources:
                    raise WorkspaceError(f"{p}: file named in {MANIFEST_NAME} is missing")
                step = next(n for n, s in self._manifest["steps"].items() if rel in s.get("outputs", {}))
                log.warning("%s: output of step %r is missing; the step will run again (navigator prepare %s)",
                            p, step, self.root)
                continue
            if verify_hashes and p.is_file() and sha256_file(p) != digest:
                raise WorkspaceError(f"{p}: file changed since it was recorded (sha256 mismatch)")

    def _named_files(self) -> dict[str, str]:
        files = {s["path"]: s["sha256"] for s in self._manifest["sources"].values()}
        for step in self._manifest["steps"].values():
            files.update(step.get("outputs", {}))
        return files

    # ------------------------------------------------------------------ manifest access
    @property
    def subject_id(self) -> str:
        return str(self._manifest["subject_id"])

    @property
    def manifest(self) -> dict[str, Any]:
        """A deep copy of the manifest (edit through the methods, not this)."""
        return json.loads(json.dumps(self._manifest))

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def save(self) -> None:
        """Write the manifest atomically."""
        atomic_write_json(self.manifest_path, self._manifest)

    def path(self, key: str) -> Path:
        """Absolute path of a well-known workspace item (a key of :data:`LAYOUT`)."""
        try:
            return self.root / LAYOUT[key]
        except KeyError:
            raise KeyError(f"unknown workspace item {key!r}; known: {', '.join(LAYOUT)}") from None

    def relpath(self, path: str | Path) -> str:
        """Path relative to the subject folder (POSIX separators).

        Absolute paths must lie inside the workspace. A relative path is taken relative to the
        working directory when that lands inside the workspace (a user's ``sub-01/mesh/x``),
        else relative to the subject folder (``"labels/labels.nii.gz"``).
        """
        p = Path(path)
        if not p.is_absolute() and Path(os.path.abspath(p)).is_relative_to(self.root):
            p = Path(os.path.abspath(p))
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.root.resolve())
            except ValueError:
                raise WorkspaceError(f"{path}: not inside the workspace {self.root}") from None
        return p.as_posix()

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    # ------------------------------------------------------------------ sources
    def add_source(self, role: str, image_path: str | Path, original: str | Path | None = None) -> Path:
        """Record an already-written workspace file as source image ``role`` (e.g. "T1").

        ``image_path`` must lie inside the workspace; ``original`` is where the user's file
        came from (recorded for provenance).
        """
        rel = self.relpath(image_path)
        self._manifest["sources"][role] = {
            "path": rel,
            "sha256": sha256_file(self.root / rel),
            "original": str(original) if original is not None else None,
            "added": _now(),
        }
        self.save()
        return self.root / rel

    def sources(self) -> dict[str, dict[str, Any]]:
        return json.loads(json.dumps(self._manifest["sources"]))

    def source_path(self, role: str) -> Path:
        try:
            return self.root / self._manifest["sources"][role]["path"]
        except KeyError:
            raise WorkspaceError(f"{self.root}: workspace has no {role} image") from None

    # ------------------------------------------------------------------ steps
    def hash_inputs(self, paths: list[str | Path]) -> dict[str, str]:
        """relative path -> sha256 for files inside the workspace."""
        out = {}
        for p in paths:
            rel = self.relpath(p)
            out[rel] = sha256_file(self.root / rel)
        return out

    def step(self, name: str) -> StepRecord | None:
        d = self._manifest["steps"].get(name)
        return None if d is None else StepRecord.from_json(name, d)

    def step_is_current(self, name: str, parameters: dict[str, Any], inputs: list[str | Path]) -> bool:
        """True if step ``name`` completed with these parameters and identical input files,
        and its recorded outputs are still present and unchanged."""
        rec = self.step(name)
        if rec is None:
            return False
        try:
            inputs_h = self.hash_inputs(inputs)
        except FileNotFoundError:
            return False
        if rec.key != parameters_hash(_jsonable(parameters), inputs_h):
            return False
        for rel, digest in rec.outputs.items():
            p = self.root / rel
            if not p.exists() or (p.is_file() and sha256_file(p) != digest):
                return False
        return True

    def record_step(
        self,
        name: str,
        parameters: dict[str, Any],
        inputs: list[str | Path],
        outputs: list[str | Path],
        seconds: float | None = None,
    ) -> StepRecord:
        """Record that step ``name`` completed, hashing its inputs and outputs; saves.

        For steps that replace earlier outputs use :meth:`step_commit`, which installs the
        outputs and writes this record in one all-or-nothing operation.
        """
        rec = self._make_record(name, parameters, inputs, outputs, seconds)
        self._manifest["steps"][name] = rec.to_json()
        self.save()
        return rec

    def step_commit(self, name: str) -> "StepCommit":
        """Start an all-or-nothing run of step ``name`` (use as a context manager).

        Write outputs to ``tx.stage(final_path)``, then call ``tx.commit(parameters, inputs,
        outputs, seconds)``; leaving the block without committing discards the staged files.
        See :mod:`navigator.core.step_commit`.
        """
        from navigator.core.step_commit import StepCommit

        return StepCommit(self, name)

    def _make_record(self, name: str, parameters: dict[str, Any], inputs: list[str | Path],
                     outputs: list[str | Path], seconds: float | None,
                     staged: Path | None = None) -> StepRecord:
        """A StepRecord hashing ``inputs`` and ``outputs`` (read from ``staged`` when staged there)."""
        params = _jsonable(parameters)
        inputs_h = self.hash_inputs(inputs)
        outputs_h = {}
        for p in outputs:
            rel = self.relpath(p)
            full = self.root / rel
            if staged is not None and (staged / rel).exists():
                full = staged / rel
            outputs_h[rel] = sha256_file(full) if full.is_file() else "directory"
        return StepRecord(
            name=name,
            parameters=params,
            inputs=inputs_h,
            outputs=outputs_h,
            software_version=__version__,
            completed=_now(),
            key=parameters_hash(params, inputs_h),
            seconds=seconds,
        )

    def forget_step(self, name: str) -> None:
        self._manifest["steps"].pop(name, None)
        self.save()

    def steps(self) -> dict[str, StepRecord]:
        return {n: StepRecord.from_json(n, d) for n, d in self._manifest["steps"].items()}

    # ------------------------------------------------------------------ file helpers
    def write_file_from(self, key_or_rel: str, src: str | Path) -> Path:
        """Copy ``src`` into the workspace atomically at a layout key or relative path."""
        dest = self.path(key_or_rel) if key_or_rel in LAYOUT else self.root / key_or_rel
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        return dest


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON so recorded parameters compare equal to re-read ones."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))
