"""Stimulus-agnostic field outputs of a simulation (tDCS, TMS): mesh, surface, NIfTI, summary.

:func:`write_field_outputs` writes into ``out_dir``:

``fields.msh``
    gmsh 2.2 (binary) copy of the head mesh with ``$NodeData`` "v" (V) and ``$ElementData``
    "E" (V/m, 3 components), "magnE" (V/m), "J" (A/m^2), "magnJ" (A/m^2), "conductivity"
    (S/m), plus any ``extra_tet_fields`` (e.g. "D" = dA/dt for TMS).
``middle_gm_fields.surf.gii``  (when the head has a middle grey-matter surface)
    the middle grey-matter surface with per-vertex "magnE" and "normE" (V/m); normE is the
    component along the surface normal, positive INTO the cortex (E . -n_out), as SimNIBS.
``magnE.nii.gz``, ``E.nii.gz`` (4-D, 3 components), ``magnJ.nii.gz``, ``v.nii.gz``
    subject space on the T1 grid when the head has a T1, else on a 1 mm RAS grid over
    the mesh bounding box; voxels outside the mesh are 0.
``magnE_MNI.nii.gz``  (when the head has MNI transforms)
    |E| pulled onto the MNI grid of the MNI -> subject deformation field.

What the head offers besides the mesh comes in an :class:`OutputGrids` (built by
:meth:`navigator.targets.head.Head.output_grids`).
``summary.json``
    see :func:`field_summary`.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.atomic import atomic_write_json
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress
from navigator.core.surface import Surface
from navigator.core.tissues import GM, tissue_name
from navigator.core.transforms import MniTransform
from navigator.io.surfaces import write_surface

log = logging.getLogger(__name__)


@dataclass
class OutputGrids:
    """Where a simulation's fields are sampled besides the mesh (each optional).

    Attributes:
        middle_gm: the middle grey-matter surface (subject RAS mm) for per-vertex magnE/normE.
        image_grid: (shape, 4x4 voxel -> subject RAS mm) of the NIfTI maps (the T1 grid);
            None: a grid over the mesh bounding box.
        mni: subject <-> MNI transform for ``*_MNI.nii.gz`` maps.
        mni_missing: why the MNI transform exists but could not be read (logged), else None.
    """

    middle_gm: Surface | None = None
    image_grid: tuple[tuple[int, int, int], np.ndarray] | None = None
    mni: MniTransform | None = None
    mni_missing: str | None = None

    def warn_mni_missing(self) -> None:
        if self.mni_missing:
            log.warning("no MNI-space maps: %s", self.mni_missing)


@dataclass
class TargetRegion:
    """A sphere of ``radius_mm`` around ``center_mm`` (subject RAS), restricted to GM when present."""

    center_mm: tuple[float, float, float]
    radius_mm: float = 10.0
    name: str = "target"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "center_mm": [float(c) for c in self.center_mm], "radius_mm": float(self.radius_mm)}


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Volume-weighted percentile ``q`` (0..100) of ``values``."""
    if len(values) == 0:
        return float("nan")
    o = np.argsort(values)
    cw = np.cumsum(weights[o])
    idx = int(np.searchsorted(cw, q / 100.0 * cw[-1], side="left"))
    return float(values[o][min(idx, len(o) - 1)])


