"""The tES montage as the desktop app edits it, without Qt: rows, channels, pads' rotation.

One :class:`ElectrodeRow` per electrode: position (10-10 name or ``x,y,z`` subject RAS mm),
current (mA, + into the head), shape and size (mm), the stimulator **channel** (1, 2 for
temporal interference; None for a one-channel tDCS montage), that channel's carrier
**frequency** (Hz) and the pad's in-plane rotation **angle** (degrees, counter-clockwise seen
from outside, from the default y axis = world superior projected onto the scalp; as
:class:`navigator.tes.electrodes.ElectrodeSpec`).

* :func:`rows_from_electrodes` turns a plan's / optimizer's electrodes
  (:class:`navigator.export.plan.Electrode`) into rows: the 10-10 name when the electrode sits
  on that position (within 1 mm), else its coordinates; channel and frequency kept; a rotated
  pad's ``y_axis`` becomes its angle.
* :func:`electrodes_from_rows` is the reverse for plans (angle -> ``y_axis``).
* :func:`channel_summary` gives the currents per channel (each must sum to zero) and
  :func:`ti_pairs` the two pairs of a temporal-interference simulation.
* :func:`optimization_rows` turns an optimizer's numbers into labelled objective values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.tes.electrodes import electrode_frame

#: shapes of the plan record the editor keeps as they are (others are drawn as ellipses)
PLAN_SHAPES = ("rect", "ellipse", "disc", "ring")


@dataclass
class ElectrodeRow:
    """One electrode of the montage editor (see the module docstring)."""

    position: str  # 10-10 name or "x,y,z" (mm)
    current_ma: float
    shape: str = "rect"  # rect | ellipse | disc | ring | point
    size: str = "50x50"  # mm, "WxH" or "D"
    channel: int | None = None  # stimulator channel (TI: 1 or 2); None = one-channel tDCS
    frequency_hz: float | None = None  # carrier frequency of the channel (TI), Hz
    angle_deg: float = 0.0  # in-plane rotation of the pad, degrees

    def spec(self):
        """The :class:`navigator.tes.electrodes.ElectrodeSpec` to simulate (NavigatorError on bad text)."""
        from navigator.tes.montage import parse_electrode_spec

        s = parse_electrode_spec(f"{self.position}:{self.current_ma:g}:{self.shape}:{self.size}")
        return replace(s, angle_deg=float(self.angle_deg)) if self.angle_deg else s

    def size_mm(self) -> tuple[float, float]:
        """The size as two numbers (mm; a disc's diameter twice)."""
        try:
            size = tuple(float(s) for s in self.size.lower().split("x")) if self.size else (10.0, 10.0)
        except ValueError:
            raise NavigatorError(f"electrode {self.position}: size {self.size!r} must look like 50x50 or 12 (mm)") from None
        return (size[0], size[0]) if len(size) == 1 else (size[0], size[1])

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"position": self.position, "current_ma": self.current_ma, "shape": self.shape,
                             "size": self.size}
        if self.channel is not None:
            d["channel"] = self.channel
        if self.frequency_hz is not None:
            d["frequency_hz"] = self.frequency_hz
        if self.angle_deg:
            d["angle_deg"] = self.angle_deg
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ElectrodeRow:
        ch, f = d.get("channel"), d.get("frequency_hz")
        return cls(str(d["position"]), float(d["current_ma"]), str(d.get("shape", "rect")), str(d.get("size", "50x50")),
                   None if ch is None else int(ch), None if f is None else float(f), float(d.get("angle_deg", 0.0)))


MONTAGE_PRESETS: dict[str, list[ElectrodeRow]] = {
    "F3-Fp2 (depression, pads)": [ElectrodeRow("F3", 2.0), ElectrodeRow("Fp2", -2.0)],
    "F3-F4 (bilateral DLPFC, pads)": [ElectrodeRow("F3", 2.0), ElectrodeRow("F4", -2.0)],
    "C3-Fp2 (motor, pads)": [ElectrodeRow("C3", 1.0), ElectrodeRow("Fp2", -1.0)],
    "HD 4x1 over F3": [ElectrodeRow("F3", 2.0, "disc", "12")] + [
        ElectrodeRow(n, -0.5, "disc", "12") for n in ("AF3", "F1", "FC3", "F5")],
}


# ------------------------------------------------------------------------------ parsing cells
def parse_channel(text: str) -> int | None:
    """A channel cell: blank or "-" -> None, else a whole number >= 1 (NavigatorError otherwise)."""
    t = text.strip()
    if t in ("", "-"):
        return None
    try:
        v = float(t)
    except ValueError:
        raise NavigatorError(f"channel {text!r}: use 1, 2, ... or leave it empty (one-channel tDCS)") from None
    if v != int(v) or v < 1:
        raise NavigatorError(f"channel {text!r}: use 1, 2, ... or leave it empty (one-channel tDCS)")
    return int(v)


