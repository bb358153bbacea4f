"""Re-simulate the pulses actually delivered in a session, from a navigation system's pulse log
(Localite TriggerMarkers, Brainsight samples; read by :func:`navigator.export.pulses.read_pulse_log`).

The induced field is linear in dI/dt, so pulses whose coil poses agree within ``group_mm`` and
``group_deg`` share one FEM solve at 1 A/us and are scaled by their own dI/dt; the FEM matrix
and its preconditioner are assembled once for all of them. Outputs (in ``out_dir``):

- ``pulses.csv``: one row per tracked pulse: time, pose group, the dI/dt it was simulated with
  and where that came from (the log's dI/dt, the log's %MSO x the coil's maximum dI/dt, or
  ``--didt``/``--intensity`` for pulses the log gives none), the logged dI/dt and %MSO, mean |E|
  in the target region (V/m), pose centre (subject RAS mm);
- ``fields.msh`` etc. (as a single TMS simulation) for the most frequent pose at its median
  dI/dt, with extra element fields ``magnE_mean`` and ``magnE_max`` over all pulses;
- ``summary.json`` with the pulse counts (tracked, skipped untracked, pose groups), the
  distribution of the target field over pulses, each pulse's dI/dt and its source
  (``tms_delivered.intensity``) and the poses re-orthonormalized on reading.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.workspace import Workspace

log = logging.getLogger("navigator")
UNIT_DIDT = 1e6  # A/s (1 A/us)


def group_poses(poses: np.ndarray, group_mm: float = 1.0, group_deg: float = 2.0) -> np.ndarray:
    """Greedy grouping of (N, 4, 4) poses: a pose joins the first group whose representative is
    within ``group_mm`` (centre) and ``group_deg`` (relative rotation angle). Returns (N,) ids."""
    reps: list[np.ndarray] = []
    ids = np.empty(len(poses), np.int64)
    cos_tol = np.cos(np.deg2rad(group_deg))
    for i, P in enumerate(poses):
        for g, R in enumerate(reps):
            if np.linalg.norm(P[:3, 3] - R[:3, 3]) <= group_mm:
                # angle of R^T P from its trace
                c = (np.trace(R[:3, :3].T @ P[:3, :3]) - 1) / 2
                if c >= cos_tol:
                    ids[i] = g
                    break
        else:
            reps.append(P)
            ids[i] = len(reps) - 1
    return ids


#: Where a pulse's dI/dt came from (``PulseIntensities.source`` values).
FROM_LOG_DIDT = "log dI/dt"
FROM_LOG_MSO = "log %MSO x coil max dI/dt"
FROM_DIDT_OPTION = "--didt"
FROM_INTENSITY_OPTION = "--intensity (%MSO x coil max dI/dt)"


@dataclass
class PulseIntensities:
    """dI/dt of every pulse and where it came from.

    Attributes:
        didt: (N,) A/s.
        source: (N,) one of FROM_LOG_DIDT, FROM_LOG_MSO, FROM_DIDT_OPTION, FROM_INTENSITY_OPTION.
    """

    didt: np.ndarray
    source: list[str]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.source:
            out[s] = out.get(s, 0) + 1
        return out

    def describe(self) -> str:
        """One line: how many pulses took their intensity from where, and the dI/dt range (A/us)."""
        parts = []
        for src, n in self.counts().items():
            sel = np.array([s == src for s in self.source])
            lo, hi = self.didt[sel].min() / 1e6, self.didt[sel].max() / 1e6
            rng = f"{lo:.1f} A/us" if abs(hi - lo) < 0.05 else f"{lo:.1f}-{hi:.1f} A/us"
            parts.append(f"{n} from {src} ({rng})")
        return "pulse intensities: " + "; ".join(parts)


def pulse_intensities(log_didt, log_mso, coil, didt: float | None, intensity: float | None,
                      n: int, source: str | Path | None = None) -> PulseIntensities:
    """dI/dt (A/s) of every pulse: the log's own dI/dt first, then its %MSO times the coil's
    maximum dI/dt, then ``--didt`` / ``--intensity`` for pulses the log gives no intensity.
    ``source`` (the log file) is named in the errors."""
    where = f"{source}: " if source is not None else ""
    out = np.full(n, np.nan)
    source = [""] * n
    if log_didt is not None:
        out = np.asarray(log_didt, float).copy()
        for i in np.flatnonzero(np.isfinite(out)):
            source[i] = FROM_LOG_DIDT
    if log_mso is not None and coil.max_didt:
        mso = np.asarray(log_mso, float)
        for i in np.flatnonzero(~np.isfinite(out) & np.isfinite(mso)):
            out[i] = mso[i] / 100.0 * coil.max_didt
            source[i] = FROM_LOG_MSO
    missing = ~np.isfinite(out)
    if missing.any():
        if didt is not None:
            out[missing], fill = didt, FROM_DIDT_OPTION
        elif intensity is not None:
            out[missing], fill = coil.didt_from_percent_mso(intensity), FROM_INTENSITY_OPTION
        else:
            hint = "" if coil.max_didt or log_mso is None else " (the log's %MSO needs a coil with a known maximum dI/dt)"
            raise NavigatorError(f"{where}{int(missing.sum())} pulse(s) carry no intensity in the log{hint}; "
                                 "give --didt or --intensity for them")
        for i in np.flatnonzero(missing):
            source[i] = fill
    if (out <= 0).any():
        raise NavigatorError(f"{where}non-positive pulse intensities (check --didt / --intensity)")
    return PulseIntensities(out, source)


def pulse_amplitudes(log_didt, log_mso, coil, didt: float | None, intensity: float | None, n: int) -> np.ndarray:
    """dI/dt (A/s) of every pulse (see :func:`pulse_intensities`)."""
    return pulse_intensities(log_didt, log_mso, coil, didt, intensity, n).didt


def simulate_pulse_log_workspace(ws: Workspace, coil, poses_file: str | Path, *,
                                 out_dir: str | Path | None = None, didt: float | None = None,
                                 intensity: float | None = None, conductivity: dict[int, float] | None = None,
                                 target_spec: str | None = None, target_radius: float = 10.0,
                                 group_mm: float = 1.0, group_deg: float = 2.0, nifti: bool = True,
                                 progress: Progress | None = None, pulse_log=None) -> dict[str, Any]:
    """Re-simulate every tracked pulse of ``poses_file`` on the subject (see module docstring).

    ``pulse_log``: the :class:`navigator.export.pulses.PulseLog` of ``poses_file`` if the caller
    has read it already (the CLI does, to report a bad log before any work starts).
    """
    from navigator.core.atomic import atomic_path
    from navigator.export.pulses import read_pulse_log
    from navigator.fem.outputs import TargetRegion, write_field_outputs
    from navigator.fem.system import FemSystem
    from navigator.targets.head import Head
    from navigator.targets.roi import SphereRoi
    from navigator.tms.library import load_coil
    from navigator.tms.pose import resolve_target_point
    from navigator.tms.simulate import cortical_entry_point, solve_tms

    progress = ensure_progress(progress)
    t_start = time.perf_counter()
    head = Head.of(ws)
    mesh = head.mesh  # fails with a clear message before anything else is read
    coil = load_coil(coil) if isinstance(coil, (str, Path)) else coil
    plog = pulse_log if pulse_log is not None else read_pulse_log(poses_file)
    poses = np.asarray(plog.poses, float).reshape(-1, 4, 4)
    if len(poses) == 0:
        raise NavigatorError(f"{poses_file}: no tracked pulses ({plog.n_skipped} untracked skipped)")
    intens = pulse_intensities(plog.didt, plog.mso, coil, didt, intensity, len(poses), poses_file)
    amps = intens.didt
    log.info("%s", intens.describe())
    groups = group_poses(poses, group_mm, group_deg)
    n_groups = int(groups.max()) + 1
    log.info("%d tracked pulses (%d untracked skipped) in %d pose groups", len(poses), plog.n_skipped, n_groups)

    sigma = head.conductivity(conductivity)
    system = FemSystem(mesh, sigma, progress=progress.sub(0.0, 0.1, "assembly"))
    counts = np.bincount(groups, minlength=n_groups)
    main_group = int(np.argmax(counts))
    # target region: the given target, else the cortical entry under the most frequent pose
    if target_spec is not None:
        centre, _ = resolve_target_point(head, target_spec)
    else:
        centre = cortical_entry_point(mesh, poses[groups == main_group][0])
    roi = None if centre is None else SphereRoi(np.asarray(centre), target_radius).tet_mask(mesh)
    vol = mesh.tet_volumes()
    target_unit = np.zeros(n_groups)
    sum_mag = np.zeros(mesh.n_tets)
    max_mag = np.zeros(mesh.n_tets)
    main_fields = None
    for g in range(n_groups):
        progress.update(0.1 + 0.75 * g / n_groups, f"pose {g + 1}/{n_groups}")
        members = groups == g
        rep = poses[members][0]
        f = solve_tms(mesh, coil, rep, UNIT_DIDT, system=system, field="recovered")  # as simulate tms reports
        mag = np.linalg.norm(f.E, axis=1)
        scale = amps[members] / UNIT_DIDT
        sum_mag += mag * scale.sum()
        np.maximum(max_mag, mag * scale.max(), out=max_mag)
        if roi is not None:
            target_unit[g] = float((mag[roi] * vol[roi]).sum() / vol[roi].sum())
        if g == main_group:
            main_fields = f
    per_pulse = target_unit[groups] * amps / UNIT_DIDT
    out_dir = Path(out_dir) if out_dir is not None else ws.path("simulations") / "tms_delivered"
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "pulses.csv") as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["pulse", "time_s", "name", "pose_group", "didt_A_per_s", "intensity_source",
                    "logged_didt_A_per_s", "logged_percent_mso", "percent_mso",
                    "target_mean_magnE_V_per_m", "centre_x_mm", "centre_y_mm", "centre_z_mm"])

        def logged(values, i: int) -> str:
            return "" if values is None or not np.isfinite(values[i]) else repr(float(values[i]))

        for i in range(len(poses)):
            t = float(plog.timestamps[i]) if plog.timestamps is not None and i < len(plog.timestamps) else ""
            name = plog.names[i] if i < len(plog.names) else ""
            mso = 100.0 * amps[i] / coil.max_didt if coil.max_didt else ""
            c = poses[i][:3, 3]
            w.writerow([i, t, name, int(groups[i]), repr(float(amps[i])), intens.source[i],
                        logged(plog.didt, i), logged(plog.mso, i), mso,
                        repr(float(per_pulse[i])) if roi is not None else "", *map(float, c)])
    median_amp = float(np.median(amps[groups == main_group]))
    s = median_amp / UNIT_DIDT
    region = None if centre is None else TargetRegion(tuple(float(x) for x in centre), target_radius)
    stats = None
    if roi is not None:
        stats = {"mean": float(per_pulse.mean()), "sd": float(per_pulse.std()), "min": float(per_pulse.min()),
                 "max": float(per_pulse.max())}
    info = {"type": "tms-delivered", "pulse_log": str(poses_file), "coil": coil.name,
            "n_pulses": int(len(poses)), "n_untracked_skipped": int(plog.n_skipped), "n_pose_groups": n_groups,
            "grouping": {"mm": group_mm, "deg": group_deg},
            "shown_pulse": {"pose_group": main_group, "pulses_in_group": int(counts[main_group]),
                            "didt_A_per_s": median_amp, "pose": poses[groups == main_group][0].tolist()},
            "target_mean_magnE_over_pulses_V_per_m": stats,
            "intensity": {"summary": intens.describe(), "counts_by_source": intens.counts(),
                          "log_didt_source": plog.didt_source,
                          "per_pulse": [{"pulse": i, "name": plog.names[i] if i < len(plog.names) else "",
                                         "didt_A_per_s": float(amps[i]), "source": intens.source[i]}
                                        for i in range(len(poses))]},
            "pose_corrections": {"n": len(plog.pose_corrections),
                                 "max_orthonormality_error": max((c.orthonormality_error for c in plog.pose_corrections),
                                                                 default=0.0),
                                 "max_correction_deg": max((c.correction_deg for c in plog.pose_corrections),
                                                           default=0.0)},
            "seconds": time.perf_counter() - t_start}
    summary = write_field_outputs(out_dir, mesh, main_fields.v * s, main_fields.E * s, sigma,
                                  grids=head.output_grids(nifti),
                                  target=region,
                                  extra_tet_fields={"magnE_mean": sum_mag / len(poses), "magnE_max": max_mag},
                                  summary_extra={"tms_delivered": info},
                                  progress=progress.sub(0.85, 1.0, "outputs"), nifti=nifti)
    return summary
