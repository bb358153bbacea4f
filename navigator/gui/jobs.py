"""Long jobs of the GUI as module-level functions ``job(progress, ...)``.

They are plain Python (no Qt) so :class:`navigator.gui.workers.Task` can run them in a
separate process (``in_process=True``): a simulation's numerics then never compete with the UI
thread for the interpreter lock. Arguments and results must be picklable: workspaces are
passed as folder paths, coils by name or file, and the display grid as a :class:`GridSpec`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.progress import Progress
from navigator.core.volume import Volume
from navigator.gui.loaders import FieldResult, load_field_result


@dataclass
class GridSpec:
    """Shape and voxel -> world affine of the display grid (what result maps are resampled to)."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @classmethod
    def of(cls, vol: Volume | None) -> GridSpec | None:
        return None if vol is None else cls(tuple(vol.shape), np.asarray(vol.affine, float))

    def volume(self) -> Volume:
        return Volume(np.zeros(self.shape, np.uint8), self.affine)


def histogram_png(values: np.ndarray | None, weights: np.ndarray | None, *, peak: float | None,
                  target: float | None, title: str, xlabel: str = "|E| (V/m)") -> bytes | None:
    """The histogram of a field map (default |E|) as PNG bytes, drawn with matplotlib's Agg
    backend (thread/process safe)."""
    if values is None or len(values) == 0:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.4, 2.8), dpi=90, tight_layout=True)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    w = None if weights is None else np.asarray(weights, float) / 1000.0
    ax.hist(np.asarray(values, float), bins=50, weights=w, color="#d0502a")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("volume (cm$^3$)" if w is not None else "vertices")
    if peak is not None:
        ax.axvline(peak, color="k", ls="--", lw=1, label="peak (99.9th pct)")
    if target is not None:
        ax.axvline(target, color="b", lw=1, label="target mean")
    if peak is not None or target is not None:
        ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def finish_result(res: FieldResult) -> FieldResult:
    """Add the histogram picture(s) (computed here, off the UI thread): one per map a
    temporal-interference result offers."""
    if res.is_ti:
        shown = res.quantity
        for q in res.quantities:
            res.set_quantity(q)
            res.histogram_pngs[q] = histogram_png(res.histogram_values, res.histogram_weights, peak=res.peak,
                                                  target=res.target_field, title=f"{res.kind}: {res.short_name} in grey matter",
                                                  xlabel=res.map_title)
        res.set_quantity(shown)
        return res
    res.extra.setdefault("histogram_png", histogram_png(
        res.histogram_values, res.histogram_weights, peak=res.peak, target=res.target_field,
        title=f"{res.kind}: |E| in grey matter"))
    return res


def job_simulate_tms(progress: Progress, subject_dir: str, coil: str, grid: GridSpec | None,
                     kwargs: dict[str, Any]) -> FieldResult:
    """TMS simulation (navigator.tms.simulate.simulate_tms_workspace) and its display data."""
    from navigator.core.workspace import Workspace
    from navigator.tms.library import load_coil
    from navigator.tms.simulate import simulate_tms_workspace

    c = load_coil(coil)
    run = simulate_tms_workspace(Workspace.open(subject_dir), c, progress=progress.sub(0, 0.85), **kwargs)
    didt = run.summary["tms"]["didt_A_per_s"]
    res = load_field_result("tms", run.out_dir, None if grid is None else grid.volume(), progress.sub(0.85, 0.97),
                            extra={"coil": c.name, "dI/dt (A/us)": didt / 1e6})
    return finish_result(res)


def job_simulate_tdcs(progress: Progress, subject_dir: str, specs: list, out_dir: str, target,
                      grid: GridSpec | None) -> FieldResult:
    from navigator.core.workspace import Workspace
    from navigator.tes.simulate import simulate_tdcs_workspace

    simulate_tdcs_workspace(Workspace.open(subject_dir), specs, out_dir, target=target, progress=progress.sub(0, 0.85))
    res = load_field_result("tdcs", out_dir, None if grid is None else grid.volume(), progress.sub(0.85, 0.97),
                            extra={"electrodes": len(specs)})
    return finish_result(res)


@dataclass
class OptimizedTms:
    """What the GUI shows of a placement search: the best pose (4x4, subject RAS mm), the key
    numbers and the field at the optimum."""

    pose: np.ndarray
    numbers: dict[str, Any]
    field: FieldResult


