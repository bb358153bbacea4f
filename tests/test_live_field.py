"""Live field engine (navigator.optimize.live_field) on a small three-shell sphere head: engine vs
full FEM at random valid poses, exactness of the adjoint coupling, cache reuse and invalidation,
cancel, validity region."""

from __future__ import annotations

import numpy as np
import pytest
from test_tms_pose import icosphere

from navigator.core.errors import Cancelled, NavigatorError
from navigator.core.progress import Progress

TARGET = "subject:0,30,72"
SETTINGS = dict(n_samples=24, max_rank=24, rank_tol=1e-4, a_spacing_mm=2.5, a_margin_mm=40.0)
CHEAP = dict(n_samples=3, max_rank=2, a_spacing_mm=4.0, a_margin_mm=20.0, a_depth_mm=60.0)


@pytest.fixture(scope="module")
def coil():
    from navigator.tms.parametric import WindingGeometry, figure_of_eight_coil

    return figure_of_eight_coil("live-fig8", WindingGeometry(inner_radius=5, outer_radius=15, turns=2, layers=1,
                                                             winding_height=2, bottom_offset=3),
                                wing_spacing=32, max_didt=1e8)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from navigator.core.workspace import Workspace
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.io.gmsh import write_msh
    from navigator.io.mesh_boundary import outer_surface
    from navigator.io.surfaces import write_surface

    mesh = concentric_sphere_mesh((80.0, 85.0, 90.0), (2, 4, 5), size=8.0)
    w = Workspace.create(tmp_path_factory.mktemp("live") / "sub")
    write_msh(mesh, w.path("mesh"))
    w.path("scalp").parent.mkdir(parents=True, exist_ok=True)
    write_surface(outer_surface(mesh), w.path("scalp"))
    write_surface(icosphere(77.0), w.path("middle_gm"))
    return w


@pytest.fixture(scope="module")
def engine(ws, coil):
    from navigator.optimize.live_field import LiveSettings, open_live_field
    from navigator.targets.head import Head

    return open_live_field(Head.of(ws), coil, TARGET, settings=LiveSettings(**SETTINGS), keep_sampling=True)


def _reference(ws, coil, pose, didt, engine):
    from navigator.targets.head import Head
    from navigator.tms.simulate import solve_tms

    head = Head.of(ws)
    fields = solve_tms(head.mesh, coil, pose, didt, system=head.system, field="element")
    return engine.observe(fields.E_element + fields.D, pose, didt)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_region_and_api(engine, ws):
    from navigator.targets.head import Head

    cortex = Head.of(ws).cortex
    pts = cortex.vertices[engine.region_vertices]
    assert np.allclose(pts, engine.region_points_mm)
    target = np.array(Head.of(ws).target(TARGET).cortical_point)
    d = np.linalg.norm(pts - target, axis=1)
    assert d.max() <= 40.0 + 1e-9 and len(pts) > 50
    # every vertex within 40 mm of the target is in the region
    assert (np.linalg.norm(cortex.vertices - target, axis=1) <= 40.0).sum() == len(pts)
    assert engine.rank <= SETTINGS["max_rank"]


def test_engine_matches_full_fem_at_random_poses(engine, ws, coil):
    rng = np.random.default_rng(7)
    poses = engine.validity.sample_poses(3, rng)
    didt = 6.0e7
    errs, terr = [], []
    for pose in poses:
        assert engine.contains(pose)
        live = engine.evaluate(pose, didt)
        ref = _reference(ws, coil, pose, didt, engine)
        assert live.magnitude.shape == ref.magnitude.shape == (len(engine.region_vertices),)
        errs.append(_rel(live.magnitude, ref.magnitude))
        terr.append(abs(live.target_magnitude - ref.target_magnitude) / ref.target_magnitude)
        # normal component: signed, compare in the L2 norm of |E|
        assert np.linalg.norm(live.normal - ref.normal) <= 0.06 * np.linalg.norm(ref.magnitude)
    print("relative L2 error of |E| over the region:", errs, "at the target:", terr)
    assert max(errs) < 0.05, errs
    assert max(terr) < 0.05, terr
    # the field is proportional to dI/dt
    half = engine.evaluate(poses[0], didt / 2)
    assert np.allclose(half.magnitude * 2, engine.evaluate(poses[0], didt).magnitude)


def test_adjoint_coupling_is_exact_on_the_basis(engine, ws, coil):
    """At a sampled pose the secondary field lies in the basis: the reciprocal coupling (lattice
    interpolation aside) reproduces the FEM's projection onto the basis."""
    from navigator.targets.head import Head
    from navigator.tms.primary import primary_field

    head = Head.of(ws)
    pose = engine.validity.sample_poses(1, np.random.default_rng(11))[0]
    system = head.system
    Dn = primary_field(coil, pose, head.mesh.nodes, 1.0)
    v = system.solve(system.rhs_impressed_nodal_field(Dn)).v
    y = np.asarray(engine.sampling() @ (-system.gradient(v))).ravel()
    U = engine.pre.U
    proj = (U @ (U.T @ y)).reshape(-1, 3)
    sec = engine.secondary(pose, 1.0)
    assert _rel(sec, proj) < 0.01


