"""The whole head segmentation on in-memory volumes: T1 (optional T2) -> labels + MNI transform.

Stages (progress fraction in brackets):

1. working grid, head mask, N4 bias correction, intensity normalisation; a T2 is registered
   rigidly to the T1 (:mod:`navigator.segmentation.coregister`) and resampled onto its grid [0-0.15]
2. affine registration to MNI152 [0.15-0.35]
3. preliminary tissue mixture with affinely warped priors [0.35-0.45]
4. nonlinear (demons) registration of the tissue image [0.45-0.6]
5-6. tissue labels, by ``params["method"]`` (:data:`METHODS`) [0.6-0.85]:
   "intensity-rules" (default): final brain mixture with the MNI152 priors, head surface at the
   air/tissue midpoint, skull, scalp, eyes and air from intensities and geometry;
   "head-priors": whole-head mixture with the head priors (:mod:`~navigator.segmentation.head_priors`,
   :mod:`~navigator.segmentation.head_mixture`), the priors aligned to this head's tissues, the
   mixture again, labels with the anatomy's nesting (:mod:`~navigator.segmentation.head_labels`)
7. labels onto the T1 grid, neck cut, topology repair and checks [0.85-1]

:func:`segment_head` raises :class:`~navigator.core.errors.InputError` for inputs that are not
whole-head MRIs (skull-stripped brains, non-head images) and returns warnings for partial
fields of view.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from navigator.core.errors import InputError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.tissues import EYES
from navigator.core.transforms import MniTransform, apply_affine
from navigator.core.volume import Volume
from navigator.segmentation import (
    bias,
    classify,
    cleanup,
    coregister,
    head_labels,
    head_mixture,
    head_priors,
    preprocess,
    register,
)
from navigator.segmentation.templates import load_templates

log = logging.getLogger("navigator")

#: Default parameters (recorded in the workspace manifest).
DEFAULT_PARAMS: dict[str, Any] = {
    "bias_shrink_mm": 8.0,
    "demons_smoothing_mm": 3.0,
    "demons_iterations": [40, 60],
    "neck_cut_mni_z": cleanup.NECK_CUT_MNI_Z,
    "field_spacing_mm": 2.0,
    "method": "head-priors",
}

#: Segmentation methods (``params["method"]``): "head-priors" (the default) classifies the whole
#: head with the shipped SAMSEG head priors (right on real scans: docs/segmentation.md, "Method
#: `head-priors`"); "intensity-rules" finds the skull and scalp by intensity rules around the
#: brain mixture (the earlier default, kept for comparison: it turns face and neck muscle into
#: bone speckle on real scans).
METHODS = ("intensity-rules", "head-priors")


@dataclass
class SegmentationResult:
    """Everything :func:`segment_head` produces.

    Attributes:
        labels: uint8 SimNIBS labels on the T1's (RAS-reoriented) grid.
        t1: bias-corrected, normalised T1 on the same grid (for QC overlays).
        registration: the subject <-> MNI mapping.
        transform: the mapping in the workspace format (deformation fields).
        metrics: volumes, thickness, topology and registration figures (JSON-ready).
        warnings: human-readable warnings (partial field of view, missing eyes, ...).
    """

    labels: Volume
    t1: Volume
    registration: register.Registration
    transform: MniTransform
    metrics: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _check_t1(vol: Volume, path: Any) -> None:
    if vol.data.ndim != 3:
        raise InputError(path, f"expected a 3-D image, got shape {vol.data.shape}")
    sp = vol.spacing
    if sp.max() > 3.0 or sp.min() < 0.3:
        raise InputError(path, f"voxel size {np.round(sp, 2).tolist()} mm is outside 0.3-3 mm; "
                         "segmentation needs a structural MRI of about 1 mm")
    ext = sp * np.array(vol.shape)
    if ext.max() < 100:
        raise InputError(path, f"field of view {np.round(ext).tolist()} mm is too small for a head")
    if not np.isfinite(vol.data).all() or float(np.ptp(vol.data)) <= 0:
        raise InputError(path, "image is constant or contains NaN/inf values")


def segment_head(t1: Volume, t2: Volume | None = None, progress: Progress | None = None,
                 params: dict[str, Any] | None = None) -> SegmentationResult:
    """Segment a whole-head T1 (optionally with a T2 of the same subject) into SimNIBS labels.

    Both volumes are in scanner RAS mm (as loaded by :func:`navigator.io.images.load_image`);
    the T2 is registered rigidly to the T1 (mutual information; the identity is kept when it
    is already aligned) and resampled onto the T1 grid. Returns labels on the T1's grid.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    progress = ensure_progress(progress)
    warnings: list[str] = []
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    tick = [t_start]

    def lap(name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - tick[0], 2)
        tick[0] = now

    _check_t1(t1, t1.source)
    t1, clipped_t1 = _without_offset_and_spikes(t1, "the image", warnings)
    clipped_t2 = 0
    if t2 is not None:
        t2, clipped_t2 = _without_offset_and_spikes(t2, "the T2", warnings)
    if clipped_t1 or clipped_t2:
        log.info("clipped %d (T1) and %d (T2) voxels brighter than %.0f x the 99.9th percentile",
                 clipped_t1, clipped_t2, preprocess.OUTLIER_CEILING)
    if p["method"] not in METHODS:
        raise InputError(t1.source, f"unknown segmentation method {p['method']!r} (choose from {', '.join(METHODS)})")
    tm = load_templates()

    # ---- 1. working grid, head mask, bias correction ------------------------------------
    progress.update(0.0, "resampling")
    w_aff, w_shape = preprocess.working_grid(t1)
    work = preprocess.resample(t1, w_aff, w_shape, order=1)
    sp = float(np.mean(work.spacing))
    vox_ml = float(np.prod(work.spacing)) / 1000.0
    raw = np.clip(np.asarray(work.data, np.float32), 0, None)
    noisy, bright_fraction, roughness = preprocess.bright_noise_background(raw, work.spacing)
    if noisy:
        raise InputError(t1.source, f"the air around the head is noise as bright as tissue ({100 * bright_fraction:.0f} % "
                         f"of the image's outer {preprocess.BORDER_SHELL_MM:.0f} mm; roughness {roughness:.2f}), "
                         "as in an MP2RAGE UNI image: the head's outline cannot be found. Give the MP2RAGE's "
                         "second inversion too (navigator prepare UNI --inv2 INV2, or in the app Subject > "
                         "Add MP2RAGE INV2), or the denoised UNI (UNI-DEN) or an MPRAGE")
    head = preprocess.head_mask(raw, work.spacing)
    head_ml = head.sum() * vox_ml
    if head_ml < 1000:
        raise InputError(t1.source, f"the image holds only {head_ml:.0f} ml of tissue; not a whole-head MRI")
    progress.update(0.03, "bias-field correction")
    corr = preprocess.n4_bias_correct(raw, w_aff, head, shrink_mm=float(p["bias_shrink_mm"]))
    t1n = preprocess.normalize_intensity(corr, head)
    t2n = None
    t2_reg = None
    if t2 is not None:
        progress.update(0.06, "registering the T2 to the T1")
        t2_reg = coregister.register_t2_to_t1(t1n, w_aff, head, t2, progress=progress.sub(0.06, 0.12, "T2 -> T1"))
        if t2_reg.applied and (t2_reg.shift_mm > 2.0 or t2_reg.rotation_deg > 2.0):
            warnings.append(f"the T2 was not aligned with the T1: registered (moved {t2_reg.shift_mm:.1f} mm, "
                            f"rotated {t2_reg.rotation_deg:.1f} degrees)")
        t2w = coregister.t2_on_t1_grid(t2, t2_reg, w_aff, w_shape)
        t2c = preprocess.n4_bias_correct(np.clip(t2w.data, 0, None), w_aff, head,
                                         shrink_mm=float(p["bias_shrink_mm"]))
        t2n = preprocess.normalize_intensity(t2c, head)
    lap("preprocess")

    # ---- 2. affine registration ---------------------------------------------------------
    progress.check()
    s2m, mi = register.affine_register(t1n, w_aff, head, tm, progress=progress.sub(0.15, 0.35, "MNI affine"))
    scales = np.linalg.svd(s2m[:3, :3], compute_uv=False)
    if scales.max() > 1.6 or scales.min() < 0.6:
        raise InputError(t1.source, "could not register the image to the MNI152 brain template "
                         f"(scales {np.round(scales, 2).tolist()}); is this a T1-weighted head MRI?")
    lap("affine_registration")

    # ---- 3. preliminary classification with affine priors --------------------------------
    aff_reg = register.Registration(s2m, np.eye(4))
    mni_coords = aff_reg.subject_grid_to_mni(w_aff, w_shape)
    priors, region = _warp_priors(tm, mni_coords, head)
    _check_t1_contrast(t1n, priors, region, t1.source)
    cls0 = classify.gmm_brain(t1n, priors, region, None, iterations=12,
                              progress=progress.sub(0.35, 0.42, "tissue mixture (affine)"))
    _check_brain(cls0, head, vox_ml, t1.source)
    # the bias N4 left, seen inside the brain's own tissue classes (bias.py); then classify again
    progress.update(0.42, "residual bias field")
    confident = [cls0.wm > 0.9, cls0.gm > 0.9]
    field = bias.tissue_bias_field(t1n, head, confident, sp)
    bias_range = None
    if field is not None:
        brain = cls0.wm + cls0.gm > 0.5
        bias_range = [round(float(q), 3) for q in np.percentile(field[brain], [1, 99])]
        t1n = preprocess.normalize_intensity(t1n / field, head)
        if t2n is not None:
            field_t2 = bias.tissue_bias_field(t2n, head, confident, sp)
            if field_t2 is not None:
                t2n = preprocess.normalize_intensity(t2n / field_t2, head)
        del field
        cls0 = classify.gmm_brain(t1n, priors, region, None, iterations=12,
                                  progress=progress.sub(0.42, 0.45, "tissue mixture (bias corrected)"))
    lap("classify_affine")

    # ---- 4. nonlinear registration ------------------------------------------------------
    tissue = register.tissue_image(cls0.csf * (1 - cls0.other), cls0.gm, cls0.wm)
    reg = register.nonlinear_register(tissue, w_aff, s2m, tm, iterations=tuple(p["demons_iterations"]),
                                      smoothing_mm=float(p["demons_smoothing_mm"]),
                                      progress=progress.sub(0.45, 0.6, "MNI nonlinear"))
    lap("nonlinear_registration")

    # ---- 5-6. tissue labels on the working grid --------------------------------------------
    if p["method"] == "head-priors":
        wl, intracranial, tissue_means = _labels_head_priors(t1n, t2n, head, reg, w_aff, w_shape, sp, progress, lap)
    else:
        wl, intracranial, tissue_means = _labels_intensity_rules(t1n, t2n, head, reg, tm, w_aff, w_shape, sp,
                                                                 progress, lap)
    icv_ml = intracranial.sum() * vox_ml
    if head_ml < 1.35 * icv_ml:
        raise InputError(t1.source, f"head volume {head_ml:.0f} ml is barely larger than the intracranial "
                         f"volume {icv_ml:.0f} ml: this looks like a skull-stripped (brain-only) image; "
                         "segmentation needs the whole head with skull and scalp")

    # ---- 7. back to the T1 grid, neck cut, repairs ---------------------------------------
    progress.update(0.85, "topology repair")
    if np.allclose(w_aff, t1.affine) and w_shape == t1.shape:
        out = wl
        t1_out = t1n
    else:
        out = preprocess.resample(Volume(wl, w_aff), t1.affine, t1.shape, order=0).data.astype(np.uint8)
        t1_out = preprocess.resample(Volume(t1n, w_aff), t1.affine, t1.shape, order=1).data
    cut = cleanup.neck_cut_mask(t1.shape, t1.affine, s2m, float(p["neck_cut_mni_z"]))
    warnings.extend(_fov_warnings(t1, out, reg, cut))
    out_vox_mm3 = float(np.prod(t1.spacing))
    out = cleanup.repair(out, cut, out_vox_mm3, progress=progress.sub(0.85, 0.97, "topology repair"))
    topo = cleanup.check_topology(out, cut, out_vox_mm3)
    lap("cleanup")

    labels_vol = Volume(out.astype(np.uint8), t1.affine.copy(), source="navigator segment")
    transform = reg.to_mni_transform(t1.affine, t1.shape, float(p["field_spacing_mm"]))
    from navigator.segmentation.qc import segmentation_metrics

    metrics = segmentation_metrics(labels_vol, reg, topo, tissue_means, tm, mi, t1=np.asarray(t1.data))
    if metrics["orbits_zero_filled"]:
        warnings.append("the face has been removed from the image (the orbits hold no signal: a defaced scan); "
                        "the eyes are not labelled, and fiducials where the scalp is missing are placed from the "
                        "MNI template")
    elif not (out == EYES).any():
        warnings.append("eyes not found (field of view or contrast); no eye label")
    if t2_reg is not None:
        metrics["t2_registration"] = t2_reg.to_json()
    # 1st and 99th percentile over the brain of the residual bias field removed after N4
    metrics["residual_bias_range"] = bias_range
    # spikes / hot voxels clipped before anything else (preprocess.clip_bright_outliers)
    metrics["clipped_outlier_voxels"] = {"t1": clipped_t1, "t2": clipped_t2}
    metrics["warnings"] = list(warnings)
    timings["total"] = round(time.perf_counter() - t_start, 2)
    metrics["timings_s"] = timings
    if not topo.ok:
        warnings.append(f"topology checks failed after repair: {topo.to_json()}")
    progress.update(1.0, "segmentation done")
    return SegmentationResult(labels_vol, Volume(t1_out.astype(np.float32), t1.affine.copy()), reg, transform,
                              metrics, warnings, timings)


