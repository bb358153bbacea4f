"""The desktop app's tDCS panel with the tES methods of issue 18: the optimization method choice
(HD, pads + rotation, temporal interference, centre-surround) and its settings make the
TdcsSearch the CLI and batch use; the montage table carries each electrode's stimulator
channel and frequency (and a pad's rotation), editable and undoable; a TI optimization runs
in the real window (child process, progress) and its envelope map - the one the objective
maximized - is drawn on the cortex and the slices with a legend saying which it is; the
montage is saved, exported and restored; a reopened workspace shows the stored TI result
without recomputing.

The window tests use the small spherical test head of :mod:`navigator.gui.testing` (12 mm
tetrahedra, 4 mm T1 voxels) and the optimizers' own defaults (the 10-10 cap of that head).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui

OPT_TIMEOUT_MS = 600_000
TI_KEY = "plans/gui_tdcs_optimization"  # where the app's tES optimization is stored
F1, F2 = 1000.0, 1020.0  # the carrier frequencies the test asks for (not the defaults)


class _Window:
    def __init__(self):
        self.messages = []

    def optimize_tdcs(self) -> None:
        self.optimized = True

    def status(self, message: str, ms: int = 0) -> None:
        self.messages.append(message)


@pytest.fixture
def panel(qtbot):
    from navigator.gui.panels.tdcs import TdcsPanel
    from navigator.gui.state import PlanState

    p = TdcsPanel(PlanState(), _Window())
    qtbot.addWidget(p)
    p.resize(420, 900)
    p.show()
    return p


def test_method_choice_and_settings_make_the_search(panel, tmp_path):
    from navigator.optimize.tdcs import MODES, TdcsSearch

    p = panel
    assert p.search() == TdcsSearch()
    p.opt_nifti.setChecked(False)
    assert p.search() == TdcsSearch(nifti=False)
    p.opt_nifti.setChecked(True)
    assert [p.opt_mode.itemData(i) for i in range(p.opt_mode.count())] == list(MODES)
    p.opt_mode.setCurrentIndex(MODES.index("ti"))
    p.ti_channel.setValue(1.5)
    p.ti_total.setValue(3.0)
    p.ti_f1.setValue(1000)
    p.ti_f2.setValue(1020)
    p.opt_objective.setCurrentIndex(1)
    p.opt_diameter.setValue(8)
    assert p.search() == TdcsSearch(mode="ti", objective="magnitude", ti_channel_ma=1.5, ti_total_ma=3.0,
                                    ti_frequencies_hz=(1000.0, 1020.0), electrode_diameter_mm=8.0)
    p.opt_cap.setCurrentText("10-05")
    p.opt_avoid.setText("mni:0,60,0:15; eeg:Fp2:20")
    p.opt_avoid_max.setValue(0)  # no limit: the regions enter through the focality weight
    p.ti_weight.setValue(2)
    s = p.search()
    assert (s.cap, s.avoid, s.avoid_max_v_per_m, s.ti_avoid_weight) == ("10-05", ["mni:0,60,0:15", "eeg:Fp2:20"], None, 2.0)
    assert p.form_visible("ti_weight") and p.form_visible("cap") and not p.form_visible("cs_on_cap")
    p.opt_cap.setCurrentText("10-10")
    p.opt_avoid.setText("")
    p.opt_avoid_max.setValue(0.05)
    p.ti_weight.setValue(0)
    assert p.ti_quantity() == "TImax"
    form = p.opt_form
    visible = {k: form.isRowVisible(row) for k, (row, _m) in p._rows.items()}
    assert visible["ti_channel"] and visible["ti_freq"] and visible["diameter"]
    assert not visible["active"] and not visible["cs_radius"] and not visible["angle"]
    p.grab().save(str(tmp_path / "tdcs_panel_ti.png"))
    p.opt_mode.setCurrentIndex(MODES.index("center-surround"))
    p.cs_returns.setValue(6)
    p.cs_radius.setValue(40)
    p.cs_currents.setCurrentText("standard")
    p.cs_on_cap.setChecked(True)
    s = p.search()
    assert (s.mode, s.n_returns, s.ring_radius_mm, s.surround_currents) == ("center-surround", 6, 40.0, "standard")
    assert s.surround_on_cap and p.form_visible("cs_on_cap") and not p.form_visible("cap")
    p.cs_on_cap.setChecked(False)
    assert form.isRowVisible(p._rows["cs_radius"][0]) and not form.isRowVisible(p._rows["ti_channel"][0])
    p.opt_mode.setCurrentText("pads")
    p.opt_angle.setValue(30)
    assert p.search().mode == "pads" and p.search().pad_angle_step_deg == 30.0
    p.opt_objective.setCurrentIndex(0)
    assert p.ti_quantity() == "TInormal"
    p.optimize.click()
    assert p.window.optimized


# ------------------------------------------------------------------------------ montage rows (no window)
def _ti_rows():
    from navigator.gui.montage import ElectrodeRow

    return [ElectrodeRow("F3", 2.0, "disc", "10", 1, F1), ElectrodeRow("P4", -2.0, "disc", "10", 1, F1),
            ElectrodeRow("F4", 1.5, "disc", "10", 2, F2), ElectrodeRow("P3", -1.5, "disc", "10", 2, F2)]


def test_channels_pairs_and_pad_angles_without_qt():
    from navigator.core.errors import NavigatorError
    from navigator.core.surface import Surface
    from navigator.export.plan import Electrode
    from navigator.gui.montage import (
        ElectrodeRow,
        angle_for_y_axis,
        channel_summary,
        channel_text,
        electrodes_from_rows,
        parse_channel,
        parse_frequency,
        rows_from_electrodes,
        ti_pairs,
        y_axis_for_angle,
    )

    rows = _ti_rows()
    chans = channel_summary(rows)
    assert [(c.channel, c.injected_ma, c.sum_ma, c.frequency_hz) for c in chans] == [(1, 2.0, 0.0, F1), (2, 1.5, 0.0, F2)]
    assert "channel 2: 1.500 mA at 1020 Hz (F4, P3)" in channel_text(rows)
    p1, p2 = ti_pairs(rows)
    assert [r.position for r in p1] == ["F3", "P4"] and [r.position for r in p2] == ["F4", "P3"]
    bad = [*rows[:3], ElectrodeRow("P3", -1.0, "disc", "10", 2, F2)]
    with pytest.raises(NavigatorError, match="channel 2"):
        ti_pairs(bad)
    with pytest.raises(NavigatorError, match="channels 1 and 2"):
        ti_pairs([*rows, ElectrodeRow("Cz", 0.5)])
    assert "must be 0" in channel_text(bad)
    assert parse_channel(" 2 ") == 2 and parse_channel("") is None and parse_frequency("1010 Hz") == 1010.0
    for text in ("0", "1.5", "x"):
        with pytest.raises(NavigatorError):
            parse_channel(text)
    with pytest.raises(NavigatorError):
        parse_frequency("-5")
    # pad rotation: y axis <-> angle (the electrode frame rule of tes.electrodes.place_electrode)
    n = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
    for a in (0.0, 15.0, 90.0, -135.0):
        y = y_axis_for_angle(n, a)
        assert abs(y @ n) < 1e-12 and angle_for_y_axis(n, y) == pytest.approx(a)
    # rows -> plan electrodes -> rows keep names, channels, frequencies and the pad angle
    eeg = {"F3": np.array([-40.0, 50, 50]), "P4": np.array([40.0, -50, 50]),
           "F4": np.array([40.0, 50, 50]), "P3": np.array([-40.0, -50, 50])}
    verts = np.array([[0, 0, 200.0], [200, 0, -100], [-200, 150, -100], [-200, -150, -100]])
    scalp = Surface(verts, np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]]))  # a tetrahedron "head"
    rows = [*_ti_rows(), ElectrodeRow("40,-50,50", 1.0, "rect", "50x30", angle_deg=30.0)]
    els = electrodes_from_rows(rows, lambda p: eeg.get(p) if "," not in p else np.array([float(v) for v in p.split(",")]),
                               scalp)
    assert [(e.channel, e.frequency_hz) for e in els] == [(1, F1), (1, F1), (2, F2), (2, F2), (None, None)]
    assert els[-1].y_axis is not None and els[0].y_axis is None
    back = rows_from_electrodes(els, eeg, scalp)
    assert [(r.position, r.current_ma, r.channel, r.frequency_hz) for r in back[:4]] == \
        [(r.position, r.current_ma, r.channel, r.frequency_hz) for r in rows[:4]]
    assert back[4].position == "P4"  # sits on P4 (within 1 mm): named
    assert back[4].angle_deg == pytest.approx(30.0) and back[4].size == "50x30"
    assert ElectrodeRow.from_json(rows[4].to_json()) == rows[4]
    assert Electrode.from_json(els[2].to_json()).frequency_hz == F2


def test_montage_table_channel_columns_edit_and_undo(panel):
    from navigator.gui.montage import ElectrodeRow

    p = panel
    st = p.state
    st.set_montage(_ti_rows(), "TI montage")
    col = p.COL
    t = p.table
    assert [p.COLS[col[k]] for k in ("channel", "frequency", "angle")] == ["Ch", "Hz", "Angle"]
    cells = [(t.item(i, col["position"]).text(), t.item(i, col["channel"]).text(), t.item(i, col["frequency"]).text())
             for i in range(t.rowCount())]
    assert cells == [("F3", "1", "1000"), ("P4", "1", "1000"), ("F4", "2", "1020"), ("P3", "2", "1020")]
    assert "channel 1: 2.000 mA at 1000 Hz" in p.sum_label.text() and "channel 2: 1.500 mA" in p.sum_label.text()
    assert p.simulate.text().startswith("Simulate TI")
    assert p.grid.channels == {"f3": 1, "p4": 1, "f4": 2, "p3": 2}
    # a frequency edit applies to the whole channel, as one undo step
    n_undo = st.undo_stack.count()
    t.item(2, col["frequency"]).setText("1040")
    assert [r.frequency_hz for r in st.montage] == [F1, F1, 1040.0, 1040.0]
    assert st.undo_stack.count() == n_undo + 1
    assert t.item(3, col["frequency"]).text() == "1040"
    # a bad channel is refused: the montage and the table stay as they were
    t.item(0, col["channel"]).setText("zwei")
    assert st.montage[0].channel == 1 and t.item(0, col["channel"]).text() == "1"
    assert "channel" in p.last_error and p.window.messages
    # moving an electrode to the other channel takes that channel's frequency
    t.item(1, col["channel"]).setText("2")
    assert (st.montage[1].channel, st.montage[1].frequency_hz) == (2, 1040.0)
    st.undo_stack.undo()
    assert (st.montage[1].channel, st.montage[1].frequency_hz) == (1, F1)
    st.undo_stack.undo()
    assert [r.frequency_hz for r in st.montage] == [F1, F1, F2, F2]
    assert t.item(2, col["frequency"]).text() == "1020"
    # balance keeps each channel's own current
    rows = [ElectrodeRow(r.position, r.current_ma * (1.3 if r.current_ma < 0 else 1), r.shape, r.size, r.channel,
                         r.frequency_hz) for r in _ti_rows()]
    st.set_montage(rows)
    p.balance()
    assert [r.current_ma for r in st.montage] == pytest.approx([2.0, -2.0, 1.5, -1.5])
    # a pad angle is a column too
    st.set_montage([ElectrodeRow("F3", 2.0), ElectrodeRow("Fp2", -2.0)])
    t.item(0, col["angle"]).setText("45")
    assert st.montage[0].angle_deg == 45.0 and st.montage[0].spec().angle_deg == 45.0
    assert p.simulate.text() == "Simulate tDCS" and "sum of currents" in p.sum_label.text()


# ------------------------------------------------------------------------------ the real window
#: the cap of the window tests: the 10-20 sites of the test head's 10-10 positions (on its coarse
#: 12 mm scalp triangles, 10 mm discs at neighbouring 10-10 sites share scalp nodes)
CAP_10_20 = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4", "P8",
             "O1", "O2")


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    from navigator.gui.testing import write_sphere_subject

    ws = write_sphere_subject(tmp_path_factory.mktemp("tigui") / "sphere", mesh_size_mm=12.0, t1_spacing_mm=4.0)
    eeg = ws.path("eeg")
    lines = eeg.read_text().splitlines()
    keep = [ln for ln in lines if ln.startswith("Fiducial") or ln.rsplit(",", 1)[-1].strip() in CAP_10_20]
    assert len(keep) == 4 + len(CAP_10_20)
    eeg.write_text("\n".join(keep) + "\n")
    return ws


def _new_window(qapp, settings_path):
    from PyQt6.QtCore import QSettings

    from navigator.gui import dialogs
    from navigator.gui.main_window import MainWindow

    dialogs.NON_BLOCKING = True
    w = MainWindow(QSettings(str(settings_path), QSettings.Format.IniFormat))
    w.resize(1500, 950)
    w.show()
    qapp.processEvents()
    return w


@pytest.fixture(scope="module")
def window(qapp, subject, tmp_path_factory):
    from navigator.gui import dialogs

    w = _new_window(qapp, tmp_path_factory.mktemp("settings") / "gui.ini")
    yield w
    w.close()
    dialogs.NON_BLOCKING = False


def _open_with_target(qtbot, w, subject):
    from navigator.gui.testing import SPHERE_TARGET

    if w.state.subject is None:
        w.open_path(subject.root)
        qtbot.waitUntil(lambda: w.state.subject is not None and not w.runner.busy, timeout=60_000)
    if w.state.target is None:
        w.resolve_target(SPHERE_TARGET)
        qtbot.waitUntil(lambda: w.state.target is not None and not w.runner.busy, timeout=60_000)


def _expected_envelopes(subject, fields_dir):
    """The envelope maps computed here from the stored carriers E1, E2 (fields.msh) and the
    cortex normals, independently of the app's loader: per cortex vertex (the tetrahedron
    containing it, as the writer samples) and per grey-matter tetrahedron."""
    from scipy.spatial import cKDTree

    from navigator.core.tissues import GM
    from navigator.fem.sampling import locate_points
    from navigator.io.gmsh import read_msh
    from navigator.io.surfaces import read_surface
    from navigator.tes.ti import ti_max_envelope

    m = read_msh(fields_dir / "fields.msh")
    cortex = read_surface(fields_dir / "middle_gm_fields.surf.gii")
    E1, E2 = np.asarray(m.tet_data["E1"], float), np.asarray(m.tet_data["E2"], float)
    nrm = cortex.vertex_normals()
    tet, _ = locate_points(m, cortex.vertices, tet_mask=m.tet_tags == GM)
    e1, e2 = E1[tet], E2[tet]
    along = lambda a, b, n: 2 * np.minimum(np.abs((a * n).sum(1)), np.abs((b * n).sum(1)))  # noqa: E731
    vertex = {"TInormal": along(e1, e2, nrm), "TImax": ti_max_envelope(e1, e2)}
    gm = np.flatnonzero(m.tet_tags == GM)
    _, idx = cKDTree(cortex.vertices).query(m.tet_centroids()[gm])
    tet_normal = np.zeros(m.n_tets)
    tet_normal[gm] = along(E1[gm], E2[gm], nrm[idx])
    return m, vertex, {"TInormal": tet_normal, "TImax": ti_max_envelope(E1, E2)}


def _check_slice_map(w, mesh, tet_values, n_points=40):
    """The slice overlay at voxel centres inside grey-matter tetrahedra equals the tetrahedron's value."""
    from navigator.core.tissues import GM
    from navigator.fem.sampling import locate_points

    vol = w.slices.display.volume
    field = w.slices.display.field
    assert field is not None and field.shape == vol.shape
    ijk = np.argwhere(field > 0)
    world = vol.voxel_to_world(ijk)
    tet, bary = locate_points(mesh, world)
    inside = (tet >= 0) & (bary.min(axis=1) > 1e-3) & (mesh.tet_tags[np.maximum(tet, 0)] == GM)
    assert inside.sum() >= n_points
    got = field[tuple(ijk[inside].T)]
    np.testing.assert_allclose(got, tet_values[tet[inside]], rtol=1e-5, atol=1e-7)