def test_cache_reuse_and_invalidation(ws, coil, engine):
    from navigator.optimize.live_field import LiveSettings, cache_path, open_live_field
    from navigator.targets.head import Head
    from navigator.tms.parametric import WindingGeometry, figure_of_eight_coil

    head = Head.of(ws)
    settings = LiveSettings(**SETTINGS)
    again = open_live_field(head, coil, TARGET, settings=settings)
    assert again.info["loaded_from_cache"] is True
    assert np.array_equal(again.pre.U, engine.pre.U)
    pose = engine.validity.sample_poses(1, np.random.default_rng(3))[0]
    assert np.allclose(again.evaluate(pose, 1e7).magnitude, engine.evaluate(pose, 1e7).magnitude)
    path = cache_path(head, coil, head.target(TARGET))
    assert path.exists() and path.with_suffix(".json").exists()

    # conductivity change -> rebuilt
    cheap = LiveSettings(**CHEAP)
    a = open_live_field(head, coil, TARGET, settings=cheap)
    assert a.info["loaded_from_cache"] is False
    assert open_live_field(head, coil, TARGET, settings=cheap).info["loaded_from_cache"] is True
    b = open_live_field(head, coil, TARGET, settings=cheap, conductivity={4: 0.02})
    assert b.info["loaded_from_cache"] is False
    # coil change (same name, other windings) -> rebuilt
    other = figure_of_eight_coil("live-fig8", WindingGeometry(inner_radius=6, outer_radius=16, turns=2, layers=1,
                                                              winding_height=2, bottom_offset=3),
                                 wing_spacing=34, max_didt=1e8)
    c = open_live_field(head, other, TARGET, settings=cheap, conductivity={4: 0.02})
    assert c.info["loaded_from_cache"] is False
    assert open_live_field(head, other, TARGET, settings=cheap, conductivity={4: 0.02}).info["loaded_from_cache"]
    # rebuild on request
    assert open_live_field(head, other, TARGET, settings=cheap, conductivity={4: 0.02},
                           rebuild=True).info["loaded_from_cache"] is False


def test_cancel_leaves_no_cache(ws, coil):
    from navigator.optimize.live_field import LiveSettings, cache_path, open_live_field
    from navigator.targets.head import Head

    head = Head.of(ws)
    messages = []
    prog = Progress()

    def cb(frac, msg):
        messages.append((frac, msg))
        if "sampled FEM solve 2" in msg:
            prog.token.cancel()

    prog.callback = cb
    before = sorted(p.name for p in cache_path(head, coil, head.target(TARGET)).parent.glob("*"))
    with pytest.raises(Cancelled):
        open_live_field(head, coil, TARGET, settings=LiveSettings(**{**SETTINGS, "seed": 99}), progress=prog)
    after = sorted(p.name for p in cache_path(head, coil, head.target(TARGET)).parent.glob("*"))
    assert before == after
    fr = [f for f, _ in messages]
    assert fr == sorted(fr) and len(messages) >= 3


def test_validity_region(engine):
    v = engine.validity
    pose = v.sample_poses(1, np.random.default_rng(5))[0]
    assert engine.contains(pose)
    far = pose.copy()
    far[:3, 3] += 40.0 * v.scalp_normal  # 40 mm off the scalp
    assert not engine.contains(far)
    assert "distance" in v.why_outside(far)
    away = pose.copy()
    away[:3, 3] += 300.0 * v.scalp_normal  # the cortex leaves the coil's field lattice
    with pytest.raises(NavigatorError, match="outside"):
        engine.evaluate(away, 1e7)
    tilted = pose.copy()
    from navigator.optimize.live_field import _rotation

    tilted[:3, :3] = _rotation(pose[:3, 0], np.radians(30)) @ pose[:3, :3]
    assert "tilted" in v.why_outside(tilted)
    assert not engine.contains(np.full((4, 4), np.nan))


def test_cache_key_follows_every_input(ws, coil):
    """The key changes with the mesh (one node moved, one tag changed), the conductivities, the
    coil's sources, the target point and the settings, and with nothing else."""
    from navigator.core.mesh import Mesh
    from navigator.optimize.live_field import LiveSettings, cache_key, mesh_hash
    from navigator.targets.head import Head

    head = Head.of(ws)
    mesh, sigma = head.mesh, head.sigma
    t = np.array([0.0, 30.0, 75.0])
    s = LiveSettings()
    base = cache_key(mesh_hash(mesh), sigma, coil, t, s)
    assert cache_key(mesh_hash(mesh), sigma.copy(), coil, t.copy(), LiveSettings()) == base
    moved = mesh.nodes.copy()
    moved[0, 0] += 1e-3
    tags = mesh.tet_tags.copy()
    tags[0] = 5 if tags[0] != 5 else 4
    keys = {
        cache_key(mesh_hash(Mesh(moved, mesh.tetrahedra, mesh.tet_tags)), sigma, coil, t, s),
        cache_key(mesh_hash(Mesh(mesh.nodes, mesh.tetrahedra, tags)), sigma, coil, t, s),
        cache_key(mesh_hash(mesh), sigma * 1.01, coil, t, s),
        cache_key(mesh_hash(mesh), sigma, coil, t + [0, 0, 1], s),
        cache_key(mesh_hash(mesh), sigma, coil, t, LiveSettings(n_samples=41)),
    }
    other = type(coil)(coil.name, coil.dipole_positions, coil.dipole_moments * 1.001)
    keys.add(cache_key(mesh_hash(mesh), sigma, other, t, s))
    assert base not in keys and len(keys) == 6
