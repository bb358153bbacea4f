"""Fine, collision-free TMS placement search: about a million placements by reciprocity, then refinement.

Stages (world mm; scores are ROI functionals in V/m per A/s of dI/dt):

1. **Collision-free placement of every candidate** (:mod:`navigator.optimize.collision`): each
   centre x handle angle of the :class:`~navigator.optimize.grid.PlacementGrid` is lifted along
   the coil axis until the casing's closest point is ``distance_mm`` from the scalp; candidates
   that cannot be placed are counted and never chosen.
2. **Scores of all placements** (:func:`navigator.optimize.reciprocity.lifted_grid_functionals`):
   auxiliary dipoles, the reciprocal field on a world lattice (one FMM, which also covers the
   nodes any refinement may reach: :func:`_refinement_reach`), compiled sampling at the
   auxiliary nodes per centre and lift level, one GEMM per level for all angles.
3. **Refinement** around the best distinct candidates: a compass search over the centre offset
   in the tangent plane, the handle angle and the coil tilt about its x and y axes (within
   ``tilt_deg``), each pose placed collision-free and scored exactly as the sum over the coil's
   dipoles (:func:`navigator.optimize.reciprocity.pose_functionals`).
4. The chosen pose is re-checked against the scalp triangles with 1 mm casing points
   (:func:`navigator.optimize.collision.exact_clearance`) and lifted further if needed.

Objectives: ``normal`` / ``magnitude`` as :mod:`navigator.optimize.tms`; with an avoid region a
second set of reciprocal sources gives the avoid region's mean field vector too, and the score
is the **focality** ratio target / |mean E in the avoid region|.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.surface import Surface
from navigator.optimize import reciprocity as rc
from navigator.optimize.collision import CasingModel, exact_clearance, place_lifts, place_lifts_grid, search_field
from navigator.optimize.grid import PlacementGrid
from navigator.tms.pose import pose_rotations


@dataclass
class Objective:
    """How the k functionals make a score.

    Attributes:
        kind: "magnitude" (|ROI-mean E|) or "normal" (ROI-mean E . d).
        n_target: number of target functionals (3 for magnitude, 1 for normal); functionals
            beyond them are the avoid region's mean E (x, y, z) and make the score the ratio
            target / |mean E_avoid| (focality).
    """

    kind: str
    n_target: int
    focality: bool = False

    def score(self, vec: np.ndarray) -> np.ndarray:
        """Scores from functionals (k, ...)."""
        t = np.linalg.norm(vec[:self.n_target], axis=0) if self.kind == "magnitude" else vec[0]
        if not self.focality:
            return t
        a = np.linalg.norm(vec[self.n_target:], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, t / a, np.nan)

    def target(self, vec: np.ndarray) -> np.ndarray:
        return np.linalg.norm(vec[:self.n_target], axis=0) if self.kind == "magnitude" else vec[0]

    def avoid(self, vec: np.ndarray) -> np.ndarray | None:
        return np.linalg.norm(vec[self.n_target:], axis=0) if self.focality else None


@dataclass
class RefinedPose:
    """A refined placement.

    Attributes:
        pose: 4x4 (world mm). score: objective. vector: (k,) functionals.
        centre_index, angle_deg, offset_mm (du, dv in the centre frame), tilt_deg (about coil x, y),
        lift_mm (outward along the coil axis from the along-normal position), clearance_mm
        (casing-scalp distance at the closest point, exact; None: not checked because a better
        candidate was already placed, :func:`_exact_checked`), start_score (its grid score).
    """

    pose: np.ndarray
    score: float
    vector: np.ndarray
    centre_index: int
    angle_deg: float
    offset_mm: tuple[float, float]
    tilt_deg: tuple[float, float]
    lift_mm: float
    clearance_mm: float | None = None
    start_score: float = float("nan")
    evaluations: int = 0


@dataclass
class FineSearch:
    """Result of :func:`fine_search`.

    Attributes:
        grid: the candidates. scores: (C, A) objective (NaN where not placed). vectors: (k, C, A).
        lifts: (C, A) mm outward lift from the along-normal position. placed: (C, A) bool.
        best_grid: (centre, angle index) of the best grid placement. refined: refined poses, best
        first. objective: the :class:`Objective`. info: sizes, counts and timings.
    """

    grid: PlacementGrid
    scores: np.ndarray
    vectors: np.ndarray
    lifts: np.ndarray
    placed: np.ndarray
    best_grid: tuple[int, int]
    refined: list[RefinedPose]
    objective: Objective
    casing: CasingModel
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> RefinedPose:
        return self.refined[0]

    def grid_pose(self, c: int, a: int) -> np.ndarray:
        """4x4 pose of grid placement (c, a) with its collision-free lift."""
        p = self.grid.pose(c, a)
        p[:3, 3] -= self.lifts[c, a] * p[:3, 2]
        return p


def _rot_xy(tx_deg: float, ty_deg: float) -> np.ndarray:
    a, b = math.radians(tx_deg), math.radians(ty_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    return rx @ ry


def _candidates(scores: np.ndarray, grid: PlacementGrid, n: int, min_sep_mm: float, min_sep_deg: float) -> list[tuple[int, int]]:
    """Up to ``n`` best placements, each at least ``min_sep_mm`` or ``min_sep_deg`` from the chosen ones."""
    flat = np.where(np.isfinite(scores), scores, -np.inf).ravel()
    order = np.argsort(flat)[::-1][:max(20000, 50 * n)]
    chosen: list[tuple[int, int]] = []
    for idx in order:
        if not np.isfinite(flat[idx]):
            break
        c, a = np.unravel_index(int(idx), scores.shape)
        ok = True
        for c2, a2 in chosen:
            dang = abs((grid.angles_deg[a] - grid.angles_deg[a2] + 180.0) % 360.0 - 180.0)
            if np.linalg.norm(grid.centres[c] - grid.centres[c2]) < min_sep_mm and dang < min_sep_deg:
                ok = False
                break
        if ok:
            chosen.append((int(c), int(a)))
            if len(chosen) >= n:
                break
    return chosen


class _PoseEvaluator:
    """Places (collision-free) and scores continuous poses around grid centres."""

    def __init__(self, grid: PlacementGrid, lattice: rc.FieldLattice, coil, casing: CasingModel, sdf, objective: Objective,
                 distance_mm: float, max_lift_mm: float):
        self.grid, self.lattice, self.coil, self.casing, self.sdf = grid, lattice, coil, casing, sdf
        self.objective, self.distance, self.max_lift = objective, float(distance_mm), float(max_lift_mm)
        self.frames = grid.centre_frames()
        self.n_eval = 0

    def poses(self, params: np.ndarray, centre_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """params (P, 5) = du, dv (mm), angle (deg), tilt x, tilt y (deg) -> rotations, reference
        translations, lifts, placed."""
        P = len(params)
        R = np.empty((P, 3, 3))
        T = np.empty((P, 3))
        for i in range(P):
            c = int(centre_idx[i])
            base = pose_rotations(self.grid.normals[c][None], np.array([params[i, 2]]), self.grid.left)[0, 0]
            R[i] = base @ _rot_xy(params[i, 3], params[i, 4])
            F = self.frames[c]
            T[i] = self.grid.centres[c] + params[i, 0] * F[:, 0] + params[i, 1] * F[:, 1]
        lifts, _mind, placed = place_lifts(self.sdf, self.casing, R, T, self.distance, max_lift_mm=self.max_lift)
        return R, T, lifts, placed

    def evaluate(self, params: np.ndarray, centre_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(scores (P,), vectors (k, P), poses (P, 4, 4), lifts (P,)); -inf where not placed."""
        R, T, lifts, placed = self.poses(params, centre_idx)
        trans = T - lifts[:, None] * R[:, :, 2]
        vec = np.full((self.lattice.k, len(params)), np.nan)
        if placed.any():
            vec[:, placed] = rc.pose_functionals(self.lattice, self.coil, R[placed], trans[placed])
        self.n_eval += len(params)
        s = self.objective.score(vec)
        s = np.where(placed & np.isfinite(s), s, -np.inf)
        poses = np.tile(np.eye(4), (len(params), 1, 1))
        poses[:, :3, :3] = R
        poses[:, :3, 3] = trans
        return s, vec, poses, lifts


