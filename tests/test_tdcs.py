"""tDCS: electrodes, complete electrode model, currents, outputs, CLI, TI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface
from navigator.fem.conductivity import conductivity_per_tet
from navigator.fem.outputs import TargetRegion, write_field_outputs
from navigator.fem.spheres import structured_ball_mesh
from navigator.tes.cem import ElectrodeSystem
from navigator.tes.electrodes import ElectrodeSpec, Scalp, place_electrode
from navigator.tes.montage import load_montage, parse_electrode_spec
from navigator.tes.simulate import simulate_tdcs
from navigator.tes.ti import ti_envelope_along, ti_max_envelope


@pytest.fixture(scope="module")
def ball():
    return structured_ball_mesh(6.0)


def _slab_current(mesh, fem, J, a, c, half_width=10.0):
    """Current crossing the plane through the origin that separates a and c (A), from J = sigma E:
    I = -int J . grad w with w a P1 ramp across a slab (w = 1 on a's side)."""
    n = (a - c) / np.linalg.norm(a - c)
    w = np.clip((mesh.nodes @ n + half_width) / (2 * half_width), 0, 1)
    gw = fem.gradient(w)
    return -float((fem.volumes * np.einsum("ij,ij->i", J, gw)).sum())


def test_pads_deliver_prescribed_currents_equipotential_and_linear(ball):
    sigma = conductivity_per_tet(ball)
    specs = [ElectrodeSpec((0, 0, 95.0), 1.5, "rect", (50, 40)),
             ElectrodeSpec((95.0, 0, 0), -1.0, "ellipse", (40, 30)),
             ElectrodeSpec((-95.0, 0, 0), -0.5, "disc", (20,))]
    scalp = Scalp(ball)
    placed = [place_electrode(scalp, s, np.array(s.position)) for s in specs]
    assert all(len(p.triangles) > 0 for p in placed)
    # footprints are about the nominal size (staircase surface: area within a factor 2)
    for p in placed:
        assert 0.5 < p.contact_area_mm2 / p.spec.nominal_area_mm2() < 2.5
    system = ElectrodeSystem(ball, sigma, placed)
    I = np.array([1.5e-3, -1e-3, -0.5e-3])
    sol = system.solve(I)
    assert np.allclose(sol.delivered_currents, I, rtol=1e-3, atol=0)
    # independent check: nodal reactions K v summed over each contact = current into the tissue
    Kv = system.fem.K @ sol.v
    for p, Ii in zip(placed, I):
        assert abs(Kv[np.unique(p.triangles)].sum() - Ii) < 0.01 * abs(Ii)
    E = -system.fem.gradient(sol.v)
    J = sigma[:, None] * E
    # two-electrode run: the whole current crosses a plane between anode and cathode
    sol2 = system.solve(np.array([2e-3, -2e-3, 0.0]))
    assert np.allclose(sol2.delivered_currents, [2e-3, -2e-3, 0], atol=2e-6)
    E2 = -system.fem.gradient(sol2.v)
    I_plane = _slab_current(ball, system.fem, sigma[:, None] * E2, np.array([0, 0, 95.0]), np.array([95.0, 0, 0]))
    assert abs(I_plane - 2e-3) < 0.01 * 2e-3
    # linearity: currents are reused through unit responses
    sol3 = system.solve(2 * I)
    assert np.allclose(sol3.v, 2 * sol.v, atol=1e-12)
    # electrode potential ordering: anode highest
    assert sol.electrode_potentials[0] > max(sol.electrode_potentials[1:])
    assert np.isfinite(J).all()


def test_point_electrodes_current_through_plane(ball):
    sigma = conductivity_per_tet(ball)
    a, c = np.array([0, 0, 95.0]), 95 * np.array([np.sin(1.0), 0, np.cos(1.0)])
    scalp = Scalp(ball)
    els = [place_electrode(scalp, ElectrodeSpec(tuple(a), 1.0, "point"), a),
           place_electrode(scalp, ElectrodeSpec(tuple(c), -1.0, "point"), c)]
    system = ElectrodeSystem(ball, sigma, els)
    sol = system.solve(np.array([1e-3, -1e-3]))
    assert np.allclose(sol.delivered_currents, [1e-3, -1e-3], rtol=1e-3)
    E = -system.fem.gradient(sol.v)
    I_plane = _slab_current(ball, system.fem, sigma[:, None] * E, a, c, half_width=8.0)
    assert abs(I_plane - 1e-3) < 0.01e-3


def test_bad_montages_raise_clear_errors(ball):
    with pytest.raises(NavigatorError, match="sum to zero"):
        simulate_tdcs(ball, [ElectrodeSpec((0, 0, 95.0), 1.0), ElectrodeSpec((95.0, 0, 0), -0.5)])
    with pytest.raises(NavigatorError, match="overlap"):
        simulate_tdcs(ball, [ElectrodeSpec((0, 0, 95.0), 1.0), ElectrodeSpec((10.0, 0, 94.0), -1.0)])
    with pytest.raises(NavigatorError, match="from the scalp"):
        simulate_tdcs(ball, [ElectrodeSpec((0, 0, 300.0), 1.0), ElectrodeSpec((95.0, 0, 0), -1.0)])
    with pytest.raises(NavigatorError, match="unknown 10-10 position 'Q9'"):
        simulate_tdcs(ball, [ElectrodeSpec("Q9", 1.0), ElectrodeSpec((95.0, 0, 0), -1.0)],
                      eeg_positions={"Cz": np.array([0, 0, 95.0])})
    with pytest.raises(NavigatorError, match="no EEG positions"):
        simulate_tdcs(ball, [ElectrodeSpec("Cz", 1.0), ElectrodeSpec((95.0, 0, 0), -1.0)])
    with pytest.raises(NavigatorError, match="at least two"):
        simulate_tdcs(ball, [ElectrodeSpec((0, 0, 95.0), 0.0)])
    with pytest.raises(NavigatorError, match="unknown electrode shape"):
        ElectrodeSpec((0, 0, 95.0), 1.0, "hexagon")


def test_spec_parsing_and_montage_json(tmp_path):
    s = parse_electrode_spec("F3:2:rect:50x70")
    assert s.position == "F3" and s.current_ma == 2 and s.size_mm == (50, 70) and s.layer == "sponge"
    s = parse_electrode_spec("-40,20.5,60:-1:disc:12")
    assert s.position == (-40, 20.5, 60) and s.size_mm == (12,) and s.layer == "gel"
    assert parse_electrode_spec("Cz:1").shape == "rect"
    for bad in ("F3", "F3:x", "F3:1:star", "1,2:1", "F3:1:rect:big"):
        with pytest.raises(NavigatorError):
            parse_electrode_spec(bad)
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"electrodes": [
        {"position": "F3", "current_mA": 2, "shape": "ellipse", "size_mm": [40, 30], "direction": "Cz"},
        {"position": [1, 2, 3], "current_mA": -2, "shape": "ring", "size_mm": [40, 20]}],
        "conductivity": {"4": 0.008}, "target": {"center_mm": [0, 0, 70], "radius_mm": 8}}))
    m = load_montage(p)
    assert m.electrodes[1].position == (1, 2, 3) and m.conductivity == {4: 0.008}
    assert m.target is not None and m.target.radius_mm == 8
    p.write_text('{"electrodes": [{"position": "F3"}]}')
    with pytest.raises(NavigatorError, match="current_mA"):
        load_montage(p)


