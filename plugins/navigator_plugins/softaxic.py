"""SofTaxic (E.M.S.) neuronavigation: coil positions exported as ``.stmpx`` (read only).

Structure (as SofTaxic writes it and SimNIBS's ``nnav.softaxic`` reader reads it)::

    <!DOCTYPE stmp>
    <stmp>
     <fmpm dataset="20210826-175502">
      <fmp global="0" id="P001">
       <fp id=".." ts="<ms since 1970>" x=".." y=".." z=".." m00=".." m01=".." ... m22="..">
        <bm x y z/> <bt x y z/> <f x y z/>        (auxiliary points, not used)
       </fp>
       <props><p id="EMS_FT dist" type="2">-28.2399</p></props>
      </fmp>
      ...

One ``<fmp>`` per stored coil position, named by its ``id``. ``<fp>`` carries the coil centre
``x, y, z`` (mm, in the world of the subject's MRI: RAS, as SimNIBS reads it) and the direction
cosines ``m{row}{col}`` of SofTaxic's coil frame, whose axes relate to navigator's (SimNIBS's) as
``x_ours = -y_softaxic``, ``y_ours = x_softaxic`` (handle), ``z_ours = z_softaxic`` (into the head),
i.e. ``R_ours = R_softaxic @ [[0, 1, 0], [-1, 0, 0], [0, 0, 1]]``. Values have 6 significant
digits, so rotations pass through the pose rule of :mod:`navigator.export.rigid`. Attribute
order, element/attribute case and namespaces do not matter. SofTaxic's own import format is not
public, so navigator does not write ``.stmpx``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from navigator.core.errors import InputError
from navigator.export.plan import CoilPose, Plan
from navigator.export.registry import Plugin
from navigator.export.safety import parse_xml
from navigator.export.vendor_text import attrs, children, descendants, first, local_name, number

#: SofTaxic coil axes -> ours (right-multiplied on the rotation): x_ours = -y_s, y_ours = x_s, z_ours = z_s.
SOFTAXIC_TO_OURS = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
SOFTAXIC_AXES_TEXT = "x = handle direction, y = -x_ours, z = coil normal into the head (SofTaxic)"


def softaxic_to_ours(pose: np.ndarray) -> np.ndarray:
    """A 4x4 in SofTaxic coil axes -> navigator's coil axes (position unchanged)."""
    out = np.array(pose, dtype=np.float64)
    out[:3, :3] = out[:3, :3] @ SOFTAXIC_TO_OURS
    return out


def ours_to_softaxic(pose: np.ndarray) -> np.ndarray:
    """Inverse of :func:`softaxic_to_ours` (the axis matrix is orthogonal: its transpose)."""
    out = np.array(pose, dtype=np.float64)
    out[:3, :3] = out[:3, :3] @ SOFTAXIC_TO_OURS.T
    return out


def _fp_pose(fp, path: Path, name: str) -> np.ndarray:
    a = attrs(fp)
    m = np.eye(4)
    for i in range(3):
        for j in range(3):
            key = f"m{i}{j}"
            v = number(a.get(key), path, f"coil position {name!r} {key}")
            if v is None:
                raise InputError(path, f"coil position {name!r}: <fp> has no {key}")
            m[i, j] = v
    for i, c in enumerate("xyz"):
        v = number(a.get(c), path, f"coil position {name!r} {c}")
        if v is None:
            raise InputError(path, f"coil position {name!r}: <fp> has no {c}")
        m[i, 3] = v
    return softaxic_to_ours(m)


def read_stmpx(path: Path) -> Plan:
    """Every ``<fmp>`` with an ``<fp>`` -> a coil pose named by the ``fmp`` id."""
    root = parse_xml(path)
    if local_name(root.tag).casefold() not in ("stmp", "fmpm"):
        raise InputError(path, f"not a SofTaxic .stmpx file (root element <{local_name(root.tag)}>, expected <stmp>)")
    positions = descendants(root, "fmp")
    if not positions:
        raise InputError(path, "no coil positions (<fmp> elements) in the SofTaxic file")
    poses = []
    datasets = sorted({attrs(d).get("dataset", "") for d in descendants(root, "fmpm")} - {""})
    for k, fmp in enumerate(positions):
        name = (attrs(fmp).get("id") or "").strip() or f"position-{k + 1}"
        fp = children(fmp, "fp")
        fp_el = fp[0] if fp else first(fmp, "fp")
        if fp_el is None:
            raise InputError(path, f"coil position {name!r} has no <fp> element")
        ts = number(attrs(fp_el).get("ts"), path, f"coil position {name!r} ts")
        description = "SofTaxic coil position" + (f", recorded at {ts / 1000.0:.3f} s since 1970" if ts else "")
        poses.append(CoilPose(name, _fp_pose(fp_el, path, name), description=description))
    notes = "imported from SofTaxic .stmpx" + (f" (dataset {', '.join(datasets)})" if datasets else "")
    return Plan(name=path.stem, coil_poses=poses, notes=notes)


_SNIFF = re.compile(r"<(?:!DOCTYPE\s+)?stmp\b", re.IGNORECASE)

PLUGIN = Plugin(
    name="softaxic",
    kind="importer",
    description="SofTaxic neuronavigator coil positions (.stmpx XML; read only)",
    extensions=(".stmpx",),
    coordinate_space="ras",
    coil_axes=SOFTAXIC_AXES_TEXT,
    carries=("coil_poses",),
    read=read_stmpx,
    sniff=lambda path, head: _SNIFF.search(head) is not None,
)
