"""Fine collision-free TMS placement search (issue 18) on small heads: reciprocity vs direct FEM,
casing collision (double cone on a sphere, a coil behind an ear), casing outlines, focality."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.optimize import reciprocity as rc
from navigator.optimize.collision import CasingModel, exact_clearance, place_lifts, search_field
from navigator.optimize.fine_search import Objective, fine_search
from navigator.optimize.grid import in_plane_offsets, placement_grid
from navigator.optimize.tms import TmsSearch, direct_functionals

TARGET = np.array([0.0, 30.0, 72.0])  # grey matter (80 mm shell) under the scalp (90 mm)


@pytest.fixture(scope="module")
def head():
    from navigator.fem.conductivity import conductivity_per_tet
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.fem.system import FemSystem
    from navigator.io.mesh_boundary import outer_surface
    from navigator.targets.roi import SphereRoi

    mesh = concentric_sphere_mesh((80.0, 85.0, 90.0), (2, 4, 5), size=10.0)
    system = FemSystem(mesh, conductivity_per_tet(mesh))
    roi = SphereRoi(TARGET, 10.0).tet_mask(mesh)
    return system, roi, outer_surface(mesh)


@pytest.fixture(scope="module")
def small_coil():
    from navigator.tms.parametric import WindingGeometry, figure_of_eight_coil

    return figure_of_eight_coil("test-fig8", WindingGeometry(inner_radius=5, outer_radius=15, turns=2, layers=1,
                                                             winding_height=2, bottom_offset=3),
                                wing_spacing=32, max_didt=1e8)


def entry_point():
    return TARGET / np.linalg.norm(TARGET) * 90.0


def test_default_search_scores_a_million_placements():
    s = TmsSearch()
    n = len(in_plane_offsets(s.radius_mm, s.spacing_mm)) * round(360 / s.angle_step_deg)
    assert s.spacing_mm <= 1.0 and s.angle_step_deg <= 1.0 and s.radius_mm == 20.0 and n >= 1_000_000
    assert s.refine and 0 < s.tilt_deg <= 10


def test_fine_search_agrees_with_direct_fem(head, small_coil):
    """Grid scores (auxiliary dipoles, lifted) and the refined optimum (sum over the dipoles)
    against one FEM solve per pose: within 1 %; the refinement never loses to the grid."""
    system, roi, scalp = head
    src = rc.reciprocal_sources(system, roi, np.eye(3))
    g = placement_grid(scalp, entry_point(), radius_mm=6, spacing_mm=2, angle_step_deg=15)
    fs = fine_search(src, small_coil, g, scalp, Objective("magnitude", 3), distance_mm=4.0, tilt_deg=4.0, n_refine=3)
    assert fs.info["n_placements"] == g.n_placements and fs.info["n_not_placed"] == 0 and fs.placed.all()
    rng = np.random.default_rng(3)
    picks = [(int(rng.integers(g.n_centres)), int(rng.integers(g.n_angles))) for _ in range(3)]
    poses = [fs.grid_pose(c, a) for c, a in picks] + [fs.best.pose]
    direct = np.linalg.norm(direct_functionals(system, small_coil, poses, roi, np.eye(3)), axis=0)
    rec = np.array([fs.scores[p] for p in picks] + [fs.best.score])
    assert np.abs(rec - direct).max() < 0.01 * direct.max(), (rec, direct)
    # grid lifts under 0.1 mm count as 0 (casing up to 0.1 mm closer than asked), the refined
    # pose sits at the distance: it may score a little below the grid's best, never much
    assert fs.best.score >= 0.99 * np.nanmax(fs.scores)
    assert abs(fs.best.tilt_deg[0]) <= 4.0 + 1e-9 and abs(fs.best.tilt_deg[1]) <= 4.0 + 1e-9
    assert fs.best.clearance_mm == pytest.approx(4.0, abs=0.15)
    # the grid's field evaluation covered every node the refinement reached (no second one)
    assert fs.info["fmm_calls"] + fs.info["refine"]["extra_fmm_calls"] <= 1
    assert fs.info["refine"]["folded_into_grid_fmm"] and fs.info["refine"]["extra_lattice_nodes"] == 0


def test_double_cone_is_lifted_off_the_sphere(head):
    """The double cone's wings reach into a sphere when the coil sits 4 mm along the normal; the
    search lifts it until its casing is 4 mm outside at the closest point."""
    from navigator.tms.library import library_coil
    from navigator.tms.pose import casing_clearance, place_coil

    system, roi, scalp = head
    dcc = library_coil("Magstim_DCC_110mm")
    normal_only = place_coil(scalp, entry_point(), handle_angle=45.0, distance=4.0)
    assert casing_clearance(dcc, normal_only.pose, scalp).collides
    src = rc.reciprocal_sources(system, roi, np.eye(3))
    g = placement_grid(scalp, entry_point(), radius_mm=0, angle_step_deg=45)
    # a coarse field lattice: this test is about the lift, not the score's accuracy
    fs = fine_search(src, dcc, g, scalp, Objective("magnitude", 3), distance_mm=4.0, refine=False, max_lift_mm=40.0,
                     world_grid_mm=4.0)
    assert fs.placed.all() and (fs.lifts > 20.0).all()  # the wings reach 21 mm into the 90 mm sphere
    cas = CasingModel.of(dcc)
    clear = exact_clearance(scalp, cas.fine @ fs.best.pose[:3, :3].T + fs.best.pose[:3, 3])
    assert clear == pytest.approx(4.0, abs=0.15)
    assert not casing_clearance(dcc, fs.best.pose, scalp).collides


def eared_scalp():
    """A 90 mm sphere with a 22 mm high 'ear' on the left (-x) side."""
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.io.mesh_boundary import outer_surface

    s = outer_surface(concentric_sphere_mesh((90.0,), (5,), size=4.0))
    u = s.vertices / np.linalg.norm(s.vertices, axis=1, keepdims=True)
    ear = np.array([-1.0, 0.0, -0.15])
    ear /= np.linalg.norm(ear)
    ang = np.arccos(np.clip(u @ ear, -1, 1))
    s.vertices = u * (90.0 + 22.0 * np.exp(-0.5 * (ang / 0.16) ** 2))[:, None]
    return s


def test_coil_behind_the_ear_stays_outside():
    """Behind the ear the along-normal placement pushes the casing into the ear; the
    collision-free placement keeps every casing point outside, 4 mm at the closest."""
    from navigator.tms.library import library_coil
    from navigator.tms.pose import casing_clearance, place_coil

    scalp = eared_scalp()
    d70 = library_coil("Magstim_D70")
    behind = np.array([-np.cos(np.radians(30)), -np.sin(np.radians(30)), 0.1]) * 100  # 30 deg behind the ear
    pl = place_coil(scalp, behind, handle_angle=45.0, distance=4.0)
    assert casing_clearance(d70, pl.pose, scalp).min_distance_mm < 0  # normal-only: the casing is in the ear
    cas = CasingModel.of(d70)
    sdf = search_field(scalp, pl.scalp_point, pl.normal, cas, radius_mm=0.0, max_lift_mm=30.0)
    lift, _m, placed = place_lifts(sdf, cas, pl.pose[None, :3, :3], pl.pose[None, :3, 3], 4.0, max_lift_mm=30.0)
    assert placed[0] and lift[0] > 2.0
    pose = pl.pose.copy()
    pose[:3, 3] -= lift[0] * pose[:3, 2]
    clear = exact_clearance(scalp, cas.fine @ pose[:3, :3].T + pose[:3, 3])
    assert clear == pytest.approx(4.0, abs=0.25)
    assert not casing_clearance(d70, pose, scalp).collides
    # a lift limit below what the ear needs: the placement is reported as not placed
    _l, _m, placed = place_lifts(sdf, cas, pl.pose[None, :3, :3], pl.pose[None, :3, 3], 4.0, max_lift_mm=1.0)
    assert not placed[0]


def test_search_behind_the_ear_never_chooses_a_collision(head, small_coil):
    """The whole search (FEM on the sphere, the eared scalp for the casing): every chosen pose is
    clear, and candidates over the ear that cannot be placed within the lift limit are counted."""
    from navigator.tms.library import library_coil

    system, roi, _scalp = head
    scalp = eared_scalp()
    d70 = library_coil("Magstim_D70")
    src = rc.reciprocal_sources(system, roi, np.eye(3))
    behind = np.array([-np.cos(np.radians(30)), -np.sin(np.radians(30)), 0.1]) * 100
    g = placement_grid(scalp, behind, radius_mm=6, spacing_mm=3, angle_step_deg=30)
    # a coarse field lattice: this test is about collisions, not the scores' accuracy
    fs = fine_search(src, d70, g, scalp, Objective("magnitude", 3), distance_mm=4.0, max_lift_mm=6.0, tilt_deg=3.0,
                     n_refine=2, world_grid_mm=4.0)
    assert fs.info["n_not_placed"] == int((~fs.placed).sum()) > 0  # handle towards the ear: too far to lift
    assert np.isnan(fs.scores[~fs.placed]).all()
    cas = CasingModel.of(d70)
    for r in fs.refined:
        assert exact_clearance(scalp, cas.fine @ r.pose[:3, :3].T + r.pose[:3, 3]) >= 4.0 - 0.15


def test_outline_casing_for_a_coil_file_without_one(tmp_path):
    from navigator.tms.casing import coil_casing
    from navigator.tms.ccd import read_ccd, write_ccd
    from navigator.tms.library import library_coil

    write_ccd(library_coil("Magstim_D70"), tmp_path / "d70.ccd")
    coil = read_ccd(tmp_path / "d70.ccd")
    assert not coil.casing
    (surf,), source = coil_casing(coil)
    assert source == "outline"
    tri = surf.vertices[surf.faces]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert volume > 0  # closed, outward normals
    lo, hi = surf.vertices.min(axis=0), surf.vertices.max(axis=0)
    src = coil.dipole_positions
    assert (lo[:2] <= src[:, :2].min(axis=0) - 4.9).all() and (hi[:2] >= src[:, :2].max(axis=0) + 4.9).all()
    assert hi[2] >= 0.0 and lo[2] < src[:, 2].min()  # bottom face at the coil origin, top above the windings
    assert CasingModel.of(coil).source == "outline"


def test_focality_objective_matches_direct(head, small_coil):
    """Target / |mean E in an avoid region|: a second set of reciprocal sources."""
    from navigator.targets.roi import SphereRoi

    system, roi, scalp = head
    avoid = SphereRoi(np.array([0.0, -30.0, 72.0]), 10.0).tet_mask(system.mesh) & ~roi
    t = rc.reciprocal_sources(system, roi, np.eye(3))
    a = rc.reciprocal_sources(system, avoid, np.eye(3))
    src = rc.ReciprocalSources(t.centroids_m, np.concatenate([t.moments, a.moments]),
                               np.concatenate([t.directions, a.directions]), t.roi_volume_m3)
    g = placement_grid(scalp, entry_point(), radius_mm=4, spacing_mm=4, angle_step_deg=30)
    obj = Objective("magnitude", 3, focality=True)
    fs = fine_search(src, small_coil, g, scalp, obj, distance_mm=4.0, tilt_deg=2.0, n_refine=2)
    pose = fs.best.pose
    dt = direct_functionals(system, small_coil, [pose], roi, np.eye(3))[:, 0]
    da = direct_functionals(system, small_coil, [pose], avoid, np.eye(3))[:, 0]
    assert fs.best.score == pytest.approx(np.linalg.norm(dt) / np.linalg.norm(da), rel=0.01)
    # the ratio is what is maximized: the best placement beats the best-target placement's ratio
    target_only = obj.target(fs.vectors)
    c, a_ = np.unravel_index(np.nanargmax(target_only), target_only.shape)
    assert fs.best.score >= fs.scores[c, a_] * 0.999


def test_coarse_exhaustive_direct_search_lands_in_the_fine_top_permille(head, small_coil):
    """Issue 18's criterion at small scale. A fine search (5,832 placements: 1 mm x 5 degrees over
    a 5 mm disc) predicts from its own scores the cheapest coarse exhaustive design over the whole
    disc whose best lies in its top 0.1 % (every coarse placement within 0.2 % of that best
    included); one FEM solve per coarse placement then finds the direct best, which must rank in
    the fine top 0.1 %. The check fails for a fine search 10 degrees off in handle angle, so it
    tests the fine scores and not the design (the design alone passes at few lattice phases)."""
    from navigator.optimize.fine_search import fine_ranks, coarse_subgrid, predict_coarse_grid

    system, roi, scalp = head
    d = np.array([[1.0, 0.0, 0.0]])  # ROI-mean E along x: one optimum (|mean E| on a sphere has a ring)
    src = rc.reciprocal_sources(system, roi, d)
    entry = TARGET + np.array([4.0, 2.0, 0.0])  # the optimum off the disc's centre
    g = placement_grid(scalp, entry / np.linalg.norm(entry) * 90.0, radius_mm=5, spacing_mm=1, angle_step_deg=5)
    obj = Objective("normal", 1)
    fs = fine_search(src, small_coil, g, scalp, obj, distance_mm=4.0, refine=False)
    assert fs.placed.all() and g.n_placements == 5832
    design, asym = predict_coarse_grid(fs.scores, g, top_fraction=1e-3, tol_rel=0.002)
    assert asym is not None and asym > 1.0  # the signed normal component flips under a half turn
    assert not design.half_turn and design.rank_at_phase0 <= 5
    ci, ai = coarse_subgrid(g, design.centre_step, design.angle_step)
    cand = [(int(c), int(a)) for c in ci for a in ai]
    assert 10 <= len(cand) <= 60  # a coarse search (one FEM solve each), far below the 5,832
    direct = obj.score(direct_functionals(system, small_coil, [fs.grid_pose(c, a) for c, a in cand], roi, d))
    best = cand[int(np.argmax(direct))]
    ranks, n = fine_ranks(fs.scores)
    assert n == g.n_placements and ranks[best] <= 1e-3 * n, (ranks[best], n)
    # a fine search whose handle angles were 10 degrees off ranks the same direct best outside it
    for shift in (-2, 2):
        wrong, _ = fine_ranks(np.roll(fs.scores, shift, axis=1))
        assert wrong[best] > 1e-3 * n
