"""The main window: three linked slices + 3-D view, side panels, menus, progress and cancel.

Every long step (loading, preparing, resolving targets, simulating, optimizing) runs on a
worker thread (:mod:`navigator.gui.workers`); the UI thread only hands results to the views.
Every user action is wrapped so that an error becomes a dialog, never a crash.
"""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QSettings, Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTabWidget,
    QToolBar,
    QWidget,
)

from navigator.core.errors import NavigatorError
from navigator.gui import jobs, loaders  # noqa: F401 - jobs imported now, not on the first click
from navigator.gui.dialogs import show_error, show_exception
from navigator.gui.panels.export import ExportPanel
from navigator.gui.panels.results import ResultsPanel
from navigator.gui.panels.target import TargetPanel
from navigator.gui.panels.tdcs import TdcsPanel
from navigator.gui.panels.tms import TmsPanel
from navigator.gui.slice_view import SliceViews
from navigator.gui.state import PlanState, plan_path_default
from navigator.gui.view3d import View3D
from navigator.gui.workers import TaskError, TaskRunner

log = logging.getLogger("navigator.gui")

MAX_RECENT = 8
TISSUES = {0: "background", 1: "WM", 2: "GM", 3: "CSF", 4: "bone", 5: "scalp", 6: "eyes", 7: "compact bone",
           8: "spongy bone", 9: "blood", 10: "muscle"}