def test_ti_optimization_in_the_window(qapp, qtbot, window, subject, tmp_path):
    """TI optimized from the tDCS panel (off the UI thread, with progress): the montage table,
    the objective values, the envelope maps on cortex and slices, undo, switch of the map,
    save, export and a TI simulation of the edited montage."""
    from navigator.export.plan import load_plan
    from navigator.optimize.tdcs import MODES

    w = window
    _open_with_target(qtbot, w, subject)
    p = w.tdcs_panel
    w.tabs.setCurrentIndex(2)
    before = [r.position for r in w.state.montage]
    p.opt_mode.setCurrentIndex(MODES.index("ti"))
    p.ti_f1.setValue(F1)
    p.ti_f2.setValue(F2)
    p.opt_objective.setCurrentIndex(0)  # along the cortical normal
    p.opt_nifti.setChecked(False)  # the slices are sampled from fields.msh in memory
    progress = []
    w.runner.progress.connect(lambda f, m: progress.append((f, m)))
    w.optimize_tdcs()
    assert w.runner.busy and w.cancel_button.isVisible()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=OPT_TIMEOUT_MS)
    assert progress and any("TI" in m for _, m in progress)
    out = subject.path("plans") / "gui_tdcs_optimization"
    plan = load_plan(out / "plan.json")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "ti" and summary["objective"] == "normal"
    els = plan.montages[0].electrodes
    # the montage table: the plan's electrodes with their channel and frequency
    col, t = p.COL, p.table
    table = [(t.item(i, col["position"]).text(), float(t.item(i, col["current"]).text()),
              t.item(i, col["channel"]).text(), t.item(i, col["frequency"]).text()) for i in range(t.rowCount())]
    assert table == [(e.name, pytest.approx(e.current_ma, abs=1e-9), str(e.channel), f"{e.frequency_hz:g}") for e in els]
    assert sorted(c for _, _, c, _ in table) == ["1", "1", "2", "2"]
    assert {f for _, _, c, f in table if c == "1"} == {"1000"} and {f for _, _, c, f in table if c == "2"} == {"1020"}
    assert "channel 1" in p.sum_label.text() and "channel 2" in p.sum_label.text()
    # the objective values
    rows = p.report_rows()
    assert p.report.isVisible()
    assert rows["Mean envelope at target (full model)"] == f"{summary['batch_numbers']['field_at_target_v_per_m']:.4g} V/m"
    assert rows["Channel 1"].startswith(f"{els[0].name} -> {els[1].name}") and "1000 Hz" in rows["Channel 1"]
    assert "along the cortical normal" in rows["Objective"]
    # the envelope map: the one the objective maximized, on the cortex and in the slices, labelled
    res = w.state.shown_result
    assert res.key == TI_KEY and res.is_ti and res.quantity == "TInormal"
    mesh, vertex, per_tet = _expected_envelopes(subject, out / "fields")
    assert "normal" in w.slices.display.field_title and "V/m" in w.slices.display.field_title
    assert "TI envelope" in w.view3d.banner.text()
    if w.view3d.available:
        assert "normal" in w.view3d._cortex_title and "V/m" in w.view3d._cortex_title
        np.testing.assert_allclose(w.view3d._cortex_poly.point_data["field"], vertex["TInormal"], rtol=1e-6, atol=1e-9)
        assert not np.allclose(vertex["TInormal"], vertex["TImax"])  # the two maps are told apart
    _check_slice_map(w, mesh, per_tet["TInormal"])
    w.tabs.setCurrentIndex(3)
    rp = w.results_panel
    assert rp.quantity.isVisible() and rp.quantity.currentData() == "TInormal"
    assert rp.table.item(0, 1).text().startswith("TI envelope along the cortical normal")
    # the other map, chosen in the Results panel
    rp.quantity.setCurrentIndex(rp.quantity.findData("TImax"))
    rp.quantity.activated.emit(rp.quantity.currentIndex())
    assert res.quantity == "TImax" and "maximal" in w.slices.display.field_title
    if w.view3d.available:
        np.testing.assert_allclose(w.view3d._cortex_poly.point_data["field"], vertex["TImax"], rtol=1e-6, atol=1e-9)
    _check_slice_map(w, mesh, per_tet["TImax"])
    rp.quantity.setCurrentIndex(rp.quantity.findData("TInormal"))
    rp.quantity.activated.emit(rp.quantity.currentIndex())
    assert res.quantity == "TInormal"
    # undo / redo of the optimized montage
    w.state.undo_stack.undo()
    assert [r.position for r in w.state.montage] == before
    w.state.undo_stack.redo()
    assert [r.channel for r in w.state.montage] == [e.channel for e in els]
    # save: the plan carries channel and frequency; the json export too; Localite says it leaves the montage out
    path = w.controller.save_plan(tmp_path / "ti_plan" / "plan.json")
    saved = load_plan(path).montages[0]
    assert saved.name == "ti"
    assert [(e.name, e.channel, e.frequency_hz) for e in saved.electrodes] == [(e.name, e.channel, e.frequency_hz) for e in els]
    w.controller.export_plan("json", str(tmp_path / "ti.json"), "ras")
    doc = json.loads((tmp_path / "ti.json").read_text())
    assert [(e["channel"], e["frequency_Hz"]) for e in doc["montages"][0]["electrodes"]] == \
        [(e.channel, e.frequency_hz) for e in els]
    ep = w.export_panel
    ep.format.setCurrentText("localite")
    assert "NOT in this format" in ep.about.text()
    assert any("channel 2 1020 Hz" in ep.table.item(i, 0).text() for i in range(ep.table.rowCount()))
    ep.format.setCurrentText("json")
    assert "channels, frequencies" in ep.about.text()
    # simulate the edited montage as TI (channel 2 at another frequency: a TI simulation, not tDCS)
    w.tabs.setCurrentIndex(2)
    ch2 = next(i for i, r in enumerate(w.state.montage) if r.channel == 2)
    t.item(ch2, col["frequency"]).setText("1040")
    assert {r.frequency_hz for r in w.state.montage if r.channel == 2} == {1040.0}
    w.simulate_tdcs()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=OPT_TIMEOUT_MS)
    sim = w.state.shown_result
    assert sim.key == "simulations/gui_ti" and sim.is_ti and sim.quantity == "TInormal"
    ssum = json.loads((subject.path("simulations") / "gui_ti" / "summary.json").read_text())
    assert ssum["stimulus"] == "ti"
    assert sorted(e["position"] for e in ssum["electrodes"]) == sorted(e.name for e in els)
    if w.view3d.available:
        _, v2, _ = _expected_envelopes(subject, subject.path("simulations") / "gui_ti")
        np.testing.assert_allclose(w.view3d._cortex_poly.point_data["field"], v2["TInormal"], rtol=1e-6, atol=1e-9)
    w.controller.save_session()