def parse_frequency(text: str) -> float | None:
    """A frequency cell (Hz): blank or "-" -> None, else a positive number."""
    t = text.strip().lower().removesuffix("hz").strip()
    if t in ("", "-"):
        return None
    try:
        v = float(t)
    except ValueError:
        raise NavigatorError(f"frequency {text!r} is not a number (Hz)") from None
    if not v > 0 or not math.isfinite(v):
        raise NavigatorError(f"frequency {text!r} must be > 0 Hz")
    return v


def parse_angle(text: str) -> float:
    t = text.strip().lower().removesuffix("deg").strip()
    if t in ("", "-"):
        return 0.0
    try:
        v = float(t)
    except ValueError:
        raise NavigatorError(f"pad angle {text!r} is not a number (degrees)") from None
    if not math.isfinite(v):
        raise NavigatorError(f"pad angle {text!r} is not a number (degrees)")
    return v


def fmt_optional(v: float | int | None) -> str:
    return "" if v is None else f"{v:g}"


# ------------------------------------------------------------------------------ channels
@dataclass
class ChannelInfo:
    """One stimulator channel: its electrodes, injected current (sum of the positive
    currents, mA), the sum of all its currents (mA, must be 0) and its frequency (Hz, None
    when unset; ``frequencies`` lists every distinct value given)."""

    channel: int | None
    positions: list[str]
    injected_ma: float
    sum_ma: float
    frequencies: list[float]

    @property
    def frequency_hz(self) -> float | None:
        return self.frequencies[0] if len(self.frequencies) == 1 else None

    @property
    def balanced(self) -> bool:
        return abs(self.sum_ma) < 1e-6


def channel_summary(rows: list[ElectrodeRow]) -> list[ChannelInfo]:
    """The montage's channels in order (None = the electrodes without a channel first)."""
    out: dict[int | None, ChannelInfo] = {}
    for r in rows:
        c = out.setdefault(r.channel, ChannelInfo(r.channel, [], 0.0, 0.0, []))
        c.positions.append(r.position)
        c.injected_ma += max(r.current_ma, 0.0)
        c.sum_ma += r.current_ma
        if r.frequency_hz is not None and r.frequency_hz not in c.frequencies:
            c.frequencies.append(r.frequency_hz)
    return sorted(out.values(), key=lambda c: -1 if c.channel is None else c.channel)


def is_multichannel(rows: list[ElectrodeRow]) -> bool:
    """True when any electrode names a channel (a TI / multi-channel montage)."""
    return any(r.channel is not None for r in rows)


def channel_text(rows: list[ElectrodeRow]) -> str:
    """One line per channel: injected current, frequency, balance (what the panel shows)."""
    lines = []
    for c in channel_summary(rows):
        name = "no channel" if c.channel is None else f"channel {c.channel}"
        f = c.frequency_hz
        freq = "" if c.channel is None else (f" at {f:g} Hz" if f is not None else
                                             (" - frequencies differ: " + ", ".join(f"{v:g}" for v in c.frequencies)
                                              if c.frequencies else " - no frequency"))
        bal = "" if c.balanced else f"  (sum {c.sum_ma:+.3f} mA: must be 0)"
        lines.append(f"{name}: {c.injected_ma:.3f} mA{freq} ({', '.join(c.positions)}){bal}")
    return "\n".join(lines)


def ti_pairs(rows: list[ElectrodeRow]) -> tuple[list[ElectrodeRow], list[ElectrodeRow]]:
    """The rows of channel 1 and channel 2 of a temporal-interference montage; NavigatorError
    naming the problem unless there are exactly channels 1 and 2, each one anode and one
    cathode with opposite currents, and no electrode without a channel."""
    chans = channel_summary(rows)
    if [c.channel for c in chans] != [1, 2]:
        raise NavigatorError("a temporal-interference montage needs channels 1 and 2 on every electrode "
                             f"(found {', '.join('none' if c.channel is None else str(c.channel) for c in chans)})")
    pairs = []
    for ch in (1, 2):
        rs = [r for r in rows if r.channel == ch]
        if len(rs) != 2 or not (rs[0].current_ma * rs[1].current_ma < 0) or abs(rs[0].current_ma + rs[1].current_ma) > 1e-6:
            raise NavigatorError(f"TI channel {ch} needs two electrodes with opposite currents "
                                 f"(has {', '.join(f'{r.position} {r.current_ma:+g} mA' for r in rs)})")
        pairs.append(rs)
    return pairs[0], pairs[1]


