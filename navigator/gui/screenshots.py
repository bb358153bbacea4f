"""Write the documentation screenshots of the desktop app (``docs/screenshots/gui_*.png``).

Run under a display (or ``xvfb-run``)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python -m navigator.gui.screenshots docs/screenshots [--subject DIR]

Without ``--subject`` the spherical test subject of :mod:`navigator.gui.testing` is built in
a temporary folder. The script opens it, sets the Fox target, runs a TMS and a tDCS simulation
and saves the main window with each panel in front; then the live view (``gui_live.png``: the
coil dragged 15 mm, the map from the live field engine; ``gui_live_compare.png``: the standard
F3 pose shown beside the readouts of the current and the optimizer's pose, when the workspace
holds a TMS optimization); then it closes the window, opens a new one on the same workspace and
saves it as reopened (``gui_reopened.png``: the stored results listed, the last one shown).
``--no-live`` skips the live views (no engine precomputation). The temporal-interference views
(``gui_ti.png``: the tDCS panel after a TI optimization, channels and frequencies in the
montage table, the objective values, the envelope map on the cortex and the slices;
``gui_ti_results.png``: the Results panel of that optimization) are taken after the tDCS view;
``--no-ti`` skips them, ``--ti-only`` takes only them (on the target given by ``--target``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def _wait(app, cond, timeout: float = 600.0) -> None:
    t0 = time.time()
    while not cond():
        app.processEvents()
        time.sleep(0.01)
        if time.time() - t0 > timeout:
            raise TimeoutError("timed out waiting for the GUI")


def _settle(app, seconds: float = 0.5) -> None:
    t0 = time.time()
    while time.time() - t0 < seconds:
        app.processEvents()
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for gui_*.png")
    ap.add_argument("--subject", type=Path, help="workspace to show (default: sphere test subject)")
    ap.add_argument("--no-live", action="store_true", help="skip the live field views")
    ap.add_argument("--no-ti", action="store_true", help="skip the temporal-interference views")
    ap.add_argument("--ti-only", action="store_true", help="only the temporal-interference views")
    ap.add_argument("--target", default="fox", help="target of the TI views with --ti-only (default fox)")
    ap.add_argument("--reuse-ti", action="store_true",
                    help="show the workspace's stored TI optimization (plans/gui_tdcs_optimization) instead of running one")
    args = ap.parse_args(argv)
    from PyQt6.QtCore import QSettings

    from navigator.gui import dialogs
    from navigator.gui.app import create_app
    from navigator.gui.main_window import MainWindow

    dialogs.NON_BLOCKING = True
    app = create_app()
    tmp = tempfile.TemporaryDirectory()
    subject = args.subject
    if subject is None:
        from navigator.gui.testing import write_sphere_subject

        subject = write_sphere_subject(Path(tmp.name) / "sphere", mesh_size_mm=9.0, t1_spacing_mm=2.0).root
    w = MainWindow(QSettings(str(Path(tmp.name) / "gui.ini"), QSettings.Format.IniFormat))
    w.resize(1500, 950)
    w.show()
    args.out.mkdir(parents=True, exist_ok=True)

    def shot(name: str, tab: int | None = None) -> None:
        if tab is not None:
            w.tabs.setCurrentIndex(tab)
        _settle(app, 0.8)
        path = args.out / f"gui_{name}.png"
        w.grab().save(str(path))
        print(path)

    w.open_path(subject)
    _wait(app, lambda: not w.runner.busy and w.state.subject is not None)
    if args.ti_only:
        w.resolve_target(args.target)
        _wait(app, lambda: not w.runner.busy)
        ti_views(app, w, shot, reuse=args.reuse_ti)
        errors = list(dialogs.SHOWN_ERRORS)
        w.close()
        tmp.cleanup()
        if errors:
            print("errors shown:", errors, file=sys.stderr)
        return 1 if errors else 0
    panel = w.target_panel
    panel.library.setCurrentIndex(panel.library.findData("fox"))
    w.resolve_target("fox")
    _wait(app, lambda: not w.runner.busy)
    shot("target", 0)
    w.simulate_tms()
    _wait(app, lambda: not w.runner.busy)
    shot("main", 0)
    shot("results", 3)
    shot("tms", 1)
    w.tdcs_panel.preset.setCurrentText("F3-Fp2 (depression, pads)")
    w.tdcs_panel.apply_preset()
    w.simulate_tdcs()
    _wait(app, lambda: not w.runner.busy)
    shot("tdcs", 2)
    if not args.no_ti:
        ti_views(app, w, shot)
    tms_key = next(k for k, r in w.state.results.items() if r.kind == "tms")
    w.results_panel.select(tms_key)
    w.export_panel.format.setCurrentText("localite")
    w.export_panel.export()
    shot("export", 4)
    if not args.no_live:
        live_views(app, w, shot)
    errors = list(dialogs.SHOWN_ERRORS)
    w.close()
    _settle(app, 0.5)
    # reopen: a new window on the same workspace comes back as it was left
    w = MainWindow(QSettings(str(Path(tmp.name) / "gui.ini"), QSettings.Format.IniFormat))
    w.show()
    w.open_path(subject)
    _wait(app, lambda: w.runner.idle and w.state.subject is not None and w.state.shown_result is not None, 120)
    shot("reopened", 3)
    errors += [e for e in dialogs.SHOWN_ERRORS if e not in errors]
    w.close()
    tmp.cleanup()
    if errors:
        print("errors shown:", errors, file=sys.stderr)
        return 1
    return 0


def ti_views(app, w, shot, reuse: bool = False) -> None:
    """Temporal interference: optimize two channels for the target (panel defaults, objective
    along the cortical normal; ``reuse``: show the stored optimization and use its plan), then
    the tDCS panel (scrolled to the objective values) and the Results panel."""
    from navigator.optimize.tdcs import MODES

    p = w.tdcs_panel
    w.tabs.setCurrentIndex(2)
    p.opt_mode.setCurrentIndex(MODES.index("ti"))
    key = "plans/gui_tdcs_optimization"
    if reuse and key in w.state.entries:
        w.results_panel.select(key)
        _wait(app, lambda: w.runner.idle and w.state.current_result == key, 600)
        w.apply_result(key)
        _wait(app, lambda: w.runner.idle, 600)
    else:
        t0 = time.time()
        w.optimize_tdcs()
        _wait(app, lambda: not w.runner.busy, 3600)
        print(f"TI optimization in the app: {time.time() - t0:.1f} s", file=sys.stderr)
    w.tabs.setCurrentIndex(2)
    _settle(app, 0.3)
    bar = p.scroll.verticalScrollBar()  # from the montage table's header down to the objective values
    bar.setValue(min(bar.maximum(), p.table.mapTo(p.scroll.widget(), p.table.rect().topLeft()).y() - 4))
    res = w.state.shown_result
    if res is not None and res.is_ti and w.state.target_point is not None:
        w.slices.set_cursor_world(w.state.target_point)
    shot("ti", 2)
    shot("ti_results", 3)


def live_views(app, w, shot) -> None:
    """Live mode: engine on, coil dragged 15 mm through the 3-D view's drag path, screenshots."""
    w.tabs.setCurrentIndex(1)
    w.views_split.setSizes([280, 670])  # a large 3-D view for the live pictures
    w.bottom_split.setSizes([330, 670])
    w.set_live(True)
    _wait(app, lambda: w.runner.idle and w.live_shown > 0, 900)
    pose = w.state.pose
    start = pose[:3, 3] + w.state.distance_mm * pose[:3, 2]  # the scalp under the coil (z into the head)
    end = start + 15.0 * pose[:3, 0]
    n0 = w.live_shown
    for k in range(1, 11):
        w._coil_dragged(start + (end - start) * k / 10)
        app.processEvents()
        time.sleep(0.03)
    w.view3d.coilDragFinished.emit()
    _wait(app, lambda: w.live_shown > n0 and w.controller.live.worker.idle, 60)
    shot("live", 1)
    if "optimizer" in w.controller.live.compare or "F3" in w.controller.live.compare:
        key = "optimizer" if "optimizer" in w.controller.live.compare else "F3"
        w.tms_panel.findChild(type(w.tms_panel.mode_mso), f"liveShow_{key}").setChecked(True)
        _settle(app, 0.5)
        shot("live_compare", 1)
        w.tms_panel.findChild(type(w.tms_panel.mode_mso), "liveShow_current").setChecked(True)
    import numpy as np

    eng, lat = np.array(w.live_times_ms), np.array(w.live_latency_ms)
    print(f"live updates shown: {len(lat)}; engine per update median {np.median(eng):.0f} ms (max {eng.max():.0f}); "
          f"pose request -> map drawn median {np.median(lat):.0f} ms (p95 {np.percentile(lat, 95):.0f}); "
          f"requests {w.controller.live.worker.submitted}, computed {w.controller.live.worker.computed}, "
          f"dropped as stale {w.controller.live.worker.dropped} before and {w.live_skipped} after computing", file=sys.stderr)



if __name__ == "__main__":
    raise SystemExit(main())
