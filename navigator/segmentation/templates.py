"""MNI152 templates used as registration target and tissue priors.

The ICBM 2009a nonlinear symmetric T1, GM and WM templates ship inside nilearn's wheel
(``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``; 1 mm,
197 x 233 x 189, MNI mm). The T1 template is **brain-masked**: it is zero outside the brain
(cerebrum, cerebellum and brainstem down to z = -72 mm, with ventricles and most sulcal CSF
inside the mask). Registration therefore matches the subject's brain to it, with a metric
mask around the template brain, and the skull and scalp are found in subject space from
intensities and geometry (see :mod:`navigator.segmentation.classify`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.volume import Volume

_NAMES = {"t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
          "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
          "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"}


@dataclass(eq=False)
class MniTemplates:
    """Template images on the 1 mm MNI grid (all share ``affine``)."""

    t1: np.ndarray  # float32, scaled to [0, 1]
    gm: np.ndarray  # float32 probability [0, 1]
    wm: np.ndarray  # float32 probability [0, 1]
    brain: np.ndarray  # bool, T1 template > 0 (brain + ventricles + sulcal CSF)
    affine: np.ndarray  # 4x4 voxel -> MNI mm

    @property
    def csf(self) -> np.ndarray:
        """CSF prior: the part of the template brain mask that is neither GM nor WM."""
        return np.clip(self.brain.astype(np.float32) - self.gm - self.wm, 0.0, 1.0)

    @functools.cached_property
    def outside_distance(self) -> np.ndarray:
        """Distance (mm) of every template voxel to the template brain mask (0 inside)."""
        from scipy import ndimage as ndi

        return ndi.distance_transform_edt(~self.brain).astype(np.float32)

    @functools.cached_property
    def csf_band(self) -> np.ndarray:
        """CSF prior including the subarachnoid band (~3 mm) the brain-only mask lacks."""
        d = self.outside_distance
        band = np.where(self.brain, 0.0, 0.8 * np.exp(-np.maximum(d - 1.0, 0.0) / 3.0)).astype(np.float32)
        return np.maximum(self.csf, band)

    def volume(self, data: np.ndarray) -> Volume:
        return Volume(data, self.affine.copy(), source="MNI152 2009a")


def template_dir() -> str:
    import nilearn

    return os.path.join(os.path.dirname(nilearn.__file__), "datasets", "data")


@functools.lru_cache(maxsize=1)
def load_templates() -> MniTemplates:
    """Load (and cache) the nilearn MNI152 2009a T1/GM/WM templates."""
    import nibabel as nib

    folder = template_dir()
    arrays = {}
    affine = None
    for key, name in _NAMES.items():
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            raise NavigatorError(f"{path}: MNI152 template missing from the nilearn installation; "
                                 "reinstall nilearn (>= 0.10)")
        img = nib.load(path)
        arrays[key] = np.asarray(img.get_fdata(dtype=np.float32) / 255.0, dtype=np.float32)
        affine = img.affine
    brain = arrays["t1"] > 0
    return MniTemplates(arrays["t1"], arrays["gm"], arrays["wm"], brain, np.asarray(affine, float))
