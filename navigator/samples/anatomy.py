"""Whole-head tissue labels in MNI152 template space, built from the nilearn ICBM152 2009a maps.

The brain comes from the template's grey/white-matter probability maps (the template T1 is
brain-masked: its non-zero region is the intracranial brain mask, including sulcal CSF and
ventricles). Everything outside it is built geometrically from distance maps (1 mm grid):

* CSF layer: 2-3 mm beyond the (closed) brain mask;
* skull: an offset shell of direction-dependent thickness (about 4 mm temporal, 6-7 mm frontal
  and parietal, 8-9 mm occipital, thicker around the frontal sinus), compact outer/inner tables
  (label 7) with spongy diploe (label 8) where the bone is thicker than two tables;
* scalp: a 4.5-7 mm offset shell (thicker over the temporalis and the occiput), joined
  smoothly to a face, nose and neck made of simple super-ellipsoids; facial bones (maxilla,
  mandible, orbit walls) inside;
* eyes: 12 mm spheres in the orbits; air sinuses (frontal, sphenoid, maxillary) as label-0
  pockets enclosed in bone;
* a spinal cord (white matter) in a CSF-filled canal and bony ring continues the brainstem into
  the neck.

All geometry is deterministic (no randomness): subject variability comes from the warp and the
MRI contrast (:mod:`navigator.samples.phantom`). Coordinates are MNI152 mm.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.tissues import COMPACT_BONE, CSF, EYES, GM, SCALP, SPONGY_BONE, WM

TEMPLATE_NAME = "ICBM152 2009a nonlinear symmetric (nilearn copy)"
_TEMPLATE_FILES = {k: f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")}

#: Template-space canvas (MNI mm, 1 mm grid, voxel centres inclusive).
CANVAS_MIN = np.array([-100.0, -140.0, -140.0])
CANVAS_MAX = np.array([100.0, 112.0, 112.0])  # 201 x 253 x 253 voxels

#: Head centre used for direction-dependent thicknesses (MNI mm).
HEAD_CENTRE = np.array([0.0, -18.0, 5.0])
EYE_RADIUS = 12.0
#: The subject's field of view ends at the axial scanner plane through the image of MNI
#: (0, -20, NECK_CUT_Z); the template anatomy continues 25 mm further down, so that plane never
#: leaves it (rotations of a few degrees tilt it by < 10 mm across the neck).
NECK_CUT_Z = -115.0


@dataclass
class TemplateAnatomy:
    """Labels and tissue fractions on the template canvas.

    Attributes:
        labels: uint8 SimNIBS labels (0 air, 1 WM, 2 GM, 3 CSF, 5 scalp, 6 eyes, 7 compact bone,
            8 spongy bone).
        p_wm, p_gm: float32 partial-volume fractions inside the brain mask (0 elsewhere).
        brain_mask: bool, intracranial mask of the template (plus the spinal cord).
        depth: float32, distance (mm) from each head voxel centre to the nearest voxel centre
            outside the head (1 for the outermost layer, 0 outside).
        affine: 4x4 voxel -> MNI mm.
        landmarks: named MNI points (eye centres, fiducial ray definitions).
    """

    labels: np.ndarray
    p_wm: np.ndarray
    p_gm: np.ndarray
    brain_mask: np.ndarray
    depth: np.ndarray
    affine: np.ndarray
    landmarks: dict[str, np.ndarray]


def template_dir() -> Path:
    """Folder of the MNI152 templates shipped in the nilearn wheel."""
    import nilearn

    return Path(nilearn.__file__).resolve().parent / "datasets" / "data"


def _load_template(kind: str) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    path = template_dir() / _TEMPLATE_FILES[kind]
    if not path.exists():
        raise NavigatorError(f"{path}: MNI152 template missing from the nilearn installation")
    img = nib.load(str(path))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def canvas_affine() -> np.ndarray:
    aff = np.eye(4)
    aff[:3, 3] = CANVAS_MIN
    return aff


def canvas_shape() -> tuple[int, int, int]:
    return tuple(int(v) for v in (CANVAS_MAX - CANVAS_MIN + 1))  # type: ignore[return-value]


def _embed(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Place a 1 mm RAS template array on the canvas (zero outside)."""
    out = np.zeros(canvas_shape(), dtype=data.dtype)
    off = np.round(affine[:3, 3] - CANVAS_MIN).astype(int)
    src = [slice(max(0, -o), min(s, c - o)) for o, s, c in zip(off, data.shape, out.shape)]
    dst = [slice(s.start + o, s.stop + o) for s, o in zip(src, off)]
    out[tuple(dst)] = data[tuple(src)]
    return out


