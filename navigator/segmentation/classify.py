"""Preliminary brain classification (WM / GM / CSF) that drives the nonlinear registration.

An expectation-maximisation fit of a Gaussian mixture to the bias-corrected T1 (and T2 when
given), voxel-wise weighted by the MNI152 GM / WM / CSF priors warped into the subject
(SPM-style "unified" classification, without re-estimating the warp). Two extra classes
(dark and bright non-brain tissue) absorb dura, bone and fat near the brain; their prior is
what the brain priors leave. CSF has an extra prior band just outside the template brain
mask (the subarachnoid space the brain-only template lacks).

The final labels of the whole head come from :mod:`navigator.segmentation.head_mixture`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from navigator.core.progress import Progress, ensure_progress


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
