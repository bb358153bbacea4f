"""Rigid registration of a T2 to the T1 of the same subject (mutual information).

A T2 from the same session shares the T1's scanner space up to the subject's movement between
the two series (typically 0.5-3 mm and a degree or two); a T2 from another session does not
share it at all. The segmentation uses the T2 voxel by voxel beside the T1 (the whole-head
mixture and the CSF/skull boundary), so it is registered first: a rigid (6-parameter)
transform found with Mattes mutual information (the contrasts differ) on the head, at 4 and
2 mm, starting from the scanner-space identity (or from the head centres when those are more
than 20 mm apart). The identity is kept when the registration does not improve the metric.

Frames: both images in world RAS mm (as loaded); the result maps T1 world -> T2 world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from navigator.core.progress import Progress, ensure_progress
from navigator.core.volume import Volume
from navigator.segmentation.preprocess import to_sitk
from navigator.segmentation.register import mattes_mi_method, single_threaded_itk

_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class T2Registration:
    """Result of :func:`register_t2_to_t1`.

    Attributes:
        t1_to_t2: 4x4 rigid map, T1 world RAS mm -> T2 world RAS mm.
        rotation_deg: rotation angle of that map, degrees.
        shift_mm: displacement of the head centre by that map, mm.
        metric_before, metric_after: Mattes mutual information at the identity and at the
            result (negative; lower is better).
        applied: False when the identity was kept (no improvement).
    """

    t1_to_t2: np.ndarray
    rotation_deg: float
    shift_mm: float
    metric_before: float
    metric_after: float
    applied: bool

    def to_json(self) -> dict:
        return {"rotation_deg": round(self.rotation_deg, 3), "shift_mm": round(self.shift_mm, 3),
                "metric_before": round(self.metric_before, 5), "metric_after": round(self.metric_after, 5),
                "applied": self.applied}


def _downsampled(data: np.ndarray, affine: np.ndarray, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    sp = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    f = [max(1, int(round(step_mm / s))) for s in sp]
    out = ndi.gaussian_filter(np.asarray(data, np.float32), [0.4 * x if x > 1 else 0 for x in f])[::f[0], ::f[1], ::f[2]]
    aff = np.asarray(affine, float).copy()
    aff[:3, :3] = aff[:3, :3] * np.array(f)
    return np.ascontiguousarray(out, np.float32), aff


def _centre(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    idx = np.argwhere(mask).mean(axis=0)
    return (affine @ np.append(idx, 1.0))[:3]


def register_t2_to_t1(t1: np.ndarray, t1_affine: np.ndarray, head: np.ndarray, t2: Volume,
                      progress: Progress | None = None) -> T2Registration:
    """Rigid T1 world -> T2 world map for a T2 ``t2`` (its own grid) and a T1 on ``t1_affine``.

    ``t1`` is the bias-corrected, normalised T1 and ``head`` its head mask (same grid).
    """
    import SimpleITK as sitk

    progress = ensure_progress(progress)
    fixed_np, fixed_aff = _downsampled(t1 * head, t1_affine, 2.0)
    mask_np, _ = _downsampled(ndi.binary_dilation(head, iterations=2).astype(np.float32), t1_affine, 2.0)
    t2_data = np.clip(np.asarray(t2.data, np.float32), 0, None)
    moving_np, moving_aff = _downsampled(t2_data, t2.affine, 2.0)
    fixed, moving = to_sitk(fixed_np, fixed_aff), to_sitk(moving_np, moving_aff)
    fmask = to_sitk((mask_np > 0.5).astype(np.uint8), fixed_aff)

    c1 = _centre(head, t1_affine)
    t2_head = t2_data > 0.5 * float(np.percentile(t2_data[t2_data > 0], 50)) if (t2_data > 0).any() else t2_data > 0
    c2 = _centre(t2_head, t2.affine) if t2_head.any() else c1
    init = sitk.Euler3DTransform()
    init.SetCenter([float(v) for v in (_LPS[:3, :3] @ c1)])
    if np.linalg.norm(c2 - c1) > 20.0:  # not the same scanner space: start from the head centres
        init.SetTranslation([float(v) for v in (_LPS[:3, :3] @ (c2 - c1))])
    identity = sitk.Euler3DTransform(init)

    def method():
        return mattes_mi_method(fmask, 0.25, seed=11)

    with single_threaded_itk():  # the same registration in every run
        probe = method()
        probe.SetInitialTransform(identity)
        before = float(probe.MetricEvaluate(fixed, moving))

        reg = method()
        reg.SetOptimizerAsRegularStepGradientDescent(learningRate=2.0, minStep=1e-3, numberOfIterations=150,
                                                     relaxationFactor=0.6, gradientMagnitudeTolerance=1e-6)
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetShrinkFactorsPerLevel([2, 1])
        reg.SetSmoothingSigmasPerLevel([2.0, 1.0])
        reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
        reg.SetInitialTransform(init, inPlace=True)
        reg.AddCommand(sitk.sitkIterationEvent, progress.check)
        reg.Execute(fixed, moving)
        check = method()
        check.SetInitialTransform(init)
        after = float(check.MetricEvaluate(fixed, moving))

    applied = after < before - 1e-4
    tr = init if applied else identity
    pts = np.array([[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100]], float)
    img = np.array([tr.TransformPoint([float(v) for v in p]) for p in pts])
    lps = np.eye(4)
    lps[:3, 3] = img[0]
    lps[:3, :3] = ((img[1:] - img[0]) / 100.0).T
    m = _LPS @ lps @ _LPS
    angle = float(np.degrees(np.arccos(np.clip((np.trace(m[:3, :3]) - 1) / 2, -1, 1))))
    shift = float(np.linalg.norm((m @ np.append(c1, 1.0))[:3] - c1))
    progress.update(1.0, "T2 registered to the T1")
    return T2Registration(m, angle, shift, before, after, applied)


def t2_on_t1_grid(t2: Volume, reg: T2Registration, affine: np.ndarray, shape: tuple[int, int, int]) -> Volume:
    """The T2 resampled (trilinear) onto a T1-space grid through the registration."""
    from navigator.segmentation.preprocess import resample

    moved = Volume(t2.data, np.linalg.inv(reg.t1_to_t2) @ t2.affine, source=t2.source, meta=dict(t2.meta))
    return resample(moved, affine, shape, order=1)
