"""The main window: an action table, the views and the panels, wired to the state.

* What the app *does* is in :class:`navigator.gui.controller.Controller` (no Qt). The window
  exposes it through :data:`COMMANDS` (name -> call on the controller) and :data:`MENUS`
  (menu entries and shortcuts naming a command); every command runs guarded, so an error
  becomes a dialog and the window stays usable. Panels call ``window.<command>(...)``.
* The views follow :class:`navigator.gui.state.PlanState`: slices, 3-D view, panels redraw on
  its signals only (subject, target, pose, montage, intensity, results).
* The window itself implements the controller's small :class:`navigator.gui.controller.Ui`
  protocol (tasks with progress and cancel, status messages, the display grid, remembered
  paths), persists geometry, splitters, last folders and coil in QSettings, and stores the
  planning session in the workspace after every edit.

Every long step runs on a worker thread or process (:mod:`navigator.gui.workers`); the live
field runs on its own thread, latest pose only (:mod:`navigator.gui.live`).
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTabWidget,
    QToolBar,
)

from navigator.core.errors import NavigatorError
from navigator.gui import jobs, loaders  # noqa: F401 - jobs imported now, not on the first click
from navigator.gui.controller import Controller
from navigator.gui.dialogs import choose_item, error_message, offer_file, show_error, show_exception
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
#: coil moves of the keys in live mode: position step (mm), handle and tilt steps (deg)
MOVE_MM, TURN_DEG, TILT_DEG = 2.0, 5.0, 2.0
#: session writes wait this long after the last edit (ms)
SESSION_DELAY_MS = 400

#: the image files a file dialog offers
IMAGE_FILTER = "Images (*.nii *.nii.gz *.mgz *.nrrd *.nhdr *.mha *.mhd);;All files (*)"

#: command name -> what it does (the window ``w`` gives access to the controller and panels)
COMMANDS: dict[str, Callable[..., Any]] = {
    "open_path": lambda w, path, out_dir=None: w.controller.open_path(path, out_dir),
    "open_workspace": lambda w, path: w.controller.open_workspace(path),
    "prepare_head_model": lambda w: w.controller.prepare_head_model(),
    "add_inv2": lambda w, path: w.controller.add_inv2(path),
    "resolve_target": lambda w, spec, name=None: w.controller.resolve_target(spec, name),
    "set_target_point": lambda w, world: w.controller.set_target_point(world),
    "fmri_target": lambda w, path: w.controller.fmri_target(path),
    "simulate_tms": lambda w: w.controller.simulate_tms(w.tms_panel.write_maps.isChecked()),
    "simulate_tdcs": lambda w: w.controller.simulate_tdcs(ti_quantity=w.tdcs_panel.ti_quantity()),
    "optimize_tms": lambda w: w.controller.optimize_tms(w.tms_panel.search()),
    "optimize_tdcs": lambda w: w.controller.optimize_tdcs(w.tdcs_panel.search()),
    "save_plan": lambda w, path=None: w.controller.save_plan(path),
    "load_plan": lambda w, path: w.controller.load_plan(path),
    "export_plan": lambda w, fmt, path, space: w.export_done(*w.controller.export_plan(fmt, path, space)),
    "select_result": lambda w, key: w.controller.select_result(key),
    "set_result_quantity": lambda w, quantity: w.controller.set_result_quantity(quantity),
    "apply_result": lambda w, key: w.controller.apply_result(key),
    "set_coil": lambda w, name: w.state.set_coil_name(name),
    "set_intensity": lambda w, mode, mso, didt: w.state.set_intensity(mode, mso, didt),
    "rotate_handle": lambda w, deg: w.controller.rotate_handle(deg),
    "nudge": lambda w, dx, dy: w.controller.nudge(dx, dy),
    "tilt": lambda w, axis, deg: w.controller.tilt(axis, deg),
    "set_live": lambda w, on: w.set_live(on),
    "toggle_live": lambda w: w.set_live(not w.controller.live_on),
    "show_live_pose": lambda w, name: w.show_live_pose(name),
    "cancel_task": lambda w: w.cancel_task(),
    "open_dialog": lambda w: w.open_dialog(),
    "open_folder_dialog": lambda w: w.open_folder_dialog(),
    "save_plan_dialog": lambda w: w.save_plan_dialog(),
    "load_plan_dialog": lambda w: w.load_plan_dialog(),
    "screenshot_dialog": lambda w: w.screenshot_dialog(),
    "show_help": lambda w: w.show_help(),
}

#: menu -> entries (text, command, arguments, shortcut, object name); None = separator
MENUS: list[tuple[str, list]] = [
    ("&File", [("&Open image / workspace...", "open_dialog", (), QKeySequence.StandardKey.Open, "actionOpen"),
               ("Open &DICOM or m2m folder...", "open_folder_dialog", (), "Ctrl+Shift+D", None),
               "recent", None,
               ("&Save plan...", "save_plan_dialog", (), QKeySequence.StandardKey.Save, "actionSavePlan"),
               ("&Load plan...", "load_plan_dialog", (), "Ctrl+L", "actionLoadPlan"),
               ("&Export plan", "export_current", (), "Ctrl+E", None), None,
               ("Save &screenshot...", "screenshot_dialog", (), "Ctrl+Shift+S", None),
               ("&Quit", "close", (), QKeySequence.StandardKey.Quit, None)]),
    ("&Edit", ["undo"]),
    ("&Subject", [("&Prepare head model", "prepare_head_model", (), "Ctrl+P", None),
                  ("Add MP2RAGE &INV2...", "add_inv2_dialog", (), None, "actionAddInv2"),
                  ("Head model &QC report", "show_qc_report", (), "Ctrl+Shift+Q", "actionQcReport"),
                  ("&Cancel running task", "cancel_task", (), "Esc", None)]),
    ("&Plan", [("Simulate &TMS (full FEM)", "simulate_tms", (), "Ctrl+T", "actionSimulateTms"),
               ("Simulate t&DCS", "simulate_tdcs", (), "Ctrl+D", None),
               ("&Optimize TMS placement", "optimize_tms", (), "Ctrl+Shift+T", None),
               ("Optimize tDCS &montage", "optimize_tdcs", (), None, None), None,
               ("&Live field (drag the coil)", "toggle_live", (), "Ctrl+Shift+L", "actionLive"),
               ("Rotate handle -5 deg", "rotate_handle", (-TURN_DEG,), "[", None),
               ("Rotate handle +5 deg", "rotate_handle", (TURN_DEG,), "]", None),
               ("Move coil forward (handle side back)", "nudge", (0.0, -MOVE_MM), "Alt+Up", None),
               ("Move coil back", "nudge", (0.0, MOVE_MM), "Alt+Down", None),
               ("Move coil left", "nudge", (-MOVE_MM, 0.0), "Alt+Left", None),
               ("Move coil right", "nudge", (MOVE_MM, 0.0), "Alt+Right", None),
               ("Tilt coil: handle up", "tilt", ("x", TILT_DEG), "Alt+Shift+Up", None),
               ("Tilt coil: handle down", "tilt", ("x", -TILT_DEG), "Alt+Shift+Down", None),
               ("Tilt coil: roll left", "tilt", ("y", -TILT_DEG), "Alt+Shift+Left", None),
               ("Tilt coil: roll right", "tilt", ("y", TILT_DEG), "Alt+Shift+Right", None)]),
    ("&View", [(f"{name} panel", "show_panel", (i,), f"Ctrl+{i + 1}", None)
               for i, name in enumerate(("Target", "TMS", "tDCS", "Results", "Export"))]),
    ("&Help", [("&Keyboard and mouse", "show_help", (), "F1", None)]),
]

HELP = ("Slices: left click moves the cursor; Ctrl+click sets the target; right-drag changes window/level; "
        "wheel or PageUp/PageDown changes slice.\n3-D: drag rotates, wheel zooms, P over the cortex sets the "
        "target.\nLive field (Ctrl+Shift+L, TMS panel): drag the coil over the scalp with the left mouse button; "
        "Alt+arrows move it 2 mm, Alt+Shift+arrows tilt it 2 deg, [ and ] turn the handle 5 deg. The banner over "
        "the 3-D view says whether the colours are the live approximation or a full FEM result.\n"
        "Ctrl+Z / Ctrl+Shift+Z undo/redo target, coil, intensity, pose and montage edits.\nCtrl+O open, Ctrl+S "
        "save plan, Ctrl+L load plan, Ctrl+E export, Ctrl+T simulate TMS, Ctrl+D simulate tDCS, Ctrl+1..5 panels, "
        "Esc cancels the running task.")


class MainWindow(QMainWindow):
    """See the module docstring."""

    _liveArrived = pyqtSignal(object, object, object)  # request, LiveResult, error (from the worker thread)

    def __init__(self, settings: QSettings | None = None):
        super().__init__()
        self.setWindowTitle("navigator - TMS/tDCS planning")
        self.setObjectName("mainWindow")
        self.settings = settings if settings is not None else QSettings("navigator", "navigator-gui")
        self.state = PlanState(self)
        self.runner = TaskRunner(self)
        self.controller = Controller(self.state, self)
        self.live_times_ms: list[float] = []  # engine time per live update
        self.live_latency_ms: list[float] = []  # pose request -> map drawn (engine, queue, UI)
        self.live_shown = 0
        self.live_skipped = 0  # live results not drawn because a newer map was already on screen
        self._build_views()
        self._build_panels()
        self._build_status_bar()
        self._build_actions()
        self._build_toolbar()
        self._connect_state()
        self.restore_settings()
        # Everything allocated so far lives as long as the app; frozen objects are not scanned by
        # the garbage collector (a full collection scanning them stalled the UI ~0.26 s).
        gc.collect()
        gc.freeze()

    # ================================================================== layout
    def _build_views(self) -> None:
        self.slices = SliceViews(self)
        self.view3d = View3D(self)
        self.top_split = QSplitter(Qt.Orientation.Horizontal)
        self.top_split.setObjectName("topSplit")
        self.top_split.addWidget(self.slices.views["axial"])
        self.top_split.addWidget(self.slices.views["coronal"])
        self.bottom_split = QSplitter(Qt.Orientation.Horizontal)
        self.bottom_split.setObjectName("bottomSplit")
        self.bottom_split.addWidget(self.slices.views["sagittal"])
        self.bottom_split.addWidget(self.view3d)
        self.views_split = QSplitter(Qt.Orientation.Vertical)
        self.views_split.setObjectName("viewsSplit")
        self.views_split.addWidget(self.top_split)
        self.views_split.addWidget(self.bottom_split)
        for split in (self.top_split, self.bottom_split, self.views_split):
            split.setChildrenCollapsible(False)  # a restored layout never hides a view

    def _build_panels(self) -> None:
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
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.setObjectName("mainSplit")
        self.main_split.addWidget(self.views_split)
        self.main_split.addWidget(self.tabs)
        self.main_split.setStretchFactor(0, 3)
        self.main_split.setStretchFactor(1, 1)
        self.setCentralWidget(self.main_split)

    def _build_status_bar(self) -> None:
        self.coord_label = QLabel("open a subject (File > Open)")
        self.coord_label.setObjectName("coordLabel")
        self.statusBar().addWidget(self.coord_label, 1)
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(260)
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

    # ================================================================== the action table
    def command(self, name: str, *args, **kwargs) -> Any:
        """Run a command of :data:`COMMANDS`; an exception becomes an error dialog (returns None)."""
        try:
            return COMMANDS[name](self, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            show_exception(self, exc)
            return None

    def __getattr__(self, name: str):
        # window.simulate_tms(), window.resolve_target(spec): the commands of the table
        if name in COMMANDS:
            return functools.partial(self.command, name)
        raise AttributeError(name)

    def _build_actions(self) -> None:
        mb = self.menuBar()
        self.actions_by_name: dict[str, QAction] = {}
        for title, entries in MENUS:
            m = mb.addMenu(title)
            for e in entries:
                if e is None:
                    m.addSeparator()
                elif e == "recent":
                    self.recent_menu = m.addMenu("Open &recent")
                    self._refresh_recent()
                elif e == "undo":
                    self.undo_action = self.state.undo_stack.createUndoAction(self, "&Undo")
                    self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
                    self.redo_action = self.state.undo_stack.createRedoAction(self, "&Redo")
                    self.redo_action.setShortcuts([QKeySequence.StandardKey.Redo, QKeySequence("Ctrl+Shift+Z")])
                    m.addAction(self.undo_action)
                    m.addAction(self.redo_action)
                else:
                    text, name, args, shortcut, obj = e
                    a = QAction(text, self)
                    if shortcut is not None:
                        a.setShortcut(QKeySequence(shortcut))
                    if name in COMMANDS:
                        a.triggered.connect(functools.partial(lambda n, a_, _checked=False: self.command(n, *a_),
                                                              name, args))
                    else:
                        a.triggered.connect(functools.partial(lambda n, a_, _checked=False: getattr(self, n)(*a_),
                                                              name, args))
                    if obj:
                        a.setObjectName(obj)
                    self.addAction(a)
                    m.addAction(a)
                    self.actions_by_name.setdefault(name, a)

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

    def show_panel(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    def export_current(self) -> None:
        self.export_panel.export()

    def show_qc_report(self) -> None:
        """The segmentation's QC figure and verdict (Subject > Head model QC report)."""
        from navigator.gui.qc_dialog import QcReportDialog

        s = self.state.subject
        if s is None or s.qc is None:
            self.status("no segmentation QC: open a subject and prepare its head model (Ctrl+P)")
            return
        self.qc_dialog = QcReportDialog(self, s.ws.subject_id if s.ws else "subject", s.qc, s.qc_png)
        self.qc_dialog.show()

    def show_help(self) -> None:
        QMessageBox.information(self, "navigator - keyboard and mouse", HELP)

    # ================================================================== Ui protocol (controller -> window)
    def run_task(self, name: str, fn: Callable, *args, on_done: Callable | None = None, in_process: bool = False,
                 side: bool = False, **kwargs):
        """Start ``fn(progress, *args, **kwargs)`` in the background; with ``in_process`` in a
        separate process (:mod:`navigator.gui.jobs`). One main task at a time; ``side`` tasks
        (reading a stored result) run beside it without the progress bar."""
        if self.runner.busy and not side:
            raise NavigatorError(f"'{self.runner.current.name}' is still running: wait for it or cancel it (Esc)")

        def failed(err: TaskError) -> None:
            title, message = error_message(err.exception)
            show_error(self, title, f"{name} failed: {message}", err.details)

        def done(result) -> None:
            if on_done is None:
                return
            try:
                on_done(result)
            except Exception as exc:  # noqa: BLE001
                show_exception(self, exc)

        return self.runner.start(name, fn, *args, on_done=done, on_error=failed,
                                 on_cancel=lambda: self.status(f"{name} cancelled"), in_process=in_process,
                                 side=side, **kwargs)

    def status(self, message: str, ms: int = 8000) -> None:
        self.statusBar().showMessage(message, ms)

    def display_grid(self):
        return self.slices.display.volume

    def remember_path(self, path: str) -> None:
        self.add_recent(path)
        p = Path(path)
        self.settings.setValue("lastFolder", str(p if p.is_dir() else p.parent))

    def optimization_done(self, kind: str, text: str, rows: list[tuple[str, str]] | None = None) -> None:
        if kind == "tms":
            self.tms_panel.opt_result.setText(text)
        else:
            self.tdcs_panel.show_report(text, rows)

    def live_delivered(self, request, result, error) -> None:
        """Called on the live worker thread: hand over to the UI thread (queued signal)."""
        self._liveArrived.emit(request, result, error)

    def export_done(self, out: Path, text: str) -> Path:
        self.export_panel.status.setText(text)
        return out

    # ================================================================== tasks
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

    # ================================================================== dialogs
    def _last_folder(self) -> str:
        return str(self.settings.value("lastFolder", str(Path.home())))

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open image, workspace manifest, head mesh or plan", self._last_folder(),
            "Supported (*.nii *.nii.gz *.mgz *.nrrd *.nhdr *.mha *.mhd *.msh subject.json *.json);;All files (*)")
        if path:
            p = Path(path)
            self.command("open_path", p.parent if p.name == "subject.json" else p)

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open workspace, DICOM folder or SimNIBS m2m folder",
                                                self._last_folder())
        if path:
            self.command("open_path", path)

    def save_plan_dialog(self) -> None:
        ws = self.state.ws
        default = str(plan_path_default(ws, self.state.plan_name)) if ws is not None else "plan.json"
        path, _ = QFileDialog.getSaveFileName(self, "Save plan", default, "Plan (*.json)")
        if path:
            self.command("save_plan", path)

    def load_plan_dialog(self) -> None:
        ws = self.state.ws
        start = str(ws.path("plans")) if ws is not None else self._last_folder()
        path, _ = QFileDialog.getOpenFileName(self, "Load plan", start, "Plan (*.json)")
        if path:
            self.command("load_plan", path)

    def choose(self, title: str, label: str, options: list[str]) -> int | None:
        """Ui protocol: one of ``options`` picked by the user (index), None if cancelled."""
        return choose_item(self, title, label, options)

    def offer_file(self, title: str, message: str, button: str) -> str | None:
        """Ui protocol: a file the user picks after reading why (path), None if declined."""
        return offer_file(self, title, message, button, self._last_folder(), IMAGE_FILTER)

    def add_inv2_dialog(self) -> None:
        """Subject > Add MP2RAGE INV2: the second inversion of the MP2RAGE whose UNI is the T1."""
        if self.state.ws is None:
            self.status("open the subject's MP2RAGE UNI image first (File > Open)")
            return
        path, _ = QFileDialog.getOpenFileName(self, "MP2RAGE second inversion (INV2) image", self._last_folder(),
                                              IMAGE_FILTER)
        if path:
            self.command("add_inv2", path)

    def screenshot_dialog(self) -> None:
        start = str(Path(str(self.settings.value("screenshotFolder", self._last_folder()))) / "navigator.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", start, "PNG (*.png)")
        if path:
            self.grab().save(path)
            self.settings.setValue("screenshotFolder", str(Path(path).parent))

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
            a.triggered.connect(functools.partial(lambda path, _checked=False: self.command("open_path", path), p))

    # ================================================================== settings
    def restore_settings(self) -> None:
        """Window geometry and state, splitters, last coil (QSettings)."""
        s = self.settings
        geo = s.value("geometry")
        if geo is not None:
            self.restoreGeometry(geo)
        else:
            self.resize(1500, 950)
        st = s.value("windowState")
        if st is not None:
            self.restoreState(st)
        for split in (self.main_split, self.views_split, self.top_split, self.bottom_split):
            v = s.value(f"splitters/{split.objectName()}")
            if v is not None:
                split.restoreState(v)
            elif split is not self.main_split:  # first start: the four views share the space equally
                split.setSizes([10_000, 10_000])
        coil = s.value("coil")
        if coil:
            try:
                from navigator.tms.library import load_coil

                load_coil(str(coil))
                self.state.coil_name = str(coil)
                self.tms_panel.refresh()
            except NavigatorError as exc:
                log.info("last coil %s not available: %s", coil, exc)
        tab = s.value("panel")
        if tab is not None:
            self.tabs.setCurrentIndex(int(tab))

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("geometry", self.saveGeometry())
        s.setValue("windowState", self.saveState())
        for split in (self.main_split, self.views_split, self.top_split, self.bottom_split):
            s.setValue(f"splitters/{split.objectName()}", split.saveState())
        s.setValue("coil", self.state.coil_name)
        s.setValue("panel", self.tabs.currentIndex())
        s.sync()

    # ================================================================== views follow the state
    def _connect_state(self) -> None:
        st = self.state
        self.slices.cursorChanged.connect(self._show_coordinates)
        self.slices.hovered.connect(self._show_coordinates)
        self.slices.targetPicked.connect(lambda p: self.command("set_target_point", p))
        self.view3d.targetPicked.connect(lambda p: self.command("set_target_point", p))
        self.view3d.coilDragged.connect(self._coil_dragged)
        self.view3d.coilDragFinished.connect(self.controller.end_move)
        st.subjectChanged.connect(self._subject_changed)
        st.targetChanged.connect(self._target_changed)
        st.poseChanged.connect(self._pose_changed)
        st.montageChanged.connect(self._montage_changed)
        st.intensityChanged.connect(self._intensity_changed)
        st.resultChanged.connect(self._result_changed)
        st.message.connect(lambda m: self.status(m))
        self._liveArrived.connect(self._live_arrived)
        self._session_timer = QTimer(self)
        self._session_timer.setSingleShot(True)
        self._session_timer.setInterval(SESSION_DELAY_MS)
        self._session_timer.timeout.connect(self.controller.save_session)
        for sig in (st.targetChanged, st.poseChanged, st.montageChanged, st.intensityChanged, st.resultChanged):
            sig.connect(lambda *_: self._session_timer.start())

    def _subject_changed(self) -> None:
        data = self.state.subject
        if data is None:
            return
        self.slices.set_volume(data.image, data.labels)
        self.view3d.set_head(data.scalp, data.cortex)
        self.view3d.set_banner("none", "no field shown: simulate (full FEM) or turn on the live field")
        self._points_changed()
        self.setWindowTitle(f"navigator - {data.ws.subject_id if data.ws else 'subject'}")
        self.export_panel._format_changed(self.export_panel.format.currentText())
        self._show_coordinates(None)

    def _tab_changed(self, index: int) -> None:
        """3-D view shows the coil on the TMS side and the electrodes on the tDCS side."""
        w = self.tabs.widget(index)
        mode = "tdcs" if w is self.tdcs_panel else "tms" if w is self.tms_panel else "all"
        res = self.state.shown_result
        if w is self.results_panel and res is not None:
            mode = "tdcs" if res.kind.startswith("tdcs") else "tms"
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

    def _show_coordinates(self, world) -> None:
        d = self.slices.display
        if d.volume is None:
            return
        world = np.asarray(d.cursor_world if world is None else world, float)
        parts = [f"RAS ({world[0]:.1f}, {world[1]:.1f}, {world[2]:.1f}) mm"]
        ctx = self.state.ctx
        tr = ctx.__dict__.get("transform") if ctx is not None else None
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
                parts.append(f"{d.field_short} {float(d.field[tuple(ijk)]):.3g} V/m")
        self.coord_label.setText("   ".join(parts))

    def set_field_visible(self, on: bool) -> None:
        self.slices.display.show_field = bool(on)
        self.slices.refresh()
        res = self.state.shown_result
        if res is not None and not self.controller.live_on:
            self.view3d.set_cortex_field(res.cortex, res.cortex_values if on else None, title=res.map_title)

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

    def _target_changed(self) -> None:
        p = self.state.target_point
        self.slices.display.target_world = p
        if p is not None:
            self.slices.set_cursor_world(p)
        else:
            self.slices.refresh()
        self.view3d.set_target(p)
        if self.controller.live_on and self.controller.live.engine_key is not None:
            try:
                if self.controller.live_key() != self.controller.live.engine_key:
                    self.controller.forget_engine()
                    self.command("set_live", True)  # the engine covers the region around the target
            except NavigatorError:
                self.controller.forget_engine()

    def _pose_changed(self) -> None:
        self._pose_markers()
        self.slices.refresh()
        try:
            coil = self.state.coil if self.state.pose is not None else None
        except NavigatorError as exc:
            self.status(str(exc))
            coil = None
        self.view3d.set_coil(coil, self.state.pose)
        if self.controller.live_on:
            if self.controller.live.engine_key is not None and self.state.coil_name != self.controller.live.engine_key[1]:
                self.controller.forget_engine()
                self.command("set_live", True)
            else:
                self.controller.request_live()

    def _intensity_changed(self) -> None:
        if self.controller.live_on:
            self.controller.request_live()

    def _montage_changed(self) -> None:
        els = []
        for r in self.state.montage:
            p = self.state.electrode_position(r.position)
            if p is not None:
                try:
                    size = max(r.size_mm())
                except NavigatorError:
                    size = 10.0
                label = "" if r.channel is None else f"ch{r.channel}"
                els.append((r.position, p, r.current_ma, size / 2, label))
        self.view3d.set_electrodes(els)

    def _result_changed(self, key: str) -> None:
        res = self.state.results.get(key)
        if res is None:
            return
        if self.controller.live_on:
            self.set_live(False)
        self.show_result(res)
        rows = res.extra.get("optimization_rows")
        if res.kind == "tdcs-optimization" and rows:  # a stored or new tES optimization: its objective values
            self.tdcs_panel.show_report(None, [("Result", res.key or "-"), *rows])

    def show_result(self, res: loaders.FieldResult) -> None:
        """A full FEM result on the slices and the cortex, with the banner saying so."""
        self.slices.display.set_field(res.field_volume, res.map_title, res.short_name)
        self.slices.refresh()
        if res.cortex is not None:
            self.view3d.set_cortex_field(res.cortex, res.cortex_values if self.results_panel.show_field.isChecked()
                                         else None, title=res.map_title)
        t = res.target_field
        self.view3d.set_banner("fem", f"FULL FEM RESULT - {res.key or res.kind} - {res.map_title}"
                                      + (f" - target mean {t:.3g} V/m" if t is not None else ""))

    # ================================================================== live field
    def set_live(self, on: bool) -> None:
        """Live mode on: open the engine (precomputed once per subject, coil and target), then
        the cortex follows the coil; off: back to the last full FEM result."""
        c = self.controller
        if on:
            self.tms_panel.set_live_checked(True)
            c.start_live(on_ready=self._live_ready)
            return
        c.stop_live()
        self.view3d.enable_coil_drag(False)
        self.view3d.set_ghost_coils({})
        self.tms_panel.set_live_checked(False)
        self.tms_panel.show_live({}, None)
        res = self.state.shown_result
        if res is not None:
            self.show_result(res)
        elif self.state.subject is not None:
            self.view3d.set_cortex_field(self.state.subject.cortex, None)
            self.view3d.set_banner("none", "no field shown: simulate (full FEM) or turn on the live field")

    def _live_ready(self) -> None:
        self.view3d.enable_coil_drag(True)
        pose, tp = self.state.pose, self.state.target_point
        if pose is not None and tp is not None:  # look at the live region, past the coil
            self.view3d.look_at(tp, -pose[:3, 2], -pose[:3, 1])
        try:
            coil = self.state.coil
        except NavigatorError:
            coil = None
        self.view3d.set_ghost_coils(self.controller.live.compare, coil)
        self.tms_panel.set_live_checked(True)
        self.status("live field on: drag the coil over the scalp (Alt+arrows move, Alt+Shift+arrows tilt, [ ] turn)")

    def show_live_pose(self, name: str) -> None:
        """Which pose the cortex map shows in live mode: "current", "optimizer" or "F3"."""
        self.controller.live.shown = name
        last = self.controller.live.last
        if last is not None:
            self._show_live(last)

    def _coil_dragged(self, point) -> None:
        try:
            self.controller.drag_coil_to(point)
        except NavigatorError as exc:
            self.status(str(exc))

    def _live_arrived(self, request, result, error) -> None:
        if not self.controller.live_on:
            return
        if error is not None:
            self.view3d.set_banner("stale", f"live field failed: {error}")
            log.warning("live field: %s", error)
            return
        self.live_times_ms.append(1000 * result.seconds)
        last = self.controller.live.last
        if last is not None and result.seq <= last.seq:
            # an older pose than the one on screen (never drawn over a newer map)
            self.live_skipped += 1
            return
        # a newer pose may already be on its way: this map is still the newest there is, so it is
        # drawn (while the worker computes the next one) and the field follows a moving coil
        self.controller.live.last = result
        self._show_live(result)

    def _show_live(self, result) -> None:
        c, s = self.controller, self.state
        name = c.live.shown if c.live.shown in result.fields else "current"
        f = result.fields.get(name)
        self.tms_panel.show_live(result.fields, result)
        cortex = s.subject.cortex if s.subject is not None else None
        if f is None or cortex is None:
            why = result.outside.get(name, "")
            self.view3d.set_banner("stale", f"LIVE: the {name} pose is outside the live field's region"
                                            f"{': ' + why if why else ''} - Simulate gives the full FEM result")
            return
        vals = c.live_cortex_values(f, len(cortex.vertices))
        self.slices.display.set_field(None)
        self.slices.refresh()
        self.live_values = vals
        self.view3d.update_cortex_values(cortex, vals, title="E magnitude (V/m), live approximation")
        what = {"current": "coil", "optimizer": "optimizer's best pose", "F3": "standard F3 pose"}.get(name, name)
        self.view3d.set_banner("live", f"LIVE APPROXIMATION ({what}) - target |E| {f.target_magnitude:.3g} V/m - "
                                       f"{1000 * result.seconds:.0f} ms - Simulate for the full FEM result")
        self.live_shown += 1
        self.live_shown_at = time.perf_counter()
        self.view3d.render_now()
        self.live_latency_ms.append(1000 * (time.perf_counter() - result.submitted))

    # ================================================================== closing
    def closeEvent(self, ev) -> None:
        self.save_settings()
        if self._session_timer.isActive():
            self._session_timer.stop()
            self.controller.save_session()
        self.controller.stop_live()
        if self.runner.busy:
            self.runner.cancel()
        self.runner.wait(30000)
        self.view3d.close_plotter()
        super().closeEvent(ev)
