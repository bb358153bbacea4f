"""Subject <-> MNI152 mapping of points and images.

Stored in the workspace's ``transforms/`` folder with the same convention as SimNIBS's
``toMNI`` folder, so SimNIBS m2m transforms can be copied as they are:

``transforms/subject_to_mni_affine.txt``
    4x4 text matrix mapping subject world RAS (mm) to MNI (mm): the affine part of the
    registration (used for quick approximations and reported QC).
``transforms/subject_to_mni.nii.gz``  (SimNIBS ``Conform2MNI_nonl.nii.gz``)
    deformation field on a subject grid: voxel (i, j, k) holds the MNI coordinates (mm,
    3 components) of that voxel's world position. Maps subject points -> MNI and pulls MNI
    images into subject space.
``transforms/mni_to_subject.nii.gz``  (SimNIBS ``MNI2Conform_nonl.nii.gz``)
    deformation field on an MNI grid: voxel holds the subject world coordinates (mm) of
    that MNI position. Maps MNI points -> subject and pulls subject images into MNI space.

All coordinates are millimetres; fields are sampled with trilinear interpolation. Reading and
writing the files: :mod:`navigator.io.transforms`.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from navigator.core.volume import Volume

AFFINE_NAME = "subject_to_mni_affine.txt"
SUBJECT_TO_MNI_NAME = "subject_to_mni.nii.gz"
MNI_TO_SUBJECT_NAME = "mni_to_subject.nii.gz"


def sample_field(field: Volume, points: np.ndarray, order: int = 1) -> np.ndarray:
    """Interpolate a (X, Y, Z, C) field at (N, 3) world points (mm); NaN outside the grid."""
    from scipy.ndimage import map_coordinates

    ijk = field.world_to_voxel(points).T
    data = field.data if field.data.ndim == 4 else field.data[..., None]
    out = np.stack(
        [map_coordinates(data[..., c], ijk, order=order, mode="constant", cval=np.nan) for c in range(data.shape[3])],
        axis=1,
    )
    return out if field.data.ndim == 4 else out[:, 0]


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine to (N, 3) points."""
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    return points @ matrix[:3, :3].T + matrix[:3, 3]


@dataclass
class MniTransform:
    """Nonlinear subject <-> MNI mapping made of two deformation fields plus an affine."""

    subject_to_mni_affine: np.ndarray  # 4x4, subject RAS mm -> MNI mm
    subject_to_mni_field: Volume  # on a subject grid, values = MNI mm
    mni_to_subject_field: Volume  # on an MNI grid, values = subject RAS mm

    def subject_to_mni(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) subject RAS mm -> (N, 3) MNI mm (affine fallback outside the field's grid)."""
        return self._map(self.subject_to_mni_field, points, self.subject_to_mni_affine)

    def mni_to_subject(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) MNI mm -> (N, 3) subject RAS mm (affine fallback outside the field's grid)."""
        return self._map(self.mni_to_subject_field, points, np.linalg.inv(self.subject_to_mni_affine))

    @staticmethod
    def _map(field: Volume, points: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        out = sample_field(field, points)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            out[bad] = apply_affine(fallback, points[bad])
        return out

    def image_to_mni(self, image: Volume, order: int = 1) -> Volume:
        """Resample a subject-space image onto the MNI grid of ``mni_to_subject_field``."""
        return _pull(image, self.mni_to_subject_field, order)

    def image_to_subject(self, image: Volume, order: int = 1) -> Volume:
        """Resample an MNI-space image onto the subject grid of ``subject_to_mni_field``."""
        return _pull(image, self.subject_to_mni_field, order)


def _pull(image: Volume, field: Volume, order: int) -> Volume:
    """Resample ``image`` at the world positions stored in ``field`` (output on field's grid)."""
    from scipy.ndimage import map_coordinates

    pts = field.data.reshape(-1, 3)
    ijk = image.world_to_voxel(pts).T
    vals = map_coordinates(np.asarray(image.data, dtype=np.float32), ijk, order=order, mode="constant", cval=0.0)
    return Volume(vals.reshape(field.shape), field.affine.copy(), source=image.source)
