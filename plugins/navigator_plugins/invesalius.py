"""InVesalius 3 marker file (``.mkss``, version 5).

Layout (FIELD_NOTES): first line ``##INVESALIUS3_MARKER_FILE_5``; then a tab-separated header
row of double-quoted field names and one row per marker (marker_id, x, y, z, alpha, beta,
gamma, r, g, b, size, label, ..., marker_type, ..., x_world, y_world, z_world, alpha_world,
beta_world, gamma_world). Euler angles are degrees, static x-y-z convention
(``R = Rz(gamma) Ry(beta) Rx(alpha)``).

* ``*_world`` columns: the pose in the image's world (scanner RAS mm, the plan's world) with
  navigator's coil axes. navigator reads these back.
* ``x, y, z, alpha, beta, gamma``: InVesalius's internal image space (voxel index x spacing,
  y axis reversed), computed from the plan's image geometry the way InVesalius converts
  its internal markers to world (``world = S @ M_internal`` with S the image affine without
  voxel scaling). For images whose voxel axes are left-handed this space is mirrored and no
  rotation exists; the world values are then repeated there and a warning is logged.
* Coil poses are written as marker_type 3 (coil target), targets as 1 (landmark, no angles).

Precision: positions are written with 17 significant digits (exact); angles are written in
degrees with 17 significant digits, so the rotation is reproduced to ~1e-15 except within
~1e-6 degrees of gimbal lock (beta = +-90 degrees) where it is ~1e-9 (see docs/navigation/invesalius.md).
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.export.conventions import (
    OUR_COIL_AXES_TEXT,
    euler_sxyz_from_matrix,
    fmt,
    matrix_from_euler_sxyz,
)
from navigator.export.plan import CoilPose, ImageInfo, Plan, Target
from navigator.export.registry import Plugin
from navigator.export.vendor_text import number, read_text

log = logging.getLogger(__name__)

FIRST_LINE = "##INVESALIUS3_MARKER_FILE_5"
COLUMNS = [
    "marker_id", "x", "y", "z", "alpha", "beta", "gamma", "r", "g", "b", "size", "label",
    "x_seed", "y_seed", "z_seed", "is_target", "session_id",
    "x_cortex", "y_cortex", "z_cortex", "alpha_cortex", "beta_cortex", "gamma_cortex",
    "marker_type", "z_rotation", "z_offset",
    "x_world", "y_world", "z_world", "alpha_world", "beta_world", "gamma_world",
]
#: InVesalius MarkerType values (invesalius/data/markers/marker.py).
FIDUCIAL, LANDMARK, BRAIN_TARGET, COIL_TARGET, COIL_POSE = 0, 1, 2, 3, 4


def _euler_deg(rot: np.ndarray) -> list[str]:
    return [fmt(math.degrees(a)) for a in euler_sxyz_from_matrix(rot)]


def internal_pose(image: ImageInfo | None, world: np.ndarray) -> tuple[np.ndarray, bool]:
    """(4x4 pose in InVesalius internal space, True if a proper rotation exists there)."""
    if image is None:
        return world.copy(), False
    a = image.affine
    spacing = np.sqrt((a[:3, :3] ** 2).sum(axis=0))
    s = a @ np.diag([*(1.0 / spacing), 1.0])
    m = np.linalg.inv(s) @ world
    m[1, 3] = spacing[1] * (image.shape[1] - 1) - m[1, 3]
    return m, bool(np.linalg.det(s[:3, :3]) > 0)


def _label(name: str) -> str:
    return '"' + name.replace('"', "'").replace("\t", " ").replace("\n", " ") + '"'


def write_mkss(plan: Plan, path: Path, space: str | None = None) -> None:
    rows = [FIRST_LINE, "\t".join(f'"{c}"' for c in COLUMNS)]
    mirrored = False
    items: list[tuple[str, np.ndarray, bool]] = [(p.name, p.matrix, True) for p in plan.coil_poses]
    items += [(t.name, np.vstack([np.column_stack([np.eye(3), t.position]), [0, 0, 0, 1]]), False)
              for t in plan.targets]
    for k, (name, world, has_rot) in enumerate(items):
        internal, proper = internal_pose(plan.image, world)
        if has_rot and not proper:
            internal = world.copy()
            mirrored = True
        if has_rot:
            ang_int, ang_world = _euler_deg(internal[:3, :3]), _euler_deg(world[:3, :3])
        else:
            ang_int = ang_world = ["None"] * 3
        red = (1.0, 0.0, 0.0) if has_rot else (0.0, 1.0, 0.0)
        row = [
            str(k), *(fmt(v) for v in internal[:3, 3]), *ang_int, *(fmt(c) for c in red), "2.0", _label(name),
            "0.0", "0.0", "0.0", "False", "1",
            *(["None"] * 6),
            str(COIL_TARGET if has_rot else LANDMARK), "0.0", "0.0",
            *(fmt(v) for v in world[:3, 3]), *ang_world,
        ]
        rows.append("\t".join(row))
    if mirrored:
        log.warning("%s: the image's voxel axes are left-handed; InVesalius internal angles repeat the world "
                    "angles - check the markers in InVesalius before use", path)
    atomic_write_text(path, "\n".join(rows) + "\n")


def _f(v: str, path: Path, what: str) -> float | None:
    return number(v, path, what)


def read_mkss(path: Path) -> Plan:
    text = read_text(path)
    first, _, rest = text.partition("\n")
    first = first.strip()
    if not first.upper().startswith("##INVESALIUS3_MARKER_FILE_"):
        raise InputError(path, "not an InVesalius marker file (first line is not ##INVESALIUS3_MARKER_FILE_n)")
    reader = csv.reader(io.StringIO(rest), delimiter="\t", quotechar='"')
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(path, "no header row") from None
    idx = {c.strip().casefold(): i for i, c in enumerate(header)}
    for c in ("x_world", "y_world", "z_world", "label"):
        if c not in idx:
            raise InputError(path, f"no {c!r} column (navigator reads the world columns)")
    targets, poses = [], []
    fiducials = 0
    for k, row in enumerate(reader):
        if not row:
            continue
        what = f"marker row {k + 1}"
        def get(c: str, row: list[str] = row) -> str:
            return row[idx[c]].strip() if c in idx and idx[c] < len(row) else ""

        name = get("label") or f"marker-{k}"
        pos = [_f(get(c), path, what) for c in ("x_world", "y_world", "z_world")]
        ang = [_f(get(c), path, what) for c in ("alpha_world", "beta_world", "gamma_world")]
        if any(v is None for v in pos):
            raise InputError(path, f"{what} ({name}): world position missing")
        mtype = _f(get("marker_type"), path, what)
        if mtype is not None and int(mtype) == FIDUCIAL:
            fiducials += 1  # registration points (LEI, REI, NAI), not stimulation targets
            continue
        if mtype is not None and int(mtype) in (COIL_TARGET, COIL_POSE) and all(a is not None for a in ang):
            m = np.eye(4)
            m[:3, :3] = matrix_from_euler_sxyz(*(math.radians(a) for a in ang))
            m[:3, 3] = pos
            poses.append(CoilPose(name, m))
        else:
            targets.append(Target(name, np.array(pos, float)))
    notes = f"imported from InVesalius ({first[2:]})"
    if fiducials:
        notes += f"; {fiducials} fiducial(s) (registration points) left out"
    return Plan(name=path.stem, targets=targets, coil_poses=poses, notes=notes)


PLUGIN = Plugin(
    name="invesalius",
    kind="exporter",
    description="InVesalius 3 marker file (.mkss version 5; Euler angles sxyz, degrees)",
    extensions=(".mkss",),
    coordinate_space="ras",
    coil_axes=OUR_COIL_AXES_TEXT,
    carries=("targets", "coil_poses"),
    write=write_mkss,
    read=read_mkss,
    sniff=lambda path, head: head.lstrip("\ufeff").upper().startswith("##INVESALIUS3_MARKER_FILE_"),
)
