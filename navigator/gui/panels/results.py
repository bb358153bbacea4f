"""Results panel: field at the target, peak, focality and a histogram of |E| in grey matter."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class ResultsPanel(QWidget):
    def __init__(self, state, window):
        super().__init__()
        self.state = state
        self.window = window
        self.setObjectName("resultsPanel")
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.which = QComboBox()
        self.which.setObjectName("resultCombo")
        self.which.currentTextChanged.connect(self._select)
        row.addWidget(QLabel("Result"))
        row.addWidget(self.which, 1)
        lay.addLayout(row)
        self.table = QTableWidget(0, 2)
        self.table.setObjectName("resultTable")
        self.table.setHorizontalHeaderLabels(["Quantity", "Value"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.table.verticalHeader().setVisible(False)
        lay.addWidget(self.table, 1)

        # the histogram is drawn off the UI thread (navigator.gui.jobs.histogram_png) and shown as a picture
        self.histogram = QLabel("no result yet")
        self.histogram.setObjectName("histogram")
        self.histogram.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.histogram.setMinimumHeight(220)
        lay.addWidget(self.histogram, 1)

        form = QFormLayout()
        self.show_field = QCheckBox("Show field on slices and cortex")
        self.show_field.setChecked(True)
        self.show_field.toggled.connect(self.window.set_field_visible)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 95)
        self.threshold.setValue(25)
        self.threshold.valueChanged.connect(lambda v: self.window.set_field_threshold(v / 100.0))
        form.addRow(self.show_field)
        form.addRow("Slice threshold (% of peak)", self.threshold)
        lay.addLayout(form)
        state.resultChanged.connect(self.on_result)
        state.subjectChanged.connect(self.clear)

    def clear(self) -> None:
        self.which.clear()
        self.table.setRowCount(0)
        self.histogram.clear()
        self.histogram.setText("no result yet")

    def on_result(self, kind: str) -> None:
        if self.which.findText(kind) < 0:
            self.which.addItem(kind)
        self.which.setCurrentText(kind)
        self._select(kind)

    def _select(self, kind: str) -> None:
        res = self.state.results.get(kind)
        if res is None:
            return
        if self.state.current_result != kind:
            self.state.current_result = kind
            self.window.show_result(res)
        self.show(res)

    def rows_for(self, res) -> list[tuple[str, str]]:
        def f(v, unit, digits=3):
            return "-" if v is None else f"{v:.{digits}g} {unit}"

        s = res.summary
        t = s.get("target") or {}
        rows = [
            ("Field at target (mean |E|)", f(res.target_field, "V/m")),
            ("Target region", "-" if not t else f"{t.get('radius_mm', 0):g} mm sphere at "
             f"({', '.join(f'{c:.1f}' for c in t.get('center_mm', []))})"),
            ("Normal component at target", f(t.get("mean_normE_V_per_m"), "V/m")),
            ("Peak |E| (99.9th percentile)", f(res.peak, "V/m")),
            ("Max |E|", f(s.get("E_roi_max_V_per_m"), "V/m")),
            ("Mean |E| in ROI", f(s.get("E_roi_mean_V_per_m"), "V/m")),
            ("Focality: volume >= 50% of peak", f(res.focality.get("50", None) and res.focality["50"] / 1000, "cm3")),
            ("Focality: volume >= 75% of peak", f(res.focality.get("75", None) and res.focality["75"] / 1000, "cm3")),
        ]
        solver = s.get("solver") or {}
        if solver:
            rows.append(("Solver iterations", str(solver.get("iterations", "-"))))
        for k, v in res.extra.items():
            if isinstance(v, (int, float, str)) and not isinstance(v, bool):
                rows.append((k, f"{v:.4g}" if isinstance(v, float) else str(v)))
        rows.append(("Output folder", str(res.out_dir) if res.out_dir else "-"))
        return rows

    def show(self, res) -> None:
        rows = self.rows_for(res)
        self.table.setRowCount(len(rows))
        for i, (k, v) in enumerate(rows):
            self.table.setItem(i, 0, QTableWidgetItem(k))
            self.table.setItem(i, 1, QTableWidgetItem(v))
        png = res.extra.get("histogram_png")
        if png:
            pm = QPixmap()
            pm.loadFromData(png, "PNG")
            self.histogram.setPixmap(pm)
        else:
            self.histogram.clear()
            self.histogram.setText("no field values for a histogram")
