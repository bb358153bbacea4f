"""TMS coil placement optimization: maximize the ROI-mean field over centres x handle angles.

Objectives (V/m per unit dI/dt, linear in dI/dt):

* ``"normal"``: ROI-mean of E . d with d the direction INTO the cortex (minus the outward
  middle-GM normal at the target; minus the scalp normal without a cortex surface) -- one
  reciprocal solve;
* ``"magnitude"``: |ROI-mean E vector| (three reciprocal solves, x/y/z). This is *not* the
  ROI-mean of |E| (mean |E| >= |mean E|, equal when E is parallel throughout the ROI); the
  two agree closely for small ROIs (5 mm) where E hardly turns. See ``docs/optimization.md``.

With an avoid region (``TmsSearch.avoid`` / ``avoid_mask``) the score is the focality ratio
target / |ROI-mean E in the avoid region| (three more reciprocal solves).

Modes: ``"reciprocity"`` (:mod:`navigator.optimize.fine_search`: every placement of the fine grid
placed collision-free and scored from 1 or 3 (+3) solves, the best refined) and ``"direct"``
(one FEM solve per collision-free placement, for verification on coarse grids).
:func:`optimize_placement` is the earlier grid-only search (no collision check, no refinement),
kept for the tests and benchmarks that compare with it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.workspace import Workspace
from navigator.export.plan import CoilPose, ImageInfo, Plan, Target, save_plan
from navigator.optimize import reciprocity as rc
from navigator.optimize.grid import PlacementGrid, placement_grid
from navigator.optimize.result import OptimizationResult
from navigator.targets.head import Head
from navigator.targets.resolve import ResolvedTarget
from navigator.tms.coil import Coil

log = logging.getLogger(__name__)

DEFAULT_COIL = "Magstim_D70"
OBJECTIVES = ("magnitude", "normal")
MODES = ("reciprocity", "direct")
#: dI/dt used to report fields when no intensity is known, A/s (1 A/us).
REFERENCE_DIDT = 1e6


def objective_directions(objective: str, direction: np.ndarray | None) -> np.ndarray:
    """(k, 3) reciprocal directions for an objective."""
    if objective == "magnitude":
        return np.eye(3)
    if objective == "normal":
        if direction is None:
            raise NavigatorError("the 'normal' objective needs a direction")
        d = np.asarray(direction, float).reshape(3)
        return (d / np.linalg.norm(d))[None]
    raise NavigatorError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")


def combine(vectors: np.ndarray, objective: str) -> np.ndarray:
    """Scalar scores from the (k, ...) functionals: |vector| for magnitude, the value for normal."""
    return np.linalg.norm(vectors, axis=0) if objective == "magnitude" else vectors[0]


@dataclass
class TmsOptimum:
    """Result of a placement search.

    Attributes:
        grid: the candidate placements. scores: (C, A) objective in V/m per A/s of dI/dt.
        vectors: (k, C, A) the functionals (mean E components or mean E . d), V/m per A/s.
        best: (centre index, angle index). pose: 4x4 best pose (world mm).
        objective, mode: as requested. info: sizes and timings.
    """

    grid: PlacementGrid
    scores: np.ndarray
    vectors: np.ndarray
    best: tuple[int, int]
    pose: np.ndarray
    objective: str
    mode: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def best_score(self) -> float:
        return float(self.scores[self.best])

    @property
    def best_angle_deg(self) -> float:
        return float(self.grid.angles_deg[self.best[1]])


def direct_functionals(system, coil, poses: list[np.ndarray], roi_mask: np.ndarray, directions: np.ndarray, *,
                       d_at: str = "nodes", eps: float = 1e-4, progress: Progress | None = None) -> np.ndarray:
    """(k, P) ROI-mean d_j . E (V/m per A/s) for each pose, one FEM solve per pose."""
    from navigator.tms.simulate import solve_tms

    progress = ensure_progress(progress)
    out = np.zeros((len(directions), len(poses)))
    for p, pose in enumerate(poses):
        progress.update(p / max(len(poses), 1), f"direct solve {p + 1}/{len(poses)}")
        f = solve_tms(system.mesh, coil, pose, 1.0, system=system, eps=eps, d_at=d_at)
        out[:, p] = directions @ rc.roi_mean_field(system, f.E, roi_mask)
    progress.update(1.0, "direct solves done")
    return out


def optimize_placement(system, coil, grid: PlacementGrid, roi_mask: np.ndarray, *, objective: str = "magnitude",
                       direction: np.ndarray | None = None, mode: str = "reciprocity", d_at: str = "nodes",
                       aux_spacing_mm: float = 2.0, world_grid_mm: float | None = 1.5, eps: float = 1e-3,
                       progress: Progress | None = None) -> tuple[TmsOptimum, rc.ReciprocalSources | None]:
    """Score every placement of ``grid`` and return the best (and the reciprocal sources, if used)."""
    progress = ensure_progress(progress)
    if mode not in MODES:
        raise NavigatorError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    dirs = objective_directions(objective, direction)
    t0 = time.perf_counter()
    info: dict[str, Any] = {"n_placements": grid.n_placements, "n_centres": grid.n_centres,
                            "n_angles": grid.n_angles, "coil_dipoles": coil.n_dipoles}
    src = None
    if mode == "reciprocity":
        src = rc.reciprocal_sources(system, roi_mask, dirs, d_at=d_at, progress=progress.sub(0.0, 0.4, "reciprocal"))
        t1 = time.perf_counter()
        vec, ginfo = rc.grid_scores(src, coil, grid, 1.0, aux_spacing_mm=aux_spacing_mm, world_grid_mm=world_grid_mm,
                                    eps=eps, progress=progress.sub(0.4, 1.0, "placements"))
        info.update(ginfo)
        info["timings_s"] = {"reciprocal_solves": t1 - t0, "placements": time.perf_counter() - t1}
        info["reciprocal_solves"] = src.solve_info
    else:
        poses = [grid.pose(i, a) for i in range(grid.n_centres) for a in range(grid.n_angles)]
        flat = direct_functionals(system, coil, poses, roi_mask, dirs, d_at=d_at, progress=progress)
        vec = flat.reshape(len(dirs), grid.n_centres, grid.n_angles)
        info["timings_s"] = {"placements": time.perf_counter() - t0}
    info["timings_s"]["total"] = time.perf_counter() - t0
    info["placements_per_s"] = grid.n_placements / max(info["timings_s"]["total"], 1e-9)
    scores = combine(vec, objective)
    best = tuple(int(x) for x in np.unravel_index(int(np.argmax(scores)), scores.shape))
    return TmsOptimum(grid, scores, vec, best, grid.pose(*best), objective, mode, info), src


# --------------------------------------------------------------------------- outputs
def target_direction(rt) -> np.ndarray:
    """Unit direction into the cortex at a resolved target (minus the outward normal)."""
    n = rt.cortical_normal if rt.cortical_normal is not None else rt.scalp_normal
    n = -np.asarray(n, float)
    return n / np.linalg.norm(n)


def plan_target(rt, name: str = "target") -> Target:
    """The plan's record of a resolved target (cortical point, scalp entry, direction into the head)."""
    pos = rt.cortical_point if rt.cortical_point is not None else rt.point
    desc = f"{rt.spec}" + (f"; MNI {np.round(rt.mni, 1).tolist()}" if rt.mni is not None else "")
    return Target(name=name, position=pos, entry=rt.scalp_entry, direction=target_direction(rt), description=desc)


