"""3D Slicer markups: ``.mrk.json`` (markups schema v1.0.3) and legacy ``.fcsv``.

``.mrk.json``: ``{"@schema": ..., "markups": [{"type": "Fiducial", "name", "coordinateSystem":
"LPS"|"RAS", "coordinateUnits": "mm", "controlPoints": [{"label", "position", "orientation"}]}]}``.
``orientation`` is a row-major 3x3 whose columns are the point's axes
(``[o[0], o[3], o[6]]`` = x axis). navigator writes two point lists, "navigator targets" and
"navigator coil poses"; a pose's orientation columns are navigator's coil axes (z into the head,
y handle) expressed in the file's coordinate system (LPS by default, as Slicer writes).

``.fcsv``: ``# Markups fiducial file version = 4.11``, ``# CoordinateSystem = LPS|RAS``,
``# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID``; the orientation
is angle (degrees) and axis (``ow`` = angle, ``ox, oy, oz`` = unit axis), as vtkTransform's
WXYZ. ``desc`` is "coil pose" or "target" so a round trip tells them apart.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.export.common import provenance
from navigator.export.conventions import (
    OUR_COIL_AXES_TEXT,
    fmt,
    point_from_space,
    pose_from_space,
    pose_to_space,
)
from navigator.export.plan import CoilPose, Plan, Target
from navigator.export.registry import Plugin
from navigator.export.vendor_text import enum_is, enum_key, key_get, number, read_text

SCHEMA = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
          "Resources/Schema/markups-schema-v1.0.3.json#")
TARGETS_LIST = "navigator targets"
POSES_LIST = "navigator coil poses"


def _target_pose(position: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = position
    return m


def _points(plan: Plan, space: str) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """(targets, poses) as (label, 4x4 in ``space``); a target's rotation is identity in RAS."""
    targets = [(t.name, pose_to_space(_target_pose(t.position), space)) for t in plan.targets]
    poses = [(p.name, pose_to_space(p.matrix, space)) for p in plan.coil_poses]
    return targets, poses


# --------------------------------------------------------------------------- mrk.json
def write_mrk_json(plan: Plan, path: Path, space: str) -> None:
    targets, poses = _points(plan, space)

    def cps(items: list[tuple[str, np.ndarray]], desc: str) -> list[dict]:
        return [
            {"id": str(i + 1), "label": name, "description": desc, "associatedNodeID": "",
             "position": m[:3, 3].tolist(), "orientation": m[:3, :3].reshape(-1).tolist(),
             "selected": True, "locked": True, "visibility": True, "positionStatus": "defined"}
            for i, (name, m) in enumerate(items)
        ]

    markups = []
    for list_name, items, desc in ((TARGETS_LIST, targets, "target"), (POSES_LIST, poses, "coil pose")):
        if items:
            markups.append({"type": "Fiducial", "name": list_name, "coordinateSystem": space.upper(),
                            "coordinateUnits": "mm", "locked": True, "labelFormat": "%N-%d",
                            "controlPoints": cps(items, desc)})
    doc = {"@schema": SCHEMA, "markups": markups,
           "navigator": provenance(plan, f"{space.upper()} (world of the plan image)", OUR_COIL_AXES_TEXT)}
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def _markups_space(value, path: Path) -> str:
    if value is None or str(value).strip() == "":
        return "lps"
    if enum_is(value, "LPS", "RAS"):
        return enum_key(value)
    if str(value).strip() in ("0", "1"):  # vtkMRMLStorageNode: 0 = RAS, 1 = LPS
        return "ras" if str(value).strip() == "0" else "lps"
    raise InputError(path, f"unsupported coordinateSystem {value!r} (LPS or RAS)")


def read_mrk_json(path: Path) -> Plan:
    """Point lists of a Slicer markups JSON: oriented points of "navigator coil poses" (or with
    description "coil pose") become coil poses, the others targets; undefined points are skipped."""
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    markups = key_get(doc, "markups")
    if not isinstance(markups, list):
        raise InputError(path, "not a Slicer markups file (no 'markups' list)")
    targets, poses = [], []
    for mk in markups:
        space = _markups_space(key_get(mk, "coordinateSystem"), path)
        units = key_get(mk, "coordinateUnits", default="mm")
        if not (enum_is(units, "mm", "millimeter", "millimetre")
                or (isinstance(units, list) and units and enum_is(units[0], "mm"))):
            raise InputError(path, f"unsupported coordinateUnits {units!r} (mm)")
        is_pose_list = str(key_get(mk, "name", default="")).strip() == POSES_LIST
        for k, cp in enumerate(key_get(mk, "controlPoints", default=[]) or []):
            name = str(key_get(cp, "label") or f"F-{k + 1}")
            status = key_get(cp, "positionStatus", default="defined")
            position = key_get(cp, "position")
            if position is None or not enum_is(status, "defined", "preview"):
                continue
            pos = np.array([number(v, path, f"point {name!r} position") for v in position], dtype=float)
            if pos.shape != (3,):
                raise InputError(path, f"point {name!r}: position must be 3 numbers")
            if is_pose_list or enum_is(key_get(cp, "description", default=""), "coil pose"):
                o = key_get(cp, "orientation")
                if o is None or len(o) != 9:
                    raise InputError(path, f"coil pose {name!r} has no 3x3 orientation")
                m = np.eye(4)
                m[:3, :3] = np.array([number(v, path, f"coil pose {name!r} orientation") for v in o],
                                     dtype=float).reshape(3, 3)
                m[:3, 3] = pos
                poses.append(CoilPose(name, pose_from_space(m, space)))
            else:
                targets.append(Target(name, point_from_space(pos, space)))
    return Plan(name=path.name.split(".")[0], targets=targets, coil_poses=poses,
                notes="imported from 3D Slicer markups JSON")


