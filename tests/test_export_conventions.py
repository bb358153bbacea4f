"""Coil-axis and coordinate conventions per system, checked against snippets written BY HAND.

The known pose (see ``known_pose``): coil centre (-40.5, 30.25, 60) mm RAS, our axes
z = (0,0,-1) into the head, y = (0,-1,0) handle, x = y cross z = (1,0,0).

Worked out by hand from FIELD_NOTES:
* Localite: x_loc = z = (0,0,-1), y_loc = -y = (0,1,0), z_loc = x = (1,0,0); rows of the 4x4:
  [0 0 1 -40.5] [0 1 0 30.25] [-1 0 0 60] [0 0 0 1]. LPS negates rows 0 and 1.
* Brainsight: x_b = -x = (-1,0,0), y_b = y = (0,-1,0), z_b = -z = (0,0,1); m{i}n{j} = component j
  of axis i -> "-1 0 0 | 0 -1 0 | 0 0 1".
* ANT visor2 / CSV / Slicer: our axes as they are (Slicer orientation row-major, columns = axes;
  LPS: diag(-1,-1,1) @ R = diag(-1, 1, -1)).
* InVesalius: R = diag(1,-1,-1) is 180 degrees about x: static-xyz Euler (180, 0, 0).
* fcsv: angle-axis 180 degrees about x (RAS); in LPS diag(-1,1,-1) = 180 degrees about y.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from test_export_support import SHAPE, known_pose, make_plan

from navigator.export import export_plan, import_plan
from navigator.export.plan import CoilPose, Target


@pytest.fixture()
def known_plan(tmp_path):
    plan, _ = make_plan(tmp_path)
    plan.coil_poses = [CoilPose("coil", known_pose())]
    plan.targets = [Target("tgt", [-38.0, 44.0, 26.0])]
    plan.montages = []
    return plan


def _roundtrip_equal(plan, path):
    back = import_plan(path)
    np.testing.assert_allclose(back.coil_poses[0].matrix, known_pose(), atol=1e-12, rtol=0)


def test_localite_ras_by_hand(known_plan, tmp_path):
    out = export_plan(known_plan, "localite", tmp_path / "c.xml", "ras")
    text = out.read_text()
    assert '<InstrumentMarkerList coordinateSpace="RAS">' in text
    assert ('<Marker additionalInformation="" color="#ff0000" description="coil" set="true">\n'
            '            <Matrix4D data00="0.0" data01="0.0" data02="1.0" data03="-40.5" '
            'data10="0.0" data11="1.0" data12="0.0" data13="30.25" '
            'data20="-1.0" data21="0.0" data22="0.0" data23="60.0" '
            'data30="0.0" data31="0.0" data32="0.0" data33="1.0"/>') in text
    _roundtrip_equal(known_plan, out)


def test_localite_lps_by_hand(known_plan, tmp_path):
    out = export_plan(known_plan, "localite", tmp_path / "c.xml", "lps")
    text = out.read_text()
    assert '<InstrumentMarkerList coordinateSpace="LPS">' in text
    assert ('<Matrix4D data00="0.0" data01="0.0" data02="-1.0" data03="40.5" '
            'data10="0.0" data11="-1.0" data12="0.0" data13="-30.25" '
            'data20="-1.0" data21="0.0" data22="0.0" data23="60.0" '
            'data30="0.0" data31="0.0" data32="0.0" data33="1.0"/>') in text
    _roundtrip_equal(known_plan, out)


def test_localite_entry_target_by_hand(known_plan, tmp_path):
    known_plan.targets[0].entry = np.array([-50.0, 55.5, 40.0])
    out = export_plan(known_plan, "localite-entrytarget", tmp_path / "e.xml", "lps")
    text = out.read_text()
    assert '<EntryTargetList coordinateSpace="LPS">' in text
    assert '<ColVec3D data0="50.0" data1="-55.5" data2="40.0"/>' in text  # entry, LPS
    assert '<ColVec3D data0="38.0" data1="-44.0" data2="26.0"/>' in text  # target, LPS
    back = import_plan(out)
    np.testing.assert_array_equal(back.targets[0].position, [-38.0, 44.0, 26.0])


def test_brainsight_by_hand(known_plan, tmp_path):
    out = export_plan(known_plan, "brainsight", tmp_path / "b.txt")
    lines = out.read_text().splitlines()
    assert lines[0] == "# Version: 14"
    assert lines[1] == "# Coordinate system: NIfTI:Q:Aligned"
    assert lines[3] == "# Units: millimetres, degrees, milliseconds, and microvolts"
    assert lines[4] == "# Encoding: UTF-8"
    assert lines[5].startswith("# Notes: ") and known_plan.image.sha256 in lines[5]
    assert lines[6] == "# Target Name\tLoc. X\tLoc. Y\tLoc. Z\tm0n0\tm0n1\tm0n2\tm1n0\tm1n1\tm1n2\tm2n0\tm2n1\tm2n2"
    assert "coil\t-40.5\t30.25\t60.0\t-1.0\t0.0\t0.0\t0.0\t-1.0\t0.0\t0.0\t0.0\t1.0" in lines
    assert "tgt\t-38.0\t44.0\t26.0" + "\t(null)" * 9 in lines
    _roundtrip_equal(known_plan, out)


def test_ant_visor2_by_hand(known_plan, tmp_path):
    out = export_plan(known_plan, "ant-visor2", tmp_path / "a.mrk")
    doc = json.loads(out.read_text())
    assert doc["Configuration"]["SourceInfo"]["AppName"] == "navigator"
    info = doc["Configuration"]["AssociatedImageInfo"]
    img = known_plan.image
    assert info["NIfTI_quatern"] == list(img.quatern) and info["NIfTI_qoffset"] == list(img.qoffset)
    assert info["NIfTI_pixdim"][1:] == [4.0, 4.5, 5.0]
    ct = doc["TargetMarkers"][0]["CoilTarget"]
    assert ct == {
        "Name": "coil", "CoordinateSystem": "ASSOCIATED_IMAGE", "PositionalUnit": "mm",
        "CoilAxesConvention": "simnibs",
        "CoilPose": {"RigidTransformMatrix4x4": [[1.0, 0.0, 0.0, -40.5], [0.0, -1.0, 0.0, 30.25],
                                                 [0.0, 0.0, -1.0, 60.0], [0.0, 0.0, 0.0, 1.0]]},
    }
    _roundtrip_equal(known_plan, out)


def test_ant_visor2_image_block_matches_nifti_header(known_plan):
    """quatern/qoffset/pixdim rebuild the T1's qform (so visor2 can verify the image)."""
    import nibabel as nib

    img = known_plan.image
    b, c, d = img.quatern
    a = math.sqrt(max(0.0, 1 - b * b - c * c - d * d))
    r = np.array([[a*a+b*b-c*c-d*d, 2*(b*c-a*d), 2*(b*d+a*c)],
                  [2*(b*c+a*d), a*a+c*c-b*b-d*d, 2*(c*d-a*b)],
                  [2*(b*d-a*c), 2*(c*d+a*b), a*a+d*d-c*c-b*b]])
    qfac = img.pixdim[0]
    m = r @ np.diag([img.pixdim[1], img.pixdim[2], qfac * img.pixdim[3]])
    q = nib.load(img.path).header.get_qform()
    np.testing.assert_allclose(m, q[:3, :3], atol=1e-5)
    np.testing.assert_allclose(img.qoffset, q[:3, 3], atol=1e-5)