def _prefetch(ev: _PoseEvaluator, cidx: np.ndarray, x0: np.ndarray, spacing_mm: float, angle_step_deg: float,
              tilt_deg: float) -> None:
    """Evaluate (one FMM) the field lattice nodes the refinement around each start can reach:
    the dipoles of poses at the corners of its search box."""
    import itertools

    from scipy import ndimage

    from navigator.optimize.kernels import mark_cells

    t = list(np.linspace(-tilt_deg, tilt_deg, 5)) if tilt_deg > 0 else [0.0]
    corners = np.array(list(itertools.product([-spacing_mm, 0.0, spacing_mm], [-spacing_mm, 0.0, spacing_mm],
                                              np.linspace(-angle_step_deg, angle_step_deg, 5), t, t)))
    lat = ev.lattice
    mask = lat.new_mask()
    for k in range(len(cidx)):
        params = x0[k][None, :] + corners
        R, T, lifts, placed = ev.poses(params, np.full(len(params), cidx[k]))
        trans = T - lifts[:, None] * R[:, :, 2]
        pts = (np.einsum("pij,dj->pdi", R[placed], ev.coil.dipole_positions) + trans[placed, None, :]).reshape(-1, 3)
        mark_cells(np.ascontiguousarray(pts), lat.origin, lat.h, lat.shape, mask)
    # one node more around them: the poses between the samples stay inside
    mask = ndimage.binary_dilation(mask.reshape(tuple(lat.shape))).ravel()
    lat.evaluate_marked(mask)