def _labels_intensity_rules(t1n, t2n, head, reg, tm, w_aff, w_shape, sp, progress, lap):
    """Brain mixture with the MNI152 priors, skull and scalp by intensity rules (the default)."""
    mni_coords = reg.subject_grid_to_mni(w_aff, w_shape)
    priors, region = _warp_priors(tm, mni_coords, head)
    # the brain mixture uses the T1 only (the T2 serves the skull/CSF boundary below)
    cls = classify.gmm_brain(t1n, priors, region, None, progress=progress.sub(0.6, 0.68, "tissue mixture"))
    tmpl_brain = register.warp_template_to_subject(tm.brain.astype(np.float32), tm.affine, mni_coords) > 0.5
    labels, intracranial = classify.brain_labels(cls, tmpl_brain, sp)
    lap("classify")
    progress.update(0.7, "skull and scalp")
    # the generous head mask (kept for N4 and registration) ends one partial-volume layer
    # outside the skin; the tissue labels use the surface at the air/tissue midpoint
    head = preprocess.refine_head_surface(t1n, head, sp) | intracranial
    dark_thr, _soft = _extracranial_levels(t1n, head, intracranial, cls)
    eye_vox = apply_affine(np.linalg.inv(w_aff), reg.mni_to_subject(classify.EYE_CENTRES_MNI))
    labels = classify.extracranial_labels(labels, intracranial, head, t1n, t2n, sp, eye_vox, dark_thr,
                                          progress=progress.sub(0.7, 0.85, "skull and scalp"))
    lap("extracranial")
    return labels, intracranial, cls.means[:3]


