"""The ``sphere`` sample: three concentric shells centred at the world origin.

Labels by voxel-centre radius r (mm): r <= 85 -> 3, 85 < r <= 90 -> 4, 90 < r <= 95 -> 5,
outside -> 0, on a 1 mm RAS grid of 201^3 voxels centred at (0, 0, 0) (5 mm margin). This is
the standard geometry of analytic TMS/tDCS solutions (Heller & van Hulsteyn; Rush & Driscoll).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from navigator.core.progress import Progress, ensure_progress
from navigator.core.volume import Volume
from navigator.core.workspace import Workspace

#: (outer radius in mm, label) of each shell, innermost first.
SHELLS: tuple[tuple[float, int], ...] = ((85.0, 3), (90.0, 4), (95.0, 5))
GRID_SIZE = 201  # voxels per axis, 1 mm, centred at the origin
#: T1-like intensity of each label (uint16 units) for viewers.
T1_VALUES = {0: 0, 3: 600, 4: 60, 5: 900}


def sphere_grid_affine(size: int = GRID_SIZE) -> np.ndarray:
    """1 mm RAS voxel -> world affine with the grid centre at world (0, 0, 0)."""
    aff = np.eye(4)
    aff[:3, 3] = -(size - 1) / 2.0
    return aff


def sphere_labels(size: int = GRID_SIZE, shells: tuple[tuple[float, int], ...] = SHELLS) -> Volume:
    """Label volume (uint8) of concentric shells, assigned by voxel-centre radius."""
    aff = sphere_grid_affine(size)
    ax = aff[0, 3] + np.arange(size, dtype=np.float64)
    r2 = ax[:, None, None] ** 2 + ax[None, :, None] ** 2 + ax[None, None, :] ** 2
    labels = np.zeros((size, size, size), np.uint8)
    for radius, lab in reversed(shells):  # outermost first, inner shells overwrite
        labels[r2 <= radius * radius] = lab
    return Volume(labels, aff, source="sample:sphere")


def sphere_t1(labels: Volume) -> Volume:
    """Noise-free T1-like image (uint16) from the labels, with 0.7 mm partial-volume blur."""
    lut = np.zeros(256, np.float32)
    for lab, val in T1_VALUES.items():
        lut[lab] = val
    img = ndi.gaussian_filter(lut[labels.data], 0.7)
    return Volume(np.rint(img).astype(np.uint16), labels.affine.copy(), source="sample:sphere")


def write_sphere(out_dir: str | Path, progress: Progress | None = None, subject_id: str | None = None) -> Workspace:
    """Write the sphere sample as a workspace: input/T1.nii.gz (source "T1") and
    labels/labels.nii.gz recorded as step "labels" (so meshing can run without segmentation)."""
    from navigator.io.images import save_nifti

    progress = ensure_progress(progress)
    t0 = time.perf_counter()
    progress.update(0.0, "labels")
    labels = sphere_labels()
    ws = Workspace.create(out_dir, subject_id=subject_id)
    progress.update(0.3, "T1 image")
    save_nifti(sphere_t1(labels), ws.path("t1"))
    ws.add_source("T1", ws.path("t1"), original="sample:sphere")
    progress.update(0.7, "writing labels")
    save_nifti(labels, ws.path("labels"), dtype=np.uint8)
    ws.record_step("labels", {"source": "sample:sphere", "shells_mm": [list(s) for s in SHELLS]}, inputs=[],
                   outputs=[ws.path("labels")], seconds=round(time.perf_counter() - t0, 2))
    progress.update(1.0, "done")
    return ws
