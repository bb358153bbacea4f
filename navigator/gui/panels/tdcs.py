"""tDCS panel: montage editor on the 10-10 grid (pads or HD), currents, stimulator channels
and their frequencies (temporal interference), pad rotation, presets, simulate (tDCS, or TI
when the electrodes name channels 1 and 2) and optimize with constraints: HD currents, a pad
pair and its rotation, temporal interference (two channels: pairs, currents and frequencies)
or a centre-surround ring; the optimizer's objective values are listed under the button."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPen
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from navigator.core.errors import NavigatorError
from navigator.gui.montage import (
    channel_summary,
    channel_text,
    fmt_optional,
    is_multichannel,
    parse_angle,
    parse_channel,
    parse_frequency,
)
from navigator.gui.state import MONTAGE_PRESETS, ElectrodeRow
from navigator.optimize.tdcs import MODES, TdcsSearch

#: the defaults of a montage optimization (shared with `navigator optimize tdcs` and the batch step)
_SEARCH = TdcsSearch()

#: the optimization methods as the panel names them
MODE_LABELS = {"hd": "HD currents (cap discs)", "pads": "pad pair (+ rotation)",
               "ti": "temporal interference (2 channels)", "center-surround": "centre-surround (Nx1 ring)"}

PAD = ("rect", "50x50")
HD = ("disc", "12")
#: outline colours of the stimulator channels on the electrode grid
CHANNEL_COLOURS = {1: QColor(20, 160, 60), 2: QColor(240, 140, 0)}


def grid_projection(eeg: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Azimuthal equidistant projection of EEG positions seen from above (Cz at the centre).

    Returns name -> (x, y) in [-1, 1]: x to the subject's right, y anterior; the Nz-Cz-Iz
    circle (90 deg from Cz) has radius 0.8.
    """
    if not eeg:
        return {}
    names = list(eeg)
    pts = np.array([eeg[n] for n in names], float)
    centre = pts.mean(axis=0)
    cz = eeg.get("Cz", centre + np.array([0, 0, 100.0]))
    up = cz - centre
    up /= np.linalg.norm(up)
    ant = np.array([0.0, 1.0, 0.0]) - up[1] * up
    ant /= np.linalg.norm(ant)
    right = np.cross(ant, up)
    out = {}
    for n, p in zip(names, pts):
        d = p - centre
        d /= np.linalg.norm(d)
        theta = np.arccos(np.clip(d @ up, -1, 1))
        az = np.arctan2(d @ ant, d @ right)
        r = theta / (np.pi / 2) * 0.8
        out[n] = (r * np.cos(az), r * np.sin(az))
    return out