def test_outputs_surface_normal_sign_summary_and_nifti(ball, tmp_path):
    from navigator.core.workspace import Workspace
    from navigator.io.gmsh import read_msh
    from navigator.io.surfaces import write_surface

    ws = Workspace.create(tmp_path / "subj")
    # a "middle GM" sphere of radius 60 mm (outward normals)
    from navigator.fem.spheres import structured_ball_mesh as _b  # noqa: F401

    u = np.random.default_rng(0).normal(size=(400, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    from scipy.spatial import ConvexHull

    hull = ConvexHull(u)
    faces = hull.simplices.copy()
    flip = np.einsum("ij,ij->i", np.cross(u[faces[:, 1]] - u[faces[:, 0]], u[faces[:, 2]] - u[faces[:, 0]]),
                     u[faces].mean(1)) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    write_surface(Surface(60 * u, faces), ws.path("middle_gm"))
    cent = ball.tet_centroids()
    E = -2.0 * cent / np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-9)  # 2 V/m pointing inward
    v = np.linalg.norm(ball.nodes, axis=1) * 1e-3 * 2.0
    sigma = conductivity_per_tet(ball)
    from navigator.targets.head import Head

    summary = write_field_outputs(tmp_path / "out", ball, v, E, sigma, grids=Head.of(ws).output_grids(),
                                  target=TargetRegion((0, 0, 60.0), 10.0), nifti_spacing_mm=4.0,
                                  summary_extra={"stimulus": "test"})
    assert summary["target"]["mean_normE_V_per_m"] == pytest.approx(2.0, rel=0.01)  # into the cortex: positive
    assert summary["target"]["mean_magnE_V_per_m"] == pytest.approx(2.0, rel=1e-6)
    assert summary["E_roi_p99_9_V_per_m"] == pytest.approx(2.0)
    assert summary["focality_mm3"]["50"] > 0
    assert summary["conductivity_S_per_m"]["4"]["sigma"] == 0.010
    out = tmp_path / "out"
    for f in ("fields.msh", "middle_gm_fields.surf.gii", "magnE.nii.gz", "E.nii.gz", "v.nii.gz", "summary.json"):
        assert (out / f).exists(), f
    m2 = read_msh(out / "fields.msh")
    assert {"E", "magnE", "J", "magnJ"} <= set(m2.tet_data) and "v" in m2.node_data
    assert np.allclose(m2.tet_data["J"], sigma[:, None] * E)
    import nibabel as nib

    img = nib.load(out / "magnE.nii.gz")
    data = np.asarray(img.dataobj)
    assert np.isclose(data.max(), 2.0, rtol=1e-5) and (data == 0).any()


def test_cli_simulate_tdcs_end_to_end(ball, tmp_path):
    from navigator.cli import main
    from navigator.core.workspace import Workspace
    from navigator.io.gmsh import write_msh

    ws = Workspace.create(tmp_path / "subj")
    rc = main(["simulate", "tdcs", str(ws.root), "-e", "Cz:1", "-e", "T8:-1"])
    assert rc == 1  # no mesh yet
    write_msh(ball, ws.path("mesh"))
    ws.path("eeg").parent.mkdir(parents=True, exist_ok=True)
    ws.path("eeg").write_text("Electrode,0,0,95,Cz\nElectrode,95,0,0,T8\nElectrode,-95,0,0,T7\n")
    out = tmp_path / "sim"
    rc = main(["simulate", "tdcs", str(ws.root), "-e", "Cz:1:rect:40x40", "-e", "T8:-1:disc:20",
               "--electrode=-60,0,-70:0:point", "--conductivity", "5=0.4", "--target", "0,0,70,10",
               "--no-nifti", "--out", str(out), "-q"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["conductivity_S_per_m"]["5"]["sigma"] == 0.4
    assert [round(e["delivered_current_mA"], 4) for e in s["electrodes"]] == [1.0, -1.0, 0.0]
    assert s["solver"]["iterations"] > 0 and s["solver"]["final_relative_residual"] < 1e-7
    assert s["target"]["mean_magnE_V_per_m"] > 0
    assert main(["simulate", "tdcs", str(ws.root), "-e", "Cz:1", "-e", "Fz:-1", "-q"]) == 1
    assert main(["simulate", "tdcs", str(ws.root), "-e", "Cz:1", "-e", "T8:-2", "-q"]) == 1


def test_ti_envelope_matches_brute_force():
    rng = np.random.default_rng(3)
    E1, E2 = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    dirs = rng.normal(size=(20000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    brute = np.array([ti_envelope_along(np.tile(a, (len(dirs), 1)), np.tile(b, (len(dirs), 1)), dirs).max()
                      for a, b in zip(E1, E2)])
    exact = ti_max_envelope(E1, E2)
    assert np.all(exact >= brute - 1e-9)
    assert np.allclose(exact, brute, rtol=0.02)
    # parallel fields: envelope = 2 * weaker field
    assert np.allclose(ti_max_envelope(np.array([[2.0, 0, 0]]), np.array([[-0.5, 0, 0]])), 1.0)
