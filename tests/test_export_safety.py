"""Malicious XML refused without reading files; image-hash check; sform/qform warning."""

from __future__ import annotations

import shutil
import sys
import time

import nibabel as nib
import numpy as np
import pytest
from test_export_support import make_plan

from navigator.cli import main
from navigator.core.errors import InputError, NavigatorError
from navigator.export import export_plan, import_plan, save_plan
from navigator.export.plan import ImageInfo
from navigator.export.pulses import read_pulse_log
from navigator.export.safety import check_plan_image, parse_xml, sform_qform_warning

_OPENED: list[str] = []
_WATCH = {"on": False}


def _audit(event, args):
    if _WATCH["on"] and event == "open" and args and isinstance(args[0], (str, bytes)):
        _OPENED.append(str(args[0]))


sys.addaudithook(_audit)


def _xxe(root: str, secret) -> str:
    return (f'<?xml version="1.0"?>\n<!DOCTYPE {root} [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
            f'<{root} coordinateSpace="RAS"><InstrumentMarker><Marker description="&xxe;"/></InstrumentMarker></{root}>\n')


def _laughs(root: str) -> str:
    ents = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                                       for i in range(1, 10)]
    return (f'<?xml version="1.0"?>\n<!DOCTYPE {root} [{"".join(ents)}]>\n'
            f'<{root} coordinateSpace="RAS"><TriggerMarker description="&lol9;"/></{root}>\n')


@pytest.mark.parametrize("root", ["InstrumentMarkerList", "EntryTargetList", "TriggerMarkerList"])
@pytest.mark.parametrize("kind", ["xxe", "laughs"])
def test_malicious_xml_refused_without_reading_files(tmp_path, root, kind):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    bad = tmp_path / "evil.xml"
    bad.write_text(_xxe(root, secret) if kind == "xxe" else _laughs(root))
    _OPENED.clear()
    _WATCH["on"] = True
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError) as exc:
            if root == "TriggerMarkerList":
                read_pulse_log(bad)
            else:
                import_plan(bad)
    finally:
        _WATCH["on"] = False
    assert time.perf_counter() - t0 < 2.0
    assert "refused" in str(exc.value) and str(bad) in str(exc.value)
    assert "TOP-SECRET" not in str(exc.value)
    assert not any("secret" in p for p in _OPENED), _OPENED


def test_plain_doctype_without_entities_is_accepted(tmp_path):
    p = tmp_path / "ok.xml"
    p.write_text('<?xml version="1.0"?>\n<!DOCTYPE InstrumentMarkerList>\n<InstrumentMarkerList coordinateSpace="RAS"/>\n')
    assert parse_xml(p).tag == "InstrumentMarkerList"


def test_malformed_xml_names_file(tmp_path):
    p = tmp_path / "broken.xml"
    p.write_text("<InstrumentMarkerList><oops></InstrumentMarkerList>")
    with pytest.raises(InputError, match="broken.xml: not well-formed XML"):
        parse_xml(p)


# --------------------------------------------------------------------------- image hash
def _workspace_with_t1(root, t1):
    from navigator.core.workspace import Workspace

    ws = Workspace.create(root, "sub-asym")
    dest = ws.write_file_from("t1", t1)
    ws.add_source("T1", dest, original=t1)
    return ws


def test_export_refuses_plan_made_on_another_image(tmp_path, capsys):
    plan, t1 = make_plan(tmp_path / "a")
    plan_path = save_plan(plan, tmp_path / "plan.json")
    # a subject whose T1 differs by one voxel
    img = nib.load(str(t1))
    data = np.asarray(img.dataobj).copy()
    data[0, 0, 0] += 1
    other = tmp_path / "other_T1.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(other))
    _workspace_with_t1(tmp_path / "subj_other", other)
    _workspace_with_t1(tmp_path / "subj_same", t1)

    out = tmp_path / "out.xml"
    rc = main(["export", str(plan_path), "--format", "localite", "--out", str(out), "--subject",
               str(tmp_path / "subj_other")])
    assert rc == 1 and not out.exists()
    assert "different image" in capsys.readouterr().err
    rc = main(["export", str(plan_path), "--format", "localite", "--out", str(out), "--subject",
               str(tmp_path / "subj_other"), "--force"])
    assert rc == 0 and out.exists()
    out.unlink()
    assert main(["export", str(plan_path), "-f", "localite", "-o", str(out), "--subject", str(tmp_path / "subj_same")]) == 0


