"""Opening a raw MP2RAGE UNI image in the app: the user is offered to pick its INV2 image (and
Subject > Add MP2RAGE INV2 adds one later); an ordinary T1 is not asked about."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from test_mp2rage import _aff, _mp2rage, _tissues  # noqa: E402


@pytest.fixture()
def window(empty_window):
    return empty_window


def _open(qtbot, window, path, out):
    window.controller.open_image(path, out, prepare=False)
    qtbot.waitUntil(lambda: window.state.subject is not None and not window.runner.busy, timeout=60_000)


def test_raw_uni_offers_to_pick_the_inv2(qtbot, window, tmp_path, tmp_image):
    from navigator.core.workspace import Workspace
    from navigator.gui import dialogs

    uni, inv2, _ = _mp2rage()
    uni_p = tmp_image(uni, _aff(), name="UNI.nii.gz")
    inv2_p = tmp_image(inv2, _aff(), name="INV2.nii.gz")
    offers = len(dialogs.SHOWN_FILE_OFFERS)
    dialogs.FILE_ANSWERS[:] = [None]  # "Not now"
    _open(qtbot, window, uni_p, tmp_path / "ws")
    assert len(dialogs.SHOWN_FILE_OFFERS) == offers + 1
    title, message = dialogs.SHOWN_FILE_OFFERS[-1]
    assert title == "MP2RAGE UNI image" and "INV2" in message
    assert "Add MP2RAGE INV2" in window.statusBar().currentMessage()
    if os.environ.get("NAVIGATOR_SCREENSHOTS"):  # a look at the offer (docs, review)
        qtbot.wait(200)
        dialogs.LAST_FILE_OFFER.grab().save(os.path.join(os.environ["NAVIGATOR_SCREENSHOTS"], "mp2rage_offer.png"))
    assert "INV2" not in Workspace.open(tmp_path / "ws").sources()
    # opened again, the user picks the INV2: it is checked and recorded
    dialogs.FILE_ANSWERS[:] = [str(inv2_p)]
    _open(qtbot, window, uni_p, tmp_path / "ws")
    qtbot.waitUntil(lambda: not window.runner.busy and "INV2" in Workspace.open(tmp_path / "ws").sources(),
                    timeout=60_000)
    assert len(dialogs.SHOWN_FILE_OFFERS) == offers + 2
    assert "INV2 added" in window.statusBar().currentMessage()
    # with its INV2 the subject is not asked about again
    _open(qtbot, window, uni_p, tmp_path / "ws")
    assert len(dialogs.SHOWN_FILE_OFFERS) == offers + 2


def test_an_ordinary_t1_is_not_asked_about(qtbot, window, tmp_path, tmp_image):
    from navigator.gui import dialogs

    names = _tissues()
    t1 = np.select([names == "wm", names == "gm", names == "csf", names == "scalp"], [110.0, 70.0, 25.0, 90.0], 0.0)
    t1 = t1 + np.abs(np.random.default_rng(0).normal(0, 3, t1.shape))
    offers = len(dialogs.SHOWN_FILE_OFFERS)
    _open(qtbot, window, tmp_image(t1.astype(np.float32), _aff(), name="T1.nii.gz"), tmp_path / "ws")
    assert len(dialogs.SHOWN_FILE_OFFERS) == offers


def test_add_inv2_command_refuses_an_inv2_of_another_place(qtbot, window, tmp_path, tmp_image):
    from navigator.gui import dialogs

    uni, inv2, _ = _mp2rage()
    dialogs.FILE_ANSWERS[:] = [None]
    _open(qtbot, window, tmp_image(uni, _aff(), name="UNI.nii.gz"), tmp_path / "ws")
    far = tmp_image(inv2, _aff(shift=(500, 0, 0)), name="INV2_far.nii.gz")
    errors = len(dialogs.SHOWN_ERRORS)
    window.add_inv2(str(far))  # the command behind Subject > Add MP2RAGE INV2
    qtbot.waitUntil(lambda: len(dialogs.SHOWN_ERRORS) > errors and not window.runner.busy, timeout=60_000)
    assert "INV2_far.nii.gz" in dialogs.SHOWN_ERRORS[-1][1] and "covers 0 %" in dialogs.SHOWN_ERRORS[-1][1]
    assert window.actions_by_name["add_inv2_dialog"].text() == "Add MP2RAGE &INV2..."
