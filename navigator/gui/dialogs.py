"""Error dialogs and the last-resort exception hook.

Every error reaches the user as a dialog with a one-line message; the traceback is in the
expandable "Show Details..." part. User-fixable problems (:class:`NavigatorError`) say what
to fix; anything else is reported as an internal error and the application keeps running.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from PyQt6.QtWidgets import QApplication, QMessageBox, QWidget

from navigator.core.errors import NavigatorError

log = logging.getLogger("navigator.gui")

#: Every error dialog shown (title, message); tests read it to check what the user saw.
SHOWN_ERRORS: list[tuple[str, str]] = []
#: When True (tests), dialogs are created and shown non-modally and closed right away.
NON_BLOCKING = False
#: Every choice offered to the user (title, options); tests read it.
SHOWN_CHOICES: list[tuple[str, list[str]]] = []
#: Answers to the next choices when NON_BLOCKING (tests): an option index, or None for Cancel;
#: first in, first out. With none left a choice is cancelled.
ANSWERS: list[int | None] = []


def choose_item(parent: QWidget | None, title: str, label: str, options: list[str]) -> int | None:
    """Ask the user to pick one of ``options`` (a modal list); the index picked, None if cancelled."""
    SHOWN_CHOICES.append((title, list(options)))
    if NON_BLOCKING:
        return ANSWERS.pop(0) if ANSWERS else None
    from PyQt6.QtWidgets import QInputDialog

    item, ok = QInputDialog.getItem(parent, title, label, options, 0, False)
    return options.index(item) if ok and item in options else None


#: Every offer to pick a file (title, message); tests read it.
SHOWN_FILE_OFFERS: list[tuple[str, str]] = []
#: Answers to the next file offers when NON_BLOCKING (tests): a path, or None for "Not now";
#: first in, first out. With none left an offer is declined.
FILE_ANSWERS: list[str | None] = []
#: The last file offer's message box (tests take screenshots of it when NON_BLOCKING).
LAST_FILE_OFFER: QMessageBox | None = None


def offer_file(parent: QWidget | None, title: str, message: str, button: str, start: str,
               file_filter: str) -> str | None:
    """Explain why a file is needed and let the user pick it: a message box with ``button``
    and "Not now", then a file dialog. The path picked, None if declined or cancelled."""
    global LAST_FILE_OFFER
    SHOWN_FILE_OFFERS.append((title, message))
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(f"navigator - {title}")
    box.setText(message)
    pick = box.addButton(button, QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(pick)
    box.setObjectName("fileOfferDialog")
    LAST_FILE_OFFER = box
    if NON_BLOCKING:
        box.setModal(False)
        box.show()
        return FILE_ANSWERS.pop(0) if FILE_ANSWERS else None
    box.exec()
    if box.clickedButton() is not pick:
        return None
    from PyQt6.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(parent, title, start, file_filter)
    return path or None


def error_message(exc: BaseException) -> tuple[str, str]:
    """(title, one-line message) for an exception."""
    if isinstance(exc, NavigatorError):
        return "Cannot do that", str(exc)
    if isinstance(exc, (OSError, ValueError)) and str(exc):
        return "Error", f"{type(exc).__name__}: {exc}"
    return "Internal error", f"{type(exc).__name__}: {exc} (this is a bug; details below)"


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """Show an error dialog (message plus expandable details); returns the box."""
    SHOWN_ERRORS.append((title, message))
    log.warning("%s: %s", title, message)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(f"navigator - {title}")
    box.setText(message)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.setObjectName("errorDialog")
    if NON_BLOCKING:
        box.setModal(False)
        box.show()
    else:
        box.exec()
    return box


def show_exception(parent: QWidget | None, exc: BaseException, details: str | None = None) -> QMessageBox:
    title, message = error_message(exc)
    if details is None:
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return show_error(parent, title, message, details)


def install_excepthook() -> None:
    """Route uncaught exceptions (e.g. in slots) to an error dialog instead of aborting."""

    def hook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):
            sys.__excepthook__(etype, value, tb)
            return
        details = "".join(traceback.format_exception(etype, value, tb))
        log.error("uncaught exception:\n%s", details)
        app = QApplication.instance()
        if app is None:
            sys.__excepthook__(etype, value, tb)
            return
        try:
            show_exception(app.activeWindow(), value, details)
        except Exception:  # noqa: BLE001 - never let the hook itself crash the app
            sys.__excepthook__(etype, value, tb)

    sys.excepthook = hook
