"""Tissue classification.

Brain (WM / GM / CSF)
    An expectation-maximisation fit of a Gaussian mixture to the bias-corrected T1 (and T2 when
    given), voxel-wise weighted by the MNI152 GM / WM / CSF priors warped into the subject
    (SPM-style "unified" classification, without re-estimating the warp). Two extra classes
    (dark and bright non-brain tissue) absorb dura, bone and fat near the brain; their prior is
    what the brain priors leave. CSF has an extra prior band just outside the template brain
    mask (the subarachnoid space the brain-only template lacks).

Extracranial (skull, scalp, eyes, air)
    From intensities and geometry in subject space (:func:`extracranial_labels`): the skull is
    the dark (compact bone) band around the intracranial space, with brighter marrow enclosed in
    it as spongy bone, plus the dark facial bone connected to it; scalp is every other head
    voxel outside the skull; eyes are the CSF-like blobs in the orbits (positions from MNI);
    thick dark regions inside the bone (sinuses, mastoid air) are air (label 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from navigator.core.progress import Progress, ensure_progress
from navigator.core.tissues import COMPACT_BONE, CSF, EYES, GM, SCALP, SPONGY_BONE, WM

#: MNI (mm) centres of the eye balls (left, right); ICBM152 orbits.
EYE_CENTRES_MNI = np.array([[-32.0, 57.0, -35.0], [32.0, 57.0, -35.0]])


@dataclass
class BrainClasses:
    """Posterior probabilities (float32, working grid) and fitted class parameters."""

    wm: np.ndarray
    gm: np.ndarray
    csf: np.ndarray
    other: np.ndarray
    means: np.ndarray  # (K, F) class means (normalised intensity units)
    region: np.ndarray  # bool mask where the mixture was fitted


def _features(t1: np.ndarray, t2: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    f = [t1[mask]]
    if t2 is not None:
        f.append(t2[mask])
    return np.stack(f, axis=1).astype(np.float64)


def gmm_brain(t1: np.ndarray, priors: dict[str, np.ndarray], region: np.ndarray, t2: np.ndarray | None = None,
              iterations: int = 20, floor: float = 0.03, max_fit: int = 300_000,
              progress: Progress | None = None) -> BrainClasses:
    """Prior-weighted EM Gaussian mixture on ``region`` voxels.

    Args:
        t1, t2: normalised intensities on the working grid (t2 optional, same grid).
        priors: ``wm``, ``gm``, ``csf`` probability maps on the same grid (warped MNI priors).
        region: bool mask of the voxels to classify (intracranial space plus a margin).
        floor: minimum prior of every class (tolerates registration errors).
    Returns:
        :class:`BrainClasses` with posteriors that sum to 1 inside ``region`` (0 outside).
    """
    progress = ensure_progress(progress)
    x_all = _features(t1, t2, region)
    pri_all = _prior_matrix(priors, region, floor)
    # fit on a regular subsample (<= max_fit voxels), then one E-step on every voxel
    stride = max(1, int(np.ceil(len(x_all) / max_fit)))
    x = x_all[::stride]
    pri = pri_all[::stride]
    n, nf = x.shape
    k = pri.shape[1]
    # initial parameters: prior-weighted moments, non-brain split into dark / bright halves
    resp = pri.copy()
    dark = x[:, 0] < np.median(x[:, 0])
    resp[:, 3] *= dark
    resp[:, 4] *= ~dark
    resp /= np.maximum(resp.sum(axis=1, keepdims=True), 1e-12)
    means = np.zeros((k, nf))
    covs = np.zeros((k, nf, nf))
    weights = np.ones(k)
    for it in range(iterations):
        # M-step
        for j in range(k):
            r = resp[:, j]
            s = r.sum() + 1e-9
            means[j] = (r[:, None] * x).sum(axis=0) / s
            d = x - means[j]
            covs[j] = (r[:, None, None] * (d[:, :, None] * d[:, None, :])).sum(axis=0) / s if nf > 1 else \
                np.array([[float((r * d[:, 0] ** 2).sum() / s)]])
            covs[j] += np.eye(nf) * 1e-4
            weights[j] = s / n
        # keep class order by T1 brightness for the brain classes: WM > GM > CSF (T1-weighted)
        # E-step
        new = _posteriors(x, pri, means, covs, weights)
        change = np.abs(new - resp).max()
        resp = new
        progress.update((it + 1) / iterations, f"tissue mixture: iteration {it + 1}")
        if change < 1e-3:
            break
    resp = _posteriors(x_all, pri_all, means, covs, weights)
    out = []
    for j in range(3):
        a = np.zeros(t1.shape, np.float32)
        a[region] = resp[:, j]
        out.append(a)
    oth = np.zeros(t1.shape, np.float32)
    oth[region] = resp[:, 3] + resp[:, 4]
    return BrainClasses(out[0], out[1], out[2], oth, means, region)


def _prior_matrix(priors: dict[str, np.ndarray], region: np.ndarray, floor: float) -> np.ndarray:
    pw, pg, pc = (priors[k][region].astype(np.float32) for k in ("wm", "gm", "csf"))
    other = 1.0 - np.clip(pw + pg + pc, 0, 1)
    pri = np.stack([pw, pg, pc, 0.5 * other, 0.5 * other], axis=1) + np.float32(floor)
    pri /= pri.sum(axis=1, keepdims=True)
    return pri


def _posteriors(x: np.ndarray, pri: np.ndarray, means: np.ndarray, covs: np.ndarray,
                weights: np.ndarray) -> np.ndarray:
    n, k = pri.shape
    logp = np.empty((n, k), np.float64)
    for j in range(k):
        inv = np.linalg.inv(covs[j])
        d = x - means[j]
        maha = np.einsum("ni,ij,nj->n", d, inv, d) if x.shape[1] > 1 else d[:, 0] ** 2 * inv[0, 0]
        logp[:, j] = -0.5 * maha - 0.5 * np.log(np.linalg.det(covs[j])) + np.log(weights[j] + 1e-12)
    logp += np.log(pri)
    logp -= logp.max(axis=1, keepdims=True)
    np.exp(logp, out=logp)
    logp /= logp.sum(axis=1, keepdims=True)
    return logp


def largest_component(mask: np.ndarray, connectivity: int = 1) -> np.ndarray:
    lab, n = ndi.label(mask, structure=ndi.generate_binary_structure(3, connectivity))
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def ball(radius_vox: float) -> np.ndarray:
    r = int(np.ceil(radius_vox))
    g = np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1]
    return (g ** 2).sum(axis=0) <= radius_vox ** 2 + 1e-6


def dilate_mm(mask: np.ndarray, mm: float, spacing: float) -> np.ndarray:
    """Euclidean dilation by ``mm`` (via a distance transform)."""
    if mm <= 0:
        return mask.copy()
    return ndi.distance_transform_edt(~mask) * spacing <= mm + 1e-6


def erode_mm(mask: np.ndarray, mm: float, spacing: float) -> np.ndarray:
    if mm <= 0:
        return mask.copy()
    return ndi.distance_transform_edt(mask) * spacing > mm + 1e-6


def close_mm(mask: np.ndarray, mm: float, spacing: float) -> np.ndarray:
    pad = int(np.ceil(mm / spacing)) + 2
    m = np.pad(mask, pad)
    m = erode_mm(dilate_mm(m, mm, spacing), mm, spacing)
    return m[pad:-pad, pad:-pad, pad:-pad] | mask


def brain_labels(cls: BrainClasses, tmpl_brain: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels with 1/2/3 inside the intracranial space, intracranial mask) from posteriors.

    The brain is the largest connected WM+GM component with holes filled (ventricles inside
    become CSF); the intracranial space is the brain closed by 4 mm plus the voxels the mixture
    calls CSF within 5 mm of it, and at least a 1-voxel CSF rim.
    """
    post = np.stack([cls.wm, cls.gm, cls.csf, cls.other], axis=0)
    arg = np.argmax(post, axis=0)
    inreg = cls.region
    brain = inreg & ((arg == 0) | (arg == 1))
    brain = largest_component(brain)
    # drop thin bridges to non-brain tissue (opening), then keep the main part
    main = largest_component(ndi.binary_opening(brain, iterations=1))
    brain = largest_component(brain & ndi.binary_dilation(main, iterations=1))
    closed = close_mm(brain, 4.0, spacing)
    inside = ndi.binary_fill_holes(closed)
    csf_like = inreg & (arg == 2)
    near = dilate_mm(inside, 4.0, spacing)
    csf_ext = largest_component(inside | (csf_like & near))
    intracranial = ndi.binary_fill_holes(csf_ext | (tmpl_brain & near & csf_like))
    intracranial |= dilate_mm(brain, spacing * 1.01, spacing)
    intracranial = ndi.binary_fill_holes(intracranial)
    labels = np.zeros(brain.shape, np.uint8)
    labels[intracranial] = CSF
    wm_win = post[0] >= post[1]
    labels[brain & wm_win] = WM
    labels[brain & ~wm_win] = GM
    return labels, intracranial