def image_info(ws: Workspace) -> ImageInfo | None:
    """The plan's record of the image its coordinates refer to (the workspace T1), or None."""
    return ImageInfo.from_nifti(ws.path("t1")) if ws.has("t1") else None


@dataclass
class TmsSearch:
    """Parameters of a coil placement search; the defaults are shared by `navigator optimize tms`,
    the GUI's TMS panel and the batch step ``optimize-tms``.

    Attributes:
        objective: "magnitude" (|ROI-mean E|) or "normal" (ROI-mean E into the cortex).
        radius_mm, spacing_mm: search disc around the target's scalp entry and centre spacing, mm
            (defaults: 20 mm, 0.6 mm: 3,495 centres).
        angle_step_deg: handle angle step, degrees (default 1: 360 angles; with the centres
            1,258,200 placements). mode: "reciprocity" or "direct" (one FEM solve per placement:
            use a coarse grid).
        roi_radius_mm: target sphere in grey matter, mm. distance_mm: coil-scalp distance at the
            casing's closest point, mm.
        refine: refine the best grid candidates (centre offset, finer angle, tilt).
        tilt_deg: largest coil tilt about its x and y axes in the refinement, degrees.
        max_lift_mm: a candidate whose casing needs a larger lift than this to keep
            ``distance_mm`` from the scalp is not placed (reported, never chosen), mm.
        avoid: regions "SPEC:RADIUS_MM" to keep the field off (focality objective: target /
            |mean E in the avoid region|). avoid_mask: a NIfTI mask (subject space) of the avoid
            region (with or instead of ``avoid``).
        target_field_v_per_m: field wanted at the target (reports the % MSO needed), V/m.
        rmt_percent_mso, hotspot: resting motor threshold (% MSO) at the motor hotspot SPEC
            (dose by motor threshold transfer).
        aux_spacing_mm, world_grid_mm: reciprocity quadrature settings, mm.
        nifti: write NIfTI field maps.
    """

    objective: str = "magnitude"
    radius_mm: float = 20.0
    spacing_mm: float = 0.6
    angle_step_deg: float = 1.0
    mode: str = "reciprocity"
    roi_radius_mm: float = 5.0
    distance_mm: float = 4.0
    refine: bool = True
    tilt_deg: float = 5.0
    max_lift_mm: float = 20.0
    avoid: list[str] = field(default_factory=list)
    avoid_mask: str | None = None
    target_field_v_per_m: float | None = None
    rmt_percent_mso: float | None = None
    hotspot: str | None = None
    aux_spacing_mm: float = 2.0
    world_grid_mm: float = 2.0
    nifti: bool = True

    #: the short names of batch configuration files and the GUI -> attribute
    SHORT_NAMES: ClassVar[dict[str, str]] = {
        "direction": "objective", "radius": "radius_mm", "spacing": "spacing_mm", "angle_step": "angle_step_deg",
        "mode": "mode", "roi_radius": "roi_radius_mm", "distance": "distance_mm",
        "refine": "refine", "tilt": "tilt_deg", "max_lift": "max_lift_mm", "avoid": "avoid", "avoid_mask": "avoid_mask",
        "target_field": "target_field_v_per_m", "rmt": "rmt_percent_mso", "hotspot": "hotspot",
        "aux_spacing": "aux_spacing_mm", "world_grid": "world_grid_mm", "nifti": "nifti",
    }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TmsSearch:
        """A search from short-named parameters (``radius``, ``angle_step``, ...; see
        :attr:`SHORT_NAMES`); an error naming unknown ones."""
        unknown = set(params) - set(cls.SHORT_NAMES)
        if unknown:
            raise NavigatorError(f"unknown TMS optimization parameter(s): {', '.join(sorted(unknown))}")
        return cls(**{cls.SHORT_NAMES[k]: v for k, v in params.items()})

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise NavigatorError(f"unknown objective {self.objective!r}; use one of {', '.join(OBJECTIVES)}")
        if self.mode not in MODES:
            raise NavigatorError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.rmt_percent_mso is not None and self.hotspot is None:
            raise NavigatorError("--rmt needs --hotspot SPEC (the motor hotspot)")
        if isinstance(self.avoid, str):
            self.avoid = [self.avoid]
        self.avoid = list(self.avoid or [])
        if self.spacing_mm <= 0 or self.angle_step_deg <= 0 or self.radius_mm < 0:
            raise NavigatorError("search radius must be >= 0, spacing and angle step > 0")
        if not (0 <= self.tilt_deg <= 30):
            raise NavigatorError(f"coil tilt must be in [0, 30] degrees, got {self.tilt_deg}")
        if self.world_grid_mm is None or self.world_grid_mm <= 0:
            raise NavigatorError("world_grid_mm must be > 0 mm")

    @property
    def focality(self) -> bool:
        """True when an avoid region makes the objective target / avoid."""
        return bool(self.avoid) or self.avoid_mask is not None


