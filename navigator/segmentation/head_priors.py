"""Spatial priors of the whole head (brain, CSF, skull, soft tissue, eyes, air) in MNI space.

The priors ship with navigator (``navigator/data/priors/head_priors_mni.npz``, made by
``scripts/build_head_priors.py`` from the SAMSEG atlas of 20 manually labelled heads; see the
README beside the file). Unlike the MNI152 GM/WM templates, they cover the skull and the
extracranial soft tissue, which is what lets the mixture tell dark bone from dark CSF and
dark muscle from bone on a T1 by position rather than by intensity rules.

:func:`warp_head_priors` pulls them onto a subject grid given every voxel's MNI152 position
(from :class:`navigator.segmentation.register.Registration`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from navigator.core.errors import NavigatorError

#: Prior classes, in the order stored in the file and used by the mixture.
CLASSES: tuple[str, ...] = ("background", "wm", "gm", "deep_gm", "csf", "skull", "soft", "eyes")

#: Soft-tissue prior of head voxels beyond the atlas box (the rest is air).
OUTSIDE_ATLAS_SOFT = 0.95

_FILE = Path(__file__).resolve().parents[1] / "data" / "priors" / "head_priors_mni.npz"


@dataclass(eq=False)
class HeadPriors:
    """Prior probabilities on the atlas grid.

    Attributes:
        priors: (C, X, Y, Z) uint8, probability x 255, classes as :data:`CLASSES`.
        affine: 4x4 atlas voxel -> atlas mm (RAS).
        mni152_to_atlas: 4x4 MNI152 2009a mm -> atlas mm.
    """

    priors: np.ndarray
    affine: np.ndarray
    mni152_to_atlas: np.ndarray


@functools.lru_cache(maxsize=1)
def load_head_priors() -> HeadPriors:
    """Load (and cache) the shipped head priors."""
    if not _FILE.exists():
        raise NavigatorError(f"{_FILE}: head priors missing from the navigator installation; reinstall navigator")
    with np.load(_FILE) as z:
        names = tuple(str(c) for c in z["classes"])
        if names != CLASSES:
            raise NavigatorError(f"{_FILE}: unexpected prior classes {names}")
        return HeadPriors(z["priors"], np.asarray(z["affine"], float), np.asarray(z["mni152_to_atlas"], float))


def warp_head_priors(mni_coords: np.ndarray, priors: HeadPriors | None = None,
                     region: np.ndarray | None = None) -> np.ndarray:
    """Prior probabilities (C, *grid) float32 at voxels whose MNI152 positions are ``mni_coords``.

    Args:
        mni_coords: (X, Y, Z, 3) MNI152 mm of every voxel of the subject grid.
        region: optional bool mask; voxels outside it get the background prior 1.
    Returns:
        Probabilities that sum to 1 at every voxel (trilinear interpolation of the atlas
        priors; beyond the atlas box, which ends below the skull base: soft tissue 0.95, air 0.05).
    """
    hp = priors or load_head_priors()
    m = np.linalg.inv(hp.affine) @ hp.mni152_to_atlas
    shape = mni_coords.shape[:3]
    sel = np.ones(shape, bool) if region is None else region
    pts = mni_coords[sel].astype(np.float64)
    vox = pts @ m[:3, :3].T + m[:3, 3]
    c = len(CLASSES)
    out = np.zeros((c,) + shape, np.float32)
    vals = np.empty((c, len(vox)), np.float32)
    for k in range(c):
        vals[k] = ndi.map_coordinates(hp.priors[k], vox.T, order=1, mode="constant",
                                      cval=255.0 if k == 0 else 0.0, output=np.float32)
    # beyond the atlas box (below the skull base in the neck, mostly): soft tissue or air,
    # never an intensity-only guess between all classes
    outside = ((vox < 0) | (vox > np.array(hp.priors.shape[1:]) - 1)).any(axis=1)
    vals[:, outside] = 0.0
    vals[CLASSES.index("soft"), outside] = OUTSIDE_ATLAS_SOFT
    vals[0, outside] = 1.0 - OUTSIDE_ATLAS_SOFT
    vals /= np.maximum(vals.sum(axis=0, keepdims=True), 1e-6)
    for k in range(c):
        out[k][sel] = vals[k]
    if region is not None:
        out[0][~sel] = 1.0
    return out


#: Gaussian sigma (mm) of the smoothing of the registration's nonlinear displacement where it
#: folds, before the head priors are pulled through it (:func:`smooth_prior_warp`): the scale of
#: the layers the priors describe (scalp, skull, CSF: 2-6 mm each), above the demons' own 3 mm.
PRIOR_WARP_SMOOTHING_MM = 4.0
#: Local volume change (Jacobian determinant relative to the affine part) beyond which the field
#: counts as folded: a factor of 2 compression or expansion.
PRIOR_WARP_FOLD = 2.0


def warp_folds(mni_coords: np.ndarray, grid_affine: np.ndarray, affine_s2m: np.ndarray,
               fold: float = PRIOR_WARP_FOLD) -> np.ndarray:
    """Bool mask of the grid voxels where the subject -> MNI map changes volume by more than
    ``fold`` (or less than 1/``fold``) relative to its affine part."""
    g = [np.gradient(mni_coords[..., i].astype(np.float32)) for i in range(3)]  # d mni_i / d voxel_j
    det = (g[0][0] * (g[1][1] * g[2][2] - g[1][2] * g[2][1])
           - g[0][1] * (g[1][0] * g[2][2] - g[1][2] * g[2][0])
           + g[0][2] * (g[1][0] * g[2][1] - g[1][1] * g[2][0]))
    del g
    m = np.asarray(affine_s2m, float) @ np.asarray(grid_affine, float)
    rel = np.abs(det) / abs(float(np.linalg.det(m[:3, :3])))
    return (rel < 1.0 / fold) | (rel > fold)


def smooth_prior_warp(mni_coords: np.ndarray, grid_affine: np.ndarray, affine_s2m: np.ndarray,
                      sigma_mm: float = PRIOR_WARP_SMOOTHING_MM, fold: float = PRIOR_WARP_FOLD) -> np.ndarray:
    """MNI152 coordinates of the grid voxels with the warp's folds smoothed away.

    The subject -> MNI registration is driven by the brain's tissue image: at the brain's edge,
    where the template has nothing beyond the brain, its field can compress several mm of the
    subject into one MNI height and jump over the next ones (on Colin27 10 % of the head changes
    volume by more than a factor of 2; under the cerebellum 5 mm of the subject map to the same
    MNI height). Pulled through such a field the head priors lose their layers: the atlas's CSF
    and skull under the cerebellum are skipped and the subject's CSF and bone there get the soft
    tissue's prior. The priors describe smooth anatomical layers a few mm thick, so where the
    field folds (:func:`warp_folds`: volume change beyond a factor of ``fold``) they are pulled
    through the displacement smoothed by a Gaussian of ``sigma_mm``, blended into the unchanged
    field over the same distance; the affine part is kept exactly, and a regular field (the
    brain of a normal head) is left as it is. The registration itself (targets, MNI maps, the
    falx band) is unchanged, and :func:`align_priors_to_head` still corrects the remaining
    offset against this head's tissues.

    Args:
        mni_coords: (X, Y, Z, 3) MNI mm of every voxel of the grid under the registration.
        grid_affine: 4x4 voxel -> subject RAS mm of the grid.
        affine_s2m: 4x4 subject RAS mm -> MNI mm (the affine part of the registration).
    """
    shape = mni_coords.shape[:3]
    spacing = np.sqrt((np.asarray(grid_affine, float)[:3, :3] ** 2).sum(axis=0))
    sigma = [float(sigma_mm) / float(s) for s in spacing]
    folded = warp_folds(mni_coords, grid_affine, affine_s2m, fold)
    out = np.asarray(mni_coords, np.float32).copy()
    if sigma_mm <= 0 or not folded.any():
        return out
    weight = np.clip(2.0 * ndi.gaussian_filter(folded.astype(np.float32), sigma, mode="nearest"), 0.0, 1.0)
    del folded
    m = (np.asarray(affine_s2m, float) @ np.asarray(grid_affine, float)).astype(np.float32)
    ijk = np.ogrid[tuple(slice(0, n) for n in shape)]
    for k in range(3):
        affine_k = m[k, 0] * ijk[0] + m[k, 1] * ijk[1] + m[k, 2] * ijk[2] + m[k, 3]
        disp = out[..., k] - affine_k
        smooth = ndi.gaussian_filter(disp, sigma, mode="nearest")
        out[..., k] = affine_k + disp + weight * (smooth - disp)
    return out


#: Class values of the scalar "tissue image" that aligns the priors to a subject (see
#: :func:`head_tissue_image`): distinct, with the brain brightest and air darkest.
TISSUE_VALUES = {"background": 0.0, "wm": 5.0, "gm": 4.0, "deep_gm": 4.5, "csf": 2.0, "skull": 1.0,
                 "soft": 3.0, "eyes": 2.0}


def head_tissue_image(probabilities: np.ndarray) -> np.ndarray:
    """Expected tissue value sum_c v_c p_c of class probabilities (C, ...) (contrast-free image)."""
    v = np.array([TISSUE_VALUES[c] for c in CLASSES], np.float32)
    return np.tensordot(v, probabilities, axes=(0, 0)).astype(np.float32)


def atlas_tissue_image(grid_affine: np.ndarray, shape: tuple[int, int, int],
                       priors: HeadPriors | None = None) -> np.ndarray:
    """:func:`head_tissue_image` of the priors on an MNI152 grid (4x4 voxel -> MNI mm, shape)."""
    ijk = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"), -1)
    mni = ijk @ grid_affine[:3, :3].T.astype(np.float32) + grid_affine[:3, 3].astype(np.float32)
    return head_tissue_image(warp_head_priors(mni, priors))


def align_priors_to_head(subject_tissue: np.ndarray, subject_affine: np.ndarray, reg, mni_coords: np.ndarray,
                         iterations: tuple[int, ...] = (30, 30), smoothing_mm: float = 3.0,
                         priors: HeadPriors | None = None, progress=None) -> np.ndarray:
    """MNI152 coordinates of the subject voxels, corrected so the head priors fit this head.

    The subject <-> MNI registration is driven by the brain; outside it (skull, scalp) the
    priors follow the smooth extrapolation of that warp and can miss the subject's skull by
    several mm. This aligns the atlas's whole-head tissue image (:func:`atlas_tissue_image`)
    to the subject's (``subject_tissue``, from a first classification) with demons on the
    registration's MNI grid, and returns ``mni_coords`` (X, Y, Z, 3) moved by the inverse of
    that correction. The registration itself (used for targets and MNI maps) is unchanged.

    Args:
        subject_tissue: :func:`head_tissue_image` of the subject's first posteriors (its grid).
        subject_affine: 4x4 voxel -> subject RAS mm of that grid.
        reg: :class:`navigator.segmentation.register.Registration` with a nonlinear field.
        mni_coords: (X, Y, Z, 3) MNI152 mm of the subject voxels under ``reg``.
    """
    from navigator.segmentation.register import Registration, demons_on_grid, invert_displacement

    spacing = float(np.sqrt((reg.grid_affine[:3, :3] ** 2).sum(axis=0)).mean())
    shape = reg.disp.shape[:3]
    fixed = atlas_tissue_image(reg.grid_affine, shape, priors)
    subj = reg.mni_grid_to_subject().reshape(-1, 3)
    inv_aff = np.linalg.inv(subject_affine)
    vox = (subj @ inv_aff[:3, :3].T + inv_aff[:3, 3]).T
    moving = ndi.map_coordinates(ndi.gaussian_filter(subject_tissue, 0.5), vox, order=1, mode="constant",
                                 cval=0.0).reshape(shape).astype(np.float32)
    # beyond the image's field of view (a clipped cerebellum or vertex, a cut neck) the subject is
    # unknown, not air: there the atlas is matched to itself, so the demons do not pull the
    # priors away from a head that simply ends at the image border
    hi = np.array(subject_tissue.shape, float)[:, None] - 1.0
    outside = ((vox < 0.0) | (vox > hi)).any(axis=0).reshape(shape)
    moving[outside] = fixed[outside]
    disp = demons_on_grid(fixed, moving, spacing, iterations, smoothing_mm, progress=progress)
    # the correction is itself a map MNI -> MNI: identity affine plus the inverted field
    correction = Registration(np.eye(4), reg.grid_affine, disp, invert_displacement(disp, spacing))
    pts = mni_coords.reshape(-1, 3)
    out = np.empty_like(pts)
    for s in range(0, len(pts), 2_000_000):
        out[s:s + 2_000_000] = correction.subject_to_mni(pts[s:s + 2_000_000].astype(np.float64))
    return out.reshape(mni_coords.shape)
