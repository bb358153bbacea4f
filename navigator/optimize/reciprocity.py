"""Reciprocity for TMS: the ROI-mean field of every coil placement from a few FEM solves.

Derivation (see ``docs/optimization.md``). For the target functional
``F = sum_e vol_e w_e . E_e`` with ``w_e = d / |ROI|`` on the ROI tetrahedra (d a unit
direction), the discrete FEM solution ``E = -grad v - D`` (``D = dI/dt A(centroid)``) gives
exactly

    F = -sum_e vol_e J_r,e . D_e,    J_r = w - sigma grad u,    K u = b_w,

where ``b_w`` is the nodal load of the impressed current ``w`` (``FemSystem.rhs_impressed_field``
with sigma = 1, i.e. :meth:`navigator.fem.system.FemSystem.rhs_divergence`). With dipole
sources ``A(r) = mu0/(4 pi) sum_k m_k x (r - r_k)/|r - r_k|^3`` this becomes

    F = -dI/dt sum_k m_k . B_r(r_k),   B_r(r) = mu0/(4 pi) sum_e vol_e J_r,e x (r - c_e)/|r - c_e|^3,

the Biot-Savart field of the reciprocal current elements (tetrahedron centroids ``c_e``).
``B_r`` is evaluated with the Laplace FMM of ``fmm3dpy`` (kernel 1/(4 pi r): B = mu0 curl of
the potential of the charges ``vol_e J_r,e``) or by direct summation for small problems.
SI units inside: metres, A/m^2, tesla.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.optimize.kernels import trilinear_lattice

MU0 = 4e-7 * math.pi
#: Above this number of source-target pairs the FMM is used.
DIRECT_PAIR_LIMIT = 2e6
#: A :class:`FieldLattice` evaluates new nodes by compiled direct summation up to this number of
#: source-target pairs (about a second on two cores: 3 functionals, 3e8 pairs), by the FMM above
#: it (whose set-up over ~300 k head nodes alone takes 10-20 s).
LATTICE_DIRECT_PAIRS = 3e8


@dataclass
class ReciprocalSources:
    """Reciprocal current elements for k directions.

    Attributes:
        centroids_m: (S, 3) source points (mesh nodes or tet centroids, see ``d_at``), metres.
        moments: (k, S, 3) current elements sum vol_e J_r,e (per unit objective; J in 1/m^2).
        directions: (k, 3) the unit directions d of the functionals.
        roi_volume_m3: |ROI| in m^3.
        solve_info: per solve (iterations, residual, seconds).
    """

    centroids_m: np.ndarray
    moments: np.ndarray
    directions: np.ndarray
    roi_volume_m3: float
    solve_info: list[dict] = field(default_factory=list)


def reciprocal_sources(system, roi_mask: np.ndarray, directions: np.ndarray, *, rtol: float = 1e-10,
                       d_at: str = "nodes", progress: Progress | None = None) -> ReciprocalSources:
    """Solve one reciprocal problem per direction (rows of ``directions``, unit vectors).

    Args:
        system: :class:`navigator.fem.system.FemSystem` of the head (sigma in S/m).
        roi_mask: (M,) bool, the target region's tetrahedra.
        directions: (k, 3) directions; the functional is the ROI-mean of d . E.
        d_at: where the TMS solver evaluates the primary field, as
            :func:`navigator.tms.simulate.solve_tms` (``"nodes"``: D per tet = mean of its four
            nodal values, so the current elements sit at the nodes with a quarter of each
            adjacent tet's vol J; ``"centroids"``: one element per tet centroid).
    """
    if d_at not in ("nodes", "centroids"):
        raise ValueError(f"d_at must be 'nodes' or 'centroids', not {d_at!r}")
    progress = ensure_progress(progress)
    roi = np.asarray(roi_mask, bool)
    if not roi.any():
        raise NavigatorError("the target region contains no tetrahedra")
    dirs = np.atleast_2d(np.asarray(directions, float))
    vol = system.volumes
    roi_vol = float(vol[roi].sum())
    if d_at == "nodes":
        cent = system.mesh.nodes * 1e-3
    else:
        cent = system.mesh.tet_centroids() * 1e-3
    moments = np.zeros((len(dirs), len(cent), 3))
    info = []
    for j, d in enumerate(dirs):
        progress.update(j / len(dirs), f"reciprocal solve {j + 1}/{len(dirs)}")
        w = np.zeros((system.mesh.n_tets, 3))
        w[roi] = d / roi_vol
        b = system.rhs_divergence(w)
        res = system.solve(b, rtol=rtol)
        J = w - system.sigma[:, None] * system.gradient(res.v)
        q = J * vol[:, None]
        if d_at == "nodes":
            for c in range(3):
                moments[j, :, c] = np.bincount(system.tets.ravel(), weights=np.repeat(q[:, c] / 4.0, 4),
                                               minlength=system.n_nodes)
        else:
            moments[j] = q
        info.append({"iterations": res.iterations, "residual": res.residual, "seconds": res.seconds})
    progress.update(1.0, "reciprocal solves done")
    return ReciprocalSources(cent, moments, dirs, roi_vol, info)


def biot_savart(sources_m: np.ndarray, moments: np.ndarray, points_m: np.ndarray, *, method: str = "auto",
                eps: float = 1e-6, chunk_pairs: float = 4e6) -> np.ndarray:
    """B (T) at points of current elements ``moments`` (k, M, 3) in A m at ``sources_m`` (M, 3).

    Returns (k, P, 3). ``method``: "auto", "direct" or "fmm".
    """
    src = np.ascontiguousarray(sources_m, float).reshape(-1, 3)
    q = np.asarray(moments, float).reshape(-1, len(src), 3)
    pts = np.ascontiguousarray(points_m, float).reshape(-1, 3)
    k = q.shape[0]
    out = np.zeros((k, len(pts), 3))
    if len(pts) == 0:
        return out
    if method == "auto":
        method = "direct" if len(src) * len(pts) <= DIRECT_PAIR_LIMIT else "fmm"
    if method == "direct":
        step = max(1, int(chunk_pairs // max(len(src), 1)))
        for s in range(0, len(pts), step):
            d = pts[s:s + step, None, :] - src[None]  # (n, M, 3) r - c
            inv3 = 1.0 / np.einsum("nmk,nmk->nm", d, d) ** 1.5
            for j in range(k):
                out[j, s:s + step] = np.einsum("nmk,nm->nk", np.cross(q[j][None], d), inv3)
        return out * (MU0 / (4 * math.pi))
    if method != "fmm":
        raise ValueError(f"unknown method {method!r}")
    from navigator.fem.fmm import laplace_fmm

    charges = np.ascontiguousarray(np.transpose(q, (0, 2, 1)).reshape(3 * k, len(src)))
    _pot, grad = laplace_fmm(src, charges, pts, eps=eps, pgt=2)  # 3k densities, split over two processes
    g = grad.reshape(k, 3, 3, len(pts))  # [j, component i, d/dx_l, point]
    curl = np.stack([g[:, 2, 1] - g[:, 1, 2], g[:, 0, 2] - g[:, 2, 0], g[:, 1, 0] - g[:, 0, 1]], axis=-1)
    return MU0 * curl


def functional_from_B(B: np.ndarray, moments_world: np.ndarray, didt: float) -> np.ndarray:
    """F = -dI/dt sum_k m_k . B(r_k): B (k, D, 3) at the dipoles, moments (D, 3) A m^2 per A."""
    return -float(didt) * np.einsum("jdk,dk->j", B, moments_world)


def pose_functional(src: ReciprocalSources, coil, pose: np.ndarray, didt: float = 1.0, *,
                    method: str = "auto", eps: float = 1e-6) -> np.ndarray:
    """(k,) ROI-mean of d_j . E for one coil pose (dipole coils), by exact Biot-Savart at the dipoles."""
    R, c = pose[:3, :3], pose[:3, 3]
    pos = (coil.dipole_positions @ R.T + c) * 1e-3
    mom = coil.dipole_moments @ R.T
    B = biot_savart(src.centroids_m, src.moments, pos, method=method, eps=eps)
    return functional_from_B(B, mom, didt)


def roi_mean_field(system, E: np.ndarray, roi_mask: np.ndarray) -> np.ndarray:
    """(3,) volume-weighted mean of the per-tet field E (M, 3) over the ROI."""
    roi = np.asarray(roi_mask, bool)
    v = system.volumes[roi]
    return (E[roi] * v[:, None]).sum(axis=0) / v.sum()



# --------------------------------------------------------------------------- all placements
@dataclass
class AuxiliaryDipoles:
    """The coil at every handle angle as moments on one fixed local lattice (auxiliary dipoles).

    Each dipole of the rotated coil is spread trilinearly onto the lattice nodes around it
    (weights sum to 1 and reproduce the dipole position, so the total moment and its first
    spatial moment are exact; the error is second order in ``spacing_mm``).

    Attributes:
        nodes_mm: (G, 3) lattice nodes in the centre frame (x, y tangent, z into the head), mm.
        weights: (A, G, 3) auxiliary moments per angle (local axes), A m^2 per A.
    """

    nodes_mm: np.ndarray
    weights: np.ndarray


def auxiliary_dipoles(positions_mm: np.ndarray, moments: np.ndarray, Q: np.ndarray,
                      spacing_mm: float = 2.0) -> AuxiliaryDipoles:
    """Auxiliary dipoles of a coil (positions/moments in the coil frame) for rotations Q (A, 3, 3)."""
    P = np.einsum("aij,dj->adi", Q, positions_mm)  # (A, D, 3) local
    Mo = np.einsum("aij,dj->adi", Q, moments)
    h = float(spacing_mm)
    o = P.reshape(-1, 3).min(axis=0)
    rel = (P - o) / h
    i0 = np.floor(rel + 1e-9).astype(np.int64)
    fr = np.clip(rel - i0, 0.0, 1.0)
    fr[np.abs(fr) < 1e-9] = 0.0
    shape = i0.reshape(-1, 3).max(axis=0) + 2
    A = len(Q)
    n_lat = int(np.prod(shape))
    acc = np.zeros((A * n_lat, 3))
    arange_a = np.repeat(np.arange(A), P.shape[1])
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (fr[..., 0] if dx else 1 - fr[..., 0]) * (fr[..., 1] if dy else 1 - fr[..., 1]) * \
                    (fr[..., 2] if dz else 1 - fr[..., 2])
                keep = w.ravel() > 1e-12
                if not keep.any():
                    continue
                idx = np.ravel_multi_index(((i0[..., 0] + dx).ravel(), (i0[..., 1] + dy).ravel(),
                                            (i0[..., 2] + dz).ravel()), shape)
                flat = arange_a * n_lat + idx
                for c in range(3):
                    acc[:, c] += np.bincount(flat[keep], weights=(w[..., None] * Mo)[..., c].ravel()[keep],
                                             minlength=A * n_lat)
    acc = acc.reshape(A, n_lat, 3)
    active = np.flatnonzero(np.abs(acc).sum(axis=(0, 2)) > 0)
    ijk = np.stack(np.unravel_index(active, shape), axis=1)
    return AuxiliaryDipoles(nodes_mm=o + ijk * h, weights=acc[:, active])


def _field_on_points(src: ReciprocalSources, points_mm: np.ndarray, world_grid_mm: float | None,
                     method: str, eps: float) -> np.ndarray:
    """B (k, P, 3) at world points: exact, or trilinear from a lattice of ``world_grid_mm``."""
    if world_grid_mm is None:
        return biot_savart(src.centroids_m, src.moments, points_mm * 1e-3, method=method, eps=eps)
    h = float(world_grid_mm)
    o = points_mm.min(axis=0) - 1e-6
    rel = (points_mm - o) / h
    i0 = np.floor(rel).astype(np.int64)
    fr = rel - i0
    shape = i0.max(axis=0) + 2
    corners = [(dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)]
    flat = [np.ravel_multi_index((i0[:, 0] + dx, i0[:, 1] + dy, i0[:, 2] + dz), shape) for dx, dy, dz in corners]
    # lattice nodes in use and their index: a dense look-up table over the lattice box (linear
    # time; sorting ~16 M corner indices took longer than the field itself)
    used_mask = np.zeros(int(np.prod(shape)), bool)
    for f in flat:
        used_mask[f] = True
    used = np.flatnonzero(used_mask)
    lut = np.zeros(len(used_mask), np.int64)
    lut[used] = np.arange(len(used))
    del used_mask
    node_xyz = o + np.stack(np.unravel_index(used, shape), axis=1) * h
    Bn = biot_savart(src.centroids_m, src.moments, node_xyz * 1e-3, method=method, eps=eps)  # (k, U, 3)
    k = Bn.shape[0]
    values = np.ascontiguousarray(np.transpose(Bn, (1, 0, 2)).reshape(len(used), 3 * k))  # (U, k*3)
    out = trilinear_lattice(values, lut, np.asarray(shape, np.int64), i0, fr)  # (P, k*3)
    return np.transpose(out.reshape(len(points_mm), k, 3), (1, 0, 2))


def grid_scores(src: ReciprocalSources, coil, grid, didt: float = 1.0, *, aux_spacing_mm: float = 2.0,
                world_grid_mm: float | None = 1.5, method: str = "auto", eps: float = 1e-3,
                progress: Progress | None = None) -> tuple[np.ndarray, dict]:
    """ROI-mean of d_j . E for every placement of ``grid`` (a :class:`~navigator.optimize.grid.PlacementGrid`).

    Returns (scores (k, C, A) in V/m for ``didt`` A/s, info dict with timings and sizes).
    Method: auxiliary dipoles on a lattice in each centre's frame (one set of weights for all
    centres and angles), B at the lattice nodes of every centre (exactly when
    ``world_grid_mm`` is None, else trilinear from a world lattice evaluated by one FMM).
    """
    progress = ensure_progress(progress)
    if coil.n_dipoles == 0:
        raise NavigatorError(f"coil {coil.name!r} has no dipoles: reciprocity needs a dipole coil model "
                             "(use --mode direct)")
    t0 = time.perf_counter()
    R = grid.rotations()  # (C, A, 3, 3)
    F = R[:, 0]  # centre frames
    Q = np.einsum("cji,cajk->caik", F, R)  # F^T R
    groups: dict[bytes, list[int]] = {}
    for c in range(grid.n_centres):
        groups.setdefault((np.round(Q[c], 5) + 0.0).tobytes(), []).append(c)
    k = src.moments.shape[0]
    scores = np.zeros((k, grid.n_centres, grid.n_angles))
    info = {"n_groups": len(groups), "aux_nodes": 0, "field_points": 0}
    timings = {"aux": 0.0, "field": 0.0, "contract": 0.0}
    for gi, members in enumerate(groups.values()):
        progress.update(gi / len(groups), "auxiliary dipoles")
        ta = time.perf_counter()
        aux = auxiliary_dipoles(coil.dipole_positions, coil.dipole_moments, Q[members[0]], aux_spacing_mm)
        timings["aux"] += time.perf_counter() - ta
        info["aux_nodes"] = max(info["aux_nodes"], len(aux.nodes_mm))
        Fm = F[members]
        pts = grid.centres[members][:, None, :] + np.einsum("cij,gj->cgi", Fm, aux.nodes_mm)  # (Cm, G, 3)
        tf = time.perf_counter()
        B = _field_on_points(src, pts.reshape(-1, 3), world_grid_mm, method, eps)
        timings["field"] += time.perf_counter() - tf
        info["field_points"] += pts.shape[0] * pts.shape[1]
        tc = time.perf_counter()
        B = B.reshape(k, len(members), -1, 3)
        Bloc = np.einsum("cij,kcgi->kcgj", Fm, B)  # local components
        W = aux.weights.reshape(grid.n_angles, -1)  # (A, 3G)
        for j in range(k):
            scores[j, members] = -float(didt) * (Bloc[j].reshape(len(members), -1) @ W.T)
        timings["contract"] += time.perf_counter() - tc
    info["timings_s"] = {**timings, "total": time.perf_counter() - t0}
    progress.update(1.0, "placements scored")
    return scores, info


# --------------------------------------------------------------------------- fine search
class FieldLattice:
    """The reciprocal field B on an axis-aligned world lattice, evaluated on demand.

    Node ``ijk`` sits at ``origin + h ijk`` (world mm); only the nodes a search needs are
    evaluated (one FMM per :meth:`ensure` call for the nodes not yet known), and B anywhere
    inside the evaluated cells is trilinear (a few new nodes by compiled direct summation, see
    :data:`LATTICE_DIRECT_PAIRS`). Values are (k x 3) per node (the k functionals'
    B in tesla for unit current elements, see :class:`ReciprocalSources`).

    Attributes:
        origin: (3,) mm. h: spacing, mm. shape: (3,) nodes per axis. lut: flat node -> row of
        ``values`` (-1: not evaluated). values: (U, 3k). timings: FMM seconds and node counts.
    """

    def __init__(self, src: ReciprocalSources, lo_mm: np.ndarray, hi_mm: np.ndarray, h_mm: float = 1.5, *,
                 method: str = "auto", eps: float = 1e-3):
        self.src = src
        self.h = float(h_mm)
        lo = np.asarray(lo_mm, float) - self.h
        hi = np.asarray(hi_mm, float) + self.h
        self.origin = lo
        self.shape = (np.ceil((hi - lo) / self.h).astype(np.int64) + 2)
        n = int(np.prod(self.shape))
        if n > 400_000_000:
            raise NavigatorError(f"the field lattice would have {n:,} nodes; reduce the search region")
        self.lut = np.full(n, -1, np.int64)
        self.k = src.moments.shape[0]
        self.values = np.zeros((0, 3 * self.k))
        self.method, self.eps = method, float(eps)
        self.timings = {"fmm_s": 0.0, "fmm_calls": 0, "fmm_nodes": 0, "direct_s": 0.0, "direct_calls": 0,
                        "direct_nodes": 0, "nodes": 0, "outside": 0}

    def new_mask(self) -> np.ndarray:
        return np.zeros(len(self.lut), bool)

    def evaluate_marked(self, mask: np.ndarray) -> int:
        """Evaluate B at the marked nodes that have no value yet (one FMM); returns their number."""
        new = np.flatnonzero(mask & (self.lut < 0))
        if len(new) == 0:
            return 0
        t0 = time.perf_counter()
        xyz = self.origin + np.stack(np.unravel_index(new, tuple(self.shape)), axis=1) * self.h
        n_src = len(self.src.centroids_m)
        if self.method == "auto" and len(new) * n_src <= LATTICE_DIRECT_PAIRS:
            from navigator.optimize.kernels import biot_savart_sum

            vals = biot_savart_sum(np.ascontiguousarray(self.src.centroids_m), np.ascontiguousarray(self.src.moments),
                                   np.ascontiguousarray(xyz * 1e-3)).reshape(len(new), 3 * self.k) * (MU0 / (4 * math.pi))
            key = "direct"
        else:
            B = biot_savart(self.src.centroids_m, self.src.moments, xyz * 1e-3, method=self.method, eps=self.eps)
            vals = np.ascontiguousarray(np.transpose(B, (1, 0, 2)).reshape(len(new), 3 * self.k))
            key = "fmm"
        self.lut[new] = len(self.values) + np.arange(len(new))
        self.values = vals if len(self.values) == 0 else np.concatenate([self.values, vals])
        self.timings[f"{key}_s"] += time.perf_counter() - t0
        self.timings[f"{key}_calls"] += 1
        self.timings[f"{key}_nodes"] += len(new)
        self.timings["nodes"] = len(self.values)
        return len(new)

    def ensure(self, points_mm: np.ndarray) -> int:
        """Evaluate the nodes around (P, 3) points (mm) that have no value yet."""
        from navigator.optimize.kernels import mark_cells

        mask = self.new_mask()
        self.timings["outside"] += int(mark_cells(np.ascontiguousarray(points_mm, float).reshape(-1, 3), self.origin,
                                                  self.h, self.shape, mask))
        return self.evaluate_marked(mask)

    def sample(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k, P, 3) B at points and a (P,) bool (False: outside the evaluated cells)."""
        from navigator.optimize.kernels import lattice_sample

        pts = np.ascontiguousarray(points_mm, float).reshape(-1, 3)
        out, ok = lattice_sample(self.values, self.lut, self.shape, self.origin, self.h, pts)
        return np.transpose(out.reshape(len(pts), self.k, 3), (1, 0, 2)), ok


