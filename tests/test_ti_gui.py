"""The desktop app's tDCS panel: the optimization method choice (HD, pads + rotation, temporal
interference, centre-surround) and its settings make the TdcsSearch the CLI and batch use."""

from __future__ import annotations

import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

pytestmark = pytest.mark.gui


class _Window:
    def optimize_tdcs(self) -> None:
        self.optimized = True


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
    assert [p.opt_mode.itemData(i) for i in range(p.opt_mode.count())] == list(MODES)
    p.opt_mode.setCurrentIndex(MODES.index("ti"))
    p.ti_channel.setValue(1.5)
    p.ti_total.setValue(3.0)
    p.ti_f1.setValue(1000)
    p.ti_f2.setValue(1020)
    p.opt_objective.setCurrentIndex(1)
    assert p.search() == TdcsSearch(mode="ti", objective="magnitude", ti_channel_ma=1.5, ti_total_ma=3.0,
                                    ti_frequencies_hz=(1000.0, 1020.0))
    form = p.opt_form
    visible = {k: form.isRowVisible(row) for k, (row, _m) in p._rows.items()}
    assert visible["ti_channel"] and visible["ti_freq"] and not visible["active"] and not visible["cs_radius"]
    p.grab().save(str(tmp_path / "tdcs_panel_ti.png"))
    p.opt_mode.setCurrentIndex(MODES.index("center-surround"))
    p.cs_returns.setValue(6)
    p.cs_radius.setValue(40)
    p.cs_currents.setCurrentText("standard")
    s = p.search()
    assert (s.mode, s.n_returns, s.ring_radius_mm, s.surround_currents) == ("center-surround", 6, 40.0, "standard")
    assert form.isRowVisible(p._rows["cs_radius"][0]) and not form.isRowVisible(p._rows["ti_channel"][0])
    p.opt_mode.setCurrentText("pads")
    p.opt_angle.setValue(30)
    assert p.search().mode == "pads" and p.search().pad_angle_step_deg == 30.0
    p.optimize.click()
    assert p.window.optimized
