"""SimNIBS EEG position CSV files (``eeg_positions/*.csv`` of an m2m folder, ``targets/eeg.csv``).

One position per row, comma-separated, no header (a first row whose second column is not a
number is treated as a header and skipped):

    Fiducial,x,y,z,Nz
    Electrode,x,y,z,Fp1
    ReferenceElectrode,x,y,z,Cz
    Electrode,x,y,z,px,py,pz,Fp1[,extra...]   (optional 3-value direction before the name)

Coordinates are subject world RAS in mm. ``Generic`` and ``CoilPos`` rows are ignored.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class EegPositions:
    """EEG electrode positions of one cap on one subject.

    Attributes:
        names: electrode labels (e.g. "Fp1"), in file order.
        positions: (N, 3) float64 world RAS mm.
        fiducials: label -> (3,) world RAS mm (e.g. "Nz", "Iz", "LPA", "RPA").
        reference: label of the ``ReferenceElectrode`` row, if any.
    """

    names: list[str]
    positions: np.ndarray
    fiducials: dict[str, np.ndarray] = field(default_factory=dict)
    reference: str | None = None

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, np.float64).reshape(-1, 3)
        if len(self.names) != len(self.positions):
            raise ValueError("one name per position needed")

    def position(self, name: str) -> np.ndarray:
        """World position (mm) of electrode or fiducial ``name`` (case-insensitive)."""
        low = name.lower()
        for n, p in zip(self.names, self.positions):
            if n.lower() == low:
                return p.copy()
        for n, p in self.fiducials.items():
            if n.lower() == low:
                return np.asarray(p, np.float64).copy()
        raise KeyError(f"no electrode or fiducial named {name!r}")

    def as_dict(self) -> dict[str, np.ndarray]:
        """name -> position for electrodes and fiducials."""
        out = {n: np.asarray(p, np.float64) for n, p in self.fiducials.items()}
        out.update({n: p.copy() for n, p in zip(self.names, self.positions)})
        return out


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_eeg_csv(path: str | Path) -> EegPositions:
    """Read a SimNIBS EEG position CSV; :class:`InputError` naming the file if malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read ({exc})") from None
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if rows and len(rows[0]) > 1 and not _is_number(rows[0][1]):
        rows = rows[1:]
    names: list[str] = []
    positions: list[list[float]] = []
    fiducials: dict[str, np.ndarray] = {}
    reference = None
    for i, r in enumerate(rows, start=1):
        kind = r[0]
        if kind in ("Generic", "CoilPos"):
            log.debug("%s: row %d of type %s ignored", path, i, kind)
            continue
        if kind not in ("Electrode", "ReferenceElectrode", "Fiducial"):
            raise InputError(path, f"row {i}: unknown position type {kind!r}")
        if len(r) < 5:
            raise InputError(path, f"row {i}: expected type,x,y,z,name")
        try:
            xyz = [float(v) for v in r[1:4]]
        except ValueError:
            raise InputError(path, f"row {i}: coordinates are not numbers") from None
        name = r[4]
        if kind != "Fiducial" and len(r) >= 8 and all(_is_number(v) for v in r[4:7]):
            name = r[7]  # optional direction vector before the name
        if not name:
            raise InputError(path, f"row {i}: position has no name")
        if kind == "Fiducial":
            fiducials[name] = np.array(xyz)
        else:
            names.append(name)
            positions.append(xyz)
            if kind == "ReferenceElectrode":
                reference = name
    if not names and not fiducials:
        raise InputError(path, "no electrode or fiducial positions found")
    return EegPositions(names, np.array(positions, np.float64).reshape(-1, 3), fiducials, reference)


def write_eeg_csv(positions: EegPositions, path: str | Path) -> Path:
    """Write positions as a SimNIBS EEG CSV (fiducials first, exact float repr), atomically."""
    path = Path(path)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for name, p in positions.fiducials.items():
        w.writerow(["Fiducial", *[repr(float(v)) for v in p], name])
    for name, p in zip(positions.names, positions.positions):
        kind = "ReferenceElectrode" if name == positions.reference else "Electrode"
        w.writerow([kind, *[repr(float(v)) for v in p], name])
    atomic_write_text(path, buf.getvalue())
    return path
