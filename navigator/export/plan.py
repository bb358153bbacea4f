"""The stimulation plan (``plan.json``) that every exporter reads and every importer returns.

All coordinates are **subject scanner RAS in millimetres** (the world of the T1 the plan was
made on, ``image.affine``) and every coil pose uses **navigator's coil axes** (z into the head,
y handle, x = y cross z; see :mod:`navigator.export.conventions`). The file layout is
documented in ``docs/plan-format.md``; :data:`PLAN_SCHEMA_VERSION` is bumped on any
incompatible change and older files are read, newer ones refused.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator import __version__
from navigator.core.atomic import atomic_write_json, sha256_file
from navigator.core.errors import InputError, NavigatorError
from navigator.export.conventions import OUR_COIL_AXES, is_rigid_pose
from navigator.export.rigid import POSE_TOLERANCE, NotRigid, PoseCorrection, rigidify, summarize_corrections

PLAN_SCHEMA_VERSION = 1
PLAN_KIND = "navigator-plan"


def _vec(v: Any, n: int, what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(-1)
    if a.shape != (n,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be {n} finite numbers")
    return a


def _mat(v: Any, shape: tuple[int, int], what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise ValueError(f"{what} must be a {shape[0]}x{shape[1]} matrix of finite numbers")
    return a


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _canonical(value: Any, spelling: str) -> str:
    """``spelling`` if ``value`` is the same word in another case, else ``value`` as text."""
    text = str(value).strip()
    return spelling if text.casefold() == spelling.casefold() else text


# --------------------------------------------------------------------------- records
@dataclass
class ImageInfo:
    """The image a plan was made on: its identity and its voxel -> world geometry.

    Attributes:
        path: file the plan was made on (as given at planning time).
        sha256: hex SHA-256 of that file's bytes.
        shape: voxel grid (X, Y, Z).
        affine: 4x4 voxel -> world (mm) used by navigator (nibabel's choice: sform if coded, else qform).
        sform, qform: 4x4 header matrices (None when the code is 0).
        sform_code, qform_code: NIfTI codes.
        quatern: NIfTI quatern_b, quatern_c, quatern_d.
        qoffset: NIfTI qoffset_x, _y, _z (mm).
        pixdim: NIfTI pixdim[0:4] (qfac, dx, dy, dz in mm).
    """

    path: str
    sha256: str
    shape: tuple[int, int, int]
    affine: np.ndarray
    sform: np.ndarray | None = None
    qform: np.ndarray | None = None
    sform_code: int = 0
    qform_code: int = 0
    quatern: tuple[float, float, float] = (0.0, 0.0, 0.0)
    qoffset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pixdim: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        self.affine = _mat(self.affine, (4, 4), "image affine")
        self.sform = None if self.sform is None else _mat(self.sform, (4, 4), "image sform")
        self.qform = None if self.qform is None else _mat(self.qform, (4, 4), "image qform")
        self.shape = tuple(int(s) for s in self.shape)  # type: ignore[assignment]
        self.quatern = tuple(float(q) for q in self.quatern)  # type: ignore[assignment]
        self.qoffset = tuple(float(q) for q in self.qoffset)  # type: ignore[assignment]
        self.pixdim = tuple(float(q) for q in self.pixdim)  # type: ignore[assignment]

    @classmethod
    def from_nifti(cls, path: str | Path) -> ImageInfo:
        """Read identity and geometry of a NIfTI file (header only; the voxels are not loaded)."""
        import nibabel as nib

        path = Path(path)
        try:
            img = nib.load(str(path))
        except Exception as exc:  # noqa: BLE001 - nibabel raises many types
            raise InputError(path, f"cannot read NIfTI header ({exc})") from None
        hdr = img.header
        if not hasattr(hdr, "get_qform"):
            raise InputError(path, "not a NIfTI image (no qform/sform)")
        sform, scode = hdr.get_sform(coded=True)
        qform, qcode = hdr.get_qform(coded=True)
        pix = hdr["pixdim"]
        return cls(
            path=str(path),
            sha256=sha256_file(path),
            shape=tuple(int(s) for s in img.shape[:3]),  # type: ignore[arg-type]
            affine=np.asarray(img.affine, dtype=np.float64),
            sform=None if sform is None else np.asarray(sform, dtype=np.float64),
            qform=None if qform is None else np.asarray(qform, dtype=np.float64),
            sform_code=int(scode),
            qform_code=int(qcode),
            quatern=(float(hdr["quatern_b"]), float(hdr["quatern_c"]), float(hdr["quatern_d"])),
            qoffset=(float(hdr["qoffset_x"]), float(hdr["qoffset_y"]), float(hdr["qoffset_z"])),
            pixdim=(float(pix[0]), float(pix[1]), float(pix[2]), float(pix[3])),
        )

    def qform_world_from_plan_world(self) -> np.ndarray:
        """4x4 mapping plan world (``affine``) -> the qform's world (what NIfTI:Q navigators use).

        Identity when sform and qform agree (or there is no qform).
        """
        if self.qform is None:
            return np.eye(4)
        return self.qform @ np.linalg.inv(self.affine)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "shape": list(self.shape),
            "affine": self.affine.tolist(),
            "sform": None if self.sform is None else self.sform.tolist(),
            "sform_code": self.sform_code,
            "qform": None if self.qform is None else self.qform.tolist(),
            "qform_code": self.qform_code,
            "quatern": list(self.quatern),
            "qoffset": list(self.qoffset),
            "pixdim": list(self.pixdim),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ImageInfo:
        return cls(
            path=str(d["path"]),
            sha256=str(d["sha256"]),
            shape=tuple(d["shape"]),  # type: ignore[arg-type]
            affine=d["affine"],
            sform=d.get("sform"),
            qform=d.get("qform"),
            sform_code=int(d.get("sform_code", 0)),
            qform_code=int(d.get("qform_code", 0)),
            quatern=tuple(d.get("quatern", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
            qoffset=tuple(d.get("qoffset", (0.0, 0.0, 0.0))),  # type: ignore[arg-type]
            pixdim=tuple(d.get("pixdim", (1.0, 1.0, 1.0, 1.0))),  # type: ignore[arg-type]
        )


@dataclass
class Target:
    """A point to stimulate, subject RAS mm.

    Attributes:
        name: unique within the plan.
        position: (3,) cortical target, mm.
        entry: (3,) optional scalp entry point, mm (Localite EntryTarget pairs need it).
        direction: (3,) optional preferred current direction (unit vector, RAS).
    """

    name: str
    position: np.ndarray
    entry: np.ndarray | None = None
    direction: np.ndarray | None = None
    description: str = ""

    def __post_init__(self) -> None:
        self.position = _vec(self.position, 3, f"target {self.name!r} position")
        self.entry = None if self.entry is None else _vec(self.entry, 3, f"target {self.name!r} entry")
        self.direction = None if self.direction is None else _vec(self.direction, 3, f"target {self.name!r} direction")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "position": self.position.tolist(),
            "entry": None if self.entry is None else self.entry.tolist(),
            "direction": None if self.direction is None else self.direction.tolist(),
            "description": self.description,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Target:
        return cls(str(d["name"]), d["position"], d.get("entry"), d.get("direction"), str(d.get("description", "")))


@dataclass
class CoilPose:
    """A planned coil placement.

    Attributes:
        name: unique within the plan.
        matrix: 4x4 pose, columns [x y z centre] in subject RAS mm, navigator coil axes.
        target: name of the :class:`Target` it aims at, if any.
        coil: coil model name (e.g. "Magstim_D70"), if known.
        didt: planned dI/dt in A/s, if set.
        mso: planned stimulator output in % of maximum, if set.
    """

    name: str
    matrix: np.ndarray
    target: str | None = None
    coil: str | None = None
    didt: float | None = None
    mso: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        self.matrix = _mat(self.matrix, (4, 4), f"coil pose {self.name!r}")
        self.didt = _opt_float(self.didt)
        self.mso = _opt_float(self.mso)

    @property
    def centre(self) -> np.ndarray:
        return self.matrix[:3, 3].copy()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "matrix": self.matrix.tolist(),
            "target": self.target,
            "coil": self.coil,
            "didt": self.didt,
            "mso": self.mso,
            "description": self.description,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CoilPose:
        return cls(
            str(d["name"]), d["matrix"], d.get("target"), d.get("coil"), d.get("didt"), d.get("mso"),
            str(d.get("description", "")),
        )


@dataclass
class Electrode:
    """One tES electrode: centre (RAS mm), current (mA, positive = anode), shape and size (mm).

    Optional: ``channel`` (1, 2, ...: the stimulator channel of a multi-channel montage such as
    temporal interference; currents sum to zero per channel), ``frequency_hz`` (that channel's
    carrier frequency), ``y_axis`` (unit RAS vector along the pad's second size, for rotated pads).
    They are written only when set.
    """

    name: str
    position: np.ndarray
    current_ma: float
    shape: str = "ellipse"
    size_mm: tuple[float, float] = (10.0, 10.0)
    channel: int | None = None
    frequency_hz: float | None = None
    y_axis: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.position = _vec(self.position, 3, f"electrode {self.name!r} position")
        self.current_ma = float(self.current_ma)
        self.size_mm = tuple(float(s) for s in self.size_mm)  # type: ignore[assignment]
        self.channel = None if self.channel is None else int(self.channel)
        self.frequency_hz = _opt_float(self.frequency_hz)
        self.y_axis = None if self.y_axis is None else _vec(self.y_axis, 3, f"electrode {self.name!r} y_axis")

    def to_json(self) -> dict[str, Any]:
        d = {"name": self.name, "position": self.position.tolist(), "current_ma": self.current_ma,
             "shape": self.shape, "size_mm": list(self.size_mm)}
        if self.channel is not None:
            d["channel"] = self.channel
        if self.frequency_hz is not None:
            d["frequency_hz"] = self.frequency_hz
        if self.y_axis is not None:
            d["y_axis"] = self.y_axis.tolist()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Electrode:
        return cls(str(d["name"]), d["position"], d["current_ma"], str(d.get("shape", "ellipse")),
                   tuple(d.get("size_mm", (10.0, 10.0))), d.get("channel"), d.get("frequency_hz"),  # type: ignore[arg-type]
                   d.get("y_axis"))


@dataclass
class Montage:
    """A tDCS electrode montage; currents should sum to zero."""

    name: str
    electrodes: list[Electrode] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "electrodes": [e.to_json() for e in self.electrodes]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Montage:
        return cls(str(d["name"]), [Electrode.from_json(e) for e in d.get("electrodes", [])])


@dataclass
class Plan:
    """Targets, coil poses and montages for one subject, in subject RAS mm (see module docstring)."""

    name: str
    subject: str | None = None
    image: ImageInfo | None = None
    targets: list[Target] = field(default_factory=list)
    coil_poses: list[CoilPose] = field(default_factory=list)
    montages: list[Montage] = field(default_factory=list)
    coordinate_system: str = "RAS"
    coil_axes: str = OUR_COIL_AXES
    created: str = ""
    software_version: str = __version__
    notes: str = ""
    source: str | None = None  # where an imported plan came from (file and format)
    #: poses re-orthonormalized on import (rounded rotations; see navigator.export.rigid)
    pose_corrections: list[PoseCorrection] = field(default_factory=list)

    def target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "kind": PLAN_KIND,
            "name": self.name,
            "subject": self.subject,
            "coordinate_system": self.coordinate_system,
            "units": "mm",
            "coil_axes": self.coil_axes,
            "created": self.created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "software_version": self.software_version,
            "notes": self.notes,
            "source": self.source,
            "pose_corrections": [c.to_json() for c in self.pose_corrections],
            "image": None if self.image is None else self.image.to_json(),
            "targets": [t.to_json() for t in self.targets],
            "coil_poses": [p.to_json() for p in self.coil_poses],
            "montages": [m.to_json() for m in self.montages],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        return cls(
            name=str(d.get("name", "plan")),
            subject=d.get("subject"),
            image=None if d.get("image") is None else ImageInfo.from_json(d["image"]),
            targets=[Target.from_json(t) for t in d.get("targets", [])],
            coil_poses=[CoilPose.from_json(p) for p in d.get("coil_poses", [])],
            montages=[Montage.from_json(m) for m in d.get("montages", [])],
            coordinate_system=_canonical(d.get("coordinate_system", "RAS"), "RAS"),
            coil_axes=_canonical(d.get("coil_axes", OUR_COIL_AXES), OUR_COIL_AXES),
            created=str(d.get("created", "")),
            software_version=str(d.get("software_version", "")),
            notes=str(d.get("notes", "")),
            source=d.get("source"),
            pose_corrections=[PoseCorrection.from_json(c) for c in d.get("pose_corrections") or []],
        )


# --------------------------------------------------------------------------- validation / IO
def validate_plan(plan: Plan, path: str | Path | None = None) -> None:
    """Raise :class:`InputError` naming ``path`` if the plan is inconsistent.

    Checks: RAS coordinates with navigator coil axes, unique names, every pose rigid
    (orthonormal, right-handed rotation within 1e-6, last row 0 0 0 1), referenced targets
    exist, finite non-negative intensities.
    """

    def bad(problem: str) -> InputError:
        return InputError(path, problem) if path is not None else InputError(None, f"plan {plan.name!r}: {problem}")

    if plan.coordinate_system != "RAS":
        raise bad(f"coordinate_system must be 'RAS' (subject scanner RAS mm), got {plan.coordinate_system!r}")
    if plan.coil_axes != OUR_COIL_AXES:
        raise bad(f"coil_axes must be {OUR_COIL_AXES!r}, got {plan.coil_axes!r}")
    for kind, items in (("target", plan.targets), ("coil pose", plan.coil_poses), ("montage", plan.montages)):
        names = [i.name for i in items]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise bad(f"duplicate {kind} name(s): {', '.join(dup)}")
        if any(not n or not str(n).strip() for n in names):
            raise bad(f"a {kind} has an empty name")
    target_names = {t.name for t in plan.targets}
    for p in plan.coil_poses:
        if not is_rigid_pose(p.matrix):
            try:
                rigidify(p.matrix)
                why = "its rotation is not orthonormal to 1e-6 (import it with import-plan to re-orthonormalize)"
            except NotRigid as exc:
                why = str(exc)
            raise bad(f"coil pose {p.name!r} is not a rigid pose: {why}")
        if p.target is not None and p.target not in target_names:
            raise bad(f"coil pose {p.name!r} refers to unknown target {p.target!r}")
        for what, v in (("didt", p.didt), ("mso", p.mso)):
            if v is not None and (not math.isfinite(v) or v < 0):
                raise bad(f"coil pose {p.name!r}: {what} must be a non-negative number, got {v}")
        if p.mso is not None and p.mso > 100:
            raise bad(f"coil pose {p.name!r}: mso {p.mso} exceeds 100 %")
    for t in plan.targets:
        if t.direction is not None and abs(np.linalg.norm(t.direction) - 1.0) > 1e-6:
            raise bad(f"target {t.name!r}: direction must be a unit vector")


def rigidify_plan(plan: Plan, path: str | Path | None = None) -> list[PoseCorrection]:
    """Apply the pose rule (:mod:`navigator.export.rigid`) to every coil pose of a plan read from a file.

    Rounded rotations are replaced by their polar factor (and rounded target directions
    renormalized, under the same tolerance); each pose change is appended to
    ``plan.pose_corrections`` and summarized in ``plan.notes``. Raises :class:`InputError`
    naming ``path`` and the pose for a matrix that is not a rigid pose (shear, scaling, reflection).
    Returns the corrections made by this call.
    """
    made: list[PoseCorrection] = []
    for p in plan.coil_poses:
        try:
            rp = rigidify(p.matrix)
        except NotRigid as exc:
            raise InputError(path, f"coil pose {p.name!r} is not a rigid pose: {exc}") from None
        p.matrix = rp.matrix
        if rp.corrected:
            made.append(PoseCorrection(p.name, rp.orthonormality_error, rp.correction_deg))
    for t in plan.targets:  # a rounded current direction is renormalized under the same tolerance
        if t.direction is not None:
            n = float(np.linalg.norm(t.direction))
            if abs(n - 1.0) > POSE_TOLERANCE:
                raise InputError(path, f"target {t.name!r}: direction must be a unit vector (length {n:.4g})")
            t.direction = t.direction / n
    if made:
        plan.pose_corrections.extend(made)
        line = summarize_corrections(made, len(plan.coil_poses))
        plan.notes = f"{plan.notes}; {line}" if plan.notes else line
    return made


def plan_from_json(d: Any, path: str | Path | None = None) -> Plan:
    """Build and validate a :class:`Plan` from parsed JSON (checks kind and schema version)."""
    where = path if path is not None else None
    if not isinstance(d, dict):
        raise InputError(where, "plan must be a JSON object")
    if d.get("kind", PLAN_KIND) != PLAN_KIND:
        raise InputError(where, f"not a navigator plan (kind {d.get('kind')!r})")
    version = d.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise InputError(where, "plan has no valid integer schema_version")
    if version > PLAN_SCHEMA_VERSION:
        raise InputError(where, f"plan schema version {version} is newer than this navigator understands "
                                f"({PLAN_SCHEMA_VERSION}); upgrade navigator")
    try:
        plan = Plan.from_json(d)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(where, f"malformed plan ({type(exc).__name__}: {exc})") from None
    rigidify_plan(plan, where)
    validate_plan(plan, path)
    return plan


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan.json."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such plan file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"plan is not valid JSON ({exc})") from None
    return plan_from_json(d, path)


def save_plan(plan: Plan, path: str | Path) -> Path:
    """Validate and write ``plan`` to ``path`` atomically (JSON floats are written with repr, exact)."""
    validate_plan(plan)
    if not plan.created:
        plan.created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    atomic_write_json(path, plan.to_json())
    return Path(path)


def ensure_plan(plan: Plan) -> Plan:
    """Raise NavigatorError if ``plan`` has nothing to export."""
    if not plan.targets and not plan.coil_poses and not plan.montages:
        raise NavigatorError(f"plan {plan.name!r} has no targets, coil poses or montages to export")
    return plan
