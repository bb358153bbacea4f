"""ANT Neuro visor2 marker file (``.mrk``, JSON).

Structure (FIELD_NOTES): ``AssociatedImageInfo`` with ``NIfTI_quatern``, ``NIfTI_qoffset`` and
``NIfTI_pixdim`` of the image the plan was made on (visor2 checks the loaded image against
them), and ``TargetMarkers[].CoilTarget`` with ``Name``, ``CoordinateSystem``
("ASSOCIATED_IMAGE" = the NIfTI qform world of that image, RAS mm), ``PositionalUnit`` ("mm"),
``CoilAxesConvention`` and ``CoilPose.RigidTransformMatrix4x4`` (4 rows of 4); visor2 2.8
nests ``AssociatedImageInfo`` in ``Configuration`` and writes ``"simnibs"`` in lower case.

navigator writes the layout visor2 2.8 writes (``Configuration`` with ``SourceInfo`` and
``AssociatedImageInfo``), its own (SimNIBS) coil axes named ``"simnibs"`` in
``CoilAxesConvention``, and ``CoilInfo.Type`` when the pose names its coil. The reader accepts
only that convention (or "navigator"), in any case, so a file in another convention is never
silently misread. Only coil poses are carried (visor2 coil targets).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from navigator import __version__
from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.export.common import apply_rigid, provenance, qform_transform, require_image, warn_dropped
from navigator.export.conventions import OUR_COIL_AXES_TEXT
from navigator.export.plan import CoilPose, Plan
from navigator.export.registry import Plugin
from navigator.export.vendor_text import enum_is, enum_key, key_get, number, read_text

#: Written in lower case, as visor2 2.8 writes it; read in any case.
AXES = "simnibs"
ACCEPTED_AXES = ("SIMNIBS", "navigator")


def write_mrk(plan: Plan, path: Path, space: str | None = None) -> None:
    img = require_image(plan, "ant-visor2")
    t = qform_transform(plan, "ANT visor2")
    def target(pose) -> dict:
        ct = {"Name": pose.name, "CoordinateSystem": "ASSOCIATED_IMAGE", "PositionalUnit": "mm",
              "CoilAxesConvention": AXES}
        if pose.coil:
            ct["CoilInfo"] = {"Type": pose.coil, "Id": ""}
        ct["CoilPose"] = {"RigidTransformMatrix4x4": apply_rigid(t, pose.matrix).tolist()}
        return {"CoilTarget": ct}

    doc = {
        "Configuration": {
            "SourceInfo": {"AppName": "navigator", "AppVersion": __version__},
            "AssociatedImageInfo": {
                "NIfTI_quatern": list(img.quatern),
                "NIfTI_qoffset": list(img.qoffset),
                "NIfTI_pixdim": list(img.pixdim),
            },
        },
        "TargetMarkers": [target(pose) for pose in plan.coil_poses],
        "GeneratedBy": provenance(plan, "NIfTI qform world (RAS) of the associated image", OUR_COIL_AXES_TEXT),
    }
    warn_dropped("ANT visor2", "targets without a coil pose", sum(
        1 for tg in plan.targets if not any(p.target == tg.name for p in plan.coil_poses)))
    # json.dumps writes floats with repr: exact round trip
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


#: PositionalUnit spellings -> factor to mm.
_UNITS = {"mm": 1.0, "millimeter": 1.0, "millimeters": 1.0, "millimetre": 1.0, "millimetres": 1.0,
          "cm": 10.0, "m": 1000.0, "meter": 1000.0, "meters": 1000.0, "metre": 1000.0, "metres": 1000.0}


def read_mrk(path: Path) -> Plan:
    """Coil targets of a visor2 ``.mrk`` (keys and enumeration values in any case).

    ``AssociatedImageInfo`` is read at the top level or inside ``Configuration`` (as visor2 2.8
    writes it); entries without a ``CoilTarget`` (other marker kinds) are skipped and counted.
    """
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    markers = key_get(doc, "TargetMarkers")
    if not isinstance(doc, dict) or markers is None:
        raise InputError(path, "not an ANT visor2 marker file (no TargetMarkers)")
    if not isinstance(markers, list):
        raise InputError(path, "TargetMarkers is not a list")
    poses, skipped = [], 0
    for k, tm in enumerate(markers):
        ct = key_get(tm, "CoilTarget")
        if not isinstance(ct, dict):
            skipped += 1
            continue
        name = str(key_get(ct, "Name") or "").strip() or f"coil-target-{k + 1}"
        system = key_get(ct, "CoordinateSystem", default="ASSOCIATED_IMAGE")
        if not enum_is(system, "ASSOCIATED_IMAGE"):
            raise InputError(path, f"coil target {name!r}: unsupported CoordinateSystem {system!r} "
                                   "(navigator reads ASSOCIATED_IMAGE)")
        unit = enum_key(key_get(ct, "PositionalUnit", default="mm"))
        if unit not in _UNITS:
            raise InputError(path, f"coil target {name!r}: unsupported PositionalUnit "
                                   f"{key_get(ct, 'PositionalUnit')!r} (mm, cm or m)")
        axes = key_get(ct, "CoilAxesConvention")
        if not enum_is(axes, *ACCEPTED_AXES):
            raise InputError(path, f"coil target {name!r}: unknown CoilAxesConvention {axes!r} "
                                   f"(navigator reads {', '.join(ACCEPTED_AXES)}, any case)")
        rows = key_get(key_get(ct, "CoilPose", default={}), "RigidTransformMatrix4x4")
        try:
            m = np.array([[number(v, path, f"coil target {name!r} matrix") for v in r] for r in rows], dtype=float)
        except (TypeError, ValueError):
            raise InputError(path, f"coil target {name!r}: CoilPose.RigidTransformMatrix4x4 missing or not "
                                   "4 rows of 4 numbers") from None
        if m.shape != (4, 4):
            raise InputError(path, f"coil target {name!r}: RigidTransformMatrix4x4 must be 4x4, got "
                                   f"{'x'.join(map(str, m.shape))}")
        m[:3, 3] *= _UNITS[unit]
        coil = key_get(key_get(ct, "CoilInfo", default={}), "Type")
        poses.append(CoilPose(name, m, coil=str(coil) if coil else None))
    if not poses:
        raise InputError(path, f"no coil targets in the ANT visor2 file ({len(markers)} marker(s), "
                               f"{skipped} without a CoilTarget)")
    config = key_get(doc, "Configuration", default={})
    info = key_get(doc, "AssociatedImageInfo") or key_get(config, "AssociatedImageInfo") or {}
    app = key_get(key_get(config, "SourceInfo", default={}), "AppName")
    notes = (f"imported from ANT visor2{f' ({app})' if app else ''}; associated image quatern "
             f"{key_get(info, 'NIfTI_quatern')} qoffset {key_get(info, 'NIfTI_qoffset')} "
             f"pixdim {key_get(info, 'NIfTI_pixdim')}")
    if skipped:
        notes += f"; {skipped} marker(s) without a CoilTarget skipped"
    return Plan(name=path.stem, coil_poses=poses, notes=notes)


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
    sniff=lambda path, head: '"targetmarkers"' in head.casefold() or '"associatedimageinfo"' in head.casefold(),
)
