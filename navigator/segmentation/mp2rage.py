"""MP2RAGE: the UNI image and the second inversion (INV2) -> a background-suppressed T1-weighted image.

An MP2RAGE acquisition (Marques et al. 2010, NeuroImage 49:1271) gives two gradient-echo
images at two inversion times (INV1, INV2) and their "uniform" combination

    UNI = Re(INV1 conj(INV2)) / (|INV1|^2 + |INV2|^2)     in [-0.5, 0.5],

a T1-weighted image free of receive bias and proton density. Where there is no signal (air,
and compact bone, whose T2* is far shorter than the echo time) UNI is the ratio of two noises
and spans the whole range: the head's outline and the skull vanish in salt-and-pepper noise,
and the segmentation refuses such an image (:func:`navigator.segmentation.preprocess.bright_noise_background`).

INV2 is a proton-density-like magnitude image with a dark background and a dark skull, from
the same acquisition (same grid, same head position). Two combinations are in use:

* ``"uni-x-inv2"`` (default): UNI shifted to [0, 1] times INV2 scaled to [0, 1] (INV2 divided
  by a high percentile of the head and clipped), the "MPRAGEised" UNI of presurfer
  (Kashyap), 3dMPRAGEise and SPM users. The background and the skull take INV2's darkness;
  brain contrast is UNI's, weighted by INV2's proton density and receive bias, as an MPRAGE is.
* ``"robust"``: the regularised combination of O'Brien et al. 2014 (PLoS ONE 9:e99676),
  (INV1 INV2 - beta) / (INV1^2 + INV2^2 + 2 beta), with INV1 recovered from UNI and INV2 (the
  root |INV1| <= INV2 of UNI = INV1 INV2 / (INV1^2 + INV2^2), exact wherever |UNI| is near 0.5
  or INV1 is the smaller signal, as in tissue and noise) and beta = (noise level of INV2)^2
  times :data:`ROBUST_FACTOR`^2. Voxels without signal go to -0.5 (black), tissue keeps UNI.

Which is the default was decided on a simulated 3T MP2RAGE of Colin27 (docs/validation.md,
"Segmentation of MP2RAGE scans": the two tie on tissue Dice; UNI x INV2 is better on the vault
skull, robust on the intracranial volume). Both UNI scalings are accepted: Siemens' unsigned
integers 0..4095 and the signed -0.5..0.5 floats of scanner-independent reconstructions (also
0..1).

Frames: every array here is on one voxel grid (the UNI's); :func:`inv2_on_uni_grid` puts the
INV2 there through world space (RAS mm, the images' affines). Intensities are unitless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from navigator.core.errors import InputError
from navigator.core.volume import Volume

#: Combinations of UNI and INV2 (:func:`combine`).
COMBINATIONS = ("uni-x-inv2", "robust")
#: The default combination (measured: docs/validation.md, "MP2RAGE").
DEFAULT_COMBINATION = "uni-x-inv2"
#: Siemens writes UNI as round((UNI + 0.5) * 4095).
SIEMENS_UNI_MAX = 4095.0
#: INV2 is scaled by this percentile of its above-noise voxels (a robust maximum: vessels and
#: fat are brighter than brain).
INV2_SCALE_PERCENTILE = 99.5
#: beta of the robust combination is (this factor x the INV2 noise standard deviation)^2.
ROBUST_FACTOR = 5.0
#: Below this fraction of the UNI's grid inside the INV2's field of view the two do not overlap.
MIN_OVERLAP = 0.5


@dataclass
class Mp2rageInfo:
    """What :func:`combine_volumes` did (JSON-ready through :meth:`to_json`).

    Attributes:
        combination: the combination used (:data:`COMBINATIONS`), None when INV2 was ignored.
        uni_scaling: "siemens-0-4095", "signed-0.5" or "unit-0-1".
        inv2_noise_sd: standard deviation of the INV2's background noise (INV2 units).
        inv2_scale: the INV2 value mapped to 1 (INV2 units).
        inv2_resampled: True when the INV2 was on another grid.
        coverage: fraction of the UNI grid inside the INV2's field of view.
        warnings: for the user (the image is not a raw UNI, part of it lies outside the INV2).
    """

    combination: str | None
    uni_scaling: str | None = None
    inv2_noise_sd: float | None = None
    inv2_scale: float | None = None
    inv2_resampled: bool = False
    coverage: float = 1.0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        r = (lambda x: None if x is None else round(float(x), 4))
        return {"combination": self.combination, "uni_scaling": self.uni_scaling,
                "inv2_noise_sd": r(self.inv2_noise_sd), "inv2_scale": r(self.inv2_scale),
                "inv2_resampled": self.inv2_resampled, "coverage": r(self.coverage)}


def looks_like_raw_uni(uni: Volume) -> bool:
    """Whether ``uni`` has the bright-noise background of a raw MP2RAGE UNI image (the test the
    segmentation refuses it by: :func:`navigator.segmentation.preprocess.bright_noise_background`,
    on the image shifted to start at 0 so the signed scaling counts too)."""
    from navigator.segmentation.preprocess import bright_noise_background

    data = np.asarray(uni.data, np.float32)
    if data.ndim != 3:
        return False
    return bool(bright_noise_background(data - float(data.min()), uni.spacing)[0])


def uni_to_signed(uni: np.ndarray) -> tuple[np.ndarray, str]:
    """UNI in any of its scalings -> float32 in [-0.5, 0.5]; returns (values, scaling name).

    Scalings: "signed-0.5" (values within [-0.5, 0.5], some negative), "unit-0-1" (within
    [0, 1]), "siemens-0-4095" (within [0, 4095], integer or not). Raises ValueError for
    anything else (an image that is not a UNI)."""
    u = np.asarray(uni, np.float32)
    lo, hi = float(u.min()), float(u.max())
    tol = 1e-3
    if lo < -tol and lo >= -0.5 - tol and hi <= 0.5 + tol:
        return np.clip(u, -0.5, 0.5), "signed-0.5"
    if lo >= -tol and hi <= 1.0 + tol and not np.issubdtype(np.asarray(uni).dtype, np.integer):
        return np.clip(u - 0.5, -0.5, 0.5), "unit-0-1"
    if lo >= -tol and hi <= SIEMENS_UNI_MAX * 1.001 + 1 and hi > 1.0:
        return np.clip(u / SIEMENS_UNI_MAX - 0.5, -0.5, 0.5), "siemens-0-4095"
    raise ValueError(f"values {lo:g}..{hi:g} are none of the UNI scalings (0..4095, -0.5..0.5, 0..1)")


def inv2_noise_sd(inv2: np.ndarray) -> float:
    """Standard deviation of the complex noise under a magnitude INV2 (INV2 units).

    The background air of a magnitude image is Rayleigh distributed, median = 1.1774 sigma; the
    air is the part below the log-intensity air/tissue split
    (:func:`navigator.segmentation.preprocess.air_tissue_threshold`). Zero-filled voxels (a
    masked or padded background) are left out. 0 when there is no air (a noiseless image)."""
    from navigator.segmentation.preprocess import air_tissue_threshold

    sample = np.asarray(inv2[::2, ::2, ::2], np.float32)
    split = air_tissue_threshold(sample)
    air = sample[(sample > 0) & (sample < split)]
    if air.size < 100:
        return 0.0
    return float(np.median(air)) / 1.1774


def inv2_scale(inv2: np.ndarray, noise_sd: float) -> float:
    """The INV2 value taken as 1: the :data:`INV2_SCALE_PERCENTILE` percentile of the voxels
    above the noise (10 noise standard deviations, or the air/tissue split without noise)."""
    from navigator.segmentation.preprocess import air_tissue_threshold

    sample = np.asarray(inv2[::2, ::2, ::2], np.float32)
    floor = 10.0 * noise_sd if noise_sd > 0 else air_tissue_threshold(sample)
    tissue = sample[sample > floor]
    if tissue.size == 0:
        tissue = sample[sample > 0]
    return float(np.percentile(tissue, INV2_SCALE_PERCENTILE)) if tissue.size else 1.0


def combine(uni_signed: np.ndarray, inv2: np.ndarray, combination: str = DEFAULT_COMBINATION,
            noise_sd: float | None = None, scale: float | None = None) -> np.ndarray:
    """Background-suppressed T1-weighted image from UNI (in [-0.5, 0.5], :func:`uni_to_signed`)
    and a magnitude INV2 on the same grid; float32 in [0, 1] (air and compact bone near 0).

    ``noise_sd`` and ``scale`` (INV2 units) default to :func:`inv2_noise_sd` and
    :func:`inv2_scale` of ``inv2``. See the module docstring for the combinations."""
    if combination not in COMBINATIONS:
        raise ValueError(f"unknown MP2RAGE combination {combination!r} (choose from {', '.join(COMBINATIONS)})")
    u = np.clip(np.asarray(uni_signed, np.float32), -0.5, 0.5)
    i2 = np.abs(np.asarray(inv2, np.float32))
    if u.shape != i2.shape:
        raise ValueError(f"UNI {u.shape} and INV2 {i2.shape} are not on one grid")
    if noise_sd is None:
        noise_sd = inv2_noise_sd(i2)
    if scale is None:
        scale = inv2_scale(i2, noise_sd)
    scale = max(float(scale), 1e-12)
    if combination == "uni-x-inv2":
        return ((u + 0.5) * np.clip(i2 / scale, 0.0, 1.0)).astype(np.float32)
    # robust (O'Brien 2014) with INV1 = r INV2, r = 2U / (1 + sqrt(1 - 4U^2)) (the root |r| <= 1,
    # written so it is stable at U = 0), on INV2 scaled to 1 so beta does not depend on units
    r = 2.0 * u / (1.0 + np.sqrt(np.clip(1.0 - 4.0 * u * u, 0.0, None)))
    i2n = i2 / scale
    beta = (ROBUST_FACTOR * noise_sd / scale) ** 2
    if beta <= 0:
        beta = 1e-6
    s = i2n * i2n
    robust = (r * s - beta) / (s * (1.0 + r * r) + 2.0 * beta)
    return np.clip(robust + 0.5, 0.0, 1.0).astype(np.float32)


def inv2_on_uni_grid(uni: Volume, inv2: Volume, inv2_path: Any = None) -> tuple[Volume, float, bool]:
    """The INV2 on the UNI's grid (world RAS mm, trilinear), the fraction of the UNI grid inside
    the INV2's field of view, and whether it was resampled.

    No registration: INV2 and UNI come from one acquisition and share the scanner's world
    space. Raises :class:`InputError` naming ``inv2_path`` when the INV2 is not a 3-D image or
    its field of view covers less than :data:`MIN_OVERLAP` of the UNI's."""
    from navigator.segmentation.preprocess import resample

    path = inv2_path if inv2_path is not None else inv2.source
    if np.asarray(inv2.data).ndim != 3:
        raise InputError(path, f"the INV2 must be a 3-D image, got shape {np.asarray(inv2.data).shape}")
    if inv2.shape == uni.shape and np.allclose(inv2.affine, uni.affine, atol=1e-3):
        return inv2, 1.0, False
    inside = resample(Volume(np.ones(inv2.shape, np.uint8), inv2.affine), uni.affine, uni.shape, order=0)
    coverage = float(np.mean(inside.data > 0))
    if coverage < MIN_OVERLAP:
        raise InputError(path, f"the INV2 covers {100 * coverage:.0f} % of the UNI's field of view: not the same "
                         "acquisition (or not in the same scanner space); give the INV2 of this MP2RAGE")
    out = resample(Volume(np.abs(np.asarray(inv2.data, np.float32)), inv2.affine), uni.affine, uni.shape, order=1)
    return out, coverage, True


