"""Tetrahedral head mesh with surface triangles and attached fields.

Coordinates are world RAS in millimetres (as in SimNIBS ``.msh`` files). Connectivity is
0-based. Tissue tags follow SimNIBS: volume tag N for tetrahedra, 1000 + N for the triangles
of the outer boundary of tissue N (see :mod:`navigator.core.tissues`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Mesh:
    """A mixed tetrahedron/triangle mesh.

    Attributes:
        nodes: (N, 3) float64 node coordinates, mm.
        tetrahedra: (M, 4) int64 node indices (0-based).
        tet_tags: (M,) int32 tissue tag of each tetrahedron.
        triangles: (K, 3) int64 node indices (0-based).
        triangle_tags: (K,) int32 surface tag of each triangle (1000 + tissue).
        node_data: name -> (N,) or (N, C) array (e.g. "v" in V).
        tet_data: name -> (M,) or (M, C) array over tetrahedra (e.g. "E" in V/m).
        triangle_data: name -> (K,) or (K, C) array over triangles.
    """

    nodes: np.ndarray
    tetrahedra: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    tet_tags: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    triangles: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    triangle_tags: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    node_data: dict[str, np.ndarray] = field(default_factory=dict)
    tet_data: dict[str, np.ndarray] = field(default_factory=dict)
    triangle_data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nodes = np.asarray(self.nodes, dtype=np.float64).reshape(-1, 3)
        self.tetrahedra = np.asarray(self.tetrahedra, dtype=np.int64).reshape(-1, 4)
        self.tet_tags = np.asarray(self.tet_tags, dtype=np.int32).reshape(-1)
        self.triangles = np.asarray(self.triangles, dtype=np.int64).reshape(-1, 3)
        self.triangle_tags = np.asarray(self.triangle_tags, dtype=np.int32).reshape(-1)
        if len(self.tet_tags) != len(self.tetrahedra):
            raise ValueError("tet_tags must have one entry per tetrahedron")
        if len(self.triangle_tags) != len(self.triangles):
            raise ValueError("triangle_tags must have one entry per triangle")

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_tets(self) -> int:
        return len(self.tetrahedra)

    def tet_volumes(self) -> np.ndarray:
        """Signed volume of each tetrahedron, mm^3 (positive for positive orientation)."""
        p0, p1, p2, p3 = self._corners()
        return np.einsum("ij,ij->i", np.cross(p1 - p0, p2 - p0), p3 - p0) / 6.0

    def tet_centroids(self) -> np.ndarray:
        """(M, 3) centroid of each tetrahedron, mm."""
        # = nodes[tets].mean(axis=1) (same summation order, bit for bit) without the (M, 4, 3) temporary
        p0, p1, p2, p3 = self._corners()
        c = p0 + p1
        c += p2
        c += p3
        c /= 4.0
        return c

    def _corners(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The (M, 3) coordinates of each tetrahedron's corners 0..3 (np.take is several times
        faster than fancy indexing here)."""
        t = self.tetrahedra
        p0, p1, p2, p3 = (np.take(self.nodes, np.ascontiguousarray(t[:, k]), axis=0) for k in range(4))
        return p0, p1, p2, p3

    def tissue_tags(self) -> list[int]:
        """Sorted distinct volume tags present."""
        return sorted(int(t) for t in np.unique(self.tet_tags))

    def subset_tets(self, mask: np.ndarray) -> "Mesh":
        """A mesh holding only the selected tetrahedra (nodes renumbered, no triangles)."""
        tets = self.tetrahedra[mask]
        used, inverse = np.unique(tets, return_inverse=True)
        return Mesh(
            nodes=self.nodes[used],
            tetrahedra=inverse.reshape(-1, 4),
            tet_tags=self.tet_tags[mask],
            node_data={k: v[used] for k, v in self.node_data.items()},
            tet_data={k: v[mask] for k, v in self.tet_data.items()},
        )