def guarded(fn: Callable) -> Callable:
    """Run a UI action; any exception becomes an error dialog and the window stays usable."""

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            show_exception(self, exc)
            return None

    return wrapper


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("navigator - TMS/tDCS planning")
        self.setObjectName("mainWindow")
        self.settings = settings if settings is not None else QSettings("navigator", "navigator-gui")
        self.state = PlanState(self)
        self.runner = TaskRunner(self)
        self.last_export: Path | None = None
        self.last_plan_path: Path | None = None

        # ---- views
        self.slices = SliceViews(self)
        self.view3d = View3D(self)
        views = QWidget()
        grid = QGridLayout(views)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setSpacing(3)
        grid.addWidget(self.slices.views["axial"], 0, 0)
        grid.addWidget(self.slices.views["coronal"], 0, 1)
        grid.addWidget(self.slices.views["sagittal"], 1, 0)
        grid.addWidget(self.view3d, 1, 1)

        # ---- panels
        self.tabs = QTabWidget()
        self.tabs.setObjectName("panels")
        self.target_panel = TargetPanel(self.state, self)
        self.tms_panel = TmsPanel(self.state, self)
        self.tdcs_panel = TdcsPanel(self.state, self)
        self.results_panel = ResultsPanel(self.state, self)
        self.export_panel = ExportPanel(self.state, self)
        for w, name in ((self.target_panel, "Target"), (self.tms_panel, "TMS"), (self.tdcs_panel, "tDCS"),
                        (self.results_panel, "Results"), (self.export_panel, "Export")):
            self.tabs.addTab(w, name)
        self.tabs.setMinimumWidth(440)
        self.tabs.currentChanged.connect(self._tab_changed)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(views)
        split.addWidget(self.tabs)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        self.setCentralWidget(split)

        # ---- status bar: coordinates, progress, cancel
        self.coord_label = QLabel("open a subject (File > Open)")
        self.coord_label.setObjectName("coordLabel")
        self.statusBar().addWidget(self.coord_label, 1)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(260)
        self.progress_bar.setFormat("%p%")
        self.progress_bar.hide()
        self.progress_text = QLabel("")
        self.progress_text.setObjectName("progressText")
        # fixed size: changing the text must not re-layout the window (that would re-render the 3-D view)
        self.progress_text.setFixedWidth(360)
        self.coord_label.setMinimumWidth(200)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.clicked.connect(self.cancel_task)
        self.cancel_button.hide()
        self.cancel_button.setFixedWidth(80)
        for w in (self.progress_text, self.progress_bar, self.cancel_button):
            self.statusBar().addPermanentWidget(w)
        self.runner.started.connect(self._task_started)
        self.runner.progress.connect(self._task_progress)
        self.runner.done.connect(self._task_done)

        self._build_actions()
        self._build_toolbar()

        # ---- model -> views
        self.slices.cursorChanged.connect(self._show_coordinates)
        self.slices.hovered.connect(self._show_coordinates)
        self.slices.targetPicked.connect(self.set_target_point)
        self.view3d.targetPicked.connect(self.set_target_point)
        self.state.targetChanged.connect(self._target_changed)
        self.state.poseChanged.connect(self._pose_changed)
        self.state.montageChanged.connect(self._montage_changed)
        self.state.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.resize(1500, 950)
        # Everything allocated so far (imported modules, the window) lives as long as the app.
        # Full garbage collections run on the UI thread and scanned all of it: ~0.26 s per
        # collection with the GUI's imports, a visible stall. Frozen objects are not scanned.
        gc.collect()
        gc.freeze()

    # ================================================================== actions and menus
    def _action(self, text: str, slot: Callable, shortcut: Any = None, name: str | None = None) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(QKeySequence(shortcut))
        a.triggered.connect(lambda checked=False: slot())
        if name:
            a.setObjectName(name)
        self.addAction(a)
        return a

    def _build_actions(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self._action("&Open image / workspace...", self.open_dialog, QKeySequence.StandardKey.Open,
                                 "actionOpen"))
        m.addAction(self._action("Open &DICOM or m2m folder...", self.open_folder_dialog, "Ctrl+Shift+D"))
        self.recent_menu = m.addMenu("Open &recent")
        self._refresh_recent()
        m.addSeparator()
        m.addAction(self._action("&Save plan...", self.save_plan_dialog, QKeySequence.StandardKey.Save,
                                 "actionSavePlan"))
        m.addAction(self._action("&Load plan...", self.load_plan_dialog, "Ctrl+L", "actionLoadPlan"))
        m.addAction(self._action("&Export plan", lambda: self.export_panel.export(), "Ctrl+E"))
        m.addSeparator()
        m.addAction(self._action("Save &screenshot...", self.screenshot_dialog, "Ctrl+Shift+S"))
        m.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))

        m = mb.addMenu("&Edit")
        self.undo_action = self.state.undo_stack.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.state.undo_stack.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts([QKeySequence.StandardKey.Redo, QKeySequence("Ctrl+Shift+Z")])
        m.addAction(self.undo_action)
        m.addAction(self.redo_action)

        m = mb.addMenu("&Subject")
        m.addAction(self._action("&Prepare head model", self.prepare_head_model, "Ctrl+P"))
        m.addAction(self._action("&Cancel running task", self.cancel_task, "Esc"))

        m = mb.addMenu("&Plan")
        m.addAction(self._action("Simulate &TMS", self.simulate_tms, "Ctrl+T"))
        m.addAction(self._action("Simulate t&DCS", self.simulate_tdcs, "Ctrl+D"))
        m.addAction(self._action("&Optimize TMS placement", self.optimize_tms, "Ctrl+Shift+T"))
        m.addAction(self._action("Optimize tDCS &montage", self.optimize_tdcs))
        m.addAction(self._action("Rotate handle -5 deg", lambda: self.rotate_handle(-5), "["))
        m.addAction(self._action("Rotate handle +5 deg", lambda: self.rotate_handle(5), "]"))

        m = mb.addMenu("&View")
        for i, name in enumerate(("Target", "TMS", "tDCS", "Results", "Export")):
            m.addAction(self._action(f"{name} panel", functools.partial(self.tabs.setCurrentIndex, i), f"Ctrl+{i + 1}"))
        m = mb.addMenu("&Help")
        m.addAction(self._action("&Keyboard and mouse", self.show_help, "F1"))

    def _build_toolbar(self) -> None:
        tb = QToolBar("Display")
        tb.setObjectName("displayToolbar")
        self.addToolBar(tb)
        tb.addWidget(QLabel(" Labels "))
        self.label_opacity = QSlider(Qt.Orientation.Horizontal)
        self.label_opacity.setObjectName("labelOpacity")
        self.label_opacity.setRange(0, 100)
        self.label_opacity.setValue(35)
        self.label_opacity.setMaximumWidth(120)
        self.label_opacity.valueChanged.connect(self._label_opacity)
        tb.addWidget(self.label_opacity)
        tb.addWidget(QLabel("  Scalp (3-D) "))
        self.scalp_opacity = QSlider(Qt.Orientation.Horizontal)
        self.scalp_opacity.setObjectName("scalpOpacity")
        self.scalp_opacity.setRange(0, 100)
        self.scalp_opacity.setValue(35)
        self.scalp_opacity.setMaximumWidth(120)
        self.scalp_opacity.valueChanged.connect(lambda v: self.view3d.set_scalp_opacity(v / 100.0))
        tb.addWidget(self.scalp_opacity)
        self.show_eeg = QCheckBox("10-10 points")
        self.show_eeg.setChecked(True)
        self.show_eeg.toggled.connect(lambda _: self._points_changed())
        tb.addWidget(self.show_eeg)
        b = QPushButton("Reset window/level")
        b.clicked.connect(self._reset_wl)
        tb.addWidget(b)

    def _tab_changed(self, index: int) -> None:
        """3-D view shows the coil on the TMS side and the electrodes on the tDCS side."""
        w = self.tabs.widget(index)
        mode = "tdcs" if w is self.tdcs_panel else "tms" if w is self.tms_panel else "all"
        if w is self.results_panel and self.state.current_result:
            mode = "tdcs" if self.state.current_result.startswith("tdcs") else "tms"
        self.view3d.set_mode(mode)

    def _label_opacity(self, v: int) -> None:
        self.slices.display.label_opacity = v / 100.0
        self.slices.refresh()

    def _reset_wl(self) -> None:
        if self.slices.display.volume is not None:
            cur = self.slices.display.cursor_ijk.copy()
            labels, field = self.slices.display.labels, self.slices.display.field
            self.slices.display.set_volume(self.slices.display.volume)
            self.slices.display.labels, self.slices.display.field = labels, field
            self.slices.display.cursor_ijk = cur
            self.slices.refresh()

    def show_help(self) -> None:
        from PyQt6.QtWidgets import QMessageBox

        QMessageBox.information(self, "navigator - keyboard and mouse", (
            "Slices: left click moves the cursor; Ctrl+click sets the target; right-drag changes window/level; "
            "wheel or PageUp/PageDown changes slice.\n3-D: drag rotates, wheel zooms, P over the cortex sets "
            "the target.\n[ and ] rotate the coil handle by 5 degrees. Ctrl+Z / Ctrl+Shift+Z undo/redo target "
            "and pose edits.\nCtrl+O open, Ctrl+S save plan, Ctrl+L load plan, Ctrl+E export, Ctrl+T simulate "
            "TMS, Ctrl+D simulate tDCS, Ctrl+1..5 panels, Esc cancels the running task."))

    # ================================================================== tasks
    def run_task(self, name: str, fn: Callable, *args, on_done: Callable | None = None, in_process: bool = False,
                 **kwargs):
        """Start ``fn(progress, *args, **kwargs)`` in the background (one task at a time); with
        ``in_process`` in a separate process (:mod:`navigator.gui.jobs`)."""
        if self.runner.busy:
            raise NavigatorError(f"'{self.runner.current.name}' is still running: wait for it or cancel it (Esc)")

        def failed(err: TaskError) -> None:
            title, message = __import__("navigator.gui.dialogs", fromlist=["error_message"]).error_message(
                err.exception)
            show_error(self, title, f"{name} failed: {message}", err.details)

        def cancelled() -> None:
            self.statusBar().showMessage(f"{name} cancelled", 8000)

        def done(result) -> None:
            if on_done is None:
                return
            try:
                on_done(result)
            except Exception as exc:  # noqa: BLE001
                show_exception(self, exc)

        return self.runner.start(name, fn, *args, on_done=done, on_error=failed, on_cancel=cancelled,
                                 in_process=in_process, **kwargs)

    def cancel_task(self) -> None:
        if self.runner.busy:
            self.runner.cancel()
            self.progress_text.setText("cancelling...")

    def _task_started(self, name: str) -> None:
        self.progress_text.setText(name)
        self.progress_bar.setValue(0)
        self.progress_bar.show()
        self.cancel_button.show()
        self.cancel_button.setEnabled(True)

    def _task_progress(self, fraction: float, message: str) -> None:
        value = int(fraction * 1000)
        if value != self.progress_bar.value():
            self.progress_bar.setValue(value)
        if self.runner.current is not None:
            text = f"{self.runner.current.name}: {message}" if message else self.runner.current.name
            fm = self.progress_text.fontMetrics()
            text = fm.elidedText(text, Qt.TextElideMode.ElideRight, self.progress_text.width())
            if text != self.progress_text.text():
                self.progress_text.setText(text)

    def _task_done(self, name: str) -> None:
        if not self.runner.busy:
            self.progress_bar.hide()
            self.cancel_button.hide()
            self.progress_text.setText("")

    # ================================================================== opening
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open image, workspace manifest, head mesh or plan", str(Path.home()),
            "Supported (*.nii *.nii.gz *.mgz *.msh subject.json *.json);;All files (*)")
        if path:
            p = Path(path)
            self.open_path(p.parent if p.name == "subject.json" else p)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open workspace, DICOM folder or SimNIBS m2m folder")
        if path:
            self.open_path(path)

    @guarded
    def open_path(self, path: str | Path, out_dir: str | Path | None = None) -> None:
        """Open anything the user can give: workspace, image, DICOM folder, m2m folder, mesh, plan."""
        path = Path(path)
        kind = loaders.classify_path(path)
        if kind == "workspace":
            self.open_workspace(path)
        elif kind == "plan":
            self.load_plan(path)
        elif kind == "m2m":
            self.import_m2m(path, out_dir)
        elif kind == "mesh":
            self.import_mesh(path, out_dir)
        else:
            self.open_image(path, out_dir)

    def open_workspace(self, path: str | Path) -> None:
        from navigator.core.workspace import Workspace

        ws = Workspace.open(path)

        def work(progress):
            return loaders.load_subject(ws, progress)

        self.run_task(f"Loading {ws.subject_id}", work, on_done=lambda d: self._subject_loaded(d, path))

    def open_image(self, path: str | Path, out_dir: str | Path | None = None, prepare: bool = True) -> None:
        """Create (or reopen) a workspace from a T1 image or DICOM folder, show it, then prepare it."""
        from navigator.pipeline import create_workspace_from_image

        out = Path(out_dir) if out_dir else loaders.default_workspace_dir(path)

        def work(progress):
            progress.update(0.05, "reading image")
            ws = create_workspace_from_image(path, out)
            return loaders.load_subject(ws, progress.sub(0.5, 1.0))

        def done(data):
            self._subject_loaded(data, path)
            if prepare and not data.has_mesh:
                self.prepare_head_model()

        self.run_task(f"Opening {Path(path).name}", work, on_done=done)

    def import_m2m(self, path: str | Path, out_dir: str | Path | None = None) -> None:
        from navigator.meshing.import_head import import_simnibs

        out = Path(out_dir) if out_dir else loaders.default_workspace_dir(path)

        def work(progress):
            from navigator.core.workspace import MANIFEST_NAME, Workspace

            ws = Workspace.open(out) if (out / MANIFEST_NAME).exists() else import_simnibs(path, out, progress.sub(0, .7))
            return loaders.load_subject(ws, progress.sub(0.7, 1.0))

        self.run_task(f"Importing {Path(path).name}", work, on_done=lambda d: self._subject_loaded(d, path))

    def import_mesh(self, path: str | Path, out_dir: str | Path | None = None) -> None:
        from navigator.meshing.import_head import import_mesh

        out = Path(out_dir) if out_dir else loaders.default_workspace_dir(path)

        def work(progress):
            ws = import_mesh(path, out, progress=progress.sub(0, 0.7))
            return loaders.load_subject(ws, progress.sub(0.7, 1.0))

        self.run_task(f"Importing {Path(path).name}", work, on_done=lambda d: self._subject_loaded(d, path))

    def _subject_loaded(self, data: loaders.SubjectData, opened: str | Path) -> None:
        self.state.set_subject(data)
        self.slices.set_volume(data.image, data.labels)
        self.view3d.set_head(data.scalp, data.cortex)
        self._points_changed()
        self._montage_changed()
        self.setWindowTitle(f"navigator - {data.ws.subject_id if data.ws else Path(opened).name}")
        self.add_recent(str(opened))
        msg = f"opened {opened}"
        if not data.has_mesh:
            msg += " - no head model yet (Subject > Prepare)"
        self.statusBar().showMessage(msg, 10000)
        for m in data.messages:
            log.warning(m)
        self.export_panel._format_changed(self.export_panel.format.currentText())
        self._show_coordinates(None)

    @guarded
    def prepare_head_model(self) -> None:
        """Run the preparation pipeline (segment, mesh, head coordinates) in the background."""
        ws = self.state.require_workspace("preparing a head model")
        from navigator.gui.jobs import job_prepare

        def done(stages):
            self.statusBar().showMessage("prepared: " + ", ".join(f"{k} {v}" for k, v in stages.items()), 15000)
            self.open_workspace(ws.root)

        self.run_task("Preparing head model", job_prepare, str(ws.root), on_done=done, in_process=True)

    # ---- recent files
    def recent_files(self) -> list[str]:
        v = self.settings.value("recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(x) for x in (v or [])]

    def add_recent(self, path: str) -> None:
        items = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recent", items[:MAX_RECENT])
        self.settings.sync()
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        items = self.recent_files()
        if not items:
            a = self.recent_menu.addAction("(none)")
            a.setEnabled(False)
        for p in items:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(functools.partial(self.open_path, p))

    # ================================================================== coordinates / overlays
    def _show_coordinates(self, world) -> None:
        d = self.slices.display
        if d.volume is None:
            return
        if world is None:
            world = d.cursor_world
        world = np.asarray(world, float)
        parts = [f"RAS ({world[0]:.1f}, {world[1]:.1f}, {world[2]:.1f}) mm"]
        ctx = self.state.ctx
        tr = None
        if ctx is not None and "transform" in ctx.__dict__:
            tr = ctx.__dict__["transform"]
        if tr is not None:
            mni = tr.subject_to_mni(world)[0]
            parts.append(f"MNI ({mni[0]:.1f}, {mni[1]:.1f}, {mni[2]:.1f})")
        else:
            parts.append("MNI -")
        ijk = np.rint(d.volume.world_to_voxel(world)[0]).astype(int)
        if np.all(ijk >= 0) and np.all(ijk < np.array(d.volume.shape)):
            parts.append(f"T1 {float(d.volume.data[tuple(ijk)]):.4g}")
            if d.labels is not None:
                lab = int(d.labels[tuple(ijk)])
                parts.append(f"label {lab} {TISSUES.get(lab, '')}")
            if d.field is not None:
                parts.append(f"|E| {float(d.field[tuple(ijk)]):.3g} V/m")
        self.coord_label.setText("   ".join(parts))

    def set_field_visible(self, on: bool) -> None:
        self.slices.display.show_field = bool(on)
        self.slices.refresh()
        res = self.state.results.get(self.state.current_result or "")
        if res is not None:
            self.view3d.set_cortex_field(res.cortex, res.cortex.data.get("magnE") if (on and res.cortex) else None)

    def set_field_threshold(self, frac: float) -> None:
        self.slices.display.field_threshold = float(frac)
        self.slices.refresh()

    def _points_changed(self) -> None:
        s = self.state.subject
        if s is None:
            return
        self.view3d.set_points(s.fiducials, s.eeg, self.show_eeg.isChecked())
        self.slices.display.markers = {k: v for k, v in s.fiducials.items()}
        self._pose_markers()
        self.slices.refresh()

    def _pose_markers(self) -> None:
        m = self.slices.display.markers
        m.pop("coil", None)
        if self.state.pose is not None:
            m["coil"] = self.state.pose[:3, 3]

    # ================================================================== targets
    @guarded
    def resolve_target(self, spec: str, name: str | None = None) -> None:
        """Resolve a target SPEC on this subject in the background and make it the target."""
        ctx = self.state.ctx
        if ctx is None:
            raise NavigatorError("open a subject workspace before choosing a target")
        from navigator.targets.resolve import resolve_target

        def work(progress):
            progress.update(0.1, f"resolving {spec}")
            return resolve_target(ctx, spec, name=name)

        self.run_task(f"Target {spec}", work, on_done=lambda t: self.state.set_target(t, f"Set target {t.name}"))

    def set_target_point(self, world) -> None:
        w = np.asarray(world, float)
        self.resolve_target(f"subject:{w[0]:.2f},{w[1]:.2f},{w[2]:.2f}", name="picked")

    @guarded
    def fmri_target(self, rest_path: str) -> None:
        ws = self.state.require_head_model("an fMRI target")
        from navigator.targets.fmri import fmri_target_workspace
        from navigator.targets.resolve import resolve_target

        ctx = self.state.ctx

        def work(progress):
            fmri_target_workspace(ws, rest_path, progress=progress.sub(0, 0.9))
            return resolve_target(ctx, "fmri", name="fmri")

        self.run_task("fMRI target", work, on_done=lambda t: self.state.set_target(t, "Set fMRI target"))

    def _target_changed(self) -> None:
        p = self.state.target_point
        self.slices.display.target_world = p
        if p is not None:
            self.slices.set_cursor_world(p)
        else:
            self.slices.refresh()
        self.view3d.set_target(p)

    def _pose_changed(self) -> None:
        self._pose_markers()
        self.slices.refresh()
        try:
            coil = self.state.coil if self.state.pose is not None else None
        except NavigatorError as exc:
            self.statusBar().showMessage(str(exc), 8000)
            coil = None
        self.view3d.set_coil(coil, self.state.pose)

    def rotate_handle(self, step: float) -> None:
        if self.state.pose is not None:
            self.state.set_handle_angle(self.state.handle_angle_deg + step)

    def _montage_changed(self) -> None:
        els = []
        for r in self.state.montage:
            p = self.state.electrode_position(r.position)
            if p is not None:
                try:
                    size = max(float(v) for v in r.size.lower().split("x"))
                except ValueError:
                    size = 10.0
                els.append((r.position, p, r.current_ma, size / 2))
        self.view3d.set_electrodes(els)

    # ================================================================== simulation
    def _grid(self):
        return self.slices.display.volume

    @guarded
    def simulate_tms(self) -> None:
        ws = self.state.require_head_model("a TMS simulation")
        s = self.state
        if s.pose is None:
            raise NavigatorError("set a target first: the coil is placed over it")
        from navigator.gui.jobs import GridSpec, job_simulate_tms

        s.coil  # noqa: B018 - fail here (with a dialog) if the coil cannot be loaded
        didt = s.didt()
        kwargs: dict[str, Any] = {"didt": didt, "out_dir": ws.path("simulations") / "gui_tms"}
        if s.explicit_pose is not None:
            kwargs["pose"] = s.pose.copy()
        else:
            p = s.target_point
            kwargs.update(target_spec=f"subject:{p[0]:.4f},{p[1]:.4f},{p[2]:.4f}",
                          handle_angle=s.handle_angle_deg, distance=s.distance_mm)
        self.run_task("TMS simulation", job_simulate_tms, str(ws.root), s.coil_name, GridSpec.of(self._grid()),
                      kwargs, on_done=self._result_ready, in_process=True)

    @guarded
    def simulate_tdcs(self) -> None:
        ws = self.state.require_head_model("a tDCS simulation")
        from navigator.fem.outputs import TargetRegion
        from navigator.gui.jobs import GridSpec, job_simulate_tdcs

        rows = self.state.montage
        if len(rows) < 2:
            raise NavigatorError("the montage needs at least two electrodes (tDCS panel)")
        specs = [r.spec() for r in rows]
        tp = self.state.target_point
        target = None if tp is None else TargetRegion(tuple(float(x) for x in tp), 10.0,
                                                       self.state.target.name if self.state.target else "target")
        out = ws.path("simulations") / "gui_tdcs"
        self.run_task("tDCS simulation", job_simulate_tdcs, str(ws.root), specs, str(out), target,
                      GridSpec.of(self._grid()), on_done=self._result_ready, in_process=True)

    def _result_ready(self, res: loaders.FieldResult) -> None:
        self.state.add_result(res)
        self.show_result(res)
        self.tabs.setCurrentWidget(self.results_panel)
        self.statusBar().showMessage(f"{res.kind}: peak {res.peak or float('nan'):.3g} V/m, "
                                     f"target {res.target_field or float('nan'):.3g} V/m", 15000)

    def show_result(self, res: loaders.FieldResult) -> None:
        self.slices.display.set_field(res.field_volume)
        self.slices.refresh()
        if res.cortex is not None:
            self.view3d.set_cortex_field(res.cortex, res.cortex.data.get("magnE"))

    # ================================================================== optimization
    def _target(self):
        """The resolved target of the Target panel (passed to the optimizers as it is)."""
        if self.state.target is None:
            raise NavigatorError("set a target first (Target panel)")
        return self.state.target

    @guarded
    def optimize_tms(self) -> None:
        """Optimize the coil placement (:func:`navigator.optimize.tms.optimize_tms_workspace`)."""
        ws = self.state.require_head_model("TMS optimization")
        from navigator.gui.jobs import GridSpec, job_optimize_tms

        out = ws.path("simulations") / "gui_tms_optimization"
        self.run_task("TMS optimization", job_optimize_tms, str(ws.root), self._target(), str(out),
                      self.state.coil_name, self.tms_panel.search(), GridSpec.of(self._grid()),
                      on_done=self._tms_optimized, in_process=True)

    def _tms_optimized(self, result) -> None:
        from navigator.gui.jobs import summary_text

        self.tms_panel.opt_result.setText(summary_text(result.numbers) or "done")
        self.state.set_explicit_pose(result.pose, "Optimized coil pose")
        self._result_ready(result.field)

    @guarded
    def optimize_tdcs(self) -> None:
        ws = self.state.require_head_model("tDCS optimization")
        from navigator.gui.jobs import GridSpec, job_optimize_tdcs

        out = ws.path("simulations") / "gui_tdcs_optimization"
        self.run_task("tDCS optimization", job_optimize_tdcs, str(ws.root), self._target(), str(out),
                      self.tdcs_panel.search(), GridSpec.of(self._grid()), on_done=self._tdcs_optimized,
                      in_process=True)

    def _tdcs_optimized(self, result) -> None:
        from navigator.gui.jobs import summary_text
        from navigator.gui.state import ElectrodeRow

        rows = [ElectrodeRow(name, current, shape, "x".join(f"{v:g}" for v in size))
                for name, current, shape, size in result.electrodes if abs(current) >= 1e-6]
        if rows:
            self.state.set_montage(rows)
        self.tdcs_panel.opt_result.setText(summary_text(result.numbers) or "done")
        self._result_ready(result.field)

    # ================================================================== plans and export
    def save_plan_dialog(self) -> None:
        ws = self.state.ws
        default = str(plan_path_default(ws, self.state.plan_name)) if ws is not None else "plan.json"
        path, _ = QFileDialog.getSaveFileName(self, "Save plan", default, "Plan (*.json)")
        if path:
            self.save_plan(path)

    def load_plan_dialog(self) -> None:
        ws = self.state.ws
        start = str(ws.path("plans")) if ws is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Load plan", start, "Plan (*.json)")
        if path:
            self.load_plan(path)

    @guarded
    def save_plan(self, path: str | Path | None = None) -> Path | None:
        from navigator.export.plan import save_plan

        ws = self.state.require_workspace("saving a plan")
        path = Path(path) if path else plan_path_default(ws, self.state.plan_name)
        plan = self.state.build_plan(path.parent.name if path.name == "plan.json" else path.stem)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_plan(plan, path)
        self.last_plan_path = path
        self.add_recent(str(path))
        self.statusBar().showMessage(f"plan saved to {path}", 10000)
        return path

    @guarded
    def load_plan(self, path: str | Path) -> None:
        """Read a plan.json: target, coil pose, coil, intensity and montage (undoable)."""
        from navigator.export.plan import load_plan

        ctx = self.state.ctx
        if ctx is None:
            raise NavigatorError("open the plan's subject workspace first, then load the plan")
        plan = load_plan(path)
        ws = self.state.ws
        if plan.subject and ws is not None and plan.subject != ws.subject_id:
            self.statusBar().showMessage(f"note: plan was made for subject {plan.subject}, not {ws.subject_id}", 15000)
        from navigator.targets.resolve import resolve_target

        t = plan.targets[0] if plan.targets else None

        def work(progress):
            if t is None:
                return None
            p = t.position
            return resolve_target(ctx, "subject:" + ",".join(repr(float(v)) for v in p), name=t.name)

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
                            from navigator.tms.library import load_coil

                            load_coil(cp.coil)
                            s.set_coil_name(cp.coil)
                        except NavigatorError as exc:
                            self.statusBar().showMessage(f"plan coil {cp.coil!r} unknown: {exc}", 10000)
                    if cp.mso is not None:
                        s.intensity_mode, s.mso = "mso", cp.mso
                        self.tms_panel.mso.setValue(cp.mso)
                        self.tms_panel.mode_mso.setChecked(True)
                    elif cp.didt is not None:
                        s.intensity_mode, s.didt_a_per_us = "didt", cp.didt / 1e6
                        self.tms_panel.didt.setValue(cp.didt / 1e6)
                        self.tms_panel.mode_didt.setChecked(True)
                    s.set_explicit_pose(cp.matrix, "Coil pose from plan")
            finally:
                s.undo_stack.endMacro()
            rows = s.montage_from_plan(plan)
            if rows:
                s.set_montage(rows)
            s.plan_name = plan.name
            self.last_plan_path = Path(path)
            self.add_recent(str(path))
            self.statusBar().showMessage(f"plan {plan.name} loaded from {path}", 10000)

        self.run_task(f"Loading plan {Path(path).name}", work, on_done=done)

    @guarded
    def export_plan(self, fmt: str, path: str, space: str | None) -> Path | None:
        from navigator.export import export_plan

        if not path:
            raise NavigatorError("choose a file to export to")
        plan = self.state.build_plan()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        export_plan(plan, fmt, out, space)
        self.last_export = out
        self.export_panel.status.setText(f"wrote {out} ({fmt}{', ' + space.upper() if space else ''}; "
                                         f"{len(plan.coil_poses)} coil pose(s), {len(plan.targets)} target(s))")
        self.statusBar().showMessage(f"exported {out}", 10000)
        return out

    # ================================================================== screenshots / closing
    def screenshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "navigator.png", "PNG (*.png)")
        if path:
            self.grab().save(path)

    def closeEvent(self, ev) -> None:
        if self.runner.busy:
            self.runner.cancel()
        self.runner.wait(30000)
        self.view3d.close_plotter()
        super().closeEvent(ev)
