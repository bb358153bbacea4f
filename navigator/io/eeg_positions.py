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
from navigator.core.errors import InputError, NavigatorError

log = logging.getLogger(__name__)


#: the landmark names of the EEG CSV files' ``Fiducial`` rows (subject RAS mm)
LANDMARKS = ("Nz", "Iz", "LPA", "RPA")


@dataclass
class EegPositions:
    """EEG electrode positions of one cap on one subject: the one type for EEG positions, read
    from and written to the SimNIBS EEG CSV files (:func:`read_eeg_csv`, :func:`write_eeg_csv`)
    and built on the scalp by :mod:`navigator.targets.eeg` (10-10, 10-05).

    Attributes:
        names: electrode labels (e.g. "Fp1"), in file (construction) order; landmarks excluded.
        positions: (N, 3) float64 world RAS mm, one row per name.
        fiducials: label -> (3,) world RAS mm (e.g. "Nz", "Iz", "LPA", "RPA": the ``Fiducial`` rows).
        reference: label of the ``ReferenceElectrode`` row, if any.
        system: the cap's name ("10-10", "10-05", or the file's name for imported caps).

    Lookup by name (``eeg["F3"]``, :meth:`lookup`, ``"F3" in eeg``) is case-insensitive and covers
    electrodes and fiducials; :meth:`labels` lists both (fiducials first), :meth:`electrodes` and
    :meth:`as_dict` give name -> position dicts.
    """

    names: list[str]
    positions: np.ndarray
    fiducials: dict[str, np.ndarray] = field(default_factory=dict)
    reference: str | None = None
    system: str = "10-10"

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        self.positions = np.asarray(self.positions, np.float64).reshape(-1, 3)
        if len(self.names) != len(self.positions):
            raise ValueError("one name per position needed")
        self.fiducials = {str(k): np.asarray(v, np.float64).reshape(3) for k, v in self.fiducials.items()}

    @classmethod
    def from_dict(cls, positions: dict[str, np.ndarray], *, system: str = "10-10",
                  landmarks: tuple[str, ...] = LANDMARKS) -> EegPositions:
        """Positions from name -> (3,) mm; names in ``landmarks`` become fiducials (dict order kept)."""
        fid = {k: v for k, v in positions.items() if k in landmarks}
        names = [k for k in positions if k not in landmarks]
        pts = np.array([positions[k] for k in names], np.float64).reshape(-1, 3)
        return cls(names, pts, fid, system=system)

    def _table(self) -> dict[str, tuple[str, np.ndarray]]:
        """lower-case name -> (stored name, position); electrodes win over fiducials of the same name."""
        t = {k.lower(): (k, v) for k, v in self.fiducials.items()}
        t.update({n.lower(): (n, p) for n, p in zip(self.names, self.positions)})
        return t

    def lookup(self, name: str) -> str:
        """The stored spelling of electrode or fiducial ``name`` (case-insensitive); a
        :class:`NavigatorError` listing close names when there is none."""
        hit = self._table().get(str(name).lower())
        if hit is not None:
            return hit[0]
        import difflib

        close = difflib.get_close_matches(name, self.labels(), n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NavigatorError(f"unknown EEG position {name!r}{hint}")

    def __getitem__(self, name: str) -> np.ndarray:
        """(3,) world RAS mm of electrode or fiducial ``name`` (case-insensitive; NavigatorError if absent)."""
        hit = self._table().get(str(name).lower())
        if hit is None:
            self.lookup(name)  # raises, naming close matches
        return hit[1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._table()

    def position(self, name: str) -> np.ndarray:
        """World position (mm) of electrode or fiducial ``name`` (case-insensitive), a copy;
        KeyError if absent."""
        hit = self._table().get(str(name).lower())
        if hit is None:
            raise KeyError(f"no electrode or fiducial named {name!r}")
        return np.array(hit[1], np.float64)

    def labels(self) -> list[str]:
        """Fiducial names, then electrode names."""
        return list(self.fiducials) + list(self.names)

    def electrodes(self) -> dict[str, np.ndarray]:
        """Electrode name -> (3,) mm (copies), landmarks left out."""
        return {n: p.copy() for n, p in zip(self.names, self.positions)}

    def as_dict(self) -> dict[str, np.ndarray]:
        """name -> position for fiducials and electrodes (copies)."""
        out = {n: np.array(p, np.float64) for n, p in self.fiducials.items()}
        out.update(self.electrodes())
        return out


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_eeg_csv(path: str | Path, system: str | None = None) -> EegPositions:
    """Read a SimNIBS EEG position CSV; :class:`InputError` naming the file if malformed.
    ``system``: the cap's name for :attr:`EegPositions.system` (default: the file's stem)."""
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
    return EegPositions(names, np.array(positions, np.float64).reshape(-1, 3), fiducials, reference,
                        system=path.stem if system is None else system)


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
