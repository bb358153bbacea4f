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
import re
from pathlib import Path

import numpy as np

from navigator import __version__
from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.export.common import apply_rigid, apply_rigid_point, provenance, qform_transform
from navigator.export.conventions import BRAINSIGHT_AXES_TEXT, brainsight_to_ours, fmt, ours_to_brainsight
from navigator.export.plan import CoilPose, Plan, Target
from navigator.export.conventions import pose_from_space
from navigator.export.pulses import PulseLog, PulseLogBuilder, is_untracked
from navigator.export.registry import Plugin
from navigator.export.vendor_text import MISSING, enum_key, number, read_text

NULL = "(null)"
MATRIX_COLUMNS = [f"m{i}n{j}" for i in range(3) for j in range(3)]
TARGET_COLUMNS = ["Target Name", "Loc. X", "Loc. Y", "Loc. Z", *MATRIX_COLUMNS]
ACCEPTED_SYSTEMS = ("NIfTI:Q:Aligned", "NIfTI:Aligned", "NIfTI:Scanner", "NIfTI:S:Scanner")


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
    """Header fields (keys case-folded) and column sections ({case-folded first column: (columns, rows)}).

    Column names are kept as written; rows are split on tabs. BOM, CRLF and blank lines are accepted.
    """
    text = read_text(path)
    header: dict[str, str] = {}
    sections: dict[str, tuple[list[str], list[list[str]]]] = {}
    current: list[list[str]] | None = None
    for line in text.split("\n"):
        if not line.strip():
            continue
        if line.startswith("#"):
            body = line[1:].lstrip(" ")
            if "\t" in body:
                cols = [c.strip() for c in body.split("\t")]
                current = []
                sections.setdefault(cols[0].casefold(), (cols, current))
                current = sections[cols[0].casefold()][1]
            else:
                key, _, value = body.partition(":")
                header.setdefault(key.strip().casefold(), value.strip())
                current = None
            continue
        if current is None:
            raise InputError(path, f"data row before any column header: {line[:40]!r}")
        current.append(line.split("\t"))
    return header, sections


def _space(header: dict[str, str], path: Path) -> str:
    """"ras" or "lps" for the file's ``# Coordinate system:`` (any case); refuses the others.

    NIfTI:Aligned / NIfTI:Scanner (Brainsight 2.3) and NIfTI:Q:Aligned / NIfTI:S:Scanner ...
    (2.5) are the image's NIfTI world (RAS mm) = the plan's world when sform and qform agree;
    "World" (DICOM projects) is the DICOM patient system (LPS mm). "Brainsight" (voxel-based
    internal system), MNI-152 and Talairach are not the subject's world and are refused.
    """
    system = header.get("coordinate system")
    if system is None:
        raise InputError(path, "not a Brainsight file (no '# Coordinate system:' line)")
    k = enum_key(system)
    if k.startswith("nifti:"):
        frame = k.split(":")[-1]
        if frame in ("aligned", "scanner"):
            return "ras"
    elif k == "world":
        return "lps"
    raise InputError(path, f"unsupported Brainsight coordinate system {system!r}: export with "
                           f"{' or '.join(ACCEPTED_SYSTEMS)} (the image's NIfTI world), or World for DICOM projects")


def _check_header(header: dict[str, str], path: Path) -> str:
    return _space(header, path)


def _columns(cols: list[str]) -> dict[str, int]:
    """Column index by case-folded name without spaces ("Loc. X" -> "loc.x")."""
    return {re.sub(r"\s+", "", c).casefold(): i for i, c in enumerate(cols)}


LOC_KEYS = ("loc.x", "loc.y", "loc.z")
MATRIX_KEYS = [c.casefold() for c in MATRIX_COLUMNS]