def lifted_grid_functionals(lattice: FieldLattice, coil, frames: np.ndarray, centres: np.ndarray, Q: np.ndarray,
                            lifts: np.ndarray, placed: np.ndarray, didt: float = 1.0, *, aux_spacing_mm: float = 2.0,
                            lift_step_mm: float = 1.0, chunk_pairs: int = 256, extend=None,
                            progress: Progress | None = None) -> tuple[np.ndarray, dict]:
    """ROI-mean d_j . E (k, C, A) for every centre x handle angle with the coil lifted along its
    axis by ``lifts`` (C, A) mm (outward; from the collision-free placement).

    Auxiliary dipoles (:func:`auxiliary_dipoles`, one set for all centres: the angle-a coil is
    ``Q[a]`` in each centre frame ``frames[c]``), B at the auxiliary nodes of each centre at lift
    levels ``lift_step_mm`` apart (compiled, parallel; from the world ``lattice``), one GEMM per
    level for all angles, and linear interpolation between the two levels around each
    placement's lift. Placements not ``placed`` get NaN. ``extend(mask)``, when given, adds
    lattice nodes to the flat node mask (in place) before the FMM: the nodes a later stage will
    need (the refinement's reach), evaluated by the same FMM.
    """
    from navigator.optimize.kernels import aux_node_field, mark_aux_cells

    progress = ensure_progress(progress)
    if coil.n_dipoles == 0:
        raise NavigatorError(f"coil {coil.name!r} has no dipoles: reciprocity needs a dipole coil model "
                             "(use --mode direct)")
    t0 = time.perf_counter()
    C, A = lifts.shape
    k = lattice.k
    aux = auxiliary_dipoles(coil.dipole_positions, coil.dipole_moments, Q, aux_spacing_mm)
    W = np.ascontiguousarray(aux.weights.reshape(A, -1).T, dtype=np.float32)  # (3G, A); float32 GEMM
    nodes = np.ascontiguousarray(aux.nodes_mm)
    t_aux = time.perf_counter() - t0
    # lift levels per centre: floor(lift/step) .. floor(max)+1
    step = float(lift_step_mm)
    f = np.where(placed, lifts / step, np.nan)
    has = placed.any(axis=1)
    lo = np.zeros(C, np.int64)
    hi = np.zeros(C, np.int64)
    lo[has] = np.floor(np.nanmin(f[has], axis=1)).astype(np.int64)
    hi[has] = np.ceil(np.nanmax(f[has], axis=1)).astype(np.int64)  # one level when every lift is on it
    n_lev = np.where(has, hi - lo + 1, 0)
    pair_centre = np.repeat(np.arange(C), n_lev)
    first = np.concatenate([[0], np.cumsum(n_lev)[:-1]])
    pair_level = lo[pair_centre] + (np.arange(len(pair_centre)) - first[pair_centre])
    pair_lift = pair_level * step
    # the lattice nodes these need, then one FMM for the new ones
    tf = time.perf_counter()
    mask = lattice.new_mask()
    outside = mark_aux_cells(centres, frames, nodes, pair_centre, pair_lift, lattice.origin, lattice.h,
                             lattice.shape, mask)
    if outside:
        raise NavigatorError(f"{outside} auxiliary nodes outside the field lattice (internal error)")
    n_grid_nodes = int(mask.sum())
    t_ext = time.perf_counter()
    if extend is not None:
        extend(mask)
    t_ext = time.perf_counter() - t_ext
    progress.update(0.05, f"reciprocal field at {int(mask.sum()):,} lattice nodes (FMM)")
    lattice.evaluate_marked(mask)
    del mask
    t_field = time.perf_counter() - tf
    # per pair: B at the nodes (compiled) then all angles by one GEMM
    vec = np.full((k, C, A), np.nan)
    level_scores = np.zeros((k, len(pair_centre), A))
    t_interp = t_gemm = 0.0
    for s in range(0, len(pair_centre), chunk_pairs):
        progress.update(0.1 + 0.85 * s / max(len(pair_centre), 1), "scoring placements")
        ti = time.perf_counter()
        Bn, ok = aux_node_field(lattice.values, lattice.lut, lattice.shape, lattice.origin, lattice.h, centres,
                                frames, nodes, pair_centre[s:s + chunk_pairs], pair_lift[s:s + chunk_pairs], k)
        if not ok.all():
            raise NavigatorError("auxiliary nodes without reciprocal field values (internal error)")
        tg = time.perf_counter()
        for j in range(k):
            level_scores[j, s:s + chunk_pairs] = Bn[:, j, :].astype(np.float32) @ W
        t_gemm += time.perf_counter() - tg
        t_interp += tg - ti
    # interpolate between the levels around each placement's lift
    cc, aa = np.nonzero(placed)
    fl = f[cc, aa]
    l0 = np.floor(fl).astype(np.int64)
    t = fl - l0
    row0 = first[cc] + (l0 - lo[cc])
    row1 = np.minimum(row0 + 1, first[cc] + n_lev[cc] - 1)  # t = 0 on a centre's top level
    for j in range(k):
        vec[j, cc, aa] = -float(didt) * ((1 - t) * level_scores[j, row0, aa] + t * level_scores[j, row1, aa])
    progress.update(1.0, "placements scored")
    info = {"aux_nodes": len(nodes), "lift_levels": int(len(pair_centre)), "lift_step_mm": step,
            "lattice_nodes": int(lattice.timings["nodes"]), "grid_lattice_nodes": n_grid_nodes,
            "timings_s": {"aux": t_aux, "field_fmm": t_field, "extend": t_ext, "node_field": t_interp, "gemm": t_gemm,
                          "total": time.perf_counter() - t0}}
    return vec, info