def _refinement_reach(lattice: rc.FieldLattice, grid: PlacementGrid, coil, lifts: np.ndarray, placed: np.ndarray, *,
                      tilt_deg: float, spacing_mm: float, angle_step_deg: float, aux_spacing_mm: float,
                      lift_step_mm: float = 1.0, lift_margin_mm: float = 3.0):
    """``extend(mask)`` for :func:`navigator.optimize.reciprocity.lifted_grid_functionals`: the
    lattice nodes the refinement may need around *any* start, so that the grid's FMM evaluates
    them too (an FMM's set-up over the head's ~300 k reciprocal current elements costs 10-20 s
    whatever the number of nodes; the nodes themselves cost ~15 us each).

    A refined pose's dipole P differs from the same dipole of its start grid pose P0 by the
    centre offset (<= sqrt(2) x spacing), the handle angle (<= half an angle step to the nearest
    grid angle: r x step/2), the tilt (|tilt x|, |tilt y| <= ``tilt_deg``: a rotation of at most
    tau_c ~ sqrt(2) tilt about the coil origin, <= |P0 - origin| tau_c) and the lift change of the
    collision-free placement (``lift_margin_mm``; more is evaluated on demand). P0 lies within
    sqrt(3)/2 aux spacing of an auxiliary node at a lift level within half a level step, whose
    lattice cell the grid marks; the nodes of P's cell are within sqrt(3) h of P. So every node
    closer to a grid-marked node than the sum of these (r: the dipole's distance from the coil
    axis, bounded by the node's distance from the disc's axis + the disc radius) is marked: a
    Euclidean distance transform of the grid mask with a radius growing towards the coil's rim.
    Nodes still missing later are evaluated on demand (:meth:`FieldLattice.ensure`)."""
    pos = coil.dipole_positions
    r_coil = float(np.hypot(pos[:, 0], pos[:, 1]).max())
    z_reach = float(np.abs(pos[:, 2]).max()) + float(np.abs(lifts[placed]).max(initial=0.0)) + lift_margin_mm
    c0 = int(np.argmin(np.linalg.norm(grid.offsets_mm, axis=1)))
    entry, n0 = grid.centres[c0], grid.normals[c0]
    r_disc = float(np.linalg.norm(grid.centres - entry, axis=1).max())
    tau = 2.0 * math.asin(min(1.0, math.sqrt(2.0) * math.sin(math.radians(tilt_deg) / 2.0))) * 1.01
    h = lattice.h
    slop = 1.5 * math.sqrt(3.0) * h + math.sqrt(3.0) / 2 * aux_spacing_mm + lift_step_mm / 2
    base = slop + math.sqrt(2.0) * spacing_mm + lift_margin_mm
    per_mm = math.radians(angle_step_deg) / 2 + tau  # x the dipole's distance from the coil origin
    rho_max = base + per_mm * math.hypot(r_coil, z_reach)

    def extend(mask: np.ndarray) -> None:
        from scipy import ndimage

        shape = tuple(int(x) for x in lattice.shape)
        m3 = mask.reshape(shape)
        ijk = np.argwhere(m3)
        if len(ijk) == 0:
            return
        pad = int(math.ceil(rho_max / h)) + 1
        lo = np.maximum(ijk.min(axis=0) - pad, 0)
        hi = np.minimum(ijk.max(axis=0) + pad + 1, np.array(shape))
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        sub = m3[sl]
        dist = ndimage.distance_transform_edt(~sub, sampling=h)
        ax = [lattice.origin[i] + h * np.arange(lo[i], hi[i]) - entry[i] for i in range(3)]
        dx, dy, dz = np.meshgrid(*ax, indexing="ij", sparse=True)
        along = dx * n0[0] + dy * n0[1] + dz * n0[2]
        r_node = np.sqrt(np.maximum(dx * dx + dy * dy + dz * dz - along * along, 0.0))
        r = np.minimum(r_node + r_disc, r_coil)
        rho = base + per_mm * np.sqrt(r * r + z_reach * z_reach)
        sub |= dist <= rho  # a view of ``mask``

    return extend


