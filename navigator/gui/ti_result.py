"""Temporal-interference (TI) results for display, without Qt: the envelope maps on the cortex
and on the slices.

A TI folder (``navigator simulate ti``, ``navigator optimize ti`` -> ``fields/``, the app's TI
simulation; see :func:`navigator.tes.simulate_ac.write_ti_outputs`) holds the carrier fields
E1, E2 and the maximal envelope TImax per tetrahedron (``fields.msh``) and TImax / TInormal on
the middle grey-matter surface. Two maps can be shown, and the optimizer's objective says
which one it maximized:

* ``TImax``: the maximal envelope modulation over all directions, |E_AM|max (Grossman et al.
  2017), per tetrahedron of the whole head;
* ``TInormal``: the envelope along the cortical normal, |E_AM . n| = 2 min(|E1.n|, |E2.n|).
  On the cortex it is the stored surface map; in the slices it is computed here for the grey
  matter tetrahedra with the normal of the nearest middle grey-matter vertex (as the
  optimizer's "normal" objective does), 0 elsewhere (the cortical normal is not defined there).

Both volume maps are sampled on the display grid (piecewise constant per tetrahedron) from
the stored carriers: nothing is re-solved. Units V/m.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.progress import Progress, ensure_progress

#: map name -> the legend title (3-D colour bar, slices, histogram)
TI_TITLES = {
    "TInormal": "TI envelope along the cortical normal (V/m)",
    "TImax": "TI envelope, maximal over directions (V/m)",
}
#: short names for the status bar and the results table
TI_SHORT = {"TInormal": "TI envelope (normal)", "TImax": "TI envelope (max)"}


def quantity_for_objective(objective: str | None) -> str:
    """The map an optimizer's objective ("normal" | "magnitude") maximized."""
    return "TImax" if objective == "magnitude" else "TInormal"


def is_ti(summary: dict[str, Any]) -> bool:
    """True for the summary.json of a TI field folder."""
    return summary.get("stimulus") == "ti"


def tet_envelope_normal(mesh, E1: np.ndarray, E2: np.ndarray, cortex) -> np.ndarray:
    """Per-tetrahedron envelope along the cortical normal (V/m): grey matter tetrahedra with
    the normal of the nearest middle grey-matter vertex, 0 elsewhere."""
    from scipy.spatial import cKDTree

    from navigator.core.tissues import GM
    from navigator.tes.ti import ti_envelope_along

    out = np.zeros(mesh.n_tets)
    gm = np.flatnonzero(mesh.tet_tags == GM)
    if len(gm) == 0:
        return out
    centroids = np.asarray(mesh.nodes, float)[np.asarray(mesh.tetrahedra)[gm]].mean(axis=1)  # grey matter only
    _, idx = cKDTree(np.asarray(cortex.vertices, float)).query(centroids)
    n = cortex.vertex_normals()[idx]
    out[gm] = ti_envelope_along(np.asarray(E1, float)[gm], np.asarray(E2, float)[gm], n)
    return out


def _volumes(mesh, tets: np.ndarray) -> np.ndarray:
    """Volumes (mm^3) of the tetrahedra ``tets`` only (the whole mesh's would cost seconds)."""
    p = np.asarray(mesh.nodes, float)[np.asarray(mesh.tetrahedra)[tets]]
    return np.abs(np.einsum("ij,ij->i", p[:, 1] - p[:, 0], np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]))) / 6.0


def maps_on_grid(mesh, tet_maps: dict[str, np.ndarray], grid) -> dict[str, np.ndarray]:
    """Per-tetrahedron maps sampled at the voxel centres of ``grid`` (float32, 0 outside the
    mesh); the grid is rasterized once for all maps."""
    from navigator.fem.sampling import rasterize_tets

    shape = tuple(int(v) for v in grid.shape[:3])
    flat, tet, _ = rasterize_tets(mesh, np.asarray(grid.affine, float), shape, None)
    out = {}
    for name, values in tet_maps.items():
        v = np.zeros(int(np.prod(shape)), np.float32)
        v[flat] = np.asarray(values, float)[tet]
        out[name] = v.reshape(shape)
    return out


def load_ti_maps(out_dir: str | Path, grid, progress: Progress | None = None) -> dict[str, Any]:
    """Read a TI field folder for display: ``cortex`` (middle GM surface with TImax/TInormal or
    None), ``volumes`` (name -> map on ``grid``; {} without a grid), ``histograms`` (name ->
    (grey-matter values V/m, tetrahedron volumes mm^3))."""
    from navigator.core.tissues import GM
    from navigator.io.gmsh import read_msh
    from navigator.io.surfaces import read_surface

    progress = ensure_progress(progress)
    out = Path(out_dir)
    cortex = None
    if (out / "middle_gm_fields.surf.gii").exists():
        cortex = read_surface(out / "middle_gm_fields.surf.gii")
    res: dict[str, Any] = {"cortex": cortex, "volumes": {}, "histograms": {}}
    if not (out / "fields.msh").exists():
        if cortex is not None:
            res["histograms"] = {k: (np.asarray(cortex.data[k]), None) for k in TI_TITLES if k in cortex.data}
        return res
    progress.update(0.2, "reading the TI carriers")
    m = read_msh(out / "fields.msh")
    tet_maps = {}
    if "TImax" in m.tet_data:
        tet_maps["TImax"] = np.asarray(m.tet_data["TImax"], float)
    if cortex is not None and "E1" in m.tet_data and "E2" in m.tet_data:
        progress.update(0.4, "envelope along the cortical normal")
        tet_maps["TInormal"] = tet_envelope_normal(m, m.tet_data["E1"], m.tet_data["E2"], cortex)
    sel = np.flatnonzero(m.tet_tags == GM) if np.any(m.tet_tags == GM) else np.arange(m.n_tets)
    res["histograms"] = {k: (v[sel], _volumes(m, sel)) for k, v in tet_maps.items()}
    if grid is not None and tet_maps:
        progress.update(0.6, "sampling the envelope maps on the image grid")
        res["volumes"] = maps_on_grid(m, tet_maps, grid)
    progress.update(1.0, "TI maps read")
    return res
