"""Create a workspace from a head model made elsewhere: a SimNIBS 3/4 m2m folder
(:func:`import_simnibs`) or a bare gmsh head mesh (:func:`import_mesh`).

The files are read with :mod:`navigator.io.simnibs` (layouts listed there); surfaces missing
from the source are extracted from the mesh (:func:`navigator.meshing.surfaces.extract_surfaces`).
Everything written is recorded as a workspace step with the source path and its SHA-256.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import numpy as np

from navigator.core.errors import InputError, NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.surface import Surface
from navigator.core.transforms import MniTransform
from navigator.core.workspace import Workspace
from navigator.io.eeg_positions import read_eeg_csv, write_eeg_csv
from navigator.io.gmsh import read_msh, write_msh
from navigator.io.simnibs import (
    DEFAULT_EEG_CAP,
    SURFACE_KEYS,
    copy_nifti_gz,
    find_m2m_files,
    fit_affine,
    head_mesh_for_workspace,
    load_deformation_field,
    merge_hemispheres,
    source_params,
)
from navigator.io.surfaces import read_surface, write_surface
from navigator.io.transforms import save_mni_transform
from navigator.meshing.surfaces import extract_surfaces

log = logging.getLogger(__name__)

#: what the manifest records as the origin of extracted surfaces
EXTRACTED = "navigator.meshing.surfaces.extract_surfaces"


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
    t1 = copy_nifti_gz(files.t1, ws.path("t1"))
    ws.add_source("T1", t1, original=files.t1)
    if files.t2 is not None:
        ws.add_source("T2", copy_nifti_gz(files.t2, ws.path("t2")), original=files.t2)
    if files.labels is not None:
        t = time.perf_counter()
        labels = copy_nifti_gz(files.labels, ws.path("labels"))
        ws.record_step("labels", source_params(files.labels, **common), inputs=[t1], outputs=[labels],
                       seconds=time.perf_counter() - t)

    prog.update(0.3, "writing head mesh")
    mesh_path = write_msh(head, ws.path("mesh"))
    ws.record_step("mesh", source_params(files.mesh, **common, generated_surface_triangles=generated),
                   inputs=[t1], outputs=[mesh_path], seconds=time.perf_counter() - t0)

    if fields is not None:
        prog.update(0.5, "copying MNI transforms")
        t = time.perf_counter()
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
        outputs = save_mni_transform(MniTransform(affine, s2m, m2s), ws.path("transforms"))
        ws.record_step("transforms", {**source_params(files.conform2mni, **common),
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
        ws.record_step("eeg", source_params(default, **common, caps=[c.name for c in files.eeg_caps]),
                       inputs=[t1], outputs=outputs)

    prog.update(0.7, "surfaces")
    t = time.perf_counter()
    surfaces: dict[str, Surface] = dict(given)
    origin = {key: f"{lh.parent.name}/{{lh,rh}}.{lh.name[3:]}" for key, (lh, rh) in files.surfaces.items()}
    extracted = extract_surfaces(head, middle="middle_gm" not in surfaces)
    for key, surf in extracted.items():
        if key not in surfaces:
            surfaces[key] = surf
            origin[key] = EXTRACTED
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
    outer-boundary triangles are generated (:func:`navigator.io.mesh_boundary.boundary_triangles`). Fields in the file
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
    ws.record_step("mesh", source_params(path, importer="gmsh", generated_surface_triangles=generated),
                   inputs=[], outputs=[mesh_path], seconds=time.perf_counter() - t0)
    prog.update(0.6, "surfaces")
    surfaces = extract_surfaces(head)
    _write_surfaces(ws, surfaces, {"importer": "gmsh", "origin": {k: EXTRACTED for k in surfaces}}, inputs=[mesh_path])
    prog.update(1.0, "done")
    return ws
