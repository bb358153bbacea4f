"""What the desktop app does, without Qt: the :class:`Controller` the actions and panels call.

The controller turns a user request (open this, set that target, simulate, move the coil)
into edits of the :class:`navigator.gui.state.PlanState` and background tasks; the views
follow the state's signals. It talks back to the window only through the small :class:`Ui`
protocol (start a task, a status message, the display grid, a remembered path), so it is
plain Python: no Qt import here. Every method raises :class:`NavigatorError` with a message
for the user on bad input; the window's action table shows it as a dialog.

Coordinates are subject scanner RAS, mm; intensities dI/dt in A/s unless named otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.gui import live as livemod
from navigator.gui import loaders
from navigator.gui.session import ResultEntry, discover_results, load_session, save_session

if TYPE_CHECKING:
    from navigator.io.dicom import DicomSeries

log = logging.getLogger("navigator.gui")

#: the standard comparison pose: the coil over EEG F3, handle 45 degrees back and out
STANDARD_POSITION = "F3"
STANDARD_HANDLE_DEG = 45.0


class Ui(Protocol):
    """What the controller needs from the window."""

    def run_task(self, name: str, fn: Callable, *args, on_done: Callable | None = None, in_process: bool = False,
                 side: bool = False, **kwargs) -> Any: ...

    def status(self, message: str, ms: int = 8000) -> None: ...

    def display_grid(self): ...

    def remember_path(self, path: str) -> None: ...

    def optimization_done(self, kind: str, text: str, rows: list[tuple[str, str]] | None = None) -> None: ...

    def live_delivered(self, request, result, error) -> None: ...

    def choose(self, title: str, label: str, options: list[str]) -> int | None: ...

    def offer_file(self, title: str, message: str, button: str) -> str | None: ...


@dataclass
class LiveResult:
    """Engine outputs for one request: the field at each named pose (None outside the
    engine's region) and the seconds the worker spent."""

    seq: int
    fields: dict[str, Any]
    seconds: float
    latency_s: float = 0.0
    outside: dict[str, str] = field(default_factory=dict)  # pose name -> why it is outside the region
    submitted: float = 0.0  # time.perf_counter() when the pose was requested


@dataclass
class LiveStatus:
    """What the live display shows: on/off, the engine, the comparison poses, the last fields."""

    engine: Any = None
    engine_key: tuple | None = None
    worker: livemod.LatestOnlyWorker | None = None
    compare: dict[str, np.ndarray] = field(default_factory=dict)
    shown: str = "current"
    last: LiveResult | None = None
    seq: int = 0


class Controller:
    """See the module docstring."""

    def __init__(self, state, ui: Ui):
        self.state = state
        self.ui = ui
        self.live = LiveStatus()
        #: settings of the live field precomputation (None: the engine's defaults)
        self.live_settings = None
        self._compare_memo: dict[tuple, tuple] = {}  # live fields of the comparison poses (worker thread only)
        self.last_plan_path: Path | None = None
        self.last_export: Path | None = None
        self._restoring = False

    # ================================================================== opening
    def open_path(self, path: str | Path, out_dir: str | Path | None = None) -> None:
        """Open anything the user can give: workspace, image, DICOM folder, m2m folder, mesh, plan."""
        path = Path(path)
        kind = loaders.classify_path(path)
        if kind == "workspace":
            self.open_workspace(path)
        elif kind == "plan":
            self.load_plan(path)
        elif kind == "m2m":
            self._import(path, out_dir, "m2m")
        elif kind == "mesh":
            self._import(path, out_dir, "mesh")
        elif kind == "dicom" and path.is_dir():
            self.open_dicom(path, out_dir)
        else:
            self.open_image(path, out_dir)

    def open_dicom(self, folder: str | Path, out_dir: str | Path | None = None, prepare: bool = True) -> None:
        """Open a DICOM folder. Its series are listed off the UI thread; a folder of several (a
        whole exam) opens its only 3-D T1-weighted series, or asks the user which series is the T1."""
        from navigator.io.dicom import list_dicom_series, structural_candidates

        folder = Path(folder)

        def done(series):
            if len(series) == 1:
                self.open_image(folder, out_dir, prepare=prepare, series=series[0])
                return
            t1 = structural_candidates(series, "T1")
            if len(t1) == 1:
                chosen = t1[0]
            else:
                offered = t1 or series
                why = (f"{len(t1)} look like a 3-D T1-weighted volume" if t1
                       else "none looks like a 3-D T1-weighted volume by its description")
                idx = self.ui.choose("Choose the T1 series",
                                     f"{folder.name} holds {len(series)} DICOM series; {why}. Which is the T1?",
                                     [s.summary() for s in offered])
                if idx is None:
                    self.ui.status(f"opening {folder.name} cancelled")
                    return
                chosen = offered[idx]
            self.ui.status(f"{folder.name}: using {chosen.summary()}", 15000)
            self.open_image(folder, out_dir, prepare=prepare, series=chosen)

        self.ui.run_task(f"Reading {folder.name}", lambda progress: list_dicom_series(folder), on_done=done)

    def open_workspace(self, path: str | Path) -> None:
        from navigator.core.workspace import Workspace

        ws = Workspace.open(path)
        self.ui.run_task(f"Loading {ws.subject_id}", _load_with_results, ws,
                         on_done=lambda d: self.subject_loaded(d, path))

    def open_image(self, path: str | Path, out_dir: str | Path | None = None, prepare: bool = True,
                   series: str | DicomSeries | None = None) -> None:
        """Create (or reopen) a workspace from a T1 image or DICOM folder (``series``: which of its
        series, as listed by :meth:`open_dicom`, which asks), show it, then prepare it."""
        from navigator.pipeline import create_workspace_from_image

        out = Path(out_dir) if out_dir else loaders.default_workspace_dir(path)

        def work(progress):
            progress.update(0.05, "reading image")
            ws = create_workspace_from_image(path, out, series=series)
            loaded = _load_with_results(progress.sub(0.5, 1.0), ws)
            return loaded, _needs_inv2(ws, loaded[0].image)

        def done(result):
            data, needs_inv2 = result
            self.subject_loaded(data, path)
            if needs_inv2:  # a raw MP2RAGE UNI: the segmentation would refuse it alone
                self.ask_inv2(prepare=prepare and not data[0].has_mesh)
            elif prepare and not data[0].has_mesh:
                self.prepare_head_model()

        self.ui.run_task(f"Opening {Path(path).name}", work, on_done=done)

    def ask_inv2(self, prepare: bool = True) -> None:
        """The subject's T1 is a raw MP2RAGE UNI image: explain, and let the user pick the INV2."""
        path = self.ui.offer_file(
            "MP2RAGE UNI image",
            "This image is an MP2RAGE UNI image: the air around the head is noise as bright as tissue, so the "
            "head cannot be segmented from it alone.\n\nChoose the second inversion (INV2) image of the same "
            "MP2RAGE: the two are combined into a T1-weighted image with a dark background.\n(Later: Subject > "
            "Add MP2RAGE INV2.)",
            "Choose INV2...")
        if path is None:
            self.ui.status("MP2RAGE UNI: add its INV2 to prepare (Subject > Add MP2RAGE INV2)", 20000)
            return
        self.add_inv2(path, prepare=prepare)

    def add_inv2(self, path: str | Path, prepare: bool = True) -> None:
        """Add the MP2RAGE second inversion ``path`` to the subject (its T1 is the UNI image),
        then prepare the head model; the file is checked first (same scanner space, not a UNI)."""
        from navigator.pipeline import create_workspace_from_image

        ws = self.state.require_workspace("adding an MP2RAGE INV2 image")
        path = Path(path)

        def work(progress):
            progress.update(0.1, "reading the INV2 image")
            create_workspace_from_image(ws.source_path("T1"), ws.root, inv2=path)
            return path

        def done(_):
            self.ui.status(f"MP2RAGE INV2 added: {path.name}", 10000)
            if prepare:
                self.prepare_head_model()

        self.ui.run_task(f"Adding {path.name}", work, on_done=done)

    def _import(self, path: Path, out_dir, kind: str) -> None:
        out = Path(out_dir) if out_dir else loaders.default_workspace_dir(path)

        def work(progress):
            from navigator.core.workspace import MANIFEST_NAME, Workspace

            if kind == "m2m":
                from navigator.meshing.import_head import import_simnibs

                ws = Workspace.open(out) if (out / MANIFEST_NAME).exists() else import_simnibs(path, out, progress.sub(0, .7))
            else:
                from navigator.meshing.import_head import import_mesh

                ws = import_mesh(path, out, progress=progress.sub(0, 0.7))
            return _load_with_results(progress.sub(0.7, 1.0), ws)

        self.ui.run_task(f"Importing {path.name}", work, on_done=lambda d: self.subject_loaded(d, path))

    def subject_loaded(self, loaded, opened: str | Path) -> None:
        """Show a loaded subject and bring back the session the user left in it."""
        data, entries, session, note = loaded
        self.stop_live()
        self._restoring = True
        try:
            self.state.set_subject(data)
            notes = [note] if note else []
            if session is not None:
                notes += self.state.apply_session(session)
            self.state.set_entries(entries)
        finally:
            self._restoring = False
        self.ui.remember_path(str(opened))
        msg = f"opened {opened}"
        if not data.has_mesh:
            msg += " - no head model yet (Subject > Prepare)"
        if entries:
            msg += f"; {len(entries)} stored result(s) in the Results panel"
        if session is not None:
            msg += "; last session restored"
        verdict = (data.qc or {}).get("verdict")
        if verdict and not verdict.get("plausible", True):  # a bad head model must be seen at once
            data.messages.insert(0, f"head model QC: {verdict['summary']} (Subject > Head model QC report)")
        if data.messages:  # what the user must check (QC, estimated fiducials, unreadable files)
            msg += " - " + "; ".join(data.messages)
        self.ui.status(msg, 30000 if data.messages else 10000)
        for m in data.messages + notes:
            log.warning(m)
        if session is not None and session.current_result in self.state.entries:
            self.select_result(session.current_result)

    def prepare_head_model(self) -> None:
        """Run the preparation pipeline (segment, mesh, head coordinates) in the background."""
        ws = self.state.require_workspace("preparing a head model")
        from navigator.gui.jobs import job_prepare

        def done(stages):
            self.ui.status("prepared: " + ", ".join(f"{k} {v}" for k, v in stages.items()), 15000)
            self.open_workspace(ws.root)

        self.ui.run_task("Preparing head model", job_prepare, str(ws.root), on_done=done, in_process=True)

    # ================================================================== session
    def save_session(self) -> Path | None:
        """Store the planning state in the workspace (atomic); nothing without a workspace."""
        ws = self.state.ws
        if ws is None or self._restoring:
            return None
        try:
            return save_session(ws, self.state.session_record())
        except OSError as exc:
            self.ui.status(f"could not save the session in {ws.root}: {exc}", 10000)
            return None

    # ================================================================== results
    def refresh_results(self) -> list[ResultEntry]:
        ws = self.state.require_workspace("listing results")
        entries = discover_results(ws)
        self.state.set_entries(entries)
        return entries

    def select_result(self, key: str) -> None:
        """Show a stored result: from memory when loaded, else read from disk in the background
        (nothing is recomputed)."""
        s = self.state
        if key in s.results:
            s.select_result(key)
            return
        entry = s.entries.get(key)
        if entry is None:
            raise NavigatorError(f"no result {key!r} in this workspace")
        from navigator.gui.jobs import GridSpec, job_load_entry

        self.ui.run_task(f"Reading {key}", job_load_entry, entry, GridSpec.of(self.ui.display_grid()),
                         on_done=lambda res: s.add_result(res, key), side=True)

    def apply_result(self, key: str) -> None:
        """Use a stored result's plan (coil pose or montage) as the current plan."""
        entry = self.state.entries.get(key)
        if entry is None or entry.plan_path is None:
            raise NavigatorError(f"{key}: this result has no plan to use (plan.json)")
        self.load_plan(entry.plan_path)

    # ================================================================== targets
    def resolve_target(self, spec: str, name: str | None = None) -> None:
        """Resolve a target SPEC on this subject in the background and make it the target."""
        ctx = self.state.ctx
        if ctx is None:
            raise NavigatorError("open a subject workspace before choosing a target")
        from navigator.targets.resolve import resolve_target

        def work(progress):
            progress.update(0.1, f"resolving {spec}")
            return resolve_target(ctx, spec, name=name)

        self.ui.run_task(f"Target {spec}", work, on_done=lambda t: self.state.set_target(t, f"Set target {t.name}"))

    def set_target_point(self, world) -> None:
        w = np.asarray(world, float)
        self.resolve_target(f"subject:{w[0]:.2f},{w[1]:.2f},{w[2]:.2f}", name="picked")

    def fmri_target(self, rest_path: str) -> None:
        ws = self.state.require_head_model("an fMRI target")
        from navigator.targets.fmri import fmri_target_workspace
        from navigator.targets.resolve import resolve_target

        ctx = self.state.ctx

        def work(progress):
            fmri_target_workspace(ws, rest_path, progress=progress.sub(0, 0.9))
            return resolve_target(ctx, "fmri", name="fmri")

        self.ui.run_task("fMRI target", work, on_done=lambda t: self.state.set_target(t, "Set fMRI target"))

    # ================================================================== coil moves
    def _scalp(self):
        s = self.state.subject
        if s is None or s.scalp is None:
            raise NavigatorError("the coil moves over the scalp: open a subject with a head model first")
        return s.scalp

    def _pose(self) -> np.ndarray:
        if self.state.pose is None:
            raise NavigatorError("set a target first: the coil is placed over it")
        return np.asarray(self.state.pose, float)

    def rotate_handle(self, step_deg: float) -> None:
        """Turn the handle; a hand-moved (explicit) pose turns about its own axis."""
        s = self.state
        if s.pose is None:
            return
        if s.explicit_pose is not None:
            s.move_coil(livemod.rotate_pose(s.explicit_pose, step_deg), f"Rotate handle {step_deg:+g} deg")
        else:
            s.set_handle_angle(s.handle_angle_deg + step_deg)

    def nudge(self, dx_mm: float, dy_mm: float) -> None:
        """Slide the coil over the scalp along its x / handle axes (keys)."""
        self.state.move_coil(livemod.nudge_pose(self._pose(), self._scalp(), dx_mm, dy_mm, self.state.distance_mm),
                             "Move coil")

    def tilt(self, axis: str, degrees: float) -> None:
        self.state.move_coil(livemod.tilt_pose(self._pose(), axis, degrees), f"Tilt coil ({axis})")

    def drag_coil_to(self, scalp_point) -> None:
        """One step of a mouse drag: the coil follows the scalp point under the mouse."""
        self.state.move_coil(livemod.move_pose_to(self._pose(), self._scalp(), np.asarray(scalp_point, float),
                                                  self.state.distance_mm), "Drag coil")

    def end_move(self) -> None:
        self.state.end_move()

    # ================================================================== simulation
    def simulate_tms(self, write_maps: bool = False) -> None:
        """The exact FEM solve at the current pose (``write_maps``: also the NIfTI volume maps)."""
        ws = self.state.require_head_model("a TMS simulation")
        s = self.state
        if s.pose is None:
            raise NavigatorError("set a target first: the coil is placed over it")
        from navigator.gui.jobs import GridSpec, job_simulate_tms

        s.coil  # noqa: B018 - fail here (with a dialog) if the coil cannot be loaded
        out = ws.path("simulations") / "gui_tms"
        kwargs: dict[str, Any] = {"didt": s.didt(), "out_dir": out, "nifti": bool(write_maps)}
        if s.explicit_pose is not None:
            kwargs["pose"] = s.pose.copy()
        else:
            p = s.target_point
            kwargs.update(target_spec=f"subject:{p[0]:.4f},{p[1]:.4f},{p[2]:.4f}",
                          handle_angle=s.handle_angle_deg, distance=s.distance_mm)
        self.ui.run_task("TMS simulation", job_simulate_tms, str(ws.root), s.coil_name,
                         GridSpec.of(self.ui.display_grid()), kwargs, on_done=self._result_ready(ws, out),
                         in_process=True)

    def simulate_tdcs(self, write_maps: bool = False, ti_quantity: str = "TInormal") -> None:
        """Simulate the montage: one-channel tDCS, or temporal interference when the electrodes
        name channels 1 and 2 (each pair current-controlled; ``ti_quantity`` "TInormal" |
        "TImax" is the envelope map shown first)."""
        ws = self.state.require_head_model("a tDCS simulation")
        from navigator.fem.outputs import TargetRegion
        from navigator.gui.jobs import GridSpec, job_simulate_tdcs, job_simulate_ti
        from navigator.gui.montage import is_multichannel, ti_pairs

        rows = self.state.montage
        if len(rows) < 2:
            raise NavigatorError("the montage needs at least two electrodes (tDCS panel)")
        tp = self.state.target_point
        target = None if tp is None else TargetRegion(tuple(float(x) for x in tp), 10.0,
                                                       self.state.target.name if self.state.target else "target")
        grid = GridSpec.of(self.ui.display_grid())
        if is_multichannel(rows):
            ch1, ch2 = ti_pairs(rows)
            pair1, pair2 = [r.spec() for r in ch1], [r.spec() for r in ch2]
            out = ws.path("simulations") / "gui_ti"
            self.ui.run_task("TI simulation", job_simulate_ti, str(ws.root), pair1, pair2, str(out), target, grid,
                             ti_quantity, on_done=self._result_ready(ws, out), in_process=True)
            return
        specs = [r.spec() for r in rows]
        out = ws.path("simulations") / "gui_tdcs"
        self.ui.run_task("tDCS simulation", job_simulate_tdcs, str(ws.root), specs, str(out), target,
                         grid, on_done=self._result_ready(ws, out), in_process=True)

    def _result_ready(self, ws, folder: Path) -> Callable:
        def done(res) -> None:
            key = ws.relpath(folder)
            self.state.set_entries(discover_results(ws))
            self.state.add_result(res, key)
            self.ui.status(f"{res.kind}: {res.short_name} peak {res.peak or float('nan'):.3g} V/m, "
                           f"target {res.target_field or float('nan'):.3g} V/m (full FEM result)", 15000)

        return done

    # ================================================================== optimization
    def _target(self):
        if self.state.target is None:
            raise NavigatorError("set a target first (Target panel)")
        return self.state.target

    def optimize_tms(self, search) -> None:
        """Optimize the coil placement (:func:`navigator.optimize.tms.optimize_tms_workspace`)."""
        ws = self.state.require_head_model("TMS optimization")
        from navigator.gui.jobs import GridSpec, job_optimize_tms

        out = ws.path("plans") / "gui_tms_optimization"
        ready = self._result_ready(ws, out)

        def done(result) -> None:
            from navigator.gui.jobs import summary_text

            self.ui.optimization_done("tms", summary_text(result.numbers) or "done")
            self.state.set_explicit_pose(result.pose, "Optimized coil pose")
            ready(result.field)

        self.ui.run_task("TMS optimization", job_optimize_tms, str(ws.root), self._target(), str(out),
                         self.state.coil_name, search, GridSpec.of(self.ui.display_grid()), on_done=done,
                         in_process=True)

    def optimize_tdcs(self, search) -> None:
        """Optimize the montage (:func:`navigator.optimize.tdcs.optimize_tdcs_workspace`, method
        ``search.mode``) in a child process (progress, Cancel); the optimized electrodes (with
        channel and frequency, or the pads' rotation) replace the montage as one undo step and
        the objective values go to the tDCS panel."""
        ws = self.state.require_head_model("tDCS optimization")
        from navigator.gui.jobs import GridSpec, job_optimize_tdcs

        out = ws.path("plans") / "gui_tdcs_optimization"
        ready = self._result_ready(ws, out)

        def done(result) -> None:
            from navigator.gui.jobs import summary_text
            from navigator.gui.loaders import named_positions
            from navigator.gui.montage import rows_from_electrodes

            s = self.state
            keep = [k for k, e in enumerate(result.electrodes) if abs(e.current_ma) >= 1e-6]
            angles = {i: result.angles[k] for i, k in enumerate(keep) if k in result.angles}
            rows = rows_from_electrodes([result.electrodes[k] for k in keep], named_positions(s.subject),
                                        s.subject.scalp if s.subject is not None else None, angles=angles)
            if rows:
                s.set_montage(rows, f"Optimized montage ({result.mode})")
            self.ui.optimization_done("tdcs", summary_text(result.numbers) or "done",
                                      result.field.extra.get("optimization_rows"))
            ready(result.field)

        self.ui.run_task(f"tDCS optimization ({search.mode})", job_optimize_tdcs, str(ws.root), self._target(),
                         str(out), search, GridSpec.of(self.ui.display_grid()), on_done=done, in_process=True)

    def set_result_quantity(self, quantity: str) -> None:
        """Show another map of the result on screen (TI: envelope along the normal or maximal)."""
        res = self.state.shown_result
        if res is None:
            raise NavigatorError("no result on screen")
        res.set_quantity(quantity)
        self.state.reshow_result()

    # ================================================================== plans and export
    def save_plan(self, path: str | Path | None = None) -> Path:
        from navigator.export.plan import save_plan
        from navigator.gui.state import plan_path_default

        ws = self.state.require_workspace("saving a plan")
        path = Path(path) if path else plan_path_default(ws, self.state.plan_name)
        plan = self.state.build_plan(path.parent.name if path.name == "plan.json" else path.stem)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_plan(plan, path)
        self.last_plan_path = path
        self.ui.remember_path(str(path))
        self.ui.status(f"plan saved to {path}", 10000)
        if path.resolve().is_relative_to(ws.root.resolve()):
            self.state.set_entries(discover_results(ws))
        return path

    def load_plan(self, path: str | Path) -> None:
        """Read a plan.json: target, coil pose, coil, intensity and montage (one undo step)."""
        from navigator.export.plan import load_plan

        ctx = self.state.ctx
        if ctx is None:
            raise NavigatorError("open the plan's subject workspace first, then load the plan")
        plan = load_plan(path)
        ws = self.state.ws
        if plan.subject and ws is not None and plan.subject != ws.subject_id:
            self.ui.status(f"note: plan was made for subject {plan.subject}, not {ws.subject_id}", 15000)
        from navigator.targets.resolve import resolve_target

        t = plan.targets[0] if plan.targets else None

        def work(progress):
            if t is None:
                return None
            return resolve_target(ctx, "subject:" + ",".join(repr(float(v)) for v in t.position), name=t.name)

        def done(resolved):
            s = self.state
            s.undo_stack.beginMacro(f"Load plan {plan.name}")
            try:
                if resolved is not None:
                    s.set_target(resolved, f"Target {resolved.name} from plan")
                if plan.coil_poses:
                    cp = plan.coil_poses[0]
                    if cp.coil:
                        try:
                            s.set_coil_name(cp.coil)
                        except NavigatorError as exc:
                            self.ui.status(f"plan coil {cp.coil!r} unknown: {exc}", 10000)
                    if cp.mso is not None:
                        s.set_intensity("mso", mso=cp.mso)
                    elif cp.didt is not None:
                        s.set_intensity("didt", didt_a_per_us=cp.didt / 1e6)
                    s.set_explicit_pose(cp.matrix, "Coil pose from plan")
                rows = s.montage_from_plan(plan)
                if rows:
                    s.set_montage(rows, "Montage from plan")
            finally:
                s.undo_stack.endMacro()
            s.plan_name = plan.name
            self.last_plan_path = Path(path)
            self.ui.remember_path(str(path))
            self.ui.status(f"plan {plan.name} loaded from {path}", 10000)

        self.ui.run_task(f"Loading plan {Path(path).name}", work, on_done=done)

    def export_plan(self, fmt: str, path: str, space: str | None) -> tuple[Path, str]:
        from navigator.export import export_plan

        if not path:
            raise NavigatorError("choose a file to export to")
        plan = self.state.build_plan()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        export_plan(plan, fmt, out, space)
        self.last_export = out
        text = (f"wrote {out} ({fmt}{', ' + space.upper() if space else ''}; "
                f"{len(plan.coil_poses)} coil pose(s), {len(plan.targets)} target(s))")
        self.ui.status(f"exported {out}", 10000)
        return out, text

    # ================================================================== live field
    def comparison_poses(self) -> dict[str, np.ndarray]:
        """The poses to compare with the current one: the optimizer's best (the newest TMS
        optimization plan in the workspace) and the standard F3 pose (handle 45 deg)."""
        from navigator.export.plan import load_plan
        from navigator.tms.pose import place_coil

        s = self.state
        out: dict[str, np.ndarray] = {}
        opt = [e for e in s.entries.values() if e.kind == "tms-optimization" and e.plan_path is not None]
        if opt:
            best = max(opt, key=lambda e: e.mtime)
            plan = load_plan(best.plan_path)
            if plan.coil_poses:
                out["optimizer"] = np.asarray(plan.coil_poses[0].matrix, float)
        if s.subject is not None and s.subject.scalp is not None:
            f3 = s.electrode_position(STANDARD_POSITION)
            if f3 is not None:
                out[STANDARD_POSITION] = place_coil(s.subject.scalp, f3, handle_angle=STANDARD_HANDLE_DEG,
                                                    distance=s.distance_mm).pose
        return out

    def live_key(self) -> tuple:
        s = self.state
        ws = s.require_head_model("the live field")
        if s.target is None:
            raise NavigatorError("set a target first: the live field covers the region around it")
        return (str(ws.root), s.coil_name, tuple(np.round(s.target_point, 3)))

    def start_live(self, on_ready: Callable[[], None] | None = None) -> None:
        """Open the live field engine for the current subject, coil and target (precomputed and
        cached in the workspace the first time, with progress; cancellable), then follow the pose."""
        key = self.live_key()
        if self.live.engine is not None and self.live.engine_key == key:
            self._start_worker()
            self.request_live()
            if on_ready:
                on_ready()
            return
        self.stop_live()
        from navigator.gui.jobs import job_build_live_field, job_open_live_field

        s = self.state
        head, coil, target, settings = s.ctx, s.coil, s.target, self.live_settings

        def done(engine) -> None:
            self.live.engine, self.live.engine_key = engine, key
            self._compare_memo = {}
            self._start_worker()
            self.live.compare = self.comparison_poses()
            self.request_live()
            if on_ready:
                on_ready()

        def built(info) -> None:
            self.ui.run_task("Opening the live field", job_open_live_field, head, coil, target, settings,
                             on_done=done)

        # build (or check) the cache in a child process, then load it here
        self.ui.run_task("Live field engine (first time: a few minutes)", job_build_live_field, key[0], s.coil_name,
                         target, settings, on_done=built, in_process=True)

    def _start_worker(self) -> None:
        if self.live.worker is None:
            self.live.worker = livemod.LatestOnlyWorker(self._live_compute, self.ui.live_delivered)

    @property
    def live_on(self) -> bool:
        return self.live.worker is not None

    def stop_live(self) -> None:
        w, self.live.worker = self.live.worker, None
        if w is not None:
            w.stop()
        self.live.last = None

    def forget_engine(self) -> None:
        """Drop the engine (subject, coil or target changed); live mode must be started again."""
        self.stop_live()
        self._compare_memo = {}
        self.live.engine = self.live.engine_key = None

    def request_live(self) -> None:
        """Ask for the field at the current pose (and the comparison poses); a newer request
        replaces one still waiting."""
        w, s = self.live.worker, self.state
        if w is None or s.pose is None:
            return
        self.live.seq += 1
        w.submit(livemod.LiveRequest(self.live.seq, np.asarray(s.pose, float).copy(), s.didt(),
                                     extra={k: v.copy() for k, v in self.live.compare.items()}))

    def _live_compute(self, req: livemod.LiveRequest) -> LiveResult:
        eng = self.live.engine
        t0 = time.perf_counter()
        fields: dict[str, Any] = {}
        reasons: dict[str, str] = {}
        for name, pose in (("current", req.pose), *req.extra.items()):
            memo = (name, pose.tobytes(), float(req.didt_a_per_s))
            if name != "current" and memo in self._compare_memo:  # the comparison poses stay put
                fields[name], why = self._compare_memo[memo]
                if why is not None:
                    reasons[name] = why
                continue
            why = eng.validity.why_outside(pose)
            fields[name] = None
            if why is None:
                try:
                    fields[name] = eng.evaluate(pose, req.didt_a_per_s)
                except NavigatorError as exc:  # on the edge of the precomputed lattices
                    why = str(exc)
            if why is not None:
                reasons[name] = why
            if name != "current":
                self._compare_memo[memo] = (fields[name], why)
        t1 = time.perf_counter()
        return LiveResult(req.seq, fields, t1 - t0, t1 - req.submitted, reasons, req.submitted)

    def live_cortex_values(self, live_field, n_vertices: int) -> np.ndarray:
        """|E| (V/m) on the whole middle-GM surface: the engine's region, NaN elsewhere."""
        vals = np.full(n_vertices, np.nan)
        vals[np.asarray(self.live.engine.region_vertices)] = np.asarray(live_field.magnitude, float)
        return vals


def _needs_inv2(ws, image) -> bool:
    """The workspace's T1 is a raw MP2RAGE UNI image and it has no INV2 yet."""
    from navigator.segmentation.mp2rage import looks_like_raw_uni

    return image is not None and "INV2" not in ws.sources() and looks_like_raw_uni(image)


def _load_with_results(progress, ws):
    """Worker-thread part of opening a workspace: display data, stored results, stored session."""
    data = loaders.load_subject(ws, progress)
    session, note = load_session(ws)
    return data, discover_results(ws), session, note
