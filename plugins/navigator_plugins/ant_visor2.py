"""ANT Neuro visor2 marker file (``.mrk``, JSON).

Structure (FIELD_NOTES): ``AssociatedImageInfo`` with ``NIfTI_quatern``, ``NIfTI_qoffset`` and
``NIfTI_pixdim`` of the image the plan was made on (visor2 checks the loaded image against
them), and ``TargetMarkers[].CoilTarget`` with ``Name``, ``CoordinateSystem``
("ASSOCIATED_IMAGE" = the NIfTI qform world of that image, RAS mm), ``PositionalUnit`` ("mm"),
``CoilAxesConvention`` and ``CoilPose.RigidTransformMatrix4x4`` (4 rows of 4).

navigator writes its own (SimNIBS) coil axes and names them ``"SIMNIBS"`` in
``CoilAxesConvention``; the reader accepts only that value (or "navigator") so a file in
another convention is never silently misread. Only coil poses are carried (visor2 coil targets).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.export.common import apply_rigid, provenance, qform_transform, require_image, warn_dropped
from navigator.export.conventions import OUR_COIL_AXES_TEXT
from navigator.export.plan import CoilPose, Plan
from navigator.export.registry import Plugin

AXES = "SIMNIBS"
ACCEPTED_AXES = ("SIMNIBS", "navigator")


def write_mrk(plan: Plan, path: Path, space: str | None = None) -> None:
    img = require_image(plan, "ant-visor2")
    t = qform_transform(plan, "ANT visor2")
    doc = {
        "AssociatedImageInfo": {
            "NIfTI_quatern": list(img.quatern),
            "NIfTI_qoffset": list(img.qoffset),
            "NIfTI_pixdim": list(img.pixdim),
        },
        "TargetMarkers": [
            {
                "CoilTarget": {
                    "Name": pose.name,
                    "CoordinateSystem": "ASSOCIATED_IMAGE",
                    "PositionalUnit": "mm",
                    "CoilAxesConvention": AXES,
                    "CoilPose": {"RigidTransformMatrix4x4": apply_rigid(t, pose.matrix).tolist()},
                }
            }
            for pose in plan.coil_poses
        ],
        "GeneratedBy": provenance(plan, "NIfTI qform world (RAS) of the associated image", OUR_COIL_AXES_TEXT),
    }
    warn_dropped("ANT visor2", "targets without a coil pose", sum(
        1 for tg in plan.targets if not any(p.target == tg.name for p in plan.coil_poses)))
    # json.dumps writes floats with repr: exact round trip
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def read_mrk(path: Path) -> Plan:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or "TargetMarkers" not in doc:
        raise InputError(path, "not an ANT visor2 marker file (no TargetMarkers)")
    poses = []
    for k, tm in enumerate(doc["TargetMarkers"]):
        ct = tm.get("CoilTarget") if isinstance(tm, dict) else None
        if not isinstance(ct, dict):
            continue
        name = str(ct.get("Name") or f"coil-target-{k}")
        if ct.get("CoordinateSystem", "ASSOCIATED_IMAGE") != "ASSOCIATED_IMAGE":
            raise InputError(path, f"{name}: unsupported CoordinateSystem {ct.get('CoordinateSystem')!r}")
        if ct.get("PositionalUnit", "mm") != "mm":
            raise InputError(path, f"{name}: unsupported PositionalUnit {ct.get('PositionalUnit')!r}")
        axes = ct.get("CoilAxesConvention")
        if axes not in ACCEPTED_AXES:
            raise InputError(path, f"{name}: unknown CoilAxesConvention {axes!r} (navigator reads {', '.join(ACCEPTED_AXES)})")
        try:
            m = np.array(ct["CoilPose"]["RigidTransformMatrix4x4"], dtype=float)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"{name}: malformed CoilPose ({exc})") from None
        if m.shape != (4, 4):
            raise InputError(path, f"{name}: RigidTransformMatrix4x4 must be 4x4")
        poses.append(CoilPose(name, m))
    info = doc.get("AssociatedImageInfo", {})
    return Plan(name=path.stem, coil_poses=poses,
                notes=f"imported from ANT visor2; associated image quatern {info.get('NIfTI_quatern')} "
                      f"qoffset {info.get('NIfTI_qoffset')} pixdim {info.get('NIfTI_pixdim')}")


PLUGIN = Plugin(
    name="ant-visor2",
    kind="exporter",
    description="ANT Neuro visor2 marker file (.mrk JSON, coil targets on the associated NIfTI)",
    extensions=(".mrk",),
    coordinate_space="nifti-qform-ras",
    coil_axes=f"{AXES}: {OUR_COIL_AXES_TEXT}",
    carries=("coil_poses",),
    write=write_mrk,
    read=read_mrk,
    sniff=lambda path, head: '"TargetMarkers"' in head or '"AssociatedImageInfo"' in head,
)
