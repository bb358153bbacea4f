"""The app opens a workspace as the user left it (issue 17).

A small demo-like workspace (sphere sample: TMS and tDCS simulations and a TMS optimization
written by the library, as `navigator demo` does) is opened in the real window under Xvfb:
its results are listed at once and load on selection without recomputing anything (every
compute job is replaced by one that fails the test; no stored file changes). The last
target, coil, intensity, pose, montage and shown result come back in a new window (stored
atomically in the workspace), and window geometry, splitters, last folder and coil persist
in QSettings. Undo covers coil, intensity and montage edits.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    from navigator.gui.testing import write_demo_results, write_sphere_subject

    ws = write_sphere_subject(tmp_path_factory.mktemp("reopen") / "sphere", mesh_size_mm=12.0, t1_spacing_mm=4.0)
    write_demo_results(ws)
    return ws


def _new_window(qapp, settings_path):
    from PyQt6.QtCore import QSettings

    from navigator.gui import dialogs
    from navigator.gui.main_window import MainWindow

    dialogs.NON_BLOCKING = True
    w = MainWindow(QSettings(str(settings_path), QSettings.Format.IniFormat))
    w.show()
    qapp.processEvents()
    return w


def _files(ws):
    return {str(p): p.stat().st_mtime_ns for d in ("simulations", "plans") for p in ws.path(d).rglob("*") if p.is_file()}


def _no_compute(monkeypatch):
    """Any simulation or optimization started from here fails the test."""
    from navigator.gui import jobs

    def forbidden(*a, **k):
        raise AssertionError("a result was recomputed")

    for name in ("job_simulate_tms", "job_simulate_tdcs", "job_optimize_tms", "job_optimize_tdcs"):
        monkeypatch.setattr(jobs, name, forbidden)


def test_discover_results_and_session_file(stored, tmp_path):
    """No Qt: the stored results of a workspace and the session record's round trip."""
    from navigator.gui.session import SessionRecord, discover_results, load_session, save_session

    entries = {e.key: e for e in discover_results(stored)}
    assert {k: e.kind for k, e in entries.items()} == {
        "simulations/tms": "tms", "simulations/tdcs": "tdcs", "plans/tms": "tms-optimization"}
    assert entries["plans/tms"].fields_dir == stored.path("plans") / "tms" / "fields"
    assert entries["plans/tms"].plan_path.name == "plan.json"
    rec = SessionRecord(coil="Magstim_90mm_circular", mso=61.5, pose=np.eye(4).tolist(), current_result="plans/tms")
    path = save_session(stored, rec)
    back, note = load_session(stored)
    assert note is None and back == rec
    path.write_text("{ not json")
    back, note = load_session(stored)
    assert back is None and "could not be read" in note
    path.write_text(json.dumps({"pose": [[1, 2]]}))
    assert load_session(stored)[0] is None
    path.unlink()


def test_reopen_shows_stored_results_without_recomputing(qapp, qtbot, stored, tmp_path, monkeypatch):
    _no_compute(monkeypatch)
    before = _files(stored)
    w = _new_window(qapp, tmp_path / "gui.ini")
    try:
        w.open_path(stored.root)
        qtbot.waitUntil(lambda: w.state.subject is not None and w.runner.idle, timeout=60_000)
        panel = w.results_panel
        # listed at once, nothing loaded yet
        assert set(panel.keys()) == {"simulations/tms", "simulations/tdcs", "plans/tms"}
        assert w.state.results == {}
        for key, kind in (("simulations/tms", "tms"), ("simulations/tdcs", "tdcs"), ("plans/tms", "tms-optimization")):
            panel.select(key)
            qtbot.waitUntil(lambda k=key: w.state.current_result == k, timeout=30_000)
            res = w.state.results[key]
            assert res.kind == kind and res.target_field is not None and res.target_field > 0
            assert res.cortex is not None and res.field_volume is not None and res.field_volume.max() > 0
            assert w.view3d.banner_kind == "fem" and key in w.view3d.banner.text()
            assert panel.table.item(0, 1).text().endswith("V/m")
            stored_summary = json.loads((stored.root / key / ("fields" if kind.endswith("optimization") else "")
                                         / "summary.json").read_text())
            assert res.target_field == pytest.approx(stored_summary["target"]["mean_magnE_V_per_m"])
            if w.view3d.available:
                np.testing.assert_allclose(w.view3d._cortex_poly.point_data["field"], res.cortex.data["magnE"])
        assert panel.use_plan.isEnabled()  # the optimization has a plan: use it as the current plan
        from navigator.export.plan import load_plan

        best = load_plan(stored.path("plans") / "tms" / "plan.json").coil_poses[0].matrix
        panel.use_plan.click()
        qtbot.waitUntil(lambda: w.runner.idle and w.state.explicit_pose is not None, timeout=30_000)
        np.testing.assert_allclose(w.state.pose, best, atol=1e-9)
        # selecting again shows it from memory
        panel.select("simulations/tms")
        assert w.state.current_result == "simulations/tms" and w.runner.idle
        assert _files(stored) == before
    finally:
        w.close()