def test_reopen_shows_the_stored_ti_result_without_recomputing(qapp, qtbot, window, subject, tmp_path, monkeypatch):
    from navigator.gui import jobs

    if not (subject.path("plans") / "gui_tdcs_optimization" / "plan.json").exists():
        pytest.skip("needs the TI optimization of test_ti_optimization_in_the_window")
    w0 = window
    montage = [(r.position, r.channel, r.frequency_hz) for r in w0.state.montage]
    w0.controller.save_session()

    def forbidden(*a, **k):
        raise AssertionError("a result was recomputed")

    for name in ("job_simulate_tms", "job_simulate_tdcs", "job_simulate_ti", "job_optimize_tms", "job_optimize_tdcs"):
        monkeypatch.setattr(jobs, name, forbidden)
    w = _new_window(qapp, tmp_path / "gui.ini")
    try:
        w.open_path(subject.root)
        # the result on screen when the session was stored comes back first (read, not recomputed)
        qtbot.waitUntil(lambda: w.state.subject is not None and w.state.shown_result is not None and w.runner.idle,
                        timeout=60_000)
        assert w.state.current_result == "simulations/gui_ti" and w.state.shown_result.is_ti
        assert [(r.position, r.channel, r.frequency_hz) for r in w.state.montage] == montage
        assert w.state.entries[TI_KEY].kind == "tdcs-optimization"
        w.results_panel.select(TI_KEY)
        qtbot.waitUntil(lambda: w.state.current_result == TI_KEY and w.runner.idle, timeout=60_000)
        res = w.state.results[TI_KEY]
        assert res.is_ti and res.quantity == "TInormal"  # the objective's map, read from the stored summary
        rows = dict(w.results_panel.rows_for(res))
        summary = json.loads((subject.path("plans") / "gui_tdcs_optimization" / "summary.json").read_text())
        assert rows["Mean envelope at target (full model)"] == \
            f"{summary['batch_numbers']['field_at_target_v_per_m']:.4g} V/m"
        if w.view3d.available:
            _, vertex, _ = _expected_envelopes(subject, subject.path("plans") / "gui_tdcs_optimization" / "fields")
            np.testing.assert_allclose(w.view3d._cortex_poly.point_data["field"], vertex["TInormal"], rtol=1e-6, atol=1e-9)
        assert "normal" in w.slices.display.field_title
    finally:
        w.close()