@dataclass
class TmsOptimization(OptimizationResult):
    """What :func:`optimize_tms_workspace` produced: the :class:`OptimizationResult` fields
    (out_dir with plan.json, summary.json, score_map.*, fields/; plan with the optimized pose
    and the standard F3 pose when known; numbers such as the field at the target V/m and the
    dose % MSO; summary) and

    Attributes:
        pose: 4x4 best coil pose [x y(handle) z(into the head) centre], subject RAS mm.
    """

    pose: np.ndarray


def _avoid_mask(head: Head, search: TmsSearch, mesh, roi: np.ndarray) -> np.ndarray | None:
    """The avoid region's tetrahedra (union of the SPEC:RADIUS spheres and the NIfTI mask), or None."""
    from navigator.targets.roi import MaskRoi, SphereRoi

    if not search.focality:
        return None
    mask = np.zeros(mesh.n_tets, bool)
    for spec in search.avoid:
        name, _, rad_text = spec.rpartition(":")
        try:
            rad = float(rad_text)
        except ValueError:
            rad = -1.0
        if not name or rad <= 0:
            raise NavigatorError(f"bad --avoid {spec!r}: expected SPEC:RADIUS_MM with a radius > 0, e.g. eeg:F4:15")
        art = head.target(name)
        ac = np.asarray(art.cortical_point if art.cortical_point is not None else art.point, float)
        mask |= SphereRoi(ac, rad).tet_mask(mesh)
    if search.avoid_mask is not None:
        from navigator.io.images import load_image

        mask |= MaskRoi(load_image(Path(search.avoid_mask))).tet_mask(mesh)
    mask &= ~roi
    if not mask.any():
        raise NavigatorError("the avoid region contains no tetrahedra outside the target region")
    return mask