def check_inv2(uni: Volume, inv2: Volume, inv2_path: Any = None) -> tuple[Volume, float, bool]:
    """:func:`inv2_on_uni_grid`, and an :class:`InputError` naming ``inv2_path`` when the INV2
    has a bright-noise background itself (a UNI given twice, not the second inversion)."""
    from navigator.segmentation.preprocess import bright_noise_background

    path = inv2_path if inv2_path is not None else inv2.source
    i2, coverage, resampled = inv2_on_uni_grid(uni, inv2, path)
    if bright_noise_background(np.clip(np.asarray(i2.data, np.float32), 0, None), i2.spacing)[0]:
        raise InputError(path, "this image's background is bright noise, as in a UNI: give the second "
                         "inversion (INV2) magnitude image of the MP2RAGE")
    return i2, coverage, resampled


def combine_volumes(uni: Volume, inv2: Volume, combination: str = DEFAULT_COMBINATION,
                    uni_path: Any = None, inv2_path: Any = None) -> tuple[Volume, Mp2rageInfo]:
    """The background-suppressed T1-weighted image of a UNI and its INV2, on the UNI's grid.

    When the UNI has no bright-noise background (an MPRAGE, a denoised UNI-DEN, an already
    suppressed UNI) it is returned unchanged with a warning: it segments as it is. Raises
    :class:`InputError` naming the file for an INV2 that does not overlap the UNI, an INV2
    that itself has a bright-noise background (a second UNI), or a UNI outside the UNI
    scalings."""
    uni_path = uni_path if uni_path is not None else uni.source
    inv2_path = inv2_path if inv2_path is not None else inv2.source
    raw = np.asarray(uni.data)
    if raw.ndim != 3:
        raise InputError(uni_path, f"expected a 3-D image, got shape {raw.shape}")
    i2, coverage, resampled = check_inv2(uni, inv2, inv2_path)
    i2d = np.asarray(i2.data, np.float32)
    if not looks_like_raw_uni(uni):
        info = Mp2rageInfo(None, coverage=coverage, inv2_resampled=resampled)
        info.warnings.append("the T1 has a dark background, so it is not a raw MP2RAGE UNI image (an MPRAGE, a "
                             "denoised UNI-DEN or an already background-suppressed UNI): the INV2 was not used")
        return uni, info
    try:
        u, scaling = uni_to_signed(raw)
    except ValueError as exc:
        raise InputError(uni_path, f"not an MP2RAGE UNI image: {exc}") from None
    noise = inv2_noise_sd(i2d)
    scale = inv2_scale(i2d, noise)
    out = combine(u, i2d, combination, noise_sd=noise, scale=scale)
    info = Mp2rageInfo(combination, scaling, noise, scale, resampled, coverage)
    if coverage < 0.98:
        info.warnings.append(f"the INV2 covers {100 * coverage:.0f} % of the UNI's field of view; the rest is "
                             "treated as background")
    meta = {**dict(uni.meta), "mp2rage": info.to_json()}
    return Volume(out * 1000.0, uni.affine.copy(), source=uni.source, meta=meta), info
