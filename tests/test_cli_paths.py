"""The CLI with relative paths (run from another working directory) and the errors of issue 19:
`navigator mesh` on a relative workspace, `prepare --out FILE`, `info` exit codes, `import-mesh`
validation and orientation repair."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from navigator.cli import main
from navigator.core.workspace import Workspace


def _box_mesh_text(flip: bool = False) -> str:
    """Two 10 mm boxes of 6 tetrahedra each (tag 5), gmsh 2.2 ASCII; ``flip`` writes every
    tetrahedron with negative orientation (as some writers do)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "bad_inputs"))
    from make_images_dicom_meshes import _cube_tets, _msh22

    nodes, tets = _cube_tets()
    if flip:
        tets = tets[:, [1, 0, 2, 3]]
    return _msh22(nodes, tets)


def test_mesh_with_relative_workspace_path(tmp_path, monkeypatch, capsys):
    """`navigator mesh sub-01` from the parent folder used to die recording the step
    (FileNotFoundError on sub-01/sub-01/labels/labels.nii.gz) after writing the new mesh."""
    pytest.importorskip("pygalmesh")
    from test_meshing import shells_volume

    ws = Workspace.create(tmp_path / "sub-01")
    vol = shells_volume(radii=(12.0, 16.0, 19.0, 22.0), tags=(1, 2, 3, 5))
    ws.path("labels").parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(vol.data.astype(np.uint8), vol.affine), ws.path("labels"))
    monkeypatch.chdir(tmp_path)
    args = ["mesh", "sub-01", "--cell-size", "3", "--facet-size", "2", "--facet-distance", "0.4",
            "--upsample", "1", "--smooth", "1", "--no-exude", "-q"]
    for t in (1, 2, 3, 5):
        args += ["--tissue-size", f"{t}=3"]
    assert main(args) == 0, capsys.readouterr().err
    rec = Workspace.open("sub-01").step("mesh")
    assert set(rec.inputs) == {"labels/labels.nii.gz"}
    assert {"mesh/head.msh", "mesh/quality.json", "surfaces/scalp.surf.gii"} <= set(rec.outputs)
    assert not (tmp_path / "sub-01" / ".staging").exists()
    assert main(args) == 0  # current: not re-meshed
    assert Workspace.open("sub-01").step("mesh").completed == rec.completed


def test_prepare_out_existing_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    img = np.random.default_rng(0).integers(0, 100, (8, 8, 8)).astype(np.int16)
    nib.save(nib.Nifti1Image(img, np.eye(4)), "t1.nii.gz")
    (tmp_path / "taken.txt").write_text("user data")
    assert main(["prepare", "t1.nii.gz", "--out", "taken.txt"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "taken.txt: --out exists and is a file" in err
    assert (tmp_path / "taken.txt").read_text() == "user data"


def test_info_exit_code_tells_whether_the_image_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 1), np.int16), np.eye(4)), "flat.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((6, 6, 6, 3), np.int16), np.eye(4)), "rest.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((6, 6, 6), np.int16), np.eye(4)), "ok.nii.gz")
    assert main(["info", "flat.nii.gz"]) == 1
    captured = capsys.readouterr()
    assert "2-D image" in captured.err and "PROBLEM" in captured.out  # still described on stdout
    assert main(["info", "flat.nii.gz", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"]
    assert main(["info", "rest.nii.gz"]) == 0  # 4-D loads where a series is expected (fMRI)
    assert main(["info", "ok.nii.gz"]) == 0


def test_import_mesh_relative_paths_and_orientation_repair(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "head.msh").write_text(_box_mesh_text(flip=True))
    assert main(["import-mesh", "in/head.msh", "--out", "ws", "-q"]) == 0, capsys.readouterr().err
    from navigator.io.gmsh import read_msh

    mesh = read_msh(tmp_path / "ws" / "mesh" / "head.msh")
    assert mesh.n_tets == 12 and np.all(mesh.tet_volumes() > 0)  # repaired on import
    assert np.isclose(mesh.tet_volumes().sum(), 2000.0)
    ws = Workspace.open("ws")
    assert "mesh/head.msh" in ws.step("mesh").outputs


def test_import_mesh_refuses_degenerate_and_nan_meshes(tmp_path, capsys):
    text = _box_mesh_text()
    lines = text.splitlines()
    nan_text = "\n".join(line if not line.startswith("5 ") or len(line.split()) != 4 else "5 nan 0 10"
                         for line in lines)
    (tmp_path / "nan.msh").write_text(nan_text)
    assert main(["import-mesh", str(tmp_path / "nan.msh"), "--out", str(tmp_path / "w1")]) == 1
    assert "node 5 has non-finite coordinates" in capsys.readouterr().err
    assert not (tmp_path / "w1").exists()
    flat = text.replace("$EndElements", "13 4 2 5 5 1 3 5 7\n$EndElements").replace("\n12\n1 4", "\n13\n1 4")
    (tmp_path / "flat.msh").write_text(flat)
    assert main(["import-mesh", str(tmp_path / "flat.msh"), "--out", str(tmp_path / "w2")]) == 1
    assert "tetrahedron 13 (nodes 1 3 5 7) has zero volume" in capsys.readouterr().err
    assert not (tmp_path / "w2").exists()


def test_convert_with_relative_paths(tmp_path, monkeypatch, tmp_dicom_series):
    data = np.random.default_rng(2).integers(0, 500, (10, 9, 6)).astype(np.int16)
    tmp_dicom_series(tmp_path / "dcm", data)
    monkeypatch.chdir(tmp_path)
    assert main(["convert", "dcm", "--out", "out/t1.nii.gz", "-q"]) == 0
    np.testing.assert_array_equal(np.asarray(nib.load("out/t1.nii.gz").dataobj), data)


def test_workspace_commands_from_the_parent_folder(tmp_path, monkeypatch, capsys):
    """A session on a sphere head with relative paths only: import, fiducials (EEG positions
    step), target, TMS simulation with a relative --out recorded under the workspace."""
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.io.gmsh import write_msh

    write_msh(concentric_sphere_mesh(radii=(85.0, 90.0, 95.0), tags=(3, 4, 5), size=14.0), tmp_path / "sphere.msh")
    monkeypatch.chdir(tmp_path)
    run = [["import-mesh", "sphere.msh", "--out", "ws"], ["workspace", "ws"],
           ["fiducials", "ws", "--nasion", "0,95,0", "--inion", "0,-95,0", "--lpa", "-95,0,0", "--rpa", "95,0,0"],
           ["simulate", "tms", "ws", "--coil", "Magstim_D70", "--target", "eeg:Cz", "--intensity", "50",
            "--out", "ws/simulations/cz", "--no-nifti"]]
    for argv in run:
        assert main([*argv, "-q"]) == 0, (argv, capsys.readouterr().err)
    assert main(["target", "ws", "eeg:F3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "eeg:F3"
    ws = Workspace.open("ws", verify_hashes=True)
    assert {"mesh", "head-coordinates", "simulate_tms:simulations/cz"} <= set(ws.steps())
    assert "simulations/cz/summary.json" in ws.step("simulate_tms:simulations/cz").outputs
    assert not (tmp_path / "ws" / ".staging").exists()
