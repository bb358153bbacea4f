"""FEM core: assembly, solver, impressed-field right-hand side, analytic solution, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.fem.analytic import point_electrodes_potential_field
from navigator.fem.assembly import p1_gradients, stiffness_matrix
from navigator.fem.conductivity import conductivity_per_tet, parse_conductivity_overrides
from navigator.fem.sampling import bbox_grid, locate_points, rasterize_tets
from navigator.fem.spheres import structured_ball_mesh
from navigator.fem.system import FemSystem


def _cube_mesh(n: int = 6, size: float = 30.0) -> Mesh:
    """Kuhn-split cube [0, size]^3 mm, two tissues split at x = size/2."""
    ax = np.linspace(0, size, n + 1)
    X, Y, Z = np.meshgrid(ax, ax, ax, indexing="ij")
    nodes = np.stack([X.ravel(), Y.ravel(), Z.ravel()], 1)
    idx = np.arange((n + 1) ** 3).reshape(n + 1, n + 1, n + 1)
    c = idx[:-1, :-1, :-1].ravel()
    sx, sy = (n + 1) ** 2, n + 1
    v = {(i, j, k): c + i * sx + j * sy + k for i in (0, 1) for j in (0, 1) for k in (0, 1)}
    paths = [((1, 0, 0), (1, 1, 0)), ((1, 0, 0), (1, 0, 1)), ((0, 1, 0), (1, 1, 0)),
             ((0, 1, 0), (0, 1, 1)), ((0, 0, 1), (1, 0, 1)), ((0, 0, 1), (0, 1, 1))]
    tets = np.concatenate([np.stack([v[(0, 0, 0)], v[a], v[b], v[(1, 1, 1)]], 1) for a, b in paths])
    tags = np.where(nodes[tets].mean(1)[:, 0] < size / 2, 2, 1)
    return Mesh(nodes=nodes, tetrahedra=tets, tet_tags=tags)


def test_conductivity_defaults_overrides_and_unknown_tag():
    m = _cube_mesh(2)
    s = conductivity_per_tet(m)
    assert set(np.unique(s)) == {0.126, 0.275}
    s2 = conductivity_per_tet(m, {2: 0.5})
    assert np.allclose(s2[m.tet_tags == 2], 0.5) and np.allclose(s2[m.tet_tags == 1], 0.126)
    m.tet_tags[:3] = 42
    with pytest.raises(NavigatorError, match="42"):
        conductivity_per_tet(m)
    assert parse_conductivity_overrides(["4=0.008"]) == {4: 0.008}
    with pytest.raises(NavigatorError, match="TAG=S_PER_M"):
        parse_conductivity_overrides(["bone=1"])


def test_stiffness_matches_scikit_fem_and_annihilates_constants():
    skfem = pytest.importorskip("skfem")
    from skfem.helpers import dot, grad

    m = _cube_mesh(4)
    sigma = conductivity_per_tet(m)
    g, vol = p1_gradients(m.nodes, m.tetrahedra)
    assert np.isclose(vol.sum(), (0.03) ** 3)
    K = stiffness_matrix(m.tetrahedra, g, vol, sigma, m.n_nodes)
    mesh = skfem.MeshTet(m.nodes.T * 1e-3, m.tetrahedra.T)
    basis = skfem.Basis(mesh, skfem.ElementTetP1())

    @skfem.BilinearForm
    def lap(u, v, w):
        return w["s"] * dot(grad(u), grad(v))

    Ks = lap.assemble(basis, s=np.repeat(sigma[:, None], basis.X.shape[-1], axis=1))
    assert abs(K - Ks).max() < 1e-12 * abs(Ks).max()
    assert np.abs(K @ np.ones(m.n_nodes)).max() < 1e-12 * abs(K).max()


def test_linear_potential_is_exact_in_homogeneous_block():
    m = _cube_mesh(5)
    m.tet_tags[:] = 2
    fem = FemSystem(m, conductivity_per_tet(m))
    v_lin = 0.01 * m.nodes[:, 0] / 30.0  # 10 mV over 30 mm along x
    r = fem.K @ v_lin
    x = m.nodes[:, 0]
    interior = (x > 1) & (x < 29)
    assert np.abs(r[interior]).max() < 1e-12
    # current through the x = 0 face: sigma * E * area = 0.275 * (0.01/0.03) * 0.03^2
    assert np.isclose(-r[x < 1].sum(), 0.275 * 0.01 / 0.03 * 0.03**2, rtol=1e-10)
    # Neumann solve with that boundary flux reproduces the linear potential up to a constant
    sol = fem.solve(r)
    assert sol.residual < 1e-7
    assert np.allclose(sol.v - sol.v.mean(), v_lin - v_lin.mean(), atol=1e-8)
    E = -fem.gradient(sol.v)
    assert np.allclose(E, [-0.01 / 0.03, 0, 0], atol=1e-6)


def test_impressed_field_sign_uniform_D_gives_zero_total_field():
    """Uniform D in an insulated homogeneous conductor: charges cancel it, E = -grad v - D = 0."""
    m = structured_ball_mesh(8.0, radii=(60.0,), tags=(2,))
    fem = FemSystem(m, conductivity_per_tet(m))
    D = np.tile([1.0, 0.5, -0.25], (m.n_tets, 1))
    b = fem.rhs_impressed_field(D)
    assert abs(b.sum()) < 1e-12 * np.abs(b).max()
    sol = fem.solve(b)
    E = -fem.gradient(sol.v) - D
    assert np.abs(E).max() < 1e-5
    # reuse of the preconditioner for more right-hand sides
    many = fem.solve_many(np.stack([b, 2 * b], 1))
    assert np.allclose(many[1].v, 2 * many[0].v, atol=1e-9)


def test_impressed_nodal_field_equals_element_means():
    """rhs_impressed_nodal_field(d) is rhs_impressed_field of the element means of d (two tissues,
    a mesh whose node order differs from the solver's internal order)."""
    from navigator.fem.kernels import element_mean

    m = structured_ball_mesh(9.0, radii=(40.0, 50.0), tags=(3, 5))
    perm = np.random.default_rng(2).permutation(m.n_nodes)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(m.n_nodes)
    m = Mesh(m.nodes[perm], inv[m.tetrahedra], m.tet_tags)
    fem = FemSystem(m, conductivity_per_tet(m))
    d = np.random.default_rng(3).normal(size=(m.n_nodes, 3))
    expect = fem.rhs_impressed_field(element_mean(np.ascontiguousarray(m.tetrahedra, np.int64), d))
    got = fem.rhs_impressed_nodal_field(d)
    assert np.allclose(got, expect, rtol=0, atol=1e-13 * np.abs(expect).max())
    with pytest.raises(ValueError, match="rows"):
        fem.rhs_impressed_nodal_field(d[:-1])


def test_direct_solver_agrees_with_amg():
    m = structured_ball_mesh(10.0, radii=(40.0, 50.0), tags=(3, 5))
    s = conductivity_per_tet(m)
    a, d = FemSystem(m, s), FemSystem(m, s, solver="direct")
    b = a.rhs_impressed_field(np.random.default_rng(1).normal(size=(m.n_tets, 3)))
    va, vd = a.solve(b, rtol=1e-12).v, d.solve(b).v
    assert d.solver.backend in ("pardiso", "superlu")
    assert np.allclose(va, vd, atol=1e-9 * np.abs(vd).max())


def test_analytic_matches_closed_form_homogeneous_sphere():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(200, 3))
    p *= (rng.uniform(0, 80, (200, 1)) / np.linalg.norm(p, axis=1, keepdims=True))
    a, c = np.array([0, 0, 95.0]), np.array([95.0, 0, 0])
    v1, E1 = point_electrodes_potential_field(p, a, c, 1e-3, (95.0,), (0.33,), n_max=1200)
    v3, E3 = point_electrodes_potential_field(p, a, c, 1e-3, (85.0, 90.0, 95.0), (0.33,) * 3, n_max=1200)
    assert np.allclose(v1, v3, atol=1e-12) and np.allclose(E1, E3, atol=1e-9)
    R, s, I = 0.095, 0.33, 1e-3

    def closed(e):  # Rush & Driscoll homogeneous sphere, point source on the surface
        pm, em = p * 1e-3, e * 1e-3
        d = np.linalg.norm(pm - em, axis=1)
        return I / (4 * np.pi * s) * (2 / d + np.log(2 * R / (d + R - pm @ (em / R))) / R)

    ref = closed(a) - closed(c)
    assert np.allclose(v1 - v1.mean(), ref - ref.mean(), atol=1e-9)
    # field = -grad of the potential (finite differences) in a layered sphere
    sig = (1.654, 0.01, 0.465)
    _, E = point_electrodes_potential_field(p[:20], a, c, 1e-3, (85, 90, 95), sig, n_max=1200)
    h = 1e-3
    g = np.stack([(point_electrodes_potential_field(p[:20] + h * e, a, c, 1e-3, (85, 90, 95), sig, n_max=1200)[0]
                   - point_electrodes_potential_field(p[:20] - h * e, a, c, 1e-3, (85, 90, 95), sig, n_max=1200)[0])
                  / (2 * h * 1e-3) for e in np.eye(3)], 1)
    assert np.allclose(-g, E, rtol=1e-5, atol=1e-6 * np.abs(E).max())


def test_point_location_and_rasterization():
    m = _cube_mesh(4)
    pts = np.array([[1.0, 2.0, 3.0], [15.5, 15.5, 15.5], [29.0, 1.0, 28.0]])
    tet, bary = locate_points(m, pts)
    rec = (m.nodes[m.tetrahedra[tet]] * bary[:, :, None]).sum(1)
    assert np.allclose(rec, pts)
    affine, shape = bbox_grid(m, 2.0, margin_mm=0.0)
    flat, t, b = rasterize_tets(m, affine, shape)
    assert len(flat) == np.prod(shape)  # every voxel centre of the cube lies in some tet
    ijk = np.stack(np.unravel_index(flat, shape), 1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    rec = (m.nodes[m.tetrahedra[t]] * b[:, :, None]).sum(1)
    assert np.allclose(rec, world, atol=1e-4)