class ElectrodeGrid(QWidget):
    """The subject's 10-10 positions seen from above; click cycles off -> anode -> cathode."""

    clicked = pyqtSignal(str)

    def __init__(self):
        super().__init__()
        self.setObjectName("electrodeGrid")
        self.setMinimumSize(240, 240)
        self.proj: dict[str, tuple[float, float]] = {}
        self.currents: dict[str, float] = {}
        self.channels: dict[str, int] = {}  # position (lower case) -> stimulator channel

    def set_positions(self, eeg: dict[str, np.ndarray]) -> None:
        self.proj = grid_projection(eeg)
        self.update()

    def _to_screen(self, xy) -> QPointF:
        s = min(self.width(), self.height()) / 2 - 12
        return QPointF(self.width() / 2 + xy[0] * s, self.height() / 2 - xy[1] * s)

    def paintEvent(self, ev) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(250, 250, 250))
        s = min(self.width(), self.height()) / 2 - 12
        c = QPointF(self.width() / 2, self.height() / 2)
        p.setPen(QPen(QColor(120, 120, 120), 1))
        p.drawEllipse(c, 0.8 * s, 0.8 * s)
        p.drawText(QRectF(4, 2, 220, 14), Qt.AlignmentFlag.AlignLeft, "top view, nose up (A)")
        p.drawText(QRectF(2, 0, 20, self.height()), Qt.AlignmentFlag.AlignVCenter, "L")
        p.drawText(QRectF(self.width() - 14, 0, 14, self.height()), Qt.AlignmentFlag.AlignVCenter, "R")
        if not self.proj:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "no EEG positions\n(prepare the subject)")
            p.end()
            return
        for name, xy in self.proj.items():
            q = self._to_screen(xy)
            cur = self.currents.get(name.lower())
            if cur is None:
                p.setBrush(QColor(230, 230, 230))
                p.setPen(QColor(150, 150, 150))
                rad = 9
            else:
                p.setBrush(QColor(230, 50, 50) if cur > 0 else QColor(50, 90, 230))
                ch = self.channels.get(name.lower())
                p.setPen(QPen(CHANNEL_COLOURS.get(ch, QColor(120, 0, 160)), 4) if ch is not None else QColor(0, 0, 0))
                rad = 12
            p.drawEllipse(q, rad, rad)
            ch = self.channels.get(name.lower()) if cur is not None else None
            if ch is not None:
                f = p.font()
                f.setPointSize(7)
                f.setBold(True)
                p.setFont(f)
                p.setPen(CHANNEL_COLOURS.get(ch, QColor(120, 0, 160)))
                p.drawText(QRectF(q.x() + 9, q.y() - 20, 24, 12), Qt.AlignmentFlag.AlignLeft, f"ch{ch}")
                f.setBold(False)
                p.setFont(f)
            p.setPen(QColor(0, 0, 0))
            f = p.font()
            f.setPointSize(6)
            p.setFont(f)
            p.drawText(QRectF(q.x() - 16, q.y() - 6, 32, 12), Qt.AlignmentFlag.AlignCenter, name)
        p.end()

    def name_at(self, pos: QPointF) -> str | None:
        best, bd = None, 14.0
        for name, xy in self.proj.items():
            q = self._to_screen(xy)
            d = ((q.x() - pos.x()) ** 2 + (q.y() - pos.y()) ** 2) ** 0.5
            if d < bd:
                best, bd = name, d
        return best

    def mousePressEvent(self, ev) -> None:
        n = self.name_at(ev.position())
        if n:
            self.clicked.emit(n)


