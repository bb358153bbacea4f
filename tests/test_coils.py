"""Coil files (.ccd, .tcd, NIfTI), the parametric builder and the bundled library."""

from __future__ import annotations

import base64
import json
import math
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest

from navigator.core.errors import InputError, NavigatorError
from navigator.tms.ccd import read_ccd, write_ccd
from navigator.tms.coil import Coil
from navigator.tms.grid_coil import read_nifti_coil, sample_coil_on_grid, write_nifti_coil
from navigator.tms.library import LIBRARY, library_coil, load_coil
from navigator.tms.parametric import WindingGeometry, circular_coil, figure_of_eight_coil
from navigator.tms.primary import MU0, vector_potential_coil_frame
from navigator.tms.tcd import read_tcd, safe_unpickle_array, write_tcd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
D70_CCD = DATA / "coils" / "MagStim_D70.ccd"


def test_ccd_one_line_and_header(tmp_path):
    p = tmp_path / "dip.ccd"
    p.write_text("# dip.ccd version 1.0; dIdtmax=100;stimulator=Test Stim;brand=Acme;coilname=Dip;\n1\n"
                 "0.0 0.0 -0.01 0.0 0.0 2.5\n")
    c = read_ccd(p)
    assert c.name == "Dip" and c.brand == "Acme" and c.stimulator == "Test Stim"
    assert c.max_didt == pytest.approx(100e6)
    np.testing.assert_allclose(c.dipole_positions, [[0, 0, -10.0]])  # metres -> mm
    np.testing.assert_allclose(c.dipole_moments, [[0, 0, 2.5]])
    # a bare dipole line (no header, no count) is accepted too
    q = tmp_path / "bare.ccd"
    q.write_text("0.01 0.02 0.03 1 0 0\n")
    np.testing.assert_allclose(read_ccd(q).dipole_positions, [[10, 20, 30]])


def test_ccd_roundtrip_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    c = Coil("rt", dipole_positions=rng.normal(size=(5, 3)) * 10, dipole_moments=rng.normal(size=(5, 3)),
             max_didt=1.5e8, stimulator="S", brand="B")
    write_ccd(c, tmp_path / "rt.ccd")
    d = read_ccd(tmp_path / "rt.ccd")
    np.testing.assert_allclose(d.dipole_positions, c.dipole_positions, rtol=1e-12)
    np.testing.assert_allclose(d.dipole_moments, c.dipole_moments, rtol=1e-12)
    assert d.max_didt == pytest.approx(1.5e8) and d.name == "rt"
    bad = tmp_path / "bad.ccd"
    bad.write_text("# x\n2\n0 0 0 0 0 1\n")
    with pytest.raises(InputError, match="header says 2 dipoles"):
        read_ccd(bad)
    bad.write_text("# x\n1\n0 0 zero 0 0 1\n")
    with pytest.raises(InputError, match="not a number"):
        read_ccd(bad)
    with pytest.raises(InputError, match="not found"):
        load_coil(tmp_path / "missing.ccd")


@pytest.mark.skipif(not D70_CCD.exists(), reason="shared dev data absent")
def test_read_real_d70():
    c = read_ccd(D70_CCD)
    assert c.n_dipoles == 964 and c.name == "D70"
    assert c.max_didt == pytest.approx(114.73e6)
    assert -20 < c.dipole_positions[:, 2].min() and c.dipole_positions[:, 2].max() < 0  # windings above the head


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(arr).tobytes())).decode()


def test_tcd_dipoles_segments_grid_and_deformation(tmp_path):
    pts = [[0.0, 0.0, -10.0], [5.0, 0.0, -10.0]]
    vals = [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]
    doc = {
        "name": "T", "brand": "Acme",
        "stimulatorList": [{"name": "Stim", "maxdIdt": 1.2e8}],
        "coilModels": [{"points": [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
                        "faces": _b64(np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int64))}],
        "coilCasing": 0,
        "deformRangeList": [{"initial": 3.0, "range": [0, 10]}],
        "deformList": [{"type": "z", "deformRange": 0}],
        "coilElementList": [
            {"type": 1, "stimulator": 0, "points": _b64(np.array(pts)), "values": vals, "deformations": [0]},
            {"type": 2, "stimulator": 0, "points": [[0, 0, -20.0]], "values": [[10.0, 0, 0]]},
        ],
    }
    p = tmp_path / "t.tcd"
    p.write_text(json.dumps(doc))
    c = read_tcd(p)
    assert c.name == "T" and c.max_didt == pytest.approx(1.2e8)
    np.testing.assert_allclose(c.dipole_positions, np.array(pts) + [0, 0, 3.0])  # z translation applied
    np.testing.assert_allclose(c.segment_ends, [[10, 0, -20]])
    assert len(c.casing) == 1 and c.casing[0].faces.shape == (4, 3)
    # write -> read round trip keeps the field
    write_tcd(c, tmp_path / "w.tcd")
    c2 = read_tcd(tmp_path / "w.tcd")
    q = np.array([[1.0, 2.0, 15.0], [-20.0, 5.0, 30.0]])
    np.testing.assert_allclose(vector_potential_coil_frame(c2, q), vector_potential_coil_frame(c, q), rtol=1e-12)


