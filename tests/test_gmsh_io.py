"""gmsh .msh reader/writer: round trips, files written by gmsh and meshio, errors."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.core.errors import InputError
from navigator.core.mesh import Mesh
from navigator.io.gmsh import read_msh, write_msh
from navigator.io.mesh_boundary import adjacent_tets, boundary_triangles

gmsh = pytest.importorskip("gmsh")
meshio = pytest.importorskip("meshio")


def _gmsh_two_boxes(folder):
    """Two adjacent unit boxes (physical volumes 7 and 9, faces of box 7 physical 1007)
    written by gmsh itself as 4.1/2.2, ASCII/binary. Returns {(version, binary): path}."""
    gmsh.initialize(["-noenv"])
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("boxes")
        b1 = gmsh.model.occ.addBox(0, 0, 0, 10, 10, 10)
        b2 = gmsh.model.occ.addBox(10, 0, 0, 10, 10, 10)
        gmsh.model.occ.fragment([(3, b1)], [(3, b2)])
        gmsh.model.occ.synchronize()
        vols = sorted(gmsh.model.getEntities(3))
        gmsh.model.addPhysicalGroup(3, [vols[0][1]], 7)
        gmsh.model.addPhysicalGroup(3, [vols[1][1]], 9)
        faces = gmsh.model.getBoundary([vols[0]], oriented=False)
        gmsh.model.addPhysicalGroup(2, [abs(f[1]) for f in faces], 1007)
        gmsh.option.setNumber("Mesh.MeshSizeMax", 4.0)
        gmsh.model.mesh.generate(3)
        out = {}
        for version in (4.1, 2.2):
            for binary in (0, 1):
                p = folder / f"boxes_{version}_{binary}.msh"
                gmsh.option.setNumber("Mesh.MshFileVersion", version)
                gmsh.option.setNumber("Mesh.Binary", binary)
                gmsh.write(str(p))
                out[(version, bool(binary))] = p
        return out
    finally:
        gmsh.finalize()


@pytest.fixture(scope="module")
def gmsh_files(tmp_path_factory):
    return _gmsh_two_boxes(tmp_path_factory.mktemp("gmsh"))


def _meshio_gmsh22_fixed(monkeypatch):
    """meshio 5.3 splits gmsh 2.2 ElementData with len(tuple) (meshio issue #1257); patch the
    splitter to the cell counts so meshio can be used as an independent reader."""
    import meshio.gmsh._gmsh22 as g22

    def split(cells, raw):
        idx = np.cumsum([len(c[1]) for c in cells])[:-1]
        return {name: np.split(d, idx) for name, d in raw.items()}

    monkeypatch.setattr(g22, "cell_data_from_raw", split)


def _mesh_with_fields(m: Mesh) -> Mesh:
    m = Mesh(m.nodes, m.tetrahedra, m.tet_tags, m.triangles, m.triangle_tags)
    m.node_data["v"] = np.sin(m.nodes[:, 0]) * 1e-3
    m.tet_data["E"] = m.tet_centroids() * np.pi
    m.tet_data["magnE"] = np.linalg.norm(m.tet_data["E"], axis=1)
    return m


def test_gmsh_written_files_read_identically(gmsh_files):
    meshes = {k: read_msh(p) for k, p in gmsh_files.items()}
    ref = meshes[(2.2, True)]
    assert ref.n_tets > 50 and len(ref.triangles) > 20
    assert set(ref.tissue_tags()) == {7, 9}
    assert set(np.unique(ref.triangle_tags)) == {1007}
    assert ref.tet_volumes().sum() == pytest.approx(2000.0, rel=1e-9)
    for key, m in meshes.items():
        np.testing.assert_allclose(m.nodes, ref.nodes, atol=1e-12, err_msg=str(key))
        np.testing.assert_array_equal(m.tetrahedra, ref.tetrahedra, err_msg=str(key))
        np.testing.assert_array_equal(m.tet_tags, ref.tet_tags, err_msg=str(key))
        np.testing.assert_array_equal(m.triangles, ref.triangles, err_msg=str(key))
        np.testing.assert_array_equal(m.triangle_tags, ref.triangle_tags, err_msg=str(key))
    # independent check against meshio's reader of the 4.1 file
    mm = meshio.read(gmsh_files[(4.1, False)])
    tets = np.concatenate([c.data for c in mm.cells if c.type == "tetra"])
    assert len(tets) == ref.n_tets
    np.testing.assert_allclose(np.sort(mm.points[np.unique(tets)], axis=0),
                               np.sort(ref.nodes[np.unique(ref.tetrahedra)], axis=0), atol=1e-12)


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_exact(gmsh_files, tmp_path, binary):
    m = _mesh_with_fields(read_msh(gmsh_files[(4.1, True)]))
    m.triangle_data["tri_only"] = np.arange(len(m.triangles)) * 0.25
    p = write_msh(m, tmp_path / "out.msh", binary=binary)
    assert p.read_bytes().startswith(b"$MeshFormat\n2.2 %d 8\n" % int(binary))
    r = read_msh(p)
    np.testing.assert_array_equal(r.nodes, m.nodes)
    np.testing.assert_array_equal(r.tetrahedra, m.tetrahedra)
    np.testing.assert_array_equal(r.triangles, m.triangles)
    np.testing.assert_array_equal(r.tet_tags, m.tet_tags)
    np.testing.assert_array_equal(r.triangle_tags, m.triangle_tags)
    for k in m.node_data:
        np.testing.assert_array_equal(r.node_data[k], m.node_data[k])
    for k in m.tet_data:
        np.testing.assert_array_equal(r.tet_data[k], m.tet_data[k])
    np.testing.assert_array_equal(r.triangle_data["tri_only"], m.triangle_data["tri_only"])
    assert "tri_only" not in r.tet_data  # NaN on tets means "not given there"
    # tet-only fields are carried onto triangles from the tetrahedron of the bounded tissue
    adj = adjacent_tets(m)
    assert (adj >= 0).all()
    assert (m.tet_tags[adj] == m.triangle_tags - 1000).all()
    np.testing.assert_array_equal(r.triangle_data["E"], m.tet_data["E"][adj])
    # write -> read -> write is byte-identical
    p2 = write_msh(r, tmp_path / "again.msh", binary=binary)
    assert p2.read_bytes() == p.read_bytes()


@pytest.mark.parametrize("binary", [True, False])
def test_meshio_reads_our_file(gmsh_files, tmp_path, monkeypatch, binary):
    _meshio_gmsh22_fixed(monkeypatch)
    m = _mesh_with_fields(read_msh(gmsh_files[(2.2, False)]))
    p = write_msh(m, tmp_path / "out.msh", binary=binary)
    mm = meshio.read(p)
    assert [c.type for c in mm.cells] == ["triangle", "tetra"]
    np.testing.assert_array_equal(mm.points, m.nodes)
    np.testing.assert_array_equal(mm.cells[0].data, m.triangles)
    np.testing.assert_array_equal(mm.cells[1].data, m.tetrahedra)
    np.testing.assert_array_equal(mm.cell_data["gmsh:physical"][1], m.tet_tags)
    np.testing.assert_array_equal(mm.cell_data["gmsh:geometrical"][0], m.triangle_tags)
    np.testing.assert_array_equal(mm.point_data["v"], m.node_data["v"])
    np.testing.assert_array_equal(mm.cell_data["E"][1], m.tet_data["E"])
    np.testing.assert_array_equal(mm.cell_data["magnE"][1], m.tet_data["magnE"])
    assert np.isfinite(mm.cell_data["E"][0]).all()  # full-length field, triangles filled


def test_meshio_written_files(tmp_path):
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(30, 3))
    tets = np.array([rng.choice(30, 4, replace=False) for _ in range(20)])
    tris = tets[:5, :3]
    tags = np.arange(20) % 3 + 1
    for fmt, binary in (("gmsh22", True), ("gmsh22", False), ("gmsh", True), ("gmsh", False)):
        if fmt == "gmsh22":
            mm = meshio.Mesh(pts, [("triangle", tris), ("tetra", tets)],
                             cell_data={"gmsh:physical": [np.full(5, 1002), tags],
                                        "gmsh:geometrical": [np.full(5, 1002), tags]})
        elif binary:  # meshio's 4.1 writer needs entity data for mixed cells: tetrahedra only
            mm = meshio.Mesh(pts, [("tetra", tets)], point_data={"v": pts[:, 0]},
                             cell_data={"E": [pts[tets].mean(axis=1)]})
        else:  # meshio 5.3 + numpy 2 writes ASCII 4.1 data values as "np.float64(...)": no data
            mm = meshio.Mesh(pts, [("tetra", tets)])
        p = tmp_path / f"{fmt}_{binary}.msh"
        meshio.write(p, mm, file_format=fmt, binary=binary)
        r = read_msh(p)
        np.testing.assert_allclose(r.nodes, pts, rtol=0, atol=1e-12 if binary else 1e-9)
        np.testing.assert_array_equal(r.tetrahedra, tets)
        if fmt == "gmsh22":
            np.testing.assert_array_equal(r.triangles, tris)
            np.testing.assert_array_equal(r.tet_tags, tags)
            np.testing.assert_array_equal(r.triangle_tags, np.full(5, 1002))
        elif binary:  # 4.1 node and element data
            np.testing.assert_allclose(r.node_data["v"], pts[:, 0], atol=1e-9)
            np.testing.assert_allclose(r.tet_data["E"], pts[tets].mean(axis=1), atol=1e-9)


def _ascii22(nodes_block: str, elements_block: str, extra: str = "") -> bytes:
    return ("$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n" + nodes_block + "$EndNodes\n$Elements\n"
            + elements_block + "$EndElements\n" + extra).encode()


def test_non_contiguous_ids_points_lines_and_partial_element_data(tmp_path):
    nodes = "5\n40 0 0 0\n10 1 0 0\n30 0 1 0\n20 0 0 1\n50 1 1 1\n"
    elements = ("5\n"
                "7 15 2 1 1 40\n"          # point: skipped
                "8 1 2 1 1 40 10\n"        # line: skipped
                "3 4 2 3 3 40 10 30 20\n"  # tetrahedron, tag 3
                "2 2 2 1003 1003 40 10 30\n"  # triangle
                "4 4 3 5 5 9 10 30 20 50\n")  # tet with 3 tags -> physical 5
    data = ('$ElementData\n1\n"f"\n1\n0.0\n3\n0\n2\n2\n4 1.5 2.5\n8 9 9\n$EndElementData\n'
            '$NodeData\n1\n"v"\n1\n0\n3\n0\n1\n2\n50 7\n40 3\n$EndNodeData\n')
    p = tmp_path / "odd.msh"
    p.write_bytes(_ascii22(nodes, elements, data))
    m = read_msh(p)
    np.testing.assert_array_equal(m.nodes[0], [1, 0, 0])  # id 10 first (id order)
    np.testing.assert_array_equal(m.tetrahedra, [[3, 0, 2, 1], [0, 2, 1, 4]])
    np.testing.assert_array_equal(m.tet_tags, [3, 5])
    np.testing.assert_array_equal(m.triangles, [[3, 0, 2]])
    np.testing.assert_array_equal(m.tet_data["f"][0], [np.nan, np.nan])
    np.testing.assert_array_equal(m.tet_data["f"][1], [1.5, 2.5])
    assert "f" not in m.triangle_data
    np.testing.assert_array_equal(m.node_data["v"], [np.nan, np.nan, np.nan, 3, 7])


def test_errors_name_the_file(tmp_path, gmsh_files):
    with pytest.raises(InputError, match="missing.msh: file not found"):
        read_msh(tmp_path / "missing.msh")
    bad = tmp_path / "notamesh.msh"
    bad.write_text("solid cube\nendsolid\n")
    with pytest.raises(InputError, match="notamesh.msh: not a gmsh mesh"):
        read_msh(bad)
    v3 = tmp_path / "v3.msh"
    v3.write_text("$MeshFormat\n3.0 0 8\n$EndMeshFormat\n")
    with pytest.raises(InputError, match="v3.msh: unsupported gmsh format version 3.0"):
        read_msh(v3)
    for key in [(2.2, True), (4.1, True), (2.2, False), (4.1, False)]:
        data = gmsh_files[key].read_bytes()
        cut = tmp_path / f"cut_{key[0]}_{key[1]}.msh"
        cut.write_bytes(data[: len(data) * 2 // 3])
        with pytest.raises(InputError, match=f"{cut.name}: .*(truncated|malformed)"):
            read_msh(cut)
    empty = tmp_path / "empty.msh"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.msh"):
        read_msh(empty)


def test_boundary_triangles_nested_tags():
    # two tets sharing a face: tag 1 (inner in the SimNIBS order) and tag 5
    nodes = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1.0]])
    tets = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    m = Mesh(nodes, tets, [5, 1])
    tris, tags = boundary_triangles(m)
    assert len(tris) == 7  # 6 outside faces + 1 interface
    shared = np.sort(tris, axis=1).tolist().index([1, 2, 3])
    assert tags[shared] == 1001
    assert sorted(tags.tolist()) == [1001] * 4 + [1005] * 3
    # every triangle points away from its own tissue's tetrahedron
    tagged = Mesh(nodes, tets, [5, 1], tris, tags)
    adj = adjacent_tets(tagged)
    p = nodes[tris]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    inward = nodes[tets[adj]].mean(axis=1) - p.mean(axis=1)
    assert (np.einsum("ij,ij->i", normal, inward) < 0).all()
    assert (m.tet_tags[adj] == tags - 1000).all()


@pytest.mark.parametrize("binary", [False, True])
def test_gmsh_41_with_view_data(tmp_path, binary):
    """Node and element fields written by gmsh's own post-processing into a 4.1 file."""
    p = tmp_path / f"data_{int(binary)}.msh"
    gmsh.initialize(["-noenv"])
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("box")
        gmsh.model.occ.addBox(0, 0, 0, 10, 10, 10)
        gmsh.model.occ.synchronize()
        gmsh.model.addPhysicalGroup(3, [1], 3)
        gmsh.option.setNumber("Mesh.MeshSizeMax", 5.0)
        gmsh.model.mesh.generate(3)
        node_tags, coords, _ = gmsh.model.mesh.getNodes()
        coords = np.asarray(coords).reshape(-1, 3)
        _, elem_tags, _ = gmsh.model.mesh.getElements(3)
        elem_tags = np.asarray(elem_tags[0])
        v = gmsh.view.add("pot")
        gmsh.view.addHomogeneousModelData(v, 0, "box", "NodeData", node_tags, coords[:, 0] * 2)
        w = gmsh.view.add("E")
        gmsh.view.addHomogeneousModelData(w, 0, "box", "ElementData", elem_tags,
                                          np.repeat(elem_tags.astype(float), 3), numComponents=3)
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.Binary", int(binary))
        gmsh.write(str(p))
        gmsh.option.setNumber("PostProcessing.SaveMesh", 0)
        gmsh.view.write(v, str(p), append=True)
        gmsh.view.write(w, str(p), append=True)
    finally:
        gmsh.finalize()
    m = read_msh(p)
    assert m.tissue_tags() == [3]
    order = np.argsort(node_tags)
    np.testing.assert_allclose(m.nodes, coords[order], atol=1e-12)
    np.testing.assert_allclose(m.node_data["pot"], coords[order, 0] * 2, atol=1e-12)
    np.testing.assert_array_equal(m.tet_data["E"], np.repeat(np.sort(elem_tags)[:, None].astype(float), 3, axis=1))


def test_gmsh22_without_physical_groups_uses_the_elementary_tag(tmp_path):
    """gmsh 2.2 'save all' without physical groups writes physical tag 0: the elementary tag is
    the tissue tag (as gmsh 4.1's entity tag); no tag at all is refused on import."""
    nodes = "4\n1 0 0 0\n2 1 0 0\n3 0 1 0\n4 0 0 1\n"
    p = tmp_path / "m.msh"
    p.write_bytes(_ascii22(nodes, "1\n1 4 2 0 7 1 2 3 4\n"))
    assert read_msh(p, check=True).tet_tags.tolist() == [7]
    p.write_bytes(_ascii22(nodes, "1\n1 4 2 0 0 1 2 3 4\n"))
    with pytest.raises(InputError, match=r"m\.msh: tetrahedron 1 \(nodes 1 2 3 4\) has no tissue tag"):
        read_msh(p, check=True)