def _grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open MNI coordinate grids (broadcastable) of the canvas."""
    shape = canvas_shape()
    axes = [CANVAS_MIN[i] + np.arange(shape[i], dtype=np.float32) for i in range(3)]
    return axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed Euclidean distance (mm, 1 mm voxels): > 0 outside ``mask``, <= 0 inside.

    Outside, the value is the distance from the voxel centre to the nearest mask voxel centre;
    inside, minus the distance to the nearest non-mask voxel centre (SimpleITK's Maurer
    transform: exact and multi-threaded, ~2x faster than scipy's).
    """
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
    f = sitk.SignedMaurerDistanceMapImageFilter()
    f.SetSquaredDistance(False)
    f.SetUseImageSpacing(False)
    f.SetInsideIsPositive(False)
    f.SetBackgroundValue(0)
    return sitk.GetArrayFromImage(f.Execute(img)).astype(np.float32, copy=False)


def _superellipsoid(X, Y, Z, centre, semi, p: int = 2) -> np.ndarray:
    """Inside test |dx/a|^p + |dy/b|^p + |dz/c|^p <= 1 (p: 2 ellipsoid, 3+ boxier)."""
    total = None
    for g, c, a in zip((X, Y, Z), centre, semi):
        t = np.abs((g - np.float32(c)) / np.float32(a))
        term = t * t if p == 2 else t * t * t
        total = term if total is None else total + term
    return total <= 1.0


def _directions(X, Y, Z) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors (float32) from :data:`HEAD_CENTRE` to each canvas voxel."""
    dx, dy, dz = X - float(HEAD_CENTRE[0]), Y - float(HEAD_CENTRE[1]), Z - float(HEAD_CENTRE[2])
    inv = 1.0 / (np.sqrt(dx * dx + dy * dy + dz * dz) + np.float32(1e-6))
    return dx * inv, dy * inv, dz * inv


def skull_thickness(X, Y, Z, dirs) -> np.ndarray:
    """Skull thickness (mm) as a smooth function of position: ~4 temporal, ~6.5 frontal/parietal,
    ~8.5-9 occipital, plus a bump around the frontal sinus."""
    ux, uy, uz = dirs
    back = np.clip(-uy, 0, None)
    t = 6.3 + 2.6 * back * back * (1 - 0.5 * np.clip(-uz, 0, None))
    ax = np.abs(ux)
    t -= 3.3 * ax * ax * ax * np.clip(1.0 - np.abs(uz + 0.05) * 1.6, 0, None)  # temporal squama
    t += 0.6 * np.clip(uz, 0, None)  # vertex slightly thicker
    fs = (X * X + (Y - 66.0) ** 2 + (Z - 6.0) ** 2) / np.float32(14.0 ** 2)
    t += 6.0 * np.exp(-fs)  # frontal sinus region
    return np.clip(t, 3.6, 13.0).astype(np.float32)


def scalp_thickness(dirs) -> np.ndarray:
    """Scalp thickness (mm): ~4.5 at the vertex, ~5 frontal, ~6.5 temporal (temporalis muscle),
    ~7 occipital."""
    ux, uy, uz = dirs
    ax = np.abs(ux)
    temporal = ax * ax * ax * np.clip(1.0 - np.abs(uz + 0.05) * 1.6, 0, None)
    t = 5.0 + 1.8 * np.clip(-uy, 0, None) + 1.5 * temporal - 0.5 * np.clip(uz, 0, None)
    return np.clip(t, 4.2, 7.2).astype(np.float32)


def csf_thickness(dirs) -> np.ndarray:
    """Extra CSF (mm) beyond the template brain mask: 2 mm at the skull base to 3 mm at the top."""
    return (2.5 + 0.5 * dirs[2]).astype(np.float32)


def _thickness_fields(step: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSF, skull and scalp thickness (mm) on the canvas: evaluated every ``step`` mm and
    linearly interpolated (they vary over centimetres, so this is exact to ~0.01 mm)."""
    shape = np.array(canvas_shape())
    n = (shape - 1) // step + 1
    if np.any((n - 1) * step != shape - 1):
        raise ValueError("canvas size must be a multiple of the thickness step plus one")
    axes = [CANVAS_MIN[i] + step * np.arange(n[i], dtype=np.float32) for i in range(3)]
    X, Y, Z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    dirs = _directions(X, Y, Z)
    coarse = (csf_thickness(dirs), skull_thickness(X, Y, Z, dirs), scalp_thickness(dirs))
    mats = [_linear_upsampler(int(k), step) for k in n]
    return tuple(_apply_separable(c, mats) for c in coarse)


def _linear_upsampler(n: int, step: int) -> np.ndarray:
    """((n-1)*step+1, n) matrix of 1-D linear interpolation from every ``step``-th sample."""
    out = np.zeros(((n - 1) * step + 1, n), np.float32)
    pos = np.arange(out.shape[0]) / step
    lo = np.minimum(pos.astype(int), n - 2)
    w = (pos - lo).astype(np.float32)
    out[np.arange(out.shape[0]), lo] = 1 - w
    out[np.arange(out.shape[0]), lo + 1] += w
    return out


