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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mesh ``vol`` with CGAL in a child process; returns (points, tets, tet_labels).

    ``criteria``: keyword arguments of pygalmesh's ``_generate_from_inr_with_subdomain_sizing``
    (sizes in mm) plus ``cell_sizes``: {label: max circumradius, "default": value}.
    ``poll(elapsed_seconds)`` is called a few times per second while CGAL runs; it may raise
    (e.g. Cancelled), which kills the child process.
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
    with np.load(job / "mesh.npz") as z:
        return z["points"], z["tets"], z["labels"]


def _main(job: Path) -> None:
    import meshio
    from _pygalmesh import _generate_from_inr_with_subdomain_sizing  # type: ignore[import-not-found]

    crit = json.loads((job / "criteria.json").read_text())
    sizes = crit.pop("cell_sizes")
    default = float(sizes.pop("default", 0.0))
    labels = [int(k) for k in sizes]
    values = [float(sizes[k]) for k in sizes]
    out = job / "mesh.mesh"
    _generate_from_inr_with_subdomain_sizing(
        str(job / "labels.inr"), str(out), default, values, labels, verbose=False, **crit
    )
    m = meshio.read(out, file_format="medit")
    tets = None
    refs = None
    for block, ref in zip(m.cells, m.cell_data.get("medit:ref", [None] * len(m.cells))):
        if block.type == "tetra":
            tets = block.data if tets is None else np.concatenate([tets, block.data])
            r = np.asarray(ref) if ref is not None else np.zeros(len(block.data), int)
            refs = r if refs is None else np.concatenate([refs, r])
    if tets is None:
        tets = np.zeros((0, 4), np.int64)
        refs = np.zeros(0, np.int64)
    np.savez(job / "mesh.npz", points=m.points, tets=tets, labels=refs)
    out.unlink()


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
