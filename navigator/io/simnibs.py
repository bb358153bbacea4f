"""Read SimNIBS head models (m2m folders): where each file is, deformation fields, surfaces.

The workspace importers built on these readers are in :mod:`navigator.meshing.import_head`.

Recognised m2m layouts (``<id>`` is the subject id from the folder name ``m2m_<id>``):

=========================  ======================================  =======================================
item                       SimNIBS 4 (charm)                       SimNIBS 3 (headreco / mri2mesh)
=========================  ======================================  =======================================
head mesh                  ``m2m_<id>/<id>.msh``                   ``<id>.msh`` beside the m2m folder
T1 (mesh world frame)      ``T1.nii.gz``                           ``T1fs_conform.nii.gz`` (or ``T1fs_nu_conform``)
T2                         ``T2_reg.nii.gz``                       --
labels                     ``final_tissues.nii.gz``                ``<id>_final_contr.nii.gz``
MNI deformation fields     ``toMNI/Conform2MNI_nonl.nii.gz``, ``toMNI/MNI2Conform_nonl.nii.gz`` (both)
affine                     ``toMNI/MNI2conform_12DOF.txt`` when present (MNI -> subject); otherwise a
                           least-squares affine fitted to the Conform2MNI deformation field
EEG caps                   ``eeg_positions/*.csv`` (``EEG10-10_UI_Jurak_2007.csv`` becomes ``targets/eeg.csv``)
cortical surfaces          ``surfaces/{lh,rh}.{central,pial,white}.gii``   ``segment/cat/surf/{lh,rh}.central.T1fs_conform.gii``
=========================  ======================================  =======================================

SimNIBS deformation fields follow navigator's convention exactly (voxel holds the target
space coordinates in mm), so they are stored unchanged through
:class:`~navigator.core.transforms.MniTransform`. Everything written is recorded as a
workspace step with the source path and its SHA-256 as parameters (:func:`source_params`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_path, sha256_file
from navigator.core.errors import InputError, NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.surface import Surface
from navigator.core.tissues import SURFACE_OFFSET
from navigator.core.volume import Volume
from navigator.io.mesh_boundary import boundary_triangles

DEFAULT_EEG_CAP = "EEG10-10_UI_Jurak_2007.csv"
SURFACE_KEYS = {"scalp": "scalp", "gm": "gm_surface", "wm": "wm_surface", "middle_gm": "middle_gm"}


@dataclass
class M2mFiles:
    """The files found in an m2m folder (None when absent)."""

    folder: Path
    subject_id: str
    version: int  # 4 (charm) or 3 (headreco / mri2mesh)
    mesh: Path
    t1: Path | None = None
    t2: Path | None = None
    labels: Path | None = None
    conform2mni: Path | None = None
    mni2conform: Path | None = None
    mni2conform_affine: Path | None = None
    eeg_caps: list[Path] = field(default_factory=list)
    surfaces: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # key -> (lh, rh)


def _first(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def find_m2m_files(m2m_dir: str | Path) -> M2mFiles:
    """Locate the files of a SimNIBS 3 or 4 m2m folder; InputError if it holds no head mesh."""
    folder = Path(m2m_dir)
    if not folder.is_dir():
        raise InputError(folder, "no such m2m folder")
    m = re.fullmatch(r"m2m_(.+)", folder.name)
    sid = m.group(1) if m else None
    meshes = sorted(folder.glob("*.msh"))
    mesh = _first(folder / f"{sid}.msh") if sid else None
    version = 4
    if mesh is None and sid is not None:
        mesh = _first(folder.parent / f"{sid}.msh")
        version = 3 if mesh is not None else 4
    if mesh is None and len(meshes) == 1:
        mesh = meshes[0]
    if mesh is None:
        raise InputError(folder, "no head mesh found (expected m2m_<id>/<id>.msh or <id>.msh beside the m2m folder)")
    sid = sid or mesh.stem
    t1 = _first(folder / "T1.nii.gz", folder / "T1.nii")
    if t1 is None:
        t1 = _first(folder / "T1fs_conform.nii.gz", folder / "T1fs_nu_conform.nii.gz", folder / "T1fs_conform.nii")
        if t1 is not None:
            version = 3
    mni = folder / "toMNI"
    files = M2mFiles(
        folder=folder, subject_id=sid, version=version, mesh=mesh, t1=t1,
        t2=_first(folder / "T2_reg.nii.gz", folder / "T2_reg.nii"),
        labels=_first(folder / "final_tissues.nii.gz", folder / f"{sid}_final_contr.nii.gz"),
        conform2mni=_first(mni / "Conform2MNI_nonl.nii.gz", mni / "Conform2MNI_nonl.nii"),
        mni2conform=_first(mni / "MNI2Conform_nonl.nii.gz", mni / "MNI2Conform_nonl.nii"),
        mni2conform_affine=_first(mni / "MNI2conform_12DOF.txt"),
        eeg_caps=sorted((folder / "eeg_positions").glob("*.csv")),
    )
    for key, name in (("middle_gm", "central"), ("gm", "pial"), ("wm", "white")):
        pair = (folder / "surfaces" / f"lh.{name}.gii", folder / "surfaces" / f"rh.{name}.gii")
        if all(p.is_file() for p in pair):
            files.surfaces[key] = pair
    cat = folder / "segment" / "cat" / "surf"
    pair = (cat / "lh.central.T1fs_conform.gii", cat / "rh.central.T1fs_conform.gii")
    if "middle_gm" not in files.surfaces and all(p.is_file() for p in pair):
        files.surfaces["middle_gm"] = pair
    return files


# ---------------------------------------------------------------------------- helpers
def source_params(path: Path, **extra) -> dict:
    return {"source": str(path.resolve()), "source_sha256": sha256_file(path), **extra}


def copy_nifti_gz(src: Path, dest: Path) -> Path:
    """Copy a NIfTI image to ``dest`` (.nii.gz) byte-for-byte, or re-save an uncompressed one."""
    import shutil

    import nibabel as nib

    with atomic_path(dest) as tmp:
        if src.name.endswith(".nii.gz"):
            shutil.copyfile(src, tmp)
        else:
            try:
                nib.save(nib.load(str(src)), str(tmp))
            except Exception as exc:  # noqa: BLE001
                raise InputError(src, f"cannot read image ({exc})") from None
    return dest


def load_deformation_field(path: Path) -> Volume:
    """A SimNIBS deformation field as a (X, Y, Z, 3) Volume (5-D (X,Y,Z,1,3) files squeezed)."""
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float32)
    except Exception as exc:  # noqa: BLE001
        raise InputError(path, f"cannot read deformation field ({exc})") from None
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0, :]
    if data.ndim != 4 or data.shape[3] != 3:
        raise InputError(path, f"deformation field must have shape (X, Y, Z, 3), found {data.shape}")
    return Volume(data, img.affine, source=str(path))


def fit_affine(field: Volume, max_points: int = 200_000) -> np.ndarray:
    """Least-squares 4x4 affine from a deformation field: world position -> stored coordinates.

    Voxels whose stored coordinates are non-finite or exactly zero (outside the registered
    region) are ignored; at most ``max_points`` evenly strided voxels are used.
    """
    shape = field.shape
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    values = field.data.reshape(-1, 3).astype(np.float64)
    ok = np.isfinite(values).all(axis=1) & (np.abs(values).sum(axis=1) > 0)
    idx = np.flatnonzero(ok)
    if len(idx) < 4:
        raise NavigatorError(f"{field.source}: deformation field has too few valid voxels to fit an affine")
    if len(idx) > max_points:
        idx = idx[:: int(np.ceil(len(idx) / max_points))]
    world = field.voxel_to_world(ijk[idx])
    design = np.column_stack([world, np.ones(len(idx))])
    coef, *_ = np.linalg.lstsq(design, values[idx], rcond=None)
    aff = np.eye(4)
    aff[:3, :] = coef.T
    return aff


def merge_hemispheres(lh: Surface, rh: Surface) -> Surface:
    """One surface holding both hemispheres; per-vertex data "hemisphere" = 0 (left) / 1 (right)."""
    faces = np.concatenate([lh.faces, rh.faces + len(lh.vertices)])
    data = {"hemisphere": np.concatenate([np.zeros(len(lh.vertices)), np.ones(len(rh.vertices))])}
    return Surface(np.concatenate([lh.vertices, rh.vertices]), faces, data)


def head_mesh_for_workspace(mesh: Mesh) -> tuple[Mesh, bool]:
    """Tetrahedra + surface triangles only (fields dropped); generate triangles if none.

    Returns (mesh, generated) with ``generated`` True when boundary triangles were created.
    """
    if mesh.n_tets == 0:
        raise NavigatorError("mesh has no tetrahedra: a volume head mesh is needed")
    tris, tags = mesh.triangles, mesh.triangle_tags
    keep = tags > SURFACE_OFFSET
    generated = False
    if not keep.any():
        tris, tags = boundary_triangles(mesh)
        keep = np.ones(len(tags), bool)
        generated = True
    return Mesh(mesh.nodes, mesh.tetrahedra, mesh.tet_tags, tris[keep], tags[keep]), generated
