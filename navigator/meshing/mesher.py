"""Label image -> conforming tetrahedral head mesh (CGAL Mesh_3 via pygalmesh).

Pipeline (see ``docs/meshing.md`` for the measurements behind the defaults):

1. Crop the label image to the head (non-zero labels) plus a margin, pad with background.
2. Remove voxel staircases without losing thin layers (:mod:`navigator.meshing.labelfield`):
   each label's indicator (background included) is Gaussian-smoothed with ``smooth_sigma_mm``
   on the input grid, trilinearly resampled onto a finer grid of ``upsample_mm`` voxels, and
   every fine voxel takes the label of highest membership. With ``preserve_volumes`` each
   voxel centre keeps its own label (local boosts) and per-label offsets make every label
   keep its voxel volume on the fine grid.
3. CGAL Mesh_3 meshes the multi-label image: one subdomain per label, interfaces shared
   (conforming by construction). Criteria: ``facet_angle_deg``, ``facet_size_mm`` (radius of
   the surface Delaunay balls), ``facet_distance_mm`` (surface approximation error),
   ``cell_radius_edge_ratio`` and a per-tissue ``cell_size`` (max circumradius, mm).
   Optional optimisers lloyd/odt/perturb/exude; exudation works on the elements below
   ``exude_sliver_bound_deg`` until none can be improved, so it ends by itself and its result
   does not depend on the machine's load (``exude_time_limit_s`` is only a safety net).
   Sliver perturbation is off by default: CGAL limits it to the wall-clock time the
   refinement took, so its result changed from run to run; without it the same labels give
   the same mesh, bit for bit.
4. Vertices are mapped exactly through the label volume's affine (any orientation, flips
   included) to world RAS mm; every tetrahedron is re-oriented to positive volume.
5. Disconnected pieces of a tissue smaller than ``min_component_mm3`` are given to the
   neighbouring tissue they share most faces with (or dropped if they float in background);
   flat tetrahedra on the outer boundary are removed.
6. With ``project_interfaces``, nodes on two-tissue interfaces move onto the smooth interface
   of step 2 (CGAL leaves them on the fine grid's staircase, within its bisection tolerance).
7. Interface triangles are tagged 1000 + N, see :func:`tag_surfaces`.
8. Remaining slivers are repaired by local node moves (:mod:`navigator.meshing.slivers`),
   then the interface projection is repeated for nodes the slivers had blocked.

The post-processing loops (face table, element quality, projection, sliver repair, fine label
grid) are compiled with numba (:mod:`navigator.meshing._kernels`); ``labels_to_mesh(...,
timings={})`` reports wall and CPU seconds per stage.
"""

from __future__ import annotations

import logging
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import InputError, NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.progress import Progress, ensure_progress
from navigator.core.tissues import (
    BLOOD,
    BONE,
    COMPACT_BONE,
    CSF,
    EYES,
    GM,
    MUSCLE,
    SCALP,
    SPONGY_BONE,
    SURFACE_OFFSET,
    WM,
)
from navigator.core.volume import Volume
from navigator.meshing.labelfield import LabelField, upsample_linear
from navigator.meshing.topology import TET_FACES, FaceTable, face_table, interfaces, subset_face_table

log = logging.getLogger(__name__)


class _StageTimer:
    """Wall and CPU seconds per pipeline stage (CPU includes finished child processes)."""

    def __init__(self, out: dict | None) -> None:
        self.out = out if out is not None else {}
        self._t, self._c = time.perf_counter(), self._cpu()

    @staticmethod
    def _cpu() -> float:
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def lap(self, stage: str) -> None:
        t, c = time.perf_counter(), self._cpu()
        w0, c0 = self.out.get(stage, (0.0, 0.0))
        self.out[stage] = (round(w0 + t - self._t, 2), round(c0 + c - self._c, 2))
        log.debug("meshing stage %s: %.1f s wall, %.1f s CPU", stage, t - self._t, c - self._c)
        self._t, self._c = t, c


#: Default maximum tetrahedron circumradius per tissue, mm: fine in grey matter and CSF
#: (thin, high field gradients), coarser in white matter, bone, scalp.
DEFAULT_CELL_SIZES: dict[int, float] = {
    WM: 3.5, GM: 2.0, CSF: 2.0, BONE: 3.0, SCALP: 4.0, EYES: 3.0,
    COMPACT_BONE: 3.0, SPONGY_BONE: 3.0, BLOOD: 2.5, MUSCLE: 4.0,
}


