"""Every format: export -> import reproduces poses and targets; left/right safety; rigid rotations."""

from __future__ import annotations

import csv
import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from test_export_support import make_plan

from navigator.export import export_plan, import_plan
from navigator.export.conventions import (
    brainsight_to_ours,
    euler_sxyz_from_matrix,
    localite_to_ours,
    matrix_from_euler_sxyz,
    rotation_error,
)
from navigator.export.conventions import (
    fmt as fmt_num,
)
from navigator.export.registry import get_plugin, plugins

POS_TOL = 1e-6  # mm
ROT_TOL = 1e-9

# (format, space, suffix)
CASES = [
    ("localite", "ras", ".xml"), ("localite", "lps", ".xml"),
    ("localite-entrytarget", "ras", ".xml"), ("localite-entrytarget", "lps", ".xml"),
    ("brainsight", None, ".txt"),
    ("ant-visor2", None, ".mrk"),
    ("invesalius", None, ".mkss"),
    ("slicer", "lps", ".mrk.json"), ("slicer", "ras", ".mrk.json"),
    ("slicer-fcsv", "lps", ".fcsv"), ("slicer-fcsv", "ras", ".fcsv"),
    ("csv", "ras", ".csv"), ("csv", "lps", ".csv"),
    ("json", "ras", ".json"), ("json", "lps", ".json"),
]


@pytest.fixture(scope="module")
def plan_and_t1(tmp_path_factory):
    return make_plan(tmp_path_factory.mktemp("subject"))


_LONG_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d{4,}(?:e[-+]?\d+)?(?![\w.])|(?<![\w.])-?\d+(?:\.\d+)?e[-+]?\d+(?![\w.])")


@pytest.mark.parametrize("fmt,space,suffix", CASES)
def test_round_trip_with_vendor_rounding(plan_and_t1, tmp_path, fmt, space, suffix):
    """Every format still imports when a program re-saves it with 3 decimals (as Brainsight does):
    poses land within 5e-4 mm and 0.05 degree (angle-axis .fcsv: 0.1), reported as re-orthonormalized."""
    from scipy.spatial.transform import Rotation

    plan, _ = plan_and_t1
    out = export_plan(plan, fmt, tmp_path / f"plan{suffix}", space)
    text = out.read_text()
    rounded = _LONG_NUMBER.sub(lambda m: f"{float(m.group(0)):.3f}", text)
    assert rounded != text
    f = tmp_path / f"rounded{suffix}"
    f.write_text(rounded)
    back = import_plan(f)
    if "coil_poses" in get_plugin(fmt).carries:
        for a, b in zip(plan.coil_poses, back.coil_poses):
            assert np.abs(a.matrix[:3, 3] - b.matrix[:3, 3]).max() <= 5e-4 + 1e-9, a.name
            angle = math.degrees(Rotation.from_matrix(a.matrix[:3, :3].T @ b.matrix[:3, :3]).magnitude())
            # .fcsv stores angle-axis: a 3-decimal axis is off by up to ~9e-4 rad, so its bound is looser
            assert angle < (0.1 if fmt == "slicer-fcsv" else 0.05), (a.name, angle)
            assert np.abs(b.matrix[:3, :3].T @ b.matrix[:3, :3] - np.eye(3)).max() < 1e-12
        if fmt not in ("invesalius", "slicer-fcsv"):  # angles / angle-axis: rounding keeps a rotation
            assert back.pose_corrections
    for t in plan.targets:
        got = back.target(t.name)
        if got is not None:
            assert np.abs(got.position - t.position).max() <= 5e-4 + 1e-9


def test_every_exporter_is_covered():
    assert {c[0] for c in CASES} == {p.name for p in plugins("exporter")}


