"""Montages: electrode specs from the command line or a JSON file, resolved on a subject.

Command-line electrode SPEC: ``POSITION:CURRENT_MA[:SHAPE[:SIZE]]``

* POSITION: a 10-10 name from the workspace's ``targets/eeg.csv`` (case-insensitive), or
  ``x,y,z`` in subject RAS mm (projected onto the scalp);
* CURRENT_MA: current entering the head in mA (negative for a return electrode);
* SHAPE: point | disc | ring | rect | ellipse (default rect);
* SIZE: ``WxH`` (rect, ellipse), ``D`` (disc diameter), ``OUTERxINNER`` (ring), mm.

Montage JSON (``--montage FILE``)::

    {
      "electrodes": [
        {"position": "F3", "current_mA": 2.0, "shape": "rect", "size_mm": [50, 50],
         "direction": "Cz", "angle_deg": 0, "layer": "sponge", "thickness_mm": 5,
         "layer_conductivity": 1.0, "name": "anode"},
        {"position": [60.0, 70.0, 20.0], "current_mA": -2.0}
      ],
      "conductivity": {"2": 0.275},                         (optional, S/m per tag)
      "target": {"center_mm": [-38, 44, 26], "radius_mm": 10}  (optional)
    }

Only "position" and "current_mA" are required per electrode; the rest default as in
:class:`navigator.tes.electrodes.ElectrodeSpec`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import InputError, NavigatorError
from navigator.fem.outputs import TargetRegion
from navigator.tes.electrodes import SHAPES, ElectrodeSpec


@dataclass
class Montage:
    electrodes: list[ElectrodeSpec]
    conductivity: dict[int, float] = field(default_factory=dict)
    target: TargetRegion | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "electrodes": [e.to_json() for e in self.electrodes],
            "conductivity": {str(k): v for k, v in self.conductivity.items()},
            "target": None if self.target is None else self.target.to_json(),
        }


def _parse_xyz(text: str) -> tuple[float, float, float] | None:
    parts = text.split(",")
    if len(parts) != 3:
        return None
    try:
        xyz = tuple(float(p) for p in parts)
    except ValueError:
        return None
    return xyz  # type: ignore[return-value]


def parse_electrode_spec(text: str) -> ElectrodeSpec:
    """Parse ``POSITION:CURRENT_MA[:SHAPE[:SIZE]]``; NavigatorError naming the problem."""
    parts = text.split(":")
    if not 2 <= len(parts) <= 4:
        raise NavigatorError(f"bad --electrode {text!r}: expected POSITION:CURRENT_MA[:SHAPE[:SIZE]]")
    pos_s = parts[0].strip()
    if not pos_s:
        raise NavigatorError(f"bad --electrode {text!r}: empty position")
    position: str | tuple[float, float, float]
    position = _parse_xyz(pos_s) if "," in pos_s else pos_s  # type: ignore[assignment]
    if position is None:
        raise NavigatorError(f"bad --electrode {text!r}: position must be a 10-10 name or x,y,z in mm")
    try:
        current = float(parts[1])
    except ValueError:
        raise NavigatorError(f"bad --electrode {text!r}: current {parts[1]!r} is not a number (mA)") from None
    shape = parts[2].strip().lower() if len(parts) >= 3 and parts[2].strip() else "rect"
    if shape not in SHAPES:
        raise NavigatorError(f"bad --electrode {text!r}: unknown shape {shape!r} (use {', '.join(SHAPES)})")
    size = None
    if len(parts) == 4 and parts[3].strip():
        try:
            size = tuple(float(s) for s in parts[3].lower().split("x"))
        except ValueError:
            raise NavigatorError(f"bad --electrode {text!r}: size {parts[3]!r} must look like 50x50 or 12 (mm)") from None
    return ElectrodeSpec(position=position, current_ma=current, shape=shape, size_mm=size)


def load_montage(path: str | Path) -> Montage:
    """Read a montage JSON file (schema in the module docstring)."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "montage file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if not isinstance(d, dict) or not isinstance(d.get("electrodes"), list):
        raise InputError(path, "montage must be an object with an 'electrodes' list")
    specs = []
    for i, e in enumerate(d["electrodes"]):
        if not isinstance(e, dict) or "position" not in e or "current_mA" not in e:
            raise InputError(path, f"electrode {i}: needs 'position' and 'current_mA'")
        pos = e["position"]
        if isinstance(pos, list):
            if len(pos) != 3:
                raise InputError(path, f"electrode {i}: position must be a name or [x, y, z]")
            pos = tuple(float(c) for c in pos)
        direction = e.get("direction")
        if isinstance(direction, list):
            direction = tuple(float(c) for c in direction)
        try:
            specs.append(ElectrodeSpec(
                position=pos, current_ma=float(e["current_mA"]), shape=str(e.get("shape", "rect")).lower(),
                size_mm=tuple(e["size_mm"]) if "size_mm" in e and e["size_mm"] is not None else None,
                direction=direction, angle_deg=float(e.get("angle_deg", 0.0)), layer=e.get("layer"),
                thickness_mm=e.get("thickness_mm"), layer_conductivity=e.get("layer_conductivity"), name=e.get("name"),
            ))
        except NavigatorError as exc:
            raise InputError(path, f"electrode {i}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise InputError(path, f"electrode {i}: {exc}") from None
    cond = {}
    for k, v in (d.get("conductivity") or {}).items():
        try:
            cond[int(k)] = float(v)
        except (TypeError, ValueError):
            raise InputError(path, f"conductivity entry {k!r}: {v!r} is not TAG: S_PER_M") from None
    target = None
    if d.get("target"):
        t = d["target"]
        try:
            target = TargetRegion(tuple(float(c) for c in t["center_mm"]), float(t.get("radius_mm", 10.0)),
                                  str(t.get("name", "target")))
        except (KeyError, TypeError, ValueError):
            raise InputError(path, "target must be {\"center_mm\": [x, y, z], \"radius_mm\": r}") from None
    return Montage(specs, cond, target)


def lookup_position(name: str, positions: dict[str, np.ndarray], source: str) -> np.ndarray:
    """Case-insensitive lookup of a 10-10 name; NavigatorError listing a few known names."""
    table = {k.lower(): v for k, v in positions.items()}
    key = name.strip().lower()
    if key not in table:
        known = ", ".join(sorted(positions)[:12])
        raise NavigatorError(f"unknown 10-10 position {name!r} (not in {source}; known: {known}...)")
    return np.asarray(table[key], float)
