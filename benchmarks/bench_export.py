"""Round-trip precision and speed of every export format.

Builds a plan on a synthetic oblique, LPS-ordered subject with N random coil poses (plus
poses within 1e-5 degrees of the InVesalius Euler gimbal lock), exports it with every
exporter, imports it back and prints the worst position (mm) and rotation-element errors
and the export/import times. Run: ``python benchmarks/bench_export.py [N]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_export_support import make_plan

from navigator.export import export_plan, import_plan
from navigator.export.conventions import matrix_from_euler_sxyz
from navigator.export.plan import CoilPose
from navigator.export.registry import plugins

SUFFIX = {".mrk.json": ".mrk.json"}


def main(n: int = 1000) -> None:
    tmp = Path(tempfile.mkdtemp())
    plan, _ = make_plan(tmp / "subject", n_random=n)
    for k, b in enumerate((90 - 1e-5, -90 + 1e-7, 90.0)):
        m = np.eye(4)
        m[:3, :3] = matrix_from_euler_sxyz(*np.radians([33.0, b, -71.0]))
        m[:3, 3] = [10.0, 20.0, 30.0]
        plan.coil_poses.append(CoilPose(f"gimbal {k}", m))
    print(f"{len(plan.coil_poses)} coil poses, {len(plan.targets)} targets")
    print(f"{'format':<22}{'space':<6}{'max |dpos| mm':>15}{'max |dR|':>12}{'export s':>10}{'import s':>10}")
    for p in plugins("exporter"):
        for space in (p.spaces or (None,)):
            out = tmp / f"plan_{p.name}_{space}{p.extensions[0]}"
            t0 = time.perf_counter()
            export_plan(plan, p.name, out, space)
            t1 = time.perf_counter()
            back = import_plan(out, p.name)
            t2 = time.perf_counter()
            dpos, drot = 0.0, 0.0
            if "coil_poses" in p.carries:
                got = {c.name: c.matrix for c in back.coil_poses}
                for c in plan.coil_poses:
                    dpos = max(dpos, float(np.abs(got[c.name][:3, 3] - c.matrix[:3, 3]).max()))
                    drot = max(drot, float(np.abs(got[c.name][:3, :3] - c.matrix[:3, :3]).max()))
            got_t = {t.name: t.position for t in back.targets}
            for t in plan.targets:
                if t.name in got_t:
                    dpos = max(dpos, float(np.abs(got_t[t.name] - t.position).max()))
            print(f"{p.name:<22}{space or '-':<6}{dpos:>15.3g}{drot:>12.3g}{t1 - t0:>10.3f}{t2 - t1:>10.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
