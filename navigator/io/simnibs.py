"""Import SimNIBS head models (m2m folders) and bare gmsh head meshes into a workspace.

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
workspace step with the source path and its SHA-256 as parameters.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_path, sha256_file
from navigator.core.errors import InputError, NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress
from navigator.core.surface import Surface
from navigator.core.tissues import SURFACE_OFFSET
from navigator.core.volume import Volume
from navigator.core.workspace import Workspace
from navigator.io.eeg_positions import read_eeg_csv, write_eeg_csv
from navigator.io.gmsh import read_msh, write_msh
from navigator.io.mesh_boundary import boundary_triangles, largest_component, outer_boundary
from navigator.io.surfaces import read_surface, write_surface

log = logging.getLogger(__name__)

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
def _source_params(path: Path, **extra) -> dict:
    return {"source": str(path.resolve()), "source_sha256": sha256_file(path), **extra}


def _copy_nifti_gz(src: Path, dest: Path) -> Path:
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


def head_surfaces(mesh: Mesh, middle: bool = True) -> tuple[dict[str, Surface], str]:
    """Surfaces of a head mesh via navigator.meshing.surfaces, else the scalp alone.

    Returns (surfaces, method) where method names what produced them.
    """
    try:
        from navigator.meshing.surfaces import extract_surfaces
    except ImportError:
        extract_surfaces = None
    if extract_surfaces is not None:
        return extract_surfaces(mesh, middle=middle), "navigator.meshing.surfaces.extract_surfaces"
    return {"scalp": scalp_surface(mesh)}, "outer boundary (scalp only)"


def scalp_surface(mesh: Mesh) -> Surface:
    """Largest connected piece of the mesh's outer boundary (tissue tags < 100), outward."""
    tissue = mesh.tet_tags < 100
    sub = mesh.subset_tets(tissue) if not tissue.all() else mesh
    faces = largest_component(outer_boundary(sub), sub.n_nodes)
    used, inverse = np.unique(faces, return_inverse=True)
    return Surface(sub.nodes[used], inverse.reshape(-1, 3))


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


def _write_surfaces(ws: Workspace, surfaces: dict[str, Surface], params: dict, inputs: list[Path]) -> list[Path]:
    outputs = []
    for key, surf in surfaces.items():
        if key in SURFACE_KEYS:
            outputs.append(write_surface(surf, ws.path(SURFACE_KEYS[key])))
    if outputs:
        ws.record_step("surfaces", params, inputs=inputs, outputs=outputs)
    return outputs


