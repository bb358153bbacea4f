"""The scalp for the EEG construction when the image lacks part of the head (a defaced face).

Defacing zeroes the face in front of a plane through the brow. The head model keeps what the
image shows, but the EEG 10-10 arcs start at the nasion and run over the forehead: on the
scalp surface of a defaced scan they run over the flat cut instead, and the frontal positions
move by up to 10-20 mm (docs/validation.md, Defaced scans). This module completes the head,
for the EEG construction only, with the template head where the image is zero-filled: the
voxels that hold exactly the image's lowest value in blocks connected to the image border
(zero-filled background and removed face), inside the head of the shipped head priors mapped
with the affine part of the MNI registration, thicker than the misfit slivers around any head
and reaching the template's nasion (the face).
The completed surface equals the subject's scalp wherever the image has scalp.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from navigator.core.surface import Surface
from navigator.core.transforms import MniTransform, apply_affine
from navigator.core.volume import Volume

#: Zero-filled template head thinner than this (mm; an opening removes it) is the misfit
#: between the template's and the subject's outline, not a removed part of the head.
MIN_REMOVED_THICKNESS_MM = 6.0
#: Less removed head than this (ml) is not a removed face.
MIN_REMOVED_ML = 20.0


def template_head_mask(shape: tuple[int, int, int], affine: np.ndarray, transform: MniTransform,
                       region: np.ndarray | None = None) -> np.ndarray:
    """Bool mask on the grid (``affine`` voxel -> subject RAS mm): inside the head of the shipped
    head priors (background probability < 0.5), mapped with the registration's affine part.
    With ``region`` (bool, same grid) only its voxels are looked up; the rest are False."""
    from navigator.segmentation.head_priors import load_head_priors

    hp = load_head_priors()
    out = np.zeros(shape, bool)
    vox = np.argwhere(np.ones(shape, bool) if region is None else region).astype(np.float32)
    mni = apply_affine(transform.subject_to_mni_affine @ affine, vox)
    atlas = apply_affine(np.linalg.inv(hp.affine) @ hp.mni152_to_atlas, mni)
    background = ndi.map_coordinates(hp.priors[0], atlas.T, order=1, mode="constant", cval=255.0)
    out[tuple(vox.astype(np.intp).T)] = background < 127.5
    return out


#: Only removed parts that reach this close (mm) to the template's nasion count: defacing
#: removes the face; elsewhere a zero-filled background next to a head of another shape (the
#: sphere sample) is not a removed part of the head.
NASION_REACH_MM = 30.0


def removed_head(t1: Volume, head: np.ndarray, transform: MniTransform) -> np.ndarray:
    """Bool mask of the face the image zero-filled (empty when nothing was removed).

    ``t1`` as loaded (not normalised); ``head``: the subject's head mask on the same grid."""
    data = np.asarray(t1.data)
    floor = data.min()
    zero = data == floor
    labels, n = ndi.label(zero)
    if n == 0:
        return np.zeros(head.shape, bool)
    border = np.unique(np.concatenate([np.unique(np.take(labels, i, axis=a)) for a in range(3) for i in (0, -1)]))
    candidates = np.isin(labels, border[border > 0]) & ~head  # zero-filled, outside the subject's head
    removed = template_head_mask(head.shape, t1.affine, transform, region=candidates)
    radius = max(1, int(round(0.5 * MIN_REMOVED_THICKNESS_MM / float(np.min(t1.spacing)))))
    removed = ndi.binary_opening(removed, structure=ndi.generate_binary_structure(3, 1), iterations=radius)
    from navigator.targets.fiducials import template_landmarks_mni

    nasion = apply_affine(np.linalg.inv(t1.affine) @ np.linalg.inv(transform.subject_to_mni_affine),
                          template_landmarks_mni()["nasion"])[0]
    parts, _ = ndi.label(removed)
    at = np.argwhere(removed)
    near = np.linalg.norm((at - nasion) * np.asarray(t1.spacing), axis=1) <= NASION_REACH_MM
    removed = np.isin(parts, np.unique(parts[tuple(at[near].T)]))
    if removed.sum() * float(np.prod(t1.spacing)) / 1000.0 < MIN_REMOVED_ML:
        return np.zeros(head.shape, bool)
    return removed


def completed_scalp(t1: Volume, labels: Volume, transform: MniTransform) -> Surface | None:
    """The outer surface of the subject's head completed with the removed template head (subject
    RAS mm), or None when the image lacks no part of the head. ``labels`` on the T1's grid."""
    from skimage.measure import marching_cubes

    from navigator.meshing.surfaces import taubin_smooth

    head = np.asarray(labels.data) > 0
    removed = removed_head(t1, head, transform)
    if not removed.any():
        return None
    whole = ndi.binary_closing(head | removed, structure=ndi.generate_binary_structure(3, 1), iterations=2)
    whole = ndi.binary_fill_holes(np.pad(whole, 1))
    verts, faces, _, _ = marching_cubes(whole.astype(np.float32), 0.5)
    verts = apply_affine(t1.affine, verts - 1.0)  # undo the padding, to subject RAS mm
    verts = taubin_smooth(verts, faces, iterations=10)
    surface = Surface(verts, faces.astype(np.int64))
    centre = verts.mean(axis=0)
    if (surface.face_normals() * (verts[faces].mean(axis=1) - centre)).sum(axis=1).mean() < 0:
        surface = Surface(verts, faces[:, ::-1].astype(np.int64))  # normals point out of the head
    return surface
