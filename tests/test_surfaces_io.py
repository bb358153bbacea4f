"""Surface files: GIFTI round trip, meshio formats, FreeSurfer tkRAS conversion, errors."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.core.errors import InputError
from navigator.core.surface import Surface
from navigator.io.surfaces import read_surface, tkr_to_scanner, write_surface


def _icosphere_like(radius: float = 50.0, centre=(10.0, -20.0, 30.0)) -> Surface:
    """Closed outward-oriented octahedron subdivided twice, projected on a sphere (mm)."""
    v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    for _ in range(2):
        edges = {}
        new_faces = []
        verts = list(v)

        def mid(a, b):
            key = (min(a, b), max(a, b))
            if key not in edges:
                edges[key] = len(verts)
                verts.append((verts[a] + verts[b]) / 2)
            return edges[key]

        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            new_faces += [[a, ab, ca], [ab, b, bc], [ca, bc, c], [ab, bc, ca]]
        v, f = np.array(verts), np.array(new_faces)
    v = v / np.linalg.norm(v, axis=1, keepdims=True) * radius + np.asarray(centre)
    return Surface(v, f)


def test_gifti_round_trip(tmp_path):
    s = _icosphere_like()
    s.data["magnE"] = np.linspace(0, 1, len(s.vertices))
    s.data["E"] = np.column_stack([s.vertices[:, 0], -s.vertices[:, 1], s.vertices[:, 2] * 0.5])
    p = write_surface(s, tmp_path / "scalp.surf.gii")
    assert not list(tmp_path.glob(".*tmp*"))  # atomic: no leftovers
    r = read_surface(p)
    np.testing.assert_allclose(r.vertices, s.vertices, atol=1e-4)  # float32 storage
    np.testing.assert_array_equal(r.faces, s.faces)
    np.testing.assert_allclose(r.data["magnE"], s.data["magnE"], rtol=1e-6)
    np.testing.assert_allclose(r.data["E"], s.data["E"], rtol=1e-6)
    # orientation kept: normals point away from the centre
    c = r.vertices.mean(axis=0)
    centres = r.vertices[r.faces].mean(axis=1)
    assert (np.einsum("ij,ij->i", r.face_normals(), centres - c) > 0).all()
    # nibabel sees a standard surface
    import nibabel as nib

    img = nib.load(str(p))
    assert img.darrays[0].intent == nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"]
    assert img.darrays[1].intent == nib.nifti1.intent_codes["NIFTI_INTENT_TRIANGLE"]
    assert img.darrays[2].meta["Name"] == "magnE"


@pytest.mark.parametrize("suffix", [".stl", ".ply", ".obj", ".vtk", ".off"])
def test_meshio_formats(tmp_path, suffix):
    meshio = pytest.importorskip("meshio")
    s = _icosphere_like()
    p = tmp_path / f"surf{suffix}"
    mm = meshio.Mesh(s.vertices, [("triangle", s.faces)])
    meshio.write(p, mm, **({"binary": False} if suffix in (".stl", ".ply") else {}))
    r = read_surface(p)
    assert len(r.faces) == len(s.faces)
    np.testing.assert_allclose(r.face_areas().sum(), s.face_areas().sum(), rtol=1e-5)
    np.testing.assert_allclose(np.sort(r.vertices, axis=0), np.sort(s.vertices, axis=0), atol=1e-4)


def test_freesurfer_tkras_to_scanner(tmp_path):
    import nibabel as nib

    s = _icosphere_like(centre=(0.0, 0.0, 0.0))
    p = tmp_path / "lh.pial"
    nib.freesurfer.write_geometry(str(p), s.vertices, s.faces)
    # a conformed (LIA, 1 mm, 256^3) reference whose scanner frame is shifted and rotated
    shape = (256, 256, 256)
    lia = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]])
    rot = np.array([[np.cos(0.2), -np.sin(0.2), 0, 0], [np.sin(0.2), np.cos(0.2), 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    affine = rot @ lia
    affine[:3, 3] = [140.0, -110.0, 150.0]
    ref = tmp_path / "orig.mgz"
    nib.save(nib.MGHImage(np.zeros(shape, np.uint8), affine), str(ref))
    r = read_surface(p, reference=ref)
    # tkRAS origin is the centre of the grid: voxel n/2 -> scanner
    centre_scanner = affine @ np.array([128, 128, 128, 1.0])
    np.testing.assert_allclose(r.vertices.mean(axis=0), centre_scanner[:3], atol=1e-3)
    # and the conversion is the rigid map vox2ras @ inv(tkr)
    m = tkr_to_scanner(ref)
    np.testing.assert_allclose(r.vertices, s.vertices @ m[:3, :3].T + m[:3, 3], atol=1e-4)
    np.testing.assert_allclose(np.linalg.det(m[:3, :3]), 1.0, atol=1e-9)
    with pytest.warns(UserWarning, match="tkregister RAS"):
        raw = read_surface(p)
    np.testing.assert_allclose(raw.vertices, s.vertices, atol=1e-4)


def test_errors(tmp_path):
    with pytest.raises(InputError, match="nothing.gii: file not found"):
        read_surface(tmp_path / "nothing.gii")
    junk = tmp_path / "junk.surf.gii"
    junk.write_text("not xml")
    with pytest.raises(InputError, match="junk.surf.gii"):
        read_surface(junk)
    other = tmp_path / "lh.unknown"
    other.write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError, match="lh.unknown"):
        read_surface(other)
    with pytest.raises(InputError, match="GIFTI"):
        write_surface(_icosphere_like(), tmp_path / "x.stl")
