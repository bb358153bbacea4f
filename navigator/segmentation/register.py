"""Subject <-> MNI152 registration: affine (mutual information) then nonlinear (demons).

Frames: subject world RAS mm (the T1's scanner space) and MNI mm. Conventions:

* ``affine_s2m`` (4x4) maps subject RAS mm -> MNI mm.
* The nonlinear part is a displacement field ``disp`` on a 2 mm MNI grid: an MNI point ``x``
  corresponds to the affine-space point ``z = x + disp(x)`` and to the subject point
  ``inv(affine_s2m) @ z``. ``inv_disp`` on the same grid is its inverse (``x = z + inv_disp(z)``),
  found by fixed-point iteration, so subject points map to MNI without a search.

The affine step registers the subject T1 to the brain-only template with Mattes mutual
information restricted to the template brain dilated by a few mm, after an initial
translation from head geometry (vertex and cranial centroid) and a small search over pitch.
The nonlinear step registers the subject's tissue-probability image (CSF 1, GM 2, WM 3) to the
same image made of the template priors with SimpleITK's diffeomorphic demons, so it does not
depend on the scanner's contrast.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from navigator.core.progress import Progress, ensure_progress
from navigator.core.transforms import MniTransform, apply_affine
from navigator.core.volume import Volume
from navigator.segmentation.preprocess import to_sitk
from navigator.segmentation.templates import MniTemplates

_F = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS

#: Distance (mm) between the top of the template brain mask and the top of a typical scalp.
VERTEX_TO_BRAIN_TOP_MM = 14.0


@dataclass
class Registration:
    """Affine + nonlinear subject <-> MNI mapping (see module docstring for conventions)."""

    affine_s2m: np.ndarray
    grid_affine: np.ndarray  # 4x4 voxel -> MNI mm of the displacement grid
    disp: np.ndarray | None = None  # (X, Y, Z, 3) mm, MNI -> affine space
    inv_disp: np.ndarray | None = None  # (X, Y, Z, 3) mm, affine space -> MNI

    def _sample(self, field: np.ndarray | None, pts: np.ndarray) -> np.ndarray:
        if field is None:
            return np.zeros_like(pts)
        ijk = apply_affine(np.linalg.inv(self.grid_affine), pts).T
        return np.stack([ndi.map_coordinates(field[..., c], ijk, order=1, mode="nearest")
                         for c in range(3)], axis=1)

    def mni_to_subject(self, pts: np.ndarray) -> np.ndarray:
        """(N, 3) MNI mm -> (N, 3) subject RAS mm."""
        pts = np.atleast_2d(np.asarray(pts, float))
        z = pts + self._sample(self.disp, pts)
        return apply_affine(np.linalg.inv(self.affine_s2m), z)

    def subject_to_mni(self, pts: np.ndarray) -> np.ndarray:
        """(N, 3) subject RAS mm -> (N, 3) MNI mm."""
        z = apply_affine(self.affine_s2m, np.atleast_2d(np.asarray(pts, float)))
        return z + self._sample(self.inv_disp, z)

    def subject_grid_to_mni(self, affine: np.ndarray, shape: tuple[int, int, int],
                            chunk: int = 2_000_000) -> np.ndarray:
        """MNI coordinates (X, Y, Z, 3 float32) of every voxel centre of a subject grid."""
        out = np.empty(tuple(shape) + (3,), np.float32)
        flat = out.reshape(-1, 3)
        n = int(np.prod(shape))
        for s in range(0, n, chunk):
            idx = np.arange(s, min(n, s + chunk))
            ijk = np.stack(np.unravel_index(idx, shape), axis=1).astype(float)
            flat[s:s + len(idx)] = self.subject_to_mni(apply_affine(affine, ijk))
        return out

    def mni_grid_to_subject(self) -> np.ndarray:
        """Subject RAS coordinates (X, Y, Z, 3 float32) of every node of the MNI grid."""
        shape = self.disp.shape[:3] if self.disp is not None else None
        assert shape is not None
        ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
        return self.mni_to_subject(apply_affine(self.grid_affine, ijk.astype(float))).reshape(
            tuple(shape) + (3,)).astype(np.float32)

    def to_mni_transform(self, subject_affine: np.ndarray, subject_shape: tuple[int, int, int],
                         field_spacing: float = 2.0) -> MniTransform:
        """Deformation fields in the :class:`MniTransform` format.

        The subject -> MNI field lives on a grid with the subject grid's axes and
        ``field_spacing`` mm voxels covering the subject field of view; the MNI -> subject field
        on the 2 mm MNI registration grid.
        """
        sp = np.sqrt((subject_affine[:3, :3] ** 2).sum(axis=0))
        factor = field_spacing / sp
        shape = tuple(int(np.floor((n - 1) / f)) + 1 for n, f in zip(subject_shape, factor))
        aff = subject_affine.copy()
        aff[:3, :3] = subject_affine[:3, :3] * factor
        s2m = self.subject_grid_to_mni(aff, shape)
        m2s = self.mni_grid_to_subject()
        return MniTransform(self.affine_s2m.copy(), Volume(s2m, aff, source="subject_to_mni"),
                            Volume(m2s, self.grid_affine.copy(), source="mni_to_subject"))


# ---------------------------------------------------------------------------- helpers
def _downsample_template(data: np.ndarray, affine: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    sm = ndi.gaussian_filter(data.astype(np.float32), 0.4 * factor) if factor > 1 else data.astype(np.float32)
    out = sm[::factor, ::factor, ::factor]
    aff = affine.copy()
    aff[:3, :3] *= factor
    return np.ascontiguousarray(out), aff


def _sitk_matrix(transform) -> np.ndarray:
    """4x4 (LPS) matrix of a SimpleITK transform that is affine, by probing points."""
    pts = np.array([[0, 0, 0], [100, 0, 0], [0, 100, 0], [0, 0, 100]], float)
    img = np.array([transform.TransformPoint([float(v) for v in p]) for p in pts])
    m = np.eye(4)
    m[:3, 3] = img[0]
    m[:3, :3] = ((img[1:] - img[0]) / 100.0).T
    return m


def _geometric_init(head: np.ndarray, head_affine: np.ndarray, tmpl: MniTemplates) -> np.ndarray:
    """Subject RAS -> MNI translation (4x4) matching vertex height and cranial centroid."""
    def top_and_centroid(mask: np.ndarray, affine: np.ndarray, top_offset: float) -> np.ndarray:
        idx = np.argwhere(mask[::2, ::2, ::2]) * 2
        w = apply_affine(affine, idx.astype(float))
        top = np.percentile(w[:, 2], 99.9) + top_offset
        slab = w[(w[:, 2] < top - 15) & (w[:, 2] > top - 65)]
        return np.array([slab[:, 0].mean(), slab[:, 1].mean(), top])

    s = top_and_centroid(head, head_affine, 0.0)
    m = top_and_centroid(tmpl.brain, tmpl.affine, VERTEX_TO_BRAIN_TOP_MM)
    t = np.eye(4)
    t[:3, 3] = m - s
    return t


def _rot_x(deg: float, center: np.ndarray) -> np.ndarray:
    a = np.deg2rad(deg)
    r = np.eye(4)
    r[1:3, 1:3] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    c1, c2 = np.eye(4), np.eye(4)
    c1[:3, 3] = -center
    c2[:3, 3] = center
    return c2 @ r @ c1


@contextmanager
def single_threaded_itk():
    """Run the ITK work inside on one thread (ITK's global default), restoring the default after.

    ITK's multi-threaded Mattes mutual information adds up the threads' partial joint histograms
    in an order that changes from run to run, so with 2 threads the same registration ends up to
    1e-9 mm elsewhere each time (measured on the demo phantom: the subject -> MNI affine differed by
    1.4e-9 between three runs in one process; with one thread the three were bit-identical), and
    the MNI-space maps, fiducials and EEG positions computed after it differ with it. One thread
    makes the registrations repeat bit for bit (affine registration of the phantom: about 20 s of
    CPU either way). The registration method must be built inside the block: ITK objects take the
    default thread count when they are made.
    """
    import SimpleITK as sitk

    before = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(before)


def mattes_mi_method(fixed_mask, sampling: float, seed: int):
    """A SimpleITK registration method with Mattes mutual information (32 bins) over
    ``fixed_mask``, a random ``sampling`` fraction of its voxels (fixed ``seed``, so runs
    repeat) and linear interpolation; the caller adds the optimizer and the transform."""
    import SimpleITK as sitk

    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricFixedMask(fixed_mask)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(sampling, seed=seed)
    reg.SetInterpolator(sitk.sitkLinear)
    return reg


def affine_register(t1: np.ndarray, affine: np.ndarray, head: np.ndarray, tmpl: MniTemplates,
                    progress: Progress | None = None) -> tuple[np.ndarray, float]:
    """Affine subject RAS -> MNI (4x4) and the final MI metric value (lower is better).

    ``t1`` is the bias-corrected, normalised T1 on the grid ``affine`` and ``head`` its head mask.
    """
    import SimpleITK as sitk

    progress = ensure_progress(progress)
    fixed_np, fixed_aff = _downsample_template(tmpl.t1, tmpl.affine, 2)
    mask_np = ndi.binary_dilation(tmpl.brain[::2, ::2, ::2], iterations=3)
    fixed = to_sitk(fixed_np, fixed_aff)
    fmask = to_sitk(mask_np.astype(np.uint8), fixed_aff)
    sp = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    f = [max(1, int(round(2.0 / s))) for s in sp]
    mov_np = ndi.gaussian_filter(t1 * head, [0.4 * x if x > 1 else 0 for x in f])[::f[0], ::f[1], ::f[2]]
    mov_aff = affine.copy()
    mov_aff[:3, :3] = affine[:3, :3] * np.array(f)
    moving = to_sitk(np.ascontiguousarray(mov_np, np.float32), mov_aff)

    init_ras = _geometric_init(head, affine, tmpl)  # subject -> MNI translation

    def run(transform, shrink, sigmas, iters, lr=1.0):
        with single_threaded_itk():  # the same affine in every run
            reg = mattes_mi_method(fmask, 0.3, seed=7)
            reg.SetOptimizerAsRegularStepGradientDescent(learningRate=lr, minStep=1e-3, numberOfIterations=iters,
                                                         relaxationFactor=0.6, gradientMagnitudeTolerance=1e-6)
            reg.SetOptimizerScalesFromPhysicalShift()
            reg.SetShrinkFactorsPerLevel(shrink)
            reg.SetSmoothingSigmasPerLevel(sigmas)
            reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
            reg.SetInitialTransform(transform, inPlace=True)
            reg.AddCommand(sitk.sitkIterationEvent, progress.check)
            reg.Execute(fixed, moving)
            return reg.GetMetricValue()

    best = None
    center_mni = np.array([0.0, -18.0, 18.0])
    for i, pitch in enumerate((0.0, -15.0, 15.0)):
        progress.update(0.05 + 0.1 * i, f"affine registration: start {i + 1}/3")
        s2m = _rot_x(pitch, center_mni) @ init_ras
        m2s_lps = _F @ np.linalg.inv(s2m) @ _F
        tr = sitk.Similarity3DTransform()
        tr.SetCenter([float(v) for v in (_F @ np.append(center_mni, 1))[:3]])
        tr.SetMatrix([float(v) for v in m2s_lps[:3, :3].ravel()])
        c = np.array(tr.GetCenter())
        tr.SetTranslation([float(v) for v in (m2s_lps[:3, :3] @ c + m2s_lps[:3, 3] - c)])
        val = run(tr, [2, 1], [4.0, 2.0], 60)
        if best is None or val < best[0]:
            best = (val, _sitk_matrix(tr))
    progress.update(0.4, "affine registration: 12 parameters")
    assert best is not None
    aff = sitk.AffineTransform(3)
    aff.SetCenter([float(v) for v in (_F @ np.append(center_mni, 1))[:3]])
    m = best[1]
    aff.SetMatrix([float(v) for v in m[:3, :3].ravel()])
    c = np.array(aff.GetCenter())
    aff.SetTranslation([float(v) for v in (m[:3, :3] @ c + m[:3, 3] - c)])
    val = run(aff, [2, 1], [2.0, 1.0], 100)
    m2s_lps = _sitk_matrix(aff)
    s2m = np.linalg.inv(_F @ m2s_lps @ _F)
    progress.update(1.0, "affine registration done")
    return s2m, float(val)


def tissue_image(csf: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Contrast-free image used for nonlinear registration: 1*CSF + 2*GM + 3*WM."""
    return (csf + 2.0 * gm + 3.0 * wm).astype(np.float32)


def nonlinear_register(subject_tissue: np.ndarray, subject_affine: np.ndarray, affine_s2m: np.ndarray,
                       tmpl: MniTemplates, spacing: int = 2, iterations: tuple[int, ...] = (40, 60),
                       smoothing_mm: float = 3.0, progress: Progress | None = None) -> Registration:
    """Demons registration of the subject tissue image (on ``subject_affine``'s grid) to the
    template tissue image, on a ``spacing`` mm MNI grid; multi-resolution (4 mm, then 2 mm)."""
    progress = ensure_progress(progress)
    fixed_np, grid_aff = _downsample_template(tissue_image(tmpl.csf, tmpl.gm, tmpl.wm), tmpl.affine, spacing)
    shape = fixed_np.shape
    # Subject tissue image resampled into MNI space by the affine.
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3).astype(float)
    subj_pts = apply_affine(np.linalg.inv(affine_s2m), apply_affine(grid_aff, ijk))
    vox = apply_affine(np.linalg.inv(subject_affine), subj_pts).T
    sm = ndi.gaussian_filter(subject_tissue, 0.5)
    moving_np = ndi.map_coordinates(sm, vox, order=1, mode="constant", cval=0.0).reshape(shape).astype(np.float32)

    disp = demons_on_grid(fixed_np, moving_np, float(spacing), iterations, smoothing_mm,
                          progress=progress.sub(0.1, 0.9, "nonlinear registration"))
    # Array axes of the MNI grid are RAS-aligned with positive spacing, so components are RAS mm.
    progress.update(0.92, "nonlinear registration: inverting the field")
    inv = invert_displacement(disp, float(spacing))
    progress.update(1.0, "nonlinear registration done")
    return Registration(affine_s2m.copy(), grid_aff, disp, inv)


