"""Re-simulating the pulses delivered in a session (`navigator simulate tms --poses FILE`)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from navigator.export.conventions import ours_to_localite


def _pose(centre, handle_deg: float) -> np.ndarray:
    a = np.deg2rad(handle_deg)
    y = np.array([np.sin(a), np.cos(a), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    x = np.cross(y, z)
    P = np.eye(4)
    P[:3, 0], P[:3, 1], P[:3, 2], P[:3, 3] = x, y, z, centre
    return P


def _trigger(P_ours: np.ndarray, t_ms: int, didt_a_per_us: float | str, tracked: bool = True,
             amplitude: str = "60.0") -> str:
    """A TriggerMarker as TMS Navigator writes it (untracked: identity matrix, set="false")."""
    M = ours_to_localite(P_ours) if tracked else np.eye(4)
    attrs = " ".join(f'data{i}{j}="{float(M[i, j])!r}"' for i in range(4) for j in range(4))
    return (f'<TriggerMarker color="#ffafaf" description="" recordingTime="{t_ms}" selected="false" '
            f'set="{str(tracked).lower()}" visibility="true"><ResponseValues>'
            f'<Value key="valueA" response="{didt_a_per_us}"/><Value key="response" response="NaN"/>'
            f'<Value key="amplitudeA" response="{amplitude}"/></ResponseValues><Matrix4D {attrs}/></TriggerMarker>\n')


HEADER = ('<?xml version="1.0" encoding="UTF-8"?>\n<TriggerMarkerList coordinateSpace="RAS" isOnlineReading="false" '
          'startTime="13:55:07.658">\n<ResponseParameters selectedResponseChannel="0">'
          '<responseDescription id="response" maxValue="51200.0" minValue="-51200.0" name="Response" unit="uV"/>'
          '<responseDescription id="valueA" maxValue="200.0" minValue="0.0" name="Value A (di/dt)" unit="A/us"/>'
          '<responseDescription id="amplitudeA" maxValue="100.0" minValue="0.0" name="Amplitude A" unit="%"/>'
          "</ResponseParameters>\n")


@pytest.fixture(scope="module")
def sphere_ws(tmp_path_factory):
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.io.gmsh import write_msh
    from navigator.meshing.import_head import import_mesh

    d = tmp_path_factory.mktemp("deliv")
    mesh = concentric_sphere_mesh(radii=(85.0, 90.0, 95.0), tags=(3, 4, 5), size=12.0)
    write_msh(mesh, d / "sphere.msh")
    return import_mesh(d / "sphere.msh", d / "ws")


def test_delivered_pulses_match_single_simulations(sphere_ws, tmp_path) -> None:
    from navigator.tms.delivered import simulate_pulse_log_workspace
    from navigator.tms.simulate import simulate_tms_workspace

    top = np.array([0.0, 0.0, 99.0])
    A = _pose(top, 0.0)
    A2 = _pose(top + [0.3, 0.0, 0.0], 0.5)  # within 1 mm / 2 deg of A: same group
    B = _pose(top, 90.0)  # rotated handle: its own group
    log = tmp_path / "TriggerMarkers_Coil0.xml"
    log.write_text(HEADER + _trigger(A, 1000, 50.0) + _trigger(A2, 2000, 100.0) + _trigger(B, 3000, 80.0)
                   + _trigger(A, 4000, "NaN", tracked=False, amplitude="0.0")
                   + _trigger(A, 5000, "NaN", amplitude="40.0")  # stimulator reported %MSO only
                   + "</TriggerMarkerList>\n")
    out = tmp_path / "out"
    summary = simulate_pulse_log_workspace(sphere_ws, "Magstim_D70", log, out_dir=out, nifti=False,
                                           target_spec="subject:0,0,80")
    info = summary["tms_delivered"]
    assert info["n_pulses"] == 4 and info["n_untracked_skipped"] == 1 and info["n_pose_groups"] == 2
    rows = list(csv.DictReader(open(out / "pulses.csv")))
    per_pulse = [float(r["target_mean_magnE_V_per_m"]) for r in rows]
    assert [int(r["pose_group"]) for r in rows] == [0, 0, 1, 0]
    # linear in dI/dt: pulse 2 (same group, twice the dI/dt) carries twice the field of pulse 1
    assert per_pulse[1] == pytest.approx(2 * per_pulse[0], rel=1e-9)
    # each pulse's intensity and its source are stated (pulses.csv and summary)
    from navigator.tms.delivered import FROM_LOG_DIDT, FROM_LOG_MSO
    from navigator.tms.library import load_coil

    max_didt = load_coil("Magstim_D70").max_didt
    assert [r["intensity_source"] for r in rows] == [FROM_LOG_DIDT] * 3 + [FROM_LOG_MSO]
    np.testing.assert_allclose([float(r["didt_A_per_s"]) for r in rows], [50e6, 100e6, 80e6, 0.4 * max_didt])
    assert per_pulse[3] == pytest.approx(per_pulse[0] * 0.4 * max_didt / 50e6, rel=1e-9)
    per = info["intensity"]["per_pulse"]
    assert [p["source"] for p in per] == [r["intensity_source"] for r in rows]
    assert info["intensity"]["counts_by_source"] == {FROM_LOG_DIDT: 3, FROM_LOG_MSO: 1}
    assert "3 from log dI/dt (50.0-100.0 A/us)" in info["intensity"]["summary"]
    assert "valueA" in info["intensity"]["log_didt_source"]
    # pulse 3 against a direct simulation of pose B at 80 A/us
    run = simulate_tms_workspace(sphere_ws, "Magstim_D70", pose=B, didt=80e6, out_dir=tmp_path / "single",
                                 nifti=False)
    from navigator.io.gmsh import read_msh
    from navigator.targets.roi import SphereRoi

    mesh = read_msh(sphere_ws.path("mesh"))
    roi = SphereRoi(np.array([0.0, 0.0, 80.0]), 10.0).tet_mask(mesh)
    vol = mesh.tet_volumes()
    direct = float((run.fields.magnE[roi] * vol[roi]).sum() / vol[roi].sum())
    assert per_pulse[2] == pytest.approx(direct, rel=1e-6)
    s = json.loads((out / "summary.json").read_text())
    assert s["tms_delivered"]["target_mean_magnE_over_pulses_V_per_m"]["max"] == pytest.approx(max(per_pulse))


def test_delivered_pulses_cli_needs_intensity_when_log_has_none(sphere_ws, tmp_path, capsys) -> None:
    from navigator.cli import main

    log = tmp_path / "TriggerMarkers_Coil0_1.xml"
    top = _pose(np.array([0.0, 0.0, 99.0]), 0.0)
    log.write_text(HEADER + _trigger(top, 1000, "NaN", amplitude="0.0") + "</TriggerMarkerList>\n")
    assert main(["simulate", "tms", str(sphere_ws.root), "--coil", "Magstim_D70", "--poses", str(log),
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 pulse(s) carry no intensity in the log; give --didt or --intensity" in err[0]
    empty = tmp_path / "empty.xml"
    empty.write_text('<TriggerMarkerList coordinateSpace="RAS"></TriggerMarkerList>')
    assert main(["simulate", "tms", str(sphere_ws.root), "--coil", "Magstim_D70", "--poses", str(empty),
                 "--out", str(tmp_path / "o")]) == 1
    assert "the log holds no pulses" in capsys.readouterr().err