def _refine(ev: _PoseEvaluator, starts: list[tuple[int, int]], grid_scores: np.ndarray, *, tilt_deg: float,
            spacing_mm: float, angle_step_deg: float, prefetch: bool, progress: Progress) -> list[RefinedPose]:
    """Compass search from each start over (du, dv, angle, tilt x, tilt y), all starts at once.
    ``prefetch``: evaluate the lattice nodes around the starts first (one FMM; not needed when the
    grid's FMM covered the refinement's reach, :func:`_refinement_reach`)."""
    K = len(starts)
    cidx = np.array([c for c, _ in starts])
    x = np.zeros((K, 5))
    x[:, 2] = [ev.grid.angles_deg[a] for _, a in starts]
    if prefetch:
        _prefetch(ev, cidx, x, spacing_mm, angle_step_deg, tilt_deg)
    best, vec, poses, lifts = ev.evaluate(x, cidx)
    step = np.array([spacing_mm / 2, spacing_mm / 2, angle_step_deg / 2, max(tilt_deg / 2, 1e-9), max(tilt_deg / 2, 1e-9)])
    steps = np.tile(step, (K, 1))
    min_step = np.array([0.05, 0.05, 0.05, 0.1, 0.1])
    lim = np.array([spacing_mm, spacing_mm, angle_step_deg, tilt_deg, tilt_deg])  # around the start
    x_start = x.copy()
    dims = [0, 1, 2] + ([3, 4] if tilt_deg > 0 else [])
    active = np.ones(K, bool)
    it = 0
    while active.any() and it < 200:
        it += 1
        progress.update(min(0.99, it / 60), f"refining {int(active.sum())} candidates")
        ks = np.flatnonzero(active)
        trial, owner = [], []
        for kk in ks:
            for d in dims:
                for sgn in (1.0, -1.0):
                    t = x[kk].copy()
                    t[d] += sgn * steps[kk, d]
                    if abs(t[d] - x_start[kk, d]) > lim[d] + 1e-9:  # within one grid step / tilt_deg
                        continue
                    trial.append(t)
                    owner.append(kk)
        if not trial:
            break
        trial = np.array(trial)
        owner = np.array(owner)
        s, v, p, lf = ev.evaluate(trial, cidx[owner])
        for kk in ks:
            m = np.flatnonzero(owner == kk)
            j = m[np.argmax(s[m])] if len(m) else None
            if j is not None and s[j] > best[kk] * (1 + 1e-9) + 1e-30:
                x[kk], best[kk], vec[:, kk], poses[kk], lifts[kk] = trial[j], s[j], v[:, j], p[j], lf[j]
            else:
                steps[kk] /= 2
                if (steps[kk, dims] < min_step[dims]).all():
                    active[kk] = False
    out = []
    for kk in range(K):
        c, a = starts[kk]
        out.append(RefinedPose(pose=poses[kk], score=float(best[kk]), vector=vec[:, kk].copy(), centre_index=int(c),
                               angle_deg=float(x[kk, 2] % 360.0), offset_mm=(float(x[kk, 0]), float(x[kk, 1])),
                               tilt_deg=(float(x[kk, 3]), float(x[kk, 4])), lift_mm=float(lifts[kk]),
                               start_score=float(grid_scores[c, a])))
    out.sort(key=lambda r: -r.score if np.isfinite(r.score) else np.inf)
    return out


def _exact_checked(ev: _PoseEvaluator, scalp: Surface, refined: list[RefinedPose], distance_mm: float) -> list[RefinedPose]:
    """The refined candidates after the exact casing check (:func:`_final_clearance`), best first.

    Candidates are checked best first until the best checked score is at least the next
    candidate's unchecked one: a check only lifts the coil further from the head (which lowers
    its field), so no later candidate can win. Unchecked candidates keep ``clearance_mm`` None.
    """
    order = sorted(refined, key=lambda r: -r.score if np.isfinite(r.score) else np.inf)
    checked: list[RefinedPose] = []
    rest: list[RefinedPose] = []
    for r in order:
        best = max((c.score for c in checked if np.isfinite(c.score)), default=-np.inf)
        if checked and (not np.isfinite(r.score) or best >= r.score):
            rest.append(r)
            continue
        checked.append(_final_clearance(ev, scalp, r, distance_mm))
    out = checked + rest
    out.sort(key=lambda r: -r.score if np.isfinite(r.score) else np.inf)
    return out


