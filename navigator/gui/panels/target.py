"""Target panel: library targets, EEG positions, Beam F3, rules, fMRI, free coordinates,
and the current target with its subject and MNI coordinates."""

from __future__ import annotations

from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from navigator.targets import library


def fmt_xyz(p) -> str:
    return "-" if p is None else f"({p[0]:.1f}, {p[1]:.1f}, {p[2]:.1f})"


class TargetPanel(QWidget):
    def __init__(self, state, window):
        super().__init__()
        self.state = state
        self.window = window
        self.setObjectName("targetPanel")
        lay = QVBoxLayout(self)

        box = QGroupBox("Choose a target")
        form = QFormLayout(box)
        self.library = QComboBox()
        self.library.setObjectName("targetLibrary")
        for name, t in library.LIBRARY.items():
            self.library.addItem(f"{name}  (MNI {t.mni[0]:g}, {t.mni[1]:g}, {t.mni[2]:g})", name)
            self.library.setItemData(self.library.count() - 1, f"{t.description}\n{t.reference}",
                                     role=3)  # ToolTipRole
        b = QPushButton("Set")
        b.setObjectName("setLibraryTarget")
        b.clicked.connect(lambda: self.set_spec(self.library.currentData()))
        form.addRow("Library", self._row(self.library, b))

        self.eeg = QComboBox()
        self.eeg.setObjectName("targetEeg")
        b = QPushButton("Set")
        b.clicked.connect(lambda: self.set_spec(f"eeg:{self.eeg.currentText()}") if self.eeg.currentText() else None)
        form.addRow("EEG 10-10", self._row(self.eeg, b))

        b = QPushButton("Beam F3 (head measurements)")
        b.setObjectName("setBeamF3")
        b.clicked.connect(lambda: self.set_spec("beam-f3"))
        form.addRow("Rule", b)

        self.rule_dist = QComboBox()
        self.rule_dist.addItems(["5cm", "5.5cm", "6cm"])
        self.hotspot = QLineEdit("eeg:C3")
        self.hotspot.setToolTip("motor hotspot: x,y,z (subject mm) or another SPEC such as eeg:C3")
        b = QPushButton("Set")
        b.clicked.connect(lambda: self.set_spec(f"rule:{self.rule_dist.currentText()}:hotspot={self.hotspot.text()}"))
        form.addRow("Anterior rule", self._row(self.rule_dist, QLabel("from"), self.hotspot, b))

        b = QPushButton("Personalized target from resting-state fMRI...")
        b.clicked.connect(self.fmri)
        form.addRow("fMRI", b)

        self.spec = QLineEdit()
        self.spec.setObjectName("targetSpec")
        self.spec.setPlaceholderText("mni:-38,44,26  or  subject:x,y,z  or  a saved target name")
        self.spec.returnPressed.connect(lambda: self.set_spec(self.spec.text()))
        b = QPushButton("Set")
        b.clicked.connect(lambda: self.set_spec(self.spec.text()))
        form.addRow("Coordinates", self._row(self.spec, b))
        hint = QLabel("Or Ctrl+click on a slice, or press P with the mouse over the cortex in 3-D.")
        hint.setWordWrap(True)
        form.addRow(hint)
        lay.addWidget(box)

        cur = QGroupBox("Current target")
        f2 = QFormLayout(cur)
        self.lbl = {}
        for key, text in (("name", "Name"), ("kind", "Kind"), ("subject", "Subject RAS (mm)"),
                          ("mni", "MNI (mm)"), ("entry", "Scalp entry (mm)"), ("depth", "Scalp-cortex"),
                          ("about", "About")):
            w = QLabel("-")
            w.setObjectName(f"target_{key}")
            w.setWordWrap(True)
            self.lbl[key] = w
            f2.addRow(text, w)
        lay.addWidget(cur)
        lay.addStretch(1)
        state.targetChanged.connect(self.refresh)
        state.subjectChanged.connect(self.refresh_subject)

    @staticmethod
    def _row(*widgets) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        for x in widgets:
            h.addWidget(x)
        return w

    def refresh_subject(self) -> None:
        self.eeg.clear()
        if self.state.subject is not None:
            self.eeg.addItems(list(self.state.subject.eeg))
            i = self.eeg.findText("F3")
            if i >= 0:
                self.eeg.setCurrentIndex(i)

    def set_spec(self, spec: str | None) -> None:
        if spec:
            self.window.resolve_target(spec.strip())

    def fmri(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Resting-state fMRI series", "", "NIfTI (*.nii *.nii.gz)")
        if path:
            self.window.fmri_target(path)

    def refresh(self) -> None:
        t = self.state.target
        if t is None:
            for w in self.lbl.values():
                w.setText("-")
            return
        self.lbl["name"].setText(t.name)
        self.lbl["kind"].setText(f"{t.kind} ({t.spec})")
        self.lbl["subject"].setText(fmt_xyz(self.state.target_point))
        self.lbl["mni"].setText(fmt_xyz(t.mni) if t.mni is not None else "- (no MNI transform)")
        self.lbl["entry"].setText(fmt_xyz(t.scalp_entry))
        d = t.scalp_cortex_distance_mm
        self.lbl["depth"].setText("-" if d is None else f"{d:.1f} mm")
        self.lbl["about"].setText(" - ".join(x for x in (t.description, t.reference) if x) or "-")