def _apply_separable(c: np.ndarray, mats: list[np.ndarray]) -> np.ndarray:
    c = np.tensordot(mats[0], c.astype(np.float32), axes=(1, 0))
    c = np.tensordot(mats[1], c, axes=(1, 1)).transpose(1, 0, 2)
    return np.ascontiguousarray(np.tensordot(c, mats[2], axes=(2, 1)), dtype=np.float32)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus every background region not connected to the array border (6-connected)."""
    lab, _ = ndi.label(~mask)
    border = np.unique(np.concatenate([lab[[0, -1]].ravel(), lab[:, [0, -1]].ravel(), lab[:, :, [0, -1]].ravel()]))
    outside = np.isin(lab, border[border > 0])
    return ~outside


_CACHE: list[TemplateAnatomy] = []


def build_template_anatomy(progress: Progress | None = None) -> TemplateAnatomy:
    """The phantom's anatomy in MNI space, built once per process (~10-30 s) and then cached.

    Treat the returned arrays as read-only: they are shared by every later call.
    """
    if not _CACHE:
        _CACHE.append(_build(progress))
    return _CACHE[0]


def clear_template_cache() -> None:
    """Free the cached template anatomy (~200 MB)."""
    _CACHE.clear()


def _build(progress: Progress | None) -> TemplateAnatomy:
    progress = ensure_progress(progress)
    t1, aff = _load_template("t1")
    gm, _ = _load_template("gm")
    wm, _ = _load_template("wm")
    brain = _embed(t1 > 0, aff)
    p_gm = _embed(gm / 255.0, aff)
    p_wm = _embed(wm / 255.0, aff)
    del t1, gm, wm
    X, Y, Z = _grid()
    shape = canvas_shape()
    progress.update(0.05, "brain")

    # clean brain mask: largest component, holes filled
    lab, n = ndi.label(brain)
    if n > 1:
        sizes = ndi.sum(brain, lab, index=np.arange(1, n + 1))
        brain = lab == (1 + int(np.argmax(sizes)))
    brain = _fill_holes(brain)
    # spinal cord: continue the brainstem (template ends at z = -72) down through the neck
    stem = np.argwhere(brain[:, :, int(-72 - CANVAS_MIN[2])])
    cy = float(CANVAS_MIN[1] + stem[:, 1].mean()) if len(stem) else -45.0
    cord = ((X * X + (Y - cy) ** 2) <= 25.0) & (Z < -70)
    brain = brain | cord
    p_wm = np.where(cord & (p_wm + p_gm < 0.5), 1.0, p_wm).astype(np.float32)
    p_wm *= brain
    p_gm *= brain

    # intracranial volume: brain mask with narrow gaps bridged (smoothed mask), then a 2-3 mm
    # CSF layer beyond it
    closed = brain | (ndi.gaussian_filter(brain.astype(np.float32), 2.5) >= 0.3)
    d_b = np.clip(_signed_distance(closed), 0, None)
    t_csf, t_skull, t_scalp = _thickness_fields()
    intracranial = d_b <= t_csf
    progress.update(0.25, "skull")

    # skull shell
    cranial_bone = (d_b > t_csf) & (d_b <= t_csf + t_skull)
    cranial_head = d_b <= t_csf + t_skull + t_scalp

    # eyes: below the orbital roof
    eye_y = 57.0
    col = np.nonzero(cranial_bone[int(32 - CANVAS_MIN[0]), int(eye_y - CANVAS_MIN[1]), :])[0]
    roof = float(CANVAS_MIN[2] + col.min()) if len(col) else -20.0
    eye_z = min(-32.0, roof - EYE_RADIUS - 1.5)
    eyes_c = [np.array([-32.0, eye_y, eye_z]), np.array([32.0, eye_y, eye_z])]
    r_eye = [np.sqrt((X - float(c[0])) ** 2 + (Y - float(c[1])) ** 2 + (Z - float(c[2])) ** 2) for c in eyes_c]
    eyes = (r_eye[0] <= EYE_RADIUS) | (r_eye[1] <= EYE_RADIUS)
    progress.update(0.4, "face")

    # face, nose, neck; smooth union with the cranial head
    face = _superellipsoid(X, Y, Z, (0, 22, eye_z - 18), (60, 60, 54), 3)
    face &= Z > eye_z - 72
    nose = _superellipsoid(X, Y, Z, (0, 78, eye_z - 12), (11, 22, 20), 2)
    brow = _superellipsoid(X, Y, Z, (0, 62, eye_z + 10), (52, 24, 14), 2)
    neck = _superellipsoid(X, Y, Z, (0, -20, 0), (50, 56, 1e6), 3) & (Z < eye_z - 10)
    soft = face | nose | brow | neck
    soft = ndi.gaussian_filter(soft.astype(np.float32), 3) >= 0.5
    head = soft | cranial_head | ndi.binary_dilation(eyes, iterations=3)
    head = _fill_holes(head)
    # distance (mm) from each head voxel centre to the nearest voxel centre outside (>= 1 inside)
    depth = np.where(head, 1.0 - _signed_distance(head), 0.0).astype(np.float32)
    progress.update(0.55, "facial bones")

    # facial bones: maxilla block, mandible shell, orbit walls (all inside 5+ mm of soft tissue)
    maxilla = _superellipsoid(X, Y, Z, (0, 40, eye_z - 26), (40, 34, 20), 3) & (depth >= 7.0)
    mandible = (_superellipsoid(X, Y, Z, (0, 26, eye_z - 58), (48, 52, 16), 3)
                & (depth >= 5.0) & (depth <= 11.0) & (Y > -20))
    orbit = np.zeros(shape, bool)
    for c, r in zip(eyes_c, r_eye):
        orbit |= (r >= EYE_RADIUS + 2.0) & (r <= EYE_RADIUS + 4.5) & (Y < c[1] + 2.0) & (depth >= 4.0)
    bone = (cranial_bone | maxilla | mandible | orbit) & head & ~intracranial
    eye_zone = (r_eye[0] <= EYE_RADIUS + 1.5) | (r_eye[1] <= EYE_RADIUS + 1.5)
    bone &= ~eye_zone

    # compact tables (<= 2 mm from non-bone) and spongy diploe inside
    inner = ndi.binary_erosion(bone, iterations=2)  # > 2 mm (6-connected steps) from non-bone
    labels = np.zeros(shape, np.uint8)
    labels[head] = SCALP
    labels[bone] = COMPACT_BONE
    labels[inner] = SPONGY_BONE
    labels[intracranial] = CSF
    progress.update(0.7, "sinuses")

    # air sinuses: pockets kept >= 2 mm away from the intracranial space, eyes and outer skin
    d_ic = d_b - t_csf
    safe = (d_ic >= 2.0) & ~((r_eye[0] <= EYE_RADIUS + 2) | (r_eye[1] <= EYE_RADIUS + 2)) & (depth >= 5.0)
    fcol = np.nonzero(cranial_bone[int(-CANVAS_MIN[0]), :, int(8 - CANVAS_MIN[2])])[0] + CANVAS_MIN[1]
    fcol = fcol[fcol > 20]
    fs_y = float(fcol.mean()) if len(fcol) else 70.0
    frontal = _superellipsoid(X, Y, Z, (0, fs_y, 8), (13, 5, 9), 2)
    sphenoid = _superellipsoid(X, Y, Z, (0, 12, eye_z - 6), (10, 11, 9), 2)
    maxillary = (_superellipsoid(X, Y, Z, (-30, 44, eye_z - 25), (11, 14, 13), 2)
                 | _superellipsoid(X, Y, Z, (30, 44, eye_z - 25), (11, 14, 13), 2))
    sinus = (frontal | sphenoid | maxillary) & safe & (labels != CSF) & (labels != 0)
    shell = ndi.binary_dilation(sinus, iterations=2) & ~sinus & (labels == SCALP)
    labels[shell] = COMPACT_BONE
    labels[sinus] = 0

    # brain tissues inside the template brain mask: the most probable of WM, GM, CSF
    p_csf = np.clip(1.0 - p_wm - p_gm, 0, 1)
    wm_win = (p_wm >= p_gm) & (p_wm >= p_csf)
    gm_win = ~wm_win & (p_gm >= p_csf)
    labels[brain] = CSF
    labels[brain & gm_win] = GM
    labels[brain & wm_win] = WM
    labels[eyes] = EYES
    progress.update(1.0, "template anatomy done")

    landmarks = {
        "eye_left": eyes_c[0], "eye_right": eyes_c[1],
        # fiducial rays: (origin inside the head, outward direction), MNI mm
        "nasion_origin": np.array([0.0, 30.0, eye_z + 9.0]), "nasion_dir": np.array([0.0, 1.0, 0.0]),
        "inion_origin": np.array([0.0, -40.0, -14.0]), "inion_dir": np.array([0.0, -1.0, 0.0]),
        "lpa_origin": np.array([0.0, -18.0, -44.0]), "lpa_dir": np.array([-1.0, 0.0, 0.0]),
        "rpa_origin": np.array([0.0, -18.0, -44.0]), "rpa_dir": np.array([1.0, 0.0, 0.0]),
    }
    return TemplateAnatomy(labels=labels, p_wm=p_wm.astype(np.float32), p_gm=p_gm.astype(np.float32),
                           brain_mask=brain, depth=depth, affine=canvas_affine(), landmarks=landmarks)
