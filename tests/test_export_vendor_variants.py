"""Files as other programs and people write them: enumerations in any case, BOM, CRLF, XML
namespaces, nested JSON, empty and repeated names, empty files (refused with a clear message)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_export_pulses import LOC_KNOWN
from test_export_support import known_pose

from navigator.core.errors import InputError
from navigator.export import import_plan

ANT_POSE = [[-0.55403229, 0.25881905, 0.79124012, -70.0], [0.14845251, 0.96592583, -0.21201215, -10.0],
            [-0.81915204, 0.0, -0.57357644, 60.0], [0.0, 0.0, 0.0, 1.0]]


def _ant_target(name: str, axes: str = "simnibs", unit: str = "mm", system: str = "ASSOCIATED_IMAGE") -> dict:
    return {"CoilTarget": {"Name": name, "CoordinateSystem": system, "PositionalUnit": unit,
                           "CoilAxesConvention": axes, "CoilInfo": {"Type": "MagStim_D70", "Id": ""},
                           "CoilPose": {"RigidTransformMatrix4x4": ANT_POSE}}}


def _ant_file(path, targets: list[dict]):
    """visor2 2.8 layout: AssociatedImageInfo inside Configuration, lower-case 'simnibs'."""
    doc = {"Configuration": {"SourceInfo": {"AppName": "visor2", "AppVersion": "2.8.0"},
                             "AssociatedImageInfo": {"NIfTI_quatern": [0.0, 1.0, 0.0],
                                                     "NIfTI_qoffset": [90.0, -126.0, -172.0],
                                                     "NIfTI_pixdim": [-1.0, 1.0, 1.0, 1.0]}},
           "TargetMarkers": targets}
    path.write_text(json.dumps(doc, indent=2).replace("\n", "\r\n"))
    return path


def test_ant_visor2_lower_case_convention_and_nested_image_info(tmp_path):
    f = _ant_file(tmp_path / "markers.mrk", [_ant_target("CoilMarker_1"), _ant_target(""),
                                             _ant_target("CoilMarker_1", axes="SimNIBS")])
    plan = import_plan(f)
    assert [p.name for p in plan.coil_poses] == ["CoilMarker_1", "coil-target-2", "CoilMarker_1 (2)"]
    assert plan.coil_poses[0].coil == "MagStim_D70"
    assert "visor2" in plan.notes and "[0.0, 1.0, 0.0]" in plan.notes  # image identity kept
    np.testing.assert_allclose(plan.coil_poses[0].matrix, ANT_POSE, atol=1e-7)


def test_ant_visor2_units_and_refusals(tmp_path):
    f = _ant_file(tmp_path / "m.mrk", [_ant_target("a", unit="M")])
    a = np.array(ANT_POSE)
    a[:3, 3] *= 1000.0
    np.testing.assert_allclose(import_plan(f).coil_poses[0].matrix, a, atol=1e-4)
    f = _ant_file(tmp_path / "m.mrk", [_ant_target("a", axes="localite")])
    with pytest.raises(InputError, match="coil target 'a': unknown CoilAxesConvention 'localite'"):
        import_plan(f)
    f = _ant_file(tmp_path / "m.mrk", [_ant_target("a", system="MNI")])
    with pytest.raises(InputError, match="unsupported CoordinateSystem 'MNI'"):
        import_plan(f)
    f = _ant_file(tmp_path / "m.mrk", [])
    with pytest.raises(InputError, match=r"m\.mrk: no coil targets in the ANT visor2 file"):
        import_plan(f)


def _localite_im(body: str, space: str = "RAS", prefix: str = "") -> str:
    ns = f' xmlns:{prefix[:-1]}="urn:localite"' if prefix else ""
    return (f'\ufeff<?xml version="1.0" encoding="UTF-8"?>\r\n<{prefix}InstrumentMarkerList{ns} coordinateSpace="{space}">'
            f"\r\n{body}</{prefix}InstrumentMarkerList>\r\n")


def _im(name: str, matrix: str, prefix: str = "") -> str:
    return (f'<{prefix}InstrumentMarker alwaysVisible="false" index="0" selected="false"><{prefix}Marker '
            f'description="{name}" set="true"><{prefix}Matrix4D {matrix}/></{prefix}Marker></{prefix}InstrumentMarker>\r\n')


def test_localite_case_namespace_bom_crlf_and_repeated_names(tmp_path):
    lps = LOC_KNOWN.replace('data03="-40.5"', 'data03="40.5"').replace('data13="30.25"', 'data13="-30.25"')
    lps = lps.replace('data02="1.0"', 'data02="-1.0"').replace('data11="1.0"', 'data11="-1.0"')
    f = tmp_path / "InstrumentMarker20261202.xml"
    f.write_bytes(_localite_im(_im("M1", lps, "loc:") + _im("M1", lps, "loc:"), "lps", "loc:").encode())
    plan = import_plan(f)
    assert [p.name for p in plan.coil_poses] == ["M1", "M1 (2)"] and "made unique" in plan.notes
    np.testing.assert_array_equal(plan.coil_poses[0].matrix, known_pose())


def test_localite_empty_lists_are_refused(tmp_path):
    f = tmp_path / "InstrumentMarker1.xml"
    f.write_text(_localite_im(""))
    with pytest.raises(InputError, match="no InstrumentMarker entries"):
        import_plan(f)
    f = tmp_path / "EntryTarget1.xml"
    f.write_text('<?xml version="1.0"?>\n<EntryTargetList coordinateSpace="RAS">\n</EntryTargetList>\n')
    with pytest.raises(InputError, match="no EntryTarget entries"):
        import_plan(f)


def test_localite_entry_target_as_tms_navigator_writes_it(tmp_path):
    """TMS Navigator's EntryTarget<datetime>.xml: <Entry index=k>/<Target index=k> siblings, LPS."""
    f = tmp_path / "EntryTarget20261202115848265.xml"
    f.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<EntryTargetList coordinateSpace="LPS">\n'
        '    <Target alwaysVisible="false" index="1" selected="false">\n'
        '        <Marker color="#00ffff" description="M1 hand" drawAura="true" radius="4.0" set="true">\n'
        '            <ColVec3D data0="35.5" data1="20.25" data2="60.0"/>\n        </Marker>\n    </Target>\n'
        '    <Entry alwaysVisible="false" index="0" selected="true">\n'
        '        <Marker color="#00ff00" description="" drawAura="false"\n            radius="4.0" set="true">\n'
        '            <ColVec3D data0="37.00814767241603"\n                data1="26.455739754239733" data2="92.97407888875009"/>\n'
        "        </Marker>\n    </Entry>\n"
        '    <Target alwaysVisible="false" index="0" selected="true">\n'
        '        <Marker color="#00ffff" description="premot" drawAura="true"\n            radius="4.0" set="true">\n'
        '            <ColVec3D data0="28.85528143037781"\n                data1="29.513064595004064" data2="78.70656296518321"/>\n'
        "        </Marker>\n    </Target>\n</EntryTargetList>\n")
    plan = import_plan(f)
    got = {t.name: t for t in plan.targets}
    assert set(got) == {"premot", "M1 hand"}
    np.testing.assert_allclose(got["premot"].position, [-28.85528143037781, -29.513064595004064, 78.70656296518321])
    np.testing.assert_allclose(got["premot"].entry, [-37.00814767241603, -26.455739754239733, 92.97407888875009])
    assert got["M1 hand"].entry is None