def _row_pose(idx: dict[str, int], row: list[str], path: Path, what: str, space: str
              ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(position, 4x4 Brainsight pose or None) of a row, in RAS."""
    def cell(key: str) -> str:
        if key not in idx:
            raise InputError(path, f"{what}: no {key!r} column")
        return row[idx[key]] if idx[key] < len(row) else ""

    loc = [number(cell(c), path, f"{what} {c}") for c in LOC_KEYS]
    mv = [number(cell(c), path, f"{what} {c}") for c in MATRIX_KEYS]
    if any(v is None for v in loc):
        return None, None
    m = np.eye(4)
    m[:3, 3] = loc
    m = pose_from_space(m, space)
    pos = m[:3, 3].copy()
    if any(v is None for v in mv):
        return pos, None
    for i in range(3):
        for j in range(3):
            m[j, i] = mv[3 * i + j]
    if space == "lps":
        m[:2, :3] *= -1.0
    return pos, m


def _read_targets(idx, rows, path, space) -> tuple[list[Target], list[CoilPose]]:
    targets, poses = [], []
    for k, row in enumerate(rows):
        name = row[0].strip() if row and row[0].strip() else f"target-{k + 1}"
        pos, m = _row_pose(idx, row, path, f"target {name!r}", space)
        if pos is None:
            raise InputError(path, f"target {name!r} has no location")
        if m is None:
            targets.append(Target(name, pos))
        else:
            poses.append(CoilPose(name, brainsight_to_ours(m)))
    return targets, poses


def read_targets(path: Path) -> Plan:
    """Targets (with orientation: coil poses; without: target points) and tracked samples (coil poses)."""
    header, sections = _sections(path)
    space = _check_header(header, path)
    targets: list[Target] = []
    poses: list[CoilPose] = []
    if "target name" in sections:
        cols, rows = sections["target name"]
        targets, poses = _read_targets(_columns(cols), rows, path, space)
    n_samples = n_untracked = 0
    if "sample name" in sections:
        cols, rows = sections["sample name"]
        idx = _columns(cols)
        for k, row in enumerate(rows):
            name = row[0].strip() if row and row[0].strip() else f"sample-{k + 1}"
            _, m = _row_pose(idx, row, path, f"sample {name!r}", space)
            n_samples += 1
            if m is None or is_untracked(m):
                n_untracked += 1
                continue
            poses.append(CoilPose(name, brainsight_to_ours(m), description="Brainsight sample"))
    if not targets and not poses:
        what = f"{n_samples} sample(s), none tracked" if n_samples else "no samples"
        raise InputError(path, f"no targets and no tracked samples in the Brainsight file (no target rows; {what})")
    notes = (f"imported from Brainsight ({header.get('coordinate system')}, version {header.get('version')})"
             + (f"; {n_samples - n_untracked} tracked sample(s) as coil poses" if n_samples else "")
             + (f", {n_untracked} untracked skipped" if n_untracked else ""))
    return Plan(name=path.stem, targets=targets, coil_poses=poses, notes=notes)


def _timestamp(date: str | None, time: str | None, day0: list) -> float | None:
    if not time or time.strip().casefold() in MISSING:
        return None
    try:
        hh, mm, ss = time.strip().split(":")
        secs = int(hh) * 3600 + int(mm) * 60 + float(ss.replace(",", "."))
    except ValueError:
        return None
    if date and date.strip().casefold() not in MISSING:
        try:
            d = _dt.date.fromisoformat(date.strip())
            if not day0:
                day0.append(d)
            secs += (d - day0[0]).days * 86400.0
        except ValueError:
            pass
    return secs


def read_samples(path: Path) -> PulseLog:
    """Brainsight ``# Sample Name`` rows -> PulseLog (``Stim. Power`` / ``Stim. Power A`` as % MSO,
    a di/dt column in A/us if present; rows without a tracked location/orientation are skipped)."""
    header, sections = _sections(path)
    space = _check_header(header, path)
    if "sample name" not in sections:
        raise InputError(path, "no '# Sample Name' section (export the session's samples)")
    cols, rows = sections["sample name"]
    idx = _columns(cols)
    power_col = next((k for k in idx if k in ("stim.powera", "stim.power")), None) or next(
        (k for k in idx if k.startswith("stim.power")), None)
    didt_col = next((k for k in idx if "di/dt" in k or "didt" in k), None)
    b = PulseLogBuilder()
    day0: list = []

    def cell(row: list[str], col: str | None) -> str | None:
        if col is None or idx[col] >= len(row):
            return None
        return row[idx[col]]

    for k, row in enumerate(rows):
        name = row[0].strip() if row and row[0].strip() else f"sample-{k + 1}"
        _, m = _row_pose(idx, row, path, f"sample {name!r}", space)
        power = number(cell(row, power_col), path, f"sample {name!r} Stim. Power")
        didt = number(cell(row, didt_col), path, f"sample {name!r} dI/dt")  # A/us
        b.add(None if m is None else brainsight_to_ours(m),
              None if didt is None or didt <= 0 else didt * 1e6,
              None if power is None or power <= 0 else power,
              _timestamp(cell(row, "date"), cell(row, "time"), day0), name, raw=m)
    return b.build(path, "brainsight-samples", f"Brainsight column {cols[idx[didt_col]]!r} (A/us)" if didt_col else "")


def _sniff_targets(path: Path, head: str) -> bool:
    h = head.casefold()
    return "# coordinate system:" in h and ("# target name\t" in h or "# sample name\t" in h)


def _sniff_samples(path: Path, head: str) -> bool:
    if "# coordinate system:" not in head.casefold():
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return any(line.casefold().startswith("# sample name\t") for line in fh)
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
