"""Delivered-pulse logs: Localite TriggerMarkers and Brainsight samples, written by hand."""

from __future__ import annotations

import numpy as np
import pytest
from test_export_support import known_pose

from navigator.core.errors import InputError
from navigator.export.pulses import PulseLog, is_untracked, read_pulse_log

# the known pose (ours: x=(1,0,0), y=(0,-1,0), z=(0,0,-1) at (-40.5, 30.25, 60)) in Localite axes, RAS
LOC_KNOWN = ('data00="0.0" data01="0.0" data02="1.0" data03="-40.5" data10="0.0" data11="1.0" data12="0.0" '
             'data13="30.25" data20="-1.0" data21="0.0" data22="0.0" data23="60.0" '
             'data30="0.0" data31="0.0" data32="0.0" data33="1.0"')
# the same pose in LPS: rows 0 and 1 negated
LOC_KNOWN_LPS = ('data00="0.0" data01="0.0" data02="-1.0" data03="40.5" data10="0.0" data11="-1.0" data12="0.0" '
                 'data13="-30.25" data20="-1.0" data21="0.0" data22="0.0" data23="60.0" '
                 'data30="0.0" data31="0.0" data32="0.0" data33="1.0"')
IDENTITY = " ".join(f'data{i}{j}="{1.0 if i == j else 0.0}"' for i in range(4) for j in range(4))
ZEROS = " ".join(f'data{i}{j}="0.0"' for i in range(4) for j in range(4))


RESPONSE_PARAMETERS = (
    '    <ResponseParameters selectedResponseChannel="0">\n'
    '        <responseDescription id="response" maxValue="51200.0"\n            minValue="-51200.0" name="Response" unit="uV"/>\n'
    '        <responseDescription id="valueA" maxValue="200.0" minValue="0.0"\n            name="Value A (di/dt)" unit="A/us"/>\n'
    '        <responseDescription id="amplitudeA" maxValue="100.0"\n            minValue="0.0" name="Amplitude A" unit="%"/>\n'
    "    </ResponseParameters>\n")


def _trigger(matrix: str, t_ms: int, amp: str, didt: str, desc: str = "", tracked: bool = True) -> str:
    """One <TriggerMarker> the way TMS Navigator writes it (attribute set and order as in its files)."""
    return (f'    <TriggerMarker color="#ffafaf" description="{desc}" recordingTime="{t_ms}"\n'
            f'        selected="false" set="{"true" if tracked else "false"}" visibility="true">\n'
            f'        <ResponseValues>\n            <Value key="valueA" response="{didt}"/>\n'
            f'            <Value key="response" response="NaN"/>\n'
            f'            <Value key="amplitudeA" response="{amp}"/>\n        </ResponseValues>\n'
            f"        <Matrix4D {matrix}/>\n    </TriggerMarker>\n")


def write_triggers(path, space="RAS", known=LOC_KNOWN):
    body = (_trigger(known, 1500, "62.0", "85.5")
            + _trigger(IDENTITY, 1800, "0.0", "NaN", tracked=False)  # coil not seen: identity, set="false"
            + _trigger(ZEROS, 2100, "62.0", "84.0")
            + _trigger(known, 2400, "62.0", "84.0", desc="coil not tracked")
            + _trigger(known, 2750, "63.5", "86.0"))
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n'
                    f'<TriggerMarkerList coordinateSpace="{space}" isOnlineReading="false" startTime="17:06:40.58">\n'
                    "    <!--All positions are saved in the coordinate system of the corresponding medical data.-->\n"
                    f"{RESPONSE_PARAMETERS}{body}</TriggerMarkerList>\n")
    return path


def test_localite_trigger_markers(tmp_path):
    log = read_pulse_log(write_triggers(tmp_path / "TriggerMarkers_Coil0_20261121.xml"))
    assert isinstance(log, PulseLog) and log.format == "localite-triggers"
    assert len(log) == 2 and log.n_skipped == 3
    for pose in log.poses:
        np.testing.assert_array_equal(pose, known_pose())  # converted to our coil axes exactly
    np.testing.assert_allclose(log.didt, [85.5e6, 86.0e6])  # A/us -> A/s
    np.testing.assert_array_equal(log.mso, [62.0, 63.5])
    np.testing.assert_allclose(log.timestamps, [1.5, 2.75])
    assert "valueA" in log.didt_source and "A/us" in log.didt_source


def test_localite_trigger_markers_lps(tmp_path):
    log = read_pulse_log(write_triggers(tmp_path / "t.xml", "LPS", LOC_KNOWN_LPS), format="localite-triggers")
    np.testing.assert_array_equal(log.poses[0], known_pose())


