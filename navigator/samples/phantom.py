"""The ``phantom`` sample: a synthetic whole head with exactly known ground truth.

Pipeline (all seeded with ``numpy.random.default_rng(seed)``):

1. Template anatomy in MNI152 space (:mod:`navigator.samples.anatomy`, seed-independent).
2. A random smooth warp plus affine (:class:`~navigator.samples.warp.PhantomGroundTruth`)
   carries it into the subject's scanner space; labels are pulled with nearest neighbour,
   images with trilinear interpolation, on a 1 mm grid cropped to the head and cut at the neck
   by an axial plane of the scanner.
3. T1- and T2-weighted images: seeded tissue contrast, 0.7 mm Gaussian PSF, +-20 % smooth
   bias field, Rician noise (2.5 % of WM for T1 and of CSF for T2), random scanner scale,
   stored as uint16 in a non-RAS voxel order (seed 0: sagittal P,S,R like the IXI data).
4. Ground truth: labels, the warp parameters, fiducials on the scalp and MNI landmarks mapped
   to subject space.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from navigator.core.atomic import atomic_write_json
from navigator.core.progress import Progress, ensure_progress
from navigator.core.tissues import COMPACT_BONE, CSF, GM, SPONGY_BONE
from navigator.core.volume import Volume
from navigator.core.workspace import Workspace
from navigator.samples import anatomy as _anat
from navigator.samples.mri import Contrast, _interp_matrix, acquire, synthesize
from navigator.samples.warp import PhantomGroundTruth

#: Storage orders (axis codes) of the phantom images; seed 0 uses the first.
ORIENTATIONS: tuple[str, ...] = ("PSR", "LPS", "ASL", "PIL", "LAS", "SRA")

#: Test points in MNI152 mm (DLPFC targets from the TMS literature, see FIELD_NOTES).
MNI_LANDMARKS: dict[str, tuple[float, float, float]] = {
    "fox2012_dlpfc": (-38.0, 44.0, 26.0),
    "ba46": (-44.0, 40.0, 29.0),
    "ba9": (-36.0, 39.0, 43.0),
    "beam_f3_cortex": (-37.0, 26.0, 49.0),
    "five_cm_rule": (-41.0, 16.0, 54.0),
    "f3_scalp_template": (-50.2, 53.1, 42.2),
    "sgacc_seed": (6.0, 16.0, -10.0),
    "right_dlpfc_mirror": (38.0, 44.0, 26.0),
}

FIDUCIALS = ("nasion", "inion", "lpa", "rpa")
_WARP_STEP_MM = 3


@dataclass
class Phantom:
    """One generated phantom (arrays in storage order, i.e. as written to disk).

    Attributes:
        t1, t2: uint16 images; labels: uint8 ground-truth labels; all share ``affine``
            (voxel -> subject world RAS mm) and the axis codes ``orientation``.
        truth: the exact MNI -> subject mapping.
        fiducials: name -> subject world RAS mm (on the scalp); fiducials_mni: the MNI
            definitions they came from.
        landmarks: name -> {"mni": [...], "subject": [...]} (mm).
        info: generation facts (seed, sizes, volumes, timings).
    """

    t1: np.ndarray
    t2: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    orientation: str
    truth: PhantomGroundTruth
    fiducials: dict[str, np.ndarray]
    fiducials_mni: dict[str, np.ndarray]
    landmarks: dict[str, dict[str, list[float]]]
    info: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- geometry helpers
def to_storage(data: np.ndarray, affine: np.ndarray, codes: str) -> tuple[np.ndarray, np.ndarray]:
    """Reorder a RAS-ordered array to voxel axis codes ``codes`` (e.g. "PSR") without
    resampling; returns (data, affine) describing the same world positions."""
    import nibabel as nib

    ornt = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt(("R", "A", "S")),
                                           nib.orientations.axcodes2ornt(tuple(codes)))
    out = np.ascontiguousarray(nib.orientations.apply_orientation(data, ornt))
    new_affine = affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)
    return out, new_affine


def _surface_along_ray(mask_smooth: np.ndarray, world_to_vox: np.ndarray, origin: np.ndarray,
                       direction: np.ndarray, t_min: float, t_max: float, step: float = 0.05) -> np.ndarray:
    """Outermost crossing (world mm) of the 0.5 level of ``mask_smooth`` along origin + t*dir."""
    direction = direction / np.linalg.norm(direction)
    t = np.arange(t_min, t_max, step)
    pts = origin[None, :] + t[:, None] * direction[None, :]
    ijk = pts @ world_to_vox[:3, :3].T + world_to_vox[:3, 3]
    vals = ndi.map_coordinates(mask_smooth, ijk.T, order=1, mode="constant", cval=0.0)
    inside = np.nonzero(vals >= 0.5)[0]
    if len(inside) == 0 or inside[-1] == len(t) - 1:
        raise RuntimeError("scalp surface not found along fiducial ray")
    i = inside[-1]
    v0, v1 = vals[i], vals[i + 1]
    frac = (v0 - 0.5) / (v0 - v1) if v0 != v1 else 0.0
    return pts[i] + frac * (pts[i + 1] - pts[i])


def gm_bone_contacts(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of bone voxels 6-adjacent to a grey-matter voxel (should be empty)."""
    gm = labels == GM
    near = ndi.binary_dilation(gm, structure=ndi.generate_binary_structure(3, 1))
    return near & ((labels == COMPACT_BONE) | (labels == SPONGY_BONE))


