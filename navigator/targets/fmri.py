"""Personalized DLPFC target from resting-state fMRI (SAINT-style functional targeting).

The DLPFC cluster whose activity is most anticorrelated with the subgenual cingulate (sgACC),
following Fox et al. 2012 and the SAINT protocol (Cole et al. 2020):

1. the 4-D series is checked (>= ``MIN_VOLUMES`` volumes) and its mean image is registered
   rigidly to the T1 (SimpleITK, Mattes mutual information); a registration whose brain mask
   overlaps the T1's brain poorly is refused;
2. each voxel's series is linearly detrended, band-pass filtered (0.01-0.1 Hz) and the global
   brain signal is regressed out;
3. the seed series is the mean in a sphere (``SEED_RADIUS_MM``) at the sgACC MNI coordinate
   mapped to the subject;
4. within a left-DLPFC search region (spheres around the BA46, BA9 and Fox coordinates, grey
   matter only when labels exist) the voxels in the most-anticorrelated ``PERCENTILE`` % are
   grouped in 26-connected clusters; the cluster with the largest summed anticorrelation wins;
5. the target is the cluster's correlation-weighted centroid, in subject scanner RAS mm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from navigator.core.errors import InputError, NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.volume import Volume

log = logging.getLogger("navigator")

MIN_VOLUMES = 60
SEED_RADIUS_MM = 10.0
SEARCH_RADIUS_MM = 20.0
PERCENTILE = 10.0
MIN_BRAIN_OVERLAP = 0.5
SEARCH_CENTRES_MNI = ((-44.0, 40.0, 29.0), (-36.0, 39.0, 43.0), (-38.0, 44.0, 26.0))


@dataclass
class FmriTarget:
    point: np.ndarray  # subject RAS mm
    correlation: float  # mean correlation of the winning cluster with the seed
    peak_correlation: float
    cluster_voxels: int
    cluster_volume_mm3: float
    seed_point: np.ndarray  # subject RAS mm
    n_volumes: int
    registration: dict = field(default_factory=dict)


def fmri_target(series: Volume, t1: Volume, *, mni_to_subject, brain_mask: Volume | None = None,
                gm_mask: Volume | None = None, tr_s: float | None = None,
                progress: Progress | None = None) -> FmriTarget:
    """Find the personalized target (see module docstring).

    Args:
        series: 4-D resting-state series (X, Y, Z, T), world = its scanner RAS mm.
        t1: the subject's T1 (defines subject space).
        mni_to_subject: callable mapping (N, 3) MNI mm -> (N, 3) subject RAS mm.
        brain_mask, gm_mask: optional masks on any grid in subject space (e.g. from labels).
        tr_s: repetition time in seconds (from the header when None).
    """
    progress = ensure_progress(progress)
    data = np.asarray(series.data, dtype=np.float32)
    if data.ndim != 4:
        raise InputError(series.source, "resting-state fMRI must be a 4-D series")
    n = data.shape[3]
    if n < MIN_VOLUMES:
        raise InputError(series.source, f"series too short: {n} volumes, need at least {MIN_VOLUMES} "
                                        "(about 5 minutes) for a stable correlation map")
    tr = tr_s or float(series.meta.get("tr_s") or 0) or 2.0
    progress.update(0.05, "registering the mean fMRI image to the T1")
    mean = Volume(data.mean(axis=3), series.affine, source=series.source)
    epi_to_t1, reg_info = _register_rigid(mean, t1, brain_mask)
    progress.update(0.4, "filtering")
    epi_brain = _epi_brain_mask(mean)
    ts = data[epi_brain].astype(np.float64)  # (V, T)
    ts = _clean(ts, tr)
    progress.update(0.6, "seed correlation")
    vox_world_epi = mean.voxel_to_world(np.argwhere(epi_brain))
    vox_subject = _apply(epi_to_t1, vox_world_epi)
    from navigator.targets.library import SGACC_SEED_MNI

    seed = mni_to_subject(np.array([SGACC_SEED_MNI]))[0]
    in_seed = np.linalg.norm(vox_subject - seed, axis=1) <= SEED_RADIUS_MM
    if in_seed.sum() < 3:
        raise NavigatorError("the sgACC seed falls outside the fMRI brain coverage; check the field of view")
    seed_ts = ts[in_seed].mean(axis=0)
    r = _correlate(ts, seed_ts)
    centres = mni_to_subject(np.array(SEARCH_CENTRES_MNI))
    d = np.min(np.linalg.norm(vox_subject[:, None, :] - centres[None], axis=2), axis=1)
    search = d <= SEARCH_RADIUS_MM
    if gm_mask is not None:
        search &= _sample_mask(gm_mask, vox_subject)
    if search.sum() < 5:
        raise NavigatorError("the DLPFC search region has too few fMRI voxels; check coverage and registration")
    progress.update(0.8, "clustering")
    thr = np.percentile(r[search], PERCENTILE)
    chosen = search & (r <= min(thr, 0.0))
    if not chosen.any():
        raise NavigatorError("no DLPFC voxels are anticorrelated with the sgACC in this series")
    label_img = np.zeros(mean.shape, np.int32)
    idx = np.argwhere(epi_brain)[chosen]
    label_img[tuple(idx.T)] = 1
    from scipy import ndimage as ndi

    comp, ncomp = ndi.label(label_img, structure=np.ones((3, 3, 3)))
    comp_of = comp[tuple(idx.T)]
    rc = r[chosen]
    scores = np.array([-rc[comp_of == c].sum() for c in range(1, ncomp + 1)])
    best = int(np.argmax(scores)) + 1
    sel = comp_of == best
    w = -rc[sel]
    pts = vox_subject[chosen][sel]
    point = (pts * w[:, None]).sum(axis=0) / w.sum()
    voxel_volume = float(abs(np.linalg.det(series.affine[:3, :3])))
    progress.update(1.0, "done")
    return FmriTarget(point=point, correlation=float(rc[sel].mean()), peak_correlation=float(rc[sel].min()),
                      cluster_voxels=int(sel.sum()), cluster_volume_mm3=float(sel.sum() * voxel_volume),
                      seed_point=seed, n_volumes=n, registration=reg_info)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:3, :3].T + m[:3, 3]


def _epi_brain_mask(mean: Volume) -> np.ndarray:
    from skimage.filters import threshold_otsu

    img = np.asarray(mean.data)
    mask = img > threshold_otsu(img[np.isfinite(img)])
    from scipy import ndimage as ndi

    mask = ndi.binary_fill_holes(ndi.binary_opening(mask, iterations=1))
    return mask


def _clean(ts: np.ndarray, tr: float) -> np.ndarray:
    """Detrend, band-pass 0.01-0.1 Hz, regress the global signal, z-score. ts: (V, T)."""
    from scipy import signal

    ts = signal.detrend(ts, axis=1)
    nyq = 0.5 / tr
    lo, hi = 0.01 / nyq, min(0.1 / nyq, 0.99)
    if lo < hi:
        b, a = signal.butter(2, [lo, hi], btype="band")
        ts = signal.filtfilt(b, a, ts, axis=1)
    g = ts.mean(axis=0)
    g = g - g.mean()
    if g @ g > 0:
        ts = ts - np.outer(ts @ g / (g @ g), g)
    sd = ts.std(axis=1, keepdims=True)
    return (ts - ts.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1)


def _correlate(ts: np.ndarray, seed: np.ndarray) -> np.ndarray:
    s = (seed - seed.mean()) / (seed.std() or 1)
    return ts @ s / len(s)


def _sample_mask(mask: Volume, pts: np.ndarray) -> np.ndarray:
    ijk = np.rint(mask.world_to_voxel(pts)).astype(int)
    ok = ((ijk >= 0) & (ijk < np.array(mask.shape))).all(axis=1)
    out = np.zeros(len(pts), bool)
    out[ok] = np.asarray(mask.data)[tuple(ijk[ok].T)] > 0
    return out


def _register_rigid(moving: Volume, fixed: Volume, brain_mask: Volume | None) -> tuple[np.ndarray, dict]:
    """Rigid EPI -> T1 registration; returns the 4x4 world(EPI) -> world(T1) matrix and QC."""
    import SimpleITK as sitk

    def to_sitk(v: Volume) -> sitk.Image:
        # world RAS -> ITK LPS: flip x and y
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        a = flip @ v.affine
        img = sitk.GetImageFromArray(np.asarray(v.data, np.float32).transpose(2, 1, 0))
        sp = np.sqrt((a[:3, :3] ** 2).sum(axis=0))
        img.SetSpacing(sp.tolist())
        img.SetOrigin(a[:3, 3].tolist())
        img.SetDirection((a[:3, :3] / sp).ravel().tolist())
        return img

    f, m = to_sitk(fixed), to_sitk(moving)
    init = sitk.CenteredTransformInitializer(f, m, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.1, seed=1)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(2.0, 0.01, 200)
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2, 1, 0])
    # start from the scanner alignment (identity) when both images share a session
    start = sitk.Euler3DTransform()
    start.SetCenter(init.GetCenter())
    reg.SetInitialTransform(start, inPlace=False)
    tx = reg.Execute(f, m)
    # ITK maps fixed (T1, LPS) points to moving (EPI, LPS) points; invert for EPI -> T1.
    eul = sitk.Euler3DTransform(sitk.CompositeTransform(tx).GetNthTransform(0)) if isinstance(tx, sitk.CompositeTransform) else sitk.Euler3DTransform(tx)
    R = np.array(eul.GetMatrix()).reshape(3, 3)
    c = np.array(eul.GetCenter())
    t = np.array(eul.GetTranslation())
    fixed_to_moving_lps = np.eye(4)
    fixed_to_moving_lps[:3, :3] = R
    fixed_to_moving_lps[:3, 3] = t + c - R @ c
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    t1_to_epi = flip @ fixed_to_moving_lps @ flip
    epi_to_t1 = np.linalg.inv(t1_to_epi)
    info = {"metric": float(reg.GetMetricValue()), "iterations": int(reg.GetOptimizerIteration()),
            "epi_to_t1": epi_to_t1.tolist()}
    if brain_mask is not None:
        epi_mask = _epi_brain_mask(moving)
        pts = moving.voxel_to_world(np.argwhere(epi_mask)[::7])
        inside = _sample_mask(brain_mask, _apply(epi_to_t1, pts))
        # fraction of the T1 brain's extent covered vs EPI brain voxels landing in the T1 head
        overlap = float(inside.mean()) if len(inside) else 0.0
        info["epi_brain_inside_t1_brain"] = overlap
        if overlap < MIN_BRAIN_OVERLAP:
            raise NavigatorError(
                f"{moving.source}: the fMRI series does not line up with the T1 after registration "
                f"(only {overlap:.0%} of its brain falls inside the T1 brain); check that it is the same subject")
    return epi_to_t1, info


def fmri_target_workspace(ws, rest_path, *, tr_s: float | None = None, name: str = "fmri",
                          progress: Progress | None = None) -> FmriTarget:
    """Run :func:`fmri_target` for a workspace and save the result as user target ``name``.

    The series is copied into ``input/rest.nii.gz`` (source "rest"); grey-matter and brain
    masks come from ``labels/labels.nii.gz`` when present.
    """
    from navigator.core.tissues import CSF, GM, WM
    from navigator.io.images import load_image, save_nifti
    from navigator.targets.head import Head

    series = load_image(rest_path, allow_4d=True)
    if series.data.ndim != 4:
        raise InputError(rest_path, "resting-state fMRI must be a 4-D series")
    if tr_s is None:
        tr_s = series.meta.get("tr_s")
    save_nifti(series, ws.path("rest"))
    ws.add_source("rest", ws.path("rest"), original=rest_path)
    ctx = Head.of(ws)
    t1 = load_image(ws.source_path("T1"))
    brain = gm = None
    if ws.path("labels").exists():
        labels = load_image(ws.path("labels"))
        lab = np.asarray(labels.data)
        brain = labels.with_data(np.isin(lab, (WM, GM, CSF)).astype(np.uint8))
        gm = labels.with_data((lab == GM).astype(np.uint8))
    res = fmri_target(series, t1, mni_to_subject=ctx.require_transform().mni_to_subject, brain_mask=brain,
                      gm_mask=gm, tr_s=tr_s, progress=progress)
    ctx.save_user_target(name, {
        "point": res.point.tolist(), "space": "subject", "kind": "cortical",
        "description": f"personalized DLPFC target: cluster anticorrelated with the sgACC (r = {res.correlation:.2f})",
        "reference": "Fox et al. 2012; Cole et al. 2020 (SAINT)",
        "correlation": res.correlation, "peak_correlation": res.peak_correlation,
        "cluster_volume_mm3": res.cluster_volume_mm3, "n_volumes": res.n_volumes,
    })
    return res
