"""tACS / tRNS / temporal interference: formula, API and the `navigator simulate tacs|trns|ti` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from navigator.core.errors import NavigatorError
from navigator.fem.spheres import structured_ball_mesh
from navigator.tes.electrodes import ElectrodeSpec
from navigator.tes.simulate import simulate_tdcs
from navigator.tes.simulate_ac import check_pair, parse_direction, simulate_ti
from navigator.tes.ti import ti_envelope_along, ti_max_envelope

EEG = "Electrode,0,0,95,Cz\nElectrode,95,0,0,T8\nElectrode,-95,0,0,T7\nElectrode,0,95,0,Fpz\nElectrode,0,-95,0,Oz\n"


@pytest.fixture(scope="module")
def ball():
    return structured_ball_mesh(6.0)


@pytest.fixture(scope="module")
def subject(ball, tmp_path_factory):
    """Workspace with the ball mesh, EEG positions, a coarse 4 mm "T1" grid and a 60 mm middle-GM sphere."""
    import nibabel as nib
    from scipy.spatial import ConvexHull

    from navigator.core.surface import Surface
    from navigator.core.workspace import Workspace
    from navigator.io.gmsh import write_msh
    from navigator.io.surfaces import write_surface

    ws = Workspace.create(tmp_path_factory.mktemp("ti") / "subj")
    write_msh(ball, ws.path("mesh"))
    ws.path("eeg").parent.mkdir(parents=True, exist_ok=True)
    ws.path("eeg").write_text(EEG)
    aff = np.diag([4.0, 4.0, 4.0, 1.0])
    aff[:3, 3] = -100.0
    ws.path("t1").parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ones((51, 51, 51), np.float32), aff), str(ws.path("t1")))
    u = np.random.default_rng(0).normal(size=(300, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    faces = ConvexHull(u).simplices.copy()
    flip = np.einsum("ij,ij->i", np.cross(u[faces[:, 1]] - u[faces[:, 0]], u[faces[:, 2]] - u[faces[:, 0]]),
                     u[faces].mean(1)) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    ws.path("middle_gm").parent.mkdir(parents=True, exist_ok=True)
    write_surface(Surface(60 * u, faces), ws.path("middle_gm"))
    return ws


def _documented_ti_max(e1: np.ndarray, e2: np.ndarray) -> float:
    """docs/tdcs.md, row by row: order |E1| >= |E2|, make the angle acute, then
    2|E2| if |E2| < |E1| cos(a) else 2|E2 x (E1 - E2)| / |E1 - E2|."""
    if np.linalg.norm(e2) > np.linalg.norm(e1):
        e1, e2 = e2, e1
    if e1 @ e2 < 0:
        e2 = -e2
    cos_a = e1 @ e2 / (np.linalg.norm(e1) * np.linalg.norm(e2))
    if np.linalg.norm(e2) < np.linalg.norm(e1) * cos_a:
        return 2 * np.linalg.norm(e2)
    return 2 * np.linalg.norm(np.cross(e2, e1 - e2)) / np.linalg.norm(e1 - e2)


def test_ti_envelope_analytic_cases_and_documented_formula():
    rng = np.random.default_rng(5)
    E = rng.normal(size=(200, 3))
    # identical carriers: 2|E|; parallel / antiparallel carriers: 2 min(|E1|, |E2|)
    assert np.allclose(ti_max_envelope(E, E), 2 * np.linalg.norm(E, axis=1))
    s = rng.uniform(-3, 3, size=(200, 1))
    assert np.allclose(ti_max_envelope(E, s * E), 2 * np.minimum(1, np.abs(s[:, 0])) * np.linalg.norm(E, axis=1))
    # orthogonal, equal magnitude a: sqrt(2) a (envelope maximal along the bisector)
    assert np.allclose(ti_max_envelope(np.array([[3.0, 0, 0]]), np.array([[0, 3.0, 0]])), 3 * np.sqrt(2))
    assert np.isclose(ti_envelope_along(np.array([[3.0, 0, 0]]), np.array([[0, 3.0, 0]]),
                                        np.array([1.0, 1.0, 0]))[0], 3 * np.sqrt(2))
    # along a direction: parallel fields along n give 2 min; perpendicular n gives 0
    assert np.allclose(ti_envelope_along(E, 0.5 * E, E), np.linalg.norm(E, axis=1))
    # random vectors: the documented formula; bounded by 2 min(|E1|, |E2|); >= any direction
    E1, E2 = rng.normal(size=(500, 3)), rng.normal(size=(500, 3)) * rng.uniform(0.1, 2, size=(500, 1))
    ti = ti_max_envelope(E1, E2)
    assert np.allclose(ti, [_documented_ti_max(a, b) for a, b in zip(E1, E2)], rtol=1e-10)
    assert np.all(ti <= 2 * np.minimum(np.linalg.norm(E1, axis=1), np.linalg.norm(E2, axis=1)) + 1e-12)
    n = rng.normal(size=(500, 3))
    assert np.all(ti_envelope_along(E1, E2, n) <= ti + 1e-12)


def test_pair_and_direction_validation():
    with pytest.raises(NavigatorError, match="exactly two electrodes, got 1"):
        check_pair([ElectrodeSpec("Cz", 1.0)], "--pair1")
    with pytest.raises(NavigatorError, match="sum to zero"):
        check_pair([ElectrodeSpec("Cz", 1.0), ElectrodeSpec("T8", -0.5)], "--pair1")
    assert parse_direction(None) == "normal" and parse_direction("Normal") == "normal"
    assert np.allclose(parse_direction("0,0,2"), [0, 0, 1])
    for bad in ("up", "0,0,0", "1,2"):
        with pytest.raises(NavigatorError, match="--direction"):
            parse_direction(bad)


def test_ti_carriers_match_tdcs_and_reuse_one_system(ball):
    """Carriers = tDCS runs with all four electrodes attached and the other pair at 0 mA; floating
    point electrodes do not change pair 1's field (floating pads shunt pair 2's a little); both
    carriers come from one system (3 unit solves)."""
    p1 = [ElectrodeSpec((0, 0, 95.0), 1.0, "rect", (40, 40)), ElectrodeSpec((95.0, 0, 0), -1.0, "disc", (20,))]
    p2 = [ElectrodeSpec((-95.0, 0, 0), 2.0, "point"), ElectrodeSpec((0, 95.0, 0), -2.0, "point")]
    res = simulate_ti(ball, p1, p2, direction=np.array([0, 0, 1.0]), rtol=1e-10, field="element")
    t1 = simulate_tdcs(ball, p1, rtol=1e-10, field="element")
    off = [ElectrodeSpec(s.position, 0.0, s.shape, s.size_mm) for s in p1]
    t2 = simulate_tdcs(ball, off + p2, rtol=1e-10, field="element")
    t2_alone = simulate_tdcs(ball, p2, rtol=1e-10, field="element")
    rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)  # noqa: E731
    assert rel(res.E1, t1.E) < 1e-6 and rel(res.E2, t2.E) < 1e-6
    assert 1e-6 < rel(res.E2, t2_alone.E) < 0.02
    assert res.system.fem.solver.setup_seconds > 0 and res.summary["solver"]["unit_solves"] == 3
    assert np.allclose(res.TImax, ti_max_envelope(t1.E, t2.E), rtol=1e-5, atol=1e-9)
    assert np.allclose(res.TIdir, ti_envelope_along(t1.E, t2.E, [0, 0, 1]), rtol=1e-5, atol=1e-9)
    assert res.summary["TImax_roi_p99_9_V_per_m"] > 0
    # delivered currents per pair, none at the other frequency
    cur = [(e["pair"], round(e["delivered_current_mA"], 4), round(e["current_at_other_frequency_mA"], 4))
           for e in res.summary["electrodes"]]
    assert cur == [(1, 1.0, 0.0), (1, -1.0, 0.0), (2, 2.0, 0.0), (2, -2.0, 0.0)]
    # identical carriers (pair 1 field against itself): envelope = 2 |E|
    assert np.allclose(ti_max_envelope(res.E1, res.E1), 2 * np.linalg.norm(res.E1, axis=1))


def test_cli_ti_writes_files(subject, tmp_path, capsys):
    from navigator.cli import main
    from navigator.io.gmsh import read_msh
    from navigator.io.surfaces import read_surface

    out = tmp_path / "ti"
    rc = main(["simulate", "ti", str(subject.root), "--pair1", "Cz:1:rect:40x40", "T8:-1:rect:40x40",
               "--pair2", "Fpz:1.5:disc:20", "--pair2=-95,0,0:-1.5:disc:20", "--target", "0,0,60,15",
               "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "peak TI envelope" in printed and "iterations" in printed
    for f in ("fields.msh", "middle_gm_fields.surf.gii", "TImax.nii.gz", "magnE1.nii.gz", "magnE2.nii.gz",
              "E1.nii.gz", "E2.nii.gz", "summary.json"):
        assert (out / f).exists(), f
    s = json.loads((out / "summary.json").read_text())
    assert s["stimulus"] == "ti" and s["direction"] == "normal"
    assert set(s["files"]) >= {"fields.msh", "TImax.nii.gz", "summary.json"}
    assert s["solver"]["iterations"] > 0 and s["solver"]["unit_solves"] == 3
    assert s["TImax_roi_p99_9_V_per_m"] > 0 and s["focality_mm3"]["50"] > 0
    assert s["target"]["mean_TImax_V_per_m"] > 0 and s["target"]["mean_TInormal_V_per_m"] is not None
    assert s["middle_gm"]["TImax_p99_9_V_per_m"] >= s["middle_gm"]["TInormal_p99_9_V_per_m"] > 0
    for k in ("assembly", "solve", "fields", "output_write_msh", "output_nifti", "total"):
        assert k in s["timings_s"], k
    m = read_msh(out / "fields.msh")
    assert {"TImax", "E1", "E2", "magnE1", "magnE2"} <= set(m.tet_data) and {"v1", "v2"} <= set(m.node_data)
    assert np.allclose(m.tet_data["TImax"], ti_max_envelope(m.tet_data["E1"], m.tet_data["E2"]), rtol=1e-5)
    assert np.all(m.tet_data["TImax"] <= 2 * np.minimum(m.tet_data["magnE1"], m.tet_data["magnE2"]) * (1 + 1e-5))
    surf = read_surface(out / "middle_gm_fields.surf.gii")
    assert {"TImax", "TInormal", "magnE1", "magnE2"} <= set(surf.data)
    assert np.all(np.asarray(surf.data["TInormal"]) <= np.asarray(surf.data["TImax"]) * (1 + 1e-5) + 1e-9)
    # a fixed direction adds the volumetric TIdir map
    out2 = tmp_path / "ti_z"
    assert main(["simulate", "ti", str(subject.root), "--pair1", "Cz:1", "T8:-1", "--pair2", "Fpz:1", "-95,0,0:-1",
                 "--direction", "0,0,1", "--no-nifti", "--out", str(out2), "-q"]) == 0
    s2 = json.loads((out2 / "summary.json").read_text())
    assert s2["direction"] == [0, 0, 1] and s2["TIdir_roi_p99_9_V_per_m"] > 0
    assert "TIdir" in read_msh(out2 / "fields.msh").tet_data


@pytest.mark.parametrize("argv, message", [
    (["--pair1", "Cz:1", "T8:-0.5", "--pair2", "Fpz:1", "T7:-1"], "--pair1: currents must sum to zero"),
    (["--pair1", "Cz:1", "--pair2", "Fpz:1", "T7:-1"], "--pair1 needs exactly two electrodes, got 1"),
    (["--pair1", "Cz:1", "T8:-1", "--pair2", "Fpz:1", "T7:-1", "Oz:0"], "--pair2 needs exactly two electrodes"),
    (["--pair1", "Cz:1", "T8:-1"], "give both pairs"),
    (["--pair1", "Cz:1", "T8:-1", "--pair2", "Fpz:1", "T7:-1", "--direction", "up"], "bad --direction"),
    (["--pair1", "Cz:1", "T8:-1", "--pair2", "Cz:1", "T7:-1"], "overlap"),
    (["--pair1", "Cz:1", "Q9:-1", "--pair2", "Fpz:1", "T7:-1"], "unknown 10-10 position"),
])
def test_cli_ti_bad_input_is_one_line_exit_1(subject, tmp_path, capsys, argv, message):
    from navigator.cli import main

    rc = main(["simulate", "ti", str(subject.root), *argv, "--no-nifti", "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 1
    assert err.startswith("navigator: error:") and "\n" not in err and message in err, err


def test_cli_tacs_is_scaled_tdcs_and_trns(subject, tmp_path):
    from navigator.cli import main
    from navigator.io.gmsh import read_msh

    common = ["--no-nifti", "-q"]
    assert main(["simulate", "tdcs", str(subject.root), "-e", "Cz:1:rect:40x40", "-e", "T8:-1:disc:20",
                 "--out", str(tmp_path / "tdcs"), *common]) == 0
    assert main(["simulate", "tacs", str(subject.root), "-e", "Cz:2:rect:40x40", "-e", "T8:-2:disc:20",
                 "--frequency", "10", "--out", str(tmp_path / "tacs"), *common]) == 0
    assert main(["simulate", "trns", str(subject.root), "-e", "Cz:0.5:rect:40x40", "-e", "T8:-0.5:disc:20",
                 "--amplitude", "sd", "--band", "100-640", "--out", str(tmp_path / "trns"), *common]) == 0
    E_dc = read_msh(tmp_path / "tdcs" / "fields.msh").tet_data["E"]
    E_ac = read_msh(tmp_path / "tacs" / "fields.msh").tet_data["E"]
    E_rn = read_msh(tmp_path / "trns" / "fields.msh").tet_data["E"]
    assert np.allclose(E_ac, 2.0 * E_dc, rtol=1e-5, atol=1e-7 * np.abs(E_dc).max())
    assert np.allclose(E_rn, 0.5 * E_dc, rtol=1e-5, atol=1e-7 * np.abs(E_dc).max())
    sdc = json.loads((tmp_path / "tdcs" / "summary.json").read_text())
    sac = json.loads((tmp_path / "tacs" / "summary.json").read_text())
    srn = json.loads((tmp_path / "trns" / "summary.json").read_text())
    assert sac["stimulus"] == "tacs" and sac["tacs"]["frequency_Hz"] == 10 and sac["tacs"]["current_amplitude"] == "peak"
    assert sac["E_roi_p99_9_V_per_m"] == pytest.approx(2 * sdc["E_roi_p99_9_V_per_m"], rel=1e-4)
    # per mA of injected current the three agree
    assert sac["tacs"]["E_roi_p99_9_V_per_m_per_mA"] == pytest.approx(sdc["E_roi_p99_9_V_per_m"], rel=1e-4)
    assert srn["stimulus"] == "trns" and srn["trns"]["band_Hz"] == [100.0, 640.0]
    assert srn["trns"]["current_amplitude"] == "sd"
    assert srn["trns"]["E_roi_p99_9_V_per_m_per_mA"] == pytest.approx(sdc["E_roi_p99_9_V_per_m"], rel=1e-4)
    assert main(["simulate", "tacs", str(subject.root), "-e", "Cz:2", "-e", "T8:-1", *common]) == 1
    assert main(["simulate", "trns", str(subject.root), "-e", "Cz:1", "-e", "T8:-1", "--band", "640", *common]) == 1