# --------------------------------------------------------------------------- fcsv
def _wxyz(rot: np.ndarray) -> tuple[float, float, float, float]:
    rv = Rotation.from_matrix(rot).as_rotvec()
    angle = float(np.linalg.norm(rv))
    if angle < 1e-300:
        return 0.0, 0.0, 0.0, 1.0
    axis = rv / angle
    if abs(angle - math.pi) < 1e-12:
        # 180 degrees about a and about -a are the same rotation: make the first nonzero component positive
        first = axis[np.argmax(np.abs(axis) > 1e-12)]
        axis = axis if first > 0 else -axis
    return math.degrees(angle), float(axis[0]), float(axis[1]), float(axis[2])


def _from_wxyz(w: float, x: float, y: float, z: float) -> np.ndarray:
    axis = np.array([x, y, z], float)
    n = np.linalg.norm(axis)
    if n == 0 or w == 0:
        return np.eye(3)
    return Rotation.from_rotvec(axis / n * math.radians(w)).as_matrix()


def write_fcsv(plan: Plan, path: Path, space: str) -> None:
    targets, poses = _points(plan, space)
    buf = io.StringIO()
    buf.write("# Markups fiducial file version = 4.11\n")
    buf.write(f"# CoordinateSystem = {space.upper()}\n")
    buf.write("# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\n")
    buf.write("# " + provenance(plan, f"{space.upper()} (world of the plan image)", OUR_COIL_AXES_TEXT)
              .replace("\n", " ") + "\n")
    w = csv.writer(buf, lineterminator="\n")
    n = 0
    for items, desc in ((poses, "coil pose"), (targets, "target")):
        for name, m in items:
            n += 1
            ow, ox, oy, oz = _wxyz(m[:3, :3]) if desc == "coil pose" else (0.0, 0.0, 0.0, 1.0)
            w.writerow([f"vtkMRMLMarkupsFiducialNode_{n}", *(fmt(v) for v in m[:3, 3]),
                        fmt(ow), fmt(ox), fmt(oy), fmt(oz), 1, 1, 1, name, desc, ""])
    atomic_write_text(path, buf.getvalue())


def read_fcsv(path: Path) -> Plan:
    text = read_text(path)
    space = "lps"
    columns = ["id", "x", "y", "z", "ow", "ox", "oy", "oz", "vis", "sel", "lock", "label", "desc", "associatedNodeID"]
    data_lines = []
    saw_header = False
    for line in text.splitlines():
        if line.startswith("#"):
            body = line[1:].strip()
            low = body.casefold()
            if low.startswith("markups fiducial file version"):
                saw_header = True
            elif low.startswith("coordinatesystem"):
                space = _markups_space(body.split("=", 1)[1].strip() if "=" in body else "", path)
            elif low.startswith("columns"):
                columns = [c.strip() for c in body.split("=", 1)[1].split(",")]
            continue
        if line.strip():
            data_lines.append(line)
    if not saw_header:
        raise InputError(path, "not a Slicer .fcsv file (no '# Markups fiducial file version' line)")
    idx = {c: i for i, c in enumerate(columns)}
    targets, poses = [], []
    for k, row in enumerate(csv.reader(data_lines)):
        try:
            pos = np.array([float(row[idx[c]]) for c in ("x", "y", "z")])
            if not np.all(np.isfinite(pos)):
                raise ValueError("position is not 3 finite numbers")
            name = row[idx["label"]] if "label" in idx else f"F-{k + 1}"
            desc = row[idx["desc"]] if "desc" in idx and idx["desc"] < len(row) else ""
            if enum_is(desc, "coil pose"):
                m = np.eye(4)
                m[:3, :3] = _from_wxyz(*(float(row[idx[c]]) for c in ("ow", "ox", "oy", "oz")))
                m[:3, 3] = pos
                poses.append(CoilPose(name, pose_from_space(m, space)))
            else:
                targets.append(Target(name, point_from_space(pos, space)))
        except (KeyError, IndexError, ValueError) as exc:
            raise InputError(path, f"row {k + 1}: malformed ({exc})") from None
    return Plan(name=path.stem, targets=targets, coil_poses=poses, notes="imported from 3D Slicer .fcsv")


PLUGIN = Plugin(
    name="slicer",
    kind="exporter",
    description="3D Slicer markups JSON (.mrk.json; targets and oriented coil poses)",
    extensions=(".mrk.json",),
    coordinate_space="lps",
    spaces=("lps", "ras"),
    coil_axes=OUR_COIL_AXES_TEXT + " (orientation matrix columns)",
    carries=("targets", "coil_poses"),
    write=write_mrk_json,
    read=read_mrk_json,
    sniff=lambda path, head: '"markups"' in head and "@schema" in head,
)

FCSV_PLUGIN = Plugin(
    name="slicer-fcsv",
    kind="exporter",
    description="3D Slicer legacy fiducial list (.fcsv; orientation as angle-axis)",
    extensions=(".fcsv",),
    coordinate_space="lps",
    spaces=("lps", "ras"),
    coil_axes=OUR_COIL_AXES_TEXT + " (angle-axis of the orientation)",
    carries=("targets", "coil_poses"),
    write=write_fcsv,
    read=read_fcsv,
    sniff=lambda path, head: head.lstrip("\ufeff").casefold().startswith("# markups fiducial file version"),
)
