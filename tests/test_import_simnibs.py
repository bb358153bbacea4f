"""Importing SimNIBS m2m folders and bare gmsh meshes; EEG position CSV files."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.cli import main
from navigator.core.errors import InputError
from navigator.core.workspace import Workspace
from navigator.io.eeg_positions import EegPositions, read_eeg_csv, write_eeg_csv
from navigator.io.gmsh import read_msh
from navigator.io.simnibs import find_m2m_files
from navigator.meshing.import_head import import_mesh, import_simnibs
from navigator.io.surfaces import read_surface, write_surface

gmsh = pytest.importorskip("gmsh")
nib = pytest.importorskip("nibabel")

CENTRE = np.array([2.0, 10.0, 20.0])
# A known subject -> MNI affine for the synthetic deformation fields.
S2M = np.array([[0.9, 0.05, 0.0, -3.0], [-0.04, 1.1, 0.02, 12.0], [0.0, -0.03, 0.95, -20.0], [0, 0, 0, 1.0]])


def sphere_mesh(path, radii, tags, size, surfaces=True, binary=True):
    """Concentric spheres (mm, centred at CENTRE) meshed by gmsh, volume tags ``tags``
    (innermost first), surface triangles 1000 + tag on each sphere when ``surfaces``."""
    gmsh.initialize(["-noenv"])
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("spheres")
        balls = [gmsh.model.occ.addSphere(*CENTRE, r) for r in radii]
        gmsh.model.occ.fragment([(3, balls[-1])], [(3, b) for b in balls[:-1]])
        gmsh.model.occ.synchronize()
        vols = gmsh.model.getEntities(3)
        shell = [4 / 3 * np.pi * (r ** 3 - (radii[i - 1] ** 3 if i else 0)) for i, r in enumerate(radii)]
        for dim, tag in vols:
            mass = gmsh.model.occ.getMass(dim, tag)
            i = int(np.argmin([abs(mass - s) for s in shell]))
            gmsh.model.addPhysicalGroup(3, [tag], tags[i])
        if surfaces:
            for dim, tag in gmsh.model.getEntities(2):
                bb = gmsh.model.getBoundingBox(dim, tag)
                r = (bb[3] - bb[0]) / 2
                i = int(np.argmin([abs(r - rr) for rr in radii]))
                gmsh.model.addPhysicalGroup(2, [tag], 1000 + tags[i])
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.option.setNumber("Mesh.MeshSizeMin", size / 2)
        gmsh.model.mesh.generate(3)
        gmsh.option.setNumber("Mesh.MshFileVersion", 2.2)
        gmsh.option.setNumber("Mesh.Binary", int(binary))
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    return path


def _grid(shape, spacing, origin):
    aff = np.diag([spacing, spacing, spacing, 1.0])
    aff[:3, 3] = origin
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    world = ijk @ aff[:3, :3].T + aff[:3, 3]
    return aff, world


def _save(data, aff, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, aff), str(path))


def _eeg_rows(radius):
    names = ["Fp1", "Fp2", "Cz", "O1", "O2"]
    dirs = np.array([[-0.3, 0.9, 0.3], [0.3, 0.9, 0.3], [0, 0, 1], [-0.3, -0.9, 0.3], [0.3, -0.9, 0.3]])
    pos = CENTRE + radius * dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    fids = {"Nz": CENTRE + [0, radius, 0], "LPA": CENTRE + [-radius, 0, 0], "RPA": CENTRE + [radius, 0, 0]}
    return names, pos, fids


def _write_cap(path, radius):
    names, pos, fids = _eeg_rows(radius)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"Fiducial,{p[0]},{p[1]},{p[2]},{n}" for n, p in fids.items()]
    lines += [f"Electrode,{p[0]},{p[1]},{p[2]},{n}" for n, p in zip(names, pos)]
    path.write_text("\n".join(lines) + "\n")


def _ball_surface(radius, centre):
    """Convex hull of points on a sphere (a closed triangle surface), mm."""
    from scipy.spatial import ConvexHull

    from navigator.core.surface import Surface

    d = np.random.default_rng(0).normal(size=(200, 3))
    v = centre + radius * d / np.linalg.norm(d, axis=1, keepdims=True)
    return Surface(v, ConvexHull(v).simplices)


def make_m2m(root, version=4):
    """A small synthetic SimNIBS m2m folder (5 tissues as concentric spheres)."""
    radii, tags = [40.0, 50.0, 56.0, 62.0, 70.0], [1, 2, 3, 4, 5]
    m2m = root / "m2m_sub01"
    m2m.mkdir(parents=True)
    mesh_path = m2m / "sub01.msh" if version == 4 else root / "sub01.msh"
    sphere_mesh(mesh_path, radii, tags, size=14.0)
    shape, spacing, origin = (20, 20, 20), 8.0, CENTRE - 76.0
    aff, world = _grid(shape, spacing, origin)
    r = np.linalg.norm(world - CENTRE, axis=-1)
    labels = np.zeros(shape, np.uint8)
    for rad, t in reversed(list(zip(radii, tags))):
        labels[r <= rad] = t
    t1 = (labels * 20).astype(np.float32)
    s2m = world @ S2M[:3, :3].T + S2M[:3, 3]
    mni_aff, mni_world = _grid((12, 14, 12), 15.0, [-90.0, -126.0, -72.0])
    inv = np.linalg.inv(S2M)
    m2s = mni_world @ inv[:3, :3].T + inv[:3, 3]
    if version == 4:
        _save(t1, aff, m2m / "T1.nii.gz")
        _save(t1[::-1].copy(), aff, m2m / "T2_reg.nii.gz")
        _save(labels, aff, m2m / "final_tissues.nii.gz")
        # SimNIBS stores fields as 5-D (X, Y, Z, 1, 3)
        _save(s2m[:, :, :, None, :].astype(np.float32), aff, m2m / "toMNI" / "Conform2MNI_nonl.nii.gz")
        _save(m2s[:, :, :, None, :].astype(np.float32), mni_aff, m2m / "toMNI" / "MNI2Conform_nonl.nii.gz")
        for hemi, dx in (("lh", -20.0), ("rh", 20.0)):
            write_surface(_ball_surface(15.0, CENTRE + [dx, 0, 0]), m2m / "surfaces" / f"{hemi}.central.gii")
    else:
        _save(t1, aff, m2m / "T1fs_conform.nii.gz")
        _save(labels, aff, m2m / "sub01_final_contr.nii.gz")
        _save(s2m.astype(np.float32), aff, m2m / "toMNI" / "Conform2MNI_nonl.nii.gz")
        _save(m2s.astype(np.float32), mni_aff, m2m / "toMNI" / "MNI2Conform_nonl.nii.gz")
        np.savetxt(m2m / "toMNI" / "MNI2conform_12DOF.txt", np.linalg.inv(S2M))
    _write_cap(m2m / "eeg_positions" / "EEG10-10_UI_Jurak_2007.csv", 70.0)
    _write_cap(m2m / "eeg_positions" / "EEG10-20_Okamoto_2004.csv", 69.0)
    return m2m


def test_import_simnibs4(tmp_path):
    m2m = make_m2m(tmp_path / "src", version=4)
    files = find_m2m_files(m2m)
    assert files.version == 4 and files.subject_id == "sub01"
    messages = []
    from navigator.core.progress import Progress

    ws = import_simnibs(m2m, tmp_path / "ws", progress=Progress(callback=lambda f, m: messages.append(f)))
    assert messages[-1] == 1.0 and messages == sorted(messages)
    ws = Workspace.open(tmp_path / "ws", verify_hashes=True)
    assert ws.subject_id == "sub01"
    assert set(ws.sources()) == {"T1", "T2"}
    assert set(ws.steps()) == {"labels", "mesh", "transforms", "eeg", "surfaces"}
    assert ws.step("mesh").parameters["source"] == str(files.mesh.resolve())
    # images copied byte-for-byte
    assert ws.path("t1").read_bytes() == (m2m / "T1.nii.gz").read_bytes()
    assert ws.path("labels").read_bytes() == (m2m / "final_tissues.nii.gz").read_bytes()
    # mesh: same tetrahedra and SimNIBS triangles
    src, dst = read_msh(files.mesh), read_msh(ws.path("mesh"))
    np.testing.assert_array_equal(dst.nodes, src.nodes)
    np.testing.assert_array_equal(dst.tetrahedra, src.tetrahedra)
    np.testing.assert_array_equal(dst.tet_tags, src.tet_tags)
    np.testing.assert_array_equal(dst.triangle_tags, src.triangle_tags)
    assert set(np.unique(dst.triangle_tags)) == {1001, 1002, 1003, 1004, 1005}
    # transforms: affine fitted from the field recovers the synthetic one
    from navigator.io.transforms import load_mni_transform

    tr = load_mni_transform(ws.path("transforms"))
    np.testing.assert_allclose(tr.subject_to_mni_affine, S2M, atol=1e-3)
    p = CENTRE + [10.0, -5.0, 7.0]
    np.testing.assert_allclose(tr.subject_to_mni(p)[0], S2M[:3, :3] @ p + S2M[:3, 3], atol=1e-3)
    np.testing.assert_allclose(tr.mni_to_subject(tr.subject_to_mni(p))[0], p, atol=1e-3)
    # EEG: default cap as targets/eeg.csv, all caps kept
    eeg = read_eeg_csv(ws.path("eeg"))
    names, pos, fids = _eeg_rows(70.0)
    assert eeg.names == names
    np.testing.assert_allclose(eeg.positions, pos)
    np.testing.assert_allclose(eeg.fiducials["Nz"], fids["Nz"])
    assert (ws.path("targets") / "eeg_caps" / "EEG10-20_Okamoto_2004.csv").is_file()
    # surfaces: SimNIBS central surfaces merged; scalp/gm/wm cut from the mesh
    mid = read_surface(ws.path("middle_gm"))
    assert set(np.unique(mid.data["hemisphere"])) == {0.0, 1.0}
    assert ws.step("surfaces").parameters["origin"]["middle_gm"].startswith("surfaces/")
    for key, radius in (("scalp", 70.0), ("gm", 50.0), ("wm", 40.0)):
        s = read_surface(ws.path(key if key == "scalp" else f"{key}_surface"))
        r = np.linalg.norm(s.vertices - CENTRE, axis=1)
        assert abs(np.median(r) - radius) < 0.02 * radius, key
        centres = s.vertices[s.faces].mean(axis=1) - CENTRE
        assert (np.einsum("ij,ij->i", s.face_normals(), centres) > 0).mean() > 0.99, key


def test_import_simnibs3_layout_and_cli(tmp_path, capsys):
    m2m = make_m2m(tmp_path / "src", version=3)
    files = find_m2m_files(m2m)
    assert files.version == 3 and files.mesh == tmp_path / "src" / "sub01.msh"
    assert files.t1.name == "T1fs_conform.nii.gz" and files.labels.name == "sub01_final_contr.nii.gz"
    rc = main(["import-simnibs", str(m2m), "--out", str(tmp_path / "ws3"), "-q"])
    assert rc == 0
    ws = Workspace.open(tmp_path / "ws3", verify_hashes=True)
    assert set(ws.steps()) >= {"labels", "mesh", "transforms", "eeg", "surfaces"}
    assert "MNI2conform_12DOF" in ws.step("transforms").parameters["affine"]
    aff = np.loadtxt(ws.path("transforms") / "subject_to_mni_affine.txt")
    np.testing.assert_allclose(aff, S2M, atol=1e-8)
    # a second import into the same folder refuses to overwrite
    rc = main(["import-simnibs", str(m2m), "--out", str(tmp_path / "ws3"), "-q"])
    assert rc == 1 and "already exists" in capsys.readouterr().err


def test_import_simnibs_errors(tmp_path):
    with pytest.raises(InputError, match="no such m2m folder"):
        import_simnibs(tmp_path / "nope", tmp_path / "ws")
    empty = tmp_path / "m2m_x"
    empty.mkdir()
    with pytest.raises(InputError, match="m2m_x: no head mesh found"):
        import_simnibs(empty, tmp_path / "ws")
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("with_surfaces", [False, True])
def test_import_mesh_three_spheres(tmp_path, with_surfaces):
    radii, tags = [80.0, 86.0, 92.0], [3, 4, 5]
    path = sphere_mesh(tmp_path / "spheres.msh", radii, tags, size=16.0, surfaces=with_surfaces, binary=False)
    rc = main(["import-mesh", str(path), "--out", str(tmp_path / "ws"), "--subject-id", "sphere3", "-q"])
    assert rc == 0
    ws = Workspace.open(tmp_path / "ws", verify_hashes=True)
    assert ws.subject_id == "sphere3"
    assert set(ws.steps()) == {"mesh", "surfaces"}
    assert ws.step("mesh").parameters["generated_surface_triangles"] is (not with_surfaces)
    m = read_msh(ws.path("mesh"))
    assert m.tissue_tags() == tags
    assert sorted(np.unique(m.triangle_tags)) == [1003, 1004, 1005]
    for t, radius in zip((1003, 1004, 1005), radii):
        tri = m.triangles[m.triangle_tags == t]
        r = np.linalg.norm(m.nodes[tri] - CENTRE, axis=2)
        assert np.allclose(r, radius, rtol=0.01), t
        # outward orientation (generated ones by construction; gmsh's as written)
        p = m.nodes[tri]
        n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        outward = (np.einsum("ij,ij->i", n, p.mean(axis=1) - CENTRE) > 0).mean()
        if not with_surfaces:
            assert outward == 1.0
    # the surface area of each generated sphere is close to 4 pi r^2
    if not with_surfaces:
        for t, radius in zip((1003, 1004, 1005), radii):
            p = m.nodes[m.triangles[m.triangle_tags == t]]
            area = 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1).sum()
            assert area == pytest.approx(4 * np.pi * radius ** 2, rel=0.05)
    scalp = read_surface(ws.path("scalp"))
    np.testing.assert_allclose(np.linalg.norm(scalp.vertices - CENTRE, axis=1), 92.0, rtol=0.01)
    assert not ws.path("t1").exists()


def test_import_mesh_rejects_surface_only(tmp_path):
    p = tmp_path / "tri.msh"
    p.write_text("$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Nodes\n3\n1 0 0 0\n2 1 0 0\n3 0 1 0\n$EndNodes\n"
                 "$Elements\n1\n1 2 2 1005 1005 1 2 3\n$EndElements\n")
    with pytest.raises(InputError, match="tri.msh: mesh has no tetrahedra"):
        import_mesh(p, tmp_path / "ws")


# ---------------------------------------------------------------------------- EEG csv
def test_eeg_csv_round_trip_and_variants(tmp_path):
    p = tmp_path / "cap.csv"
    p.write_text("Type,X,Y,Z,Name\n"
                 "Fiducial,0,85.5,-10,Nz\n"
                 "Fiducial,0,-110,-5,Iz\n"
                 "Electrode,-30.25,80,20,Fp1\n"
                 "Electrode,30.25,80,20,0.1,0.9,0.4,Fp2,extra info\n"
                 "ReferenceElectrode,0,0,100,Cz\n"
                 "Generic,1,2,3,ignored\n"
                 "\n")
    e = read_eeg_csv(p)
    assert e.names == ["Fp1", "Fp2", "Cz"] and e.reference == "Cz"
    np.testing.assert_array_equal(e.positions[1], [30.25, 80, 20])
    np.testing.assert_array_equal(e.fiducials["Iz"], [0, -110, -5])
    np.testing.assert_array_equal(e.position("fp2"), [30.25, 80, 20])
    np.testing.assert_array_equal(e.position("NZ"), [0, 85.5, -10])
    out = write_eeg_csv(e, tmp_path / "out.csv")
    back = read_eeg_csv(out)
    assert back.names == e.names and back.reference == "Cz"
    np.testing.assert_array_equal(back.positions, e.positions)
    assert back.fiducials.keys() == e.fiducials.keys()
    rng = np.random.default_rng(1)
    exact = EegPositions(["A", "B"], rng.normal(size=(2, 3)) * 100, {"LPA": rng.normal(size=3)})
    np.testing.assert_array_equal(read_eeg_csv(write_eeg_csv(exact, tmp_path / "x.csv")).positions, exact.positions)


def test_eeg_csv_errors(tmp_path):
    with pytest.raises(InputError, match="none.csv: file not found"):
        read_eeg_csv(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("Electrode,1,two,3,Fp1\n")
    with pytest.raises(InputError, match="bad.csv: row 1: coordinates are not numbers"):
        read_eeg_csv(bad)
    bad.write_text("Sensor,1,2,3,Fp1\n")
    with pytest.raises(InputError, match="unknown position type 'Sensor'"):
        read_eeg_csv(bad)
    bad.write_text("Electrode,1,2,3\n")
    with pytest.raises(InputError, match="expected type,x,y,z,name"):
        read_eeg_csv(bad)


def test_bad_input_leaves_no_workspace(tmp_path):
    m2m = make_m2m(tmp_path / "src", version=4)
    (m2m / "eeg_positions" / "EEG10-20_Okamoto_2004.csv").write_text("Electrode,1,x,3,Fp1\n")
    with pytest.raises(InputError, match="EEG10-20_Okamoto_2004.csv: row 1"):
        import_simnibs(m2m, tmp_path / "ws")
    assert not (tmp_path / "ws").exists()
