"""tES beyond HD currents and pad pairs: temporal-interference optimization (branch and bound vs
brute force, current split, avoid limits), centre-surround Nx1 montages, pad rotation, the
`navigator optimize ti|center-surround` CLI and the plan's channel/frequency records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from navigator.core.errors import NavigatorError
from navigator.optimize.ti import TiRegion, envelope, evaluate_montage, exhaustive_ti, optimize_ti
from navigator.tes.ti import ti_envelope_along, ti_max_envelope

TARGET = "subject:0,30,72"  # in the grey-matter shell (80 mm) under the scalp (90 mm)


def _region(seed: int, L: int = 12, M: int = 150, normals: bool = True) -> TiRegion:
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(L, M, 3))
    F[-1] = 0.0  # the reference electrode
    return TiRegion(F, rng.uniform(0.5, 1.5, M), rng.normal(size=(M, 3)) if normals else None)


def test_envelope_matches_the_documented_formulas():
    rng = np.random.default_rng(3)
    E1, E2, n = rng.normal(size=(50, 3)), rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    np.testing.assert_allclose(envelope(E1, E2, n), ti_envelope_along(E1, E2, n), atol=1e-12)
    np.testing.assert_allclose(envelope(E1, E2), ti_max_envelope(E1, E2), atol=1e-12)
    # the maximal envelope is the maximum over directions of the directional one
    d = rng.normal(size=(4000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    brute = np.array([ti_envelope_along(np.repeat(E1[i:i + 1], len(d), 0), np.repeat(E2[i:i + 1], len(d), 0), d).max()
                      for i in range(10)])
    assert np.all(brute <= envelope(E1[:10], E2[:10]) + 1e-12)
    np.testing.assert_allclose(brute, envelope(E1[:10], E2[:10]), rtol=0.03)


@pytest.mark.parametrize("objective", ["normal", "magnitude"])
def test_branch_and_bound_finds_the_brute_force_optimum(objective):
    reg = _region(1, normals=objective == "normal")
    sol = optimize_ti(reg, objective=objective)
    ref = exhaustive_ti(reg, objective=objective)
    assert sol.objective == pytest.approx(ref.objective, rel=1e-12)
    assert {frozenset(p) for p in sol.pairs} == {frozenset(p) for p in ref.pairs}
    assert sol.currents_a == (2e-3, 2e-3) and sol.total_quadruples == ref.evaluated
    assert sol.evaluated <= sol.total_quadruples
    seeded = optimize_ti(reg, objective=objective, initial=[((0, 1), (2, 3)), ((4, 5), (6, 7))])
    assert seeded.objective == pytest.approx(ref.objective, rel=1e-12)


def test_current_split_when_the_total_limit_binds():
    reg = _region(2)
    sol = optimize_ti(reg, objective="normal", channel_max_a=1.5e-3, total_max_a=2e-3)
    assert sum(sol.currents_a) == pytest.approx(2e-3) and max(sol.currents_a) <= 1.5e-3 + 1e-15
    fine = max(exhaustive_ti(reg, objective="normal", currents_a=(t, 2e-3 - t)).objective
               for t in np.linspace(0.5e-3, 1.5e-3, 101))
    assert sol.objective >= fine * (1 - 1e-6)


def test_avoid_limit_is_respected_or_reported():
    """Avoid region = the target region: the optimum is the best montage whose value stays under the limit."""
    from itertools import combinations

    reg = _region(4)
    free = optimize_ti(reg, objective="normal")
    limit = 0.9 * free.objective
    sol = optimize_ti(reg, objective="normal", avoid=[(reg, limit)])
    pairs = list(combinations(range(12), 2))
    vals = [evaluate_montage(reg, (p, q), (2e-3, 2e-3), objective="normal").objective
            for p, q in combinations(pairs, 2) if not set(p) & set(q)]
    assert sol.avoid[0] <= limit and sol.objective == pytest.approx(max(v for v in vals if v <= limit), rel=1e-12)
    with pytest.raises(NavigatorError, match="avoid"):
        optimize_ti(reg, objective="normal", avoid=[(reg, 0.0)])


@pytest.mark.parametrize("objective", ["normal", "magnitude"])
def test_focality_branch_and_bound_is_exact_and_trades_target_for_avoid(objective):
    """target - w x avoid: the branch and bound finds the brute-force optimum over the split grid
    (refinement only adds), and against the plain optimum the avoid envelope never rises while the
    target loss is at most w times the avoid gain."""
    from navigator.optimize.ti import _boundary_splits

    reg = _region(5, normals=objective == "normal")
    rng = np.random.default_rng(6)
    av = TiRegion(0.7 * rng.normal(size=(12, 60, 3)), np.ones(60), None if reg.normals is None else reg.normals[:60])
    av.fields[-1] = 0.0  # the reference electrode
    w = 1.5
    sol = optimize_ti(reg, objective=objective, avoid=[(av, np.inf)], avoid_weight=w, split_steps=5)
    grid = max(exhaustive_ti(reg, objective=objective, currents_a=tuple(I), avoid=[av], avoid_weight=w).score
               for I in _boundary_splits(2e-3, 4e-3, 5))
    assert sol.score >= grid - 1e-15
    assert sol.score == pytest.approx(sol.objective - w * sol.avoid[0], rel=1e-12)
    assert sol.evaluated <= sol.total_quadruples and sol.info["avoid_weight"] == w
    assert max(sol.currents_a) <= 2e-3 * (1 + 1e-12) and sum(sol.currents_a) <= 4e-3 * (1 + 1e-12)
    plain = optimize_ti(reg, objective=objective, avoid=[(av, np.inf)])
    assert sol.avoid[0] <= plain.avoid[0] + 1e-15
    assert plain.objective - sol.objective <= w * (plain.avoid[0] - sol.avoid[0]) + 1e-15
    with pytest.raises(NavigatorError, match="avoid region"):
        optimize_ti(reg, objective=objective, avoid_weight=1.0)
    with pytest.raises(NavigatorError, match="lower the focality weight"):
        optimize_ti(reg, objective=objective, avoid=[(reg, np.inf)], avoid_weight=1.0)  # avoid = target


def test_center_surround_currents_lp():
    from navigator.optimize.center_surround import optimize_surround, surround_currents

    rng = np.random.default_rng(0)
    G = rng.normal(size=(3, 5))
    d = np.array([0.0, 0.0, 1.0])
    I = surround_currents(G, d, max_total_a=2e-3, max_return_a=1e-3)
    assert I[0] >= 0 and np.all(I[1:] <= 0) and abs(I.sum()) < 1e-15 and I[0] <= 2e-3 + 1e-15
    assert np.all(-I[1:] <= 1e-3 + 1e-15)
    standard = np.array([2e-3, -0.5e-3, -0.5e-3, -0.5e-3, -0.5e-3])
    assert d @ G @ I >= d @ G @ standard - 1e-15
    Im = optimize_surround(G, objective="magnitude", direction=None, max_total_a=2e-3, max_return_a=1e-3)
    assert np.linalg.norm(G @ Im) >= abs(d @ G @ I) - 1e-12


# ------------------------------------------------------------------------------ workspace + CLI
@pytest.fixture(scope="module")
def sphere_ws(tmp_path_factory):
    from navigator.core.workspace import Workspace
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.io.eeg_positions import EegPositions, write_eeg_csv
    from navigator.io.gmsh import write_msh
    from navigator.io.mesh_boundary import outer_surface
    from navigator.io.surfaces import write_surface

    mesh = concentric_sphere_mesh((80.0, 85.0, 90.0), (2, 4, 5), size=10.0)
    ws = Workspace.create(tmp_path_factory.mktemp("tiws") / "sub")
    write_msh(mesh, ws.path("mesh"))
    ws.path("scalp").parent.mkdir(parents=True, exist_ok=True)
    write_surface(outer_surface(mesh), ws.path("scalp"))
    names, pts = [], []
    sites = [(60, 90), (40, 60), (40, 120), (20, 90), (75, 0), (75, 180), (40, 0), (40, 180), (10, 30), (10, 150),
             (60, 45), (60, 135), (25, 60), (25, 120)]
    labels = ["F3", "FT8", "Fp1", "AFz", "Cz", "Pz", "C4", "C3", "Fp2", "FT7", "F5", "F6", "P5", "P6"]
    for (el, az), nm in zip(sites, labels):
        e, a = np.radians(el), np.radians(az)
        pts.append(90 * np.array([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)]))
        names.append(nm)
    write_eeg_csv(EegPositions(names=names, positions=np.array(pts)), ws.path("eeg"))
    return ws


def test_optimize_ti_workspace_and_plan(sphere_ws, tmp_path):
    from navigator.export.plan import load_plan
    from navigator.optimize.tdcs import TdcsSearch, optimize_tdcs_workspace

    res = optimize_tdcs_workspace(sphere_ws, target=TARGET, out_dir=tmp_path / "ti",
                                  search=TdcsSearch(mode="ti", roi_radius_mm=15, electrode_diameter_mm=12, nifti=False))
    n = res.numbers
    s = json.loads((tmp_path / "ti" / "summary.json").read_text())
    assert s["mode"] == "ti" and s["batch_numbers"] == n
    ti = s["ti"]
    # the exhaustive search covers every standard montage: never worse in the leadfield model
    assert all(ti["mean_envelope_leadfield_v_per_m"] >= m["mean_envelope_leadfield_v_per_m"] - 1e-12
               for m in ti["standard_montages"])
    assert n["field_at_target_v_per_m"] > 0 and n["best_standard_v_per_m"] > 0
    assert n["channel1_ma"] == pytest.approx(2.0) and n["channel2_ma"] == pytest.approx(2.0)
    assert n["montages_evaluated"] <= n["montages_total"] == 14 * 13 * 12 * 11 // 8
    assert (tmp_path / "ti" / "fields" / "fields.msh").exists()
    plan = load_plan(tmp_path / "ti" / "plan.json")
    els = plan.montages[0].electrodes
    assert sorted(e.channel for e in els) == [1, 1, 2, 2]
    assert {e.frequency_hz for e in els} == {2000.0, 2010.0}
    for ch in (1, 2):
        assert sum(e.current_ma for e in els if e.channel == ch) == pytest.approx(0.0, abs=1e-12)
    assert res.montage.electrodes[0].channel == 1


def test_cli_optimize_ti(sphere_ws, tmp_path, capsys):
    from navigator.cli import main
    from navigator.export.plan import load_plan

    assert main(["optimize", "ti", str(sphere_ws.root), "--target", TARGET, "--roi-radius", "15",
                 "--direction", "magnitude", "--channel-ma", "1.5", "--total-ma", "2", "--frequencies", "1000,1005",
                 "--electrode-diameter", "12", "--no-nifti", "--out", str(tmp_path / "ti"), "-q"]) == 0
    n = json.loads((tmp_path / "ti" / "summary.json").read_text())["batch_numbers"]
    assert n["channel1_ma"] + n["channel2_ma"] == pytest.approx(2.0) and max(n["channel1_ma"], n["channel2_ma"]) <= 1.5
    assert {e.frequency_hz for e in load_plan(tmp_path / "ti" / "plan.json").montages[0].electrodes} == {1000.0, 1005.0}
    assert main(["optimize", "ti", str(sphere_ws.root), "--target", TARGET, "--frequencies", "2000",
                 "--out", str(tmp_path / "bad"), "-q"]) == 1
    assert "--frequencies" in capsys.readouterr().err



def test_cli_optimize_center_surround_and_pad_rotation(sphere_ws, tmp_path):
    from navigator.cli import main
    from navigator.export.plan import load_plan

    assert main(["optimize", "center-surround", str(sphere_ws.root), "--target", TARGET, "--roi-radius", "15",
                 "--ring-radius", "40", "--returns", "4", "--electrode-diameter", "12", "--no-nifti",
                 "--out", str(tmp_path / "cs"), "-q"]) == 0
    s = json.loads((tmp_path / "cs" / "summary.json").read_text())
    cs = s["center_surround"]
    assert cs["n_returns"] == 4 and len(cs["electrodes"]) == 5
    assert s["batch_numbers"]["field_at_target_v_per_m"] >= cs["standard"]["objective_v_per_m"] - 1e-9
    assert np.allclose(cs["centre_to_return_distance_mm"], 40, atol=6)
    I = [e.current_ma for e in load_plan(tmp_path / "cs" / "plan.json").montages[0].electrodes]
    assert abs(sum(I)) < 1e-9 and max(I) == pytest.approx(2.0)

    assert main(["optimize", "tdcs", str(sphere_ws.root), "--target", TARGET, "--mode", "pads", "--pad-size", "40x60",
                 "--pad-angle-step", "45", "--no-nifti", "--out", str(tmp_path / "pads"), "-q"]) == 0
    s = json.loads((tmp_path / "pads" / "summary.json").read_text())
    rot = s["pads"]["rotation"]
    assert rot["angles_deg"] == [0.0, 45.0, 90.0, 135.0]
    assert rot["objective_v_per_m"] >= rot["objective_unrotated_v_per_m"]
    els = load_plan(tmp_path / "pads" / "plan.json").montages[0].electrodes
    assert all(e.y_axis is not None and abs(np.linalg.norm(e.y_axis) - 1) < 1e-9 for e in els)


AVOID = "subject:35,20,68:15"  # grey matter 36 mm lateral of the target


def test_ti_focality_on_the_sphere_lowers_the_avoid_envelope(sphere_ws, tmp_path):
    """navigator optimize ti --focality on the three-shell sphere: the avoid region's mean envelope
    drops against the plain objective, the target's by at most the weight times that drop; the plan
    carries the avoid region as a target."""
    from navigator.cli import main
    from navigator.export.plan import load_plan

    assert main(["optimize", "ti", str(sphere_ws.root), "--target", TARGET, "--roi-radius", "15",
                 "--avoid", AVOID, "--focality", "2", "--electrode-diameter", "12", "--no-nifti",
                 "--out", str(tmp_path / "foc"), "-q"]) == 0
    s = json.loads((tmp_path / "foc" / "summary.json").read_text())
    n, foc = s["batch_numbers"], s["ti"]["focality"]
    assert s["ti"]["avoid"][0]["limit_v_per_m"] is None  # --focality without --avoid-max: no limit
    plain = foc["plain_objective"]
    assert foc["avoid_mean_v_per_m"] < 0.8 * plain["avoid_mean_v_per_m"]
    assert plain["target_v_per_m"] - foc["target_v_per_m"] <= 2 * (plain["avoid_mean_v_per_m"]
                                                                  - foc["avoid_mean_v_per_m"]) + 1e-12
    assert foc["score_v_per_m"] >= plain["score_v_per_m"] - 1e-12
    assert n["avoid_ratio_vs_plain"] == pytest.approx(foc["avoid_mean_v_per_m"] / plain["avoid_mean_v_per_m"])
    assert n["avoid_envelope_v_per_m"] > 0  # the CEM check of the chosen montage
    plan = load_plan(tmp_path / "foc" / "plan.json")
    assert [t.name for t in plan.targets] == ["target", "avoid1"] and "focality" in plan.notes
    np.testing.assert_allclose(plan.targets[1].position, [35, 20, 68], atol=12)
    # an explicit limit is kept as a constraint
    assert main(["optimize", "ti", str(sphere_ws.root), "--target", TARGET, "--roi-radius", "15",
                 "--avoid", AVOID, "--focality", "2", "--avoid-max", "1e-9", "--electrode-diameter", "12",
                 "--no-nifti", "--out", str(tmp_path / "none"), "-q"]) == 1


@pytest.fixture(scope="module")
def head_ws(tmp_path_factory):
    """The five-shell test head with fiducials and both caps from the targets step."""
    from navigator.gui.testing import write_sphere_subject

    return write_sphere_subject(tmp_path_factory.mktemp("cap1005") / "sphere", mesh_size_mm=12.0, t1_spacing_mm=4.0)


def test_ti_and_hd_on_the_10_05_cap(head_ws, tmp_path):
    """The targets step stores the 10-05 cap; `--cap 10-05` makes its sites the TI and HD
    candidates (thinned to the disc size, 10-10 sites first) and the plan names 10-05 positions."""
    from navigator.cli import main
    from navigator.export.plan import load_plan
    from navigator.io.eeg_positions import read_eeg_csv
    from navigator.optimize.tes_common import cap_positions, spaced_sites
    from navigator.targets.eeg import is_10_10_name
    from navigator.targets.head import Head

    cap = read_eeg_csv(head_ws.root / "targets/eeg_caps/EEG10-05.csv")
    assert len(cap.names) == 343 and set(cap.fiducials) == {"Nz", "Iz", "LPA", "RPA"}
    ten = cap_positions(Head.of(head_ws))
    assert all(np.array_equal(cap[n], p) for n, p in ten.items())  # the 10-10 sites are 10-05 sites
    target = "subject:-30,20,75"
    assert main(["optimize", "ti", str(head_ws.root), "--target", target, "--cap", "10-05", "--electrode-gap", "6",
                 "--no-nifti", "--out", str(tmp_path / "ti"), "-q"]) == 0
    s = json.loads((tmp_path / "ti" / "summary.json").read_text())
    sites = s["ti"]["cap"]
    assert sites["cap"] == "10-05" and sites["positions"] == 343 and sites["min_spacing_mm"] == 16.0
    assert len(ten) < sites["sites"] == s["batch_numbers"]["leadfield_electrodes"] < 343
    assert sites["sites"] + len(sites["left_out"]) == 343
    # the 10-10 cap's sites go first: which of them stay does not depend on the 10-05 additions
    spaced_out = [n for n in sites["left_out"] if n not in sites["left_out_overlapping"]]
    assert set(spaced_out) & set(ten) == set(spaced_sites(ten, 16.0)[1])
    kept = [n for n in cap.names if n not in spaced_out]
    P = np.array([cap[n] for n in kept])
    D = np.linalg.norm(P[:, None] - P[None], axis=2) + 1e9 * np.eye(len(P))
    assert D.min() >= 16.0 and any(not is_10_10_name(n) for n in spaced_out)
    assert all(np.linalg.norm(P - cap[n], axis=1).min() < 16.0 for n in spaced_out)
    names = {e.name for e in load_plan(tmp_path / "ti" / "plan.json").montages[0].electrodes}
    assert len(names) == 4 and names <= set(cap.names)
    assert main(["optimize", "tdcs", str(head_ws.root), "--target", target, "--mode", "hd", "--cap", "10-05",
                 "--no-nifti", "--out", str(tmp_path / "hd"), "-q"]) == 0
    hd = json.loads((tmp_path / "hd" / "summary.json").read_text())["hd"]
    assert hd["cap"]["cap"] == "10-05" and len(hd["currents_mA"]) == hd["cap"]["sites"] > len(ten)
    assert main(["optimize", "center-surround", str(head_ws.root), "--target", target, "--cap", "10-05", "--on-cap",
                 "--ring-radius", "35", "--no-nifti", "--out", str(tmp_path / "cs"), "-q"]) == 0
    cs = json.loads((tmp_path / "cs" / "summary.json").read_text())["center_surround"]
    on = [e["name"] for e in cs["electrodes"]]
    assert cs["cap"] == "10-05" and len(set(on)) == 5 and set(on) <= set(cap.names)
    assert all(e["nearest_cap_position"] == e["name"] for e in cs["electrodes"])
    entry = Head.of(head_ws).target(target).scalp_entry
    assert np.linalg.norm(cap[on[0]] - entry) < 12.0  # the 10-05 site nearest the target


def test_search_parameters_are_checked():
    from navigator.optimize.tdcs import TdcsSearch

    assert TdcsSearch.from_params({"mode": "ti", "ti_channel_ma": 1.0}).ti_channel_ma == 1.0
    with pytest.raises(NavigatorError, match="frequencies"):
        TdcsSearch(mode="ti", ti_frequencies_hz=(2000.0,))
    with pytest.raises(NavigatorError, match="surround currents"):
        TdcsSearch(mode="center-surround", surround_currents="best")


def test_plan_channel_frequency_and_pad_axis_round_trip(tmp_path):
    """plan.json and the plain JSON exporter (LPS) keep each electrode's channel, frequency and
    pad y axis; plans without them are written as before."""
    from navigator.cli import main
    from navigator.export.plan import Electrode, Montage, Plan, load_plan, save_plan

    els = [Electrode("F3", (-40, 30, 40), 2.0, "disc", (10, 10), channel=1, frequency_hz=2000.0),
           Electrode("FT7", (-70, -3, -30), -2.0, "disc", (10, 10), channel=1, frequency_hz=2000.0),
           Electrode("F1", (-20, 30, 50), 1.5, "rect", (50, 70), channel=2, frequency_hz=2010.0,
                     y_axis=(0.0, 0.6, 0.8)),
           Electrode("PO10", (40, -100, -60), -1.5, "rect", (50, 70), channel=2, frequency_hz=2010.0)]
    save_plan(Plan("ti", montages=[Montage("ti", els)]), tmp_path / "plan.json")
    assert "channel" not in Electrode("Cz", (0, 0, 90), 1.0).to_json()
    assert main(["export", str(tmp_path / "plan.json"), "--format", "json", "--space", "lps",
                 "--out", str(tmp_path / "x.json"), "-q"]) == 0
    assert main(["import-plan", str(tmp_path / "x.json"), "--out", str(tmp_path / "back.json"), "-q"]) == 0
    for path in (tmp_path / "plan.json", tmp_path / "back.json"):
        back = load_plan(path).montages[0].electrodes
        assert [(e.channel, e.frequency_hz) for e in back] == [(e.channel, e.frequency_hz) for e in els]
        np.testing.assert_allclose(back[2].y_axis, [0.0, 0.6, 0.8], atol=1e-12)
        np.testing.assert_allclose(back[3].position, els[3].position, atol=1e-9)
        assert back[3].y_axis is None