#: Interface projection may not take a tetrahedron's smallest dihedral angle below
#: min(its angle before, this), degrees (just above the sliver repair's 6 deg target, so the
#: projection leaves it no new work), nor its radius ratio below min(its ratio before, 0.05).
PROJECT_MIN_ANGLE_DEG = 6.1


@dataclass
class MeshParameters:
    """Meshing parameters (lengths in mm, angles in degrees, times in seconds).

    ``tissue_cell_sizes`` overrides :data:`DEFAULT_CELL_SIZES` per tag; tags in neither use
    ``cell_size_mm``. ``upsample_mm = 0`` and ``smooth_sigma_mm = 0`` disable resampling
    and smoothing. Flat tetrahedra on the outer boundary of the mesh (two or more faces on
    it) with a dihedral angle below ``boundary_sliver_deg`` are removed (0 = keep them).
    Nodes of tetrahedra with a dihedral angle below ``sliver_target_deg`` are then moved
    locally (:mod:`navigator.meshing.slivers`; 0 = off); elements still below
    ``sliver_floor_deg`` may then move a node off its interface by the smallest step that
    lifts them (0 = never). CGAL's exudation treats elements below ``exude_sliver_bound_deg``
    (0 = all, until ``exude_time_limit_s`` of wall-clock time; 0 = no limit). ``perturb``
    turns on CGAL's sliver perturbation, which runs for as long as the refinement took (wall
    clock), so the mesh then depends on the machine's speed and load.
    ``preserve_volumes`` keeps thin structures and every label's voxel volume when smoothing;
    ``project_interfaces`` moves interface nodes onto the smooth interfaces
    (:mod:`navigator.meshing.labelfield`).
    """

    cell_size_mm: float = 3.5
    tissue_cell_sizes: dict[int, float] = field(default_factory=dict)
    facet_size_mm: float = 2.0
    facet_distance_mm: float = 0.4
    facet_angle_deg: float = 30.0
    cell_radius_edge_ratio: float = 2.0
    upsample_mm: float = 0.5
    smooth_sigma_mm: float = 0.6
    lloyd: bool = False
    odt: bool = False
    perturb: bool = False
    exude: bool = True
    exude_time_limit_s: float = 300.0
    exude_sliver_bound_deg: float = 15.0
    min_component_mm3: float = 5.0
    boundary_sliver_deg: float = 10.0
    sliver_target_deg: float = 6.0
    sliver_floor_deg: float = 5.5
    preserve_volumes: bool = True
    project_interfaces: bool = True
    seed: int = 0

    def cell_sizes(self, tags: list[int]) -> dict[int, float]:
        """Maximum circumradius per present tag, mm."""
        out = {}
        for t in tags:
            if t in self.tissue_cell_sizes:
                out[t] = float(self.tissue_cell_sizes[t])
            elif t in DEFAULT_CELL_SIZES:
                out[t] = DEFAULT_CELL_SIZES[t]
            else:
                out[t] = float(self.cell_size_mm)
        return out

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tissue_cell_sizes"] = {str(k): v for k, v in self.tissue_cell_sizes.items()}
        return d

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> MeshParameters:
        names = {f.name for f in fields(cls)}
        unknown = set(kwargs) - names
        if unknown:
            raise TypeError(f"unknown meshing parameter(s): {', '.join(sorted(unknown))}")
        kw = dict(kwargs)
        if "tissue_cell_sizes" in kw and kw["tissue_cell_sizes"] is not None:
            kw["tissue_cell_sizes"] = {int(k): float(v) for k, v in kw["tissue_cell_sizes"].items()}
        elif "tissue_cell_sizes" in kw:
            kw.pop("tissue_cell_sizes")
        return cls(**kw)


# ---------------------------------------------------------------------------- label grid

