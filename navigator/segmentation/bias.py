"""Residual intensity bias after N4, measured on the brain's own tissue classes.

N4 (:func:`navigator.segmentation.preprocess.n4_bias_correct`) sharpens the histogram of the
whole head without knowing which voxel is which tissue. A receive-coil field that brightens the
periphery (phased-array head coils without intensity normalisation) is then only partly
removed: the scalp's fat is bright at the periphery anyway, so brightening there sharpens
nothing N4 can see. On Colin27 with such a field (x1.0 at the centre to x2.0 at the scalp),
the white matter left after N4 was still 14 % brighter at 60-90 mm from the brain's centre
than at its centre, which moved the WM/GM and CSF levels by more than the noise.

Once a first tissue classification exists, the field is seen directly: inside the interior
of one tissue class (white matter, grey matter) the true intensity is nearly constant, so the
smooth variation of log intensity there is the bias. :func:`tissue_bias_field` fits that
variation with a low-order polynomial of position over the interiors of the given classes
(jointly with one intensity level per class), which is the segmentation-driven bias model of SPM and FAST
reduced to its smooth part. The polynomial is evaluated over the head with the coordinates
held within a margin of the fitted region (no runaway extrapolation into the neck) and the
field within :data:`FIELD_LIMITS`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: Degree of the polynomial bias field (3: 20 terms; a head coil's field varies over
#: 5-10 cm, and a cubic follows a radial brightening without following anatomy).
DEGREE = 3
#: The field is evaluated with each coordinate held within this margin (mm) of the fitted
#: voxels' extent (the scalp over the brain is within it, the lower neck is not).
MARGIN_MM = 20.0
#: Lowest and highest multiplicative field applied.
FIELD_LIMITS = (0.5, 2.0)
#: Fitted voxels (a regular subsample of the class interiors).
MAX_FIT_VOXELS = 200_000
#: Share of the fitted voxels with the largest residuals dropped before the final fit
#: (partial-volume and misclassified voxels).
TRIM = 0.1


def _monomials(x: np.ndarray, degree: int) -> np.ndarray:
    """(N, M) products x^i y^j z^k with i + j + k <= degree of the (N, 3) scaled coordinates."""
    cols = [x[:, 0] ** i * x[:, 1] ** j * x[:, 2] ** k
            for i in range(degree + 1) for j in range(degree + 1 - i) for k in range(degree + 1 - i - j)]
    return np.stack(cols, axis=1)


def tissue_bias_field(image: np.ndarray, head: np.ndarray, class_masks: list[np.ndarray], spacing: float,
                      degree: int = DEGREE) -> np.ndarray | None:
    """Multiplicative bias field (float32, image grid, median 1 over ``head``; 1 outside it).

    Args:
        image: positive intensities (already N4-corrected) on the working grid.
        head: bool mask of the head; the field is evaluated there.
        class_masks: bool masks of voxels confidently in one tissue class each (e.g. posterior
            > 0.9); their interiors (one voxel eroded) are fitted, each class with its own level.
        spacing: voxel size (mm, isotropic working grid).
    Returns None when the classes leave too few voxels to fit (fewer than 1,000).
    """
    points, labels = [], []
    for k, mask in enumerate(class_masks):
        idx = np.argwhere(ndi.binary_erosion(mask) & (image > 0))
        points.append(idx)
        labels.append(np.full(len(idx), k))
    if sum(len(p) for p in points) < 1000:
        return None
    idx = np.concatenate(points)
    label = np.concatenate(labels)
    stride = max(1, len(idx) // MAX_FIT_VOXELS)
    idx, label = idx[::stride], label[::stride]
    y = np.log(image[tuple(idx.T)]).astype(np.float64)
    idx = idx.astype(np.float64)
    centre = idx.mean(axis=0)
    scale = np.maximum(idx.std(axis=0) * 2.0, 1.0)
    lo = idx.min(axis=0) - MARGIN_MM / spacing
    hi = idx.max(axis=0) + MARGIN_MM / spacing
    # log I = log(level of the voxel's class) + log field: one offset column per class and the
    # polynomial without its constant (the classes are nested, the WM inside the GM, so
    # offsets fitted apart would take up the radial part of the field)
    classes = np.unique(label)
    a = np.concatenate([_monomials((idx - centre) / scale, degree)[:, 1:],
                        (label[:, None] == classes[None, :]).astype(np.float64)], axis=1)
    n_poly = a.shape[1] - len(classes)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    resid = np.abs(y - a @ coef)
    keep = resid <= np.quantile(resid, 1.0 - TRIM)
    coef, *_ = np.linalg.lstsq(a[keep], y[keep], rcond=None)
    coef = coef[:n_poly]

    head_idx = np.argwhere(head).astype(np.float64)
    log_field = np.empty(len(head_idx))
    for s in range(0, len(head_idx), 1_000_000):  # (N, 20) float64 design in chunks
        chunk = (np.clip(head_idx[s:s + 1_000_000], lo, hi) - centre) / scale
        log_field[s:s + 1_000_000] = _monomials(chunk, degree)[:, 1:] @ coef
    log_field -= np.median(log_field)
    field = np.ones(image.shape, np.float32)
    field[head] = np.clip(np.exp(log_field), *FIELD_LIMITS)
    return field