def field_summary(
    mesh: Mesh,
    E: np.ndarray,
    sigma: np.ndarray,
    *,
    target: TargetRegion | None = None,
    surface=None,
    surface_normE: np.ndarray | None = None,
    volumes: np.ndarray | None = None,
    centroids: np.ndarray | None = None,
) -> dict[str, Any]:
    """Scalar summaries of a field.

    Region of interest "roi" = GM tets (tag 2) when present, else all tets (``roi_tags`` says
    which). Keys: E_roi_p99_9 (V/m, volume-weighted 99.9th percentile of |E|, the robust peak),
    E_roi_max, E_roi_mean, focality_mm3 {"50": ..., "75": ...} = ROI volume with |E| >= 50 % /
    75 % of the p99.9 peak; target {mean_magnE, mean_normE (from the middle-GM surface
    vertices inside the sphere, when available), volume_mm3}; conductivity per tag (S/m).
    ``volumes`` (|tet volume|, mm^3) and ``centroids`` (mm) may be passed when already computed.
    """
    magn = np.linalg.norm(E, axis=1)
    vol = np.abs(mesh.tet_volumes()) if volumes is None else volumes
    tags, first = np.unique(mesh.tet_tags, return_index=True)
    has_gm = bool(np.any(tags == GM))
    roi = mesh.tet_tags == GM if has_gm else np.ones(mesh.n_tets, bool)
    magn_roi, vol_roi = magn[roi], vol[roi]
    peak = weighted_percentile(magn_roi, vol_roi, 99.9)
    out: dict[str, Any] = {
        "roi_tags": [GM] if has_gm else sorted(int(t) for t in tags),
        "E_roi_p99_9_V_per_m": peak,
        "E_roi_max_V_per_m": float(magn_roi.max()),
        "E_roi_mean_V_per_m": float(np.average(magn_roi, weights=vol_roi)),
        "focality_mm3": {
            "50": float(vol_roi[magn_roi >= 0.5 * peak].sum()),
            "75": float(vol_roi[magn_roi >= 0.75 * peak].sum()),
        },
        "conductivity_S_per_m": {  # sigma of the first tet of each tag
            str(int(t)): {"tissue": tissue_name(int(t)), "sigma": float(sigma[i])}
            for t, i in zip(tags, first)
        },
    }
    if has_gm:
        out["E_gm_p99_9_V_per_m"] = peak
    if target is not None:
        c = np.asarray(target.center_mm, float)
        cent = mesh.tet_centroids() if centroids is None else centroids
        inside = roi & (np.linalg.norm(cent - c, axis=1) <= target.radius_mm)
        t: dict[str, Any] = target.to_json()
        t["volume_mm3"] = float(vol[inside].sum())
        t["mean_magnE_V_per_m"] = float(np.average(magn[inside], weights=vol[inside])) if inside.any() else None
        t["mean_E_V_per_m"] = np.average(E[inside], axis=0, weights=vol[inside]).tolist() if inside.any() else None
        t["mean_normE_V_per_m"] = None
        if surface is not None and surface_normE is not None:
            sel = np.linalg.norm(surface.vertices - c, axis=1) <= target.radius_mm
            if sel.any():
                t["mean_normE_V_per_m"] = float(surface_normE[sel].mean())
        if not inside.any():
            log.warning("target sphere contains no ROI tetrahedra")
        out["target"] = t
    return out


