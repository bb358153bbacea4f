"""Tests for navigator.meshing: label image -> tetrahedral mesh, quality checks, surfaces, step, CLI."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.core.mesh import Mesh
from navigator.core.volume import Volume
from navigator.meshing._cgal import have_pygalmesh
from navigator.meshing.mesher import orient_positive, remove_small_components, resample_labels, tag_surfaces
from navigator.meshing.quality import check_mesh, hanging_nodes, mesh_quality, volume_errors
from navigator.meshing.surfaces import extract_surfaces, marching_tetrahedra
from navigator.meshing.topology import boundary_faces, connected_face_components, enclosed_volume, face_table

cgal = pytest.mark.skipif(not have_pygalmesh(), reason="pygalmesh (CGAL) is needed for meshing")

# Coarse settings so each mesh takes a few seconds (2 mm voxels, ~3 mm elements).
FAST = {"cell_size_mm": 3.0, "tissue_cell_sizes": {1: 3.0, 2: 3.0, 3: 3.0, 4: 3.0, 5: 3.0},
        "facet_size_mm": 2.0, "facet_distance_mm": 0.4, "upsample_mm": 1.0, "smooth_sigma_mm": 1.0,
        "exude_time_limit_s": 5.0}
#: What the CLI options in test_mesh_workspace_step_and_cli amount to.
CLI_PARAMS = {"cell_size_mm": 3.0, "tissue_cell_sizes": {1: 3.0, 2: 3.0, 3: 3.0, 5: 3.0},
              "facet_size_mm": 2.0, "facet_distance_mm": 0.4, "upsample_mm": 1.0, "smooth_sigma_mm": 1.0,
              "exude": False}


def shells_volume(radii=(20.0, 25.0, 30.0), tags=(3, 4, 5), h=2.0, affine=None, centre=(0.0, 0.0, 0.0)):
    """Concentric spheres: tags[0] inside radii[0], tags[i] between radii[i-1] and radii[i]."""
    n = int(np.ceil(max(radii) / h)) + 4
    idx = np.arange(-n, n + 1)
    ii, jj, kk = np.meshgrid(idx, idx, idx, indexing="ij")
    if affine is None:
        affine = np.diag([h, h, h, 1.0])
        affine[:3, 3] = np.asarray(centre) - h * n
    ijk = np.stack([ii + n, jj + n, kk + n], -1).reshape(-1, 3).astype(float)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3] - np.asarray(centre)
    r = np.linalg.norm(xyz, axis=1).reshape(ii.shape)
    lab = np.zeros(ii.shape, np.int16)
    for rad, t in sorted(zip(radii, tags), reverse=True):
        lab[r <= rad] = t
    return Volume(lab, affine, source="shells")


@pytest.fixture(scope="module")
def shells():
    from navigator.meshing.mesher import labels_to_mesh

    vol = shells_volume()
    return vol, labels_to_mesh(vol, **FAST)


def surface_radii(mesh: Mesh, tag: int, centre=(0.0, 0.0, 0.0)) -> np.ndarray:
    tri = mesh.triangles[mesh.triangle_tags == tag]
    return np.linalg.norm(mesh.nodes[np.unique(tri)] - np.asarray(centre), axis=1)


@cgal
def test_shells_mesh_is_valid(shells):
    vol, mesh = shells
    assert mesh.tissue_tags() == [3, 4, 5]
    assert np.all(mesh.tet_volumes() > 0)
    q = mesh_quality(mesh)
    assert q.n_inverted == 0 and q.n_degenerate == 0
    assert q.min_dihedral_deg >= 5.0
    assert check_mesh(mesh, vol) == []
    for tag, (lv, mv, err) in volume_errors(mesh, vol).items():
        assert abs(err) < 0.05, (tag, lv, mv)


@cgal
def test_meshing_is_reproducible(shells):
    """The same labels and parameters give the same mesh, bit for bit, on every run, whatever
    the machine's load (CGAL's sliver perturbation is limited by the refinement's wall-clock
    time, so it stays off by default; with it on, node positions changed from run to run)."""
    from navigator.meshing.mesher import labels_to_mesh

    vol, first = shells
    again = labels_to_mesh(vol, **FAST)
    assert np.array_equal(again.nodes, first.nodes)
    assert np.array_equal(again.tetrahedra, first.tetrahedra)
    assert np.array_equal(again.tet_tags, first.tet_tags)
    assert np.array_equal(again.triangles, first.triangles)


@cgal
def test_shells_are_conforming(shells):
    _, mesh = shells
    ft = face_table(mesh.tetrahedra)
    assert ft.count.max() == 2
    # Interfaces between tissues are shared faces: no boundary face lies inside the head.
    bnd, _ = boundary_faces(mesh.tetrahedra)
    r = np.linalg.norm(mesh.nodes[bnd].mean(axis=1), axis=1)
    assert r.min() > 29.0
    assert len(hanging_nodes(mesh)) == 0


@cgal
def test_shell_radii(shells):
    _, mesh = shells
    assert sorted(np.unique(mesh.triangle_tags)) == [1003, 1004, 1005]
    for tag, radius in ((1003, 20.0), (1004, 25.0), (1005, 30.0)):
        r = surface_radii(mesh, tag)
        # 2 mm voxels: the labelled sphere itself deviates by up to ~1 mm from the true one.
        assert abs(np.mean(r) - radius) < 0.5, (tag, np.mean(r))
        assert np.max(np.abs(r - radius)) < 1.5, (tag, np.abs(r - radius).max())


@cgal
def test_surface_triangles_point_outwards(shells):
    _, mesh = shells
    p = mesh.nodes[mesh.triangles]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert np.all(np.einsum("ij,ij->i", n, p.mean(axis=1)) > 0)


@cgal
def test_flipped_oblique_affine_gives_positive_world_mesh():
    """A left-handed, rotated, anisotropic voxel grid: nodes land in world mm, volumes positive."""
    from navigator.meshing.mesher import labels_to_mesh

    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    lin = rot @ np.diag([-2.0, 2.0, 2.5])  # x flipped: det < 0
    aff = np.eye(4)
    aff[:3, :3] = lin
    centre = np.array([10.0, -20.0, 30.0])
    n = 14
    aff[:3, 3] = centre - lin @ np.array([n, n, n * 2.0 / 2.5])
    vol = shells_volume(radii=(14.0, 20.0), tags=(2, 5), affine=aff, centre=centre)
    stages: dict = {}
    mesh = labels_to_mesh(vol, timings=stages, **FAST)
    assert {"label_field", "cgal", "cgal_mesh", "cleanup", "projection", "slivers"} <= set(stages)
    assert all(w >= 0 and c >= 0 for w, c in stages.values())
    assert np.all(mesh.tet_volumes() > 0)
    for tag, radius in ((1002, 14.0), (1005, 20.0)):
        r = surface_radii(mesh, tag, centre)
        assert abs(np.mean(r) - radius) < 0.6, (tag, np.mean(r))
    assert check_mesh(mesh, vol) == []


@cgal
def test_touching_tissues_conform():
    """GM touches bone where CSF vanishes, and two tissues touch a third along a junction."""
    from navigator.meshing.mesher import labels_to_mesh

    vol = shells_volume(radii=(14.0, 18.0, 24.0), tags=(2, 3, 4))
    lab = vol.data.copy()
    n = lab.shape[0] // 2
    half = (lab == 3)
    half[: n + 1] = False
    lab[half] = 2  # for x > 0 grey matter reaches the bone directly
    lab[(lab == 2) & (np.arange(lab.shape[1])[None, :, None] > n + 2)] = 1  # WM touches GM, CSF, bone
    vol = vol.with_data(lab)
    mesh = labels_to_mesh(vol, **FAST)
    assert mesh.tissue_tags() == [1, 2, 3, 4]
    assert check_mesh(mesh, vol) == []
    ft = face_table(mesh.tetrahedra)
    tags = mesh.tet_tags
    inner = ft.tet[:, 1] >= 0
    pairs = {tuple(sorted(p)) for p in zip(tags[ft.tet[inner, 0]], tags[ft.tet[inner, 1]])}
    assert {(2, 4), (1, 4), (2, 3), (1, 2)} <= pairs


def test_check_mesh_catches_inverted_and_hanging():
    a, b, c, d, e = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, -1.0]])
    h = (a + b + c) / 3
    nodes = np.array([a, b, c, d, e, h])
    # One tetrahedron above face abc, three below it meeting at h (the centre of abc).
    tets = orient_positive(nodes, np.array([[0, 1, 2, 3], [0, 1, 5, 4], [1, 2, 5, 4], [2, 0, 5, 4]]))
    mesh = Mesh(nodes, tets, np.ones(4, np.int32))
    assert list(hanging_nodes(mesh)) == [5]
    assert any("hanging" in p for p in check_mesh(mesh, min_dihedral_deg=0.0))
    good = Mesh(nodes, orient_positive(nodes, np.array([[0, 1, 2, 3], [0, 1, 2, 4]])), np.ones(2, np.int32))
    assert check_mesh(good, min_dihedral_deg=0.0) == ["1 nodes belong to no tetrahedron"]
    bad = Mesh(good.nodes[:5], good.tetrahedra.copy(), good.tet_tags)
    bad.tetrahedra[0, [2, 3]] = bad.tetrahedra[0, [3, 2]]
    probs = check_mesh(bad, min_dihedral_deg=0.0)
    assert probs and "inverted" in probs[0]
    assert mesh_quality(bad).n_inverted == 1


@cgal
def test_check_mesh_catches_volume_mismatch(shells):
    vol, mesh = shells
    lab = vol.data.copy()
    lab[lab == 4] = 3  # the labels now say there is no bone
    probs = check_mesh(mesh, vol.with_data(lab))
    assert any("tissue 3" in p for p in probs) and any("tissue 4" in p for p in probs)


def test_quality_metrics_of_regular_tetrahedron():
    nodes = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1.0]])
    m = Mesh(nodes, orient_positive(nodes, np.array([[0, 1, 2, 3]])), np.array([1]))
    q = mesh_quality(m)
    assert q.min_dihedral_deg == pytest.approx(np.degrees(np.arccos(1 / 3)), abs=1e-9)
    assert q.min_radius_ratio == pytest.approx(1.0, abs=1e-9)


def test_tag_surfaces_and_small_components():
    nodes = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1.0]])
    tets = orient_positive(nodes, np.array([[0, 1, 2, 3], [1, 2, 3, 4]]))
    tri, tt = tag_surfaces(tets, np.array([2, 3]))
    assert sorted(tt.tolist()) == [1002] * 4 + [1003] * 3
    shared = tri[tt == 1002]
    # The shared face is tagged 1002 and points from tissue 2 into tissue 3 (towards node 4).
    for f in shared:
        if 4 in f or 0 in f:
            continue
        p = nodes[f]
        nrm = np.cross(p[1] - p[0], p[2] - p[0])
        assert nrm @ (nodes[4] - p[0]) > 0
    # A chain 2-3-2: tissue 2 has two pieces; the smaller one joins tissue 3, the larger stays.
    nodes2 = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1.0], [2, 2, 0.5]])
    chain = orient_positive(nodes2, np.array([[0, 1, 2, 3], [1, 2, 3, 4], [1, 2, 4, 5]]))
    vols = np.abs(Mesh(nodes2, chain, np.zeros(3, np.int32)).tet_volumes())
    assert vols[2] != vols[0]
    _, g2, changed = remove_small_components(nodes2, chain, np.array([2, 3, 2]), min_volume_mm3=1.0)
    assert changed == 1
    small = 0 if vols[0] < vols[2] else 2
    assert g2[small] == 3 and g2[2 - small] == 2 and g2[1] == 3


def _face_table_reference(tets: np.ndarray):
    """The sort-based face table (the numpy code the compiled kernel replaced)."""
    from navigator.meshing.topology import TET_FACES

    oriented = tets[:, TET_FACES].reshape(-1, 3)
    s = np.sort(oriented, axis=1)
    order = np.lexsort((np.arange(len(s)), s[:, 2], s[:, 1], s[:, 0]))
    ks = s[order]
    starts = np.flatnonzero(np.r_[True, (ks[1:] != ks[:-1]).any(axis=1)])
    count = np.diff(np.r_[starts, len(ks)])
    first = order[starts]
    second = np.where(count >= 2, order[np.minimum(starts + 1, len(order) - 1)], -1)
    tet = np.stack([first // 4, np.where(second >= 0, second // 4, -1)], axis=1)
    return oriented[first], tet, count


def test_face_table_matches_sort_reference_and_subsets():
    from navigator.meshing.topology import subset_face_table

    rng = np.random.default_rng(3)
    pts = rng.random((300, 3))
    from scipy.spatial import Delaunay

    tets = orient_positive(pts, Delaunay(pts).simplices.astype(np.int64))
    ft = face_table(tets)
    ref = _face_table_reference(tets)
    assert np.array_equal(ft.faces, ref[0]) and np.array_equal(ft.tet, ref[1])
    assert np.array_equal(ft.count, ref[2])
    # A duplicated element: its faces are held three times (non-conforming), still listed once.
    dup = np.concatenate([tets, tets[:2]])
    ftd, refd = face_table(dup), _face_table_reference(dup)
    assert ftd.count.max() == 3 and np.array_equal(ftd.tet, refd[1]) and np.array_equal(ftd.faces, refd[0])
    for frac in (0.95, 0.5):
        keep = rng.random(len(tets)) < frac
        sub, full = subset_face_table(ft, tets, keep), face_table(tets[keep])
        assert np.array_equal(sub.faces, full.faces) and np.array_equal(sub.tet, full.tet)
        assert np.array_equal(sub.count, full.count)


def test_compiled_quality_matches_numpy():
    from navigator.meshing._kernels import tet_quality
    from navigator.meshing.quality import dihedral_angles, radius_ratios

    rng = np.random.default_rng(4)
    nodes = rng.random((200, 3))
    tets = orient_positive(nodes, rng.choice(200, size=(500, 4), replace=True))
    tets = tets[np.all(np.diff(np.sort(tets, axis=1), axis=1) > 0, axis=1)]
    ang, rr, vol6 = tet_quality(nodes, tets)
    assert np.allclose(ang, dihedral_angles(nodes, tets).min(axis=1), atol=1e-6)
    assert np.allclose(rr, radius_ratios(nodes, tets), atol=1e-9)
    assert np.allclose(vol6, 6 * Mesh(nodes, tets, np.ones(len(tets), np.int32)).tet_volumes())


def test_sliver_lift_repairs_flat_interface_sliver():
    """A node 0.02 mm off a plane of nodes makes flat elements lying on the plane (an
    interface): the last-resort pass lifts every element above the floor by small moves."""
    from scipy.spatial import Delaunay

    from navigator.meshing._kernels import lift_slivers_kernel, tet_quality
    from navigator.meshing.slivers import _incidence

    g = np.linspace(-2, 2, 5)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    plane = np.c_[xx.ravel(), yy.ravel(), np.zeros(25)]
    plane[12, 2] = 0.02
    top, bot = plane.copy(), plane.copy()
    top[:, 2], bot[:, 2] = 1.0, -1.0
    nodes = np.vstack([plane, top, bot])
    tets = orient_positive(nodes, Delaunay(nodes).simplices.astype(np.int64))
    tets = tets[tet_quality(nodes, tets)[2] > 1e-12]
    mind = tet_quality(nodes, tets)[0]
    assert mind.min() < 2.0
    tet_of, starts = _incidence(tets, len(nodes))
    dirs = np.random.default_rng(0).normal(size=(32, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    fracs = np.array([0.005, 0.01, 0.02, 0.04, 0.07, 0.1])
    lifted = nodes.copy()
    moved = lift_slivers_kernel(lifted, tets, tet_of, starts, dirs, fracs, 5.5, mind)
    ang, _, vol = tet_quality(lifted, tets)
    assert np.allclose(ang, mind) and np.all(vol > 0)
    assert ang.min() >= 5.5
    assert moved.any() and np.linalg.norm(lifted - nodes, axis=1).max() <= 0.1 * 2.0  # <= 10% of the edges


def test_read_medit_tets(tmp_path):
    from navigator.meshing._cgal import read_medit_tets

    text = ("MeshVersionFormatted 1\nDimension 3\nVertices\n5\n0 0 0 1\n1 0 0 1\n0 1 0 1\n0 0 1 1\n"
            "1 1 1 2\nTriangles\n1\n1 2 3 4\nTetrahedra\n2\n1 2 3 4 7\n2 3 4 5 9\nEnd\n")
    (tmp_path / "m.mesh").write_text(text)
    pts, tets, refs = read_medit_tets(tmp_path / "m.mesh")
    assert pts.shape == (5, 3) and pts[4].tolist() == [1, 1, 1]
    assert tets.tolist() == [[0, 1, 2, 3], [1, 2, 3, 4]] and refs.tolist() == [7, 9]


def test_resample_labels_keeps_volumes_and_smooths():
    vol = shells_volume(radii=(20.0,), tags=(5,), h=2.0)
    lab = vol.data.astype(np.uint8)
    fine, f = resample_labels(lab, np.array([2.0, 2.0, 2.0]), 1.0, 1.0)
    assert list(f) == [2, 2, 2] and fine.shape == tuple(2 * s for s in lab.shape)
    v_true = 4 / 3 * np.pi * 20.0**3
    assert abs((fine == 5).sum() * 1.0 - v_true) / v_true < 0.02
    # Closer to the true sphere than plain voxel repetition (fine voxels on the wrong side).
    rep, _ = resample_labels(lab, np.array([2.0, 2.0, 2.0]), 1.0, 0.0)
    c = (np.arange(fine.shape[0]) + 0.5) / 2 - 0.5
    x = vol.affine[0, 0] * c + vol.affine[0, 3]
    xx, yy, zz = np.meshgrid(x, x, x, indexing="ij")
    truth = np.sqrt(xx**2 + yy**2 + zz**2) <= 20.0
    wrong_smooth = int(((fine == 5) != truth).sum())
    wrong_rep = int(((rep == 5) != truth).sum())
    assert wrong_smooth < 0.85 * wrong_rep

def thin_skull_volume():
    """1 mm voxels: CSF ball, compact bone, a thin wavy spongy-bone sheet (1.2-2.0 mm), compact
    bone, scalp; the sheet is what per-label smoothing used to thin out."""
    n = 34
    x = np.arange(-n, n + 1, dtype=float)
    xx, yy, zz = np.meshgrid(x, x, x, indexing="ij")
    r = np.sqrt(xx**2 + yy**2 + zz**2)
    wave = 0.5 * np.sin(xx / 4.0) * np.cos(yy / 5.0)
    lab = np.zeros(r.shape, np.uint8)
    lab[r <= 30] = 5
    lab[r <= 26] = 7
    lab[r <= 24.0 + wave] = 8
    lab[r <= 22.4 - 0.3 * wave] = 7
    lab[r <= 20] = 3
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    aff[:3, 3] = -n
    return Volume(lab, aff, source="thin skull")


def test_resample_labels_preserves_thin_sheet_volume():
    vol = thin_skull_volume()
    lab = vol.data
    fine, f = resample_labels(lab, np.ones(3), 0.5, 0.6)
    old, _ = resample_labels(lab, np.ones(3), 0.5, 0.6, preserve_volumes=False)
    k = int(np.prod(f))
    for t in (3, 5, 7, 8):
        n = int((lab == t).sum()) * k
        assert abs(int((fine == t).sum()) - n) / n < 0.01, t
    # Plain smoothing loses a good part of the thin sheet; every voxel centre keeps its label now.
    n8 = int((lab == 8).sum()) * k
    assert int((old == 8).sum()) < 0.95 * n8
    from navigator.meshing.labelfield import LabelField

    win = LabelField.build(lab, np.ones(3), 0.5, 0.6)._coarse_argmax()[0]
    assert np.array_equal(win, lab)


@cgal
def test_thin_sheet_keeps_volume_in_mesh():
    from navigator.meshing.mesher import labels_to_mesh

    vol = thin_skull_volume()
    mesh = labels_to_mesh(vol, exude_time_limit_s=5.0)
    assert check_mesh(mesh, vol) == []
    for tag, (lv, mv, err) in volume_errors(mesh, vol).items():
        assert abs(err) < 0.05, (tag, lv, mv)


@cgal
def test_shell_vertices_within_half_voxel_1mm():
    """1 mm voxels, default settings: every interface vertex within 0.5 mm of its true sphere."""
    from navigator.meshing.mesher import labels_to_mesh

    vol = shells_volume(radii=(20.0, 25.0, 30.0), h=1.0)
    mesh = labels_to_mesh(vol, exude_time_limit_s=5.0)
    assert check_mesh(mesh, vol) == []
    for tag, radius in ((1003, 20.0), (1004, 25.0), (1005, 30.0)):
        d = surface_radii(mesh, tag) - radius
        assert abs(d.mean()) < 0.05, (tag, d.mean())
        assert np.abs(d).max() < 0.5, (tag, np.abs(d).max())


@pytest.mark.slow
@cgal
def test_sphere_sample_shell_radii():
    """The sphere sample (r 85/90/95 mm, 1 mm voxels) at default settings: every vertex of every
    shell within 0.5 mm of its true radius, means within 0.02 mm, all checks passed."""
    from navigator.meshing.mesher import labels_to_mesh
    from navigator.samples.sphere import sphere_labels

    vol = sphere_labels()
    mesh = labels_to_mesh(vol)
    assert check_mesh(mesh, vol) == []
    for tag, radius in ((1003, 85.0), (1004, 90.0), (1005, 95.0)):
        d = surface_radii(mesh, tag) - radius
        assert abs(d.mean()) < 0.02, (tag, d.mean())
        assert np.abs(d).max() < 0.5, (tag, np.abs(d).max())


@cgal
def test_extract_surfaces_closed_and_outward(shells):
    _, mesh = shells
    surf = extract_surfaces(mesh)
    assert set(surf) == {"scalp"}  # no GM/WM in this volume
    s = surf["scalp"]
    r = np.linalg.norm(s.vertices, axis=1)
    assert abs(r.mean() - 30.0) < 0.5
    assert enclosed_volume(s.vertices, s.faces) > 0
    # closed: every edge shared by exactly two faces
    e = np.sort(np.concatenate([s.faces[:, [0, 1]], s.faces[:, [1, 2]], s.faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(e, axis=0, return_counts=True)
    assert np.all(counts == 2)


@cgal
def test_extract_surfaces_brain():
    from navigator.meshing.mesher import labels_to_mesh

    vol = shells_volume(radii=(14.0, 20.0, 23.0, 28.0), tags=(1, 2, 3, 5))
    lab = vol.data.copy()
    n = lab.shape[0] // 2
    lab[n - 2:n + 3, n - 2:n + 3, n - 2:n + 3] = 0  # an air cavity inside the brain: not part of any shell
    vol = vol.with_data(lab)
    mesh = labels_to_mesh(vol, **FAST)
    surf = extract_surfaces(mesh)
    assert set(surf) == {"scalp", "gm", "wm", "middle_gm"}
    expect = {"scalp": 28.0, "gm": 20.0, "wm": 14.0, "middle_gm": 17.0}
    for name, s in surf.items():
        r = np.linalg.norm(s.vertices, axis=1)
        assert abs(np.median(r) - expect[name]) < 0.75, (name, np.median(r))
        assert r.min() > expect[name] - 2.5  # the cavity wall is not included
        assert enclosed_volume(s.vertices, s.faces) > 0
        nrm = s.face_normals()
        assert np.mean(np.einsum("ij,ij->i", nrm, s.vertices[s.faces].mean(1)) > 0) > 0.99
        assert connected_face_components(s.faces).max() == 0


def test_marching_tetrahedra_plane():
    from scipy.spatial import Delaunay

    g = np.linspace(0, 1, 5)
    pts = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    tets = orient_positive(pts, Delaunay(pts).simplices.astype(np.int64))
    v, f = marching_tetrahedra(pts, tets, pts[:, 2], 0.3)
    assert np.allclose(v[:, 2], 0.3)
    p = v[f]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert np.all(n[:, 2] > 0)  # towards increasing values
    assert 0.5 * np.linalg.norm(n, axis=1).sum() == pytest.approx(1.0)


@cgal
def test_mesh_workspace_step_and_cli(tmp_path, monkeypatch):
    import nibabel as nib

    from navigator.cli import main
    from navigator.core.workspace import Workspace
    from navigator.meshing.step import mesh_workspace, read_quality

    ws = Workspace.create(tmp_path / "subj")
    vol = shells_volume(radii=(12.0, 16.0, 19.0, 22.0), tags=(1, 2, 3, 5))
    ws.path("labels").parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(vol.data.astype(np.uint8), vol.affine), ws.path("labels"))
    assert mesh_workspace(ws, **CLI_PARAMS)
    assert not mesh_workspace(ws, **CLI_PARAMS)  # current: skipped
    for key in ("mesh", "scalp", "gm_surface", "wm_surface", "middle_gm"):
        assert ws.path(key).exists(), key
    rep = read_quality(ws)
    assert rep["passed"] and rep["quality"]["min_dihedral_deg"] >= 5
    assert set(rep["surfaces"]) == {"scalp", "gm", "wm", "middle_gm"}
    rec = ws.step("mesh")
    assert "mesh/head.msh" in rec.outputs and "mesh/quality.json" in rec.outputs
    from navigator.io.gmsh import read_msh

    back = read_msh(ws.path("mesh"))
    assert back.n_tets == rep["quality"]["n_tets"]
    assert sorted(np.unique(back.triangle_tags).tolist()) == [1001, 1002, 1003, 1005]
    args = ["mesh", str(ws.root), "--cell-size", "3", "--facet-size", "2", "--facet-distance", "0.4",
            "--upsample", "1", "--smooth", "1", "--no-exude"]
    for t in (1, 2, 3, 5):
        args += ["--tissue-size", f"{t}=3"]
    assert main(args) == 0  # same parameters: reported as up to date, not re-meshed
    assert ws.step("mesh").completed == rec.completed
