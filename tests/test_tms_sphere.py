"""TMS in a sphere: the analytic solution (Heller & van Hulsteyn 1992) and the FEM against it,
plus the `navigator simulate tms` command end to end on a sphere workspace."""

from __future__ import annotations

import json

import numpy as np
import pytest

from navigator.tms.analytic import sphere_dipole_e_field
from navigator.tms.ccd import read_ccd
from navigator.tms.primary import dipole_vector_potential

R0 = np.array([0.0, 0.0, 110.0])  # dipole 15 mm above the 95 mm sphere, mm
M = np.array([1.0, 0.0, 1.0]) / np.sqrt(2)  # tilted: surface charges matter


def _jacobian(f, p, h=1e-6):
    return np.stack([(f(p + e) - f(p - e))[0] / (2 * h) for e in np.eye(3) * h], axis=1)


def test_analytic_solution_properties():
    """E . r = 0, div E = 0, and E + dA/dt is curl-free (E = -dA/dt - grad phi)."""
    r0, didt = R0 * 1e-3, 1e6
    def e_tot(p):
        return sphere_dipole_e_field(r0, M, p, didt)

    def e_sec(p):
        return e_tot(p) + didt * dipole_vector_potential(r0[None], M[None], p, method="direct")

    for p in ([0.02, 0.01, 0.06], [-0.03, 0.04, 0.05], [0.0, -0.05, -0.02]):
        p = np.array([p])
        e = e_tot(p)[0]
        assert abs(np.dot(e, p[0])) < 1e-12 * np.linalg.norm(e) * np.linalg.norm(p)
        j = _jacobian(e_tot, p)
        assert abs(np.trace(j)) < 1e-6 * np.abs(j).max()
        js = _jacobian(e_sec, p)
        curl = np.array([js[2, 1] - js[1, 2], js[0, 2] - js[2, 0], js[1, 0] - js[0, 1]])
        assert np.linalg.norm(curl) < 1e-6 * np.abs(js).max()
    # linear in dI/dt and in the moment
    p = np.array([[0.01, 0.02, 0.03]])
    np.testing.assert_allclose(sphere_dipole_e_field(r0, 2 * M, p, 3e6), 6 * sphere_dipole_e_field(r0, M, p, 1e6))


def _rdm_mag(a, b):
    rdm = np.linalg.norm(a / np.linalg.norm(a) - b / np.linalg.norm(b))
    mag = abs(np.log(np.linalg.norm(a) / np.linalg.norm(b)))
    return rdm, mag


def _sphere_errors(tmp_path, size, field="recovered"):
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.tms.simulate import solve_tms

    ccd = tmp_path / "dipole.ccd"
    ccd.write_text("# dipole.ccd version 1.0; coilname=dipole;\n1\n0 0 0 %.17g 0 %.17g\n" % (M[0], M[2]))
    coil = read_ccd(ccd)
    mesh = concentric_sphere_mesh(radii=(85.0, 90.0, 95.0), tags=(3, 4, 5), size=size)
    pose = np.eye(4)
    pose[:3, 3] = R0
    f = solve_tms(mesh, coil, pose, 1e6, field=field)
    inner = mesh.tet_tags == 3
    ea = sphere_dipole_e_field(R0 * 1e-3, M, mesh.tet_centroids()[inner] * 1e-3, 1e6)
    errors = {"recovered" if field == "recovered" else "element": _rdm_mag(f.E[inner], ea)}
    if field == "recovered":
        errors["element"] = _rdm_mag(f.E_element[inner], ea)
    return errors, mesh.n_tets


@pytest.fixture(scope="module")
def test_errors(tmp_path_factory):
    return _sphere_errors(tmp_path_factory.mktemp("sph"), 6.0)


def test_fem_sphere_against_analytic(test_errors):
    """Inner-shell elements, 6 mm elements (~96k tets): the reported (patch-recovered) field
    meets the targets RDM <= 0.05 and MAG <= 0.03 (measured 0.046 / 0.007); the raw P0 field
    (first order, RDM ~0.14 here) is clearly worse. docs/validation.md has the refinement study."""
    errors, n_tets = test_errors
    assert n_tets < 150_000
    rdm, mag = errors["recovered"]
    assert mag <= 0.03, mag
    assert rdm <= 0.05, rdm
    rdm_el, mag_el = errors["element"]
    assert mag_el <= 0.03, mag_el
    assert rdm < 0.5 * rdm_el, (rdm, rdm_el)