def _final_clearance(ev: _PoseEvaluator, scalp: Surface, r: RefinedPose, distance_mm: float, tol_mm: float = 0.1) -> RefinedPose:
    """Re-check the refined pose with 1 mm casing points and the exact scalp distance; lift it
    further (and re-score) where the lattice distance was optimistic."""
    pose = r.pose.copy()
    fine = ev.casing.fine

    def clearance(p: np.ndarray) -> float:
        w = fine @ p[:3, :3].T + p[:3, 3]
        d = ev.sdf.sample(w)
        return exact_clearance(scalp, w[d <= d.min() + 1.5])  # the lattice distance is within 0.2 mm

    clear = clearance(pose)
    extra = 0.0
    for _ in range(5):
        if clear >= distance_mm - tol_mm:
            break
        delta = distance_mm - clear + 0.02
        extra += delta
        pose[:3, 3] -= delta * pose[:3, 2]
        clear = clearance(pose)
    if extra:
        vec = rc.pose_functionals(ev.lattice, ev.coil, pose[None, :3, :3], pose[None, :3, 3])[:, 0]
        r = RefinedPose(pose=pose, score=float(ev.objective.score(vec[:, None])[0]), vector=vec,
                        centre_index=r.centre_index, angle_deg=r.angle_deg, offset_mm=r.offset_mm, tilt_deg=r.tilt_deg,
                        lift_mm=r.lift_mm + extra, start_score=r.start_score)
    r.clearance_mm = float(clear)
    return r


