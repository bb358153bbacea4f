"""Run CGAL Mesh_3 (through pygalmesh) on a labelled image in a child process.

The child process makes the (uninterruptible, single-threaded) CGAL call cancellable from
the parent and keeps a CGAL crash from taking the caller down. Protocol: the parent writes
the image as ``.inr`` and the criteria as JSON, runs ``python -m navigator.meshing._cgal
JOB_DIR`` and reads ``JOB_DIR/mesh.npz`` (points in the image's metric frame, i.e. voxel
index x voxel size, mm; tetrahedra; their labels).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError


def have_pygalmesh() -> bool:
    try:
        import pygalmesh  # noqa: F401
    except ImportError:
        return False
    return True


def write_inr(vol: np.ndarray, voxel_size: tuple[float, float, float], path: Path) -> None:
    """Write a uint8/uint16 volume as INRIA ``.inr`` (the format CGAL's Image_3 reads)."""
    btype = {"uint8": 8, "uint16": 16}[vol.dtype.name]
    x, y, z = vol.shape
    header = "\n".join([
        "#INRIMAGE-4#{", f"XDIM={x}", f"YDIM={y}", f"ZDIM={z}", "VDIM=1", "TYPE=unsigned fixed",
        f"PIXSIZE={btype} bits", "CPU=decm", f"VX={voxel_size[0]:.9f}", f"VY={voxel_size[1]:.9f}",
        f"VZ={voxel_size[2]:.9f}",
    ]) + "\n"
    header = header + "\n" * (256 - 4 - len(header)) + "##}\n"
    with open(path, "wb") as fh:
        fh.write(header.encode("ascii"))
        fh.write(np.asfortranarray(vol).tobytes(order="F"))


def run_cgal(
    job: Path,
    vol: np.ndarray,
    voxel_size: tuple[float, float, float],
    criteria: dict[str, Any],
    poll: Callable[[float], None] | None = None,
    timings: dict[str, tuple[float, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mesh ``vol`` with CGAL in a child process; returns (points, tets, tet_labels).

    ``criteria``: keyword arguments of pygalmesh's ``_generate_from_inr_with_subdomain_sizing``
    (sizes in mm) plus ``cell_sizes``: {label: max circumradius, "default": value}.
    ``poll(elapsed_seconds)`` is called a few times per second while CGAL runs; it may raise
    (e.g. Cancelled), which kills the child process. ``timings``, if given, receives the
    child's stages (``cgal_mesh``, ``cgal_read``: wall s, CPU s).
    """
    job.mkdir(parents=True, exist_ok=True)
    write_inr(vol, voxel_size, job / "labels.inr")
    (job / "criteria.json").write_text(json.dumps(criteria))
    t0 = time.monotonic()
    with open(job / "cgal.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "navigator.meshing._cgal", str(job)],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                if poll is not None:
                    poll(time.monotonic() - t0)
                time.sleep(0.2)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0 or not (job / "mesh.npz").exists():
        tail = (job / "cgal.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise NavigatorError(f"CGAL meshing failed (exit code {proc.returncode}): {' | '.join(tail)}")
    if timings is not None and (job / "timings.json").exists():
        timings.update({k: tuple(v) for k, v in json.loads((job / "timings.json").read_text()).items()})
    with np.load(job / "mesh.npz") as z:
        return z["points"], z["tets"], z["labels"]


def read_medit_tets(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (N, 3), tetrahedra (M, 4) 0-based, references (M,)) of an ASCII medit ``.mesh``
    file as CGAL writes it; numbers parsed in bulk (``meshio`` parses them line by line)."""
    import re

    text = path.read_bytes()
    keyword = re.compile(rb"^[ \t]*([A-Za-z]+)[ \t]*\r?$", re.MULTILINE)

    def section(name: bytes, width: int, dtype: type) -> np.ndarray:
        m = re.search(rb"^[ \t]*" + name + rb"[ \t]*\r?$", text, re.MULTILINE)
        if m is None:
            return np.zeros((0, width), dtype)
        nxt = keyword.search(text, m.end())
        body = text[m.end():nxt.start() if nxt else len(text)].decode("ascii").strip()
        head, _, rest = body.partition("\n")
        n = int(head.split()[0]) if head else 0
        vals = np.fromstring(rest, dtype=dtype, sep=" ") if n else np.zeros(0, dtype)  # text mode
        if vals.size != n * width:
            raise ValueError(f"medit section {name.decode()}: expected {n * width} numbers, got {vals.size}")
        return vals.reshape(n, width)

    v = section(b"Vertices", 4, np.float64)
    t = section(b"Tetrahedra", 5, np.int64)
    return v[:, :3], t[:, :4] - 1, t[:, 4]


def _main(job: Path) -> None:
    from _pygalmesh import _generate_from_inr_with_subdomain_sizing  # type: ignore[import-not-found]

    crit = json.loads((job / "criteria.json").read_text())
    sizes = crit.pop("cell_sizes")
    default = float(sizes.pop("default", 0.0))
    labels = [int(k) for k in sizes]
    values = [float(sizes[k]) for k in sizes]
    out = job / "mesh.mesh"
    t0, c0 = time.perf_counter(), time.process_time()
    _generate_from_inr_with_subdomain_sizing(
        str(job / "labels.inr"), str(out), default, values, labels, verbose=False, **crit
    )
    t1, c1 = time.perf_counter(), time.process_time()
    points, tets, refs = read_medit_tets(out)
    np.savez(job / "mesh.npz", points=points, tets=tets, labels=refs)
    out.unlink()
    t2, c2 = time.perf_counter(), time.process_time()
    (job / "timings.json").write_text(json.dumps({"cgal_mesh": [round(t1 - t0, 2), round(c1 - c0, 2)],
                                                  "cgal_read": [round(t2 - t1, 2), round(c2 - c1, 2)]}))


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