def test_localite_trigger_markers_missing_values_and_other_units(tmp_path):
    """NaN / 0.0 responses mean "not reported"; a channel described in A/s is not rescaled;
    files without <ResponseParameters> fall back to the valueA / amplitudeA keys."""
    body = (_trigger(LOC_KNOWN, 100, "50.0", "NaN") + _trigger(LOC_KNOWN, 200, "0.0", "0.0")
            + _trigger(LOC_KNOWN, 300, "55,5", "71,5"))  # decimal commas (German Windows locale)
    p = tmp_path / "TriggerMarkers_Coil1_1.xml"
    p.write_text(f'<TriggerMarkerList coordinateSpace="ras">{body}</TriggerMarkerList>')
    log = read_pulse_log(p)
    np.testing.assert_array_equal(np.isnan(log.didt), [True, True, False])
    assert log.didt[2] == pytest.approx(71.5e6) and log.mso[2] == 55.5
    assert np.isnan(log.mso[1]) and log.mso[0] == 50.0
    si = RESPONSE_PARAMETERS.replace('unit="A/us"', 'unit="A/s"')
    p.write_text(f'<TriggerMarkerList coordinateSpace="RAS">{si}{_trigger(LOC_KNOWN, 1, "50", "71000000")}'
                 "</TriggerMarkerList>")
    assert read_pulse_log(p).didt[0] == pytest.approx(71e6)


def test_localite_trigger_markers_rounded_poses_and_namespaces(tmp_path):
    """6-decimal matrices, a default XML namespace and a BOM: read, re-orthonormalized, reported."""
    from test_export_rigid import random_poses

    from navigator.export.conventions import ours_to_localite

    poses = random_poses(4, 21)
    body = ""
    for k, m in enumerate(poses):
        loc = ours_to_localite(m)
        attrs = " ".join(f'data{j}{i}="{loc[j, i]:.6f}"' for i in reversed(range(4)) for j in reversed(range(4)))
        body += _trigger(attrs, 1000 * k, "60.0", "70.0")
    p = tmp_path / "TriggerMarkers_Coil0_2.xml"
    p.write_bytes(("\ufeff" + '<?xml version="1.0" encoding="UTF-8"?>\r\n'
                   '<TriggerMarkerList xmlns="http://localite.example/tms" coordinateSpace="RAS">\r\n'
                   + RESPONSE_PARAMETERS + body + "</TriggerMarkerList>\r\n").encode("utf-8"))
    log = read_pulse_log(p)
    assert len(log) == 4 and len(log.pose_corrections) == 4
    for got, exact in zip(log.poses, poses):
        assert np.abs(got[:3, :3].T @ got[:3, :3] - np.eye(3)).max() < 1e-12
        np.testing.assert_allclose(got, exact, atol=2e-6)


def test_localite_trigger_marker_not_rigid_is_refused(tmp_path):
    scaled = LOC_KNOWN.replace('data02="1.0"', 'data02="1.1"')
    p = tmp_path / "t.xml"
    p.write_text(f'<TriggerMarkerList coordinateSpace="RAS">{_trigger(LOC_KNOWN, 1, "50", "70")}'
                 f'{_trigger(scaled, 2, "50", "70", desc="pulse 2")}</TriggerMarkerList>')
    with pytest.raises(InputError, match=r"t\.xml: pulse 'pulse 2' is not a rigid pose: its rotation part is sheared"):
        read_pulse_log(p)


def test_empty_trigger_marker_list_is_refused(tmp_path):
    p = tmp_path / "TriggerMarkers_Coil0_3.xml"
    p.write_text(f'<?xml version="1.0"?>\n<TriggerMarkerList coordinateSpace="RAS">{RESPONSE_PARAMETERS}'
                 "</TriggerMarkerList>\n")
    with pytest.raises(InputError, match="the log holds no pulses"):
        read_pulse_log(p)


BS_HEADER = ("# Version: 14\n# Coordinate system: NIfTI:Q:Aligned\n# Created by: Brainsight 2.5.3\n"
             "# Units: millimetres, degrees, milliseconds, and microvolts\n# Encoding: UTF-8\n# Notes: \n")
BS_SAMPLE_COLS = ["Sample Name", "Session Name", "Index", "Assoc. Target", "Loc. X", "Loc. Y", "Loc. Z",
                  *[f"m{i}n{j}" for i in range(3) for j in range(3)], "Dist. to Target", "Target Error",
                  "Angular Error", "Twist Error", "Stim. Power", "Date", "Time", "Creation Cause",
                  "Crosshairs Driver", "Offset", "Comment"]