def test_session_and_settings_come_back(qapp, qtbot, stored, tmp_path, monkeypatch):
    _no_compute(monkeypatch)
    settings = tmp_path / "gui.ini"
    w = _new_window(qapp, settings)
    avail = w.screen().availableGeometry()
    w.resize(min(1234, avail.width() - 40), min(876, avail.height() - 40))  # a size the screen holds
    qapp.processEvents()
    size = (w.width(), w.height())  # (the window's minimum height may round the request up)
    assert size != (1500, 950)
    try:
        w.open_path(stored.root)
        qtbot.waitUntil(lambda: w.state.subject is not None and w.runner.idle, timeout=60_000)
        s = w.state
        w.resolve_target("eeg:F3")
        qtbot.waitUntil(lambda: w.runner.idle and s.target is not None, timeout=30_000)
        w.tms_panel.coil.setCurrentText("Magstim_90mm_circular")
        w.tms_panel.mso.setValue(63)
        w.tms_panel.dial.setValue(20)
        w.nudge(0.0, 6.0)  # a hand move: explicit pose
        w.tdcs_panel.preset.setCurrentText("F3-F4 (bilateral DLPFC, pads)")
        w.tdcs_panel.apply_preset()
        w.results_panel.select("simulations/tdcs")
        qtbot.waitUntil(lambda: s.current_result == "simulations/tdcs", timeout=30_000)
        pose, target = s.pose.copy(), s.target_point.copy()
        w.main_split.setSizes([900, 334])
        sizes = w.main_split.sizes()
        qtbot.waitUntil(lambda: (stored.root / "gui" / "session.json").exists(), timeout=5_000)
    finally:
        w.close()
    session = json.loads((stored.root / "gui" / "session.json").read_text())
    assert session["coil"] == "Magstim_90mm_circular" and session["mso"] == 63

    w2 = _new_window(qapp, settings)
    try:
        assert (w2.width(), w2.height()) == size
        assert w2.main_split.sizes() == sizes
        assert w2.state.coil_name == "Magstim_90mm_circular"  # last coil (QSettings) before any workspace
        assert w2._last_folder() == str(stored.root)
        w2.open_path(stored.root)
        qtbot.waitUntil(lambda: w2.state.subject is not None and w2.runner.idle and w2.state.shown_result is not None,
                        timeout=60_000)
        s2 = w2.state
        assert s2.target.name == "eeg:F3" and np.allclose(s2.target_point, target)
        assert s2.coil_name == "Magstim_90mm_circular" and s2.mso == 63 and s2.intensity_mode == "mso"
        assert np.allclose(s2.pose, pose) and s2.explicit_pose is not None
        assert [r.position for r in s2.montage] == ["F3", "F4"]
        assert s2.current_result == "simulations/tdcs" and w2.results_panel.which.currentData() == "simulations/tdcs"
        assert w2.tms_panel.mso.value() == 63 and w2.tms_panel.coil.currentText() == "Magstim_90mm_circular"
        assert s2.undo_stack.count() == 0  # the history starts at the restored state
    finally:
        w2.close()


def test_undo_coil_intensity_montage(qapp, qtbot, stored, tmp_path, monkeypatch):
    _no_compute(monkeypatch)
    w = _new_window(qapp, tmp_path / "gui.ini")
    try:
        w.open_path(stored.root)
        qtbot.waitUntil(lambda: w.state.subject is not None and w.runner.idle, timeout=60_000)
        s = w.state
        coil0, mso0, montage0 = s.coil_name, s.mso, [r.position for r in s.montage]
        other = "Magstim_D70" if coil0 != "Magstim_D70" else "Magstim_90mm_circular"
        w.tms_panel.coil.setCurrentText(other)
        for v in (51, 52, 53):  # spin-box steps merge into one undo step
            w.tms_panel.mso.setValue(v)
        w.tdcs_panel.preset.setCurrentText("C3-Fp2 (motor, pads)")
        w.tdcs_panel.apply_preset()
        assert [r.position for r in s.montage] == ["C3", "Fp2"]
        w.undo_action.trigger()
        assert [r.position for r in s.montage] == montage0
        w.undo_action.trigger()
        assert s.mso == mso0 and w.tms_panel.mso.value() == mso0
        w.undo_action.trigger()
        assert s.coil_name == coil0 and w.tms_panel.coil.currentText() == coil0
        w.redo_action.trigger()
        assert s.coil_name == other
        # an unknown coil is refused with a message; the coil in use stays
        from navigator.gui import dialogs

        n = len(dialogs.SHOWN_ERRORS)
        w.tms_panel.coil.addItem("no_such_coil.ccd")
        w.tms_panel.coil.setCurrentText("no_such_coil.ccd")
        assert len(dialogs.SHOWN_ERRORS) == n + 1 and s.coil_name == other
        assert w.tms_panel.coil.currentText() == other
    finally:
        w.close()
