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


def _trigger(matrix: str, t_ms: int, amp: str, didt: str, desc: str = "") -> str:
    return (f'  <TriggerMarker description="{desc}" recordingTime="{t_ms}" responseTime="0" isSelected="false">\n'
            f'    <ResponseValues>\n      <Value key="valueA" response="0.0"/>\n'
            f'      <Value key="amplitudeA" response="{amp}"/>\n      <Value key="didtA" response="{didt}"/>\n'
            f'    </ResponseValues>\n    <Matrix4D {matrix}/>\n  </TriggerMarker>\n')


def write_triggers(path, space="RAS", known=LOC_KNOWN):
    body = (_trigger(known, 1500, "62.0", "85.5")
            + _trigger(IDENTITY, 1800, "62.0", "85.0")
            + _trigger(ZEROS, 2100, "62.0", "84.0")
            + _trigger(known, 2400, "62.0", "84.0", desc="coil not tracked")
            + _trigger(known, 2750, "63.5", "86.0"))
    path.write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n<TriggerMarkerList coordinateSpace="{space}">\n'
                    f"{body}</TriggerMarkerList>\n")
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


def test_localite_trigger_markers_lps(tmp_path):
    log = read_pulse_log(write_triggers(tmp_path / "t.xml", "LPS", LOC_KNOWN_LPS), format="localite-triggers")
    np.testing.assert_array_equal(log.poses[0], known_pose())


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
    p.write_text('<TriggerMarkerList coordinateSpace="RAS">' + _trigger(ZEROS, 1, "50", "10") + "</TriggerMarkerList>")
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
    m[:3, :3] *= 1.01  # not a rotation
    assert is_untracked(m)
