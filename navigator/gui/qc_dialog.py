"""The head model's QC report in the app: the segmentation's QC figure and its verdict.

The figure is ``labels/qc/segmentation_qc.png`` (label overlays in three planes through the
left DLPFC and one through the left medial surface, tissue volumes against adult ranges, a
plain verdict), made by the segmentation step; the text above it repeats the verdict, the
failed checks and the segmentation's warnings (cut field of view, defaced face...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QScrollArea, QVBoxLayout, QWidget


def qc_text(qc: dict[str, Any]) -> str:
    """Verdict, failed checks and warnings of a QC dictionary, one per line."""
    from navigator.segmentation.qc import verdict_lines

    lines = verdict_lines(qc)
    lines += [f"warning: {w}" for w in qc.get("warnings", [])]
    return "\n".join(lines) or "no verdict recorded (segmentation from an older navigator)"


class QcReportDialog(QDialog):
    """Non-modal window with the QC text and the QC figure (scrollable at full resolution)."""

    def __init__(self, parent: QWidget | None, subject_name: str, qc: dict[str, Any], png: Path | None):
        super().__init__(parent)
        self.setObjectName("qcDialog")
        self.setWindowTitle(f"Head model QC - {subject_name}")
        layout = QVBoxLayout(self)
        self.text = QLabel(qc_text(qc))
        self.text.setObjectName("qcText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        plausible = (qc.get("verdict") or {}).get("plausible", True)
        self.text.setStyleSheet("" if plausible else "color: #b00020; font-weight: bold")
        layout.addWidget(self.text)
        self.figure = QLabel("no QC figure in this workspace" if png is None else "")
        self.figure.setObjectName("qcFigure")
        if png is not None:
            self.figure.setPixmap(QPixmap(str(png)))
        scroll = QScrollArea()
        scroll.setWidget(self.figure)
        layout.addWidget(scroll, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        self.resize(1320, 900)