def search_sources(system, roi: np.ndarray, dirs: np.ndarray, avoid: np.ndarray | None, *,
                   progress: Progress | None = None) -> rc.ReciprocalSources:
    """Reciprocal sources of the target functionals (rows of ``dirs``) and, with an avoid
    region, of its mean field (x, y, z) appended: one :class:`ReciprocalSources` of k + 3."""
    progress = ensure_progress(progress)
    src = rc.reciprocal_sources(system, roi, dirs, progress=progress.sub(0.0, 0.5 if avoid is not None else 1.0))
    if avoid is None:
        return src
    av = rc.reciprocal_sources(system, avoid, np.eye(3), progress=progress.sub(0.5, 1.0, "avoid region"))
    return rc.ReciprocalSources(src.centroids_m, np.concatenate([src.moments, av.moments]),
                                np.concatenate([src.directions, av.directions]), src.roi_volume_m3,
                                src.solve_info + av.solve_info)


def direct_search(system, coil, grid: PlacementGrid, scalp, roi: np.ndarray, dirs: np.ndarray, avoid: np.ndarray | None,
                  objective, *, distance_mm: float, max_lift_mm: float, progress: Progress | None = None):
    """Every placement of ``grid`` placed collision-free and solved by FEM (verification mode)."""
    from navigator.optimize.collision import CasingModel, place_lifts_grid, search_field
    from navigator.optimize.fine_search import FineSearch, RefinedPose

    progress = ensure_progress(progress)
    t0 = time.perf_counter()
    casing = CasingModel.of(coil)
    c0 = int(np.argmin(np.linalg.norm(grid.offsets_mm, axis=1)))
    sdf = search_field(scalp, grid.scalp_points[c0], grid.normals[c0], casing,
                       radius_mm=float(np.linalg.norm(grid.offsets_mm, axis=1).max()), max_lift_mm=max_lift_mm)
    R = grid.rotations()
    frames = np.ascontiguousarray(R[:, 0])
    Q = np.einsum("ji,ajk->aik", frames[0], R[0])
    lifts, _m, placed = place_lifts_grid(sdf, casing, frames, grid.centres, Q, distance_mm, max_lift_mm=max_lift_mm)
    cc, aa = np.nonzero(placed)
    poses = []
    for c, a in zip(cc, aa):
        p = grid.pose(c, a)
        p[:3, 3] -= lifts[c, a] * p[:3, 2]
        poses.append(p)
    flat = direct_functionals(system, coil, poses, roi, dirs, progress=progress.sub(0.0, 1.0 if avoid is None else 0.5))
    if avoid is not None:
        flat_a = direct_functionals(system, coil, poses, avoid, np.eye(3), progress=progress.sub(0.5, 1.0, "avoid"))
        flat = np.concatenate([flat, flat_a])
    k = flat.shape[0]
    vec = np.full((k, grid.n_centres, grid.n_angles), np.nan)
    vec[:, cc, aa] = flat
    scores = np.where(placed, objective.score(vec), np.nan)
    best = tuple(int(i) for i in np.unravel_index(int(np.nanargmax(scores)), scores.shape))
    j = int(np.flatnonzero((cc == best[0]) & (aa == best[1]))[0])
    r = RefinedPose(pose=poses[j], score=float(scores[best]), vector=vec[:, best[0], best[1]], centre_index=best[0],
                    angle_deg=float(grid.angles_deg[best[1]]), offset_mm=(0.0, 0.0), tilt_deg=(0.0, 0.0),
                    lift_mm=float(lifts[best]), start_score=float(scores[best]))
    total = time.perf_counter() - t0
    info = {"n_placements": grid.n_placements, "n_centres": grid.n_centres, "n_angles": grid.n_angles,
            "n_placed": int(placed.sum()), "n_not_placed": int((~placed).sum()), "casing": casing.source,
            "refine": {"enabled": False}, "timings_s": {"total": total},
            "placements_per_s": int(placed.sum()) / max(total, 1e-9)}
    return FineSearch(grid, scores, vec, lifts, placed, best, [r], objective, casing, info)


