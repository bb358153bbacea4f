"""Opening a DICOM folder that holds a whole exam in the app: the T1 series is found or asked for."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")


@pytest.fixture()
def window(empty_window):
    return empty_window


def _exam(folder, tmp_dicom_series, descriptions):
    from navigator.io.dicom import MIN_VOLUME_IMAGES

    rng = np.random.default_rng(2)
    for number, description in enumerate(descriptions, start=1):
        n = 3 if "scout" in description.lower() else MIN_VOLUME_IMAGES
        tmp_dicom_series(folder / str(number), rng.integers(0, 500, size=(8, 7, n)).astype(float),
                         description=description, series_number=number, series_uid=f"1.2.840.77.{number}")
    return folder


def test_exam_with_one_t1_opens_it(qtbot, window, tmp_path, tmp_dicom_series, monkeypatch):
    from navigator.gui import dialogs
    from navigator.io import dicom
    from navigator.io.images import load_image

    exam = _exam(tmp_path / "exam", tmp_dicom_series, ["AAHead_Scout", "t1_mprage_sag_p2_iso", "t2_space_sag"])
    listed = []
    list_series = dicom.list_dicom_series
    monkeypatch.setattr(dicom, "list_dicom_series", lambda folder: listed.append(folder) or list_series(folder))
    offered_before = len(dialogs.SHOWN_CHOICES)
    window.controller.open_dicom(exam, tmp_path / "ws", prepare=False)
    qtbot.waitUntil(lambda: window.state.subject is not None and not window.runner.busy, timeout=60_000)
    assert len(dialogs.SHOWN_CHOICES) == offered_before  # nothing to ask
    assert len(listed) == 1  # the exam's headers are read once (the listing is passed on)
    np.testing.assert_array_equal(load_image(window.state.ws.source_path("T1")).data,
                                  load_image(exam, series_uid="2").data)


def test_exam_with_two_t1s_asks_which(qtbot, window, tmp_path, tmp_dicom_series):
    """Pre- and post-contrast MPRAGEs: the user is asked; Cancel opens nothing, a pick opens it."""
    from navigator.gui import dialogs
    from navigator.io.images import load_image

    exam = _exam(tmp_path / "exam", tmp_dicom_series,
                 ["AAHead_Scout", "t1_mprage_sag", "t2_tse_tra", "t1_mprage_sag_post_gad"])
    dialogs.ANSWERS[:] = [None]
    window.controller.open_dicom(exam, tmp_path / "ws", prepare=False)
    qtbot.waitUntil(lambda: len(dialogs.ANSWERS) == 0 and not window.runner.busy, timeout=60_000)
    title, options = dialogs.SHOWN_CHOICES[-1]
    assert title == "Choose the T1 series" and len(options) == 2
    assert "t1_mprage_sag" in options[0] and "post_gad" in options[1]
    assert window.state.subject is None and not (tmp_path / "ws").exists()
    dialogs.ANSWERS[:] = [1]
    window.controller.open_dicom(exam, tmp_path / "ws", prepare=False)
    qtbot.waitUntil(lambda: window.state.subject is not None and not window.runner.busy, timeout=60_000)
    np.testing.assert_array_equal(load_image(window.state.ws.source_path("T1")).data,
                                  load_image(exam, series_uid="4").data)