def pose_functionals(lattice: FieldLattice, coil, rotations: np.ndarray, translations: np.ndarray,
                     didt: float = 1.0) -> np.ndarray:
    """(k, P) ROI-mean d_j . E for arbitrary poses (rotations (P, 3, 3), translations (P, 3) mm):
    the sum over the coil's dipoles of m . B, B trilinear from ``lattice`` (compiled, parallel).
    Nodes the poses need are evaluated first."""
    from navigator.optimize.kernels import dipole_pose_scores

    R = np.ascontiguousarray(rotations, float).reshape(-1, 3, 3)
    T = np.ascontiguousarray(translations, float).reshape(-1, 3)
    pos = np.ascontiguousarray(coil.dipole_positions)
    mom = np.ascontiguousarray(coil.dipole_moments)
    out, ok = dipole_pose_scores(lattice.values, lattice.lut, lattice.shape, lattice.origin, lattice.h, R, T, pos, mom,
                                 lattice.k)
    if not ok.all():
        pts = (np.einsum("pij,dj->pdi", R[~ok], pos) + T[~ok, None, :]).reshape(-1, 3)
        lattice.ensure(pts)
        out2, ok2 = dipole_pose_scores(lattice.values, lattice.lut, lattice.shape, lattice.origin, lattice.h, R[~ok],
                                       T[~ok], pos, mom, lattice.k)
        if not ok2.all():
            raise NavigatorError("coil dipoles outside the reciprocal field lattice (pose too far from the search region)")
        out[~ok] = out2
    return -float(didt) * out.T
