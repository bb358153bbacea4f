"""plan.json: exact save/load, schema version, validation, atomic writes, image block."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from test_export_support import make_plan

from navigator.core.errors import InputError
from navigator.export.plan import (
    PLAN_SCHEMA_VERSION,
    CoilPose,
    ImageInfo,
    Plan,
    Target,
    load_plan,
    save_plan,
    validate_plan,
)


def test_save_load_is_exact(tmp_path):
    plan, _ = make_plan(tmp_path)
    path = save_plan(plan, tmp_path / "plans" / "p" / "plan.json")
    back = load_plan(path)
    assert back.name == plan.name and back.subject == "sub-asym"
    for a, b in zip(plan.coil_poses, back.coil_poses):
        np.testing.assert_array_equal(a.matrix, b.matrix)  # bit for bit
        assert (a.didt, a.mso, a.target, a.coil) == (b.didt, b.mso, b.target, b.coil)
    for a, b in zip(plan.targets, back.targets):
        np.testing.assert_array_equal(a.position, b.position)
    np.testing.assert_array_equal(back.image.affine, plan.image.affine)
    assert back.image.sha256 == plan.image.sha256 and back.image.quatern == plan.image.quatern
    assert back.montages[0].electrodes[0].size_mm == (50.0, 50.0)
    d = json.loads(path.read_text())
    assert d["schema_version"] == PLAN_SCHEMA_VERSION and d["coordinate_system"] == "RAS"
    assert d["coil_axes"] == "navigator" and d["units"] == "mm"
    assert [p.name for p in path.parent.iterdir()] == ["plan.json"]  # no temp files left


def test_image_info_from_nifti(tmp_path):
    _, t1 = make_plan(tmp_path)
    info = ImageInfo.from_nifti(t1)
    hdr = nib.load(str(t1)).header
    assert info.shape == (40, 44, 36) and info.sform_code == 1 and info.qform_code == 1
    assert info.pixdim[1:] == (4.0, 4.5, 5.0)
    assert info.qoffset == (float(hdr["qoffset_x"]), float(hdr["qoffset_y"]), float(hdr["qoffset_z"]))
    assert nib.aff2axcodes(info.affine) == ("L", "P", "S")
    with pytest.raises(InputError, match="cannot read NIfTI"):
        ImageInfo.from_nifti(tmp_path / "nope.nii.gz")


def _plan_json(tmp_path, **changes):
    plan, _ = make_plan(tmp_path, n_random=1)
    d = plan.to_json()
    d.update(changes)
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(d))
    return p, d


def test_newer_schema_refused(tmp_path):
    p, _ = _plan_json(tmp_path, schema_version=PLAN_SCHEMA_VERSION + 1)
    with pytest.raises(InputError, match="newer than this navigator"):
        load_plan(p)


def test_bad_files_name_the_file(tmp_path):
    p = tmp_path / "plan.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="plan.json: plan is not valid JSON"):
        load_plan(p)
    p.write_text(json.dumps({"schema_version": 1, "kind": "something-else"}))
    with pytest.raises(InputError, match="not a navigator plan"):
        load_plan(p)
    p.write_text(json.dumps({"schema_version": 1, "targets": [{"name": "a", "position": [1, 2]}]}))
    with pytest.raises(InputError, match="malformed plan"):
        load_plan(p)


def test_validation(tmp_path):
    ok = np.eye(4)
    sheared = np.eye(4)
    sheared[0, 1] = 0.1
    mirrored = np.diag([1.0, 1.0, -1.0, 1.0])
    for pose, msg in ((sheared, "not a rigid pose"), (mirrored, "not a rigid pose")):
        with pytest.raises(InputError, match=msg):
            validate_plan(Plan("p", coil_poses=[CoilPose("a", pose)]))
    with pytest.raises(InputError, match="duplicate coil pose"):
        validate_plan(Plan("p", coil_poses=[CoilPose("a", ok), CoilPose("a", ok)]))
    with pytest.raises(InputError, match="unknown target"):
        validate_plan(Plan("p", coil_poses=[CoilPose("a", ok, target="T")]))
    with pytest.raises(InputError, match="exceeds 100"):
        validate_plan(Plan("p", coil_poses=[CoilPose("a", ok, mso=120)]))
    with pytest.raises(InputError, match="coordinate_system must be 'RAS'"):
        validate_plan(Plan("p", coordinate_system="LPS"))
    with pytest.raises(InputError, match="unit vector"):
        validate_plan(Plan("p", targets=[Target("t", [0, 0, 0], direction=[1, 1, 0])]))
    with pytest.raises(ValueError, match="finite"):
        Target("t", [0, np.nan, 0])
    p, d = _plan_json(tmp_path)
    d["coil_poses"][0]["matrix"][0][0] = 2.0
    p.write_text(json.dumps(d))
    with pytest.raises(InputError, match="plan.json: coil pose .* not a rigid pose"):
        load_plan(p)


def test_empty_plan_is_not_exported(tmp_path):
    from navigator.core.errors import NavigatorError
    from navigator.export import export_plan

    with pytest.raises(NavigatorError, match="nothing|no targets"):
        export_plan(Plan("empty"), "csv", tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()