# ---------------------------------------------------------------------------- import m2m
def import_simnibs(m2m_dir: str | Path, out_dir: str | Path, progress: Progress | None = None,
                   subject_id: str | None = None) -> Workspace:
    """Create a workspace at ``out_dir`` from a SimNIBS 3/4 m2m folder.

    Writes input/T1.nii.gz (source "T1"; also T2 when present), labels/labels.nii.gz (step
    "labels"), mesh/head.msh (step "mesh": tetrahedra + SimNIBS surface triangles, re-written
    as gmsh 2.2 binary), transforms/ (step "transforms"), targets/eeg.csv plus
    targets/eeg_caps/*.csv (step "eeg") and surfaces/*.surf.gii (step "surfaces").
    """
    prog = ensure_progress(progress)
    files = find_m2m_files(m2m_dir)
    if files.t1 is None:
        raise InputError(files.folder, "no T1 image found (T1.nii.gz or T1fs_conform.nii.gz)")
    prog.update(0.0, "reading head mesh")
    t0 = time.perf_counter()
    source_mesh = read_msh(files.mesh, check=True)
    try:
        head, generated = head_mesh_for_workspace(source_mesh)
    except NavigatorError as exc:
        raise InputError(files.mesh, str(exc)) from None
    # read every other input before anything is written, so a bad file leaves no workspace
    prog.update(0.1, "reading transforms, EEG positions and surfaces")
    fields = None
    if files.conform2mni is not None and files.mni2conform is not None:
        fields = (load_deformation_field(files.conform2mni), load_deformation_field(files.mni2conform))
    caps = {cap: read_eeg_csv(cap) for cap in files.eeg_caps}
    given = {key: merge_hemispheres(read_surface(lh), read_surface(rh)) for key, (lh, rh) in files.surfaces.items()}
    ws = Workspace.create(out_dir, subject_id or files.subject_id)
    common = {"importer": "simnibs", "simnibs_layout": files.version}

    prog.update(0.2, "copying images")
    t1 = _copy_nifti_gz(files.t1, ws.path("t1"))
    ws.add_source("T1", t1, original=files.t1)
    if files.t2 is not None:
        ws.add_source("T2", _copy_nifti_gz(files.t2, ws.path("t2")), original=files.t2)
    if files.labels is not None:
        t = time.perf_counter()
        labels = _copy_nifti_gz(files.labels, ws.path("labels"))
        ws.record_step("labels", _source_params(files.labels, **common), inputs=[t1], outputs=[labels],
                       seconds=time.perf_counter() - t)

    prog.update(0.3, "writing head mesh")
    mesh_path = write_msh(head, ws.path("mesh"))
    ws.record_step("mesh", _source_params(files.mesh, **common, generated_surface_triangles=generated),
                   inputs=[t1], outputs=[mesh_path], seconds=time.perf_counter() - t0)

    if fields is not None:
        prog.update(0.5, "copying MNI transforms")
        t = time.perf_counter()
        from navigator.core.transforms import MniTransform

        s2m, m2s = fields
        if files.mni2conform_affine is not None:
            try:
                affine = np.linalg.inv(np.loadtxt(files.mni2conform_affine).reshape(4, 4))
            except ValueError:
                raise InputError(files.mni2conform_affine, "not a 4x4 text matrix") from None
            how = f"inverse of {files.mni2conform_affine.name}"
        else:
            affine = fit_affine(s2m)
            how = "least-squares fit to Conform2MNI_nonl"
        outputs = MniTransform(affine, s2m, m2s).save(ws.path("transforms"))
        ws.record_step("transforms", {**_source_params(files.conform2mni, **common),
                                      "inverse_source": str(files.mni2conform.resolve()), "affine": how},
                       inputs=[t1], outputs=outputs, seconds=time.perf_counter() - t)
    else:
        log.warning("%s: no toMNI deformation fields; the workspace has no MNI transforms", files.folder)

    if files.eeg_caps:
        prog.update(0.6, "copying EEG positions")
        default = next((c for c in files.eeg_caps if c.name == DEFAULT_EEG_CAP), files.eeg_caps[0])
        outputs = [write_eeg_csv(caps[default], ws.path("eeg"))]
        for cap in files.eeg_caps:
            outputs.append(write_eeg_csv(caps[cap], ws.path("targets") / "eeg_caps" / cap.name))
        ws.record_step("eeg", _source_params(default, **common, caps=[c.name for c in files.eeg_caps]),
                       inputs=[t1], outputs=outputs)

    prog.update(0.7, "surfaces")
    t = time.perf_counter()
    surfaces: dict[str, Surface] = dict(given)
    origin = {key: f"{lh.parent.name}/{{lh,rh}}.{lh.name[3:]}" for key, (lh, rh) in files.surfaces.items()}
    extracted, method = head_surfaces(head, middle="middle_gm" not in surfaces)
    for key, surf in extracted.items():
        if key not in surfaces:
            surfaces[key] = surf
            origin[key] = method
    _write_surfaces(ws, surfaces, {**common, "source": str(files.folder.resolve()), "origin": origin},
                    inputs=[mesh_path])
    log.debug("surfaces written in %.1f s", time.perf_counter() - t)
    prog.update(1.0, "done")
    return ws


# ---------------------------------------------------------------------------- import bare mesh
def _safe_subject_id(stem: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.\-]", "_", stem).lstrip("_.-") or "subject"
    return s[:128]


def import_mesh(path: str | Path, out_dir: str | Path, subject_id: str | None = None,
                progress: Progress | None = None) -> Workspace:
    """Create a workspace holding only a head mesh (plus its surfaces) from a gmsh file.

    Any tags are accepted; when the file has no surface triangles (tags > 1000), interface and
    outer-boundary triangles are generated (:func:`boundary_triangles`). Fields in the file
    are dropped.
    """
    prog = ensure_progress(progress)
    path = Path(path)
    prog.update(0.0, "reading mesh")
    t0 = time.perf_counter()
    mesh = read_msh(path, check=True)
    try:
        head, generated = head_mesh_for_workspace(mesh)
    except NavigatorError as exc:
        raise InputError(path, str(exc)) from None
    ws = Workspace.create(out_dir, subject_id or _safe_subject_id(path.stem))
    prog.update(0.4, "writing mesh")
    mesh_path = write_msh(head, ws.path("mesh"))
    ws.record_step("mesh", _source_params(path, importer="gmsh", generated_surface_triangles=generated),
                   inputs=[], outputs=[mesh_path], seconds=time.perf_counter() - t0)
    prog.update(0.6, "surfaces")
    surfaces, method = head_surfaces(head)
    _write_surfaces(ws, surfaces, {"importer": "gmsh", "origin": {k: method for k in surfaces}}, inputs=[mesh_path])
    prog.update(1.0, "done")
    return ws