@dataclass
class OptimizedTdcs:
    """What the GUI shows of a montage optimization: the method, the plan's electrodes
    (:class:`navigator.export.plan.Electrode`: position subject mm, current mA, shape, size,
    channel and frequency for TI, ``y_axis`` of rotated pads), the pads' rotation angles
    (electrode index -> degrees, exact from the optimizer), the key numbers, the summary and the field."""

    mode: str
    electrodes: list
    angles: dict[int, float]
    numbers: dict[str, Any]
    summary: dict[str, Any]
    field: FieldResult


def job_optimize_tms(progress: Progress, subject_dir: str, target: str, out_dir: str, coil: str,
                     search, grid: GridSpec | None) -> OptimizedTms:
    """Placement search (navigator.optimize.tms.optimize_tms_workspace) and its display data."""
    from navigator.core.workspace import Workspace
    from navigator.optimize.tms import optimize_tms_workspace

    result = optimize_tms_workspace(Workspace.open(subject_dir), target=target, out_dir=Path(out_dir), coil=coil,
                                    search=search, progress=progress.sub(0, 0.9))
    field = finish_result(load_field_result("tms-optimization", result.fields_dir,
                                            None if grid is None else grid.volume(), progress.sub(0.9, 1.0),
                                            extra=_scalars(result.numbers)))
    return OptimizedTms(result.pose, result.numbers, field)


def job_optimize_tdcs(progress: Progress, subject_dir: str, target: str, out_dir: str, search,
                      grid: GridSpec | None) -> OptimizedTdcs:
    """Montage optimization (navigator.optimize.tdcs.optimize_tdcs_workspace: HD, pads + rotation,
    temporal interference, centre-surround) and its display data (TI: the envelope map the
    objective maximized shown first)."""
    from navigator.core.workspace import Workspace
    from navigator.gui.ti_result import quantity_for_objective
    from navigator.optimize.tdcs import optimize_tdcs_workspace

    result = optimize_tdcs_workspace(Workspace.open(subject_dir), target=target, out_dir=Path(out_dir),
                                     search=search, progress=progress.sub(0, 0.9))
    field = finish_result(load_field_result("tdcs-optimization", result.fields_dir,
                                            None if grid is None else grid.volume(), progress.sub(0.9, 1.0),
                                            extra=_scalars(result.numbers),
                                            ti_quantity=quantity_for_objective(search.objective)))
    from navigator.gui.montage import optimization_rows

    field.extra["optimization_rows"] = optimization_rows(search.mode, result.numbers, result.summary)
    angles: dict[int, float] = {}
    rot = (result.summary.get("pads") or {}).get("rotation") or {}
    if search.mode == "pads" and "anode_angle_deg" in rot and len(result.montage.electrodes) == 2:
        angles = {0: float(rot["anode_angle_deg"]), 1: float(rot["cathode_angle_deg"])}
    return OptimizedTdcs(search.mode, list(result.montage.electrodes), angles, result.numbers, result.summary, field)


def job_simulate_ti(progress: Progress, subject_dir: str, pair1: list, pair2: list, out_dir: str, target,
                    grid: GridSpec | None, quantity: str = "TInormal") -> FieldResult:
    """Temporal-interference simulation of two channels (navigator.tes.simulate_ac.simulate_ti_workspace:
    each pair current-controlled, the other floating) and its envelope maps."""
    from navigator.core.workspace import Workspace
    from navigator.tes.simulate_ac import simulate_ti_workspace

    simulate_ti_workspace(Workspace.open(subject_dir), pair1, pair2, out_dir, target=target,
                          progress=progress.sub(0, 0.85))
    res = load_field_result("tdcs", out_dir, None if grid is None else grid.volume(), progress.sub(0.85, 0.97),
                            extra={"electrodes": len(pair1) + len(pair2)}, ti_quantity=quantity)
    return finish_result(res)