def _crop(data: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop to the non-zero bounding box and pad with ``margin`` zero voxels on every side.

    Returns (array, offset): original index = array index + offset.
    """
    nz = np.nonzero(data)
    lo = np.array([a.min() for a in nz])
    hi = np.array([a.max() for a in nz]) + 1
    sub = data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    return np.pad(sub, margin), lo - margin


_upsample_linear = upsample_linear  # backwards-compatible name


def resample_labels(data: np.ndarray, spacing: np.ndarray, upsample_mm: float, sigma_mm: float,
                    progress: Progress | None = None, preserve_volumes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Smooth and upsample a label grid (see module docstring, step 2, and :mod:`labelfield`).

    ``data`` should have a few background voxels on every side. Returns (fine labels,
    integer factors per axis); fine voxel I lies at input voxel coordinate (I + 0.5) / f - 0.5.
    With ``preserve_volumes`` thin structures are restored at their voxel centres and each
    label keeps its voxel volume (:class:`~navigator.meshing.labelfield.LabelField`).
    """
    fine, f, _ = _label_field(data, spacing, upsample_mm, sigma_mm, progress, preserve_volumes)
    return fine, f


def _label_field(data: np.ndarray, spacing: np.ndarray, upsample_mm: float, sigma_mm: float,
                 progress: Progress | None, preserve_volumes: bool) -> tuple[np.ndarray, np.ndarray, LabelField | None]:
    progress = ensure_progress(progress)
    spacing = np.asarray(spacing, float)
    f = np.ones(3, int) if upsample_mm <= 0 else np.maximum(1, np.round(spacing / upsample_mm)).astype(int)
    if sigma_mm <= 0 and np.all(f == 1):
        return data.copy(), f, None
    fld = LabelField.build(data, spacing, upsample_mm, sigma_mm, consistency=preserve_volumes,
                           progress=progress.sub(0.0, 0.4))
    fine = fld.fine_labels(balance_volumes=preserve_volumes and sigma_mm > 0, progress=progress.sub(0.4, 1.0))
    return fine.astype(data.dtype, copy=False), fld.f, fld


# ---------------------------------------------------------------------------- mesh cleanup

def orient_positive(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    """Tetrahedra with two nodes swapped where the signed volume is negative."""
    p = nodes[tets]
    vol = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    out = tets.copy()
    neg = vol < 0
    out[neg, 2], out[neg, 3] = tets[neg, 3], tets[neg, 2]
    return out


def remove_small_components(nodes: np.ndarray, tets: np.ndarray, tags: np.ndarray, min_volume_mm3: float,
                            ft: FaceTable | None = None, return_table: bool = False) -> tuple:
    """Merge disconnected pieces of a tissue smaller than ``min_volume_mm3`` into a neighbour.

    A small piece takes the tag it shares most faces with; a piece touching only background
    is removed. The largest piece of each tissue is always kept. ``ft``: the face table of
    ``tets`` if already computed. Returns (tets, tags, number of pieces changed), plus the face
    table of the returned tets with ``return_table``.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if min_volume_mm3 <= 0 or len(tets) == 0:
        return (tets, tags, 0, ft if ft is not None else face_table(tets)) if return_table else (tets, tags, 0)
    ft = ft if ft is not None else face_table(tets)
    inner = ft.tet[:, 1] >= 0
    a, b = ft.tet[inner, 0], ft.tet[inner, 1]
    same = tags[a] == tags[b]
    m = len(tets)
    g = coo_matrix((np.ones(int(same.sum())), (a[same], b[same])), shape=(m, m))
    n_comp, comp = connected_components(g, directed=False)
    p = nodes[tets]
    vol = np.abs(np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])) / 6
    cv = np.bincount(comp, weights=vol, minlength=n_comp)
    ctag = np.zeros(n_comp, tags.dtype)
    ctag[comp] = tags
    largest = np.zeros(n_comp, bool)
    for t in np.unique(ctag):
        ids = np.flatnonzero(ctag == t)
        largest[ids[np.argmax(cv[ids])]] = True
    small = (cv < min_volume_mm3) & ~largest
    if not small.any():
        return (tets, tags, 0, ft) if return_table else (tets, tags, 0)
    # Neighbouring tags of each small piece, counted over shared faces.
    diff = ~same
    src = np.concatenate([comp[a[diff]], comp[b[diff]]])
    nbt = np.concatenate([tags[b[diff]], tags[a[diff]]]).astype(np.int64)
    sel = small[src]
    src, nbt = src[sel], nbt[sel]
    new_tag = np.full(n_comp, -1, np.int64)
    if len(src):
        key = src * (int(nbt.max()) + 1) + nbt
        uk, cnt = np.unique(key, return_counts=True)
        kc, kt = uk // (int(nbt.max()) + 1), uk % (int(nbt.max()) + 1)
        order = np.lexsort((cnt, kc))  # per piece, the most shared tag comes last
        kc, kt = kc[order], kt[order]
        last = np.r_[kc[1:] != kc[:-1], True]
        new_tag[kc[last]] = kt[last]
    tags = tags.copy()
    moved = small & (new_tag >= 0)
    tags[moved[comp]] = new_tag[comp][moved[comp]]
    keep = ~(small & (new_tag < 0))[comp]
    if return_table:
        ft = ft if keep.all() else subset_face_table(ft, tets, keep)
        return tets[keep], tags[keep], int(small.sum()), ft
    return tets[keep], tags[keep], int(small.sum())


def remove_boundary_slivers(nodes: np.ndarray, tets: np.ndarray, tags: np.ndarray, min_dihedral_deg: float,
                            ft: FaceTable | None = None, max_rounds: int = 5,
                            return_table: bool = False) -> tuple:
    """Delete flat tetrahedra lying on the outer boundary of the mesh.

    A tetrahedron is removed if at least two of its faces lie on the boundary (so all four
    nodes do) and it has a dihedral angle below ``min_dihedral_deg``; removing it swaps its
    boundary faces for its inner ones and changes the volume by its own (tiny) volume. Repeated up to ``max_rounds``
    times, as removal exposes new faces. Returns (tets, tags, number removed), plus the face
    table of the returned tets with ``return_table``.
    """
    from navigator.meshing.quality import dihedral_angles

    removed = 0
    if min_dihedral_deg <= 0:
        return (tets, tags, 0, ft if ft is not None else face_table(tets)) if return_table else (tets, tags, 0)
    ft = ft if ft is not None else face_table(tets)
    for _ in range(max_rounds):
        bmask = ft.count == 1
        nb = np.bincount(ft.tet[bmask, 0], minlength=len(tets))
        cand = np.flatnonzero(nb >= 2)
        if len(cand) == 0:
            break
        bad = cand[dihedral_angles(nodes, tets[cand]).min(axis=1) < min_dihedral_deg]
        if len(bad) == 0:
            break
        keep = np.ones(len(tets), bool)
        keep[bad] = False
        ft = subset_face_table(ft, tets, keep)
        tets, tags = tets[keep], tags[keep]
        removed += len(bad)
    return (tets, tags, removed, ft) if return_table else (tets, tags, removed)


def tag_surfaces(tets: np.ndarray, tags: np.ndarray, ft: FaceTable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Interface triangles and their tags, SimNIBS style.

    Every face where the volume tag changes (tissue/tissue or tissue/outside) becomes a
    triangle tagged ``1000 + N`` where N is the lower of the two tissue tags (the tissue
    itself on the outer boundary). With SimNIBS numbering (WM 1 < GM 2 < CSF 3 < bone 4 <
    scalp 5) that is the outer boundary of tissue N: 1001 = WM/GM, 1002 = pial, 1003 = inner
    skull, 1004 = outer skull, 1005 = skin. Triangles point away from tissue N.
    """
    faces, t_in, t_out = interfaces(tets, tags, ft)
    lower = np.where(t_out == 0, t_in, np.minimum(t_in, t_out))
    flip = lower != t_in
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    return faces, (SURFACE_OFFSET + lower).astype(np.int32)


def _medit_refs_to_labels(refs: np.ndarray, pts: np.ndarray, tets: np.ndarray, image: np.ndarray,
                          h: np.ndarray) -> np.ndarray:
    """Map CGAL's medit subdomain references back to image labels.

    CGAL's medit writer renumbers subdomains 1..n in ascending label order, counting only
    labels that received tetrahedra. Each reference is mapped to the label found most often
    at the centroids of its tetrahedra, and the result must be ascending in the reference.
    """
    cent = pts[tets].mean(axis=1) / h
    ijk = np.clip(np.rint(cent).astype(np.int64), 0, np.array(image.shape) - 1)
    at = image[ijk[:, 0], ijk[:, 1], ijk[:, 2]].astype(np.int64)
    out = np.zeros(len(refs), np.int32)
    mapping = {}
    for r in np.unique(refs):
        sel = refs == r
        vals, counts = np.unique(at[sel], return_counts=True)
        mapping[int(r)] = int(vals[np.argmax(counts)])
        out[sel] = mapping[int(r)]
    labs = [mapping[r] for r in sorted(mapping)]
    if labs != sorted(labs) or len(set(labs)) != len(labs):
        raise NavigatorError(f"cannot match CGAL subdomains to labels (mapping {mapping})")
    return out


def _renumber(ft: FaceTable, used: np.ndarray) -> FaceTable:
    """Face table after dropping unused nodes (same tetrahedra)."""
    lut = np.full(int(used.max()) + 1, -1, np.int64)
    lut[used] = np.arange(len(used))
    return FaceTable(faces=lut[ft.faces], tet=ft.tet, count=ft.count)


# ---------------------------------------------------------------------------- entry point

def labels_to_mesh(
    labels: Volume,
    *,
    params: MeshParameters | None = None,
    progress: Progress | None = None,
    workdir: str | Path | None = None,
    timings: dict[str, tuple[float, float]] | None = None,
    **kwargs: Any,
) -> Mesh:
    """Mesh a tissue label image (SimNIBS numbering, 0 = background) into tetrahedra.

    Args:
        labels: integer label volume; its affine defines the world frame (RAS mm).
        params: :class:`MeshParameters`; keyword arguments (``cell_size_mm=``,
            ``tissue_cell_sizes={2: 1.2}``, ``facet_distance_mm=``, ``upsample_mm=``, ...)
            override single fields.
        progress: progress sink; cancelling kills the CGAL process.
        workdir: folder for CGAL's temporary files (default: a temporary folder).
        timings: if given, filled with stage name -> (wall s, CPU s incl. the CGAL process).

    Returns:
        Mesh with nodes in world RAS mm, positively oriented tetrahedra tagged with their
        label, and interface triangles tagged 1000 + tissue (see :func:`tag_surfaces`).
    """
    from navigator.meshing._cgal import have_pygalmesh, run_cgal

    if params is None:
        params = MeshParameters.from_kwargs(**kwargs)
    elif kwargs:
        params = MeshParameters.from_kwargs(**{**asdict(params), **kwargs})
    progress = ensure_progress(progress)
    src = labels.source
    data = np.asarray(labels.data)
    if data.ndim != 3:
        raise InputError(src, f"label image must be 3-D, got shape {data.shape}")
    if data.dtype.kind == "f" and (not np.all(np.isfinite(data)) or not np.all(data == np.round(data))):
        raise InputError(src, "label image holds non-integer values")
    if data.min() < 0 or data.max() > 65535:
        raise InputError(src, "labels must lie in 0..65535")
    if not np.any(data):
        raise InputError(src, "label image is empty (all background)")
    if not have_pygalmesh():
        raise NavigatorError("meshing needs pygalmesh (CGAL); install it with: pip install pygalmesh "
                             "(needs libcgal-dev and libeigen3-dev)")
    dtype = np.uint8 if data.max() < 256 else np.uint16
    data = data.astype(dtype)
    spacing = labels.spacing
    sig_vox = params.smooth_sigma_mm / spacing.min() if params.smooth_sigma_mm > 0 else 0.0
    margin = int(np.ceil(3 * sig_vox)) + 3
    timer = _StageTimer(timings)
    progress.update(0.0, "preparing labels")
    crop, offset = _crop(data, margin)
    fine, f, fld = _label_field(crop, spacing, params.upsample_mm, params.smooth_sigma_mm, progress.sub(0.0, 0.15),
                                params.preserve_volumes)
    h = spacing / f
    timer.lap("label_field")
    present = [int(t) for t in np.unique(fine) if t != 0]
    sizes = params.cell_sizes(present)
    criteria = {
        "lloyd": params.lloyd, "odt": params.odt, "perturb": params.perturb, "exude": params.exude,
        "min_facet_angle": params.facet_angle_deg,
        "max_radius_surface_delaunay_ball": params.facet_size_mm,
        "max_facet_distance": params.facet_distance_mm,
        "max_circumradius_edge_ratio": params.cell_radius_edge_ratio,
        "exude_time_limit": params.exude_time_limit_s,
        "exude_sliver_bound": params.exude_sliver_bound_deg,
        "seed": int(params.seed),
        "cell_sizes": {**{str(k): v for k, v in sizes.items()}, "default": float(params.cell_size_mm)},
    }
    cg = progress.sub(0.15, 0.85)

    def poll(elapsed: float) -> None:
        cg.update(min(0.95, elapsed / (elapsed + 60.0)), f"CGAL Mesh_3 ({elapsed:.0f} s)")

    with tempfile.TemporaryDirectory(prefix="navigator-mesh-", dir=workdir) as tmp:
        pts, tets, tet_labels = run_cgal(Path(tmp), fine, tuple(float(x) for x in h), criteria, poll,
                                     timings=timer.out)
    timer.lap("cgal")
    progress.update(0.85, "post-processing")
    if len(tets) == 0:
        raise NavigatorError(f"{src}: CGAL produced no tetrahedra (are the labels too small?)")
    # CGAL point x (mm) <-> fine voxel x / h <-> input voxel (I + 0.5) / f - 0.5 + offset.
    ijk = (pts / h + 0.5) / f - 0.5 + offset
    nodes = ijk @ labels.affine[:3, :3].T + labels.affine[:3, 3]
    tets = np.asarray(tets, np.int64)
    tags = _medit_refs_to_labels(np.asarray(tet_labels), pts, tets, fine, h)
    ok = tags != 0
    tets, tags = tets[ok], tags[ok]
    tets = orient_positive(nodes, tets)
    ft = face_table(tets, len(nodes))
    tets, tags, _, ft = remove_small_components(nodes, tets, tags, params.min_component_mm3, ft,
                                                return_table=True)
    tets, tags, _, ft = remove_boundary_slivers(nodes, tets, tags, params.boundary_sliver_deg, ft,
                                                return_table=True)
    used = np.flatnonzero(np.bincount(tets.ravel(), minlength=len(nodes)))
    lut = np.full(len(nodes), -1, np.int64)
    lut[used] = np.arange(len(used))
    nodes = nodes[used]
    tets = lut[tets]
    ft = _renumber(ft, used)
    timer.lap("cleanup")
    if params.project_interfaces and fld is not None:
        progress.update(0.88, "projecting interface nodes")
        to_grid = np.linalg.inv(labels.affine)
        to_grid[:3, 3] -= offset
        nodes, _ = fld.project(nodes, tets, tags, ft.faces[ft.count == 1], to_grid,
                               max_move_mm=0.75 * float(np.max(spacing)),
                               min_angle_deg=PROJECT_MIN_ANGLE_DEG)
        timer.lap("projection")
    progress.update(0.9, "tagging surfaces")
    tri, tri_tags = tag_surfaces(tets, tags, ft)
    timer.lap("tag_surfaces")
    if params.sliver_target_deg > 0:
        from navigator.meshing.slivers import improve_slivers

        progress.update(0.93, "repairing slivers")
        nodes, _ = improve_slivers(nodes, tets, tri, target_deg=params.sliver_target_deg,
                                   seed=int(params.seed),
                                   floor_deg=min(params.sliver_floor_deg, params.sliver_target_deg))
        timer.lap("slivers")
        if params.project_interfaces and fld is not None:
            # Second pass: the repair often frees nodes whose projection was blocked by a sliver.
            nodes, _ = fld.project(nodes, tets, tags, ft.faces[ft.count == 1], to_grid,
                                   max_move_mm=0.75 * float(np.max(spacing)),
                                   min_angle_deg=PROJECT_MIN_ANGLE_DEG)
            timer.lap("projection_2")
    progress.update(1.0, "done")
    return Mesh(nodes=nodes, tetrahedra=tets, tet_tags=tags, triangles=tri, triangle_tags=tri_tags)


__all__ = [
    "DEFAULT_CELL_SIZES",
    "TET_FACES",
    "MeshParameters",
    "labels_to_mesh",
    "orient_positive",
    "remove_small_components",
    "resample_labels",
    "tag_surfaces",
]