def write_fine_score_map(out_dir: Path, fs, scale: float, unit: str) -> list[str]:
    """score_map.npz (every placement), score_map.csv (best angle per centre) and score_map.png."""
    import csv
    import io

    from navigator.core.atomic import atomic_path, atomic_write_text

    g = fs.grid
    with atomic_path(out_dir / "score_map.npz") as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, centres_mm=g.centres, scalp_points_mm=g.scalp_points, normals=g.normals,
                            offsets_mm=g.offsets_mm, angles_deg=g.angles_deg,
                            scores=(fs.scores * scale).astype(np.float32), lifts_mm=fs.lifts.astype(np.float32),
                            placed=fs.placed, best_grid=np.array(fs.best_grid), best_pose=fs.best.pose, unit=unit)
    best_s = np.where(np.isfinite(fs.scores), fs.scores, -np.inf)
    ba = np.argmax(best_s, axis=1)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["centre", "x_mm", "y_mm", "z_mm", "offset_u_mm", "offset_v_mm", "best_angle_deg", f"best_score_{unit}",
                "lift_mm", "placed_angles"])
    for i in range(g.n_centres):
        a = int(ba[i])
        sc = fs.scores[i, a]
        w.writerow([i, *np.round(g.centres[i], 3), *np.round(g.offsets_mm[i], 3), g.angles_deg[a],
                    "" if not np.isfinite(sc) else f"{sc * scale:.6g}", f"{fs.lifts[i, a]:.3f}", int(fs.placed[i].sum())])
    atomic_write_text(out_dir / "score_map.csv", buf.getvalue())
    files = ["score_map.npz", "score_map.csv"]
    try:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 4.2))
        ax = fig.subplots(1, 2)
        best_c = np.nanmax(np.where(fs.placed, fs.scores, np.nan), axis=1) * scale
        sc = ax[0].scatter(g.offsets_mm[:, 0], g.offsets_mm[:, 1], c=best_c, s=max(2.0, 400.0 / max(np.sqrt(g.n_centres), 1)),
                           cmap="viridis")
        bad = ~fs.placed.any(axis=1)
        if bad.any():
            ax[0].plot(g.offsets_mm[bad, 0], g.offsets_mm[bad, 1], "x", color="0.5", ms=3, label="not placed")
            ax[0].legend(loc="lower right", fontsize=7)
        ax[0].plot(*g.offsets_mm[fs.best_grid[0]], "r*", ms=14)
        ax[0].set_aspect("equal")
        ax[0].set_xlabel("tangent offset u (mm)")
        ax[0].set_ylabel("tangent offset v (mm)")
        ax[0].set_title("best score over angles per centre")
        fig.colorbar(sc, ax=ax[0], label=unit)
        ax[1].plot(g.angles_deg, fs.scores[fs.best_grid[0]] * scale, "-")
        ax[1].axvline(g.angles_deg[fs.best_grid[1]], color="r")
        ax[1].set_xlabel("handle angle (deg; 0 posterior, 90 lateral)")
        ax[1].set_ylabel(unit)
        ax[1].set_title("score vs angle at the best centre")
        fig.tight_layout()
        with atomic_path(out_dir / "score_map.png") as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        files.append("score_map.png")
    except Exception as exc:  # noqa: BLE001 - the figure is optional
        log.warning("no score map figure: %s", exc)
    return files