@pytest.mark.parametrize("fmt,space,suffix", CASES)
def test_round_trip(plan_and_t1, tmp_path, fmt, space, suffix):
    plan, _ = plan_and_t1
    out = export_plan(plan, fmt, tmp_path / f"plan{suffix}", space)
    back = import_plan(out)  # format detected from content
    carries = get_plugin(fmt).carries
    if "coil_poses" in carries:
        assert [p.name for p in back.coil_poses] == [p.name for p in plan.coil_poses]
        for a, b in zip(plan.coil_poses, back.coil_poses):
            assert np.abs(a.matrix[:3, 3] - b.matrix[:3, 3]).max() <= POS_TOL, a.name
            assert np.abs(a.matrix[:3, :3] - b.matrix[:3, :3]).max() <= ROT_TOL, a.name
            np.testing.assert_array_equal(b.matrix[3], [0, 0, 0, 1])
    if "targets" in carries:
        got = {t.name: t for t in back.targets}
        expected = plan.targets if fmt != "localite-entrytarget" else [
            t for t in plan.targets if t.entry is not None or any(p.target == t.name for p in plan.coil_poses)]
        assert len(expected) >= 2 and set(got) == {t.name for t in expected}
        for t in expected:
            assert np.abs(got[t.name].position - t.position).max() <= POS_TOL
    if "entries" in carries:
        got = {t.name: t for t in back.targets}
        assert np.abs(got["vertex"].entry - plan.targets[2].entry).max() <= POS_TOL
        if fmt == "localite-entrytarget":  # entry = centre of the pose aimed at the target
            np.testing.assert_allclose(got["L-DLPFC"].entry, plan.coil_poses[0].centre, atol=POS_TOL, rtol=0)
        else:  # plain formats reproduce the plan as it is
            assert got["L-DLPFC"].entry is None
            np.testing.assert_allclose(got["L-DLPFC"].direction, plan.targets[0].direction, atol=1e-12, rtol=0)
    if "montages" in carries:
        assert back.montages[0].electrodes[1].current_ma == -2.0
        np.testing.assert_allclose(back.montages[0].electrodes[0].position, [-40.0, 45.0, 45.0], atol=POS_TOL)


def _file_x_of_left_target(fmt: str, space: str | None, path) -> list[float]:
    """x coordinate(s) of the left-DLPFC items, parsed independently of navigator's readers."""
    text = path.read_text()
    if fmt == "localite":
        m = [e for e in ET.fromstring(text).iter("InstrumentMarker") if e.find("Marker").get("description") == "L-DLPFC coil"]
        return [float(m[0].find(".//Matrix4D").get("data03"))]
    if fmt == "localite-entrytarget":
        root = ET.fromstring(text)
        tgt = [e for e in root.iter("Target") if e.find("Marker").get("description") == "L-DLPFC"][0]
        ent = [e for e in root.iter("Entry") if e.get("index") == tgt.get("index")][0]
        return [float(tgt.find(".//ColVec3D").get("data0")), float(ent.find(".//ColVec3D").get("data0"))]
    if fmt == "brainsight":
        rows = [line.split("\t") for line in text.splitlines() if line.startswith("L-DLPFC")]
        return [float(r[1]) for r in rows]
    if fmt == "ant-visor2":
        return [tm["CoilTarget"]["CoilPose"]["RigidTransformMatrix4x4"][0][3]
                for tm in json.loads(text)["TargetMarkers"] if tm["CoilTarget"]["Name"] == "L-DLPFC coil"]
    if fmt == "invesalius":
        lines = text.splitlines()[1:]
        rows = list(csv.reader(lines, delimiter="\t"))
        col = rows[0].index("x_world")
        return [float(r[col]) for r in rows[1:] if r[rows[0].index("label")].startswith("L-DLPFC")]
    if fmt == "slicer":
        return [cp["position"][0] for mk in json.loads(text)["markups"] for cp in mk["controlPoints"]
                if cp["label"].startswith("L-DLPFC")]
    if fmt == "slicer-fcsv":
        rows = list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))
        return [float(r[1]) for r in rows if r[11].startswith("L-DLPFC")]
    if fmt == "csv":
        rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
        return [float(r["x"]) for r in rows if r["name"].startswith("L-DLPFC")]
    if fmt == "json":
        d = json.loads(text)
        return [t["position"][0] for t in d["targets"] if t["name"] == "L-DLPFC"] + [
            p["matrix"][0][3] for p in d["coil_poses"] if p["name"] == "L-DLPFC coil"]
    raise AssertionError(fmt)