# ---------------------------------------------------------------------------- generation
def generate_phantom(seed: int = 0, progress: Progress | None = None) -> Phantom:
    """Generate phantom variant ``seed`` in memory (seed 0 is the default phantom)."""
    progress = ensure_progress(progress)
    t_start = time.perf_counter()
    progress.update(0.0, "template anatomy")
    anat = _anat.build_template_anatomy(progress.sub(0.0, 0.35, "template anatomy"))
    t_anat = time.perf_counter() - t_start
    progress.update(0.35, "warp")

    ss = np.random.SeedSequence(int(seed))
    r_warp, r_con, r_t1, r_t2, r_misc = (np.random.default_rng(s) for s in ss.spawn(5))
    truth = PhantomGroundTruth.random(r_warp)
    orientation = ORIENTATIONS[0] if seed == 0 else ORIENTATIONS[int(r_misc.integers(len(ORIENTATIONS)))]
    contrast = Contrast.random(r_con)

    # ---- subject grid (RAS order, 1 mm, axis-aligned in scanner space), cut at the neck
    head_t = anat.depth > 0
    surf = head_t & ~ndi.binary_erosion(head_t)
    pts_t = np.argwhere(surf)[::3].astype(np.float64) + _anat.CANVAS_MIN
    pts_s = truth.mni_to_subject(pts_t)
    z_cut = float(truth.mni_to_subject(np.array([[0.0, -20.0, _anat.NECK_CUT_Z]]))[0, 2])
    pts_s = pts_s[pts_s[:, 2] >= z_cut]
    lo = np.floor(pts_s.min(axis=0) - 6.0)
    hi = np.ceil(pts_s.max(axis=0) + 6.0)
    lo[2] = np.floor(z_cut) - 4.0
    shape = tuple(int(v) for v in (hi - lo + 1))
    ras_affine = np.eye(4)
    ras_affine[:3, 3] = lo

    # ---- subject -> MNI for every voxel: exact on a 3 mm lattice, linear in between
    step = _WARP_STEP_MM
    n = [int(np.ceil((s - 1) / step)) + 1 for s in shape]
    axes = [lo[i] + step * np.arange(n[i]) for i in range(3)]
    lattice = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    mni = truth.subject_to_mni(lattice).reshape(*n, 3) - _anat.CANVAS_MIN  # canvas voxel coords
    mats = [_interp_matrix(np.arange(s, dtype=np.float32) / step, k) for s, k in zip(shape, n)]
    coords = np.empty((3, *shape), np.float32)
    for c in range(3):
        a = np.tensordot(mats[0], mni[..., c].astype(np.float32), axes=(1, 0))
        a = np.tensordot(mats[1], a, axes=(1, 1)).transpose(1, 0, 2)
        coords[c] = np.tensordot(a, mats[2], axes=(2, 1))
    del mni, lattice
    progress.update(0.45, "labels")

    labels = ndi.map_coordinates(anat.labels, coords, order=0, mode="constant", cval=0, output=np.uint8)
    zs = lo[2] + np.arange(shape[2])
    labels[:, :, zs < z_cut] = 0
    # keep the CSF barrier intact after nearest-neighbour resampling
    contacts = gm_bone_contacts(labels)
    labels[contacts] = CSF
    progress.update(0.55, "T1 and T2 contrast")

    images = []
    for which, rng, ref_key in ((0, r_t1, "wm"), (1, r_t2, "csf")):
        rel = synthesize(anat.labels, anat.p_wm, anat.p_gm, anat.brain_mask, anat.depth, contrast, which)
        img = ndi.map_coordinates(rel, coords, order=1, mode="constant", cval=0.0, output=np.float32)
        del rel
        img[:, :, zs < z_cut] = 0.0
        ref = contrast.values[ref_key][which]
        img = acquire(img, rng, noise_fraction=float(r_misc.uniform(0.02, 0.03)), reference=ref)
        scanner_ref = float(r_misc.uniform(700, 2500))  # stored value of the reference tissue
        img *= np.float32(scanner_ref / ref)
        images.append(np.clip(np.rint(img), 0, 65535).astype(np.uint16))
        progress.update(0.55 + 0.15 * (which + 1), "T1 and T2 contrast")
    del coords

    # ---- fiducials: defined in MNI on the template scalp, mapped, snapped to the subject scalp
    progress.update(0.88, "fiducials")
    head_s = _anat._fill_holes(labels > 0)
    head_s_smooth = ndi.gaussian_filter(head_s.astype(np.float32), 0.8)
    head_t_smooth = ndi.gaussian_filter(head_t.astype(np.float32), 0.8)
    inv_t = np.linalg.inv(anat.affine)
    inv_s = np.linalg.inv(ras_affine)
    fid_mni: dict[str, np.ndarray] = {}
    fid_subj: dict[str, np.ndarray] = {}
    for name in FIDUCIALS:
        o, d = anat.landmarks[f"{name}_origin"], anat.landmarks[f"{name}_dir"]
        p = _surface_along_ray(head_t_smooth, inv_t, o, d, 0.0, 160.0)
        fid_mni[name] = p
        ps = truth.mni_to_subject(p[None])[0]
        ds = truth.mni_to_subject((p + d)[None])[0] - ps
        fid_subj[name] = _surface_along_ray(head_s_smooth, inv_s, ps, ds, -15.0, 15.0)

    landmarks = {name: {"mni": list(map(float, xyz)),
                        "subject": truth.mni_to_subject(np.array([xyz]))[0].tolist()}
                 for name, xyz in MNI_LANDMARKS.items()}

    t1, affine = to_storage(images[0], ras_affine, orientation)
    t2, _ = to_storage(images[1], ras_affine, orientation)
    lab_st, _ = to_storage(labels, ras_affine, orientation)
    counts = np.bincount(labels.ravel(), minlength=9)
    truth.meta.update({"seed": int(seed), "template": _anat.TEMPLATE_NAME, "orientation": orientation,
                       "neck_cut_world_z_mm": z_cut})
    info = {
        "seed": int(seed),
        "orientation": orientation,
        "shape": list(t1.shape),
        "neck_cut_world_z_mm": z_cut,
        "tissue_volumes_ml": {str(k): float(counts[k]) / 1000.0 for k in range(1, 9) if counts[k]},
        "gm_bone_contacts_fixed": int(contacts.sum()),
        "contrast": {k: list(v) for k, v in contrast.values.items()},
        "seconds_template_anatomy": round(t_anat, 2),
        "seconds_total": round(time.perf_counter() - t_start, 2),
    }
    progress.update(0.9, "phantom generated")
    return Phantom(t1=t1, t2=t2, labels=lab_st, affine=affine, orientation=orientation, truth=truth,
                   fiducials=fid_subj, fiducials_mni=fid_mni, landmarks=landmarks, info=info)


