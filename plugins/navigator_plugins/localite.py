"""Localite TMS Navigator: InstrumentMarkers (coil poses), EntryTarget pairs, TriggerMarkers (pulses).

Structures (FIELD_NOTES): ``<InstrumentMarkerList coordinateSpace="RAS|LPS">`` of
``<InstrumentMarker>`` -> ``<Marker description=NAME>`` -> ``<Matrix4D data00..data33/>``
(row-major; columns 0-2 the coil axes, data03/13/23 the position, mm). Localite axes from ours:
``R_loc = R @ [[0,0,1],[0,-1,0],[1,0,0]]`` (x_loc = z into the head, y_loc = -handle,
z_loc = x). LPS negates world x and y. ``<EntryTargetList>`` holds ``<Entry index=k>`` /
``<Target index=k>`` siblings (as TMS Navigator writes them; navigator 0.1 wrapped each pair in
``<EntryTarget>``, still read) each holding a ``<Marker>`` with a ``<ColVec3D data0 data1 data2/>``.
TriggerMarkers (``TMSTrigger/TriggerMarkers_CoilN_<datetime>.xml``, a session's delivered
pulses) describe their response channels in ``<ResponseParameters>`` (``<responseDescription
id="valueA" name="Value A (di/dt)" unit="A/us"/>``, ``id="amplitudeA" ... unit="%"``) and have
one ``<TriggerMarker recordingTime=ms>`` per pulse with ``<ResponseValues><Value key=..
response=../>`` and a ``<Matrix4D>``; an untracked coil is written as the identity matrix, a
stimulator that reported nothing as ``NaN`` or ``0.0`` (see docs/navigation/localite.md).
Readers accept any attribute order, namespaces, element/attribute case and decimal commas.
All XML is read with :func:`navigator.export.safety.parse_xml` (no entities, no external refs).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
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
from navigator.export.vendor_text import attrs, children, descendants, enum_is, enum_key, first, local_name, number

log = logging.getLogger(__name__)

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


def _root(path: Path, tag: str) -> ET.Element:
    root = parse_xml(path)
    if local_name(root.tag).casefold() != tag.casefold():
        raise InputError(path, f"not a Localite {tag} (root element <{local_name(root.tag)}>)")
    return root


def _space_of(root: ET.Element, path: Path) -> str:
    """"ras" or "lps" from ``coordinateSpace`` (any case; missing means RAS, Localite's NIfTI default,
    with a warning: check such a file on the head model)."""
    value = attrs(root).get("coordinatespace")
    if value is None or not value.strip():
        log.warning("%s: no coordinateSpace attribute; reading the coordinates as RAS (NIfTI images)", path)
        return "ras"
    if enum_is(value, "RAS", "LPS"):
        return enum_key(value)
    raise InputError(path, f"unsupported coordinateSpace {value!r} (expected RAS or LPS)")


def _matrix(el: ET.Element | None, path: Path, what: str) -> np.ndarray | None:
    """A ``<Matrix4D data00=".." ... data33=".."/>`` (attributes in any order and case)."""
    if el is None:
        return None
    a = attrs(el)
    m = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            key = f"data{i}{j}"
            if key not in a:
                raise InputError(path, f"{what}: Matrix4D has no {key}")
            v = number(a[key], path, f"{what}: Matrix4D {key}")
            m[i, j] = np.nan if v is None else v
    return m


def _vec3(el: ET.Element | None, path: Path, what: str) -> np.ndarray | None:
    if el is None:
        return None
    a = attrs(el)
    out = []
    for i in range(3):
        if f"data{i}" not in a:
            raise InputError(path, f"{what}: ColVec3D has no data{i}")
        v = number(a[f"data{i}"], path, f"{what}: ColVec3D data{i}")
        if v is None:
            raise InputError(path, f"{what}: ColVec3D data{i} has no value")
        out.append(v)
    return np.array(out)


def _description(el: ET.Element | None) -> str:
    return "" if el is None else (attrs(el).get("description") or "").strip()


def read_instrument_markers(path: Path) -> Plan:
    root = _root(path, "InstrumentMarkerList")
    space = _space_of(root, path)
    poses = []
    markers = descendants(root, "InstrumentMarker")
    if not markers:
        raise InputError(path, "no InstrumentMarker entries (the Localite file is empty)")
    for k, im in enumerate(markers):
        marker = first(im, "Marker")
        name = _description(marker) or f"marker-{k + 1}"
        m = _matrix(first(im, "Matrix4D"), path, f"InstrumentMarker {name!r}")
        if m is None:
            raise InputError(path, f"InstrumentMarker {name!r} has no Matrix4D")
        if not np.all(np.isfinite(m)):
            raise InputError(path, f"InstrumentMarker {name!r}: Matrix4D holds NaN (coil not tracked?)")
        poses.append(CoilPose(name, localite_to_ours(pose_from_space(m, space))))
    return Plan(name=path.stem, coil_poses=poses, notes=f"imported from Localite InstrumentMarkers ({space.upper()})")


# --------------------------------------------------------------------------- EntryTarget
def write_entry_targets(plan: Plan, path: Path, space: str) -> None:
    """Targets with a scalp entry point (its own or its first pose's centre) as Entry/Target pairs.

    Layout as TMS Navigator writes its ``EntryTarget<datetime>.xml``: ``<Entry index=k>`` and
    ``<Target index=k>`` siblings under ``<EntryTargetList>``, each with one ``<Marker>`` holding a
    ``<ColVec3D>``; the target's marker ``description`` is the target's name.
    """
    lines = [_HEADER, _comment(plan, space), f'<EntryTargetList coordinateSpace="{space.upper()}">\n']
    n = 0
    for t in plan.targets:
        entry = entry_of(plan, t.name)
        if entry is None:
            continue
        for tag, p, color, label, aura in (("Entry", entry, "#00ff00", "", "false"),
                                            ("Target", t.position, "#00ffff", t.name, "true")):
            lines.append(f'    <{tag} alwaysVisible="false" index="{n}" selected="false">\n')
            lines.append(f'        <Marker color="{color}" description={quoteattr(label)} drawAura="{aura}" '
                         'radius="4.0" set="true">\n')
            lines.append(f"            {colvec3d_xml(point_to_space(p, space))}\n")
            lines.append("        </Marker>\n")
            lines.append(f"    </{tag}>\n")
        n += 1
    lines.append("</EntryTargetList>\n")
    warn_dropped("localite EntryTarget", "targets without an entry point or pose", len(plan.targets) - n)
    atomic_write_text(path, "".join(lines))


def _entry_target_pairs(root: ET.Element) -> list[tuple[ET.Element | None, ET.Element | None]]:
    """(Entry, Target) element pairs of an EntryTargetList.

    TMS Navigator writes ``<Entry index=k>`` / ``<Target index=k>`` siblings (paired by
    ``index``, else by order); files from navigator 0.1 wrap each pair in ``<EntryTarget>``.
    """
    wrapped = descendants(root, "EntryTarget")
    if wrapped:
        return [(first(et, "Entry"), first(et, "Target")) for et in wrapped]
    entries, targets = children(root, "Entry"), children(root, "Target")
    by_index: dict[str, list] = {}
    for k, el in enumerate(entries):
        by_index.setdefault(attrs(el).get("index", f"#{k}"), [None, None])[0] = el
    for k, el in enumerate(targets):
        by_index.setdefault(attrs(el).get("index", f"#{k}"), [None, None])[1] = el
    return [(e, t) for e, t in by_index.values()]


def read_entry_targets(path: Path) -> Plan:
    root = _root(path, "EntryTargetList")
    space = _space_of(root, path)
    targets = []
    pairs = _entry_target_pairs(root)
    if not pairs:
        raise InputError(path, "no EntryTarget entries (no <Entry>/<Target> markers; the Localite file is empty)")
    for k, (entry_el, target_el) in enumerate(pairs):
        name = _description(first(target_el, "Marker") if target_el is not None else None) or f"target-{k + 1}"
        if target_el is None:
            raise InputError(path, f"entry {k + 1} has no matching <Target> (index {attrs(entry_el).get('index')})")
        entry = None if entry_el is None else _vec3(first(entry_el, "ColVec3D"), path, f"EntryTarget {name!r} entry")
        target = _vec3(first(target_el, "ColVec3D"), path, f"EntryTarget {name!r}")
        if target is None:
            raise InputError(path, f"EntryTarget {name!r} has no Target ColVec3D")
        targets.append(Target(name, point_from_space(target, space),
                              entry=None if entry is None else point_from_space(entry, space)))
    return Plan(name=path.stem, targets=targets, notes=f"imported from Localite EntryTarget ({space.upper()})")


# --------------------------------------------------------------------------- TriggerMarkers
@dataclass(frozen=True)
class _Channel:
    """One ``<responseDescription>`` of a TriggerMarkerList: key, display name, unit."""

    key: str
    name: str
    unit: str


#: dI/dt units Localite may name, -> factor to A/s.
_DIDT_UNITS = {"a/us": 1e6, "a/µs": 1e6, "a/μs": 1e6, "ka/ms": 1e6, "a/s": 1.0, "ka/s": 1e3, "ma/s": 1e6}


def _channels(root: ET.Element) -> list[_Channel]:
    out = []
    for d in descendants(root, "responseDescription"):
        a = attrs(d)
        if a.get("id"):
            out.append(_Channel(a["id"], a.get("name", ""), a.get("unit", "")))
    return out


def _pick_channels(channels: list[_Channel], path: Path) -> tuple[str | None, float, str, str | None]:
    """(dI/dt key, factor to A/s, description, amplitude key) of a TriggerMarkerList.

    Localite describes its response channels in ``<ResponseParameters>``: the stimulator's
    realised dI/dt is the channel whose unit is A/us or whose name mentions di/dt (``valueA``,
    "Value A (di/dt)"), the stimulator output the one in % named "Amplitude" (``amplitudeA``).
    Without descriptions the keys ``valueA`` / ``didtA`` (A/us) and ``amplitudeA`` are used.
    Stimulator A is preferred when a twin stimulator reports A and B.
    """
    didt = [c for c in channels if c.unit.strip().casefold().replace(" ", "") in _DIDT_UNITS
            or "di/dt" in c.name.casefold() or "didt" in c.name.casefold().replace("/", "")]
    amp = [c for c in channels if c.unit.strip() == "%" or c.name.casefold().startswith("amplitude")]
    didt_key, factor, text = None, 1e6, ""
    if didt:
        c = next((c for c in didt if c.key.casefold().endswith("a")), didt[0])
        unit = c.unit.strip().casefold().replace(" ", "")
        if unit and unit not in _DIDT_UNITS:
            raise InputError(path, f"dI/dt channel {c.key!r} has unit {c.unit!r}; navigator reads A/us or A/s")
        didt_key, factor = c.key, _DIDT_UNITS.get(unit, 1e6)
        text = f"Localite response channel {c.key!r} ({c.name or 'dI/dt'}, {c.unit or 'A/us'})"
    amp_key = None
    if amp:
        amp_key = next((c for c in amp if c.key.casefold().endswith("a")), amp[0]).key
    return didt_key, factor, text, amp_key


def _values(tm: ET.Element) -> dict[str, str | None]:
    """``<ResponseValues><Value key=".." response=".."/>`` of one TriggerMarker, keys case-folded."""
    out: dict[str, str | None] = {}
    for v in descendants(tm, "Value"):
        a = attrs(v)
        if "key" in a:
            out[a["key"].casefold()] = a.get("response", a.get("value"))
    return out


def _positive(v: float | None) -> float | None:
    """Localite writes NaN or 0.0 when the stimulator did not report a value: both mean "unknown"."""
    return None if v is None or v <= 0 else v


def read_trigger_markers(path: Path) -> PulseLog:
    """Localite TriggerMarkers -> PulseLog: pose, delivered dI/dt (A/s) and %MSO of every pulse.

    Untracked pulses (identity or zero Matrix4D, as TMS Navigator writes them) are skipped.
    """
    root = _root(path, "TriggerMarkerList")
    space = _space_of(root, path)
    didt_key, factor, didt_text, amp_key = _pick_channels(_channels(root), path)
    didt_keys = [k.casefold() for k in ((didt_key,) if didt_key else ("valueA", "didtA", "didt"))]
    amp_keys = [k.casefold() for k in ((amp_key,) if amp_key else ("amplitudeA", "amplitude"))]
    markers = descendants(root, "TriggerMarker")
    b = PulseLogBuilder()
    used_key = None
    for k, tm in enumerate(markers):
        a = attrs(tm)
        name = (a.get("description") or "").strip() or f"pulse-{k + 1}"
        values = _values(tm)
        text = " ".join(a.values()).casefold()
        tracked = "not tracked" not in text and "nottracked" not in text
        m = _matrix(first(tm, "Matrix4D"), path, f"TriggerMarker {k + 1}")
        pose = None if m is None or not np.all(np.isfinite(m)) else localite_to_ours(pose_from_space(m, space))
        didt = None
        for key in didt_keys:
            didt = _positive(number(values.get(key), path, f"TriggerMarker {k + 1}: {key}"))
            if didt is not None:
                used_key = used_key or key
                break
        amp = None
        for key in amp_keys:
            amp = _positive(number(values.get(key), path, f"TriggerMarker {k + 1}: {key}"))
            if amp is not None:
                break
        t_ms = number(a.get("recordingtime"), path, f"TriggerMarker {k + 1}: recordingTime")
        b.add(pose, None if didt is None else didt * factor, amp, None if t_ms is None else t_ms / 1000.0,
              name, tracked, raw=m)
    if not didt_text and used_key:
        didt_text = f"Localite response value {used_key!r} (A/us)"
    return b.build(path, "localite-triggers", didt_text)


def _sniffer(tag: str):
    """Recognise the root element (with or without a namespace prefix, any case)."""
    pattern = re.compile(rf"<(?:[\w.-]+:)?{tag}\b", re.IGNORECASE)
    return lambda path, head: pattern.search(head) is not None


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