@pytest.mark.parametrize("fmt,space,suffix", CASES)
def test_left_target_stays_left(plan_and_t1, tmp_path, fmt, space, suffix):
    """The target is computed from the image's left-hemisphere blob (LPS-ordered, oblique voxels)."""
    plan, _ = plan_and_t1
    assert plan.targets[0].position[0] < -20  # the blob is in the subject's left hemisphere (RAS x < 0)
    out = export_plan(plan, fmt, tmp_path / f"plan{suffix}", space)
    xs = _file_x_of_left_target(fmt, space, out)
    assert xs, "left target not found in the file"
    effective = space or "ras"  # brainsight / ant / invesalius are RAS (NIfTI world)
    for x in xs:
        assert (x < 0) if effective == "ras" else (x > 0), (fmt, space, xs)


@pytest.mark.parametrize("fmt,space,suffix", [c for c in CASES if c[0] != "localite-entrytarget"])
def test_exported_rotations_are_rigid_and_right_handed(plan_and_t1, tmp_path, fmt, space, suffix):
    """Parse each file's own rotation representation and check orthonormality and det = +1."""
    plan, _ = plan_and_t1
    out = export_plan(plan, fmt, tmp_path / f"plan{suffix}", space)
    text = out.read_text()
    mats = []
    if fmt == "localite":
        for m in ET.fromstring(text).iter("Matrix4D"):
            mats.append(np.array([[float(m.get(f"data{i}{j}")) for j in range(3)] for i in range(3)]))
    elif fmt == "brainsight":
        for line in text.splitlines():
            if not line.startswith("#") and "(null)" not in line:
                v = [float(x) for x in line.split("\t")[4:13]]
                mats.append(np.array(v).reshape(3, 3).T)  # rows m{i} are axes -> columns
    elif fmt == "ant-visor2":
        mats = [np.array(t["CoilTarget"]["CoilPose"]["RigidTransformMatrix4x4"])[:3, :3]
                for t in json.loads(text)["TargetMarkers"]]
    elif fmt == "invesalius":
        rows = list(csv.reader(text.splitlines()[1:], delimiter="\t"))
        h = rows[0]
        for r in rows[1:]:
            for cols in (("alpha", "beta", "gamma"), ("alpha_world", "beta_world", "gamma_world")):
                if r[h.index(cols[0])] != "None":
                    mats.append(matrix_from_euler_sxyz(*np.radians([float(r[h.index(c)]) for c in cols])))
    elif fmt == "slicer":
        mats = [np.array(cp["orientation"]).reshape(3, 3) for mk in json.loads(text)["markups"]
                for cp in mk["controlPoints"]]
    elif fmt == "csv":
        rows = list(csv.DictReader(line for line in text.splitlines() if not line.startswith("#")))
        mats = [np.array([float(r[f"r{i}{j}"]) for i in range(3) for j in range(3)]).reshape(3, 3)
                for r in rows if r["kind"] == "coil_pose"]
    elif fmt == "json":
        mats = [np.array(p["matrix"])[:3, :3] for p in json.loads(text)["coil_poses"]]
    elif fmt == "slicer-fcsv":  # angle-axis: the axis must be a unit vector (any angle is a rotation)
        rows = list(csv.reader(line for line in text.splitlines() if not line.startswith("#")))
        for r in rows:
            assert abs(np.linalg.norm([float(v) for v in r[5:8]]) - 1) < 1e-12
        mats = [np.eye(3)]
    else:
        pytest.skip(f"{fmt} stores points only")
    assert mats
    for m in mats:
        err, det = rotation_error(m)
        assert err < 1e-12 and abs(det - 1) < 1e-12