def test_localite_unknown_space_is_refused(tmp_path):
    f = tmp_path / "im.xml"
    f.write_text(_localite_im(_im("M1", LOC_KNOWN), "MNI"))
    with pytest.raises(InputError, match="unsupported coordinateSpace 'MNI'"):
        import_plan(f)


def test_brainsight_lower_case_header_bom_crlf(tmp_path):
    text = ("# version: 14\r\n# coordinate system: nifti:q:aligned\r\n# encoding: UTF-8\r\n"
            "# target name\tloc. x\tloc. y\tloc. z\tm0n0\tm0n1\tm0n2\tm1n0\tm1n1\tm1n2\tm2n0\tm2n1\tm2n2\r\n"
            "tgt\t-40,5\t30,25\t60\t-1\t0\t0\t0\t-1\t0\t0\t0\t1\r\n"
            "point\t1.0\t2.0\t3.0" + "\t(null)" * 9 + "\r\n")
    f = tmp_path / "targets.txt"
    f.write_bytes(("\ufeff" + text).encode("utf-8"))
    plan = import_plan(f)
    np.testing.assert_array_equal(plan.coil_poses[0].matrix, known_pose())
    np.testing.assert_array_equal(plan.targets[0].position, [1.0, 2.0, 3.0])


def test_brainsight_unsupported_system_is_refused(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# Version: 7\n# Coordinate system: Brainsight\n# Target Name\tLoc. X\tLoc. Y\tLoc. Z\n"
                 "a\t1\t2\t3\n")
    with pytest.raises(InputError, match="unsupported Brainsight coordinate system 'Brainsight'"):
        import_plan(f)


def test_slicer_lower_case_system_and_undefined_points(tmp_path):
    doc = {"@schema": "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
                      "Resources/Schema/markups-schema-v1.0.3.json#",
           "markups": [{"type": "Fiducial", "coordinateSystem": "ras", "coordinateUnits": "MM",
                        "controlPoints": [{"label": "F-1", "position": [1.0, 2.0, 3.0], "positionStatus": "defined"},
                                          {"label": "F-2", "position": [0, 0, 0], "positionStatus": "undefined"},
                                          {"label": "F-1", "position": [4.0, 5.0, 6.0]}]}]}
    f = tmp_path / "points.mrk.json"
    f.write_text(json.dumps(doc))
    plan = import_plan(f)
    assert [t.name for t in plan.targets] == ["F-1", "F-1 (2)"]
    np.testing.assert_array_equal(plan.targets[1].position, [4.0, 5.0, 6.0])