def test_export_checks_recorded_image_file_when_no_subject(tmp_path, capsys):
    plan, t1 = make_plan(tmp_path / "a")
    plan_path = save_plan(plan, tmp_path / "plan.json")
    shutil.copyfile(t1, tmp_path / "keep.nii.gz")
    t1.write_bytes(t1.read_bytes() + b"\0")  # the image changed after planning
    rc = main(["export", str(plan_path), "-f", "csv", "-o", str(tmp_path / "p.csv")])
    assert rc == 1 and "sha256" in capsys.readouterr().err


def test_check_plan_image_without_image_block(tmp_path):
    plan, t1 = make_plan(tmp_path)
    plan.image = None
    with pytest.raises(NavigatorError, match="records no image"):
        check_plan_image(plan, t1_path=t1)
    assert check_plan_image(plan, t1_path=t1, force=True)


# --------------------------------------------------------------------------- sform / qform
def test_sform_qform_difference_warns_and_brainsight_uses_qform(tmp_path, caplog):
    plan, t1 = make_plan(tmp_path)
    img = nib.load(str(t1))
    shifted = img.affine.copy()
    shifted[:3, 3] += [5.0, -3.0, 2.0]  # sform 5 mm off the qform
    img2 = nib.Nifti1Image(np.asarray(img.dataobj), img.affine)
    img2.set_qform(img.get_qform(), code=1)
    img2.set_sform(shifted, code=2)
    path = tmp_path / "T1_diff.nii.gz"
    nib.save(img2, str(path))
    info = ImageInfo.from_nifti(path)
    assert sform_qform_warning(info) is not None
    assert sform_qform_warning(plan.image) is None  # the fixture has sform == qform
    plan.image = info  # plan world = sform world (nibabel's choice)
    with caplog.at_level("WARNING"):
        warnings = check_plan_image(plan, t1_path=path)
    assert any("sform and qform differ" in w for w in warnings)
    out = export_plan(plan, "brainsight", tmp_path / "b.txt")
    row = [line.split("\t") for line in out.read_text().splitlines() if line.startswith("R-M1")][0]
    expected = plan.targets[1].position - np.array([5.0, -3.0, 2.0])  # qform world
    np.testing.assert_allclose([float(v) for v in row[1:4]], expected, atol=1e-4)
    assert "qform world" in caplog.text


def test_relative_image_path_resolved_from_workspace_root(tmp_path, capsys):
    plan, t1 = make_plan(tmp_path / "ws" / "input")
    plan.image.path = "input/T1.nii.gz"  # relative to the workspace root
    plan_path = save_plan(plan, tmp_path / "ws" / "plans" / "left" / "plan.json")
    out = tmp_path / "o.csv"
    assert main(["export", str(plan_path), "-f", "csv", "-o", str(out)]) == 0
    t1.write_bytes(t1.read_bytes() + b"\0")
    assert main(["export", str(plan_path), "-f", "csv", "-o", str(out)]) == 1
    assert "different image" in capsys.readouterr().err


def test_xml_with_an_unknown_encoding_is_refused(tmp_path):
    from navigator.core.errors import InputError
    from navigator.export.safety import parse_xml

    p = tmp_path / "m.xml"
    p.write_text('<?xml version="1.0" encoding="UTF-81e999"?>\n<InstrumentMarkerList/>\n')
    with pytest.raises(InputError, match=r"m\.xml: not well-formed XML \(unknown encoding"):
        parse_xml(p)

