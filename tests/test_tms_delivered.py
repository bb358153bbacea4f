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


def _trigger(P_ours: np.ndarray, t_ms: int, didt_a_per_us: float, tracked: bool = True) -> str:
    M = ours_to_localite(P_ours) if tracked else np.zeros((4, 4))
    attrs = " ".join(f'data{i}{j}="{float(M[i, j])!r}"' for i in range(4) for j in range(4))
    return (f'<TriggerMarker description="" recordingTime="{t_ms}" responseTime="0" isSelected="false">'
            f'<ResponseValues><Value key="amplitudeA" response="60.0"/><Value key="didtA" response="{didt_a_per_us}"/>'
            f"</ResponseValues><Matrix4D {attrs}/></TriggerMarker>\n")


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
    log.write_text('<?xml version="1.0"?>\n<TriggerMarkerList coordinateSpace="RAS">\n'
                   + _trigger(A, 1000, 50.0) + _trigger(A2, 2000, 100.0) + _trigger(B, 3000, 80.0)
                   + _trigger(A, 4000, 50.0, tracked=False) + "</TriggerMarkerList>\n")
    out = tmp_path / "out"
    summary = simulate_pulse_log_workspace(sphere_ws, "Magstim_D70", log, out_dir=out, nifti=False,
                                           target_spec="subject:0,0,80")
    info = summary["tms_delivered"]
    assert info["n_pulses"] == 3 and info["n_untracked_skipped"] == 1 and info["n_pose_groups"] == 2
    rows = list(csv.DictReader(open(out / "pulses.csv")))
    per_pulse = [float(r["target_mean_magnE_V_per_m"]) for r in rows]
    assert [int(r["pose_group"]) for r in rows] == [0, 0, 1]
    # linear in dI/dt: pulse 2 (same group, twice the dI/dt) carries twice the field of pulse 1
    assert per_pulse[1] == pytest.approx(2 * per_pulse[0], rel=1e-9)
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


def test_delivered_pulses_cli_needs_intensity_when_log_has_none(sphere_ws, tmp_path) -> None:
    from navigator.cli import main

    log = tmp_path / "samples.xml"
    log.write_text('<TriggerMarkerList coordinateSpace="RAS"></TriggerMarkerList>')
    assert main(["simulate", "tms", str(sphere_ws.root), "--coil", "Magstim_D70", "--poses", str(log),
                 "--out", str(tmp_path / "o")]) == 1