def fine_search(src: rc.ReciprocalSources, coil, grid: PlacementGrid, scalp: Surface, objective: Objective, *,
                distance_mm: float, max_lift_mm: float = 20.0, refine: bool = True, tilt_deg: float = 5.0,
                n_refine: int = 8, aux_spacing_mm: float = 2.0, world_grid_mm: float = 2.0, eps: float = 1e-3,
                casing_spacing_mm: float = 3.0, fold_refinement: bool = True,
                progress: Progress | None = None) -> FineSearch:
    """Collision-free placement, reciprocity scores of every grid placement and refinement (see
    the module docstring). ``src`` holds the target's (and the avoid region's) reciprocal sources.
    ``fold_refinement``: the grid's FMM also evaluates the field where any refinement may reach
    (:func:`_refinement_reach`) instead of a second FMM for the refinement."""
    progress = ensure_progress(progress)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    casing = CasingModel.of(coil, casing_spacing_mm)
    entry = grid.scalp_points[int(np.argmin(np.linalg.norm(grid.offsets_mm, axis=1)))]
    n0 = grid.normals[int(np.argmin(np.linalg.norm(grid.offsets_mm, axis=1)))]
    radius = float(np.linalg.norm(grid.offsets_mm, axis=1).max()) if grid.n_centres else 0.0
    progress.update(0.0, "scalp distance field")
    sdf = search_field(scalp, entry, n0, casing, radius_mm=radius, max_lift_mm=max_lift_mm,
                       tilt_deg=tilt_deg if refine else 0.0)
    timings["distance_field"] = time.perf_counter() - t0
    # 1. collision-free lifts of every placement
    t1 = time.perf_counter()
    R = grid.rotations()
    frames = np.ascontiguousarray(R[:, 0])
    Q = np.einsum("ji,ajk->aik", frames[0], R[0])
    if not np.allclose(np.einsum("cij,ajk->caik", frames, Q), R, atol=1e-9):
        raise NavigatorError("handle angles are not one rotation about the coil axis at every centre (internal error)")
    del R
    progress.update(0.02, f"placing {grid.n_placements:,} coils collision-free")
    lifts, mind, placed = place_lifts_grid(sdf, casing, frames, grid.centres, Q, distance_mm,
                                           max_lift_mm=max_lift_mm)
    # lifts within 0.1 mm of the along-normal position count as 0: one lift level for the
    # centres of a convex region (the casing then sits within 0.15 mm of the distance)
    lifts = np.where(np.abs(lifts) < 0.1, 0.0, lifts)
    timings["collision"] = time.perf_counter() - t1
    n_unplaced = int((~placed).sum())
    if not placed.any():
        raise NavigatorError(f"no candidate placement keeps the coil casing {distance_mm:g} mm outside the scalp "
                             f"within a lift of {max_lift_mm:g} mm")
    # 2. the world lattice of B: box over every coil dipole of every placement (and the refinement)
    t2 = time.perf_counter()
    rs = float(np.sqrt((coil.dipole_positions[:, :2] ** 2).sum(axis=1)).max()) if coil.n_dipoles else 0.0
    pad = rs * math.sin(math.radians(tilt_deg if refine else 0.0)) + max_lift_mm + 20.0
    lo = grid.centres.min(axis=0) - rs - pad
    hi = grid.centres.max(axis=0) + rs + pad
    lattice = rc.FieldLattice(src, lo, hi, world_grid_mm, eps=eps)
    spacing = _grid_spacing(grid)
    astep = float(np.diff(grid.angles_deg).min()) if grid.n_angles > 1 else 10.0
    extend = None
    if refine and fold_refinement:
        extend = _refinement_reach(lattice, grid, coil, lifts, placed, tilt_deg=float(tilt_deg), spacing_mm=spacing,
                                   angle_step_deg=astep, aux_spacing_mm=aux_spacing_mm)
    vec, ginfo = rc.lifted_grid_functionals(lattice, coil, frames, grid.centres, Q, lifts, placed,
                                            aux_spacing_mm=aux_spacing_mm, extend=extend,
                                            progress=progress.sub(0.05, 0.85, "scores"))
    scores = objective.score(vec)
    scores = np.where(placed, scores, np.nan)
    timings["scores"] = time.perf_counter() - t2
    flat = np.where(np.isfinite(scores), scores, -np.inf)
    best_grid = tuple(int(i) for i in np.unravel_index(int(np.argmax(flat)), scores.shape))
    # 3. refinement
    t3 = time.perf_counter()
    ev = _PoseEvaluator(grid, lattice, coil, casing, sdf, objective, distance_mm, max_lift_mm)
    if refine:
        starts = _candidates(scores, grid, n_refine, min_sep_mm=max(3.0, 3 * spacing), min_sep_deg=max(10.0, 5 * astep))
        before = dict(lattice.timings)
        refined = _refine(ev, starts, scores, tilt_deg=float(tilt_deg), spacing_mm=spacing, angle_step_deg=astep,
                          prefetch=extend is None, progress=progress.sub(0.85, 0.97, "refine"))
        extra_fmm = lattice.timings["fmm_calls"] - before["fmm_calls"]
        extra_nodes = lattice.timings["nodes"] - before["nodes"]
    else:
        c, a = best_grid
        p = np.array([[0.0, 0.0, grid.angles_deg[a], 0.0, 0.0]])
        s, v, poses, lf = ev.evaluate(p, np.array([c]))
        refined = [RefinedPose(pose=poses[0], score=float(s[0]), vector=v[:, 0], centre_index=c,
                               angle_deg=float(grid.angles_deg[a]), offset_mm=(0.0, 0.0), tilt_deg=(0.0, 0.0),
                               lift_mm=float(lf[0]), start_score=float(scores[c, a]))]
        extra_fmm = extra_nodes = 0
    refined = _exact_checked(ev, scalp, refined, distance_mm)
    timings["refine"] = time.perf_counter() - t3
    timings["total"] = time.perf_counter() - t0
    n_placed = int(placed.sum())
    info = {
        "n_placements": grid.n_placements, "n_centres": grid.n_centres, "n_angles": grid.n_angles,
        "spacing_mm": spacing, "angle_step_deg": astep,
        "n_placed": n_placed, "n_not_placed": n_unplaced,
        "n_lifted_over_0.5mm": int((placed & (lifts > 0.5)).sum()),
        "max_lift_mm": float(lifts[placed].max()), "casing": casing.source, "casing_points": len(casing.coarse),
        "coil_dipoles": coil.n_dipoles, "aux_nodes": ginfo["aux_nodes"], "lift_levels": ginfo["lift_levels"],
        "lattice_nodes": int(lattice.timings["nodes"]), "grid_lattice_nodes": ginfo["grid_lattice_nodes"],
        "fmm_calls": int(lattice.timings["fmm_calls"]), "direct_lattice_nodes": int(lattice.timings["direct_nodes"]),
        "refine": {"enabled": bool(refine), "candidates": len(refined), "tilt_max_deg": float(tilt_deg),
                   "evaluations": ev.n_eval, "extra_fmm_calls": int(extra_fmm),
                   "folded_into_grid_fmm": bool(extend is not None), "extra_lattice_nodes": int(extra_nodes),
                   "grid_best_score": float(scores[best_grid]), "refined_best_score": refined[0].score},
        "timings_s": {**timings, "scores_detail": ginfo["timings_s"], "fmm": lattice.timings["fmm_s"],
                      "lattice_direct": lattice.timings["direct_s"]},
        "placements_per_s_scoring": grid.n_placements / max(timings["collision"] + timings["scores"], 1e-9),
    }
    return FineSearch(grid, scores, vec, lifts, placed, best_grid, refined, objective, casing, info)


def _grid_spacing(grid: PlacementGrid) -> float:
    """The centre spacing of a grid (smallest non-zero offset difference), mm."""
    off = grid.offsets_mm
    if len(off) < 2:
        return 1.0
    from scipy.spatial import cKDTree

    d, _ = cKDTree(off).query(off, k=2)
    return float(np.median(d[:, 1]))


