"""SimNIBS ``.ccd`` dipole coil files (text).

Layout: line 1 is a ``#`` header, optionally with ``key=value;`` pairs (``dIdtmax`` in A/us,
``x=-300,300`` ... grid bounds in mm, ``resolution``, ``stimulator``, ``brand``, ``coilname``);
then the number of dipoles; optional ``#`` comment lines; then one dipole per line
``x y z mx my mz`` with positions in **metres** and moments in A m^2 (per ampere).
The reader converts positions to millimetres (see :mod:`navigator.tms.coil`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_write_text
from navigator.core.errors import InputError
from navigator.tms.coil import Coil

_KV = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^;]*)")


def parse_ccd_header(line: str) -> dict[str, str]:
    """key=value pairs of a ``.ccd`` header line (empty for old headers)."""
    return {k: v.strip() for k, v in _KV.findall(line)}


def read_ccd(path: str | Path, name: str | None = None) -> Coil:
    """Read a ``.ccd`` file into a :class:`Coil` (positions converted m -> mm).

    Raises:
        InputError: unreadable file, bad numbers, or a dipole count that does not match.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(path, f"cannot read coil file ({exc.strerror})") from None
    header: dict[str, str] = {}
    count: int | None = None
    rows: list[list[float]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            if lineno == 1:
                header = parse_ccd_header(line)
            continue
        parts = line.replace(",", " ").split()
        if count is None and len(parts) == 1:
            try:
                count = int(float(parts[0]))
            except ValueError:
                raise InputError(path, f"line {lineno}: expected the number of dipoles, got {line!r}") from None
            continue
        if len(parts) != 6:
            raise InputError(path, f"line {lineno}: expected 6 numbers 'x y z mx my mz', got {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise InputError(path, f"line {lineno}: not a number in {line!r}") from None
    if not rows:
        raise InputError(path, "no dipoles found (not a .ccd coil file?)")
    if count is not None and count != len(rows):
        raise InputError(path, f"header says {count} dipoles but the file holds {len(rows)}")
    data = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(data).all():
        raise InputError(path, "non-finite dipole position or moment")
    max_didt = None
    if "dIdtmax" in header:
        try:
            max_didt = float(header["dIdtmax"].split(",")[0]) * 1e6  # A/us -> A/s
        except ValueError:
            raise InputError(path, f"bad dIdtmax {header['dIdtmax']!r} in header") from None
    coil_name = name or header.get("coilname") or path.name.split(".")[0]
    return Coil(
        name=coil_name,
        dipole_positions=data[:, :3] * 1e3,
        dipole_moments=data[:, 3:],
        max_didt=max_didt,
        stimulator=header.get("stimulator", ""),
        brand=header.get("brand", ""),
        source=str(path),
    )


def write_ccd(coil: Coil, path: str | Path) -> None:
    """Write the coil's dipoles as a ``.ccd`` file (positions in metres), atomically."""
    if coil.n_dipoles == 0:
        raise ValueError(f"coil {coil.name!r} has no dipoles to write as .ccd")
    kv = []
    if coil.max_didt is not None:
        kv.append(f"dIdtmax={coil.max_didt / 1e6:.6g}")
    if coil.stimulator:
        kv.append(f"stimulator={coil.stimulator}")
    if coil.brand:
        kv.append(f"brand={coil.brand}")
    kv.append(f"coilname={coil.name}")
    lines = [f"# {Path(path).name} version 1.0; " + ";".join(kv) + ";", str(coil.n_dipoles),
             "# centers and weighted directions of the elements (magnetic dipoles)"]
    pos_m = coil.dipole_positions * 1e-3
    for p, m in zip(pos_m, coil.dipole_moments):
        lines.append(" ".join(f"{v:.15e}" for v in (*p, *m)))
    atomic_write_text(path, "\n".join(lines) + "\n")