def test_axis_conversions_are_involutions_and_rigid():
    rng = np.random.default_rng(0)
    from scipy.spatial.transform import Rotation

    for r in Rotation.random(50, random_state=3).as_matrix():
        m = np.eye(4)
        m[:3, :3] = r
        m[:3, 3] = rng.normal(size=3)
        for f in (localite_to_ours, brainsight_to_ours):
            np.testing.assert_array_equal(f(f(m)), m)
            err, det = rotation_error(f(m))
            assert err < 1e-12 and abs(det - 1) < 1e-12


def test_euler_sxyz_precision_including_gimbal_lock():
    """Document the precision of the InVesalius Euler representation (written with repr)."""
    from scipy.spatial.transform import Rotation

    rots = list(Rotation.random(2000, random_state=7).as_matrix())
    for b in (90.0, -90.0, 90 - 1e-7, -90 + 1e-5, 89.999):
        for a, g in ((10.0, 20.0), (-170.0, 35.0), (0.0, 0.0)):
            rots.append(matrix_from_euler_sxyz(*np.radians([a, b, g])))
    worst = 0.0
    for r in rots:
        a, b, g = euler_sxyz_from_matrix(r)
        # through degrees and text, as the .mkss file does
        back = matrix_from_euler_sxyz(*(math.radians(float(fmt_num(math.degrees(x)))) for x in (a, b, g)))
        worst = max(worst, float(np.abs(back - r).max()))
    assert worst < 1e-12, worst
    # and it agrees with scipy's extrinsic 'xyz' convention
    r = Rotation.from_euler("xyz", [0.3, -0.7, 1.9])
    np.testing.assert_allclose(matrix_from_euler_sxyz(0.3, -0.7, 1.9), r.as_matrix(), atol=1e-15)


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IXI = SHARED / "ixi" / "IXI015-HH-1258_T1.nii.gz"


@pytest.mark.shared_data
@pytest.mark.skipif(not IXI.exists(), reason="needs ../shared/data (IXI T1)")
def test_real_t1_left_target_all_formats(tmp_path):
    """The IXI T1 is stored sagittally (P, S, R): a left target has a LOW index on the R axis."""
    import nibabel as nib
    from test_export_support import pose_on_scalp

    from navigator.export.plan import CoilPose, ImageInfo, Plan, Target
    from navigator.export.safety import sform_qform_warning

    img = nib.load(str(IXI))
    info = ImageInfo.from_nifti(IXI)
    assert sform_qform_warning(info) is None
    data = np.asarray(img.dataobj, dtype=float)
    ijk_c = np.argwhere(data > np.percentile(data, 60)).mean(axis=0)
    centre = img.affine[:3, :3] @ ijk_c + img.affine[:3, 3]
    target = centre + np.array([-38.0, 30.0, 25.0])
    ijk_t = np.linalg.solve(img.affine[:3, :3], target - img.affine[:3, 3])
    r_axis = nib.aff2axcodes(img.affine).index("R")
    assert ijk_t[r_axis] < ijk_c[r_axis]  # the image itself agrees that the target is on the left
    pose = pose_on_scalp(target, centre)
    plan = Plan("ixi", subject="IXI015", image=info, targets=[Target("L-DLPFC", target)],
                coil_poses=[CoilPose("L-DLPFC coil", pose, target="L-DLPFC")])
    for fmt, space, suffix in CASES:
        out = export_plan(plan, fmt, tmp_path / f"p_{fmt}_{space}{suffix}", space)
        xs = _file_x_of_left_target(fmt, space, out)
        assert xs and all((x < 0) if (space or "ras") == "ras" else (x > 0) for x in xs), (fmt, space, xs)
        back = import_plan(out)
        if back.coil_poses:
            np.testing.assert_allclose(back.coil_poses[0].matrix, pose, atol=1e-9, rtol=0)