# known pose in Brainsight axes: x_b = (-1,0,0), y_b = (0,-1,0), z_b = (0,0,1)
BS_KNOWN = ["-40.5", "30.25", "60.0", "-1.0", "0.0", "0.0", "0.0", "-1.0", "0.0", "0.0", "0.0", "1.0"]


def write_samples(path):
    rows = [
        ["Sample 1", "Session 1", "1", "tgt", *BS_KNOWN, "1.2", "0.5", "2.0", "1.0", "55", "2026-11-21", "10:00:01.250", "TTL", "Coil", "(null)", ""],
        ["Sample 2", "Session 1", "2", "tgt", *["(null)"] * 12, "(null)", "(null)", "(null)", "(null)", "55", "2026-11-21", "10:00:02.000", "TTL", "Coil", "(null)", ""],
        ["Sample 3", "Session 1", "3", "tgt", "0.0", "0.0", "0.0", "1.0", "0.0", "0.0", "0.0", "1.0", "0.0", "0.0", "0.0", "1.0", "(null)", "(null)", "(null)", "(null)", "55", "2026-11-21", "10:00:02.500", "TTL", "Coil", "(null)", ""],
        ["Sample 4", "Session 1", "4", "tgt", *BS_KNOWN, "1.1", "0.4", "1.0", "0.5", "60", "2026-11-22", "00:00:00.500", "TTL", "Coil", "(null)", ""],
    ]
    target = "# Target Name\tLoc. X\tLoc. Y\tLoc. Z\t" + "\t".join(f"m{i}n{j}" for i in range(3) for j in range(3))
    text = (BS_HEADER + target + "\n" + "tgt\t" + "\t".join(BS_KNOWN) + "\n"
            + "# " + "\t".join(BS_SAMPLE_COLS) + "\n" + "\n".join("\t".join(r) for r in rows) + "\n")
    path.write_text(text)
    return path


def test_brainsight_samples(tmp_path):
    log = read_pulse_log(write_samples(tmp_path / "session.txt"))
    assert log.format == "brainsight-samples"
    assert len(log) == 2 and log.n_skipped == 2
    np.testing.assert_array_equal(log.poses[0], known_pose())
    np.testing.assert_array_equal(log.mso, [55.0, 60.0])
    assert log.didt is None
    np.testing.assert_allclose(log.timestamps, [36001.25, 86400.5])
    assert log.names == ["Sample 1", "Sample 4"]


def test_same_session_file_imports_targets(tmp_path):
    from navigator.export import import_plan

    plan = import_plan(write_samples(tmp_path / "session.txt"))
    np.testing.assert_array_equal(plan.coil_poses[0].matrix, known_pose())


def test_all_untracked_is_an_error(tmp_path):
    p = tmp_path / "t.xml"
    p.write_text('<TriggerMarkerList coordinateSpace="RAS">' + _trigger(ZEROS, 1, "50", "10")
                 + _trigger(IDENTITY, 2, "0.0", "NaN", tracked=False) + "</TriggerMarkerList>")
    with pytest.raises(InputError, match="no tracked pulses"):
        read_pulse_log(p)


def test_unknown_log_format(tmp_path):
    p = tmp_path / "x.dat"
    p.write_text("hello")
    from navigator.core.errors import NavigatorError

    with pytest.raises(NavigatorError, match="cannot tell the file's format"):
        read_pulse_log(p)


def test_is_untracked():
    assert is_untracked(np.eye(4)) and is_untracked(np.zeros((4, 4))) and is_untracked(np.full((4, 4), np.nan))
    m = known_pose()
    assert not is_untracked(m)
    m[:3, :3] *= 1.05  # a measurement, just not rigid: not "untracked" (the reader refuses it instead)
    assert not is_untracked(m)


def _bs_v14(sample_rows: list[str], system: str = "NIfTI:Q:Aligned", targets: str = "") -> str:
    cols = ("Sample Name\tSession Name\tIndex\tAssoc. Target\tLoc. X\tLoc. Y\tLoc. Z\t"
            + "\t".join(f"m{i}n{j}" for i in range(3) for j in range(3))
            + "\tDist. to Target\tTarget Error\tAngular Error\tTwist Error\tStim. Power A\tStim. Pulse Interval"
              "\tStim. Power B\tDate\tTime\tCreation Cause\tCrosshairs Driver\tOffset\tComment")
    return (f"# Version: 14\n# Coordinate system: {system}\n# Created by: Brainsight 2.5.3\n"
            "# Units: millimetres, degrees, milliseconds, and microvolts\n# Encoding: UTF-8\n"
            "# Notes: Each column is delimited by a tab. Each value within a column is delimited by a semicolon.\n"
            "# Target Name\tLoc. X\tLoc. Y\tLoc. Z\t" + "\t".join(f"m{i}n{j}" for i in range(3) for j in range(3))
            + "\n" + targets + "# " + cols + "\n" + "".join(r + "\n" for r in sample_rows)
            + "# Session Name\tLoc. X\tLoc. Y\tLoc. Z\t" + "\t".join(f"m{i}n{j}" for i in range(3) for j in range(3))
            + "\nSession 1" + "\t(null)" * 12 + "\n")


