"""Delivered-pulse logs from navigation sessions (Localite TriggerMarkers, Brainsight samples).

:func:`read_pulse_log` returns every *tracked* pulse as a coil pose in navigator's convention
(subject RAS mm, z into the head, y handle), with its dI/dt and stimulator output when the log
has them, so ``navigator simulate tms --poses FILE`` can re-simulate the delivered field.
Pulses whose coil was not tracked (identity or zero matrices, NaN, Localite "not tracked")
are skipped and counted in ``n_skipped``. Every tracked pose goes through the pose rule of
:mod:`navigator.export.rigid` (rounded rotations re-orthonormalized and recorded in
``pose_corrections``; a pose that is not rigid is refused naming the file and the pulse).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from navigator.core.errors import InputError
from navigator.export.rigid import NotRigid, PoseCorrection, rigidify, summarize_corrections

log = logging.getLogger(__name__)


@dataclass
class PulseLog:
    """Tracked pulses of one session.

    Attributes:
        poses: (N, 4, 4) coil poses, subject RAS mm, navigator coil axes.
        didt: (N,) dI/dt in A/s per pulse (NaN where a pulse lacks it), or None if the log has none.
        mso: (N,) stimulator output in % of maximum (NaN where missing), or None if the log has none.
        timestamps: (N,) seconds, on the log's own clock (Localite recordingTime / 1000; Brainsight
            seconds since midnight of the first sample's date), NaN if unknown.
        names: (N,) pulse labels from the log.
        n_skipped: pulses dropped because the coil was not tracked.
        source: the file read; format: the plugin name that read it.
        pose_corrections: pulses whose rounded rotation was re-orthonormalized on reading.
        didt_source: where the dI/dt values came from, in words (e.g. the Localite response
            channel "Value A (di/dt)" in A/us), or "" if the log has none.
    """

    poses: np.ndarray
    didt: np.ndarray | None
    mso: np.ndarray | None
    timestamps: np.ndarray
    names: list[str] = field(default_factory=list)
    n_skipped: int = 0
    source: str = ""
    format: str = ""
    pose_corrections: list[PoseCorrection] = field(default_factory=list)
    didt_source: str = ""

    def __post_init__(self) -> None:
        self.poses = np.asarray(self.poses, dtype=np.float64).reshape(-1, 4, 4)
        n = len(self.poses)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64).reshape(n)
        for name in ("didt", "mso"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, np.asarray(v, dtype=np.float64).reshape(n))

    def __len__(self) -> int:
        return len(self.poses)


def is_untracked(matrix: np.ndarray) -> bool:
    """True for the matrices navigators write when the coil was not seen by the camera.

    Zero (or partly non-finite) matrices and the identity (Localite writes it, with ``set="false"``,
    for a pulse whose coil was not tracked). Any other matrix is a measurement and goes through
    the pose rule (a non-rigid one is an error, not a silently dropped pulse).
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        return True
    if np.allclose(m[:3, :], 0.0):
        return True
    return bool(np.allclose(m, np.eye(4)))


class PulseLogBuilder:
    """Collects pulses while a reader walks a log, skipping untracked ones."""

    def __init__(self) -> None:
        self.poses: list[np.ndarray] = []
        self.didt: list[float] = []
        self.mso: list[float] = []
        self.t: list[float] = []
        self.names: list[str] = []
        self.n_skipped = 0
        self.has_didt = False
        self.has_mso = False

    def add(self, pose_ours: np.ndarray | None, didt: float | None, mso: float | None,
            t: float | None, name: str, tracked: bool = True, raw: np.ndarray | None = None) -> None:
        """Add one pulse; ``raw`` is the matrix as stored in the file (before any axis or space
        conversion), which is what untracked markers (identity, zeros) are recognised on."""
        check = raw if raw is not None else pose_ours
        if not tracked or pose_ours is None or check is None or is_untracked(check):
            self.n_skipped += 1
            return
        self.poses.append(np.asarray(pose_ours, dtype=np.float64))
        self.has_didt |= didt is not None
        self.has_mso |= mso is not None
        self.didt.append(np.nan if didt is None else float(didt))
        self.mso.append(np.nan if mso is None else float(mso))
        self.t.append(np.nan if t is None else float(t))
        self.names.append(name)

    def build(self, source: Path, fmt: str, didt_source: str = "") -> PulseLog:
        return PulseLog(
            poses=np.array(self.poses).reshape(-1, 4, 4),
            didt=np.array(self.didt) if self.has_didt else None,
            mso=np.array(self.mso) if self.has_mso else None,
            timestamps=np.array(self.t),
            names=self.names,
            n_skipped=self.n_skipped,
            source=str(source),
            format=fmt,
            didt_source=didt_source if self.has_didt else "",
        )


def read_pulse_log(path: str | Path, format: str | None = None) -> PulseLog:
    """Read a delivered-pulse log; the format is detected from the content unless given.

    Args:
        path: Localite TriggerMarkers XML or Brainsight exported session text (or any format a
            registered "pulse-log" plugin reads).
        format: plugin name (see ``navigator export --list``), or None to detect.
    Returns:
        :class:`PulseLog` of tracked pulses (poses in subject RAS mm, navigator coil axes).
    """
    from navigator.export.registry import call_reader, get_plugin, guess_plugin

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such pulse log")
    plugin = get_plugin(format, "pulse-log") if format else guess_plugin(path, "pulse-log")
    assert plugin.read_pulses is not None
    result = call_reader(plugin, plugin.read_pulses, path)
    if not isinstance(result, PulseLog):
        raise TypeError(f"pulse-log plugin {plugin.name!r} returned {type(result).__name__}, not PulseLog")
    for i in range(len(result)):
        name = result.names[i] if i < len(result.names) else f"#{i + 1}"
        try:
            rp = rigidify(result.poses[i])
        except NotRigid as exc:
            raise InputError(path, f"pulse {name!r} is not a rigid pose: {exc}") from None
        result.poses[i] = rp.matrix
        if rp.corrected:
            result.pose_corrections.append(PoseCorrection(name, rp.orthonormality_error, rp.correction_deg))
    if result.pose_corrections:
        log.info("%s: %s", path, summarize_corrections(result.pose_corrections, len(result)))
    if len(result) == 0 and result.n_skipped == 0:
        raise InputError(path, "the log holds no pulses")
    if len(result) == 0:
        raise InputError(path, f"no tracked pulses in the log ({result.n_skipped} untracked skipped)")
    if result.n_skipped:
        log.warning("%s: skipped %d untracked pulse(s) of %d", path, result.n_skipped, len(result) + result.n_skipped)
    return result
