"""`navigator info` and `navigator convert` through the CLI entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from navigator.cli import main

REPO = Path(__file__).resolve().parents[1]


def _lps_affine():
    return np.array([[-2.0, 0, 0, 20], [0, -2.0, 0, 22], [0, 0, 2.0, -18], [0, 0, 0, 1]])


def test_info_human_readable(tmp_image, capsys):
    path = tmp_image(np.random.default_rng(0).integers(0, 300, (20, 22, 18)).astype(np.int16), _lps_affine())
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "LPS" in out and "20 x 22 x 18" in out and "sform" in out and "modality (guess)" in out
    assert "loadable" in out


def test_info_json(tmp_image, capsys):
    path = tmp_image(np.zeros((6, 7, 8), np.float32) + 0.5, _lps_affine())
    assert main(["info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["axcodes"] == ["L", "P", "S"] and d["shape"] == [6, 7, 8]
    assert d["voxel_size_mm"] == [2.0, 2.0, 2.0] and d["transform"] == "sform"
    assert d["sform_code"] == 1 and d["sform_qform_disagree"] is False
    assert d["min"] == 0.5 and "modality_guess" in d and "p50" in d["percentiles"]


def test_info_errors_are_one_line(tmp_path, capsys):
    fake = tmp_path / "fake.nii.gz"
    fake.write_text("hello\n" * 100)
    assert main(["info", str(fake)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("navigator: error:") and str(fake) in err and err.count("\n") == 1
    assert main(["info", str(tmp_path / "missing.nii")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_help(capsys):
    for cmd in ("info", "convert"):
        with pytest.raises(SystemExit) as ex:
            main([cmd, "--help"])
        assert ex.value.code == 0
        assert "usage: navigator " + cmd in capsys.readouterr().out


def test_convert_and_series_choice(tmp_path, tmp_dicom_series, capsys):
    data = np.random.default_rng(0).integers(0, 500, (12, 10, 8)).astype(np.int16)
    tmp_dicom_series(tmp_path / "dcm" / "a", data, series_uid="1.2.826.0.1.1", description="T1 MPRAGE")
    tmp_dicom_series(
        tmp_path / "dcm" / "b",
        data[:, :, :5],
        series_uid="1.2.826.0.1.2",
        description="T2 TSE",
        series_number=2,
    )
    out = tmp_path / "out" / "t1.nii.gz"
    assert main(["convert", str(tmp_path / "dcm"), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "--series" in err and "1.2.826.0.1.2" in err and err.count("\n") == 1
    assert not out.exists()
    assert main(["convert", str(tmp_path / "dcm"), "--out", str(out), "--series", "1.2.826.0.1.1"]) == 0
    printed = "".join(capsys.readouterr().out.splitlines())  # the console folds a long temporary path
    assert str(out) in printed and "orientation LPS" in printed
    img = nib.load(str(out))
    assert img.shape == (12, 10, 8) and int(img.header["sform_code"]) == 1
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    assert main(["info", str(tmp_path / "dcm"), "--series", "1.2.826.0.1.2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (
        d["format"] == "dicom" and d["shape"] == [12, 10, 5] and d["dicom"]["series_description"] == "T2 TSE"
    )


def test_python_dash_m_subprocess(tmp_image):
    path = tmp_image(np.ones((5, 6, 7), np.float32), _lps_affine())
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run(
        [sys.executable, "-m", "navigator", "info", "--json", str(path)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["axcodes"] == ["L", "P", "S"]
    bad = subprocess.run(
        [sys.executable, "-m", "navigator", "info", str(path) + ".nope"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 1 and "no such file" in bad.stderr


# ---------------------------------------------------------------------------- modality guess (T1 vs T2)


def _info_json(path, capsys) -> dict:
    assert main(["info", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


#: relative intensities (WM, GM, CSF, bone, muscle, fat) of a T1 (MPRAGE-like, fat brighter than
#: white matter) and a T2 (TSE-like: CSF brightest, fat bright)
_T1 = dict(wm=0.80, gm=0.55, csf=0.15, bone=0.05, muscle=0.40, fat=1.0)
_T2 = dict(wm=0.30, gm=0.42, csf=1.00, bone=0.05, muscle=0.25, fat=0.75)
#: a proton-density image: flat contrast, white matter the darkest brain tissue, fluid brightest
_PD = dict(wm=0.65, gm=0.80, csf=0.90, bone=0.05, muscle=0.55, fat=0.85)


def _ellipsoid_head(contrast: dict, spacing=(1.0, 1.0, 1.0), neck: bool = True, seed: int = 0) -> tuple:
    """Synthetic head on a RAS grid: nested ellipsoids (WM with ventricles, GM, CSF, skull, fat,
    skin/muscle), optionally a wide neck slab below; blurred, biased and noisy. Returns (data, affine)."""
    from scipy import ndimage as ndi

    sp = np.asarray(spacing, float)
    shape = tuple(int(round(n / s)) for n, s in zip((170, 210, 230), sp))
    g = [((np.arange(n) - (n - 1) / 2) * s).astype(np.float32) for n, s in zip(shape, sp)]
    # open grids; the head centre 25 mm above the grid centre, the neck below
    x, y, z = g[0][:, None, None], g[1][None, :, None], g[2][None, None, :] - 25.0

    def ell(a, b, c, zc=0.0):
        return (x / a) ** 2 + (y / b) ** 2 + ((z - zc) / c) ** 2 <= 1

    img = np.zeros(shape, np.float32)
    if neck:
        img[((x / 55) ** 2 + ((y + 10) / 55) ** 2 <= 1) & (z < -60)] = contrast["muscle"]
    img[ell(78, 98, 88)] = contrast["muscle"]
    img[ell(75, 95, 85)] = contrast["fat"]
    img[ell(71, 91, 81)] = contrast["bone"]
    img[ell(65, 85, 75)] = contrast["csf"]
    img[ell(62, 82, 72)] = contrast["gm"]
    img[ell(52, 72, 60)] = contrast["wm"]
    img[ell(10, 28, 10, zc=8) & (np.abs(x) > 3)] = contrast["csf"]  # lateral ventricles
    img[ell(20, 12, 12, zc=-12)] = contrast["gm"]  # deep grey nuclei
    rng = np.random.default_rng(seed)
    img = ndi.gaussian_filter(img, 0.8 / sp)
    img *= 1.0 + np.float32(0.15) * z / np.float32(100.0)
    noise = np.float32(0.02)
    img = np.hypot(img + noise * rng.standard_normal(shape, dtype=np.float32),
                   noise * rng.standard_normal(shape, dtype=np.float32))
    aff = np.diag([*sp, 1.0])
    aff[:3, 3] = [-g_[-1] for g_ in g]
    return (img * 1000).astype(np.int16), aff


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.5, 0.5, 5.0), (2.0, 2.0, 2.0)])
def test_modality_guess_synthetic_heads(tmp_image, capsys, spacing):
    for contrast, expect in ((_T1, "T1"), (_T2, "T2"), (_PD, "T2")):
        data, aff = _ellipsoid_head(contrast, spacing)
        d = _info_json(tmp_image(data, aff), capsys)
        assert d["modality_guess"] == expect, (spacing, d["modality_reason"])
        assert "guess from intensities" in d["modality_reason"]


def test_modality_guess_t1_with_fat_much_brighter_than_white_matter(tmp_image, capsys):
    # an MPRAGE whose scalp fat and marrow are 2x as bright as white matter: the brain centre is
    # dark compared with the brightest tissue, but white matter still dominates the deep head
    data, aff = _ellipsoid_head({**_T1, "fat": 1.6})
    assert _info_json(tmp_image(data, aff), capsys)["modality_guess"] == "T1"


def _colin(shared_data):
    from navigator.io.images import load_image

    d = shared_data / "real" / "colin27"
    if not (d / "T1.nii.gz").exists() or not (d / "tissues_charm_convention.nii.gz").exists():
        pytest.skip("Colin27 not present")
    return load_image(d / "T1.nii.gz"), load_image(d / "tissues_charm_convention.nii.gz").data


@pytest.mark.shared_data
def test_modality_guess_real_t1(shared_data, capsys, tmp_image):
    paths = [shared_data / "real" / "colin27" / "T1.nii.gz", shared_data / "ixi" / "IXI015-HH-1258_T1.nii.gz"]
    present = [p for p in paths if p.exists()]
    if not present:
        pytest.skip("no real T1 present")
    for p in present:
        d = _info_json(p, capsys)
        assert d["modality_guess"] == "T1" and "file name" in d["modality_reason"], (p, d["modality_reason"])
        # the intensities alone (a name that says nothing) give T1 too
        from navigator.io.images import load_image

        vol = load_image(p, reorient=False)
        d = _info_json(tmp_image(np.asarray(vol.data), vol.affine), capsys)
        assert d["modality_guess"] == "T1" and "intensities" in d["modality_reason"], (p, d["modality_reason"])
    t1, ref = _colin(shared_data)
    # the same scan with the scalp fat 1.6x brighter (as on MPRAGEs whose fat outshines the
    # white matter; the former centre-vs-brightest rule called it T2)
    data = t1.data.astype(np.float32)
    fat = (ref == 5) & (data > 0.6 * np.percentile(data[ref > 0], 99))
    data[fat] *= 1.6
    assert _info_json(tmp_image(data, t1.affine), capsys)["modality_guess"] == "T1"


@pytest.mark.shared_data
def test_modality_guess_t2_like_images_from_a_real_head(shared_data, capsys, tmp_image):
    from scipy import ndimage as ndi

    t1, ref = _colin(shared_data)
    data = t1.data.astype(np.float32)
    # (a) a T2 built from the real tissue labels: CSF brightest, WM darkest brain tissue, scalp
    # fat bright and muscle dark as in TSE (taken from the T1's scalp brightness)
    t1n = data / np.percentile(data[ref > 0], 99)
    t2 = np.select([ref == 1, ref == 2, ref == 3, ref == 4], [0.35, 0.45, 1.0, 0.06], 0.0).astype(np.float32)
    t2 = np.where(ref == 5, np.clip(0.25 + 1.2 * (t1n - 0.3), 0.2, 0.9), t2).astype(np.float32)
    t2 = ndi.gaussian_filter(t2, 0.7)
    rng = np.random.default_rng(1)
    t2 = np.hypot(t2 + rng.normal(0, 0.02, t2.shape), rng.normal(0, 0.02, t2.shape)).astype(np.float32) * 1000
    # (b) the real T1 with its contrast inverted inside the head
    head = ndi.binary_fill_holes(ref > 0)
    inv = np.where(head, np.percentile(data[head], 99.5) - data, 0).clip(0).astype(np.float32)
    for name, img in (("labels T2", t2), ("inverted T1", inv)):
        d = _info_json(tmp_image(img, t1.affine), capsys)
        assert d["modality_guess"] == "T2", (name, d["modality_reason"])
    # thick axial slices (5 mm) of both contrasts
    aff5 = t1.affine.copy()
    aff5[:3, 2] *= 5
    assert _info_json(tmp_image(t2[:, :, ::5], aff5), capsys)["modality_guess"] == "T2"
    assert _info_json(tmp_image(data[:, :, ::5], aff5), capsys)["modality_guess"] == "T1"


def test_modality_guess_sample_subjects(tmp_path, capsys):
    from navigator.io.images import save_nifti
    from navigator.core.volume import Volume
    from navigator.samples import write_sample
    from navigator.samples.phantom import generate_phantom

    ws = write_sample("sphere", tmp_path / "sphere")
    assert _info_json(ws.path("t1"), capsys)["modality_guess"] == "T1"
    ph = generate_phantom(0)
    for name, img, expect in (("a", ph.t1, "T1"), ("b", ph.t2, "T2")):
        p = save_nifti(Volume(img, ph.affine), tmp_path / f"phantom_{name}.nii.gz")
        d = _info_json(p, capsys)
        assert d["modality_guess"] == expect and "intensities" in d["modality_reason"], (name, d["modality_reason"])


def test_modality_from_the_file_name(tmp_image, capsys):
    """BIDS suffixes and protocol words in the file name decide what the intensities cannot
    (a FLAIR or proton-density image looks T1-like to them); a name that says nothing leaves
    the guess to the intensities."""
    from navigator.io.images import _contrast_from_name

    data, aff = _ellipsoid_head(_T1, (2.0, 2.0, 2.0))
    for name, expect, word in (("sub-01_FLAIR.nii.gz", "other", "FLAIR"), ("sub-01_PDw.nii.gz", "other", "proton"),
                               ("sub-01_inv-2_MP2RAGE.nii.gz", "other", "inversion"),
                               ("sub-01_UNIT1.nii.gz", "T1", "UNI"), ("sub-01_T2w.nii.gz", "T2", "T2"),
                               ("t1_mprage_sag.nii.gz", "T1", "T1")):
        d = _info_json(tmp_image(data, aff, name=name), capsys)
        assert d["modality_guess"] == expect and word in d["modality_reason"], (name, d["modality_reason"])
    assert _contrast_from_name("headscan.nii.gz") is None and _contrast_from_name("standard.nrrd") is None


def test_modality_guess_tolerates_nan_voxels():
    from navigator.io.images import guess_modality

    for contrast, expect in ((_T1, "T1"), (_T2, "T2")):
        data, aff = _ellipsoid_head(contrast, (2.0, 2.0, 2.0))
        data = data.astype(np.float32)
        data[np.random.default_rng(3).random(data.shape) < 0.1] = np.nan  # 10 % NaN everywhere
        assert guess_modality(data, spacing=(2.0, 2.0, 2.0))[0] == expect