def _bs_row(name: str, pose_b: np.ndarray | None, power: str, time: str) -> str:
    if pose_b is None:
        cells = ["(null)"] * 12
    else:
        cells = [f"{v:.3f}" for v in pose_b[:3, 3]] + [f"{pose_b[j, i]:.3f}" for i in range(3) for j in range(3)]
    return "\t".join([name, "Session 1", name.split()[-1], "(null)", *cells, *["(null)"] * 4, power, "(null)",
                      "(null)", "2024-02-22", time, "TTL", "Coil 1", "0.0000", "(null)"])


def test_brainsight_v14_samples_three_decimals_power_a(tmp_path):
    """Brainsight 2.5 export: 3-decimal rotations, 'Stim. Power A', trailing '# Session Name' section."""
    from test_export_rigid import angle_deg, random_poses

    from navigator.export.conventions import ours_to_brainsight

    poses = random_poses(3, 33)
    rows = [_bs_row(f"Sample {k + 1}", ours_to_brainsight(p), f"{50 + k}.0", f"11:32:0{k}.283")
            for k, p in enumerate(poses)] + [_bs_row("Sample 4", None, "(null)", "11:32:09.000")]
    p = tmp_path / "exported.txt"
    p.write_text(_bs_v14(rows).replace("\n", "\r\n"))
    log = read_pulse_log(p)
    assert log.format == "brainsight-samples" and len(log) == 3 and log.n_skipped == 1
    np.testing.assert_array_equal(log.mso, [50.0, 51.0, 52.0])
    assert len(log.pose_corrections) == 3
    for got, exact in zip(log.poses, poses):
        assert angle_deg(exact, got) < 0.05 and np.abs(got[:3, 3] - exact[:3, 3]).max() < 0.01
    # the same file imports as a plan: its tracked samples become coil poses
    from navigator.export import import_plan

    plan = import_plan(p)
    assert [c.name for c in plan.coil_poses] == ["Sample 1", "Sample 2", "Sample 3"]
    assert "1 untracked skipped" in plan.notes and "re-orthonormalized" in plan.notes


def test_brainsight_world_is_lps(tmp_path):
    """'World' (DICOM projects) is LPS: x and y are negated into RAS, rotations too."""
    from navigator.export import import_plan

    pose_b = np.diag([-1.0, -1.0, 1.0, 1.0])  # Brainsight axes of our known pose, in RAS
    pose_b[:3, 3] = [-40.5, 30.25, 60.0]
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ pose_b
    targets = "tgt\t" + "\t".join(f"{v:.3f}" for v in
                                  [*lps[:3, 3], *(lps[j, i] for i in range(3) for j in range(3))]) + "\n"
    p = tmp_path / "world.txt"
    p.write_text(_bs_v14([], system="World", targets=targets))
    plan = import_plan(p)
    np.testing.assert_allclose(plan.coil_poses[0].matrix, known_pose(), atol=1e-12)


def test_brainsight_without_targets_or_samples_is_refused(tmp_path):
    from navigator.export import import_plan

    p = tmp_path / "empty.txt"
    p.write_text(_bs_v14([]))
    with pytest.raises(InputError, match="no targets and no tracked samples"):
        import_plan(p)
    p.write_text(_bs_v14([_bs_row("Sample 1", None, "(null)", "11:00:00.000")]))
    with pytest.raises(InputError, match=r"1 sample\(s\), none tracked"):
        import_plan(p)
    with pytest.raises(InputError, match="no tracked pulses"):
        read_pulse_log(p)


def test_trigger_markers_import_as_a_plan(tmp_path):
    """`import-plan TriggerMarkers_...xml`: each tracked pulse becomes a coil pose with its dI/dt and %MSO."""
    from navigator.export import import_plan

    plan = import_plan(write_triggers(tmp_path / "TriggerMarkers_Coil0_20261121.xml"))
    assert [p.name for p in plan.coil_poses] == ["pulse-1", "pulse-5"]
    assert [p.didt for p in plan.coil_poses] == [85.5e6, 86.0e6] and [p.mso for p in plan.coil_poses] == [62.0, 63.5]
    np.testing.assert_array_equal(plan.coil_poses[0].matrix, known_pose())
    assert "3 untracked left out" in plan.notes and "(localite-triggers)" in plan.source