class TdcsPanel(QWidget):
    COLS = ("Position", "mA", "Ch", "Hz", "Shape", "Size", "Angle")
    #: column of each ElectrodeRow field in the montage table
    COL = {"position": 0, "current": 1, "channel": 2, "frequency": 3, "shape": 4, "size": 5, "angle": 6}

    def __init__(self, state, window):
        super().__init__()
        self.state = state
        self.window = window
        self.setObjectName("tdcsPanel")
        self._updating = False
        # the panel scrolls: montage editor, table, channels, optimization settings and its
        # objective values are taller than the window on a laptop screen
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("tdcsScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        inner = QWidget()
        self.scroll.setWidget(inner)
        outer.addWidget(self.scroll)
        lay = QVBoxLayout(inner)

        top = QHBoxLayout()
        self.pads = QRadioButton("Pads (5x5 cm sponges)")
        self.hd = QRadioButton("HD (12 mm gel discs)")
        self.pads.setChecked(True)
        g = QButtonGroup(self)
        g.addButton(self.pads)
        g.addButton(self.hd)
        top.addWidget(self.pads)
        top.addWidget(self.hd)
        lay.addLayout(top)
        row = QHBoxLayout()
        self.preset = QComboBox()
        self.preset.setObjectName("montagePreset")
        self.preset.addItems(list(MONTAGE_PRESETS))
        b = QPushButton("Apply preset")
        b.setObjectName("applyPreset")
        b.clicked.connect(self.apply_preset)
        row.addWidget(QLabel("Preset"))
        row.addWidget(self.preset, 1)
        row.addWidget(b)
        lay.addLayout(row)

        self.grid = ElectrodeGrid()
        self.grid.clicked.connect(self.toggle)
        lay.addWidget(self.grid, 1)

        self.table = QTableWidget(0, len(self.COLS))
        self.table.setObjectName("montageTable")
        self.table.setHorizontalHeaderLabels(self.COLS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setMinimumSectionSize(28)
        self.table.verticalHeader().setVisible(False)
        self.last_error = ""
        for c, tip in enumerate(("EEG name (10-10, or 10-05 where stored) or x,y,z (mm, subject RAS)", "current, mA (+ into the head: anode)",
                                 "stimulator channel: empty for tDCS, 1 and 2 for temporal interference",
                                 "carrier frequency of the channel, Hz (an edit applies to the whole channel)",
                                 "rect, ellipse, disc, ring", "size, mm: WxH or the diameter",
                                 "pad rotation about the scalp normal, degrees counter-clockwise seen from outside")):
            self.table.horizontalHeaderItem(c).setToolTip(tip)
        self.table.itemChanged.connect(self._table_edited)
        self.table.setMinimumHeight(150)  # a TI montage's four rows
        lay.addWidget(self.table)
        row = QHBoxLayout()
        self.total = QDoubleSpinBox()
        self.total.setRange(0.1, 4.0)
        self.total.setValue(2.0)
        self.total.setSuffix(" mA")
        b1 = QPushButton("Balance currents")
        b1.clicked.connect(self.balance)
        b2 = QPushButton("Remove selected")
        b2.clicked.connect(self.remove_selected)
        row.addWidget(QLabel("Total"))
        row.addWidget(self.total)
        row.addWidget(b1)
        row.addWidget(b2)
        lay.addLayout(row)
        self.sum_label = QLabel("")
        self.sum_label.setObjectName("currentSum")
        lay.addWidget(self.sum_label)

        self.simulate = QPushButton("Simulate tDCS")
        self.simulate.setObjectName("simulateTdcs")
        self.simulate.setToolTip("one-channel tDCS; with channels 1 and 2 a temporal-interference simulation "
                                 "(envelope map as chosen under Objective)")
        self.simulate.clicked.connect(lambda: self.window.simulate_tdcs())
        lay.addWidget(self.simulate)

        box = QGroupBox("Optimize montage for the target")
        form = QFormLayout(box)
        self.opt_form = form
        self.opt_mode = QComboBox()
        self.opt_mode.setObjectName("optimizeMode")
        for k, mode in enumerate(MODES):
            self.opt_mode.addItem(mode, mode)
            self.opt_mode.setItemData(k, MODE_LABELS[mode], Qt.ItemDataRole.ToolTipRole)
        self.opt_mode.setCurrentIndex(MODES.index(_SEARCH.mode))
        self.opt_objective = QComboBox()
        self.opt_objective.addItem("along the cortical normal", "normal")
        self.opt_objective.addItem("magnitude (TI: maximal envelope)", "magnitude")
        self.opt_objective.setCurrentIndex(0 if _SEARCH.objective == "normal" else 1)
        self.opt_total = QDoubleSpinBox()
        self.opt_total.setRange(0.1, 4)
        self.opt_total.setValue(_SEARCH.max_total_ma)
        self.opt_total.setSuffix(" mA")
        self.opt_each = QDoubleSpinBox()
        self.opt_each.setRange(0.1, 4)
        self.opt_each.setValue(_SEARCH.max_electrode_ma)
        self.opt_each.setSuffix(" mA")
        self.opt_active = QSpinBox()
        self.opt_active.setRange(0, 64)
        self.opt_active.setValue(_SEARCH.max_electrodes or 0)
        self.opt_active.setSpecialValueText("no limit")
        # HD and TI: the cap whose positions are the disc sites
        self.opt_cap = QComboBox()
        self.opt_cap.setObjectName("tdcsCap")
        self.opt_cap.addItems(["10-10", "10-05"])
        self.opt_cap.setCurrentText(_SEARCH.cap)
        # all methods: regions to keep the field off, and their limit
        self.opt_avoid = QLineEdit(", ".join(_SEARCH.avoid))
        self.opt_avoid.setObjectName("tdcsAvoid")
        self.opt_avoid.setPlaceholderText("none; e.g. mni:0,60,0:15; eeg:Fp2:20 (SPEC:RADIUS_MM, ';' between)")
        self.opt_avoid_max = QDoubleSpinBox()
        self.opt_avoid_max.setObjectName("tdcsAvoidMax")
        self.opt_avoid_max.setDecimals(3)
        self.opt_avoid_max.setRange(0, 10)
        self.opt_avoid_max.setSingleStep(0.01)
        self.opt_avoid_max.setValue(_SEARCH.avoid_max_v_per_m or 0.0)
        self.opt_avoid_max.setSuffix(" V/m")
        self.opt_avoid_max.setSpecialValueText("no limit (report only)")
        # TI: focality weight on the avoid regions' envelope
        self.ti_weight = QDoubleSpinBox()
        self.ti_weight.setObjectName("tiAvoidWeight")
        self.ti_weight.setRange(0, 100)
        self.ti_weight.setDecimals(2)
        self.ti_weight.setValue(_SEARCH.ti_avoid_weight)
        self.ti_weight.setSpecialValueText("0 (target envelope only)")
        # centre-surround on the cap positions
        self.cs_on_cap = QCheckBox("snap the discs to the nearest cap positions")
        self.cs_on_cap.setChecked(_SEARCH.surround_on_cap)
        # HD, TI and centre-surround: the gel discs' diameter
        self.opt_diameter = QDoubleSpinBox()
        self.opt_diameter.setObjectName("discDiameter")
        self.opt_diameter.setRange(2, 40)
        self.opt_diameter.setValue(_SEARCH.electrode_diameter_mm)
        self.opt_diameter.setSuffix(" mm")
        # pads: rotation search
        self.opt_angle = QDoubleSpinBox()
        self.opt_angle.setRange(0, 90)
        self.opt_angle.setValue(_SEARCH.pad_angle_step_deg)
        self.opt_angle.setSuffix(" deg")
        self.opt_angle.setSpecialValueText("no rotation")
        # temporal interference: two channels
        self.ti_channel = QDoubleSpinBox()
        self.ti_channel.setRange(0.1, 4)
        self.ti_channel.setValue(_SEARCH.ti_channel_ma)
        self.ti_channel.setSuffix(" mA")
        self.ti_total = QDoubleSpinBox()
        self.ti_total.setRange(0.1, 8)
        self.ti_total.setValue(_SEARCH.ti_total_ma)
        self.ti_total.setSuffix(" mA")
        self.ti_f1, self.ti_f2 = QDoubleSpinBox(), QDoubleSpinBox()
        for sb, f in ((self.ti_f1, _SEARCH.ti_frequencies_hz[0]), (self.ti_f2, _SEARCH.ti_frequencies_hz[1])):
            sb.setRange(1, 100000)
            sb.setDecimals(1)
            sb.setValue(f)
            sb.setSuffix(" Hz")
        freq = QWidget()
        fl = QHBoxLayout(freq)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.ti_f1)
        fl.addWidget(self.ti_f2)
        # centre-surround
        self.cs_returns = QSpinBox()
        self.cs_returns.setRange(1, 12)
        self.cs_returns.setValue(_SEARCH.n_returns)
        self.cs_radius = QDoubleSpinBox()
        self.cs_radius.setRange(10, 120)
        self.cs_radius.setValue(_SEARCH.ring_radius_mm)
        self.cs_radius.setSuffix(" mm")
        self.cs_currents = QComboBox()
        self.cs_currents.addItems(["optimized", "standard"])
        self.cs_currents.setCurrentText(_SEARCH.surround_currents)
        form.addRow("Method", self.opt_mode)
        form.addRow("Objective", self.opt_objective)
        #: which rows each method shows
        self._rows = {
            "total": (form.rowCount(), ("hd", "pads", "center-surround")),
        }
        form.addRow("Max total current", self.opt_total)
        self._rows["each"] = (form.rowCount(), ("hd", "center-surround"))
        form.addRow("Max per electrode", self.opt_each)
        self._rows["active"] = (form.rowCount(), ("hd",))
        form.addRow("Max active electrodes", self.opt_active)
        self._rows["cap"] = (form.rowCount(), ("hd", "ti"))
        form.addRow("EEG cap (disc sites)", self.opt_cap)
        self._rows["avoid"] = (form.rowCount(), MODES)
        form.addRow("Avoid regions", self.opt_avoid)
        self._rows["avoid_max"] = (form.rowCount(), MODES)
        form.addRow("Avoid limit (mean)", self.opt_avoid_max)
        self._rows["ti_weight"] = (form.rowCount(), ("ti",))
        form.addRow("TI focality weight", self.ti_weight)
        self._rows["cs_on_cap"] = (form.rowCount(), ("center-surround",))
        form.addRow(self.cs_on_cap)
        self._rows["diameter"] = (form.rowCount(), ("hd", "ti", "center-surround"))
        form.addRow("Disc diameter", self.opt_diameter)
        self._rows["angle"] = (form.rowCount(), ("pads",))
        form.addRow("Pad rotation step", self.opt_angle)
        self._rows["ti_channel"] = (form.rowCount(), ("ti",))
        form.addRow("Max per channel", self.ti_channel)
        self._rows["ti_total"] = (form.rowCount(), ("ti",))
        form.addRow("Max both channels", self.ti_total)
        self._rows["ti_freq"] = (form.rowCount(), ("ti",))
        form.addRow("Frequencies f1, f2", freq)
        self._rows["cs_returns"] = (form.rowCount(), ("center-surround",))
        form.addRow("Return electrodes", self.cs_returns)
        self._rows["cs_radius"] = (form.rowCount(), ("center-surround",))
        form.addRow("Ring radius", self.cs_radius)
        self._rows["cs_currents"] = (form.rowCount(), ("center-surround",))
        form.addRow("Currents", self.cs_currents)
        self.opt_mode.currentIndexChanged.connect(self._mode_changed)
        self.opt_nifti = QCheckBox("write volume maps (NIfTI)")
        self.opt_nifti.setObjectName("tdcsWriteMaps")
        self.opt_nifti.setToolTip("also write the field / envelope maps as NIfTI (slower, larger); the app "
                                  "samples its slice maps from fields.msh in memory either way")
        self.opt_nifti.setChecked(_SEARCH.nifti)  # the default of the CLI and the batch
        form.addRow(self.opt_nifti)
        self.optimize = QPushButton("Optimize montage")
        self.optimize.setObjectName("optimizeTdcs")
        self.optimize.clicked.connect(lambda: self.window.optimize_tdcs())
        form.addRow(self.optimize)
        self.opt_result = QLabel("")
        self.opt_result.setObjectName("tdcsOptimizationResult")
        self.opt_result.setWordWrap(True)
        self.opt_result.hide()  # the full line, for the log and tests; the table below is what is read
        form.addRow(self.opt_result)
        self.report = QTableWidget(0, 2)
        self.report.setObjectName("tdcsObjectives")
        self.report.setHorizontalHeaderLabels(["Objective value / setting", "Value"])
        self.report.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.report.verticalHeader().setVisible(False)
        self.report.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.report.setWordWrap(True)
        self.report.setMinimumHeight(150)
        self.report.hide()
        form.addRow(self.report)
        lay.addWidget(box)
        self.opt_mode_help = QLabel("")
        self.opt_mode_help.setWordWrap(True)
        form.insertRow(1, self.opt_mode_help)
        self._rows = {k: (row + 1, modes) for k, (row, modes) in self._rows.items()}
        self._mode_changed()
        state.montageChanged.connect(self.refresh)
        state.subjectChanged.connect(lambda: self.grid.set_positions(state.subject.eeg if state.subject else {}))
        self.refresh()

    def mode(self) -> str:
        """The optimization method chosen (one of :data:`navigator.optimize.tdcs.MODES`)."""
        return str(self.opt_mode.currentData())

    def form_visible(self, row: str) -> bool:
        """Whether the setting ``row`` (a key of the method rows) is shown for the chosen method."""
        return self.opt_form.isRowVisible(self._rows[row][0])

    def _mode_changed(self) -> None:
        mode = self.mode()
        self.opt_mode_help.setText(MODE_LABELS[mode])
        for row, modes in self._rows.values():
            self.opt_form.setRowVisible(row, mode in modes)

    def ti_quantity(self) -> str:
        """The TI envelope map to show first: along the cortical normal or maximal (the objective)."""
        return "TImax" if self.opt_objective.currentData() == "magnitude" else "TInormal"

    def show_report(self, text: str | None, rows: list[tuple[str, str]] | None) -> None:
        """An optimization finished (or a stored one is shown): its key numbers (``text``; None
        keeps the line) and labelled objective values (``rows``)."""
        if text is not None:
            self.opt_result.setText(text)
        text = self.opt_result.text()
        rows = rows or []
        self.report.setRowCount(len(rows))
        for i, (k, v) in enumerate(rows):
            self.report.setItem(i, 0, QTableWidgetItem(k))
            self.report.setItem(i, 1, QTableWidgetItem(v))
        self.report.resizeRowsToContents()
        self.report.setVisible(bool(rows))
        self.opt_result.setVisible(not rows and bool(text))

    def report_rows(self) -> dict[str, str]:
        return {self.report.item(i, 0).text(): self.report.item(i, 1).text() for i in range(self.report.rowCount())}

    def search(self) -> TdcsSearch:
        """The montage optimization set in the panel: method, objective, current limits (mA) and
        the method's own settings (pad rotation step, TI channels, centre-surround ring)."""
        return TdcsSearch(mode=self.mode(), objective=str(self.opt_objective.currentData()),
                          max_total_ma=self.opt_total.value(), max_electrode_ma=self.opt_each.value(),
                          max_electrodes=self.opt_active.value() if self.opt_active.value() > 0 else None,
                          electrode_diameter_mm=self.opt_diameter.value(), nifti=self.opt_nifti.isChecked(),
                          cap=self.opt_cap.currentText(), avoid=self.avoid_specs(),
                          avoid_max_v_per_m=self.opt_avoid_max.value() or None,
                          ti_avoid_weight=self.ti_weight.value(), surround_on_cap=self.cs_on_cap.isChecked(),
                          pad_angle_step_deg=self.opt_angle.value(), ti_channel_ma=self.ti_channel.value(),
                          ti_total_ma=self.ti_total.value(), ti_frequencies_hz=(self.ti_f1.value(), self.ti_f2.value()),
                          n_returns=self.cs_returns.value(), ring_radius_mm=self.cs_radius.value(),
                          surround_currents=self.cs_currents.currentText())

    def avoid_specs(self) -> list[str]:
        """The avoid regions typed in the panel: ``SPEC:RADIUS_MM`` separated by ';' (or new lines)."""
        text = self.opt_avoid.text().replace("\n", ";")
        return [a.strip() for a in text.split(";") if a.strip()]

    def _shape(self) -> tuple[str, str]:
        return PAD if self.pads.isChecked() else HD

    def apply_preset(self) -> None:
        self.state.set_montage(MONTAGE_PRESETS[self.preset.currentText()])

    def toggle(self, name: str) -> None:
        rows = list(self.state.montage)
        idx = next((i for i, r in enumerate(rows) if r.position.lower() == name.lower()), None)
        shape, size = self._shape()
        if idx is None:
            rows.append(ElectrodeRow(name, 1.0, shape, size))
        elif rows[idx].current_ma > 0:
            r = rows[idx]
            rows[idx] = ElectrodeRow(name, -1.0, r.shape, r.size, r.channel, r.frequency_hz, r.angle_deg)
        else:
            rows.pop(idx)
        self.state.set_montage(rows)
        self.balance()

    def balance(self) -> None:
        """Split the current evenly over anodes (+) and cathodes (-) of each channel: the Total
        for a one-channel montage, each channel's own injected current for a multi-channel one."""
        rows = [replace(r) for r in self.state.montage]  # copies: the state's rows change only by undo steps
        multi = is_multichannel(rows)
        for c in channel_summary(rows):
            group = [r for r in rows if r.channel == c.channel]
            an = [r for r in group if r.current_ma > 0]
            ca = [r for r in group if r.current_ma < 0]
            tot = c.injected_ma if (multi and c.injected_ma > 0) else self.total.value()
            for r in an:
                r.current_ma = tot / len(an)
            for r in ca:
                r.current_ma = -tot / len(ca)
        self.state.set_montage(rows)

    def remove_selected(self) -> None:
        sel = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        rows = list(self.state.montage)
        for i in sel:
            rows.pop(i)
        self.state.set_montage(rows)

    def _cell(self, i: int, key: str) -> str:
        item = self.table.item(i, self.COL[key])
        return item.text() if item is not None else ""

    def _table_edited(self, item) -> None:
        """A cell was edited: the whole table becomes the montage (one undo step). A bad
        channel, frequency or angle is refused with a message and the table shows the montage
        as it was; a frequency edit applies to every electrode of that channel."""
        if self._updating:
            return
        old = self.state.montage
        rows = []
        try:
            for i in range(self.table.rowCount()):
                try:
                    cur = float(self._cell(i, "current"))
                except ValueError:
                    cur = 0.0
                rows.append(ElectrodeRow(self._cell(i, "position").strip(), cur, self._cell(i, "shape").strip() or "rect",
                                         self._cell(i, "size").strip(), parse_channel(self._cell(i, "channel")),
                                         parse_frequency(self._cell(i, "frequency")), parse_angle(self._cell(i, "angle"))))
        except NavigatorError as exc:
            status = getattr(self.window, "status", None)
            if callable(status):
                status(str(exc))
            self.last_error = str(exc)
            self.refresh()
            return
        if item is not None and item.column() == self.COL["frequency"] and item.row() < len(rows):
            edited = rows[item.row()]
            if edited.channel is not None:
                for r in rows:
                    if r.channel == edited.channel:
                        r.frequency_hz = edited.frequency_hz
        if item is not None and item.column() == self.COL["channel"] and item.row() < len(rows):
            edited = rows[item.row()]  # joining a channel: take its frequency when none is given
            if edited.channel is not None and (item.row() >= len(old) or old[item.row()].frequency_hz is None
                                               or old[item.row()].channel != edited.channel):
                f = next((r.frequency_hz for k, r in enumerate(rows) if k != item.row() and r.channel == edited.channel
                          and r.frequency_hz is not None), None)
                if f is not None:
                    edited.frequency_hz = f
        self.state.set_montage(rows)
        self.refresh()  # a refused or propagated value shows as it is in the montage

    def refresh(self) -> None:
        self._updating = True
        try:
            rows = self.state.montage
            self.table.setRowCount(len(rows))
            for i, r in enumerate(rows):
                cells = {"position": r.position, "current": f"{r.current_ma:g}", "channel": fmt_optional(r.channel),
                         "frequency": fmt_optional(r.frequency_hz), "shape": r.shape, "size": r.size,
                         "angle": f"{r.angle_deg:g}" if r.angle_deg else ""}
                for key, v in cells.items():
                    self.table.setItem(i, self.COL[key], QTableWidgetItem(v))
            self.grid.currents = {r.position.lower(): r.current_ma for r in rows}
            self.grid.channels = {r.position.lower(): r.channel for r in rows if r.channel is not None}
            self.grid.update()
            if is_multichannel(rows):
                self.sum_label.setText(channel_text(rows))
                self.simulate.setText("Simulate TI (channels 1 and 2)")
            else:
                s = sum(r.current_ma for r in rows)
                self.sum_label.setText(f"sum of currents: {s:+.3f} mA" + ("" if abs(s) < 1e-6 else "  (must be 0)"))
                self.simulate.setText("Simulate tDCS")
        finally:
            self._updating = False
