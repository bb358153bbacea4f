"""Desktop app responsiveness: UI-thread stalls during a background TMS simulation.

Run under a display or Xvfb::

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/bench_gui.py [--mesh-size 9]

Builds the spherical test subject, opens it in the main window, sets the Fox target and runs a
TMS simulation while a QTimer on the UI thread ticks every 10 ms. Prints the longest and 99th
percentile gap between ticks during the simulation, the time the UI spends showing the result,
the simulation's wall time and the cost of one 3-D render.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mesh-size", type=float, default=9.0, help="tetrahedron edge length of the sphere head, mm")
    ap.add_argument("--t1-spacing", type=float, default=2.0, help="T1 voxel size, mm")
    a = ap.parse_args()
    from PyQt6.QtCore import QSettings, QTimer

    from navigator.gui import dialogs
    from navigator.gui.app import create_app
    from navigator.gui.main_window import MainWindow
    from navigator.gui.testing import write_sphere_subject

    dialogs.NON_BLOCKING = True
    app = create_app()
    with tempfile.TemporaryDirectory() as tmp:
        ws = write_sphere_subject(Path(tmp) / "sphere", mesh_size_mm=a.mesh_size, t1_spacing_mm=a.t1_spacing)
        w = MainWindow(QSettings(str(Path(tmp) / "gui.ini"), QSettings.Format.IniFormat))
        w.resize(1500, 950)
        w.show()

        def wait(cond, timeout=900.0):
            t0 = time.time()
            while not cond():
                app.processEvents()
                time.sleep(0.002)
                if time.time() - t0 > timeout:
                    raise TimeoutError

        w.open_path(ws.root)
        wait(lambda: not w.runner.busy and w.state.subject is not None)
        w.resolve_target("fox")
        wait(lambda: not w.runner.busy)
        app.processEvents()
        renders = []
        for _ in range(3):
            t0 = time.perf_counter()
            if w.view3d.plotter is not None:
                w.view3d.plotter.render()
            renders.append(time.perf_counter() - t0)
        ticks, done = [], []
        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        w.runner.done.connect(lambda name: done.append(time.perf_counter()))
        timer.start()
        t_start = time.perf_counter()
        w.simulate_tms()
        wait(lambda: not w.runner.busy)
        t0 = time.time()
        while time.time() - t0 < 0.3:
            app.processEvents()
            time.sleep(0.002)
        timer.stop()
        during = np.array([t for t in ticks if t <= done[0]] + [done[0]])
        after = [t for t in ticks if t > done[0]]
        gaps = np.diff(during) * 1000
        n_tets = w.state.latest_result("tms").summary.get("n_tets")
        print(f"subject: sphere head, {n_tets} tetrahedra, T1 {a.t1_spacing} mm")
        print(f"TMS simulation wall time (in a child process): {done[0] - t_start:.1f} s")
        print(f"UI stall during the simulation: max {gaps.max():.0f} ms, p99 {np.percentile(gaps, 99):.0f} ms, "
              f"median {np.median(gaps):.0f} ms over {len(gaps)} ticks")
        print(f"UI busy showing the result: {1000 * (after[0] - done[0]) if after else float('nan'):.0f} ms")
        print(f"one 3-D render: {1000 * min(renders):.0f} ms (min of 3)")
        w.close()


if __name__ == "__main__":
    main()
