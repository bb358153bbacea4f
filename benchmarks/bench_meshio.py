"""Timing of navigator's gmsh 2.2 writer/reader and boundary extraction on a head-sized mesh.

The mesh is a structured grid of 100^3 nodes (1 M nodes) split into 6 tetrahedra per cube
(5.8 M tetrahedra), tagged as five concentric "tissues" (1..5, like WM..scalp), with the
SimNIBS-style interface triangles made by ``boundary_triangles``. Fields: ``v`` on nodes and
``E`` (3 components) on tetrahedra only, so the writer's triangle fill runs.

Run: ``python benchmarks/bench_meshio.py [n]`` (n nodes per axis, default 100).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from navigator.core.mesh import Mesh
from navigator.io.gmsh import read_msh, write_msh
from navigator.io.mesh_boundary import boundary_triangles

# Kuhn subdivision of the unit cube: 6 tetrahedra along the main diagonal (corner bits x, y, z)
_KUHN = np.array([[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 2, 6, 7], [0, 4, 5, 7], [0, 4, 6, 7]])


def grid_mesh(n: int, spacing: float = 2.0) -> Mesh:
    ax = (np.arange(n) - (n - 1) / 2) * spacing
    nodes = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), -1).reshape(-1, 3)
    idx = np.arange(n ** 3).reshape(n, n, n)
    c = idx[:-1, :-1, :-1].reshape(-1)
    corner = np.array([0, n * n, n, n * n + n, 1, n * n + 1, n + 1, n * n + n + 1])  # bit0=x, bit1=y, bit2=z
    corner = corner[[0, 1, 2, 3, 4, 5, 6, 7]]
    tets = (c[:, None, None] + corner[_KUHN][None]).reshape(-1, 4)
    r = np.linalg.norm(nodes[tets].mean(axis=1), axis=1) / (n * spacing / 2)
    tags = np.digitize(r, [0.45, 0.6, 0.7, 0.8]) + 1
    mesh = Mesh(nodes, tets, tags)
    vol = mesh.tet_volumes()
    mesh.tetrahedra[vol < 0] = mesh.tetrahedra[vol < 0][:, [0, 2, 1, 3]]
    return mesh


def main(n: int = 100) -> None:
    t = time.perf_counter()
    mesh = grid_mesh(n)
    print(f"mesh: {mesh.n_nodes} nodes, {mesh.n_tets} tets ({time.perf_counter() - t:.1f} s to build)")
    t = time.perf_counter()
    mesh.triangles, mesh.triangle_tags = boundary_triangles(mesh)
    print(f"boundary_triangles: {len(mesh.triangles)} triangles in {time.perf_counter() - t:.1f} s")
    rng = np.random.default_rng(0)
    mesh.tet_data["E"] = rng.normal(size=(mesh.n_tets, 3))
    mesh.node_data["v"] = rng.normal(size=mesh.n_nodes)
    with tempfile.TemporaryDirectory() as tmp:
        for binary in (True, False):
            p = Path(tmp) / f"bench_{'bin' if binary else 'ascii'}.msh"
            t0 = time.perf_counter()
            write_msh(mesh, p, binary=binary)
            t1 = time.perf_counter()
            back = read_msh(p)
            t2 = time.perf_counter()
            assert back.n_tets == mesh.n_tets
            print(f"{'binary' if binary else 'ASCII '}: write {t1 - t0:.1f} s, read {t2 - t1:.1f} s, "
                  f"file {p.stat().st_size / 1e6:.0f} MB (fields v, E)")
            p.unlink()
        t0 = time.perf_counter()
        write_msh(Mesh(mesh.nodes, mesh.tetrahedra, mesh.tet_tags, mesh.triangles, mesh.triangle_tags),
                  Path(tmp) / "plain.msh")
        t1 = time.perf_counter()
        read_msh(Path(tmp) / "plain.msh")
        print(f"binary, geometry only: write {t1 - t0:.1f} s, read {time.perf_counter() - t1:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
