"""MP2RAGE: UNI + INV2 -> a background-suppressed T1-weighted image (navigator.segmentation.mp2rage),
the workspace's INV2 source and `navigator prepare UNI --inv2 INV2`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from navigator.core.errors import InputError
from navigator.core.volume import Volume
from navigator.segmentation import mp2rage, preprocess

#: noiseless (INV1, INV2) signals per tissue of a 3T MP2RAGE (TI 700/2500 ms, 4/5 degrees;
#: from the signal equations at T1 830/1350/4000/650 ms): UNI of WM 0.18, GM -0.08, CSF -0.46,
#: scalp 0.30; compact bone (T2* << TE) and air have no signal
SIGNALS = {"wm": (0.117, 0.63), "gm": (-0.046, 0.57), "csf": (-0.198, 0.30), "bone": (0.0, 0.0),
           "scalp": (0.227, 0.68), "air": (0.0, 0.0)}
#: sphere radii (voxels) of WM, GM, CSF, bone, scalp
RADII = (14, 18, 21, 25, 30)
NAMES = ("wm", "gm", "csf", "bone", "scalp")
SPACING = 2.0


def _tissues(shape=(80, 80, 80)) -> np.ndarray:
    """Names per voxel of concentric spheres (air outside)."""
    c = (np.array(shape) - 1) / 2.0
    r = np.sqrt(sum((np.arange(n)[tuple(slice(None) if a == i else None for a in range(3))] - c[i]) ** 2
                    for i, n in enumerate(shape)))
    out = np.full(shape, "air", dtype=object)
    for rad, name in sorted(zip(RADII, NAMES), reverse=True):
        out[r <= rad] = name
    return out


def _mp2rage(shape=(80, 80, 80), seed=0, scaling="siemens", noise=0.02):
    """(UNI, INV2 magnitude, tissue names) of a sphere head: complex Gaussian noise on each
    inversion, UNI = Re(S1 conj S2) / (|S1|^2 + |S2|^2) in the given scaling."""
    rng = np.random.default_rng(seed)
    names = _tissues(shape)
    s1 = np.zeros(shape)
    s2 = np.zeros(shape)
    for name, (a, b) in SIGNALS.items():
        s1[names == name] = a
        s2[names == name] = b
    n1 = s1 + noise * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    n2 = s2 + noise * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))
    uni = np.real(n1 * np.conj(n2)) / (np.abs(n1) ** 2 + np.abs(n2) ** 2)
    inv2 = np.abs(n2) * 1000.0
    if scaling == "siemens":
        uni = np.round((uni + 0.5) * 4095).astype(np.uint16)
    elif scaling == "unit":
        uni = (uni + 0.5).astype(np.float32)
    else:
        uni = uni.astype(np.float32)
    return uni, inv2.astype(np.float32), names


def _aff(spacing=SPACING, shift=(0.0, 0.0, 0.0)):
    a = np.diag([spacing, spacing, spacing, 1.0])
    a[:3, 3] = np.array([-80.0, -80.0, -80.0]) + np.array(shift)
    return a


@pytest.mark.parametrize("scaling", ["siemens", "signed", "unit"])
def test_uni_scalings_are_recognised(scaling):
    uni, _, names = _mp2rage(scaling=scaling)
    u, name = mp2rage.uni_to_signed(uni)
    assert name == {"siemens": "siemens-0-4095", "signed": "signed-0.5", "unit": "unit-0-1"}[scaling]
    assert u.min() >= -0.5 and u.max() <= 0.5
    assert abs(float(np.median(u[names == "wm"])) - 0.18) < 0.02
    assert abs(float(np.median(u[names == "csf"])) + 0.46) < 0.03
    with pytest.raises(ValueError, match="UNI scalings"):
        mp2rage.uni_to_signed(np.linspace(0, 20000, 1000).reshape(10, 10, 10))


@pytest.mark.parametrize("combination", mp2rage.COMBINATIONS)
@pytest.mark.parametrize("scaling", ["siemens", "signed"])
def test_combination_darkens_air_and_bone_and_keeps_the_t1_contrast(combination, scaling):
    """The UNI's air is bright noise (the segmentation refuses it); the combination's air and
    compact bone are dark and WM > GM > CSF stays."""
    uni, inv2, names = _mp2rage(scaling=scaling)
    u, _ = mp2rage.uni_to_signed(uni)
    assert preprocess.bright_noise_background(u + 0.5, np.full(3, SPACING))[0]
    out = mp2rage.combine(u, inv2, combination)
    med = {n: float(np.median(out[names == n])) for n in ("wm", "gm", "csf", "bone", "scalp", "air")}
    assert med["wm"] > med["gm"] > med["csf"], med
    assert med["gm"] - med["csf"] > 0.1 * med["wm"], med
    assert med["air"] < 0.1 * med["wm"] and med["bone"] < 0.1 * med["wm"], med
    # the air is dark everywhere, not only on average
    assert np.percentile(out[names == "air"], 99) < 0.5 * med["csf"] + 0.2 * med["wm"]
    assert not preprocess.bright_noise_background(out, np.full(3, SPACING))[0]


def test_noise_level_of_inv2_is_the_rayleigh_sigma():
    _, inv2, _ = _mp2rage(noise=0.02)
    assert abs(mp2rage.inv2_noise_sd(inv2) - 20.0) < 2.0  # 0.02 x 1000


def test_inv2_on_another_grid_is_resampled_in_world_space():
    uni, inv2, names = _mp2rage()
    uni_v = Volume(uni, _aff(), source="UNI.nii.gz")
    same, info = mp2rage.combine_volumes(uni_v, Volume(inv2, _aff(), source="INV2.nii.gz"))
    assert not info.inv2_resampled and info.coverage == 1.0
    # the same INV2 written on a grid shifted by one voxel (its world positions unchanged)
    shifted = np.zeros_like(inv2)
    shifted[:-1] = inv2[1:]
    moved, info2 = mp2rage.combine_volumes(uni_v, Volume(shifted, _aff(shift=(SPACING, 0, 0)), source="INV2.nii.gz"))
    assert info2.inv2_resampled and info2.coverage > 0.95
    a, b = np.asarray(same.data), np.asarray(moved.data)
    inner = np.zeros(a.shape, bool)
    inner[2:-2] = True
    assert np.allclose(a[inner], b[inner], atol=1e-3 * a.max())
    # written in the wrong place instead (no world shift), the combination differs
    wrong, _ = mp2rage.combine_volumes(uni_v, Volume(shifted, _aff(), source="INV2.nii.gz"))
    assert not np.allclose(a[inner], np.asarray(wrong.data)[inner], atol=1e-3 * a.max())


def test_inv2_outside_the_uni_is_refused_naming_the_file():
    uni, inv2, _ = _mp2rage()
    with pytest.raises(InputError, match="INV2_other.nii.gz.*covers 0 %"):
        mp2rage.combine_volumes(Volume(uni, _aff()), Volume(inv2, _aff(shift=(400, 0, 0))),
                                inv2_path="INV2_other.nii.gz")


def test_a_uni_given_as_inv2_is_refused():
    uni, _, _ = _mp2rage()
    with pytest.raises(InputError, match="second inversion"):
        mp2rage.combine_volumes(Volume(uni, _aff()), Volume(uni.astype(np.float32), _aff()), inv2_path="UNI2.nii.gz")


def test_an_mprage_with_inv2_is_used_as_it_is_with_a_warning():
    _, inv2, names = _mp2rage()
    mprage = np.zeros(names.shape, np.float32)
    for name, value in {"wm": 110, "gm": 70, "csf": 25, "bone": 15, "scalp": 90}.items():
        mprage[names == name] = value
    mprage += np.abs(np.random.default_rng(1).normal(0, 3, mprage.shape)).astype(np.float32)
    vol = Volume(mprage, _aff())
    out, info = mp2rage.combine_volumes(vol, Volume(inv2, _aff()))
    assert out is vol and info.combination is None
    assert "not a raw MP2RAGE UNI" in info.warnings[0]


def test_the_refusal_of_a_raw_uni_points_to_inv2():
    from navigator.segmentation.pipeline import segment_head

    uni, _, _ = _mp2rage(shape=(100, 100, 100))
    with pytest.raises(InputError, match="MP2RAGE UNI.*--inv2"):
        segment_head(Volume(uni.astype(np.float32), _aff()))


# ----------------------------------------------------------------------------- workspace and CLI
def _fake_segment_head(seen):
    """A segment_head stand-in that records the image it was given and returns labels from
    thresholds (the real one takes minutes; the step's plumbing is what is tested here)."""
    from navigator.gui.testing import _identity_transform
    from navigator.segmentation.pipeline import SegmentationResult
    from navigator.segmentation.register import Registration

    def fake(t1, t2=None, progress=None, params=None):
        seen.append(t1)
        d = np.asarray(t1.data, np.float32)
        labels = np.where(d > 0.3 * d.max(), 1, 0).astype(np.uint8)
        return SegmentationResult(labels=Volume(labels, t1.affine.copy()), t1=t1,
                                  registration=Registration(np.eye(4), np.eye(4)),
                                  transform=_identity_transform(), metrics={"fake": True})

    return fake


def test_prepare_with_inv2_records_combines_and_goes_stale(tmp_path, monkeypatch, tmp_image):
    from navigator.cli import main
    from navigator.core.workspace import Workspace
    from navigator.segmentation import pipeline

    uni, inv2, names = _mp2rage()
    uni_p = tmp_image(uni, _aff(), name="UNI.nii.gz")
    inv2_p = tmp_image(inv2, _aff(), name="INV2.nii.gz")
    seen: list[Volume] = []
    monkeypatch.setattr(pipeline, "segment_head", _fake_segment_head(seen))
    out = tmp_path / "sub-mp2"
    assert main(["prepare", str(uni_p), "--inv2", str(inv2_p), "--out", str(out), "--stop-after", "segment"]) == 0
    ws = Workspace.open(out)
    assert set(ws.sources()) == {"T1", "INV2"} and ws.path("inv2").exists()
    rec = ws.step("segment")
    assert rec.parameters["mp2rage_combination"] == mp2rage.DEFAULT_COMBINATION
    assert "input/INV2.nii.gz" in rec.inputs
    # the segmentation saw the combined image: dark air, the UNI's contrast
    got = np.asarray(seen[0].data)
    assert not preprocess.bright_noise_background(got, np.full(3, SPACING))[0]
    assert np.median(got[names == "wm"]) > np.median(got[names == "gm"]) > np.median(got[names == "csf"])
    qc = json.loads((ws.path("qc") / "segmentation_qc.json").read_text())
    assert qc["inv2"] == "input/INV2.nii.gz" and qc["mp2rage"]["uni_scaling"] == "siemens-0-4095"
    # current: skipped
    assert main(["prepare", str(out), "--stop-after", "segment"]) == 0
    assert len(seen) == 1
    # another INV2 (a different noise draw) makes the segmentation stale
    _, inv2_b, _ = _mp2rage(seed=3)
    inv2_b_p = tmp_image(inv2_b, _aff(), name="INV2b.nii.gz")
    assert main(["prepare", str(out), "--inv2", str(inv2_b_p), "--stop-after", "segment"]) == 0
    assert len(seen) == 2


def test_mp2rage_dicom_exam_gets_its_inv2(tmp_path, tmp_dicom_series, caplog, monkeypatch):
    """A DICOM exam holding an MP2RAGE (INV1, INV2, raw UNI): the UNI is the T1 and the exam's
    INV2 series is added beside it, logged; a denoised UNI-DEN needs none. The exam's headers
    are read once for both series."""
    from navigator.io import dicom
    from navigator.io.images import load_image
    from navigator.pipeline import create_workspace_from_image

    uni, inv2, _ = _mp2rage(shape=(64, 64, 64))
    exam = tmp_path / "exam"
    geom = dict(pixel_spacing=(SPACING, SPACING), slice_step=(0.0, 0.0, SPACING), thickness=SPACING)
    uni_type = ("DERIVED", "PRIMARY", "M", "UNI")
    tmp_dicom_series(exam / "1", inv2 * 0.5, description="t1_mp2rage_sag_p3_iso_INV1", series_number=1, **geom)
    tmp_dicom_series(exam / "2", inv2, description="t1_mp2rage_sag_p3_iso_INV2", series_number=2, **geom)
    tmp_dicom_series(exam / "3", uni.astype(float), description="t1_mp2rage_sag_p3_iso_UNI_Images",
                     series_number=3, image_type=uni_type, **geom)
    listed = []
    list_series = dicom.list_dicom_series
    monkeypatch.setattr(dicom, "list_dicom_series", lambda folder: listed.append(folder) or list_series(folder))
    with caplog.at_level("WARNING", logger="navigator"):
        ws = create_workspace_from_image(exam, tmp_path / "ws")
    assert set(ws.sources()) == {"T1", "INV2"} and "second inversion" in caplog.text
    assert len(listed) == 1
    np.testing.assert_allclose(load_image(ws.path("inv2")).data, load_image(exam, series_uid="2").data)
    tmp_dicom_series(exam / "4", uni.astype(float), description="t1_mp2rage_sag_p3_iso_UNI-DEN",
                     series_number=4, image_type=uni_type, **geom)
    ws2 = create_workspace_from_image(exam, tmp_path / "ws2")
    assert set(ws2.sources()) == {"T1"}
    # a series of the same exam named explicitly (--inv2-series alone)
    listed.clear()
    ws3 = create_workspace_from_image(exam, tmp_path / "ws3", series="3", inv2_series="2")
    assert set(ws3.sources()) == {"T1", "INV2"} and len(listed) == 1


def test_prepare_with_an_inv2_elsewhere_fails_naming_it(tmp_path, monkeypatch, tmp_image, capsys):
    from navigator.cli import main
    from navigator.segmentation import pipeline

    uni, inv2, _ = _mp2rage()
    uni_p = tmp_image(uni, _aff(), name="UNI.nii.gz")
    far_p = tmp_image(inv2, _aff(shift=(500, 0, 0)), name="INV2_far.nii.gz")
    seen: list[Volume] = []
    monkeypatch.setattr(pipeline, "segment_head", _fake_segment_head(seen))
    assert main(["prepare", str(uni_p), "--inv2", str(far_p), "--out", str(tmp_path / "w"),
                 "--stop-after", "segment"]) == 1
    err = capsys.readouterr().err
    assert "INV2_far.nii.gz" in err and "covers 0 %" in err and not seen
    assert not (tmp_path / "w").exists()  # checked before the workspace is written


def test_workspace_without_inv2_keeps_its_parameters(tmp_path, monkeypatch, tmp_image):
    """A workspace without INV2 records no MP2RAGE parameter (its earlier records stay current)."""
    from navigator.cli import main
    from navigator.core.workspace import Workspace
    from navigator.segmentation import pipeline

    names = _tissues()
    t1 = np.where(names == "wm", 110.0, np.where(names == "gm", 70.0, np.where(names == "scalp", 90.0, 5.0)))
    p = tmp_image(t1.astype(np.float32), _aff(), name="T1.nii.gz")
    monkeypatch.setattr(pipeline, "segment_head", _fake_segment_head([]))
    assert main(["prepare", str(p), "--out", str(tmp_path / "w"), "--stop-after", "segment"]) == 0
    assert "mp2rage_combination" not in Workspace.open(tmp_path / "w").step("segment").parameters


# ----------------------------------------------------------------------------- whole pipeline (slow)
#: (INV1, INV2) per SimNIBS label of the phantom (3T MP2RAGE as in SIGNALS; eyes as CSF, marrow
#: fat-like, blood and muscle near GM): compact bone and air have no signal
LABEL_SIGNALS = {1: SIGNALS["wm"], 2: SIGNALS["gm"], 3: SIGNALS["csf"], 4: (0.0, 0.0), 5: SIGNALS["scalp"],
                 6: SIGNALS["csf"], 7: (0.0, 0.0), 8: (0.17, 0.45), 9: (-0.08, 0.50), 10: (-0.05, 0.50)}


@pytest.mark.slow
def test_phantom_mp2rage_segments_through_prepare_inv2(tmp_path, tmp_image):
    """A simulated MP2RAGE of the phantom (seed 5, never tuned on) through `navigator prepare
    --inv2`: the raw UNI alone is refused, with its INV2 the tissues come out right."""
    from scipy import ndimage as ndi

    from navigator.cli import main
    from navigator.io.images import load_image
    from navigator.samples.phantom import generate_phantom

    ph = generate_phantom(5)
    lab = np.asarray(ph.labels)
    t1 = np.asarray(ph.t1, np.float32)
    s1 = np.zeros(lab.shape, np.float32)
    s2 = np.zeros(lab.shape, np.float32)
    for k, (a, b) in LABEL_SIGNALS.items():
        m = lab == k
        if m.any():  # the phantom T1's texture, as a small change of INV1 (UNI is a ratio)
            s1[m] = a * np.clip(t1[m] / max(float(np.median(t1[m])), 1e-3), 0.9, 1.1)
            s2[m] = b
    s1, s2 = ndi.gaussian_filter(s1, 0.5), ndi.gaussian_filter(s2, 0.5)
    rng = np.random.default_rng(11)
    sd = 0.63 / 35  # INV2 SNR 35 in WM
    n1 = s1 + sd * (rng.standard_normal(lab.shape) + 1j * rng.standard_normal(lab.shape))
    n2 = s2 + sd * (rng.standard_normal(lab.shape) + 1j * rng.standard_normal(lab.shape))
    uni = np.round((np.real(n1 * np.conj(n2)) / (np.abs(n1) ** 2 + np.abs(n2) ** 2) + 0.5) * 4095).astype(np.uint16)
    uni_p = tmp_image(uni, ph.affine, name="UNI.nii.gz")
    inv2_p = tmp_image((np.abs(n2) * 1000).astype(np.float32), ph.affine, name="INV2.nii.gz")
    assert main(["prepare", str(uni_p), "--out", str(tmp_path / "alone"), "--stop-after", "segment"]) == 1
    assert main(["prepare", str(uni_p), "--inv2", str(inv2_p), "--out", str(tmp_path / "ws"),
                 "--stop-after", "segment"]) == 0
    ours = load_image(tmp_path / "ws" / "labels" / "labels.nii.gz")
    truth = load_image(tmp_image(lab.astype(np.uint8), ph.affine, name="truth.nii.gz"))  # same reorientation
    assert ours.shape == truth.shape and np.allclose(ours.affine, truth.affine)
    L, lab = np.asarray(ours.data), np.asarray(truth.data)

    def dice(tags):
        a, b = np.isin(L, tags), np.isin(lab, tags)
        return 2.0 * float((a & b).sum()) / max(int(a.sum()) + int(b.sum()), 1)

    d = {"wm": dice([1]), "gm": dice([2]), "csf": dice([3]), "bone": dice([4, 7, 8]), "scalp": dice([5])}
    print("phantom seed 5 MP2RAGE Dice:", {k: round(v, 3) for k, v in d.items()})
    # loose guards (measured 2026-12-03: WM .994, GM .991, CSF .822, bone .720, scalp .900): they fail
    # on a UNI that was not combined (refused) or combined into the wrong contrast
    assert d["wm"] > 0.9 and d["gm"] > 0.9 and d["csf"] > 0.7 and d["bone"] > 0.65 and d["scalp"] > 0.85, d
    icv = np.isin(L, [1, 2, 3]).sum() / np.isin(lab, [1, 2, 3, 9]).sum() - 1.0
    assert abs(icv) < 0.08, icv