def extracranial_labels(labels: np.ndarray, intracranial: np.ndarray, head: np.ndarray, t1: np.ndarray,
                        t2: np.ndarray | None, spacing: float, eye_centres_vox: np.ndarray | None,
                        dark_threshold: float,
                        progress: Progress | None = None) -> np.ndarray:
    """Add skull (7/8), scalp (5), eyes (6) and air (0) to ``labels`` (modified copy); returns it.
    Whether eyes were found is judged on the final labels, by
    :func:`navigator.segmentation.pipeline.segment_head`.

    Args:
        labels: labels inside the intracranial space (1/2/3), 0 elsewhere.
        intracranial: bool intracranial mask.
        head: bool head mask (air outside is False).
        t1, t2: normalised intensities (t2 may be None).
        spacing: voxel size (mm, isotropic working grid).
        eye_centres_vox: (2, 3) voxel positions of the expected eye centres (or None).
        dark_threshold: T1 level below which a voxel is "dark" (compact bone, air, CSF).
    """
    progress = ensure_progress(progress)
    out = labels.copy()
    region = head & ~intracranial
    if t2 is not None:
        # bone and air are dark in both; CSF and eyes are bright in T2: veto them
        dark = region & (t1 < dark_threshold) & (t2 < 0.6)
    else:
        dark = region & (t1 < dark_threshold)
    depth = ndi.distance_transform_edt(head) * spacing  # mm from air outside
    d_ic = ndi.distance_transform_edt(~intracranial) * spacing  # mm from intracranial space
    progress.update(0.15, "skull: dark band")

    # eyes: CSF-like (dark T1 / bright T2) blobs around the expected orbit centres
    eyes = np.zeros_like(head)
    if eye_centres_vox is not None:
        grid = np.indices(head.shape, dtype=np.float32)
        for c in eye_centres_vox:
            if not np.all((c >= 0) & (c < np.array(head.shape))):
                continue
            r = np.sqrt(sum((grid[a] - c[a]) ** 2 for a in range(3))) * spacing
            zone = (r <= 20.0) & region & (depth >= 2.0)
            cand = zone & dark if t2 is None else zone & (t2 > np.percentile(t2[head], 70))
            lab, n = ndi.label(cand)
            if n == 0:
                continue
            sizes = np.bincount(lab.ravel())
            sizes[0] = 0
            blob = lab == int(np.argmax(sizes))
            cen = np.argwhere(blob).mean(axis=0)
            rb = np.sqrt(sum((grid[a] - cen[a]) ** 2 for a in range(3))) * spacing
            eye = ndi.binary_fill_holes((rb <= 12.5) & (blob | (rb <= 10.0)) & region)
            if eye.sum() * spacing ** 3 > 2000:  # at least 2 ml: a real eye ball
                eyes |= eye
        del grid
    if eyes.any():
        eyes &= d_ic > 2.0 * spacing
    progress.update(0.35, "skull: shell")

    # cranial skull: dark voxels within 15 mm of the intracranial space and 2 mm under the skin,
    # connected to the intracranial boundary; closed so marrow between the tables is enclosed
    cand = dark & (d_ic <= 15.0) & (depth >= 1.5) & ~eyes
    ring = dilate_mm(intracranial, 1.5 * spacing, spacing) & ~intracranial
    lab, n = ndi.label(cand)
    touching = np.unique(lab[ring & cand])
    touching = touching[touching > 0]
    shell = np.isin(lab, touching)
    # facial / skull-base bone: dark regions deeper than 3 mm below the skin connected to the shell
    deep_dark = dark & (depth >= 3.0) & ~eyes
    lab2, _ = ndi.label(deep_dark | shell)
    keep = np.unique(lab2[shell])
    keep = keep[keep > 0]
    bone = np.isin(lab2, keep) & (deep_dark | shell)
    solid = close_mm(bone | intracranial, 3.0, spacing)
    solid = ndi.binary_fill_holes(solid)
    skull = solid & region & ~eyes & (depth >= 1.0)
    progress.update(0.6, "skull: marrow and air")

    # air cavities: dark voxels more than 3 mm inside dark tissue, grown back by 3 mm inside it,
    # kept away (>= 2 voxels) from the intracranial space and the eyes so they stay enclosed
    dark_depth = ndi.distance_transform_edt(dark) * spacing
    core = (dark_depth > 3.0) & (t1 < 0.5 * dark_threshold)
    air = dilate_mm(core, 3.0, spacing) & dark & (d_ic > 2.0 * spacing + 1.0)
    if eyes.any():
        air &= ~dilate_mm(eyes, 2.0 * spacing, spacing)
    air &= depth > 3.0
    # No extra growth of the outer table into the scalp: a voxel that is half bone, half soft
    # tissue (T1 midway between compact bone, ~0, and soft tissue) is already below the dark
    # threshold and part of the shell; growing further only turns muscle (darker than fat and
    # skin, close to the dark threshold) into bone.
    compact = skull & dark & ~air
    spongy = skull & ~dark
    scalp = region & ~skull & ~eyes
    scalp |= region & air & ~skull  # dark regions outside the skull are soft tissue (muscle)
    out[scalp] = SCALP
    out[compact] = COMPACT_BONE
    out[spongy] = SPONGY_BONE
    out[skull & air] = 0
    out[eyes] = EYES
    progress.update(1.0, "extracranial tissues done")
    return out