def test_invesalius_by_hand(known_plan, tmp_path):
    out = export_plan(known_plan, "invesalius", tmp_path / "m.mkss")
    lines = out.read_text().splitlines()
    assert lines[0] == "##INVESALIUS3_MARKER_FILE_5"
    header = next(csv.reader([lines[1]], delimiter="\t"))
    assert header[:12] == ["marker_id", "x", "y", "z", "alpha", "beta", "gamma", "r", "g", "b", "size", "label"]
    assert header[-6:] == ["x_world", "y_world", "z_world", "alpha_world", "beta_world", "gamma_world"]
    assert lines[1].startswith('"marker_id"\t"x"\t"y"')
    assert lines[2].endswith("\t3\t0.0\t0.0\t-40.5\t30.25\t60.0\t180.0\t0.0\t0.0")  # coil target, Euler sxyz
    assert lines[3].endswith("\t1\t0.0\t0.0\t-38.0\t44.0\t26.0\tNone\tNone\tNone")  # landmark
    _roundtrip_equal(known_plan, out)


def test_invesalius_internal_columns_follow_invesalius_conversion(known_plan, tmp_path):
    """Re-implement InVesalius's internal -> world conversion (y reversed, affine without scaling)
    and check that the internal columns land on the world ones."""
    from navigator.export.conventions import matrix_from_euler_sxyz

    out = export_plan(known_plan, "invesalius", tmp_path / "m.mkss")
    rows = list(csv.reader(out.read_text().splitlines()[1:], delimiter="\t"))
    h, r = rows[0], rows[1]
    v = {k: r[i] for i, k in enumerate(h)}
    aff = known_plan.image.affine
    spacing = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
    s = aff @ np.diag([*(1 / spacing), 1])
    vox = np.array([float(v["x"]), spacing[1] * (SHAPE[1] - 1) - float(v["y"]), float(v["z"])])
    m_inv = np.eye(4)
    m_inv[:3, :3] = matrix_from_euler_sxyz(*np.radians([float(v[k]) for k in ("alpha", "beta", "gamma")]))
    m_inv[:3, 3] = vox
    world = s @ m_inv
    # the NIfTI header stores the affine in float32, so its rotation is orthonormal only to ~1e-8
    np.testing.assert_allclose(world, known_pose(), atol=1e-6)