# --------------------------------------------------------------------------- coarse sub-grids
def half_turn_asymmetry(scores: np.ndarray, angles_deg: np.ndarray) -> float | None:
    """Largest relative difference of a placement's score and its 180-degree-turned twin's.

    ``scores`` (C, A) over handle angles ``angles_deg`` (A,) evenly covering the full circle;
    returns max |s(a) - s(a + 180)| / max |s| over the pairs where both are finite, or None when
    the angle list has no half-turn pairs. A figure-of-eight's field flips sign under a half
    turn when its windings are point-symmetric, so |mean E| repeats; the mean normal component
    does not, and neither does any score whose collision-free lift depends on an asymmetric
    casing (a handle). This measures it instead of assuming it."""
    A = len(angles_deg)
    if A < 2 or A % 2 or not np.allclose(np.diff(angles_deg), 360.0 / A):
        return None
    s = np.asarray(scores, float)
    t = np.roll(s, -A // 2, axis=1)
    ok = np.isfinite(s) & np.isfinite(t)
    if not ok.any():
        return None
    return float(np.abs(s[ok] - t[ok]).max() / np.abs(s[ok]).max())


def _centre_lattice(grid: PlacementGrid) -> np.ndarray:
    """(C, 2) integer coordinates of the centres on the square offset lattice."""
    sp = _grid_spacing(grid)
    k = np.rint(grid.offsets_mm / sp).astype(np.int64)
    if not np.allclose(k * sp, grid.offsets_mm, atol=0.01 * sp):
        raise NavigatorError("the grid's centres are not on a square lattice (coarse sub-grids need one)")
    return k


def coarse_subgrid(grid: PlacementGrid, centre_step: int, angle_step: int, *, phase: tuple[int, int, int] = (0, 0, 0),
                   half_turn: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A coarse exhaustive sub-grid of a fine grid: the centres every ``centre_step`` lattice
    steps (``phase[:2]`` the offset, in steps, of the lattice kept; (0, 0) keeps the target's
    scalp entry) over the whole disc, and the angles every ``angle_step`` angle indices from
    index ``phase[2]`` over the full circle (``half_turn``: over 180 degrees only).
    Returns (centre indices, angle indices)."""
    k = _centre_lattice(grid)
    cs, ast = int(centre_step), int(angle_step)
    if cs < 1 or ast < 1:
        raise NavigatorError("coarse steps must be >= 1")
    cidx = np.flatnonzero(((k - np.asarray(phase[:2])) % cs == 0).all(axis=1))
    n = grid.n_angles // 2 if half_turn else grid.n_angles
    aidx = np.arange(int(phase[2]) % ast, n, ast)
    return cidx, aidx


@dataclass
class CoarseGridCheck:
    """How the best placement of a coarse exhaustive sub-grid ranks among a fine search's scores.

    For every phase (placement of the coarse lattice relative to the fine one: centre_step^2 x
    angle_step phases) the coarse placements whose fine score lies within ``tol_rel`` of the
    coarse best are the ones an exhaustive direct search could pick as its best (direct FEM and
    reciprocity differ by less than that); their worst fine rank is the phase's rank.

    Attributes:
        centre_step, angle_step: in fine-grid steps; centre_mm, angle_deg: the same in mm/degrees.
        half_turn: angles over 180 degrees only. tol_rel: see above. top_fraction: the bound.
        n_placements: coarse placements (placed) of the largest phase. n_fine: finite fine scores.
        worst_rank: the worst rank over all phases (1 = the fine grid's best). phases, phases_ok:
        number of phases and of those whose rank is within ``top_fraction`` x n_fine.
        rank_at_phase0: the rank of phase (0, 0, 0) (the lattice through the scalp entry, angle 0).
    """

    centre_step: int
    angle_step: int
    centre_mm: float
    angle_deg: float
    half_turn: bool
    tol_rel: float
    top_fraction: float
    n_placements: int
    n_fine: int
    worst_rank: int
    phases: int
    phases_ok: int
    rank_at_phase0: int

    @property
    def worst_fraction(self) -> float:
        return self.worst_rank / self.n_fine

    @property
    def ok(self) -> bool:
        """Every phase within the top fraction."""
        return self.phases_ok == self.phases


def fine_ranks(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """(C, A) rank of each finite score among all finite ones (1 = best; ties share the better
    rank); a large value where not finite. And the number of finite scores."""
    fin = np.isfinite(scores)
    srt = np.sort(scores[fin])
    n = len(srt)
    ranks = np.full(scores.shape, n + 1, np.int64)
    ranks[fin] = 1 + n - np.searchsorted(srt, scores[fin], side="right")
    return ranks, n


def coarse_grid_check(scores: np.ndarray, grid: PlacementGrid, centre_step: int, angle_step: int, *,
                      half_turn: bool = False, tol_rel: float = 0.002, top_fraction: float = 1e-3,
                      _ranks: tuple[np.ndarray, int] | None = None) -> CoarseGridCheck:
    """:class:`CoarseGridCheck` of one coarse design (``centre_step`` lattice steps, ``angle_step``
    angle indices) against the fine ``scores`` (C, A; NaN = not placed) of ``grid``, over all phases."""
    ranks, n_fine = fine_ranks(scores) if _ranks is None else _ranks
    k = _centre_lattice(grid)
    cs, ast = int(centre_step), int(angle_step)
    A = grid.n_angles
    n_ang = A // 2 if half_turn else A
    if n_ang % ast:
        raise NavigatorError(f"angle step {ast} does not divide {n_ang} angles")
    S = np.where(np.isfinite(scores), scores, -np.inf)
    worst, n_ok, n_max, phases, rank0 = 0, 0, 0, 0, -1
    for px in range(cs):
        for py in range(cs):
            cidx = np.flatnonzero(((k - (px, py)) % cs == 0).all(axis=1))
            if len(cidx) == 0:
                continue
            s = S[cidx, :n_ang].reshape(len(cidx), n_ang // ast, ast)  # [centre, angle group, phase]
            r = ranks[cidx, :n_ang].reshape(s.shape)
            best = s.max(axis=(0, 1))  # per angle phase
            thr = best - tol_rel * np.abs(best)
            contender = (s >= thr) & np.isfinite(s)
            rk = np.where(contender, r, 0).max(axis=(0, 1))
            rk = np.where(np.isfinite(best), rk, n_fine + 1)
            n_placed = np.isfinite(s).sum(axis=(0, 1))
            n_max = max(n_max, int(n_placed.max()))
            worst = max(worst, int(rk.max()))
            n_ok += int((rk <= top_fraction * n_fine).sum())
            phases += ast
            if px == 0 and py == 0:
                rank0 = int(rk[0])
    return CoarseGridCheck(cs, ast, cs * _grid_spacing(grid), float(ast * 360.0 / A), bool(half_turn), float(tol_rel),
                           float(top_fraction), n_max, n_fine, worst, phases, n_ok, rank0)


def predict_coarse_grid(scores: np.ndarray, grid: PlacementGrid, *, top_fraction: float = 1e-3, tol_rel: float = 0.002,
                        every_phase: bool = False, half_turn_tol: float | None = None, max_centre_mm: float = 12.0,
                        max_angle_deg: float = 90.0) -> tuple[CoarseGridCheck, float | None]:
    """From the fine scores alone: the coarse exhaustive design over the whole disc with the
    fewest placements whose best (every contender within ``tol_rel`` of it, see
    :class:`CoarseGridCheck`) is in the fine search's top ``top_fraction``: for the coarse
    lattice through the target's scalp entry and angle 0 (phase (0, 0, 0), what
    :func:`coarse_subgrid` gives by default), or at every phase (``every_phase``; this needs
    about 1 / (top_fraction x shape factor) placements whatever the fine grid). Angles cover 180
    degrees when the scores repeat under a half turn within ``half_turn_tol`` (default
    ``tol_rel / 2``; :func:`half_turn_asymmetry`), else 360. Returns (the design's check, the
    measured half-turn asymmetry). Centre steps up to ``max_centre_mm``, angle steps dividing
    the angles up to ``max_angle_deg``; an error when no design passes."""
    asym = half_turn_asymmetry(scores, grid.angles_deg)
    half = asym is not None and asym <= (tol_rel / 2 if half_turn_tol is None else half_turn_tol)
    sp = _grid_spacing(grid)
    A = grid.n_angles
    n_ang = A // 2 if half else A
    ranks = fine_ranks(scores)
    n_cent = {cs: None for cs in range(1, max(1, int(max_centre_mm / sp + 1e-9)) + 1)}
    k = _centre_lattice(grid)
    for cs in n_cent:  # centres of the largest phase, to order the designs by cost
        n_cent[cs] = max(int((((k - (px, py)) % cs == 0).all(axis=1)).sum()) for px in range(cs) for py in range(cs))
    steps = [q for q in range(1, n_ang + 1) if n_ang % q == 0 and q * 360.0 / A <= max_angle_deg + 1e-9]
    designs = sorted(((n_cent[cs] * (n_ang // q), cs, q) for cs in n_cent for q in steps), reverse=False)
    best = None
    for _cost, cs, q in designs:
        chk = coarse_grid_check(scores, grid, cs, q, half_turn=half, tol_rel=tol_rel, top_fraction=top_fraction,
                                _ranks=ranks)
        if chk.ok if every_phase else chk.rank_at_phase0 <= top_fraction * chk.n_fine:
            best = chk
            break
    if best is None:
        raise NavigatorError(f"no coarse design up to {max_centre_mm:g} mm x {max_angle_deg:g} degrees puts its best in "
                             f"the top {100 * top_fraction:g} %{' at every phase' if every_phase else ''}")
    return best, asym