@pytest.mark.parametrize("mode", ["center-surround", "pads"])
def test_center_surround_and_pad_rotation_in_the_window(qtbot, window, subject, mode):
    """The other two methods: the optimizer's electrodes (ring positions, pad rotation) become the montage."""
    from navigator.export.plan import load_plan
    from navigator.optimize.tdcs import MODES

    w = window
    _open_with_target(qtbot, w, subject)
    p = w.tdcs_panel
    p.opt_mode.setCurrentIndex(MODES.index(mode))
    p.opt_nifti.setChecked(False)
    if mode == "pads":
        p.opt_angle.setValue(45)  # 0 and 45 degrees for square pads
    w.optimize_tdcs()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=OPT_TIMEOUT_MS)
    out = subject.path("plans") / "gui_tdcs_optimization"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == mode
    els = [e for e in load_plan(out / "plan.json").montages[0].electrodes if abs(e.current_ma) >= 1e-6]
    rows = w.state.montage
    assert len(rows) == len(els)
    for r, e in zip(rows, els):
        np.testing.assert_allclose(w.state.electrode_position(r.position), e.position, atol=0.01)
        assert r.current_ma == pytest.approx(e.current_ma) and r.channel is None
    rep = p.report_rows()
    assert rep["Field at target"] == f"{summary['batch_numbers']['field_at_target_v_per_m']:.4g} V/m"
    if mode == "pads":
        rot = summary["pads"]["rotation"]
        assert [r.angle_deg for r in rows] == [rot["anode_angle_deg"], rot["cathode_angle_deg"]]
        assert [s.angle_deg for s in (r.spec() for r in rows)] == [rot["anode_angle_deg"], rot["cathode_angle_deg"]]
        assert "Rotation anode / cathode" in rep
    else:
        assert rep["Ring"].startswith(f"{summary['center_surround']['n_returns']} returns")
        assert not w.state.shown_result.is_ti and w.slices.display.field_short == "|E|"
