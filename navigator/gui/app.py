"""Start the desktop app: :func:`run_gui` and :func:`display_available`."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

#: third-party packages of the ``gui`` extra
GUI_PACKAGES = ("PyQt6", "pyvista", "pyvistaqt")


def missing_gui_packages() -> list[str]:
    """The packages of the ``gui`` extra that are not installed (empty when the app can start)."""
    return [name for name in GUI_PACKAGES if importlib.util.find_spec(name) is None]


def display_available() -> bool:
    """True when a GUI can be shown: Windows/macOS, or an X11/Wayland display on Linux
    (``QT_QPA_PLATFORM=offscreen`` counts as no display)."""
    if os.environ.get("QT_QPA_PLATFORM", "").lower() in ("offscreen", "minimal"):
        return False
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def create_app(argv: list[str] | None = None):
    """The QApplication (created once), with the exception hook installed."""
    from PyQt6.QtWidgets import QApplication

    from navigator.gui.dialogs import install_excepthook

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
    app.setOrganizationName("navigator")
    app.setApplicationName("navigator-gui")
    install_excepthook()
    return app


def run_gui(path: str | Path | None = None) -> int:
    """Open the main window (on ``path``: a workspace, image, DICOM/m2m folder, mesh or plan)
    and run the event loop; returns the exit code."""
    app = create_app()
    from navigator.gui.main_window import MainWindow

    win = MainWindow()
    win.show()
    if path is not None:
        win.open_path(path)
    return int(app.exec())