def _labels_head_priors(t1n, t2n, head, reg, w_aff, w_shape, sp, progress, lap):
    """Whole-head mixture with the SAMSEG head priors aligned to this head."""
    # the generous head mask of step 1 is the region (the air class of the mixture is fixed at
    # the noise level of the air around the head); the skin ends at the air/skin midpoint
    mni_coords = reg.subject_grid_to_mni(w_aff, w_shape)
    falx = head_labels.falx_band(mni_coords)
    # the priors' layers (scalp, skull, CSF) follow the registration's displacement, smoothed over
    # their own thickness where it folds at the brain's edge (head_priors.smooth_prior_warp)
    mni_coords = head_priors.smooth_prior_warp(mni_coords, w_aff, reg.affine_s2m)
    hp = head_priors.warp_head_priors(mni_coords, region=head)
    first = head_mixture.fit_head_mixture(t1n, hp, head, t2n, smoothing=0.0,
                                          progress=progress.sub(0.6, 0.66, "head tissue mixture"))
    lap("classify_first")
    progress.update(0.66, "aligning the head priors")
    mni_head = head_priors.align_priors_to_head(head_priors.head_tissue_image(first.full_posteriors()), w_aff,
                                                reg, mni_coords, progress=progress.sub(0.66, 0.74, "head priors"))
    del first
    hp = head_priors.warp_head_priors(mni_head, region=head)
    del mni_head, mni_coords
    lap("align_head_priors")
    mix = head_mixture.fit_head_mixture(t1n, hp, head, t2n, progress=progress.sub(0.74, 0.8, "head tissue mixture"))
    lap("classify")
    progress.update(0.8, "skull and scalp")
    wl, intracranial = head_labels.labels_from_mixture(mix, t1n, sp, hp, t2n, falx)
    # the mixture gives the outermost partial-volume voxels (mostly air) to the skin's classes;
    # the skin ends at the air/skin midpoint, as with intensity-rules
    wl[~(preprocess.refine_head_surface(t1n, head, sp) | intracranial)] = 0
    lap("labels")
    return wl, intracranial, mix.brain_means()