def invert_displacement(disp: np.ndarray, spacing: float, iterations: int = 25) -> np.ndarray:
    """Inverse of a displacement field on a regular grid with RAS-aligned axes.

    Solves ``inv(z) = -disp(z + inv(z))`` by fixed-point iteration (converges for the smooth,
    diffeomorphic fields demons produces).
    """
    shape = disp.shape[:3]
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"), 0)
    inv = -disp.copy()
    for _ in range(iterations):
        coords = grid + np.moveaxis(inv, -1, 0) / spacing
        new = np.stack([-ndi.map_coordinates(disp[..., c], coords, order=1, mode="nearest")
                        for c in range(3)], axis=-1)
        if np.max(np.abs(new - inv)) < 0.01:
            inv = new
            break
        inv = new
    return inv.astype(np.float32)


def warp_template_to_subject(data: np.ndarray, tmpl_affine: np.ndarray, mni_coords: np.ndarray,
                             order: int = 1) -> np.ndarray:
    """Pull an MNI-space image onto a subject grid given the MNI coordinates of its voxels."""
    ijk = apply_affine(np.linalg.inv(tmpl_affine), mni_coords.reshape(-1, 3)).T
    out = ndi.map_coordinates(data, ijk, order=order, mode="constant", cval=0.0)
    return out.reshape(mni_coords.shape[:3]).astype(np.float32)


