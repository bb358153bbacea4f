"""Localite TMS Navigator: InstrumentMarkers (coil poses), EntryTarget pairs, TriggerMarkers (pulses).

Structures (FIELD_NOTES): ``<InstrumentMarkerList coordinateSpace="RAS|LPS">`` of
``<InstrumentMarker>`` -> ``<Marker description=NAME>`` -> ``<Matrix4D data00..data33/>``
(row-major; columns 0-2 the coil axes, data03/13/23 the position, mm). Localite axes from ours:
``R_loc = R @ [[0,0,1],[0,-1,0],[1,0,0]]`` (x_loc = z into the head, y_loc = -handle,
z_loc = x). LPS negates world x and y. ``<EntryTargetList>`` holds ``<EntryTarget>`` with
``<Entry>``/``<Target>`` each holding a ``<Marker>`` with a ``<ColVec3D data0 data1 data2/>``.
TriggerMarkers (a session's delivered pulses) have one ``<TriggerMarker>`` per pulse with a
``<Matrix4D>`` and ``<ResponseValues>`` (``amplitudeA`` = % MSO, ``didtA`` = dI/dt in A/us).
All XML is read with :func:`navigator.export.safety.parse_xml` (no entities, no external refs).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.export.common import entry_of, provenance, warn_dropped
from navigator.export.conventions import (
    LOCALITE_AXES_TEXT,
    fmt,
    localite_to_ours,
    ours_to_localite,
    point_from_space,
    point_to_space,
    pose_from_space,
    pose_to_space,
)
from navigator.export.plan import CoilPose, Plan, Target
from navigator.export.pulses import PulseLog, PulseLogBuilder
from navigator.export.registry import Plugin
from navigator.export.safety import parse_xml

_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _comment(plan: Plan, space: str) -> str:
    text = provenance(plan, f"{space.upper()} (world of the plan image)", LOCALITE_AXES_TEXT)
    return f"<!-- {escape(text).replace('--', '- -')} -->\n"


def matrix4d_xml(m: np.ndarray) -> str:
    """``<Matrix4D data00=".." ... data33=".."/>`` with exact (repr) numbers."""
    attrs = " ".join(f'data{i}{j}="{fmt(m[i, j])}"' for i in range(4) for j in range(4))
    return f"<Matrix4D {attrs}/>"


def colvec3d_xml(p: np.ndarray) -> str:
    return f'<ColVec3D data0="{fmt(p[0])}" data1="{fmt(p[1])}" data2="{fmt(p[2])}"/>'


def _marker_open(name: str, color: str) -> str:
    return f'<Marker additionalInformation="" color="{color}" description={quoteattr(name)} set="true">'


# --------------------------------------------------------------------------- InstrumentMarkers
def write_instrument_markers(plan: Plan, path: Path, space: str) -> None:
    """Coil poses as Localite InstrumentMarkers in ``space`` ("ras" or "lps")."""
    lines = [_HEADER, _comment(plan, space), f'<InstrumentMarkerList coordinateSpace="{space.upper()}">\n']
    for i, pose in enumerate(plan.coil_poses):
        m = pose_to_space(ours_to_localite(pose.matrix), space)
        lines.append(f'    <InstrumentMarker alwaysVisible="false" index="{i}" selected="false">\n')
        lines.append(f"        {_marker_open(pose.name, '#ff0000')}\n")
        lines.append(f"            {matrix4d_xml(m)}\n")
        lines.append("        </Marker>\n")
        lines.append("    </InstrumentMarker>\n")
    lines.append("</InstrumentMarkerList>\n")
    warn_dropped("localite InstrumentMarkers", "targets without a pose (use localite-entrytarget)",
                 sum(1 for t in plan.targets if not any(p.target == t.name for p in plan.coil_poses)))
    atomic_write_text(path, "".join(lines))


def _space_of(root: ET.Element, path: Path) -> str:
    space = (root.get("coordinateSpace") or "RAS").upper()
    if space not in ("RAS", "LPS"):
        raise InputError(path, f"unsupported coordinateSpace {space!r} (expected RAS or LPS)")
    return space.lower()


def _matrix(el: ET.Element | None, path: Path) -> np.ndarray | None:
    if el is None:
        return None
    try:
        return np.array([[float(el.attrib[f"data{i}{j}"]) for j in range(4)] for i in range(4)])
    except (KeyError, ValueError) as exc:
        raise InputError(path, f"malformed Matrix4D ({exc})") from None


def _vec3(el: ET.Element | None, path: Path) -> np.ndarray | None:
    if el is None:
        return None
    try:
        return np.array([float(el.attrib[f"data{i}"]) for i in range(3)])
    except (KeyError, ValueError) as exc:
        raise InputError(path, f"malformed ColVec3D ({exc})") from None


def read_instrument_markers(path: Path) -> Plan:
    root = parse_xml(path)
    if root.tag != "InstrumentMarkerList":
        raise InputError(path, f"not a Localite InstrumentMarkerList (root <{root.tag}>)")
    space = _space_of(root, path)
    poses = []
    for k, im in enumerate(root.iter("InstrumentMarker")):
        marker = im.find("Marker")
        m = _matrix(im.find(".//Matrix4D"), path)
        if m is None:
            raise InputError(path, f"InstrumentMarker {k} has no Matrix4D")
        name = (marker.get("description") if marker is not None else None) or f"marker-{k}"
        poses.append(CoilPose(name, localite_to_ours(pose_from_space(m, space))))
    return Plan(name=path.stem, coil_poses=poses, notes=f"imported from Localite InstrumentMarkers ({space.upper()})")


# --------------------------------------------------------------------------- EntryTarget
def write_entry_targets(plan: Plan, path: Path, space: str) -> None:
    """Targets with a scalp entry point (its own or its first pose's centre) as EntryTarget pairs."""
    lines = [_HEADER, _comment(plan, space), f'<EntryTargetList coordinateSpace="{space.upper()}">\n']
    n = 0
    for t in plan.targets:
        entry = entry_of(plan, t.name)
        if entry is None:
            continue
        lines.append(f'    <EntryTarget alwaysVisible="false" index="{n}" selected="false">\n')
        for tag, p, color, label in (("Entry", entry, "#00ff00", f"{t.name} entry"), ("Target", t.position, "#ff0000", t.name)):
            lines.append(f"        <{tag}>\n")
            lines.append(f"            {_marker_open(label, color)}\n")
            lines.append(f"                {colvec3d_xml(point_to_space(p, space))}\n")
            lines.append("            </Marker>\n")
            lines.append(f"        </{tag}>\n")
        lines.append("    </EntryTarget>\n")
        n += 1
    lines.append("</EntryTargetList>\n")
    warn_dropped("localite EntryTarget", "targets without an entry point or pose", len(plan.targets) - n)
    atomic_write_text(path, "".join(lines))


def read_entry_targets(path: Path) -> Plan:
    root = parse_xml(path)
    if root.tag != "EntryTargetList":
        raise InputError(path, f"not a Localite EntryTargetList (root <{root.tag}>)")
    space = _space_of(root, path)
    targets = []
    for k, et in enumerate(root.iter("EntryTarget")):
        entry = _vec3(et.find("Entry//ColVec3D"), path)
        target = _vec3(et.find("Target//ColVec3D"), path)
        if target is None:
            raise InputError(path, f"EntryTarget {k} has no Target ColVec3D")
        marker = et.find("Target//Marker")
        name = (marker.get("description") if marker is not None else None) or f"target-{k}"
        targets.append(Target(name, point_from_space(target, space),
                              entry=None if entry is None else point_from_space(entry, space)))
    return Plan(name=path.stem, targets=targets, notes=f"imported from Localite EntryTarget ({space.upper()})")


# --------------------------------------------------------------------------- TriggerMarkers
def _float_or_none(s: str | None) -> float | None:
    if s is None or s.strip() == "" or s.strip().lower() in ("nan", "(null)", "null"):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def read_trigger_markers(path: Path) -> PulseLog:
    """Localite TriggerMarkers -> PulseLog (dI/dt converted from A/us to A/s)."""
    root = parse_xml(path)
    if root.tag != "TriggerMarkerList":
        raise InputError(path, f"not a Localite TriggerMarkerList (root <{root.tag}>)")
    space = _space_of(root, path)
    b = PulseLogBuilder()
    for k, tm in enumerate(root.iter("TriggerMarker")):
        values = {v.get("key", ""): v.get("response") for v in tm.iter("Value")}
        text = " ".join(str(v) for v in tm.attrib.values()).lower()
        tracked = "not tracked" not in text and "nottracked" not in text
        m = _matrix(tm.find(".//Matrix4D"), path)
        pose = None if m is None else localite_to_ours(pose_from_space(m, space))
        didt = _float_or_none(values.get("didtA"))
        t_ms = _float_or_none(tm.get("recordingTime"))
        b.add(pose, None if didt is None else didt * 1e6, _float_or_none(values.get("amplitudeA")),
              None if t_ms is None else t_ms / 1000.0, tm.get("description") or f"pulse-{k}", tracked, raw=m)
    return b.build(path, "localite-triggers")


def _sniffer(tag: str):
    return lambda path, head: f"<{tag}" in head


PLUGIN = Plugin(
    name="localite",
    kind="exporter",
    description="Localite TMS Navigator InstrumentMarkers XML (coil poses)",
    extensions=(".xml",),
    coordinate_space="ras",
    spaces=("ras", "lps"),
    coil_axes=LOCALITE_AXES_TEXT,
    carries=("coil_poses",),
    write=write_instrument_markers,
    read=read_instrument_markers,
    sniff=_sniffer("InstrumentMarkerList"),
)

ENTRY_TARGET_PLUGIN = Plugin(
    name="localite-entrytarget",
    kind="exporter",
    description="Localite TMS Navigator EntryTarget XML (target + scalp entry pairs)",
    extensions=(".xml",),
    coordinate_space="ras",
    spaces=("ras", "lps"),
    coil_axes="none (points only)",
    carries=("targets", "entries"),
    write=write_entry_targets,
    read=read_entry_targets,
    sniff=_sniffer("EntryTargetList"),
)

TRIGGER_PLUGIN = Plugin(
    name="localite-triggers",
    kind="pulse-log",
    description="Localite TriggerMarkers XML (delivered pulses: pose, dI/dt, %MSO)",
    extensions=(".xml",),
    coordinate_space="ras",
    coil_axes=LOCALITE_AXES_TEXT,
    carries=("pulses",),
    read_pulses=read_trigger_markers,
    sniff=_sniffer("TriggerMarkerList"),
)
