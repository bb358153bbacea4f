"""Dose: stimulator output (% MSO) needed for a field at the target, and motor-threshold transfer.

The ROI-mean field is linear in dI/dt, so with ``F1`` = field per A/s at the target:
``%MSO = 100 * E_wanted / (F1 * max_didt)``. Motor-threshold transfer: the field at the motor
hotspot at the resting motor threshold (``rmt`` % MSO) is ``E_mt = F1_hotspot * max_didt * rmt/100``;
reproducing it at the target needs ``%MSO = rmt * F1_hotspot / F1_target``.
"""

from __future__ import annotations

from navigator.core.errors import NavigatorError


def percent_mso_for_field(field_per_didt: float, target_field_v_per_m: float, max_didt: float | None) -> float:
    """% MSO giving ``target_field_v_per_m`` when the target field is ``field_per_didt`` (V/m per A/s)."""
    if max_didt is None or max_didt <= 0:
        raise NavigatorError("the coil has no maximum dI/dt: cannot express the dose in % MSO")
    if field_per_didt <= 0:
        raise NavigatorError("the field at the target is not positive for this placement")
    return 100.0 * float(target_field_v_per_m) / (float(field_per_didt) * float(max_didt))


def motor_threshold_transfer(rmt_percent: float, hotspot_field_per_didt: float, target_field_per_didt: float) -> float:
    """% MSO at the target reproducing the hotspot field at ``rmt_percent`` % MSO."""
    if not (0 < rmt_percent <= 100):
        raise NavigatorError(f"resting motor threshold must be in (0, 100] % MSO, got {rmt_percent}")
    if target_field_per_didt <= 0 or hotspot_field_per_didt <= 0:
        raise NavigatorError("fields at the hotspot and target must be positive for the motor-threshold transfer")
    return float(rmt_percent) * float(hotspot_field_per_didt) / float(target_field_per_didt)
