"""The canonical image type: a voxel array plus the exact voxel -> world mapping.

World coordinates are the scanner RAS of the source image in millimetres (NIfTI sform or
qform). ``affine`` maps voxel indices (i, j, k, 1) to world (x, y, z, 1); a point at the
centre of voxel (i, j, k) has world coordinates ``affine @ [i, j, k, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass
class Volume:
    """A 3-D image (or a 3-D grid of vectors, shape (X, Y, Z, C)) in world RAS mm.

    Attributes:
        data: voxel array; axis order (i, j, k[, component]).
        affine: 4x4 float64 voxel -> world RAS (mm).
        source: where it came from (a file name), for messages.
        meta: free-form facts about the source (which of sform/qform was used, DICOM info...).
    """

    data: np.ndarray
    affine: np.ndarray
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64)
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4, got {self.affine.shape}")
        if self.data.ndim not in (3, 4):
            raise ValueError(f"volume data must be 3-D or 4-D, got {self.data.ndim}-D")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.data.shape[:3])  # type: ignore[return-value]

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along each array axis in mm (length of each affine column)."""
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def axcodes(self) -> tuple[str, str, str]:
        """Orientation codes: the world direction (R/L, A/P, S/I) each array axis increases to."""
        import nibabel as nib

        return tuple(nib.orientations.aff2axcodes(self.affine))  # type: ignore[return-value]

    def voxel_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """(N, 3) voxel indices (may be fractional) -> (N, 3) world RAS mm."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=np.float64))
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: np.ndarray) -> np.ndarray:
        """(N, 3) world RAS mm -> (N, 3) fractional voxel indices."""
        xyz = np.atleast_2d(np.asarray(xyz, dtype=np.float64))
        inv = np.linalg.inv(self.affine)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def with_data(self, data: np.ndarray, **meta: Any) -> "Volume":
        """A volume on the same grid with other voxel values."""
        if data.shape[:3] != self.data.shape[:3]:
            raise ValueError(f"data shape {data.shape} does not match grid {self.data.shape[:3]}")
        return replace(self, data=data, meta={**self.meta, **meta})

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned world bounding box (min, max) of the voxel centres, mm."""
        n = np.array(self.shape) - 1
        corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])], float)
        w = self.voxel_to_world(corners)
        return w.min(axis=0), w.max(axis=0)