def test_slicer_json_by_hand(known_plan, tmp_path):
    for space, pos, orient in (("ras", [-40.5, 30.25, 60.0], [1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0]),
                               ("lps", [40.5, -30.25, 60.0], [-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0])):
        out = export_plan(known_plan, "slicer", tmp_path / f"s_{space}.mrk.json", space)
        doc = json.loads(out.read_text())
        assert doc["@schema"].endswith("markups-schema-v1.0.3.json#")
        poses = [m for m in doc["markups"] if m["name"] == "navigator coil poses"][0]
        assert poses["coordinateSystem"] == space.upper() and poses["coordinateUnits"] == "mm"
        cp = poses["controlPoints"][0]
        assert cp["label"] == "coil" and cp["position"] == pos and cp["orientation"] == orient
        _roundtrip_equal(known_plan, out)


def test_slicer_fcsv_by_hand(known_plan, tmp_path):
    out = export_plan(known_plan, "slicer-fcsv", tmp_path / "f.fcsv", "lps")
    lines = out.read_text().splitlines()
    assert lines[:3] == ["# Markups fiducial file version = 4.11", "# CoordinateSystem = LPS",
                         "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID"]
    assert "vtkMRMLMarkupsFiducialNode_1,40.5,-30.25,60.0,180.0,0.0,1.0,0.0,1,1,1,coil,coil pose," in lines
    assert "vtkMRMLMarkupsFiducialNode_2,38.0,-44.0,26.0,0.0,0.0,0.0,1.0,1,1,1,tgt,target," in lines
    _roundtrip_equal(known_plan, out)
    out = export_plan(known_plan, "slicer-fcsv", tmp_path / "f.fcsv", "ras")
    assert "vtkMRMLMarkupsFiducialNode_1,-40.5,30.25,60.0,180.0,1.0,0.0,0.0,1,1,1,coil,coil pose," in out.read_text()


def test_csv_by_hand(known_plan, tmp_path):
    out = export_plan(known_plan, "csv", tmp_path / "p.csv", "ras")
    text = out.read_text()
    assert "# coordinate_system: RAS " in text
    assert "# coil_axes: navigator: x = y cross z, y = handle direction, z = coil normal into the head" in text
    assert f"# image_sha256: {known_plan.image.sha256}" in text
    assert "\ncoil_pose,coil,-40.5,30.25,60.0,1.0,0.0,0.0,0.0,-1.0,0.0,0.0,0.0,-1.0," in text
    _roundtrip_equal(known_plan, out)


def test_json_states_system_and_axes(known_plan, tmp_path):
    out = export_plan(known_plan, "json", tmp_path / "p.json", "lps")
    doc = json.loads(out.read_text())
    assert doc["coordinate_system"] == "LPS" and doc["coil_axes"] == "navigator" and doc["units"] == "mm"
    assert doc["image"]["sha256"] == known_plan.image.sha256 and doc["subject"] == "sub-asym"
    assert doc["coil_poses"][0]["matrix"][0] == [-1.0, 0.0, 0.0, 40.5]
    _roundtrip_equal(known_plan, out)


def test_fixed_space_formats_refuse_lps(known_plan, tmp_path):
    from navigator.core.errors import NavigatorError

    for fmt in ("brainsight", "ant-visor2", "invesalius"):
        with pytest.raises(NavigatorError, match="fixed coordinate space"):
            export_plan(known_plan, fmt, tmp_path / "x", "lps")
