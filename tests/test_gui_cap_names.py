"""Electrodes on the 10-05 cap keep their names in the desktop app's montage editor.

An optimizer run with ``--cap 10-05`` (or the tDCS panel's 10-05 choice) puts electrodes on
positions such as AFF3h that the 10-10 system does not name; the montage table must show that
name (not x,y,z) and resolve it back to the same point.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PyQt6")


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    from navigator.gui.loaders import load_subject
    from navigator.gui.testing import write_sphere_subject

    ws = write_sphere_subject(tmp_path_factory.mktemp("cap") / "sphere", mesh_size_mm=12.0, t1_spacing_mm=4.0)
    return load_subject(ws)


def test_loader_reads_the_stored_10_05_cap(subject):
    from navigator.gui.loaders import named_positions

    assert subject.eeg and subject.eeg_1005
    only_1005 = set(subject.eeg_1005) - set(subject.eeg)
    assert "AFF3h" in only_1005 and len(subject.eeg_1005) > 2 * len(subject.eeg)
    named = named_positions(subject)
    assert set(named) == set(subject.eeg) | set(subject.eeg_1005)
    for k, v in subject.eeg.items():  # the 10-10 file's value wins on a shared name
        np.testing.assert_array_equal(named[k], v)


def test_optimized_10_05_electrodes_keep_their_names(qapp, subject):
    from navigator.export.plan import Electrode, Montage, Plan
    from navigator.gui.state import PlanState

    state = PlanState()
    state.subject = subject
    cap = subject.eeg_1005
    electrodes = [Electrode("AFF3h", cap["AFF3h"], 1.0), Electrode("F3", cap["F3"], -0.5),
                  Electrode("FFC5h", cap["FFC5h"], -0.5), Electrode("off", cap["AFF3h"] + [0, 0, 15.0], 0.0)]
    plan = Plan(name="cap", subject="sphere", montages=[Montage("hd", electrodes)])
    rows = state.montage_from_plan(plan)
    assert [r.position for r in rows[:3]] == ["AFF3h", "F3", "FFC5h"]
    assert "," in rows[3].position  # off the cap: coordinates
    for r, e in zip(rows, electrodes):
        np.testing.assert_allclose(state.electrode_position(r.position), e.position, atol=0.01)
    assert state.electrode_position("aff3h") is not None  # names are case-insensitive
    assert state.electrode_position("XYZ9") is None
