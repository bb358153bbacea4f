"""TMS panel: coil, intensity (%MSO or dI/dt), coil-scalp distance, handle angle (dial),
simulate and optimize."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QButtonGroup,
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
        self.coil.currentTextChanged.connect(lambda n: n and self.state.set_coil_name(n))
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

        self.simulate = QPushButton("Simulate TMS  (Ctrl+T)")
        self.simulate.setObjectName("simulateTms")
        self.simulate.clicked.connect(lambda: self.window.simulate_tms())
        lay.addWidget(self.simulate)

        box = QGroupBox("Optimize placement")
        form = QFormLayout(box)
        self.opt_radius = QDoubleSpinBox()
        self.opt_radius.setRange(0, 50)
        self.opt_radius.setValue(_SEARCH.radius_mm)
        self.opt_radius.setSuffix(" mm")
        self.opt_spacing = QDoubleSpinBox()
        self.opt_spacing.setRange(1, 20)
        self.opt_spacing.setValue(_SEARCH.spacing_mm)
        self.opt_spacing.setSuffix(" mm")
        self.opt_angle = QDoubleSpinBox()
        self.opt_angle.setRange(5, 180)
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

    def _intensity(self) -> None:
        self.state.intensity_mode = "mso" if self.mode_mso.isChecked() else "didt"
        self.state.mso = self.mso.value()
        self.state.didt_a_per_us = self.didt.value()
        self.refresh()

    def refresh(self) -> None:
        s = self.state
        self._updating = True
        try:
            self.angle.setValue(round(s.handle_angle_deg))
            self.dial.setValue(round(s.handle_angle_deg))
            self.distance.setValue(s.distance_mm)
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
            kind = "explicit (plan/optimization)" if s.explicit_pose is not None else "from target"
            self.pose_label.setText(
                f"centre ({p[0, 3]:.1f}, {p[1, 3]:.1f}, {p[2, 3]:.1f}) mm, {kind}\n"
                f"handle y ({p[0, 1]:.2f}, {p[1, 1]:.2f}, {p[2, 1]:.2f}); "
                f"normal z ({p[0, 2]:.2f}, {p[1, 2]:.2f}, {p[2, 2]:.2f})")
