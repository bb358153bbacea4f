"""Brainsight (Rogue Research) tab-separated targets and session samples.

Header (FIELD_NOTES): ``# Version: 14``, ``# Coordinate system: NIfTI:Q:Aligned``, ``# Created by``,
``# Units``, ``# Encoding``, ``# Notes``, then the column line
``# Target Name<TAB>Loc. X<TAB>Loc. Y<TAB>Loc. Z<TAB>m0n0 ... m2n2`` and one row per target;
``m{i}n{j}`` is component j of axis i. Brainsight axes from ours: x and z negated.
Coordinates are the world of the NIfTI **qform** ("NIfTI:Q"); when the plan image's sform
differs, poses are carried into the qform world (rigid case) and a warning is logged.
Targets without a coil orientation are written with ``(null)`` orientation.

Session exports also contain ``# Sample Name`` sections (one row per delivered pulse, with
``Stim. Power`` in % and ``Date``/``Time``); :func:`read_samples` reads them as a pulse log.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

from navigator import __version__
from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.export.common import apply_rigid, apply_rigid_point, provenance, qform_transform
from navigator.export.conventions import BRAINSIGHT_AXES_TEXT, brainsight_to_ours, fmt, ours_to_brainsight
from navigator.export.plan import CoilPose, Plan, Target
from navigator.export.pulses import PulseLog, PulseLogBuilder
from navigator.export.registry import Plugin

NULL = "(null)"
MATRIX_COLUMNS = [f"m{i}n{j}" for i in range(3) for j in range(3)]
TARGET_COLUMNS = ["Target Name", "Loc. X", "Loc. Y", "Loc. Z", *MATRIX_COLUMNS]
ACCEPTED_SYSTEMS = ("NIfTI:Q:Aligned", "NIfTI:Aligned")


def _clean(name: str) -> str:
    return name.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def write_targets(plan: Plan, path: Path, space: str | None = None) -> None:
    """Coil poses (full orientation) and targets (position, ``(null)`` orientation)."""
    t = qform_transform(plan, "Brainsight")
    notes = provenance(plan, "NIfTI qform world (RAS) of the plan image", BRAINSIGHT_AXES_TEXT)
    lines = [
        "# Version: 14",
        "# Coordinate system: NIfTI:Q:Aligned",
        f"# Created by: navigator {__version__}",
        "# Units: millimetres, degrees, milliseconds, and microvolts",
        "# Encoding: UTF-8",
        f"# Notes: {_clean(notes)}",
        "# " + "\t".join(TARGET_COLUMNS),
    ]
    for pose in plan.coil_poses:
        m = ours_to_brainsight(apply_rigid(t, pose.matrix))
        axes = [fmt(m[j, i]) for i in range(3) for j in range(3)]  # m{i}n{j} = component j of axis i
        lines.append("\t".join([_clean(pose.name), *(fmt(v) for v in m[:3, 3]), *axes]))
    for target in plan.targets:
        p = apply_rigid_point(t, target.position)
        lines.append("\t".join([_clean(target.name), *(fmt(v) for v in p), *([NULL] * 9)]))
    atomic_write_text(path, "\n".join(lines) + "\n")


def _sections(path: Path) -> tuple[dict[str, str], dict[str, tuple[list[str], list[list[str]]]]]:
    """Header fields and column sections ({first column name: (columns, rows)})."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc})") from None
    header: dict[str, str] = {}
    sections: dict[str, tuple[list[str], list[list[str]]]] = {}
    current: list[list[str]] | None = None
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if line.startswith("#"):
            body = line[1:].lstrip(" ")
            if "\t" in body:
                cols = [c.strip() for c in body.split("\t")]
                current = []
                sections[cols[0]] = (cols, current)
            else:
                key, _, value = body.partition(":")
                header.setdefault(key.strip(), value.strip())
                current = None
            continue
        if current is None:
            raise InputError(path, f"data row before any column header: {line[:40]!r}")
        current.append(line.split("\t"))
    return header, sections


def _check_header(header: dict[str, str], path: Path) -> None:
    system = header.get("Coordinate system")
    if system is None:
        raise InputError(path, "not a Brainsight file (no '# Coordinate system:' line)")
    if system not in ACCEPTED_SYSTEMS:
        raise InputError(path, f"unsupported Brainsight coordinate system {system!r} "
                               f"(navigator reads {', '.join(ACCEPTED_SYSTEMS)})")


def _num(v: str, path: Path, what: str) -> float | None:
    v = v.strip()
    if v == NULL or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        raise InputError(path, f"{what}: not a number: {v!r}") from None


