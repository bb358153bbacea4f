"""A small spherical test subject for the GUI's tests, screenshots and quick demos.

:func:`write_sphere_subject` builds a complete, coarse workspace in a few seconds: a
five-shell concentric-sphere head mesh (WM, GM, CSF, bone, scalp), its surfaces, a
synthetic T1 and label image on a 2 mm grid, an identity subject <-> MNI transform (the
sphere *is* in MNI space, centred at the origin), automatic fiducials and EEG 10-10
positions. The T1 carries a bright marker in the *left* frontal scalp so orientation
mistakes are visible in the slice views. No Qt here: the builder is plain numerics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from navigator.core.progress import Progress, ensure_progress
from navigator.core.volume import Volume
from navigator.core.workspace import Workspace

#: Shell radii (mm) and tags: WM, GM, CSF, bone, scalp (SimNIBS numbering).
RADII = (62.0, 70.0, 74.0, 80.0, 86.0)
TAGS = (1, 2, 3, 4, 5)
#: T1-like intensity per tag (arbitrary units).
T1_INTENSITY = {0: 0.0, 1: 110.0, 2: 70.0, 3: 25.0, 4: 15.0, 5: 90.0}
#: Centre (mm) and radius of the bright orientation marker in the left frontal scalp.
MARKER_MM = (-45.0, 55.0, 40.0)
MARKER_RADIUS_MM = 8.0


def _labels_on_grid(spacing: float, half: float) -> Volume:
    n = round(2 * half / spacing) + 1
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -half
    ax = np.arange(n) * spacing - half
    X, Y, Z = np.meshgrid(ax, ax, ax, indexing="ij")
    r = np.sqrt(X ** 2 + Y ** 2 + Z ** 2)
    lab = np.zeros(r.shape, np.uint8)
    for rad, tag in sorted(zip(RADII, TAGS), reverse=True):
        lab[r <= rad] = tag
    return Volume(lab, affine)


def _identity_transform(half: float = 110.0, spacing: float = 5.0):
    from navigator.core.transforms import MniTransform

    n = round(2 * half / spacing) + 1
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -half
    ax = np.arange(n) * spacing - half
    grid = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), axis=-1).astype(np.float32)
    field = Volume(grid, affine)
    return MniTransform(np.eye(4), field, Volume(grid.copy(), affine.copy()))


def write_sphere_subject(out_dir: str | Path, *, mesh_size_mm: float = 9.0, t1_spacing_mm: float = 2.0,
                         seed: int = 0, progress: Progress | None = None) -> Workspace:
    """Write the spherical test subject into the new or empty folder ``out_dir``.

    Args:
        out_dir: workspace folder to create.
        mesh_size_mm: target tetrahedron edge length (9 mm gives ~33k tetrahedra, 12 mm ~15k).
        t1_spacing_mm: voxel size of the synthetic T1 and labels (2 mm: 101^3 voxels).
        seed: seed of the T1 noise.
    Returns:
        the opened :class:`Workspace` (mesh, surfaces, T1, labels, transforms, fiducials, EEG).
    """
    import tempfile

    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.io.gmsh import write_msh
    from navigator.io.images import save_nifti
    from navigator.meshing.import_head import import_mesh
    from navigator.targets.step import head_coordinates_workspace

    progress = ensure_progress(progress)
    out_dir = Path(out_dir)
    progress.update(0.0, "meshing spheres")
    mesh = concentric_sphere_mesh(RADII, TAGS, size=mesh_size_mm)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sphere_head.msh"
        write_msh(mesh, src)
        progress.update(0.4, "importing mesh")
        ws = import_mesh(src, out_dir, subject_id=out_dir.name if out_dir.name else "sphere")
    progress.update(0.6, "synthetic T1")
    labels = _labels_on_grid(t1_spacing_mm, 100.0)
    rng = np.random.default_rng(seed)
    lut = np.zeros(256, np.float32)
    for k, v in T1_INTENSITY.items():
        lut[k] = v
    t1 = lut[labels.data]
    ax = np.arange(labels.shape[0]) * t1_spacing_mm - 100.0
    X, Y, Z = np.meshgrid(ax, ax, ax, indexing="ij")
    m = np.array(MARKER_MM)
    t1[(X - m[0]) ** 2 + (Y - m[1]) ** 2 + (Z - m[2]) ** 2 <= MARKER_RADIUS_MM ** 2] = 160.0
    t1 = t1 + rng.normal(0.0, 3.0, t1.shape).astype(np.float32) * (labels.data > 0)
    save_nifti(Volume(t1.astype(np.float32), labels.affine), ws.path("t1"), dtype=np.float32)
    ws.add_source("T1", ws.path("t1"), original="navigator.gui.testing sphere subject")
    save_nifti(labels, ws.path("labels"), dtype=np.uint8)
    ws.record_step("labels", {"generator": "sphere test subject", "radii_mm": list(RADII)},
                   inputs=[ws.path("t1")], outputs=[ws.path("labels")])
    progress.update(0.75, "MNI transform (identity)")
    from navigator.io.transforms import save_mni_transform

    outputs = save_mni_transform(_identity_transform(), ws.path("transforms"))
    ws.record_step("transforms", {"generator": "identity (sphere in MNI space)"}, inputs=[ws.path("t1")],
                   outputs=outputs)
    progress.update(0.85, "fiducials and EEG positions")
    head_coordinates_workspace(ws)
    progress.update(1.0, "done")
    return Workspace.open(out_dir)


#: a point 10 mm under the sphere's scalp, left frontal (subject RAS mm), as `navigator demo --sample sphere`
SPHERE_TARGET = "subject:-30,20,75"


def write_demo_results(ws: Workspace, *, progress: Progress | None = None) -> list[str]:
    """Add what `navigator demo` leaves in a workspace, computed for real and coarse: a TMS
    simulation (``simulations/tms``), a tDCS simulation (``simulations/tdcs``, two 10 mm discs)
    and a TMS placement optimization (``plans/tms``: plan.json, summary.json, fields/), no
    volume maps. Returns the folders written, relative to the workspace."""
    from navigator.optimize.tms import TmsSearch, optimize_tms_workspace
    from navigator.tes.montage import parse_electrode_spec
    from navigator.tes.simulate import simulate_tdcs_workspace
    from navigator.tms.simulate import simulate_tms_workspace

    progress = ensure_progress(progress)
    progress.update(0.0, "TMS simulation")
    simulate_tms_workspace(ws, "Magstim_D70", target_spec=SPHERE_TARGET, intensity=50.0,
                           out_dir=ws.path("simulations") / "tms", nifti=False)
    progress.update(0.3, "tDCS simulation")
    from navigator.fem.outputs import TargetRegion
    from navigator.targets.head import Head

    t = Head.of(ws).target(SPHERE_TARGET)
    region = TargetRegion(tuple(t.cortical_point or t.point), 10.0)
    electrodes = [parse_electrode_spec(e) for e in ("-45,20,80:2:disc:10", "45,20,80:-2:disc:10")]
    simulate_tdcs_workspace(ws, electrodes, ws.path("simulations") / "tdcs", target=region, nifti=False)
    progress.update(0.5, "TMS optimization")
    optimize_tms_workspace(ws, target=SPHERE_TARGET, out_dir=ws.path("plans") / "tms",
                           search=TmsSearch(radius_mm=5.0, spacing_mm=5.0, angle_step_deg=90.0, nifti=False))
    progress.update(1.0, "done")
    return ["simulations/tms", "simulations/tdcs", "plans/tms"]
