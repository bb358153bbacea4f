"""Synthetic MR contrast for the phantom: tissue intensities, bias field, Rician noise.

Intensities are relative (T1: white matter = 1; T2: CSF = 1) and jittered per seed; the
scanner scale is applied when the image is stored as uint16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from navigator.core.tissues import COMPACT_BONE, CSF, EYES, GM, SCALP, SPONGY_BONE, WM

#: Base relative intensities: tissue -> (T1, T2). Soft tissue (label 5) is split by depth below
#: the skin into skin, subcutaneous fat and muscle/galea (keys "skin", "fat", "muscle").
BASE_CONTRAST: dict[str, tuple[float, float]] = {
    "air": (0.0, 0.0),
    "wm": (1.0, 0.32),
    "gm": (0.62, 0.46),
    "csf": (0.17, 1.0),
    "skin": (0.72, 0.42),
    "fat": (1.08, 0.58),
    "muscle": (0.48, 0.24),
    "eyes": (0.14, 0.95),
    "compact_bone": (0.05, 0.04),
    "spongy_bone": (0.52, 0.30),
}

#: Depth (distance from the voxel centre to the nearest voxel centre outside the head, mm;
#: 1 for the outermost layer) up to which soft tissue is skin, then subcutaneous fat.
SKIN_MM = 2.2
FAT_END_MM = 5.2


@dataclass
class Contrast:
    """Relative tissue intensities for one seed: name -> (T1, T2)."""

    values: dict[str, tuple[float, float]]

    @classmethod
    def random(cls, rng: np.random.Generator, jitter: float = 0.08) -> Contrast:
        vals = {}
        for name, (a, b) in BASE_CONTRAST.items():
            f1, f2 = rng.uniform(1 - jitter, 1 + jitter, size=2)
            vals[name] = (a * f1, b * f2)
        return cls(vals)


def synthesize(labels: np.ndarray, p_wm: np.ndarray, p_gm: np.ndarray, brain: np.ndarray, depth: np.ndarray,
               contrast: Contrast, which: int) -> np.ndarray:
    """Noise-free relative image (float32) from labels (``which`` 0: T1, 1: T2).

    Inside the brain mask the intensity is the partial-volume mix of the WM, GM and CSF
    fractions; elsewhere it is the tissue's value (soft tissue by depth below the skin).
    """
    v = {k: np.float32(t[which]) for k, t in contrast.values.items()}
    img = np.zeros(labels.shape, np.float32)
    soft = labels == SCALP
    img[soft] = v["muscle"]
    img[soft & (depth < FAT_END_MM)] = v["fat"]
    img[soft & (depth < SKIN_MM)] = v["skin"]
    for lab, key in ((CSF, "csf"), (EYES, "eyes"), (COMPACT_BONE, "compact_bone"), (SPONGY_BONE, "spongy_bone"),
                     (WM, "wm"), (GM, "gm")):
        img[labels == lab] = v[key]
    p_csf = np.clip(1.0 - p_wm - p_gm, 0.0, 1.0)
    mix = p_wm * v["wm"] + p_gm * v["gm"] + p_csf * v["csf"]
    img[brain] = mix[brain]
    return img


def smooth_random_field(shape: tuple[int, int, int], rng: np.random.Generator, scale_mm: float = 80.0) -> np.ndarray:
    """Smooth random field (float32) varying over ~``scale_mm`` (1 mm voxels), scaled to
    [-1, 1] over the central half of the grid (up to +-1.5 near the edges).

    Drawn on a coarse grid, smoothed there and linearly interpolated to ``shape``.
    """
    step = 8
    coarse_shape = tuple(int(np.ceil((s - 1) / step)) + 2 for s in shape)
    coarse = ndi.gaussian_filter(rng.normal(size=coarse_shape), scale_mm / step / 2, mode="reflect")
    # normalise on the central part of the grid (where the head is): |f| <= 1 there
    centre = tuple(slice(k // 4, k - k // 4) for k in coarse.shape)
    coarse -= coarse[centre].mean()
    coarse /= np.abs(coarse[centre]).max() + 1e-12
    coords = [np.arange(s, dtype=np.float32) / step for s in shape]
    mats = [_interp_matrix(c, n) for c, n in zip(coords, coarse_shape)]
    out = np.tensordot(mats[0], coarse.astype(np.float32), axes=(1, 0))
    out = np.tensordot(mats[1], out, axes=(1, 1)).transpose(1, 0, 2)
    out = np.ascontiguousarray(np.tensordot(out, mats[2], axes=(2, 1)), dtype=np.float32)
    return np.clip(out, -1.5, 1.5, out=out)


def _interp_matrix(pos: np.ndarray, n: int) -> np.ndarray:
    """(len(pos), n) linear interpolation weights at fractional positions ``pos`` of n samples."""
    lo = np.clip(np.floor(pos).astype(int), 0, n - 2)
    w = (pos - lo).astype(np.float32)
    m = np.zeros((len(pos), n), np.float32)
    rows = np.arange(len(pos))
    m[rows, lo] = 1 - w
    m[rows, lo + 1] += w
    return m


def acquire(image: np.ndarray, rng: np.random.Generator, bias_amplitude: float = 0.2, noise_fraction: float = 0.025,
            reference: float = 1.0, psf_sigma_mm: float = 0.7) -> np.ndarray:
    """Simulate acquisition of a noise-free relative image (1 mm voxels): Gaussian PSF
    (partial volume), smooth multiplicative bias ``exp(a f)`` with f in [-1, 1] over the central
    half of the grid (the head), and Rician
    noise of standard deviation ``noise_fraction * reference``. Returns float32 >= 0."""
    out = ndi.gaussian_filter(image, psf_sigma_mm, mode="constant")
    out *= np.exp(np.float32(bias_amplitude) * smooth_random_field(image.shape, rng))
    sigma = np.float32(noise_fraction * reference)
    re = rng.standard_normal(image.shape, dtype=np.float32)
    re *= sigma
    re += out
    im = rng.standard_normal(image.shape, dtype=np.float32)
    im *= sigma
    np.hypot(re, im, out=re)
    return re