# ---------------------------------------------------------------------------- writing
def write_phantom(out_dir: str | Path, seed: int = 0, progress: Progress | None = None,
                  subject_id: str | None = None) -> Workspace:
    """Generate phantom ``seed`` and write it as a workspace in (empty or new) ``out_dir``.

    Layout: input/T1.nii.gz, input/T2.nii.gz (sources "T1", "T2"), labels/labels.nii.gz
    (step "labels"), ground_truth/{labels.nii.gz, warp.json, fiducials.json,
    mni_landmarks.json, phantom.json}.
    """
    from navigator.io.images import save_nifti

    progress = ensure_progress(progress)
    t0 = time.perf_counter()
    ph = generate_phantom(seed, progress.sub(0.0, 0.8))
    ws = Workspace.create(out_dir, subject_id=subject_id)
    progress.update(0.82, "writing images")
    save_nifti(Volume(ph.t1, ph.affine), ws.path("t1"))
    ws.add_source("T1", ws.path("t1"), original=f"sample:phantom seed {seed}")
    save_nifti(Volume(ph.t2, ph.affine), ws.path("t2"))
    ws.add_source("T2", ws.path("t2"), original=f"sample:phantom seed {seed}")
    progress.update(0.9, "writing ground truth")
    gt = ws.root / "ground_truth"
    save_nifti(Volume(ph.labels, ph.affine), gt / "labels.nii.gz", dtype=np.uint8)
    save_nifti(Volume(ph.labels, ph.affine), ws.path("labels"), dtype=np.uint8)
    ph.truth.save(gt / "warp.json")
    atomic_write_json(gt / "fiducials.json", {
        "coordinate_system": "subject world RAS (scanner), mm",
        "definition": "defined on the template scalp in MNI152 space (nasion: midline, 9 mm above "
                      "the eye centres; inion: midline, z = -14; LPA/RPA: lateral at y = -18, "
                      "z = -44), mapped through warp.json and snapped onto this phantom's scalp "
                      "along the mapped outward direction",
        "points": {k: v.tolist() for k, v in ph.fiducials.items()},
        "mni": {k: v.tolist() for k, v in ph.fiducials_mni.items()},
    })
    atomic_write_json(gt / "mni_landmarks.json", {
        "coordinate_system": "mni: MNI152 mm; subject: subject world RAS mm (exact, from warp.json)",
        "points": ph.landmarks,
    })
    info = dict(ph.info, seconds_total=round(time.perf_counter() - t0, 2))
    atomic_write_json(gt / "phantom.json", info)
    ws.record_step("labels", {"source": "sample:phantom", "seed": int(seed)}, inputs=[],
                   outputs=[ws.path("labels")], seconds=info["seconds_total"])
    progress.update(1.0, "done")
    return ws
