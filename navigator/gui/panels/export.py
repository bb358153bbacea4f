"""Export panel: navigation format, file and coordinate space, with the plan's coordinates
in a table (in the chosen space), and plan save/load."""

from __future__ import annotations

import numpy as np
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from navigator.core.errors import NavigatorError


def to_space(p: np.ndarray, space: str) -> np.ndarray:
    """RAS mm -> the export space's coordinates (LPS negates x and y)."""
    p = np.asarray(p, float).copy()
    if space == "lps":
        p[:2] *= -1
    return p


class ExportPanel(QWidget):
    def __init__(self, state, window):
        super().__init__()
        self.state = state
        self.window = window
        self.setObjectName("exportPanel")
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.format = QComboBox()
        self.format.setObjectName("exportFormat")
        self.plugins = {}
        try:
            from navigator.export.registry import plugins

            for p in plugins("exporter"):
                self.plugins[p.name] = p
                self.format.addItem(p.name)
                self.format.setItemData(self.format.count() - 1, p.description, 3)
        except Exception as exc:  # noqa: BLE001 - export is optional at start-up
            self.format.addItem(f"(exporters unavailable: {exc})")
        self.format.currentTextChanged.connect(self._format_changed)
        form.addRow("Format", self.format)
        self.space = QComboBox()
        self.space.setObjectName("exportSpace")
        self.space.currentTextChanged.connect(lambda _: self.refresh())
        form.addRow("Coordinate space", self.space)
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        self.path = QLineEdit()
        self.path.setObjectName("exportPath")
        b = QPushButton("Browse...")
        b.clicked.connect(self.browse)
        h.addWidget(self.path, 1)
        h.addWidget(b)
        form.addRow("File", row)
        self.about = QLabel("")
        self.about.setWordWrap(True)
        form.addRow(self.about)
        lay.addLayout(form)
        self.export_button = QPushButton("Export plan  (Ctrl+E)")
        self.export_button.setObjectName("exportButton")
        self.export_button.clicked.connect(self.export)
        lay.addWidget(self.export_button)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("planTable")
        self.table.setHorizontalHeaderLabels(["Item", "x", "y", "z"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        s = QPushButton("Save plan...  (Ctrl+S)")
        s.clicked.connect(lambda: self.window.save_plan_dialog())
        ld = QPushButton("Load plan...")
        ld.clicked.connect(lambda: self.window.load_plan_dialog())
        row.addWidget(s)
        row.addWidget(ld)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setObjectName("exportStatus")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        for sig in (state.targetChanged, state.poseChanged, state.montageChanged):
            sig.connect(self.refresh)
        state.montageChanged.connect(self._update_about)
        i = self.format.findText("localite")
        if i >= 0:
            self.format.setCurrentIndex(i)
        self._format_changed(self.format.currentText())

    def _format_changed(self, name: str) -> None:
        p = self.plugins.get(name)
        self.space.blockSignals(True)
        self.space.clear()
        if p is not None:
            if p.spaces:
                self.space.addItems(list(p.spaces))
                self.space.setCurrentText(p.coordinate_space if p.coordinate_space in p.spaces else p.spaces[0])
            else:
                self.space.addItem(p.coordinate_space)
            self._update_about()
            ws = self.state.ws
            if ws is not None and (not self.path.text() or not any(self.path.text().endswith(e) for e in p.extensions)):
                self.path.setText(str(ws.path("plans") / "export" / f"{self.state.plan_name}_{p.name}{p.extensions[0]}"))
        self.space.blockSignals(False)
        self.refresh()

    @property
    def table_space(self) -> str:
        s = self.space.currentText()
        return "lps" if s == "lps" else "ras"

    def browse(self) -> None:
        p = self.plugins.get(self.format.currentText())
        filt = f"{p.name} ({' '.join('*' + e for e in p.extensions)})" if p else ""
        path, _ = QFileDialog.getSaveFileName(self, "Export plan", self.path.text(), filt)
        if path:
            self.path.setText(path)

    def export(self) -> None:
        name = self.format.currentText()
        if name not in self.plugins:
            raise NavigatorError("no export format available")
        p = self.plugins[name]
        space = self.space.currentText() if p.spaces else None
        self.window.export_plan(name, self.path.text().strip(), space)

    def rows(self) -> list[tuple[str, np.ndarray]]:
        s = self.state
        out = []
        if s.target is not None:
            out.append((f"target {s.target.name}", s.target_point))
            out.append((f"entry {s.target.name}", np.asarray(s.target.scalp_entry, float)))
        if s.pose is not None:
            out.append(("coil centre", s.pose[:3, 3]))
            out.append(("coil handle (y)", s.pose[:3, 1]))
            out.append(("coil normal (z, into head)", s.pose[:3, 2]))
        for r in s.montage:
            p = s.electrode_position(r.position)
            if p is not None:
                extra = "" if r.channel is None else f", channel {r.channel}" + (
                    "" if r.frequency_hz is None else f" {r.frequency_hz:g} Hz")
                extra += f", rotated {r.angle_deg:g} deg" if r.angle_deg else ""
                out.append((f"electrode {r.position} ({r.current_ma:+g} mA{extra})", p))
        return out

    def _update_about(self) -> None:
        p = self.plugins.get(self.format.currentText())
        if p is not None:
            self.about.setText(f"{p.description}\nCoil axes: {p.coil_axes}" + self.montage_note(p))

    def montage_note(self, plugin) -> str:
        """What happens to the tES montage in this format: carried (with channels, frequencies and
        pad axes) or left out (navigation formats hold coil poses and targets only)."""
        if not self.state.montage:
            return ""
        if "montages" in getattr(plugin, "carries", ()):
            return "\nMontage: written with currents, channels, frequencies and pad axes."
        return ("\nMontage: NOT in this format (it holds " + (", ".join(plugin.carries) or "no montage")
                + "); electrodes, channels and frequencies are kept in Save plan (plan.json) and the json format.")

    def refresh(self) -> None:
        rows = self.rows()
        sp = self.table_space
        self.table.setRowCount(len(rows))
        for i, (k, v) in enumerate(rows):
            v = to_space(v, sp) if "handle" not in k and "normal" not in k else \
                (v * np.array([-1, -1, 1]) if sp == "lps" else v)
            self.table.setItem(i, 0, QTableWidgetItem(k))
            for c in range(3):
                self.table.setItem(i, c + 1, QTableWidgetItem(f"{v[c]:.2f}"))
        self.table.setHorizontalHeaderLabels(["Item", f"x ({sp.upper()})", "y", "z"])