def _row_pose(cols: list[str], row: list[str], path: Path, what: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(position, 4x4 Brainsight pose or None) of a row."""
    idx = {c: i for i, c in enumerate(cols)}
    try:
        loc = [_num(row[idx[c]], path, what) for c in ("Loc. X", "Loc. Y", "Loc. Z")]
        mv = [_num(row[idx[c]], path, what) for c in MATRIX_COLUMNS]
    except (KeyError, IndexError):
        raise InputError(path, f"{what}: missing columns") from None
    if any(v is None for v in loc):
        return None, None
    pos = np.array(loc, dtype=float)
    if any(v is None for v in mv):
        return pos, None
    m = np.eye(4)
    for i in range(3):
        for j in range(3):
            m[j, i] = mv[3 * i + j]
    m[:3, 3] = pos
    return pos, m


def read_targets(path: Path) -> Plan:
    header, sections = _sections(path)
    _check_header(header, path)
    if "Target Name" not in sections:
        raise InputError(path, "no '# Target Name' section")
    cols, rows = sections["Target Name"]
    targets, poses = [], []
    for k, row in enumerate(rows):
        name = row[0] if row and row[0] else f"target-{k}"
        pos, m = _row_pose(cols, row, path, f"target row {k + 1}")
        if pos is None:
            raise InputError(path, f"target {name!r} has no location")
        if m is None:
            targets.append(Target(name, pos))
        else:
            poses.append(CoilPose(name, brainsight_to_ours(m)))
    return Plan(name=path.stem, targets=targets, coil_poses=poses,
                notes=f"imported from Brainsight ({header.get('Coordinate system')}, version {header.get('Version')})")


def _timestamp(date: str | None, time: str | None, day0: list) -> float | None:
    if not time or time == NULL:
        return None
    try:
        hh, mm, ss = time.strip().split(":")
        secs = int(hh) * 3600 + int(mm) * 60 + float(ss)
    except ValueError:
        return None
    if date and date != NULL:
        try:
            d = _dt.date.fromisoformat(date.strip())
            if not day0:
                day0.append(d)
            secs += (d - day0[0]).days * 86400.0
        except ValueError:
            pass
    return secs


def read_samples(path: Path) -> PulseLog:
    """Brainsight ``# Sample Name`` rows -> PulseLog (Stim. Power as % MSO; rows without a
    tracked location/orientation are skipped)."""
    header, sections = _sections(path)
    _check_header(header, path)
    if "Sample Name" not in sections:
        raise InputError(path, "no '# Sample Name' section (export the session's samples)")
    cols, rows = sections["Sample Name"]
    idx = {c: i for i, c in enumerate(cols)}
    power_col = next((c for c in cols if c.startswith("Stim. Power")), None)
    didt_col = next((c for c in cols if "di/dt" in c.lower()), None)
    b = PulseLogBuilder()
    day0: list = []

    def cell(row: list[str], col: str | None) -> str | None:
        if col is None or idx[col] >= len(row):
            return None
        return row[idx[col]]

    for k, row in enumerate(rows):
        _, m = _row_pose(cols, row, path, f"sample row {k + 1}")
        power = cell(row, power_col)
        didt_cell = cell(row, didt_col)
        didt = None if didt_cell is None else _num(didt_cell, path, "dI/dt")  # A/us
        b.add(None if m is None else brainsight_to_ours(m),
              None if didt is None else didt * 1e6,
              None if power is None else _num(power, path, "Stim. Power"),
              _timestamp(cell(row, "Date"), cell(row, "Time"), day0),
              row[0] if row and row[0] else f"sample-{k}", raw=m)
    return b.build(path, "brainsight-samples")


def _sniff_targets(path: Path, head: str) -> bool:
    return "# Coordinate system:" in head and "# Target Name\t" in head


def _sniff_samples(path: Path, head: str) -> bool:
    if "# Coordinate system:" not in head:
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return any(line.startswith("# Sample Name\t") for line in fh)
    except OSError:
        return False


PLUGIN = Plugin(
    name="brainsight",
    kind="exporter",
    description="Brainsight targets text (version 14, NIfTI:Q:Aligned)",
    extensions=(".txt",),
    coordinate_space="nifti-qform-ras",
    coil_axes=BRAINSIGHT_AXES_TEXT,
    carries=("targets", "coil_poses"),
    write=write_targets,
    read=read_targets,
    sniff=_sniff_targets,
)

SAMPLES_PLUGIN = Plugin(
    name="brainsight-samples",
    kind="pulse-log",
    description="Brainsight session export, '# Sample Name' rows (delivered pulses)",
    extensions=(".txt",),
    coordinate_space="nifti-qform-ras",
    coil_axes=BRAINSIGHT_AXES_TEXT,
    carries=("pulses",),
    read_pulses=read_samples,
    sniff=_sniff_samples,
)
