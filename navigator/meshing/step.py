"""Workspace step "mesh": labels/labels.nii.gz -> mesh/head.msh, surfaces, quality report.

Outputs (paths from :data:`navigator.core.workspace.LAYOUT`):

* ``mesh/head.msh``: gmsh 2.2 binary, tetrahedra tagged by tissue, triangles 1000 + tissue;
* ``surfaces/{scalp,gm,wm,middle_gm}.surf.gii``: the surfaces that exist (see
  :mod:`navigator.meshing.surfaces`);
* ``mesh/quality.json``: :class:`~navigator.meshing.quality.MeshQuality`, per-tissue label vs
  mesh volumes and the problems found by :func:`~navigator.meshing.quality.check_mesh`.

The step is skipped when it already ran with the same parameters on the same labels file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.atomic import atomic_write_json
from navigator.core.errors import InputError, NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress
from navigator.core.surface import Surface
from navigator.core.tissues import tissue_name
from navigator.core.volume import Volume
from navigator.core.workspace import Workspace
from navigator.meshing.mesher import MeshParameters, labels_to_mesh
from navigator.meshing.quality import check_mesh, mesh_quality, volume_errors
from navigator.meshing.surfaces import extract_surfaces

STEP = "mesh"
QUALITY_FILE = "mesh/quality.json"
#: extract_surfaces() name -> workspace LAYOUT key.
SURFACE_KEYS = {"scalp": "scalp", "gm": "gm_surface", "wm": "wm_surface", "middle_gm": "middle_gm"}


def read_labels(path: str | Path) -> Volume:
    """Read a label NIfTI as an integer :class:`Volume` (world RAS mm from sform/qform)."""
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise InputError(path, "label image not found (run the segmentation step first)")
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file for the user
        raise InputError(path, f"cannot read label image ({exc})") from None
    data = np.squeeze(data)
    if data.ndim != 3:
        raise InputError(path, f"label image must be 3-D, got shape {data.shape}")
    if data.dtype.kind == "f":
        data = np.rint(data)
    return Volume(data=data.astype(np.int32), affine=np.asarray(img.affine, float), source=str(path))


def write_mesh(mesh: Mesh, path: Path) -> None:
    """Write ``mesh`` as gmsh 2.2 binary (navigator.io.gmsh writes atomically)."""
    from navigator.io.gmsh import write_msh

    write_msh(mesh, path, binary=True)


def write_surface(surface: Surface, path: Path) -> None:
    """Write a surface as GIFTI (navigator.io.surfaces writes atomically)."""
    from navigator.io.surfaces import write_surface as _write

    _write(surface, path)


def quality_report(mesh: Mesh, labels: Volume | None) -> dict[str, Any]:
    """JSON-ready quality report: element statistics, volumes per tissue, problems."""
    q = mesh_quality(mesh)
    problems = check_mesh(mesh, labels, quality=q)
    report: dict[str, Any] = {"quality": q.to_json(), "problems": problems, "passed": not problems}
    if labels is not None:
        report["volumes"] = {
            str(t): {"tissue": tissue_name(t), "label_mm3": lv, "mesh_mm3": mv, "relative_error": err}
            for t, (lv, mv, err) in volume_errors(mesh, labels).items()
        }
    return report


def mesh_workspace(ws: Workspace, *, progress: Progress | None = None, force: bool = False,
                   **params: Any) -> bool:
    """Run the mesh step on a workspace; returns True if it ran, False if it was current.

    ``params`` are :class:`~navigator.meshing.mesher.MeshParameters` fields (unknown names
    raise TypeError). Raises NavigatorError if the labels are missing or meshing fails.
    """
    progress = ensure_progress(progress)
    labels_path = ws.path("labels")
    if not labels_path.exists():
        raise NavigatorError(f"{labels_path}: no label image in this workspace (run segmentation first)")
    mp = MeshParameters.from_kwargs(**params)
    recorded = mp.to_json()
    if not force and ws.step_is_current(STEP, recorded, [labels_path]):
        return False
    t0 = time.monotonic()
    labels = read_labels(labels_path)
    mesh = labels_to_mesh(labels, params=mp, progress=progress.sub(0.0, 0.8, "meshing"))
    progress.update(0.8, "checking quality")
    report = quality_report(mesh, labels)
    progress.update(0.85, "extracting surfaces")
    surfaces = extract_surfaces(mesh)
    progress.update(0.92, "writing files")
    # outputs are staged and committed together with the manifest record: a crash or kill
    # leaves the previous mesh, surfaces and record (navigator.core.step_commit)
    with ws.step_commit(STEP) as tx:
        out_mesh = ws.path("mesh")
        write_mesh(mesh, tx.stage(out_mesh))
        outputs: list[Path] = [out_mesh]
        for name, key in SURFACE_KEYS.items():
            p = ws.path(key)
            if name in surfaces:
                write_surface(surfaces[name], tx.stage(p))
                outputs.append(p)
            else:
                tx.remove(p)  # a stale surface from an earlier run would contradict this mesh
        report["surfaces"] = {n: {"vertices": len(s.vertices), "faces": len(s.faces)}
                              for n, s in surfaces.items()}
        report["parameters"] = recorded
        report["seconds"] = time.monotonic() - t0
        qpath = ws.root / QUALITY_FILE
        atomic_write_json(tx.stage(qpath), report)
        outputs.append(qpath)
        tx.commit(recorded, inputs=[labels_path], outputs=outputs, seconds=time.monotonic() - t0)
    progress.update(1.0, "done")
    return True


def read_quality(ws: Workspace) -> dict[str, Any] | None:
    """The quality report of the last mesh step, or None."""
    import json

    p = ws.root / QUALITY_FILE
    return json.loads(p.read_text()) if p.exists() else None