class _Boom:
    def __reduce__(self):
        return (eval, ("1+1",))


def test_tcd_grid_pickle_is_decoded_safely(tmp_path):
    grid = np.random.default_rng(0).normal(size=(3, 4, 5, 3))
    ok = safe_unpickle_array(pickle.dumps(grid))
    np.testing.assert_array_equal(ok, grid)
    with pytest.raises(ValueError, match="refusing"):
        safe_unpickle_array(pickle.dumps(_Boom()))
    with pytest.raises(ValueError):
        safe_unpickle_array(pickle.dumps(np.array([_Boom()], dtype=object)))
    base = {"name": "G", "stimulatorList": [{"maxdIdt": 1e8}]}
    el = {"type": 3, "stimulator": 0, "affine": np.eye(4).tolist()}
    p = tmp_path / "g.tcd"
    p.write_text(json.dumps({**base, "coilElementList": [
        {**el, "data": base64.b64encode(zlib.compress(pickle.dumps(grid))).decode()}]}))
    np.testing.assert_array_equal(read_tcd(p).grid.data, grid)
    p.write_text(json.dumps({**base, "coilElementList": [
        {**el, "data": base64.b64encode(zlib.compress(pickle.dumps(_Boom()))).decode()}]}))
    with pytest.raises(InputError, match="refusing to load builtins.eval"):
        read_tcd(p)
    p.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_tcd(p)


def test_nifti_coil_roundtrip_and_interpolation(tmp_path):
    coil = Coil("dip", dipole_positions=[[0, 0, -10.0]], dipole_moments=[[1.0, 0.0, 0.5]], max_didt=1e8,
                stimulator="S")
    grid = sample_coil_on_grid(coil, np.array([[-40, 40], [-40, 40], [0, 60]]), 2.0)
    write_nifti_coil(grid, tmp_path / "c.nii.gz", coil=coil)
    g = read_nifti_coil(tmp_path / "c.nii.gz")
    assert g.max_didt == pytest.approx(1e8) and g.name == "dip"
    pts = np.array([[3.3, -7.1, 21.7], [10.0, 12.5, 35.2]])
    exact = vector_potential_coil_frame(coil, pts)
    approx = vector_potential_coil_frame(g, pts)
    assert np.abs(approx - exact).max() < 0.02 * np.abs(exact).max()
    assert np.all(g.grid.sample([[500.0, 0, 0]]) == 0)


def test_loop_segments_equal_dipole_sheet_and_far_field():
    g = WindingGeometry(inner_radius=20.0, outer_radius=40.0, turns=5, layers=1, winding_height=0.0, bottom_offset=5.0)
    seg = circular_coil("c", g, representation="segments", polygon_sides=180)
    dip = circular_coil("c", g, representation="dipoles", dipole_spacing=2.0)
    pts = np.array([[0, 0, 20.0], [15, 5, 20.0], [40, 0, 25.0], [-30, 30, 40.0]])
    a_s = vector_potential_coil_frame(seg, pts, method="direct")
    a_d = vector_potential_coil_frame(dip, pts, method="direct")
    assert np.abs(a_s - a_d).max() < 0.02 * np.abs(a_s).max()
    # far field: total moment = sum of I pi r^2, A = mu0/(4 pi) m x r / r^3
    m = np.pi * ((g.turn_radii() * 1e-3) ** 2).sum()
    assert dip.dipole_moments[:, 2].sum() == pytest.approx(m, rel=1e-9)
    far = np.array([[2000.0, 300.0, 1500.0]])
    r = (far - [0, 0, -5.0]) * 1e-3
    expect = MU0 / (4 * math.pi) * np.cross([0, 0, m], r) / np.linalg.norm(r) ** 3
    np.testing.assert_allclose(vector_potential_coil_frame(seg, far, method="direct"), expect, rtol=2e-3)


