"""Results panel: every result of the workspace (simulations, optimizations, plans; whoever
wrote them), read from disk when selected; field at the target, peak, focality and a
histogram of |E| in grey matter (temporal interference: of the envelope, along the cortical
normal or maximal, chosen under "Map"); an optimization's objective values; "Use this plan"
loads a result's plan as the current plan."""

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
    QPushButton,
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
        self.which.activated.connect(lambda i: self._select(self.which.itemData(i)))
        row.addWidget(QLabel("Result"))
        row.addWidget(self.which, 1)
        self.use_plan = QPushButton("Use this plan")
        self.use_plan.setObjectName("usePlan")
        self.use_plan.setToolTip("load this result's coil pose / montage, target and intensity as the current plan")
        self.use_plan.clicked.connect(lambda: self.window.command("apply_result", self.which.currentData()))
        self.use_plan.setEnabled(False)
        row.addWidget(self.use_plan)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.quantity = QComboBox()
        self.quantity.setObjectName("resultQuantity")
        self.quantity.setToolTip("temporal interference: the envelope map drawn on the cortex and the slices")
        self.quantity.activated.connect(
            lambda i: self.window.command("set_result_quantity", self.quantity.itemData(i)))
        self.quantity_label = QLabel("Map")
        row.addWidget(self.quantity_label)
        row.addWidget(self.quantity, 1)
        lay.addLayout(row)
        self.quantity.hide()
        self.quantity_label.hide()
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
        state.resultsListed.connect(self.list_entries)
        state.subjectChanged.connect(self.clear)

    def clear(self) -> None:
        self.which.clear()
        self.table.setRowCount(0)
        self.histogram.clear()
        self.histogram.setText("no result yet")
        self.use_plan.setEnabled(False)

    def keys(self) -> list[str]:
        return [self.which.itemData(i) for i in range(self.which.count())]

    def list_entries(self) -> None:
        """The workspace's stored results (labels; data = key), keeping the selection."""
        current = self.which.currentData()
        self.which.blockSignals(True)
        try:
            self.which.clear()
            for e in self.state.entries.values():
                self.which.addItem(e.label, e.key)
            for key, res in self.state.results.items():  # loaded but not stored (should not happen)
                if key not in self.state.entries:
                    self.which.addItem(key, key)
            i = self.which.findData(current if current is not None else self.state.current_result)
            if i >= 0:
                self.which.setCurrentIndex(i)
            elif self.which.count():
                self.which.setCurrentIndex(-1)
                self.table.setRowCount(0)
                self.histogram.setText(f"{self.which.count()} stored result(s): choose one to show it")
        finally:
            self.which.blockSignals(False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        e = self.state.entries.get(self.which.currentData() or "")
        self.use_plan.setEnabled(e is not None and e.plan_path is not None)

    def select(self, key: str) -> None:
        """Choose a result as the user does (shown at once when loaded, else read from disk)."""
        i = self.which.findData(key)
        if i < 0:
            raise KeyError(key)
        self.which.setCurrentIndex(i)
        self._select(key)

    def on_result(self, key: str) -> None:
        if self.which.findData(key) < 0:
            e = self.state.entries.get(key)
            self.which.addItem(e.label if e else key, key)
        self.which.blockSignals(True)
        self.which.setCurrentIndex(self.which.findData(key))
        self.which.blockSignals(False)
        self._update_buttons()
        res = self.state.results.get(key)
        if res is not None:
            self.show(res)

    def _select(self, key: str | None) -> None:
        self._update_buttons()
        if not key:
            return
        e = self.state.entries.get(key)
        if e is not None and e.fields_dir is None:
            self.table.setRowCount(0)
            self.histogram.setText(f"{e.label}: a plan without field results - 'Use this plan' loads it")
            return
        self.window.command("select_result", key)

    def rows_for(self, res) -> list[tuple[str, str]]:
        def f(v, unit, digits=3):
            return "-" if v is None else f"{v:.{digits}g} {unit}"

        s = res.summary
        t = s.get("target") or {}
        if res.is_ti:
            return self._ti_rows(res, f)
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
        rows += self._extra_rows(res)
        return rows

    @staticmethod
    def _extra_rows(res) -> list[tuple[str, str]]:
        """An optimization's labelled objective values (else its raw numbers), source and folder."""
        rows = list(res.extra.get("optimization_rows") or [])
        if not rows:
            for k, v in res.extra.items():
                if isinstance(v, (int, float, str)) and not isinstance(v, bool):
                    rows.append((k, f"{v:.4g}" if isinstance(v, float) else str(v)))
        rows.append(("Source", "full FEM result (stored)"))
        rows.append(("Output folder", str(res.out_dir) if res.out_dir else "-"))
        return rows

    def _ti_rows(self, res, f) -> list[tuple[str, str]]:
        """A temporal-interference result: the envelope (the map shown and the other), per channel."""
        s = res.summary
        t = s.get("target") or {}
        shown = "along the cortical normal" if res.quantity == "TInormal" else "maximal over directions"
        rows = [
            ("Map shown", res.map_title),
            (f"Envelope at target ({shown}, mean)", f(res.target_field, "V/m")),
            ("Target region", "-" if not t else f"{t.get('radius_mm', 0):g} mm sphere at "
             f"({', '.join(f'{c:.1f}' for c in t.get('center_mm', []))})"),
            ("Envelope along normal at target (cortex, mean)", f(t.get("mean_TInormal_V_per_m"), "V/m")),
            ("Maximal envelope at target (volume, mean)", f(t.get("mean_TImax_V_per_m"), "V/m")),
            (f"Peak envelope {shown} (99.9th pct)", f(res.peak, "V/m")),
            ("Max of maximal envelope", f(s.get("TImax_roi_max_V_per_m"), "V/m")),
            ("Focality: volume >= 50% of peak max envelope",
             f(res.focality.get("50", None) and res.focality["50"] / 1000, "cm3")),
        ]
        for name, c in (s.get("carriers") or {}).items():
            rows.append((f"Carrier {name.replace('pair', 'channel ')}: |E| at target",
                         f(c.get("target_mean_magnE_V_per_m"), "V/m")))
        for e in s.get("electrodes") or []:
            rows.append((f"Electrode {e.get('name') or e.get('position')} (channel {e.get('pair')})",
                         f"{e.get('delivered_current_mA', 0):+.3g} mA"))
        return rows + self._extra_rows(res)

    def show(self, res) -> None:
        self.quantity.blockSignals(True)
        self.quantity.clear()
        if res.is_ti:
            from navigator.gui.ti_result import TI_SHORT

            for q in res.quantities:
                self.quantity.addItem(TI_SHORT[q] + ("" if q != "TInormal" else " - along the cortical normal")
                                      + ("" if q != "TImax" else " - maximal over directions"), q)
            self.quantity.setCurrentIndex(max(self.quantity.findData(res.quantity), 0))
        self.quantity.blockSignals(False)
        self.quantity.setVisible(res.is_ti)
        self.quantity_label.setVisible(res.is_ti)
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