def demons_on_grid(fixed_np: np.ndarray, moving_np: np.ndarray, spacing: float, iterations: tuple[int, ...],
                   smoothing_mm: float, progress: Progress | None = None) -> np.ndarray:
    """Diffeomorphic demons between two images on the same RAS-aligned grid (``spacing`` mm).

    Returns the displacement field (X, Y, Z, 3) mm on that grid such that
    ``moving(x + d(x)) ~ fixed(x)``; multi-resolution (one level per entry of ``iterations``,
    coarsest first, each halving the shrink factor).
    """
    import SimpleITK as sitk

    progress = ensure_progress(progress)

    def as_img(a):
        img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(a, (2, 1, 0)), np.float32))
        img.SetSpacing([float(spacing)] * 3)
        return img

    fixed, moving = as_img(fixed_np), as_img(moving_np)
    disp_img = None
    n = len(iterations)
    for li, iters in enumerate(iterations):
        shrink = 2 ** (n - 1 - li)
        progress.update(li / n, f"nonlinear registration: level {li + 1}/{n}")
        f_l = sitk.Shrink(sitk.SmoothingRecursiveGaussian(fixed, 0.5 * spacing * shrink), [shrink] * 3) \
            if shrink > 1 else fixed
        m_l = sitk.Shrink(sitk.SmoothingRecursiveGaussian(moving, 0.5 * spacing * shrink), [shrink] * 3) \
            if shrink > 1 else moving
        demons = sitk.DiffeomorphicDemonsRegistrationFilter()
        demons.SetNumberOfIterations(int(iters))
        demons.SetStandardDeviations(smoothing_mm / (spacing * shrink))
        demons.SetSmoothDisplacementField(True)
        demons.SetSmoothUpdateField(True)
        demons.SetUpdateFieldStandardDeviations(1.0)
        demons.SetMaximumUpdateStepLength(2.0)
        demons.AddCommand(sitk.sitkIterationEvent, progress.check)
        if disp_img is None:
            disp_img = demons.Execute(f_l, m_l)
        else:
            init = sitk.Resample(disp_img, f_l, sitk.Transform(), sitk.sitkLinear, 0.0, disp_img.GetPixelID())
            disp_img = demons.Execute(f_l, m_l, init)
    assert disp_img is not None
    progress.update(1.0, "nonlinear registration done")
    return np.transpose(sitk.GetArrayFromImage(disp_img), (2, 1, 0, 3)).astype(np.float32)