def test_figure_of_eight_field_under_centre_along_y():
    g = WindingGeometry(10.0, 35.0, 10, layers=2, winding_height=8.0, bottom_offset=4.0)
    for rep in ("dipoles", "segments"):
        c = figure_of_eight_coil("f8", g, representation=rep)
        a = vector_potential_coil_frame(c, [[0, 0, 20.0]])[0]
        assert abs(a[1]) > 20 * max(abs(a[0]), abs(a[2]))
        assert len(c.casing) == 2


def test_library_entries_build_with_didt():
    assert {"Magstim_D70", "MagVenture_MCF-B65", "MagVenture_C-B60", "Magstim_DCC_110mm",
            "Magstim_90mm_circular"} <= set(LIBRARY)
    for name in LIBRARY:
        c = library_coil(name)
        assert c.n_dipoles > 100 and c.max_didt and c.max_didt > 1e7 and c.casing and c.notes
    c = load_coil("cool-b65")
    assert c.name == "MagVenture_MCF-B65"
    assert c.didt_from_percent_mso(50) == pytest.approx(0.5 * c.max_didt)
    with pytest.raises(NavigatorError):
        c.didt_from_percent_mso(150)
    with pytest.raises(NavigatorError, match="unknown coil"):
        load_coil("NoSuchCoil")
    # double cone: wings tilted towards the head, net moment horizontal
    dc = library_coil("Magstim_DCC_110mm")
    assert dc.dipole_positions[:, 2].max() > 30
    net = dc.dipole_moments.sum(axis=0)
    assert abs(net[0]) > 10 * abs(net[2])


@pytest.mark.skipif(not D70_CCD.exists(), reason="shared dev data absent")
def test_parametric_d70_matches_measured_model():
    """|dA/dt| on a plane 15 mm below the coil within 10 % of the peak everywhere."""
    ref = read_ccd(D70_CCD)
    par = library_coil("Magstim_D70")
    x, y = np.meshgrid(np.linspace(-100, 100, 41), np.linspace(-100, 100, 41))
    pts = np.stack([x.ravel(), y.ravel(), np.full(x.size, 15.0)], axis=1)
    a_ref = np.linalg.norm(vector_potential_coil_frame(ref, pts), axis=1)
    a_par = np.linalg.norm(vector_potential_coil_frame(par, pts), axis=1)
    err = np.abs(a_par - a_ref).max() / a_ref.max()
    assert err < 0.10, err
    # and the segment representation of the same geometry agrees as well
    e = LIBRARY["Magstim_D70"]
    seg = figure_of_eight_coil("D70s", e.geometry, wing_spacing=e.wing_spacing, representation="segments")
    a_seg = np.linalg.norm(vector_potential_coil_frame(seg, pts), axis=1)
    assert np.abs(a_seg - a_ref).max() / a_ref.max() < 0.10


def test_cli_coils_export_round_trips(tmp_path, capsys):
    """`navigator coils export`: a .ccd reads back as the same dipoles; a NIfTI coil holds the
    coil's vector potential at its grid nodes (GridField.sample returns it there; both sides are
    FMM evaluations with eps 1e-3)."""
    from navigator.cli import main
    from navigator.tms.library import load_coil

    coil = load_coil("Magstim_D70")
    assert main(["coils", "export", "Magstim_D70", str(tmp_path / "d70.ccd")]) == 0
    back = load_coil(str(tmp_path / "d70.ccd"))
    np.testing.assert_allclose(back.dipole_positions, coil.dipole_positions, atol=1e-6)
    np.testing.assert_allclose(back.dipole_moments, coil.dipole_moments, rtol=1e-6, atol=1e-12)
    assert main(["coils", "export", "Magstim_D70", str(tmp_path / "d70.nii.gz"), "--resolution", "25"]) == 0
    grid = read_nifti_coil(tmp_path / "d70.nii.gz").grid
    assert grid.data.shape == (13, 13, 11, 3)
    nodes = np.array([[-150.0, -150.0, -50.0], [0.0, 0.0, 25.0], [50.0, -25.0, 100.0]])
    expected = vector_potential_coil_frame(coil, nodes)  # FMM-evaluated (eps 1e-3), as the export
    np.testing.assert_allclose(grid.sample(nodes), expected, atol=2e-3 * np.abs(expected).max())
    assert main(["coils", "export", "Magstim_D70", str(tmp_path / "d70.txt")]) == 1
    assert "unknown coil format" in capsys.readouterr().err
