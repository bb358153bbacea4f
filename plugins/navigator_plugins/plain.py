"""Plain CSV and JSON exports that state their coordinate system and coil-axis convention.

CSV: ``#`` comment lines naming the coordinate system, units, coil axes, subject and image
(with sha256), then a header row
``kind,name,x,y,z,r00,r01,r02,r10,r11,r12,r20,r21,r22,target,coil,didt_A_per_s,mso_percent,
entry_x,entry_y,entry_z,dir_x,dir_y,dir_z`` and one row per coil pose (``kind=coil_pose``;
``rIJ`` = row I, column J of the rotation, columns are the coil axes) or target
(``kind=target``; rotation cells empty).

JSON: ``{"format": "navigator-points", "format_version": 1, "coordinate_system": "RAS"|"LPS",
"units": "mm", "coil_axes": ..., "subject", "image": {"path", "sha256"}, "targets": [...],
"coil_poses": [{"name", "matrix" (4x4 rows), ...}], "montages": [...]}``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from navigator import __version__
from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.export.conventions import (
    OUR_COIL_AXES,
    OUR_COIL_AXES_TEXT,
    fmt,
    point_from_space,
    point_to_space,
    pose_from_space,
    pose_to_space,
)
from navigator.export.plan import CoilPose, Electrode, Montage, Plan, Target
from navigator.export.registry import Plugin
from navigator.export.vendor_text import enum_is, enum_key, read_text

ROT = [f"r{i}{j}" for i in range(3) for j in range(3)]
CSV_COLUMNS = ["kind", "name", "x", "y", "z", *ROT, "target", "coil", "didt_A_per_s", "mso_percent",
               "entry_x", "entry_y", "entry_z", "dir_x", "dir_y", "dir_z"]


def _dir_to_space(d: np.ndarray, space: str) -> np.ndarray:
    return point_to_space(d, space)  # directions flip like points (no translation involved)


def _opt(v) -> str:
    return "" if v is None else fmt(v)


def write_csv(plan: Plan, path: Path, space: str) -> None:
    buf = io.StringIO()
    img = plan.image
    buf.write(f"# navigator {__version__} plan export: {plan.name}\n")
    buf.write(f"# coordinate_system: {space.upper()} (subject scanner world of the plan image; LPS = RAS with x, y negated)\n")
    buf.write("# units: mm\n")
    buf.write(f"# coil_axes: {OUR_COIL_AXES}: {OUR_COIL_AXES_TEXT}\n")
    buf.write(f"# subject: {plan.subject or ''}\n")
    buf.write(f"# image: {img.path if img else ''}\n")
    buf.write(f"# image_sha256: {img.sha256 if img else ''}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for p in plan.coil_poses:
        m = pose_to_space(p.matrix, space)
        w.writerow(["coil_pose", p.name, *(fmt(v) for v in m[:3, 3]), *(fmt(v) for v in m[:3, :3].reshape(-1)),
                    p.target or "", p.coil or "", _opt(p.didt), _opt(p.mso), *[""] * 6])
    for t in plan.targets:
        pos = point_to_space(t.position, space)
        entry = [""] * 3 if t.entry is None else [fmt(v) for v in point_to_space(t.entry, space)]
        d = [""] * 3 if t.direction is None else [fmt(v) for v in _dir_to_space(t.direction, space)]
        w.writerow(["target", t.name, *(fmt(v) for v in pos), *[""] * 9, "", "", "", "", *entry, *d])
    atomic_write_text(path, buf.getvalue())


def read_csv(path: Path) -> Plan:
    text = read_text(path)
    meta: dict[str, str] = {}
    body = []
    for line in text.splitlines():
        if line.startswith("#"):
            k, _, v = line[1:].partition(":")
            meta[k.strip().casefold()] = v.strip()
        elif line.strip():
            body.append(line)
    system = meta.get("coordinate_system", "").split(" ")[0].lower()
    if system not in ("ras", "lps"):
        raise InputError(path, "CSV does not state '# coordinate_system: RAS|LPS'")
    if not meta.get("coil_axes", "").casefold().startswith(OUR_COIL_AXES + ":"):
        raise InputError(path, f"CSV does not state '# coil_axes: {OUR_COIL_AXES}: ...'")
    rows = [{str(k).strip().casefold(): (v or "").strip() for k, v in r.items() if k is not None}
            for r in csv.DictReader(body)]
    targets, poses = [], []
    f3 = lambda r, keys: None if not r.get(keys[0]) else np.array([float(r[k]) for k in keys])
    try:
        for r in rows:
            pos = np.array([float(r[c]) for c in ("x", "y", "z")])
            kind = enum_key(r["kind"])
            if kind == "coilpose":
                m = np.eye(4)
                m[:3, :3] = np.array([float(r[c]) for c in ROT]).reshape(3, 3)
                m[:3, 3] = pos
                poses.append(CoilPose(r["name"], pose_from_space(m, system), r.get("target") or None,
                                      r.get("coil") or None,
                                      float(r["didt_a_per_s"]) if r.get("didt_a_per_s") else None,
                                      float(r["mso_percent"]) if r.get("mso_percent") else None))
            elif kind == "target":
                e = f3(r, ("entry_x", "entry_y", "entry_z"))
                d = f3(r, ("dir_x", "dir_y", "dir_z"))
                targets.append(Target(r["name"], point_from_space(pos, system),
                                      None if e is None else point_from_space(e, system),
                                      None if d is None else point_from_space(d, system)))
            else:
                raise InputError(path, f"unknown row kind {r['kind']!r}")
    except (KeyError, ValueError) as exc:
        raise InputError(path, f"malformed row ({type(exc).__name__}: {exc})") from None
    return Plan(name=path.stem, subject=meta.get("subject") or None, targets=targets, coil_poses=poses,
                notes=f"imported from navigator CSV (image {meta.get('image')}, sha256 {meta.get('image_sha256')})")


def write_json(plan: Plan, path: Path, space: str) -> None:
    img = plan.image
    doc = {
        "format": "navigator-points",
        "format_version": 1,
        "generator": f"navigator {__version__}",
        "plan": plan.name,
        "coordinate_system": space.upper(),
        "coordinate_system_description": "subject scanner world of the plan image; LPS = RAS with x, y negated",
        "units": "mm",
        "coil_axes": OUR_COIL_AXES,
        "coil_axes_description": OUR_COIL_AXES_TEXT,
        "subject": plan.subject,
        "image": None if img is None else {"path": img.path, "sha256": img.sha256},
        "targets": [
            {"name": t.name, "position": point_to_space(t.position, space).tolist(),
             "entry": None if t.entry is None else point_to_space(t.entry, space).tolist(),
             "direction": None if t.direction is None else _dir_to_space(t.direction, space).tolist(),
             "description": t.description}
            for t in plan.targets
        ],
        "coil_poses": [
            {"name": p.name, "matrix": pose_to_space(p.matrix, space).tolist(), "target": p.target, "coil": p.coil,
             "didt_A_per_s": p.didt, "mso_percent": p.mso, "description": p.description}
            for p in plan.coil_poses
        ],
        "montages": [
            {"name": m.name, "electrodes": [
                {"name": e.name, "position": point_to_space(e.position, space).tolist(), "current_mA": e.current_ma,
                 "shape": e.shape, "size_mm": list(e.size_mm),
                 **({} if e.channel is None else {"channel": e.channel}),
                 **({} if e.frequency_hz is None else {"frequency_Hz": e.frequency_hz}),
                 **({} if e.y_axis is None else {"y_axis": point_to_space(e.y_axis, space).tolist()})}
                for e in m.electrodes]}
            for m in plan.montages
        ],
    }
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def read_json(path: Path) -> Plan:
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != "navigator-points":
        raise InputError(path, "not a navigator points JSON (format != 'navigator-points')")
    space = str(doc.get("coordinate_system", "")).lower()
    if space not in ("ras", "lps"):
        raise InputError(path, f"unsupported coordinate_system {doc.get('coordinate_system')!r}")
    if not enum_is(doc.get("coil_axes"), OUR_COIL_AXES):
        raise InputError(path, f"unsupported coil_axes {doc.get('coil_axes')!r}")
    opt = lambda v: None if v is None else point_from_space(np.array(v, float), space)
    try:
        targets = [Target(t["name"], point_from_space(np.array(t["position"], float), space), opt(t.get("entry")),
                          opt(t.get("direction")), t.get("description", "")) for t in doc.get("targets", [])]
        poses = [CoilPose(p["name"], pose_from_space(np.array(p["matrix"], float), space), p.get("target"),
                          p.get("coil"), p.get("didt_A_per_s"), p.get("mso_percent"), p.get("description", ""))
                 for p in doc.get("coil_poses", [])]
        montages = [Montage(m["name"], [Electrode(e["name"], point_from_space(np.array(e["position"], float), space),
                                                  e["current_mA"], e.get("shape", "ellipse"),
                                                  tuple(e.get("size_mm", (10.0, 10.0))), e.get("channel"),
                                                  e.get("frequency_Hz"), opt(e.get("y_axis")))
                                        for e in m.get("electrodes", [])]) for m in doc.get("montages", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"malformed entry ({type(exc).__name__}: {exc})") from None
    return Plan(name=str(doc.get("plan") or path.stem), subject=doc.get("subject"), targets=targets,
                coil_poses=poses, montages=montages, notes=f"imported from navigator points JSON (image {doc.get('image')})")


CSV_PLUGIN = Plugin(
    name="csv",
    kind="exporter",
    description="Plain CSV stating its coordinate system and coil axes",
    extensions=(".csv",),
    coordinate_space="ras",
    spaces=("ras", "lps"),
    coil_axes=OUR_COIL_AXES_TEXT,
    carries=("targets", "coil_poses", "entries"),
    write=write_csv,
    read=read_csv,
    sniff=lambda path, head: "# coil_axes: navigator:" in head.casefold(),
)

JSON_PLUGIN = Plugin(
    name="json",
    kind="exporter",
    description="Plain JSON stating its coordinate system and coil axes (targets, poses, montages)",
    extensions=(".json",),
    coordinate_space="ras",
    spaces=("ras", "lps"),
    coil_axes=OUR_COIL_AXES_TEXT,
    carries=("targets", "coil_poses", "entries", "montages"),
    write=write_json,
    read=read_json,
    sniff=lambda path, head: '"navigator-points"' in head,
)
