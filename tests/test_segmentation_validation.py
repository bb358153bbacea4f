"""Scoring against reference labels (navigator.segmentation.validation) on synthetic label images
with known answers, and the benchmark front end (benchmarks/validate_segmentation.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from navigator.segmentation import validation as V

REPO = Path(__file__).resolve().parents[1]
N = 116  # 1 mm grid, head centred


def _radius(shape=(N, N, N), centre=None, spacing=1.0):
    c = (np.array(shape) - 1) / 2.0 if centre is None else np.asarray(centre, float)
    g = np.indices(shape, dtype=np.float32)
    return np.sqrt(sum(((g[i] - c[i]) * spacing) ** 2 for i in range(3)))


def _head(r_wm=30.0, r_gm=36.0, r_csf=40.0, skull=8.0, r_scalp=54.0, simnibs=True):
    """Concentric-sphere head on a 1 mm grid, SimNIBS labels (compact/spongy/compact skull) or
    charm5 labels (one bone class)."""
    r = _radius()
    lab = np.zeros(r.shape, np.uint8)
    lab[r <= r_scalp] = 5
    r_bone = r_csf + skull
    if simnibs:
        lab[r <= r_bone] = 7
        lab[(r <= r_bone - 2) & (r > r_csf + 2)] = 8
    else:
        lab[r <= r_bone] = 4
    lab[r <= r_csf] = 3
    lab[r <= r_gm] = 2
    lab[r <= r_wm] = 1
    return lab


def _affine(spacing=1.0):
    a = np.diag([spacing, spacing, spacing, 1.0])
    a[:3, 3] = -(N - 1) / 2.0 * spacing
    return a


def test_identical_heads_score_perfectly_and_pass_every_gate():
    ours = _head()
    ours[(_radius(centre=(40, 100, 50)) <= 4) & (ours == 5)] = 6  # an "eye" in the scalp class
    ref = _head(simnibs=False)
    res, oc, rc = V.score_segmentation(ours, _affine(), ref, _affine(), V.CHARM5)
    assert all(c.dice == 1.0 for c in res.classes), res.classes
    assert res.icv_difference == 0.0 and res.intracranial_dice == 1.0 and res.vault_skull_dice == 1.0
    assert res.thickness_difference_mm == 0.0
    # the designed skull is 8 mm thick; the voxel measure is within a voxel of it
    assert 7.0 <= res.thickness_ours_mm <= 9.0, res.thickness_ours_mm
    assert res.passed and len(res.gates) == len(V.ISSUE20_GATES)
    # volumes in ml match the analytic sphere volumes within voxelisation error
    icv = 4 / 3 * np.pi * 40.0 ** 3 / 1000
    assert res.icv_ours_ml == pytest.approx(icv, rel=0.01)
    assert res.class_score("WM").volume_ours_ml == pytest.approx(4 / 3 * np.pi * 30.0 ** 3 / 1000, rel=0.01)
    assert np.array_equal(oc, rc)


def test_enlarged_intracranial_space_gives_the_analytic_dice_and_icv_difference():
    ref = _head(simnibs=False)
    ours = _head(r_csf=42.0, skull=6.0)  # ICV larger, the outer table at the same place
    res, _, _ = V.score_segmentation(ours, _affine(), ref, _affine(), V.CHARM5)
    expect_diff = (42.0 ** 3 - 40.0 ** 3) / 40.0 ** 3
    assert res.icv_difference == pytest.approx(expect_diff, abs=0.01)
    assert res.intracranial_dice == pytest.approx(2 * 40.0 ** 3 / (40.0 ** 3 + 42.0 ** 3), abs=0.005)
    # CSF shell 36-40 vs 36-42
    v_ref, v_ours = 40.0 ** 3 - 36.0 ** 3, 42.0 ** 3 - 36.0 ** 3
    assert res.class_score("CSF").dice == pytest.approx(2 * v_ref / (v_ref + v_ours), abs=0.01)
    assert res.thickness_difference_mm == pytest.approx(-2.0, abs=0.6)
    gates = {g.name: g for g in res.gates}
    assert not gates["|ICV difference| %"].passed and not gates["intracranial dice"].passed
    assert not gates["|thickness difference| mm"].passed
    assert gates["dice WM"].passed and gates["dice GM"].passed
    assert not res.passed
    table = V.format_table(res)
    assert "FAIL" in table and "PASS" in table and "intracranial volume" in table


def test_vault_excludes_the_skull_base():
    ref = _head(simnibs=False)
    ours = ref.copy()
    z = V.world_superior(ours.shape, _affine())
    base = (ours == 4) & (z < -20.0)  # our skull base is wrong: scalp instead of bone
    ours[base] = 5
    res, _, _ = V.score_segmentation(ours, _affine(), ref, _affine(), V.CHARM5)
    assert res.class_score("bone").dice < 0.9
    assert res.vault_skull_dice == 1.0 and res.thickness_difference_mm == 0.0
    # the plane is the centroid (world z = 0 here) + the offset
    assert res.vault_plane_z_mm == pytest.approx(V.VAULT_OFFSET_MM, abs=0.01)
    # with the plane moved below the error, the vault skull Dice sees it
    res2, _, _ = V.score_segmentation(ours, _affine(), ref, _affine(), V.CHARM5, vault_offset_mm=-40.0)
    assert res2.vault_skull_dice < 0.99


def test_vault_plane_follows_the_reference_centroid_in_world_space():
    ic = _radius(centre=(58, 58, 70)) <= 20  # centroid 12.5 voxels above the grid centre (57.5)
    aff = _affine(spacing=1.0)
    mask, plane = V.vault_mask(ic, aff, offset_mm=5.0)
    assert plane == pytest.approx(12.5 + 5.0, abs=1e-3)
    zs = V.world_superior(ic.shape, aff)
    assert mask.sum() == (zs > plane).sum()
    with pytest.raises(ValueError, match="no intracranial"):
        V.vault_mask(np.zeros((4, 4, 4), bool), aff)


def test_skull_thickness_samples_measure_a_flat_layer_with_anisotropic_voxels():
    # a flat bone layer 6 mm thick along z on a 0.5 x 0.5 x 1.5 mm grid: ic below, bone, then air
    spacing = np.array([0.5, 0.5, 1.5])
    lab = np.zeros((20, 20, 30), np.uint8)
    lab[:, :, :10] = 1  # intracranial
    lab[:, :, 10:14] = 4  # 4 voxels x 1.5 mm = 6 mm of bone
    t = V.skull_thickness_samples(lab == 4, lab == 1, spacing)
    assert t.size == 400 and np.allclose(t, 6.0)
    region = np.zeros(lab.shape, bool)
    region[:5] = True
    assert V.skull_thickness_samples(lab == 4, lab == 1, spacing, region).size == 100


def test_reference_on_another_grid_is_resampled_by_nearest_neighbour():
    # an off-centre head, reference stored flipped in x and y (LPS-like) and with a shifted
    # origin: same voxel centres in world space, so the scores are exact
    ours = _head()
    ours = np.roll(ours, 7, axis=0)
    ref = np.where(ours == 6, 5, np.where(np.isin(ours, (7, 8)), 4, ours)).astype(np.uint8)
    aff = _affine()
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    flip[0, 3] = N - 1
    flip[1, 3] = N - 1
    ref_aff = aff @ flip  # voxel (i, j, k) of the stored reference = voxel (N-1-i, N-1-j, k) of ours
    ref_stored = ref[::-1, ::-1, :]
    res, _, rc = V.score_segmentation(ours, aff, np.ascontiguousarray(ref_stored), ref_aff, V.CHARM5)
    assert all(c.dice == 1.0 for c in res.classes)
    assert res.evaluated_fraction == 1.0
    # a coarser reference (2 mm) of the same head: still close, not exact
    ref2 = ref[::2, ::2, ::2]
    aff2 = aff.copy()
    aff2[:3, :3] *= 2.0
    res2, _, _ = V.score_segmentation(ours, aff, ref2, aff2, V.CHARM5)
    assert 0.85 < res2.class_score("WM").dice < 1.0
    # a reference covering only the upper half: the rest is not scored
    half = ref[:, :, N // 2:]
    aff_h = aff.copy()
    aff_h[:3, 3] = aff[:3, :3] @ [0, 0, N // 2] + aff[:3, 3]
    res3, _, _ = V.score_segmentation(ours, aff, half, aff_h, V.CHARM5, gates=None)
    assert res3.evaluated_fraction == pytest.approx(0.5, abs=0.01)
    assert res3.class_score("WM").dice == 1.0 and res3.gates == []


def test_unknown_labels_and_bad_mappings_are_refused():
    ours = _head()
    ours[0, 0, 0] = 42
    with pytest.raises(ValueError, match=r"42"):
        V.score_segmentation(ours, _affine(), _head(simnibs=False), _affine(), V.CHARM5)
    with pytest.raises(ValueError, match="missing key"):
        V.mapping_from_dict({"classes": {"1": "WM"}})
    with pytest.raises(ValueError, match="undefined classes"):
        V.mapping_from_dict({"classes": {"1": "WM"}, "ours": {"1": 3}, "reference": {"1": 1},
                             "intracranial": [1]})
    with pytest.raises(ValueError, match="intracranial"):
        V.mapping_from_dict({"classes": {"1": "WM"}, "ours": {"1": 1}, "reference": {"1": 1},
                             "intracranial": [2]})
    with pytest.raises(ValueError, match="not an integer label image"):
        V.map_labels(np.array([0.5, 1.0]), {0: 0, 1: 1})


def test_custom_mapping_merges_classes():
    # a 3-class reference: 1 brain (WM+GM), 2 CSF, 3 "non-brain head tissue"
    m = V.mapping_from_dict({"name": "three", "classes": {"1": "brain", "2": "CSF", "3": "other"},
                             "ours": {"0": 0, "1": 1, "2": 1, "3": 2, "5": 3, "6": 3, "7": 3, "8": 3},
                             "reference": {"0": 0, "1": 1, "2": 2, "3": 3}, "intracranial": [1, 2]})
    ours = _head()
    ref = np.select([np.isin(ours, (1, 2)), ours == 3, ours > 3], [1, 2, 3], 0).astype(np.uint8)
    res, _, _ = V.score_segmentation(ours, _affine(), ref, _affine(), m)
    assert [c.name for c in res.classes] == ["brain", "CSF", "other"]
    assert all(c.dice == 1.0 for c in res.classes)
    assert np.isnan(res.vault_skull_dice)  # no bone class in this mapping
    names = {g.name for g in res.gates}
    assert "dice CSF" in names and "dice WM" not in names and "vault skull dice" in names
    assert not {g.name: g for g in res.gates}["vault skull dice"].passed  # NaN fails
    d = res.to_json()
    assert d["vault_skull_dice"] is None and json.dumps(d)


def _load_script():
    spec = importlib.util.spec_from_file_location("validate_segmentation",
                                                  REPO / "benchmarks" / "validate_segmentation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_script_scores_existing_labels(tmp_path, capsys):
    ours = _head(r_csf=41.0, skull=7.0)
    ref = _head(simnibs=False)
    t1 = np.where(ours == 1, 100, np.where(ours == 2, 70, np.where(ours > 0, 40, 0))).astype(np.float32)
    for name, arr in (("t1", t1), ("ours", ours), ("ref", ref)):
        nib.save(nib.Nifti1Image(arr, _affine()), str(tmp_path / f"{name}.nii.gz"))
    mod = _load_script()
    out_json = tmp_path / "res.json"
    rc = mod.main([str(tmp_path / "t1.nii.gz"), str(tmp_path / "ref.nii.gz"), "--mapping", "charm5",
                   "--labels", str(tmp_path / "ours.nii.gz"), "--json", str(out_json),
                   "--overlays", str(tmp_path / "ov")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "WM" in out and "vault skull Dice" in out and "FAIL" in out
    d = json.loads(out_json.read_text())
    assert d["icv_difference"] == pytest.approx((41.0 ** 3 - 40.0 ** 3) / 40.0 ** 3, abs=0.01)
    assert d["all_gates_passed"] is False and d["classes"][0]["name"] == "WM"
    assert (tmp_path / "ov" / "validation_overlays.png").stat().st_size > 20_000
    # a TOML mapping file works the same way; a bad one is a one-line error
    (tmp_path / "m.toml").write_text('classes = {1 = "WM", 2 = "GM", 3 = "CSF", 4 = "bone", 5 = "scalp"}\n'
                                     'ours = {0 = 0, 1 = 1, 2 = 2, 3 = 3, 5 = 5, 6 = 5, 7 = 4, 8 = 4}\n'
                                     'reference = {0 = 0, 1 = 1, 2 = 2, 3 = 3, 4 = 4, 5 = 5}\n'
                                     'intracranial = [1, 2, 3]\nbone = 4\n')
    assert mod.main([str(tmp_path / "t1.nii.gz"), str(tmp_path / "ref.nii.gz"), "--mapping",
                     str(tmp_path / "m.toml"), "--labels", str(tmp_path / "ours.nii.gz")]) == 0
    assert "mapping m;" in capsys.readouterr().out
    assert mod.main([str(tmp_path / "t1.nii.gz"), str(tmp_path / "ref.nii.gz"), "--mapping", "nope",
                     "--labels", str(tmp_path / "ours.nii.gz")]) == 1
    err = capsys.readouterr().err
    assert "nope" in err and err.count("\n") == 1


def test_vault_follows_the_head_superior_axis_of_a_tilted_head():
    # subject -> MNI affine of a head pitched by 30 degrees and scaled 1.1
    a = np.deg2rad(30.0)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    s2m = np.eye(4)
    s2m[:3, :3] = 1.1 * rot
    s2m[:3, 3] = [2.0, -5.0, 7.0]
    up = V.head_superior_axis(s2m)
    np.testing.assert_allclose(up, rot[2], atol=1e-12)  # MNI z axis seen from the subject
    ic = _radius() <= 40
    mask, plane = V.vault_mask(ic, _affine(), offset_mm=10.0, up=up)
    heights = V.world_superior(ic.shape, _affine(), up)
    assert plane == pytest.approx(10.0, abs=1e-3)  # centroid at the origin
    # the plane is tilted: the voxel at world (0, -40, 15) is above it in world z but not along up
    ijk = np.rint(np.linalg.inv(_affine()) @ [0, -40, 15, 1])[:3].astype(int)
    assert not mask[tuple(ijk)] and heights[tuple(ijk)] < plane
    ref = _head(simnibs=False)
    ours = ref.copy()
    ours[(ours == 4) & (heights < 0)] = 5  # errors only below the tilted plane
    res, _, _ = V.score_segmentation(ours, _affine(), ref, _affine(), V.CHARM5, up=up)
    assert res.vault_skull_dice == 1.0 and res.vault_tilt_deg == pytest.approx(30.0, abs=1e-6)
    assert "superior axis (30.0 deg" in V.format_table(res)


def test_simnibs_mapping_scores_a_full_simnibs_reference():
    ours = _head()
    ref = ours.copy()
    r = _radius()
    ref[(r > 48.0) & (r <= 50.0)] = 10  # a muscle layer in the reference scalp: still scalp
    ref[(r > 36.5) & (r <= 37.5) & (np.indices(r.shape)[2] > 80)] = 9  # "blood" in the CSF: CSF
    res, _, _ = V.score_segmentation(ours, _affine(), ref, _affine(), V.BUILTIN_MAPPINGS["simnibs"])
    assert all(c.dice == 1.0 for c in res.classes)


def test_benchmark_script_takes_a_workspace_as_labels(tmp_path, capsys):
    from navigator.core.workspace import Workspace

    ours = _head(r_csf=41.0, skull=7.0)
    ref = _head(simnibs=False)
    ws = Workspace.create(tmp_path / "ws")
    ws.path("labels").parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(ours, _affine()), str(ws.path("labels")))
    for name, arr in (("t1", (ours > 0).astype(np.float32)), ("ref", ref)):
        nib.save(nib.Nifti1Image(arr, _affine()), str(tmp_path / f"{name}.nii.gz"))
    mod = _load_script()
    out_json = tmp_path / "res.json"
    assert mod.main([str(tmp_path / "t1.nii.gz"), str(tmp_path / "ref.nii.gz"), "--mapping", "charm5",
                     "--labels", str(tmp_path / "ws"), "--json", str(out_json)]) == 0
    d = json.loads(out_json.read_text())
    assert d["labels"] == str(ws.path("labels")) and d["vault_tilt_deg"] == 0.0
    assert d["icv_difference"] == pytest.approx((41.0 ** 3 - 40.0 ** 3) / 40.0 ** 3, abs=0.01)
    capsys.readouterr()