def job_load_entry(progress: Progress, entry, grid: GridSpec | None) -> FieldResult:
    """Read a result stored in the workspace (:class:`navigator.gui.session.ResultEntry`) for
    display: its fields when it has some, else its plan's numbers; nothing is recomputed."""
    import json

    from navigator.core.errors import InputError

    from navigator.gui.ti_result import quantity_for_objective

    extra: dict[str, Any] = {}
    quantity = None
    if entry.kind.endswith("optimization") and (entry.folder / "summary.json").exists():
        summary = json.loads((entry.folder / "summary.json").read_text(encoding="utf-8"))
        extra = _scalars(summary.get("batch_numbers") or summary.get("numbers") or {})
        if summary.get("type") == "tdcs-optimization" and summary.get("mode"):
            from navigator.gui.montage import optimization_rows

            extra["optimization_rows"] = optimization_rows(summary["mode"], summary.get("batch_numbers") or {}, summary)
        quantity = quantity_for_objective(summary.get("objective"))  # the map the optimizer maximized
    if entry.fields_dir is None:
        raise InputError(entry.folder, "this plan has no field results to show; use 'Use this plan' to load it")
    res = load_field_result(entry.kind, entry.fields_dir, None if grid is None else grid.volume(), progress,
                            extra=extra, ti_quantity=quantity)
    res.key = entry.key
    return finish_result(res)


def job_build_live_field(progress: Progress, subject_dir: str, coil: str, target, settings=None) -> dict[str, Any]:
    """Precompute the live field engine into the workspace cache (in a child process: the build
    is minutes of numerics); returns its info record. Nothing is built when the cache is current."""
    from navigator.core.workspace import Workspace
    from navigator.optimize.live_field import open_live_field
    from navigator.targets.head import Head

    engine = open_live_field(Head.of(Workspace.open(subject_dir)), coil, target, progress=progress, settings=settings)
    return {k: v for k, v in engine.info.items() if isinstance(v, (int, float, str, bool))}


def job_open_live_field(progress: Progress, head, coil, target, settings=None):
    """The live field engine from the workspace cache (:func:`navigator.optimize.live_field.open_live_field`)."""
    from navigator.optimize.live_field import open_live_field

    return open_live_field(head, coil, target, progress=progress, settings=settings)


def job_prepare(progress: Progress, subject_dir: str) -> dict[str, str]:
    """The preparation pipeline (segment, mesh, head coordinates); returns stage -> status."""
    from navigator.core.workspace import Workspace
    from navigator.pipeline import prepare

    report = prepare(Workspace.open(subject_dir), progress=progress)
    return dict(report.stages)


def _scalars(numbers: dict[str, Any]) -> dict[str, Any]:
    """The numbers shown beside a result (numbers and text; no None)."""
    return {k: v for k, v in numbers.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def summary_text(numbers: dict[str, Any]) -> str:
    """One line of an optimizer's key numbers for the panel."""
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in _scalars(numbers).items())


# ---------------------------------------------------------------------- child-process entry point
#: at most this often a progress message goes to the UI (each costs a repaint there)
PROGRESS_INTERVAL_S = 0.25

class EventToken:
    """A cancel token backed by a multiprocessing Event (same interface as CancelToken)."""

    def __init__(self, event) -> None:
        self._event = event

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


def child_main(fn, args, kwargs, queue, cancel_event) -> None:
    """Run ``fn(progress, *args, **kwargs)`` in a child process; report through ``queue``:
    ("progress", fraction, message), then ("result", value) | ("cancelled",) |
    ("error", navigator_error: bool, type name, message, traceback text)."""
    import os
    import time
    import traceback

    from navigator.core.errors import Cancelled, NavigatorError

    try:  # background numerics yield the CPU to the UI process on a busy machine
        os.nice(5)
    except (AttributeError, OSError):
        pass
    last = [0.0]

    def cb(fraction: float, message: str) -> None:
        now = time.perf_counter()
        if now - last[0] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
            last[0] = now
            queue.put(("progress", float(fraction), str(message)))

    progress = Progress(callback=cb, token=EventToken(cancel_event))  # type: ignore[arg-type]
    try:
        value = fn(progress, *args, **kwargs)
    except Cancelled:
        queue.put(("cancelled",))
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
        queue.put(("error", isinstance(exc, NavigatorError), type(exc).__name__, str(exc), traceback.format_exc()))
    else:
        try:
            queue.put(("result", value))
        except Exception as exc:  # noqa: BLE001 - unpicklable result
            queue.put(("error", False, type(exc).__name__, f"result could not be sent: {exc}", traceback.format_exc()))