# ------------------------------------------------------------------------------ pad rotation
def scalp_normal(scalp, center: np.ndarray, radius_mm: float) -> np.ndarray:
    """Outward unit normal of the scalp surface around ``center`` (area-weighted over the faces
    whose centroid is within ``radius_mm``; the nearest face when none is), as
    :meth:`navigator.tes.electrodes.Scalp.mean_normal` does on the mesh's outer surface."""
    v = np.asarray(scalp.vertices, float)
    f = np.asarray(scalp.faces, int)
    c = np.asarray(center, float)
    cent = v[f].mean(axis=1)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # 2 x area x unit normal
    d = np.linalg.norm(cent - c, axis=1)
    sel = d <= max(radius_mm, 1e-6)
    if not sel.any():
        sel = d == d.min()
    n = cross[sel].sum(axis=0)
    n /= max(np.linalg.norm(n), 1e-30)
    if n @ (c - v.mean(axis=0)) < 0:  # faces wound inwards: the normal points out of the head
        n = -n
    return n


def default_frame(normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of an unrotated electrode with outward ``normal`` (the rule of
    :func:`navigator.tes.electrodes.place_electrode`, :func:`~navigator.tes.electrodes.electrode_frame`)."""
    return electrode_frame(np.asarray(normal, float) / np.linalg.norm(normal))


def y_axis_for_angle(normal: np.ndarray, angle_deg: float) -> np.ndarray:
    """The pad's y axis (unit, RAS) for an in-plane rotation ``angle_deg`` (counter-clockwise seen from outside)."""
    x, y = default_frame(normal)
    a = math.radians(angle_deg)
    return -math.sin(a) * x + math.cos(a) * y


def angle_for_y_axis(normal: np.ndarray, y_axis: np.ndarray) -> float:
    """The rotation angle (degrees, in (-180, 180]) whose y axis is ``y_axis`` (inverse of :func:`y_axis_for_angle`)."""
    x, y = default_frame(normal)
    ya = np.asarray(y_axis, float)
    return float(math.degrees(math.atan2(-(ya @ x), ya @ y)))


# ------------------------------------------------------------------------------ rows <-> plan electrodes
def position_text(name: str, position: np.ndarray, eeg: dict[str, np.ndarray]) -> str:
    """The row's position: the EEG name (10-10 or 10-05, as ``eeg`` holds them) when the electrode
    sits on it (within 1 mm), else x,y,z."""
    p = np.asarray(position, float)
    for k, v in eeg.items():
        if k.lower() == name.lower() and np.linalg.norm(np.asarray(v, float) - p) < 1.0:
            return k
    if eeg:
        names = list(eeg)
        d = np.linalg.norm(np.array([eeg[n] for n in names], float) - p, axis=1)
        if d.min() < 1.0:
            return names[int(np.argmin(d))]
    return ",".join(f"{v:.2f}" for v in p)


def rows_from_electrodes(electrodes, eeg: dict[str, np.ndarray], scalp=None,
                         angles: dict[int, float] | None = None) -> list[ElectrodeRow]:
    """Rows for plan electrodes (:class:`navigator.export.plan.Electrode`); see the module
    docstring. ``angles`` (electrode index -> degrees) gives pad rotations known exactly (the
    optimizer's); otherwise a ``y_axis`` is turned into an angle with the ``scalp`` surface's normal."""
    rows = []
    for i, e in enumerate(electrodes):
        shape = e.shape if e.shape in PLAN_SHAPES else "ellipse"
        size = "x".join(f"{s:g}" for s in e.size_mm) if shape in ("rect", "ellipse", "ring") else f"{e.size_mm[0]:g}"
        angle = 0.0
        if angles and i in angles:
            angle = float(angles[i])
        elif e.y_axis is not None and scalp is not None:
            angle = angle_for_y_axis(scalp_normal(scalp, e.position, max(e.size_mm) / 2), e.y_axis)
        angle = 0.0 if abs(angle) < 1e-9 else round(angle, 6)
        rows.append(ElectrodeRow(position_text(e.name, e.position, eeg), float(e.current_ma), shape, size,
                                 e.channel, e.frequency_hz, angle))
    return rows


def electrodes_from_rows(rows: list[ElectrodeRow], locate, scalp=None) -> list:
    """Plan electrodes for rows whose position ``locate(position) -> (3,) mm | None`` finds
    (others are left out); a rotated pad's angle becomes its ``y_axis`` (needs ``scalp``)."""
    from navigator.export.plan import Electrode

    out = []
    for r in rows:
        p = locate(r.position)
        if p is None:
            continue
        size = r.size_mm()
        y_axis = None
        if r.angle_deg and scalp is not None:
            y_axis = y_axis_for_angle(scalp_normal(scalp, p, max(size) / 2), r.angle_deg)
        out.append(Electrode(r.position, p, r.current_ma, r.shape if r.shape in PLAN_SHAPES else "ellipse", size,
                             r.channel, r.frequency_hz, y_axis))
    return out


# ------------------------------------------------------------------------------ objective values
def _f(v, unit: str = "", digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}{(' ' + unit) if unit else ''}"
    return f"{v}{(' ' + unit) if unit else ''}"


def optimization_rows(mode: str, numbers: dict[str, Any], summary: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Labelled objective values and settings of a tES optimization (``numbers``: its
    "batch_numbers"; ``summary``: its summary.json, optional) for the tDCS and Results panels."""
    s = summary or {}
    n = numbers
    objective = s.get("objective") or n.get("objective")
    rows: list[tuple[str, str]] = [("Method", {"hd": "HD currents", "pads": "pad pair + rotation",
                                              "ti": "temporal interference", "center-surround": "centre-surround"}
                                    .get(mode, mode))]
    if mode == "ti":
        block = s.get("ti") or {}
        what = block.get("objective") or ("mean TI envelope " + ("along the cortical normal" if objective == "normal"
                                                                 else "(maximal over directions)"))
        rows.append(("Objective", what))
        rows.append(("Mean envelope at target (full model)", _f(n.get("field_at_target_v_per_m"), "V/m")))
        rows.append(("Mean envelope at target (leadfield)", _f(n.get("field_at_target_leadfield_v_per_m"), "V/m")))
        chans = block.get("channels") or []
        for k in (1, 2):
            c = next((c for c in chans if c.get("channel") == k), None)
            if c is not None:
                rows.append((f"Channel {k}", f"{c['anode']} -> {c['cathode']}, {c['current_mA']:.3g} mA, "
                                             f"{c['frequency_Hz']:g} Hz"))
            elif n.get(f"channel{k}") is not None:
                rows.append((f"Channel {k}", f"{n[f'channel{k}']}, {_f(n.get(f'channel{k}_ma'), 'mA')}"))
        if n.get("best_standard") is not None:
            rows.append((f"Best standard montage ({n['best_standard']})", _f(n.get("best_standard_v_per_m"), "V/m")))
            rows.append(("Gain over best standard", _f(n.get("gain_over_best_standard"), "x", 3)))
        for a in block.get("avoid") or []:
            rows.append((f"Avoid {a.get('spec')} ({a.get('radius_mm'):g} mm)",
                         f"{_f(a.get('mean_envelope_cem_v_per_m'), 'V/m')} (limit {_f(a.get('limit_v_per_m'), 'V/m')})"))
        if n.get("montages_evaluated") is not None:
            rows.append(("Montages evaluated / total", f"{n['montages_evaluated']} / {n.get('montages_total')}"))
        if n.get("seconds_after_leadfield") is not None:
            rows.append(("Search time after the leadfield", _f(n["seconds_after_leadfield"], "s", 3)))
    elif mode == "center-surround":
        rows.append(("Objective", "mean E at target " + ("along the cortical normal" if objective == "normal"
                                                         else "(magnitude)")))
        rows.append(("Field at target", _f(n.get("field_at_target_v_per_m"), "V/m")))
        rows.append(("Standard surround currents", _f(n.get("standard_surround_v_per_m"), "V/m")))
        rows.append(("Ring", f"{n.get('n_returns')} returns, radius {_f(n.get('ring_radius_mm'), 'mm')}"))
        rows.append(("Centre current", _f(n.get("centre_ma"), "mA")))
        for k, v in n.items():
            if k.startswith("current_") and k.endswith("_ma"):
                rows.append((f"Return {k[len('current_'):-len('_ma')]}", _f(v, "mA")))
    else:
        rows.append(("Objective", "mean E at target " + ("along the cortical normal" if objective == "normal"
                                                         else "(magnitude)")))
        rows.append(("Field at target", _f(n.get("field_at_target_v_per_m"), "V/m")))
        if mode == "pads":
            rows.append(("Pads", f"{n.get('anode')} (+) / {n.get('cathode')} (-), {_f(n.get('current_ma'), 'mA')}"))
            rows.append(("Rotation anode / cathode", f"{_f(n.get('anode_angle_deg'), 'deg')} / "
                                                     f"{_f(n.get('cathode_angle_deg'), 'deg')}"))
            rows.append(("Gain of the rotation", _f(n.get("rotation_gain"), "x", 3)))
        else:
            rows.append(("Active electrodes", _f(n.get("n_active_electrodes"))))
            rows.append(("Total injected", _f(n.get("total_injected_ma"), "mA")))
    if n.get("reference_f3_fp2_v_per_m") is not None:
        rows.append(("Reference F3-Fp2 pads 2 mA", _f(n["reference_f3_fp2_v_per_m"], "V/m")))
        rows.append(("Gain over reference", _f(n.get("gain_over_reference"), "x", 3)))
    if n.get("seconds") is not None:
        rows.append(("Wall time", _f(n["seconds"], "s", 3)))
    return rows
