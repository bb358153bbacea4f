"""TMS panel: coil, intensity (%MSO or dI/dt), coil-scalp distance, handle angle (dial),
live field (drag the coil; readouts of the current, the optimizer's best and the standard F3
pose side by side), simulate (full FEM) and optimize. Every edit goes through the state (undoable)."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGridLayout,
    QComboBox,
    QDial,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from navigator.optimize.tms import TmsSearch
from navigator.tms.library import library_names

#: the defaults of a placement search (shared with `navigator optimize tms` and the batch step)
_SEARCH = TmsSearch()


class TmsPanel(QWidget):
    def __init__(self, state, window):
        super().__init__()
        self.state = state
        self.window = window
        self.setObjectName("tmsPanel")
        self._updating = False
        lay = QVBoxLayout(self)

        box = QGroupBox("Coil and intensity")
        form = QFormLayout(box)
        self.coil = QComboBox()
        self.coil.setObjectName("coilCombo")
        self.coil.addItems(library_names())
        self.coil.setCurrentText(state.coil_name)
        self.coil.currentTextChanged.connect(self._coil_chosen)
        b = QPushButton("File...")
        b.clicked.connect(self.browse_coil)
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.coil, 1)
        h.addWidget(b)
        form.addRow("Coil", row)

        self.mode_mso = QRadioButton("% MSO")
        self.mode_didt = QRadioButton("dI/dt (A/us)")
        self.mode_mso.setChecked(True)
        grp = QButtonGroup(self)
        grp.addButton(self.mode_mso)
        grp.addButton(self.mode_didt)
        self.mso = QDoubleSpinBox()
        self.mso.setObjectName("msoSpin")
        self.mso.setRange(1, 100)
        self.mso.setValue(state.mso)
        self.mso.setSuffix(" %")
        self.didt = QDoubleSpinBox()
        self.didt.setRange(0.1, 500)
        self.didt.setValue(state.didt_a_per_us)
        self.didt.setSuffix(" A/us")
        for w in (self.mode_mso, self.mode_didt):
            w.toggled.connect(self._intensity)
        self.mso.valueChanged.connect(self._intensity)
        self.didt.valueChanged.connect(self._intensity)
        for label, (radio, spin) in (("Intensity", (self.mode_mso, self.mso)), ("", (self.mode_didt, self.didt))):
            row = QWidget()
            h = QHBoxLayout(row)
            h.setContentsMargins(0, 0, 0, 0)
            radio.setMinimumWidth(110)
            h.addWidget(radio)
            h.addWidget(spin, 1)
            form.addRow(label, row)
        self.didt_label = QLabel("-")
        form.addRow("", self.didt_label)
        lay.addWidget(box)

        box = QGroupBox("Coil pose")
        form = QFormLayout(box)
        self.distance = QDoubleSpinBox()
        self.distance.setObjectName("distanceSpin")
        self.distance.setRange(0, 30)
        self.distance.setSingleStep(0.5)
        self.distance.setSuffix(" mm")
        self.distance.setValue(state.distance_mm)
        self.distance.valueChanged.connect(lambda v: None if self._updating else self.state.set_distance(v))
        form.addRow("Coil-scalp distance", self.distance)
        self.dial = QDial()
        self.dial.setObjectName("handleDial")
        self.dial.setRange(-180, 180)
        self.dial.setWrapping(True)
        self.dial.setNotchesVisible(True)
        self.dial.setFixedSize(90, 90)
        self.angle = QSpinBox()
        self.angle.setObjectName("handleSpin")
        self.angle.setRange(-180, 180)
        self.angle.setSuffix(" deg")
        self.angle.setWrapping(True)
        self.dial.valueChanged.connect(lambda v: None if self._updating else self.state.set_handle_angle(v))
        self.angle.valueChanged.connect(lambda v: None if self._updating else self.state.set_handle_angle(v))
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.dial)
        col = QVBoxLayout()
        col.addWidget(self.angle)
        hint = QLabel("0 = handle backwards\n45 = back and out\n[ ] keys: -/+ 5 deg")
        hint.setWordWrap(True)
        col.addWidget(hint)
        h.addLayout(col)
        form.addRow("Handle angle", row)
        self.pose_label = QLabel("no target")
        self.pose_label.setObjectName("poseLabel")
        self.pose_label.setWordWrap(True)
        self.pose_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form.addRow("Pose", self.pose_label)
        lay.addWidget(box)

        box = QGroupBox("Live field")
        grid = QGridLayout(box)
        self.live = QCheckBox("Live field: drag the coil over the scalp  (Ctrl+Shift+L)")
        self.live.setObjectName("liveCheck")
        self.live.toggled.connect(lambda on: None if self._updating else self.window.command("set_live", on))
        grid.addWidget(self.live, 0, 0, 1, 4)
        grid.addWidget(QLabel("map"), 1, 0)
        grid.addWidget(QLabel("pose"), 1, 1)
        grid.addWidget(QLabel("target |E|"), 1, 2)
        grid.addWidget(QLabel("max |E| in region"), 1, 3)
        self.live_choice = QButtonGroup(self)
        self.live_rows: dict[str, tuple[QLabel, QLabel]] = {}
        for i, (key, text) in enumerate((("current", "current coil"), ("optimizer", "optimizer's best"),
                                         ("F3", "standard F3, 45 deg"))):
            rb = QRadioButton()
            rb.setObjectName(f"liveShow_{key}")
            rb.setChecked(key == "current")
            rb.toggled.connect(lambda on, k=key: on and self.window.command("show_live_pose", k))
            self.live_choice.addButton(rb)
            t, m = QLabel("-"), QLabel("-")
            t.setObjectName(f"liveTarget_{key}")
            grid.addWidget(rb, 2 + i, 0)
            grid.addWidget(QLabel(text), 2 + i, 1)
            grid.addWidget(t, 2 + i, 2)
            grid.addWidget(m, 2 + i, 3)
            self.live_rows[key] = (t, m)
        self.live_info = QLabel("live approximation of the field (cortex within ~40 mm of the target); "
                                "Simulate gives the full FEM result")
        self.live_info.setObjectName("liveInfo")
        self.live_info.setWordWrap(True)
        grid.addWidget(self.live_info, 5, 0, 1, 4)
        lay.addWidget(box)

        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        self.simulate = QPushButton("Simulate TMS, full FEM  (Ctrl+T)")
        self.simulate.setObjectName("simulateTms")
        self.simulate.clicked.connect(lambda: self.window.simulate_tms())
        self.write_maps = QCheckBox("write volume maps (NIfTI)")
        self.write_maps.setObjectName("writeMaps")
        self.write_maps.setToolTip("also write magnE.nii.gz, E.nii.gz, MNI-space maps (slower, larger)")
        h.addWidget(self.simulate, 1)
        h.addWidget(self.write_maps)
        lay.addWidget(row)

        box = QGroupBox("Optimize placement")
        form = QFormLayout(box)
        self.opt_radius = QDoubleSpinBox()
        self.opt_radius.setRange(0, 50)
        self.opt_radius.setValue(_SEARCH.radius_mm)
        self.opt_radius.setSuffix(" mm")
        self.opt_spacing = QDoubleSpinBox()
        self.opt_spacing.setRange(0.1, 20)
        self.opt_spacing.setValue(_SEARCH.spacing_mm)
        self.opt_spacing.setSuffix(" mm")
        self.opt_angle = QDoubleSpinBox()
        self.opt_angle.setRange(0.5, 180)
        self.opt_angle.setValue(_SEARCH.angle_step_deg)
        self.opt_angle.setSuffix(" deg")
        form.addRow("Search radius", self.opt_radius)
        form.addRow("Position spacing", self.opt_spacing)
        form.addRow("Angle step", self.opt_angle)
        self.optimize = QPushButton("Optimize coil placement")
        self.optimize.setObjectName("optimizeTms")
        self.optimize.clicked.connect(lambda: self.window.optimize_tms())
        form.addRow(self.optimize)
        self.opt_result = QLabel("")
        self.opt_result.setObjectName("tmsOptResult")
        self.opt_result.setWordWrap(True)
        form.addRow(self.opt_result)
        lay.addWidget(box)
        lay.addStretch(1)
        state.poseChanged.connect(self.refresh)
        state.intensityChanged.connect(self.refresh)
        self.refresh()

    def search(self) -> TmsSearch:
        """The placement search set in the panel (radius, spacing, angle step, coil distance)."""
        return TmsSearch(radius_mm=self.opt_radius.value(), spacing_mm=self.opt_spacing.value(),
                         angle_step_deg=self.opt_angle.value(), distance_mm=self.distance.value())

    def browse_coil(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Coil model", "", "Coil files (*.ccd *.tcd *.nii *.nii.gz)")
        if path:
            self.coil.addItem(path)
            self.coil.setCurrentText(path)

    def _coil_chosen(self, name: str) -> None:
        if name and not self._updating and name != self.state.coil_name:
            self.window.command("set_coil", name)
            if self.state.coil_name != name:  # refused (unknown coil): show the coil in use
                self.refresh()

    def _intensity(self) -> None:
        if self._updating:
            return
        self.window.command("set_intensity", "mso" if self.mode_mso.isChecked() else "didt", self.mso.value(),
                            self.didt.value())

    def set_live_checked(self, on: bool) -> None:
        self._updating = True
        try:
            self.live.setChecked(on)
        finally:
            self._updating = False

    def show_live(self, fields: dict, result) -> None:
        """Readouts of the live field at each compared pose (V/m; '-' when off, 'outside' when the
        pose is outside the engine's region)."""
        for key, (t, m) in self.live_rows.items():
            if key not in fields:
                t.setText("-")
                m.setText("-")
            elif fields[key] is None:
                t.setText("outside region")
                m.setText("-")
            else:
                f = fields[key]
                t.setText(f"{f.target_magnitude:.3g} V/m")
                m.setText(f"{float(np.nanmax(f.magnitude)):.3g} V/m")
        if result is not None:
            self.live_info.setText(f"LIVE APPROXIMATION: {1000 * result.seconds:.0f} ms for the last update "
                                   f"(the compared poses are evaluated once per intensity); Simulate gives the "
                                   f"full FEM result")
        else:
            self.live_info.setText("live approximation of the field (cortex within ~40 mm of the target); "
                                   "Simulate gives the full FEM result")

    def refresh(self) -> None:
        s = self.state
        self._updating = True
        try:
            self.angle.setValue(round(s.handle_angle_deg))
            self.dial.setValue(round(s.handle_angle_deg))
            self.distance.setValue(s.distance_mm)
            self.mode_mso.setChecked(s.intensity_mode == "mso")
            self.mode_didt.setChecked(s.intensity_mode == "didt")
            self.mso.setValue(s.mso)
            self.didt.setValue(s.didt_a_per_us)
            if self.coil.currentText() != s.coil_name:
                if self.coil.findText(s.coil_name) < 0:
                    self.coil.addItem(s.coil_name)
                self.coil.setCurrentText(s.coil_name)
        finally:
            self._updating = False
        try:
            self.didt_label.setText(f"dI/dt = {s.didt() / 1e6:.1f} A/us")
        except Exception as exc:  # noqa: BLE001 - shown in the label, not a dialog
            self.didt_label.setText(str(exc))
        p = s.pose
        if p is None:
            self.pose_label.setText("set a target to place the coil")
        else:
            kind = "explicit (moved, plan or optimization)" if s.explicit_pose is not None else "from target"
            self.pose_label.setText(
                f"centre ({p[0, 3]:.1f}, {p[1, 3]:.1f}, {p[2, 3]:.1f}) mm, {kind}\n"
                f"handle y ({p[0, 1]:.2f}, {p[1, 1]:.2f}, {p[2, 1]:.2f}); "
                f"normal z ({p[0, 2]:.2f}, {p[1, 2]:.2f}, {p[2, 2]:.2f})")