def test_fem_sphere_improves_under_refinement(tmp_path, test_errors):
    (rdm6, _) = test_errors[0]["recovered"]
    errors8, n_tets = _sphere_errors(tmp_path, 8.0)
    assert n_tets < 60_000
    rdm8, mag8 = errors8["recovered"]
    assert rdm6 < 0.9 * rdm8 and mag8 <= 0.03
    assert rdm8 < 0.5 * errors8["element"][0]


@pytest.fixture(scope="module")
def sphere_workspace(tmp_path_factory):
    from navigator.core.workspace import Workspace
    from navigator.fem.spheres import concentric_sphere_mesh
    from navigator.io.gmsh import write_msh

    root = tmp_path_factory.mktemp("tmsws") / "sphere"
    ws = Workspace.create(root)
    mesh = concentric_sphere_mesh(radii=(80.0, 86.0, 92.0), tags=(2, 4, 5), size=10.0)
    ws.path("mesh").parent.mkdir(parents=True)
    write_msh(mesh, ws.path("mesh"))
    ws.path("eeg").parent.mkdir(parents=True)
    c3 = 92.0 * np.array([-0.6, 0.1, 0.8]) / np.linalg.norm([-0.6, 0.1, 0.8])
    ws.path("eeg").write_text("Electrode,%.3f,%.3f,%.3f,C3\n" % tuple(c3))
    return root


def test_cli_simulate_tms_eeg_target(sphere_workspace):
    from navigator.cli import main

    out = sphere_workspace / "simulations" / "tms_c3"
    rc = main(["simulate", "tms", str(sphere_workspace), "--coil", "D70", "--target", "eeg:C3",
               "--intensity", "50", "--no-nifti", "--out", str(out), "-q"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    pose = json.loads((out / "pose.json").read_text())
    assert (out / "fields.msh").exists()
    assert s["tms"]["didt_A_per_s"] == pytest.approx(0.5 * 114.73e6)
    P = np.array(pose["placement"]["pose"])
    assert P[:3, 1][0] < 0 and P[:3, 1][1] < 0  # left target: handle back and to the left
    assert s["tms"]["casing_collides"] is False
    assert s["target"]["mean_magnE_V_per_m"] > 10  # ~50-100 V/m at 50 % MSO
    assert 20 < s["E_roi_p99_9_V_per_m"] < 400
    from navigator.io.gmsh import read_msh

    m = read_msh(out / "fields.msh")
    assert {"E", "magnE", "D"} <= set(m.tet_data) and "v" in m.node_data
    from navigator.io.surfaces import read_surface as read_gifti_surface

    casing = read_gifti_surface(out / "coil_casing.surf.gii")
    assert np.linalg.norm(casing.vertices.mean(axis=0)) > 92  # the posed casing sits outside the head


def test_cli_simulate_tms_pose_and_ccd(sphere_workspace, tmp_path):
    from navigator.cli import main
    from navigator.tms.ccd import write_ccd
    from navigator.tms.library import library_coil

    ccd = tmp_path / "b65.ccd"
    write_ccd(library_coil("MCF-B65"), ccd)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2] = [1, 0, 0], [0, -1, 0], [0, 0, -1]
    pose[:3, 3] = [0, 0, 96.0]
    out = tmp_path / "posed"
    rc = main(["simulate", "tms", str(sphere_workspace), "--coil", str(ccd), "--pose",
               ",".join(map(str, pose.ravel())), "--didt", "1e6", "--no-nifti", "--out", str(out), "-q"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["tms"]["target_region_kind"] == "first grey matter on the coil axis"
    assert s["tms"]["percent_mso"] == pytest.approx(100 / 150, rel=1e-3)
    assert main(["simulate", "tms", str(sphere_workspace), "--coil", "D70", "--pose", "1,2,3",
                 "--didt", "1e6", "--out", str(out), "-q"]) == 1


def test_cli_coils(capsys):
    from navigator.cli import main

    assert main(["coils", "list"]) == 0
    assert "Magstim_D70" in capsys.readouterr().out
    assert main(["coils", "show", "double-cone"]) == 0
    assert "wing angle 42.5" in capsys.readouterr().out