def _warp_priors(tm, mni_coords: np.ndarray, head: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Tissue priors on the subject grid and the region where the brain mixture is fitted."""
    w = register.warp_template_to_subject
    priors = {"wm": w(tm.wm, tm.affine, mni_coords), "gm": w(tm.gm, tm.affine, mni_coords),
              "csf": w(tm.csf_band, tm.affine, mni_coords)}
    dist = w(tm.outside_distance, tm.affine, mni_coords)
    inside_box = w(np.ones(tm.brain.shape, np.float32), tm.affine, mni_coords) > 0.5
    region = head & inside_box & (dist <= 8.0)
    return priors, region


def _without_offset_and_spikes(vol: Volume, what: str, warnings: list[str]) -> tuple[Volume, int]:
    """``vol`` with its air moved to 0 (:func:`preprocess.remove_intensity_offset`, warned about
    as ``what``) and its spikes clipped (:func:`preprocess.clip_bright_outliers`; their count)."""
    vol, offset = preprocess.remove_intensity_offset(vol)
    if offset:
        warnings.append(f"the air of {what} is at intensity {offset:.4g}, not 0 (an offset added in conversion?): "
                        "the intensities were shifted to put it at 0")
    return preprocess.clip_bright_outliers(vol)


#: Tissue cores for the contrast check: voxels where the affine-mapped MNI152 prior of WM
#: exceeds 0.95, of GM or CSF 0.9 (deep white matter, cortex and deep nuclei, ventricles).
CONTRAST_CORE_PRIOR = {"wm": 0.95, "gm": 0.9, "csf": 0.9}


def _check_t1_contrast(t1n: np.ndarray, priors: dict[str, np.ndarray], region: np.ndarray, source: Any) -> None:
    """Refuse an image that is not T1-weighted, from the median intensity of the tissue cores
    (:data:`CONTRAST_CORE_PRIOR`) after the affine registration: a T1 has WM > GM > CSF (GM/WM
    0.60-0.84 on Colin27, IXI015, the phantom and their gamma/bias/defaced copies); a T2 or PD
    image has CSF above WM, a FLAIR GM above WM (GM/WM 1.2-1.4 on FLAIR-like copies)."""
    med = {}
    for key, level in CONTRAST_CORE_PRIOR.items():
        core = region & (priors[key] > level)
        if core.sum() < 1000:
            return  # registration too far off to judge; the brain checks that follow will say so
        med[key] = float(np.median(t1n[core]))
    if med["csf"] >= med["wm"]:
        raise InputError(source, "CSF is as bright as white matter or brighter: the image does not look "
                         "T1-weighted (a T2-weighted or proton-density image?); give the T1-weighted image as the "
                         "main image (a T2 can be added beside it)")
    if med["gm"] >= med["wm"]:
        raise InputError(source, "grey matter is as bright as white matter or brighter: the image does not look "
                         "T1-weighted (a FLAIR or proton-density image?); give a T1-weighted image (MPRAGE, SPGR, "
                         "MP2RAGE)")


def _check_brain(cls: classify.BrainClasses, head: np.ndarray, vox_ml: float, source: Any) -> None:
    brain_ml = float((cls.wm + cls.gm).sum()) * vox_ml
    head_ml = float(head.sum()) * vox_ml
    if head_ml < 1.6 * brain_ml:
        raise InputError(source, f"head volume {head_ml:.0f} ml is barely larger than the brain ({brain_ml:.0f} ml): "
                         "this looks like a skull-stripped (brain-only) image; segmentation needs the whole "
                         "head with skull and scalp")
    if brain_ml < 500 or brain_ml > 2500:
        raise InputError(source, f"found {brain_ml:.0f} ml of brain tissue where MNI152 expects the brain; "
                         "is this a T1-weighted MRI of a human head?")


def _extracranial_levels(t1n: np.ndarray, head: np.ndarray, intracranial: np.ndarray,
                         cls: classify.BrainClasses) -> tuple[float, float]:
    """(dark threshold, soft-tissue level) for the extracranial classification.

    Dark = below the midpoint between the CSF mean and the soft-tissue level, where soft
    tissue is the median of the head voxels more than 2 mm outside the intracranial space
    that are brighter than CSF (scalp, muscle, fat).
    """
    csf_mean = float(cls.means[2, 0])
    gm_mean = float(cls.means[1, 0])
    outside = head & ~ndi.binary_dilation(intracranial, iterations=2)
    vals = t1n[outside]
    soft = float(np.median(vals[vals > csf_mean])) if (vals > csf_mean).any() else gm_mean
    thr = min(0.5 * (csf_mean + soft), 0.5 * (csf_mean + gm_mean) + 0.1 * (gm_mean - csf_mean))
    thr = max(thr, csf_mean + 0.25 * (gm_mean - csf_mean))
    return thr, soft


def _fov_warnings(t1: Volume, labels: np.ndarray, reg: register.Registration, cut: np.ndarray) -> list[str]:
    """Warn when the image ends inside the head above the neck cut (cut nose, cut top, ...)."""
    out = []
    head = labels > 0
    names = {(0, 0): "left", (0, 1): "right", (1, 0): "back (posterior)", (1, 1): "front (anterior; nose/face)",
             (2, 0): "bottom (neck)", (2, 1): "top (vertex)"}
    for ax in range(3):
        for side in (0, 1):
            sl = [slice(None)] * 3
            sl[ax] = 0 if side == 0 else -1
            face = head[tuple(sl)] & ~cut[tuple(sl)]
            area = face.sum() * float(np.prod(np.delete(t1.spacing, ax)))
            if area > 200.0:
                out.append(f"the image is cut at the {names[(ax, side)]} through the head "
                           f"({area / 100:.0f} cm^2 of tissue on the border); tissue beyond it is missing")
    return out
