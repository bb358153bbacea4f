"""Timing of the import-time mesh checks (navigator.io.mesh_checks.validate_mesh).

Structured grid of n^3 cubes of 2 mm, 6 tetrahedra each (n = 57: 1.1 M tetrahedra, about a
SimNIBS head mesh's size), half of them written with negative orientation so the orientation
repair runs too. Prints the wall time of validate_mesh and of read_msh with and without checks.

Run: ``python benchmarks/bench_mesh_validation.py [n]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from navigator.core.mesh import Mesh
from navigator.io.gmsh import read_msh, write_msh
from navigator.io.mesh_checks import validate_mesh

_KUHN = np.array([[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7]])


def grid_mesh(n: int) -> Mesh:
    idx = np.arange(n + 1)
    ii, jj, kk = np.meshgrid(idx, idx, idx, indexing="ij")
    nodes = np.stack([ii, jj, kk], -1).reshape(-1, 3).astype(float) * 2.0
    c = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 3)
    corner = np.stack([((c[:, 0] + (b & 1)) * (n + 1) + c[:, 1] + ((b >> 1) & 1)) * (n + 1) + c[:, 2] + ((b >> 2) & 1)
                       for b in range(8)], 1)
    tets = corner[:, _KUHN].reshape(-1, 4)
    p = nodes[tets]
    vol = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    tets[vol < 0] = tets[vol < 0][:, [0, 2, 1, 3]]
    tets[::2] = tets[::2][:, [1, 0, 2, 3]]  # half written with negative orientation
    return Mesh(nodes, tets, np.full(len(tets), 5))


def main(n: int = 57) -> None:
    mesh = grid_mesh(n)
    print(f"grid {n}^3 cubes: {mesh.n_nodes:,} nodes, {mesh.n_tets:,} tetrahedra")
    t = time.perf_counter()
    out = validate_mesh(mesh, "bench.msh")
    print(f"validate_mesh: {time.perf_counter() - t:.2f} s (orientation repaired: {bool((out.tet_volumes() > 0).all())})")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "grid.msh"
        write_msh(mesh, path)
        for check in (False, True):
            t = time.perf_counter()
            read_msh(path, check=check)
            print(f"read_msh(check={check}): {time.perf_counter() - t:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 57)
