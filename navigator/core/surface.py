"""Triangle surface in world RAS mm (scalp, grey/white matter boundaries, middle grey matter)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Surface:
    """A triangulated surface.

    Attributes:
        vertices: (N, 3) float64, world RAS mm.
        faces: (F, 3) int64 vertex indices, counter-clockwise seen from outside (normals point out).
        data: name -> per-vertex array (e.g. "magnE" in V/m).
    """

    vertices: np.ndarray
    faces: np.ndarray
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vertices = np.asarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int64).reshape(-1, 3)

    def face_normals(self) -> np.ndarray:
        """(F, 3) unit normals of the faces."""
        p = self.vertices[self.faces]
        n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)

    def face_areas(self) -> np.ndarray:
        """(F,) triangle areas, mm^2."""
        p = self.vertices[self.faces]
        return 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)

    def vertex_normals(self) -> np.ndarray:
        """(N, 3) area-weighted unit vertex normals."""
        p = self.vertices[self.faces]
        n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])  # length = 2 * area
        acc = np.zeros_like(self.vertices)
        for k in range(3):
            np.add.at(acc, self.faces[:, k], n)
        return acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-30)

    def closest_vertex(self, points: np.ndarray) -> np.ndarray:
        """Index of the nearest vertex for each of (P, 3) points."""
        from scipy.spatial import cKDTree

        return cKDTree(self.vertices).query(np.atleast_2d(points))[1]