def optimize_tms_workspace(ws: Workspace, *, target: str | ResolvedTarget, out_dir: str | Path, coil: str | Coil = DEFAULT_COIL,
                           search: TmsSearch | None = None, progress: Progress | None = None) -> TmsOptimization:
    """Optimize the coil placement over ``target`` on a subject's :class:`Head` and write OUT
    (see docs/optimization.md): plan.json, summary.json, score maps and the fields at the optimum.

    Reciprocity mode: every centre x handle angle of the search grid placed collision-free and
    scored, the best candidates refined (:func:`navigator.optimize.fine_search.fine_search`);
    direct mode: one FEM solve per placement of the grid (verification, coarse grids)."""
    from navigator.core.atomic import atomic_write_json
    from navigator.fem.outputs import TargetRegion, write_field_outputs
    from navigator.optimize import dose as dose_mod
    from navigator.optimize.collision import CasingModel, exact_clearance
    from navigator.optimize.fine_search import Objective, fine_search
    from navigator.targets.roi import SphereRoi
    from navigator.tms.library import load_coil
    from navigator.tms.pose import place_coil
    from navigator.tms.simulate import solve_tms

    search = search or TmsSearch()
    progress = ensure_progress(progress)
    t_all = time.perf_counter()
    head = Head.of(ws)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    objective = search.objective
    mode = search.mode
    coil = coil or DEFAULT_COIL
    coil_obj = load_coil(coil) if isinstance(coil, (str, Path)) else coil
    progress.update(0.0, "loading head model")
    mesh, sigma, system = head.mesh, head.sigma, head.system
    rt = head.target(target)
    centre = np.asarray(rt.cortical_point if rt.cortical_point is not None else rt.point, float)
    roi_radius = float(search.roi_radius_mm)
    roi = SphereRoi(centre, roi_radius).tet_mask(mesh)
    avoid = _avoid_mask(head, search, mesh, roi)
    direction = target_direction(rt)
    scalp = head.scalp
    distance = float(search.distance_mm)
    t_grid = time.perf_counter()
    grid = placement_grid(scalp, np.asarray(rt.scalp_entry), radius_mm=float(search.radius_mm),
                          spacing_mm=float(search.spacing_mm),
                          angle_step_deg=float(search.angle_step_deg), distance_mm=distance)
    t_grid = time.perf_counter() - t_grid
    progress.update(0.05, f"{grid.n_placements:,} placements")
    dirs = objective_directions(objective, direction)
    obj = Objective(objective, len(dirs), focality=avoid is not None)
    t_search = time.perf_counter()
    if mode == "reciprocity":
        src = search_sources(system, roi, dirs, avoid, progress=progress.sub(0.05, 0.3, "reciprocal solves"))
        t_solves = time.perf_counter() - t_search
        fs = fine_search(src, coil_obj, grid, scalp, obj, distance_mm=distance, max_lift_mm=float(search.max_lift_mm),
                         refine=bool(search.refine), tilt_deg=float(search.tilt_deg),
                         aux_spacing_mm=float(search.aux_spacing_mm), world_grid_mm=float(search.world_grid_mm),
                         progress=progress.sub(0.3, 0.75, "placements"))
        fs.info["reciprocal_solves"] = src.solve_info
        fs.info["timings_s"]["reciprocal_solves"] = t_solves
    else:
        t_solves = 0.0
        fs = direct_search(system, coil_obj, grid, scalp, roi, dirs, avoid, obj, distance_mm=distance,
                           max_lift_mm=float(search.max_lift_mm), progress=progress.sub(0.05, 0.75, "direct solves"))
    t_search = time.perf_counter() - t_search
    fs.info["timings_s"]["grid"] = t_grid
    fs.info["timings_s"]["search_incl_solves"] = t_search
    fs.info["placements_per_s"] = grid.n_placements / max(t_search, 1e-9)
    best = fs.best
    pose = best.pose
    # direct FEM at the optimum (fields + check of the reciprocity score)
    progress.update(0.75, "direct solve at the optimum")
    f_best = solve_tms(mesh, coil_obj, pose, 1.0, system=system, eps=1e-4, d_at="nodes")
    vec_direct = dirs @ rc.roi_mean_field(system, f_best.E, roi)
    if avoid is not None:
        vec_direct = np.concatenate([vec_direct, rc.roi_mean_field(system, f_best.E, avoid)])
    best_direct_score = float(obj.score(vec_direct[:, None])[0])
    best_direct = float(obj.target(vec_direct[:, None])[0])  # target field per A/s
    casing = fs.casing if isinstance(fs.casing, CasingModel) else CasingModel.of(coil_obj)
    clearance = exact_clearance(scalp, casing.fine @ pose[:3, :3].T + pose[:3, 3])
    # standard placement: scalp F3, 45 degree handle (along the normal, as navigator simulate tms)
    standard = None
    try:
        f3 = head.eeg["F3"]
        std = place_coil(scalp, f3, handle_angle=45.0, distance=distance)
        f_std = solve_tms(mesh, coil_obj, std.pose, 1.0, system=system, eps=1e-4, d_at="nodes")
        vs = dirs @ rc.roi_mean_field(system, f_std.E, roi)
        standard = {"pose": std.pose, "score": float(obj.target(vs[:, None])[0]),
                    "casing_clearance_mm": exact_clearance(scalp, casing.fine @ std.pose[:3, :3].T + std.pose[:3, 3])}
    except (NavigatorError, KeyError) as exc:
        log.warning("no standard F3 placement for comparison: %s", exc)
    # dose
    dose = None
    dose_info: dict[str, Any] = {}
    tf = search.target_field_v_per_m
    if tf is not None and coil_obj.max_didt:
        dose = dose_mod.percent_mso_for_field(best_direct, float(tf), coil_obj.max_didt)
        dose_info = {"kind": "target field", "target_field_v_per_m": float(tf), "percent_mso": dose}
    if search.rmt_percent_mso is not None:
        hs = search.hotspot
        hrt = head.target(hs)
        hc = np.asarray(hrt.cortical_point if hrt.cortical_point is not None else hrt.point, float)
        hroi = SphereRoi(hc, roi_radius).tet_mask(mesh)
        hpl = place_coil(scalp, np.asarray(hrt.scalp_entry), handle_angle=45.0, distance=distance)
        f_h = solve_tms(mesh, coil_obj, hpl.pose, 1.0, system=system, eps=1e-4, d_at="nodes")
        hd = objective_directions(objective, target_direction(hrt))
        h_score = float(combine(hd @ rc.roi_mean_field(system, f_h.E, hroi), objective))
        dose = dose_mod.motor_threshold_transfer(float(search.rmt_percent_mso), h_score, best_direct)
        dose_info = {"kind": "motor threshold transfer", "rmt_percent_mso": float(search.rmt_percent_mso), "hotspot": hs,
                     "hotspot_pose": hpl.pose, "hotspot_field_per_A_per_us": h_score * 1e6,
                     "hotspot_field_at_rmt_v_per_m": (h_score * coil_obj.max_didt * float(search.rmt_percent_mso) / 100.0
                                                      if coil_obj.max_didt else None),
                     "percent_mso": dose}
    if dose is not None and coil_obj.max_didt:
        planned_didt = coil_obj.max_didt * dose / 100.0
    elif coil_obj.max_didt:
        planned_didt = coil_obj.max_didt
    else:
        planned_didt = REFERENCE_DIDT
    planned_mso = 100.0 * planned_didt / coil_obj.max_didt if coil_obj.max_didt else None
    if dose is not None and dose > 100:
        log.warning("the required intensity %.0f %% MSO exceeds the stimulator's maximum", dose)
    # outputs
    progress.update(0.8, "writing outputs")
    scale, unit = (1.0, "ratio") if obj.focality else (1e6, "V/m per A/us")
    files = write_fine_score_map(out, fs, scale, unit)
    region = TargetRegion(tuple(float(x) for x in centre), roi_radius, "target")
    from navigator.fem.recovery import recovered_element_field

    # scoring uses the raw element field (reciprocity is exact for it); the reported field is
    # the recovered one, as in `navigator simulate tms`
    E_report = recovered_element_field(mesh, f_best.E)
    write_field_outputs(out / "fields", mesh, f_best.v * planned_didt, E_report * planned_didt, sigma,
                        grids=head.output_grids(bool(search.nifti)),
                        target=region, extra_tet_fields={"D": f_best.D * planned_didt},
                        summary_extra={"tms": {"coil": coil_obj.name, "didt_A_per_s": planned_didt,
                                               "pose": pose.tolist()}},
                        progress=progress.sub(0.8, 0.97, "fields"), nifti=bool(search.nifti))
    desc = f"navigator optimize tms ({objective}{', focality' if obj.focality else ''}, {mode})"
    plan = Plan(name="tms-optimized", subject=head.ws.subject_id, image=image_info(head.ws), targets=[plan_target(rt)],
                coil_poses=[CoilPose("optimized", pose, target="target", coil=coil_obj.name, didt=planned_didt,
                                     mso=planned_mso if planned_mso is None or planned_mso <= 100 else None,
                                     description=desc)],
                notes=f"objective {objective}; ROI {roi_radius} mm sphere in grey matter at the target; coil casing "
                      f"{distance:g} mm from the scalp at its closest point")
    if standard is not None:
        plan.coil_poses.append(CoilPose("standard-F3", standard["pose"], target="target", coil=coil_obj.name,
                                        description="scalp F3, handle 45 degrees"))
    save_plan(plan, out / "plan.json")
    i = best.centre_index
    rec_vec = best.vector
    numbers = {
        "field_at_target_v_per_m": best_direct * planned_didt,
        "field_per_A_per_us": best_direct * 1e6,
        "reciprocity_field_per_A_per_us": float(obj.target(rec_vec[:, None])[0]) * 1e6,
        "planned_didt_A_per_s": planned_didt,
        "planned_percent_mso": planned_mso,
        "dose_percent_mso": dose,
        "pose_centre_x_mm": float(pose[0, 3]), "pose_centre_y_mm": float(pose[1, 3]),
        "pose_centre_z_mm": float(pose[2, 3]),
        "handle_angle_deg": best.angle_deg,
        "tilt_x_deg": best.tilt_deg[0], "tilt_y_deg": best.tilt_deg[1],
        "casing_clearance_mm": clearance,
        "offset_from_target_entry_mm": float(np.linalg.norm(grid.offsets_mm[i] + np.asarray(best.offset_mm))),
        "standard_f3_field_per_A_per_us": None if standard is None else standard["score"] * 1e6,
        "gain_over_standard": None if standard is None or standard["score"] <= 0 else best_direct / standard["score"],
        "focality_ratio": best_direct_score if obj.focality else None,
        "n_placements": grid.n_placements,
        "n_not_placed": int(fs.info.get("n_not_placed", 0)),
        "placements_per_s": fs.info["placements_per_s"],
        "seconds": time.perf_counter() - t_all,
    }
    rel = (float(obj.score(rec_vec[:, None])[0]) - best_direct_score) / best_direct_score if best_direct_score else None
    summary = {
        "type": "tms-optimization", "target": rt.to_json(),
        "coil": {"name": coil_obj.name, "dipoles": coil_obj.n_dipoles, "max_didt_A_per_s": coil_obj.max_didt,
                 "casing": fs.info.get("casing")},
        "objective": objective, "focality": obj.focality, "objective_direction": direction, "mode": mode,
        "roi_radius_mm": roi_radius, "avoid": {"regions": search.avoid, "mask": search.avoid_mask,
                                               "tetrahedra": int(avoid.sum())} if avoid is not None else None,
        "n_placements": grid.n_placements, "n_not_placed": int(fs.info.get("n_not_placed", 0)),
        "distance_mm": distance,
        "best": {"pose": pose, "centre_index": i, "handle_angle_deg": best.angle_deg, "offset_mm": list(best.offset_mm),
                 "tilt_deg": list(best.tilt_deg), "lift_mm": best.lift_mm, "casing_clearance_mm": clearance,
                 "grid_best": {"centre_index": fs.best_grid[0], "angle_index": fs.best_grid[1],
                               "score": float(fs.scores[fs.best_grid]) * scale},
                 "score_reciprocity": float(obj.score(rec_vec[:, None])[0]) * scale,
                 "score_direct": best_direct_score * scale, "score_unit": unit,
                 "reciprocity_vs_direct_relative": rel,
                 "score_reciprocity_per_A_per_us": float(obj.target(rec_vec[:, None])[0]) * 1e6,
                 "score_direct_per_A_per_us": best_direct * 1e6,
                 "vector_direct": vec_direct, "vector_reciprocity": rec_vec},
        "refined": [{"pose": r.pose, "score": r.score * scale, "grid_score": r.start_score * scale,
                     "handle_angle_deg": r.angle_deg, "offset_mm": list(r.offset_mm), "tilt_deg": list(r.tilt_deg),
                     "lift_mm": r.lift_mm, "casing_clearance_mm": r.clearance_mm} for r in fs.refined],
        "standard_F3": None if standard is None else {"pose": standard["pose"], "score_per_A_per_us": standard["score"] * 1e6,
                                                      "casing_clearance_mm": standard["casing_clearance_mm"]},
        "dose": dose_info or None, "search": fs.info, "files": files + ["plan.json", "fields/"],
        "batch_numbers": numbers,
    }
    atomic_write_json(out / "summary.json", summary)
    progress.update(1.0, "done")
    return TmsOptimization(out_dir=out, plan=plan, numbers=numbers, summary=summary, pose=pose)
