"""Live mode of the desktop app (issue 17).

Fast, no display: the latest-pose-only worker and the coil moves. Slow, under Xvfb: the real
window on the sphere sample; the live field engine is precomputed with coarse settings; the
coil is dragged with Qt mouse events on the 3-D view's interactor (the VTK picking path a
user's mouse takes) and moved with the keys; the cortex map must change and equal the
engine's field at the state's pose, the banner must say "live approximation", and the exact
solve afterwards must say "full FEM result".
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from navigator.core.surface import Surface


# ----------------------------------------------------------------------------- no display
def test_latest_only_worker_drops_stale_requests():
    from navigator.gui.live import LatestOnlyWorker, LiveRequest

    gate = threading.Event()
    seen, delivered = [], []

    def compute(req):
        gate.wait(5)
        seen.append(req.seq)
        return req.seq * 10

    w = LatestOnlyWorker(compute, lambda req, res, err: delivered.append((req.seq, res, err)))
    try:
        w.submit(LiveRequest(1, np.eye(4), 1.0))
        time.sleep(0.1)  # the worker is now blocked on request 1
        for k in range(2, 7):
            w.submit(LiveRequest(k, np.eye(4), 1.0))
        gate.set()
        t0 = time.time()
        while not w.idle and time.time() - t0 < 5:
            time.sleep(0.01)
        assert seen == [1, 6]  # 2..5 were replaced before the worker got to them
        assert w.dropped == 4 and w.computed == 2
        assert delivered[-1] == (6, 60, None)
    finally:
        w.stop()


def test_latest_only_worker_reports_errors_and_keeps_running():
    from navigator.gui.live import LatestOnlyWorker, LiveRequest

    out = []

    def compute(req):
        if req.seq == 1:
            raise ValueError("bad pose")
        return "ok"

    w = LatestOnlyWorker(compute, lambda req, res, err: out.append((req.seq, res, err)))
    try:
        w.submit(LiveRequest(1, np.eye(4), 1.0))
        t0 = time.time()
        while len(out) < 1 and time.time() - t0 < 5:
            time.sleep(0.01)
        w.submit(LiveRequest(2, np.eye(4), 1.0))
        while len(out) < 2 and time.time() - t0 < 5:
            time.sleep(0.01)
        assert isinstance(out[0][2], ValueError) and out[1] == (2, "ok", None)
    finally:
        w.stop()


def _sphere(radius=86.0, n=40):
    th, ph = np.meshgrid(np.linspace(0.05, np.pi - 0.05, n), np.linspace(0, 2 * np.pi, 2 * n, endpoint=False),
                         indexing="ij")
    v = radius * np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1).reshape(-1, 3)
    from scipy.spatial import ConvexHull

    f = ConvexHull(v).simplices
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    inward = np.einsum("ij,ij->i", np.cross(b - a, c - a), a + b + c) < 0
    f[inward] = f[inward][:, ::-1]  # outward normals, as a scalp surface
    return Surface(v, f)


def test_coil_moves_keep_orientation_relative_to_the_scalp():
    from navigator.gui.live import move_pose_to, nudge_pose, rotate_pose, tilt_degrees, tilt_pose
    from navigator.tms.pose import place_coil

    scalp = _sphere()
    pose = place_coil(scalp, np.array([-30.0, 20.0, 70.0]), handle_angle=45, distance=4.0).pose
    moved = move_pose_to(pose, scalp, np.array([-10.0, 40.0, 80.0]), 4.0)
    c = moved[:3, 3]
    assert abs(np.linalg.norm(c) - 90.0) < 1.5  # 4 mm over the (faceted) sphere
    assert np.dot(moved[:3, 2], -c / np.linalg.norm(c)) > 0.999  # still along the inward normal
    np.testing.assert_allclose(moved[:3, :3] @ moved[:3, :3].T, np.eye(3), atol=1e-9)
    # a slide along the handle moves the centre about that far over the scalp
    slid = nudge_pose(pose, scalp, 0.0, 10.0, 4.0)
    assert 8.0 < np.linalg.norm(slid[:3, 3] - pose[:3, 3]) < 12.0
    assert np.dot(slid[:3, 3] - pose[:3, 3], pose[:3, 1]) > 8.0
    turned = rotate_pose(pose, 90.0)
    np.testing.assert_allclose(turned[:3, 3], pose[:3, 3])
    np.testing.assert_allclose(turned[:3, 1], -pose[:3, 0], atol=1e-9)
    tilted = tilt_pose(pose, "x", 8.0)
    assert tilt_degrees(tilted, scalp) == pytest.approx(8.0 + tilt_degrees(pose, scalp), abs=1.0)
    # the cached scalp geometry gives the library's projections and normals
    from navigator.gui.live import scalp_geometry
    from navigator.tms.pose import project_to_surface, smoothed_normal

    g = scalp_geometry(scalp)
    for q in (np.array([-10.0, 40.0, 80.0]), np.array([50.0, -20.0, 60.0])):
        np.testing.assert_allclose(g.project(q), project_to_surface(scalp, q), atol=1e-9)
        np.testing.assert_allclose(g.normal(g.project(q)), smoothed_normal(scalp, g.project(q)), atol=1e-9)
    # moving keeps the tilt relative to the scalp
    assert tilt_degrees(move_pose_to(tilted, scalp, np.array([-10.0, 40.0, 80.0]), 4.0), scalp) == pytest.approx(
        tilt_degrees(tilted, scalp), abs=1.0)


def test_coil_glyph_draws_casing_and_wings():
    from navigator.gui.coil_glyph import coil_glyph
    from navigator.tms.library import load_coil

    g = coil_glyph(load_coil("Magstim_D70"))
    assert len(g.casing) >= 1 and len(g.windings) == 2  # two wings of a figure-of-eight
    centres = sorted(float(w[:, 0].mean()) for w in g.windings)
    assert centres[0] < -30 and centres[1] > 30
    for w in g.windings:  # closed outline about the outer winding radius (D70: ~44 mm)
        np.testing.assert_allclose(w[0], w[-1])
        r = np.linalg.norm(w[:, :2] - w[:, :2].mean(axis=0), axis=1)
        assert 35 < r.mean() < 50
    g = coil_glyph(load_coil("Magstim_90mm_circular"))
    assert len(g.windings) == 1


# ----------------------------------------------------------------------------- the real window
LIVE_SETTINGS = dict(n_samples=12, max_rank=10)


@pytest.fixture(scope="module")
def live_subject(tmp_path_factory):
    pytest.importorskip("PyQt6")
    from navigator.gui.testing import SPHERE_TARGET, write_sphere_subject
    from navigator.optimize.live_field import LiveSettings, open_live_field
    from navigator.targets.head import Head
    from navigator.targets.resolve import resolve_target

    ws = write_sphere_subject(tmp_path_factory.mktemp("live") / "sphere", mesh_size_mm=12.0, t1_spacing_mm=4.0)
    head = Head.of(ws)
    target = resolve_target(head, SPHERE_TARGET, name="live-target")
    open_live_field(head, "Magstim_D70", target, settings=LiveSettings(**LIVE_SETTINGS))  # fills the cache
    return ws, target


def _press_move_release(qtbot, widget, points_qt):
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtTest import QTest

    first = QPoint(*points_qt[0])
    QTest.mousePress(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, first)
    for x, y in points_qt[1:]:
        QTest.mouseMove(widget, QPoint(x, y))
        qtbot.wait(15)
    QTest.mouseRelease(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(*points_qt[-1]))


@pytest.mark.slow
@pytest.mark.gui
def test_drag_the_coil_live(qapp, qtbot, live_subject, tmp_path):
    pytest.importorskip("pytestqt")
    from PyQt6.QtCore import QSettings, Qt
    from PyQt6.QtTest import QTest

    from navigator.gui import dialogs
    from navigator.gui.main_window import MainWindow
    from navigator.optimize.live_field import LiveSettings

    ws, target = live_subject
    dialogs.NON_BLOCKING = True
    w = MainWindow(QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat))
    w.resize(1400, 900)
    w.show()
    try:
        if not w.view3d.available:
            pytest.skip(f"no 3-D rendering here: {w.view3d.reason}")
        w.open_path(ws.root)
        qtbot.waitUntil(lambda: w.state.subject is not None and w.runner.idle, timeout=60_000)
        w.state.set_target(target)
        w.state.set_coil_name("Magstim_D70")
        w.tabs.setCurrentWidget(w.tms_panel)
        w.controller.live_settings = LiveSettings(**LIVE_SETTINGS)
        n_err = len(dialogs.SHOWN_ERRORS)
        w.tms_panel.live.setChecked(True)  # the user's way in
        qtbot.waitUntil(lambda: w.live_shown > 0, timeout=120_000)
        assert len(dialogs.SHOWN_ERRORS) == n_err, dialogs.SHOWN_ERRORS[-1:]
        engine = w.controller.live.engine
        assert w.view3d.banner_kind == "live" and "LIVE APPROXIMATION" in w.view3d.banner.text()
        region = np.asarray(engine.region_vertices)

        def shown_matches_engine():
            f = engine.evaluate(w.state.pose, w.state.didt())
            vals = w.view3d._cortex_poly.point_data["field"]
            np.testing.assert_allclose(vals[region], f.magnitude, rtol=1e-9)
            outside = np.setdiff1d(np.arange(len(vals)), region)
            assert np.isnan(vals[outside]).all()
            assert w.tms_panel.live_rows["current"][0].text() == f"{f.target_magnitude:.3g} V/m"
            assert f"{f.target_magnitude:.3g} V/m" in w.view3d.banner.text()
            return f

        f0 = shown_matches_engine()
        before = w.view3d._cortex_poly.point_data["field"][region].copy()
        pose0 = w.state.pose.copy()
        undo0 = w.state.undo_stack.index()

        # drag: from the coil's scalp contact point 12 mm along the coil's x axis, by Qt mouse events
        iw = w.view3d.plotter.interactor
        h = iw.height()
        contact = pose0[:3, 3] + w.state.distance_mm * pose0[:3, 2]  # z points into the head
        pts = []
        for k in range(0, 7):
            x, y = w.view3d.world_to_display(contact + 2.0 * k * pose0[:3, 0])
            pts.append((int(round(x)), int(round(h - 1 - y))))
        assert np.hypot(pts[-1][0] - pts[0][0], pts[-1][1] - pts[0][1]) > 10, "the drag must cross pixels"
        shown = w.live_shown
        dragged = []
        w.view3d.coilDragged.connect(lambda p: dragged.append(np.asarray(p)))
        _press_move_release(qtbot, iw, pts)
        assert len(dragged) >= 3  # the mouse moves reached the drag through VTK picking on the scalp
        qtbot.waitUntil(lambda: w.live_shown > shown and w.controller.live.worker.idle, timeout=30_000)
        qtbot.wait(50)
        moved = np.linalg.norm(w.state.pose[:3, 3] - pose0[:3, 3])
        assert 6.0 < moved < 20.0, moved
        assert np.dot(w.state.pose[:3, 3] - pose0[:3, 3], pose0[:3, 0]) > 5.0  # the way the mouse went
        assert w.state.undo_stack.index() == undo0 + 1  # one drag = one undo step
        f1 = shown_matches_engine()
        after = w.view3d._cortex_poly.point_data["field"][region]
        assert np.max(np.abs(after - before)) > 0.02 * np.max(before)  # the map changed
        assert f1.target_magnitude != pytest.approx(f0.target_magnitude, rel=1e-6)
        assert w.controller.live.worker.computed <= w.controller.live.worker.submitted

        # keys: Alt+Left slides the coil back 2 mm, Alt+Shift+Up tilts it 2 degrees
        shown = w.live_shown
        p1 = w.state.pose.copy()
        w.activateWindow()  # shortcuts go to the active window
        qtbot.waitUntil(w.isActiveWindow, timeout=5_000)
        QTest.keyClick(w, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
        slid = w.state.pose.copy()  # the slide follows the scalp, so its normal may turn the coil a little
        assert 1.0 < np.linalg.norm(slid[:3, 3] - p1[:3, 3]) < 3.5
        QTest.keyClick(w, Qt.Key.Key_Up, Qt.KeyboardModifier.AltModifier | Qt.KeyboardModifier.ShiftModifier)
        qtbot.waitUntil(lambda: w.live_shown > shown and w.controller.live.worker.idle, timeout=30_000)
        qtbot.wait(50)
        np.testing.assert_allclose(w.state.pose[:3, 3], slid[:3, 3], atol=1e-9)  # a tilt pivots about the centre
        assert np.degrees(np.arccos(np.clip(w.state.pose[:3, 2] @ slid[:3, 2], -1, 1))) == pytest.approx(2.0, abs=0.05)
        shown_matches_engine()

        # side by side: the standard F3 pose's readout next to the current one, and its map on request
        assert "F3" in w.controller.live.compare
        f3_text = w.tms_panel.live_rows["F3"][0].text()
        assert f3_text.endswith("V/m") or f3_text == "outside region"
        w.tms_panel.findChild(type(w.tms_panel.mode_mso), "liveShow_F3").setChecked(True)
        assert "F3" in w.view3d.banner.text()
        w.tms_panel.findChild(type(w.tms_panel.mode_mso), "liveShow_current").setChecked(True)

        # undo the drag and the key moves: the coil and the map come back
        while w.state.undo_stack.index() > undo0:
            w.undo_action.trigger()
        np.testing.assert_allclose(w.state.pose, pose0, atol=1e-9)
        qtbot.waitUntil(lambda: w.controller.live.worker.idle, timeout=30_000)
        qtbot.wait(100)
        shown_matches_engine()

        # the exact solve: no volume maps, the banner says full FEM
        w.tms_panel.simulate.click()
        qtbot.waitUntil(lambda: w.runner.idle and w.state.shown_result is not None, timeout=240_000)
        assert w.view3d.banner_kind == "fem" and "FULL FEM RESULT" in w.view3d.banner.text()
        assert not w.controller.live_on and not w.tms_panel.live.isChecked()
        assert not (ws.root / "simulations" / "gui_tms" / "magnE.nii.gz").exists()
        print(f"\nlive updates on the UI: {len(w.live_times_ms)}, engine ms per update "
              f"median {np.median(w.live_times_ms):.1f}")
    finally:
        w.close()