def test_invesalius_crlf_bom_round_trip(tmp_path):
    """An InVesalius file saved again on Windows (BOM, CRLF) reads back the same poses."""
    from test_export_support import make_plan

    from navigator.export import export_plan

    plan, _ = make_plan(tmp_path / "subject")
    out = export_plan(plan, "invesalius", tmp_path / "plan.mkss")
    f = tmp_path / "windows.mkss"
    f.write_bytes(("\ufeff" + out.read_text().replace("\n", "\r\n")).encode("utf-8"))
    back = import_plan(f)
    for a, b in zip(plan.coil_poses, back.coil_poses):
        np.testing.assert_allclose(b.matrix, a.matrix, atol=1e-9)


def test_plain_csv_and_plan_json_enumerations_any_case(tmp_path):
    from test_export_support import make_plan

    from navigator.export import export_plan, load_plan

    plan, _ = make_plan(tmp_path / "subject")
    out = export_plan(plan, "csv", tmp_path / "plan.csv", "lps")
    text = out.read_text().replace("# coordinate_system: LPS", "# Coordinate_System: lps")
    text = text.replace("coil_pose,", "COIL_POSE,").replace("# coil_axes: navigator:", "# coil_axes: Navigator:")
    f = tmp_path / "edited.csv"
    f.write_text(text)
    back = import_plan(f)
    np.testing.assert_allclose(back.coil_poses[0].matrix, plan.coil_poses[0].matrix, atol=1e-12)
    doc = plan.to_json()
    doc["coordinate_system"], doc["coil_axes"] = "ras", "Navigator"
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    assert load_plan(tmp_path / "plan.json").coordinate_system == "RAS"


def test_vendor_text_helpers(tmp_path):
    from navigator.export.vendor_text import enum_is, number, parse_number, read_text

    assert parse_number(" 62,5 ") == 62.5 and parse_number("1e3") == 1000.0
    for missing in ("NaN", "(null)", "", "None", "N/A", None, float("nan")):
        assert parse_number(missing) is None
    for bad in ("1,234,5", "1e999", "-inf", float("inf")):
        with pytest.raises(ValueError):
            parse_number(bad)
    with pytest.raises(InputError, match=r"f\.txt: cell: not a number: 'abc'"):
        number("abc", tmp_path / "f.txt", "cell")
    assert enum_is("associated image", "ASSOCIATED_IMAGE") and enum_is("SimNIBS", "simnibs")
    assert not enum_is("localite", "simnibs")
    (tmp_path / "u16.txt").write_bytes("# Coordinate system: NIfTI:Aligned\r\n".encode("utf-16"))
    assert read_text(tmp_path / "u16.txt") == "# Coordinate system: NIfTI:Aligned\n"
    (tmp_path / "cp.txt").write_bytes("unit: A/\xb5s\r\n".encode("cp1252"))
    assert read_text(tmp_path / "cp.txt") == "unit: A/\u00b5s\n"
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(InputError, match="binary data, not a text file"):
        read_text(tmp_path / "bin.txt")


def test_invesalius_current_columns_and_fiducials(tmp_path):
    """InVesalius 3.x files carry more columns (is_point_of_interest, mep_value, brain_target_list)
    and fiducials (marker_type 0): columns are found by name, fiducials left out."""
    cols = ["marker_id", "x", "y", "z", "alpha", "beta", "gamma", "r", "g", "b", "size", "label", "x_seed", "y_seed",
            "z_seed", "is_target", "is_point_of_interest", "session_id", "x_cortex", "y_cortex", "z_cortex",
            "alpha_cortex", "beta_cortex", "gamma_cortex", "marker_type", "z_rotation", "z_offset", "mep_value",
            "brain_target_list", "x_world", "y_world", "z_world", "alpha_world", "beta_world", "gamma_world"]

    def row(label, mtype, world, angles):
        vals = {c: "0.0" for c in cols}
        vals.update(label=f'"{label}"', marker_type=str(mtype), mep_value="None", brain_target_list="[]",
                    is_target="False", is_point_of_interest="False", alpha="None", beta="None", gamma="None")
        vals.update(zip(["x_world", "y_world", "z_world"], map(str, world)))
        vals.update(zip(["alpha_world", "beta_world", "gamma_world"], angles))
        return "\t".join(vals[c] for c in cols)

    text = "\n".join(["##INVESALIUS3_MARKER_FILE_4", "\t".join(f'"{c}"' for c in cols),
                      row("NAI", 0, (1.0, 90.0, -20.0), ("0.0", "0.0", "0.0")),
                      row("hotspot", 4, (-40.5, 30.25, 60.0), ("180.0", "0.0", "0.0")),
                      row("dlpfc", 1, (-38.0, 44.0, 26.0), ("N/A", "N/A", "N/A"))]) + "\n"
    f = tmp_path / "markers.mkss"
    f.write_text(text)
    plan = import_plan(f)
    assert [t.name for t in plan.targets] == ["dlpfc"] and "1 fiducial(s)" in plan.notes
    np.testing.assert_allclose(plan.coil_poses[0].matrix, known_pose(), atol=1e-12)
