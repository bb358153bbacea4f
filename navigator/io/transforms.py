"""Read and write the workspace's subject <-> MNI transforms (:class:`MniTransform`).

Files (same convention as SimNIBS's ``toMNI`` folder, see :mod:`navigator.core.transforms`):
``subject_to_mni_affine.txt`` (4x4 text, subject RAS mm -> MNI mm), ``subject_to_mni.nii.gz``
and ``mni_to_subject.nii.gz`` (deformation fields whose voxels hold millimetre coordinates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_write_text
from navigator.core.errors import NavigatorError
from navigator.core.transforms import AFFINE_NAME, MNI_TO_SUBJECT_NAME, SUBJECT_TO_MNI_NAME, MniTransform
from navigator.io.images import load_image, save_nifti


def has_mni_transform(folder: str | Path) -> bool:
    """True when ``folder`` holds all three transform files."""
    folder = Path(folder)
    return all((folder / n).exists() for n in (AFFINE_NAME, SUBJECT_TO_MNI_NAME, MNI_TO_SUBJECT_NAME))


def load_mni_transform(folder: str | Path) -> MniTransform:
    """The transform stored in ``folder``; a one-line error naming the missing files."""
    folder = Path(folder)
    missing = [n for n in (AFFINE_NAME, SUBJECT_TO_MNI_NAME, MNI_TO_SUBJECT_NAME) if not (folder / n).exists()]
    if missing:
        raise NavigatorError(f"{folder}: no MNI transforms ({', '.join(missing)} missing); run `navigator segment`")
    aff = np.loadtxt(folder / AFFINE_NAME).reshape(4, 4)
    return MniTransform(aff, load_image(folder / SUBJECT_TO_MNI_NAME, allow_4d=True, reorient=False),
                        load_image(folder / MNI_TO_SUBJECT_NAME, allow_4d=True, reorient=False))


def save_mni_transform(transform: MniTransform, folder: str | Path) -> list[Path]:
    """Write the three files atomically into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / AFFINE_NAME, "\n".join(" ".join(f"{v:.10g}" for v in row)
                                                      for row in transform.subject_to_mni_affine) + "\n")
    save_nifti(transform.subject_to_mni_field, folder / SUBJECT_TO_MNI_NAME, dtype=np.float32)
    save_nifti(transform.mni_to_subject_field, folder / MNI_TO_SUBJECT_NAME, dtype=np.float32)
    return [folder / AFFINE_NAME, folder / SUBJECT_TO_MNI_NAME, folder / MNI_TO_SUBJECT_NAME]