def field_key_numbers(prefix: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The flat key numbers of a field summary (:func:`field_summary`) for summary tables:
    ``<prefix>_peak_v_per_m`` (the ROI's p99.9 |E|, V/m), ``<prefix>_field_at_target_v_per_m``
    (mean |E| in the target sphere, V/m) and ``<prefix>_focality50_mm3`` (ROI volume above half
    the peak, mm^3), each when the summary has it."""
    out = {f"{prefix}_peak_v_per_m": summary.get("E_roi_p99_9_V_per_m")}
    target = summary.get("target") or {}
    if target.get("mean_magnE_V_per_m") is not None:
        out[f"{prefix}_field_at_target_v_per_m"] = target["mean_magnE_V_per_m"]
    focality = summary.get("focality_mm3") or {}
    if "50" in focality:
        out[f"{prefix}_focality50_mm3"] = focality["50"]
    return out


def surface_fields(mesh: Mesh, E: np.ndarray, surface, centroids: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """|E| and normal component (positive into the cortex) at each surface vertex (V/m).

    Each vertex takes E of the tetrahedron containing it (GM tets preferred when present).
    ``centroids``: optional ``mesh.tet_centroids()`` when already computed.
    """
    gm = mesh.tet_tags == GM
    mask = gm if gm.any() else None
    from navigator.fem.sampling import locate_points

    tet, _ = locate_points(mesh, surface.vertices, tet_mask=mask, centroids=centroids)
    Ev = E[tet]
    n_out = surface.vertex_normals()
    return np.linalg.norm(Ev, axis=1), -np.einsum("ij,ij->i", Ev, n_out)


def _timed(fn, *args, **kwargs) -> float:
    """Run fn; return its wall time, s."""
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def write_fields_msh(mesh: Mesh, path: Path, node_data: dict[str, np.ndarray],
                     tet_data: dict[str, np.ndarray]) -> None:
    """The head mesh (tetrahedra and tagged triangles) with node and element fields, as gmsh 2.2."""
    from navigator.io.gmsh import write_msh

    fm = Mesh(nodes=mesh.nodes, tetrahedra=mesh.tetrahedra, tet_tags=mesh.tet_tags,
              triangles=mesh.triangles, triangle_tags=mesh.triangle_tags)
    fm.node_data.update({k: np.asarray(v, dtype=np.float64) for k, v in node_data.items()})
    fm.tet_data.update({k: np.asarray(v) for k, v in tet_data.items()})
    write_msh(fm, path)


def write_field_outputs(
    out_dir: str | Path,
    mesh: Mesh,
    v: np.ndarray,
    E_per_tet: np.ndarray,
    sigma: np.ndarray,
    *,
    grids: OutputGrids | None = None,
    target: TargetRegion | None = None,
    extra_tet_fields: dict[str, np.ndarray] | None = None,
    summary_extra: dict[str, Any] | None = None,
    progress: Progress | None = None,
    nifti: bool = True,
    nifti_spacing_mm: float = 1.0,
) -> dict[str, Any]:
    """Write a simulation's outputs (see module docstring); returns the summary dict.

    Args:
        out_dir: output folder (created). mesh: head mesh (mm). v: (N,) node potential, V.
        E_per_tet: (M, 3) V/m. sigma: (M,) S/m (J = sigma E).
        grids: the head's middle GM surface, T1 grid and MNI transform (:class:`OutputGrids`;
            None: the mesh only, NIfTI maps on a bounding-box grid).
        target: optional target sphere for the summary.
        extra_tet_fields: more per-tet fields for fields.msh. summary_extra: merged into summary.json.
        nifti: write NIfTI maps. nifti_spacing_mm: grid spacing without an image grid.
    """
    progress = ensure_progress(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    E = np.asarray(E_per_tet, dtype=np.float64).reshape(-1, 3)
    J = sigma[:, None] * E
    magnE = np.linalg.norm(E, axis=1)
    magnJ = np.linalg.norm(J, axis=1)
    files: list[str] = []

    # fields.msh (mostly file output) is written by a worker thread while the surface, NIfTI
    # and summary are computed; timings["write_msh"] is that thread's own duration
    progress.update(0.0, "writing fields.msh")
    pool = ThreadPoolExecutor(max_workers=1)
    msh_job = pool.submit(_timed, write_fields_msh, mesh, out / "fields.msh", {"v": v},
                          {"E": E, "magnE": magnE, "J": J, "magnJ": magnJ, "conductivity": sigma,
                           **(extra_tet_fields or {})})
    try:
        grids = grids or OutputGrids()
        has_surface = grids.middle_gm is not None
        # tet geometry, computed once for the surface sampling and the summary (= the values
        # of mesh.tet_centroids() and abs(mesh.tet_volumes()), compiled)
        from navigator.fem.recovery_kernels import tet_geometry

        cent, vol = tet_geometry(np.ascontiguousarray(mesh.nodes, dtype=np.float64),
                                 np.ascontiguousarray(mesh.tetrahedra, dtype=np.int64))

        surface = normE_s = None
        if has_surface:
            t0 = time.perf_counter()
            progress.update(0.3, "sampling middle grey-matter surface")
            surface = Surface(grids.middle_gm.vertices, grids.middle_gm.faces)
            magn_s, normE_s = surface_fields(mesh, E, surface, centroids=cent)
            surface.data = {"magnE": magn_s, "normE": normE_s}
            write_surface(surface, out / "middle_gm_fields.surf.gii")
            timings["surface"] = time.perf_counter() - t0

        nifti_files: list[str] = []
        if nifti:
            t0 = time.perf_counter()
            nifti_files = _write_nifti(out, mesh, v, E, magnE, magnJ, grids, nifti_spacing_mm,
                                       progress.sub(0.4, 0.95, "NIfTI"))
            timings["nifti"] = time.perf_counter() - t0
        timings["write_msh"] = msh_job.result()
    finally:
        pool.shutdown(wait=True)
    files.append("fields.msh")
    if surface is not None:
        files.append("middle_gm_fields.surf.gii")
    files += nifti_files
    timings = {k: timings[k] for k in ("write_msh", "surface", "nifti") if k in timings}

    summary: dict[str, Any] = {"n_nodes": mesh.n_nodes, "n_tets": mesh.n_tets}
    summary.update(field_summary(mesh, E, sigma, target=target, surface=surface, surface_normE=normE_s,
                                 volumes=vol, centroids=cent))
    if surface is not None:
        summary["middle_gm"] = {"magnE_p99_9_V_per_m": float(np.percentile(surface.data["magnE"], 99.9)),
                                "normE_max_V_per_m": float(normE_s.max()), "normE_min_V_per_m": float(normE_s.min())}
    extra = dict(summary_extra or {})
    merged_t = dict(extra.pop("timings_s", {}))
    merged_t.update({f"output_{k}": v_ for k, v_ in timings.items()})
    summary.update(extra)
    summary["timings_s"] = merged_t
    summary["files"] = files + ["summary.json"]
    atomic_write_json(out / "summary.json", summary)
    progress.update(1.0, "outputs written")
    return summary


def _write_nifti(out: Path, mesh: Mesh, v, E, magnE, magnJ, grids: OutputGrids, spacing, progress) -> list[str]:
    from navigator.core.volume import Volume
    from navigator.fem.sampling import bbox_grid, fill_voxels, rasterize_tets
    from navigator.io.images import save_nifti

    if grids.image_grid is not None:
        shape, affine = grids.image_grid
    else:
        affine, shape = bbox_grid(mesh, spacing)
    flat, tet, bary = rasterize_tets(mesh, affine, shape, progress)
    n_vox = int(np.prod(shape))
    # per-tet values scattered to the voxels in one compiled pass: |E|, E (3), |J|; v interpolated
    tet_values = np.ascontiguousarray(np.column_stack([magnE, E, magnJ]), dtype=np.float64)
    tet_grid = np.zeros((n_vox, 5), np.float32)
    v_grid = np.zeros(n_vox, np.float32)
    fill_voxels(flat, tet, bary, np.ascontiguousarray(mesh.tetrahedra, dtype=np.int64), tet_values,
                np.ascontiguousarray(v, dtype=np.float64), tet_grid, v_grid)

    def vol(data: np.ndarray) -> Volume:
        grid = np.ascontiguousarray(data).reshape(*shape, -1) if data.ndim > 1 else data.reshape(shape)
        return Volume(grid, affine)

    magnE_v = vol(tet_grid[:, 0])
    written = []
    # the gzip compression (zlib releases the GIL) of the maps runs on two threads
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(save_nifti, magnE_v, out / "magnE.nii.gz", dtype=np.float32)]
        written.append("magnE.nii.gz")
        for name, make in (
            ("E", lambda: vol(tet_grid[:, 1:4])),
            ("magnJ", lambda: vol(tet_grid[:, 4])),
            ("v", lambda: vol(v_grid)),
        ):
            jobs.append(pool.submit(save_nifti, make(), out / f"{name}.nii.gz", dtype=np.float32))
            written.append(f"{name}.nii.gz")
        grids.warn_mni_missing()
        if grids.mni is not None:
            jobs.append(pool.submit(save_nifti, grids.mni.image_to_mni(magnE_v), out / "magnE_MNI.nii.gz",
                                    dtype=np.float32))
            written.append("magnE_MNI.nii.gz")
        for job in jobs:
            job.result()
    return written
