"""NIfTI loading/saving: orientation (left stays left), sform/qform rules, sanity limits, image_info."""

from __future__ import annotations

import gzip
import itertools
import logging

import nibabel as nib
import numpy as np
import pytest

from navigator.core.errors import InputError
from navigator.core.volume import Volume
from navigator.io.images import image_info, load_image, reorient_to_ras, save_nifti
from navigator.io.nifti import MAX_AXIS


def _affine_from_axcodes(codes, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0)):
    """Affine whose voxel axes point along the given axis codes (e.g. 'LPS', 'PSR')."""
    dirs = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    aff = np.zeros((4, 4))
    for ax, c in enumerate(codes):
        world_ax, sign = dirs[c]
        aff[world_ax, ax] = sign * spacing[ax]
    aff[:3, 3] = origin
    aff[3, 3] = 1
    return aff


def _head_phantom(shape=(20, 24, 18)):
    rng = np.random.default_rng(0)
    return rng.integers(0, 200, size=shape).astype(np.int16)


# ---------------------------------------------------------------------------- left/right


@pytest.mark.parametrize("codes", ["LPS", "PSR", "LAS", "RAS", "IRP"])
def test_left_marker_survives_loading(tmp_image, codes):
    shape = (20, 24, 18)
    aff = _affine_from_axcodes(codes, spacing=(1.5, 2.0, 2.5), origin=(0.0, 0.0, 0.0))
    # put the origin mid-volume so the volume spans both hemispheres
    aff[:3, 3] = -aff[:3, :3] @ (np.array(shape) / 2.0)
    data = np.zeros(shape, np.int16)
    world_marker = None
    for ijk in itertools.product(range(shape[0]), range(shape[1]), range(shape[2])):
        w = aff[:3, :3] @ ijk + aff[:3, 3]
        if w[0] < -6 and abs(w[1]) < 3 and abs(w[2]) < 3:
            data[ijk] = 1000
            world_marker = w
            break
    assert world_marker is not None and world_marker[0] < 0
    path = tmp_image(data, aff)
    assert image_info(path).axcodes == tuple(codes)
    vol = load_image(path)
    assert vol.axcodes == ("R", "A", "S")
    assert vol.meta["original_axcodes"] == list(codes)
    ijk = np.argwhere(vol.data == 1000)
    assert len(ijk) == 1
    got = vol.voxel_to_world(ijk)[0]
    assert got[0] < 0
    np.testing.assert_allclose(got, world_marker, rtol=0, atol=1e-9)


def test_reorientation_keeps_every_voxel_world_position():
    rng = np.random.default_rng(5)
    data = rng.random((7, 9, 11, 3)).astype(np.float32)  # vector field: 4th axis kept
    # oblique (15 deg) + flipped, sagittal-like axis order
    a = np.radians(15)
    rot = np.array([[0, 0, 1], [-np.cos(a), np.sin(a), 0], [np.sin(a), np.cos(a), 0]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([1.2, 0.9, 2.0])
    aff[:3, 3] = [10.0, -20.0, 30.0]
    new, new_aff, _ = reorient_to_ras(data, aff)
    assert nib.orientations.aff2axcodes(new_aff) == ("R", "A", "S")
    ijk_new = np.stack(np.meshgrid(*[np.arange(n) for n in new.shape[:3]], indexing="ij"), -1).reshape(-1, 3)
    world = ijk_new @ new_aff[:3, :3].T + new_aff[:3, 3]
    ijk_old = np.linalg.solve(aff[:3, :3], (world - aff[:3, 3]).T).T
    ijk_old_int = np.rint(ijk_old).astype(int)
    np.testing.assert_allclose(ijk_old, ijk_old_int, atol=1e-9)  # grid maps onto grid: no resampling
    np.testing.assert_array_equal(new.reshape(-1, 3), data[tuple(ijk_old_int.T)])


def test_reorient_false_keeps_file_order(tmp_image):
    aff = _affine_from_axcodes("LPS")
    vol = load_image(tmp_image(_head_phantom(), aff), reorient=False)
    assert vol.axcodes == ("L", "P", "S") and not vol.meta["reoriented"]
    np.testing.assert_allclose(vol.affine, aff)


# ---------------------------------------------------------------------------- save / load


def test_save_nifti_roundtrip_sets_codes_units_and_is_atomic(tmp_path):
    aff = _affine_from_axcodes("LAS", origin=(90, -100, -80))
    vol = Volume(_head_phantom(), aff)
    out = save_nifti(vol, tmp_path / "sub" / "t1.nii.gz")
    assert out == tmp_path / "sub" / "t1.nii.gz"
    assert [p.name for p in out.parent.iterdir()] == ["t1.nii.gz"]  # no temporary left behind
    img = nib.load(str(out))
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    assert img.header.get_xyzt_units()[0] == "mm"
    np.testing.assert_allclose(img.header.get_qform(), aff, atol=1e-5)
    back = load_image(out, reorient=False)
    np.testing.assert_array_equal(back.data, vol.data)
    assert back.data.dtype == np.int16
    np.testing.assert_allclose(back.affine, aff, atol=1e-5)


def test_save_nifti_sheared_affine_has_no_qform(tmp_path):
    aff = np.array([[1.0, 0.3, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])
    out = save_nifti(Volume(np.zeros((4, 5, 6), np.float32), aff), tmp_path / "s.nii")
    img = nib.load(str(out))
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 0
    np.testing.assert_allclose(img.header.get_sform(), aff, atol=1e-6)


def test_save_nifti_dtype(tmp_path):
    vol = Volume(np.array([0.4, 1.6, 2.5, 7.0] * 6, float).reshape(2, 3, 4), np.eye(4))
    out = save_nifti(vol, tmp_path / "l.nii.gz", dtype=np.uint8)
    back = load_image(out, reorient=False)
    assert back.data.dtype == np.uint8 and set(np.unique(back.data)) == {0, 2, 7}
    with pytest.raises(InputError, match="do not fit"):
        save_nifti(Volume(np.full((2, 2, 2), 300.0), np.eye(4)), tmp_path / "x.nii.gz", dtype=np.uint8)
    with pytest.raises(InputError, match=r"\.nii"):
        save_nifti(vol, tmp_path / "x.png")
    save_nifti(Volume(np.ones((2, 2, 2), bool), np.eye(4)), tmp_path / "b.nii.gz")
    assert load_image(tmp_path / "b.nii.gz").data.dtype == np.uint8


def test_scl_slope_is_applied(tmp_image):
    raw = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    path = tmp_image(raw, np.eye(4), slope=0.5, inter=10.0)
    vol = load_image(path, reorient=False)
    assert vol.data.dtype == np.float32
    np.testing.assert_allclose(vol.data, raw * 0.5 + 10.0)
    info = image_info(path)
    assert info.scl_slope == 0.5 and info.scl_inter == 10.0


def test_4d_handling(tmp_image):
    one = tmp_image(_head_phantom()[..., None], np.eye(4))
    assert load_image(one).data.ndim == 3
    many = tmp_image(np.zeros((6, 7, 8, 5), np.float32), _affine_from_axcodes("LPS"))
    with pytest.raises(InputError, match="5 volumes"):
        load_image(many)
    vol = load_image(many, allow_4d=True)
    assert vol.data.shape == (6, 7, 8, 5) and vol.axcodes == ("R", "A", "S")
    # ITK-style 5-D vector image (X, Y, Z, 1, 3) -> (X, Y, Z, 3)
    field = tmp_image(np.zeros((6, 7, 8, 1, 3), np.float32), np.eye(4))
    assert load_image(field, allow_4d=True).data.shape == (6, 7, 8, 3)


def test_qform_only_and_no_orientation(tmp_image, caplog):
    aff = _affine_from_axcodes("LPS", origin=(5, 6, 7))
    vol = load_image(tmp_image(_head_phantom(), aff, sform_code=0, qform_code=1), reorient=False)
    assert vol.meta["transform"] == "qform"
    np.testing.assert_allclose(vol.affine, aff, atol=1e-5)
    with caplog.at_level(logging.WARNING, logger="navigator"):
        vol = load_image(tmp_image(_head_phantom(), aff, sform_code=0, qform_code=0))
    assert vol.meta["transform"] == "none"
    assert "UNKNOWN" in caplog.text


def test_sform_qform_disagreement_warns_and_uses_sform(tmp_image, caplog):
    sform = _affine_from_axcodes("RAS", origin=(-20, -24, -18))
    qform = sform.copy()
    qform[:3, 3] += [3.0, 0.0, 4.0]  # 5 mm shift
    path = tmp_image(_head_phantom(), sform, qform_affine=qform)
    with caplog.at_level(logging.WARNING, logger="navigator"):
        vol = load_image(path)
    assert "disagree" in caplog.text and "sform" in caplog.text
    assert vol.meta["transform"] == "sform" and vol.meta["sform_qform_disagree"]
    assert vol.meta["sform_qform_disagreement_mm"] == pytest.approx(5.0, abs=1e-4)
    np.testing.assert_allclose(vol.affine, sform, atol=1e-5)
    info = image_info(path)
    assert info.sform_qform_disagree and info.transform == "sform"
    assert info.sform_qform_max_diff_mm == pytest.approx(5.0, abs=1e-4)


def test_mgh_loads(tmp_path):
    aff = _affine_from_axcodes("LIA", spacing=(1, 1, 1), origin=(10, 20, 30))
    nib.save(nib.MGHImage(_head_phantom().astype(np.float32), aff), str(tmp_path / "a.mgz"))
    vol = load_image(tmp_path / "a.mgz")
    assert vol.meta["format"] == "mgh" and vol.axcodes == ("R", "A", "S")
    assert vol.meta["original_axcodes"] == ["L", "I", "A"]


# ---------------------------------------------------------------------------- sanity limits


def test_error_nonexistent(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.nii.gz")


def test_error_text_file_named_nii(tmp_path):
    p = tmp_path / "fake.nii"
    p.write_text("this is not an image\n" * 40)
    with pytest.raises(InputError, match="not a NIfTI image") as err:
        load_image(p)
    assert str(p) in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty.nii").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load_image(tmp_path / "empty.nii")


def test_error_truncated_gzip(tmp_image, tmp_path):
    good = tmp_image(np.random.default_rng(1).random((30, 30, 30)).astype(np.float32), np.eye(4))
    blob = good.read_bytes()
    trunc = tmp_path / "trunc.nii.gz"
    trunc.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_image(trunc)
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 3)
    with pytest.raises(InputError, match="corrupt or truncated gzip"):
        load_image(bad)
    short = tmp_path / "short.nii.gz"
    short.write_bytes(gzip.compress(gzip.decompress(blob)[:200]))
    with pytest.raises(InputError, match="too short"):
        load_image(short)


def test_error_truncated_uncompressed(tmp_image, tmp_path):
    good = tmp_image(np.ones((30, 30, 30), np.float32), np.eye(4), name="g.nii")
    trunc = tmp_path / "t.nii"
    trunc.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_image(trunc)


def test_error_2d(tmp_image):
    with pytest.raises(InputError, match="2-D"):
        load_image(tmp_image(np.zeros((10, 12), np.float32), np.eye(4)))
    with pytest.raises(InputError, match="2-D"):
        load_image(tmp_image(np.zeros((10, 12, 1), np.float32), np.eye(4)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_error_nonfinite(tmp_image, bad):
    data = np.ones((5, 6, 7), np.float32)
    data[1, 2, 3] = bad
    path = tmp_image(data, np.eye(4))
    with pytest.raises(InputError, match="non-finite"):
        load_image(path)
    info = image_info(path)  # info still describes it
    assert info.n_nonfinite == 1 and any("NaN/inf" in p for p in info.problems)


@pytest.mark.parametrize("pixdim", [(0.0, 1.0, 1.0), (1.0, -1.0, 1.0)])
def test_error_bad_voxel_size(tmp_image, pixdim):
    path = tmp_image(np.ones((5, 6, 7), np.float32), np.eye(4), name="v.nii")
    # nibabel repairs zero pixdims when saving, so patch the header bytes (pixdim: float32[8] at offset 76)
    blob = bytearray(path.read_bytes())
    blob[80:92] = np.asarray(pixdim, "<f4").tobytes()
    path.write_bytes(bytes(blob))
    with pytest.raises(InputError, match="zero or negative voxel size"):
        load_image(path)


def test_error_degenerate_sform_without_qform(tmp_path):
    img = nib.Nifti1Image(np.ones((5, 6, 7), np.float32), np.eye(4))
    img.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), code=1)
    img.set_qform(np.eye(4), code=0)
    path = tmp_path / "degenerate.nii.gz"
    nib.save(img, str(path))
    with pytest.raises(InputError, match="degenerate|voxel size"):
        load_image(path)


def test_error_too_large_checked_before_reading(tmp_path):
    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.uint8)
    hdr.set_data_shape((MAX_AXIS + 952, 10, 10))
    hdr.set_sform(np.eye(4), code=1)
    path = tmp_path / "huge.nii"
    # header only: reading the data would fail with "truncated", so the size check must come first
    path.write_bytes(hdr.binaryblock + b"\x00" * 4)
    with pytest.raises(InputError, match="too large"):
        load_image(path)
    hdr.set_data_shape((1200, 1200, 1100))  # each axis OK but 1.58e9 voxels
    path.write_bytes(hdr.binaryblock + b"\x00" * 4)
    with pytest.raises(InputError, match="too large"):
        load_image(path)
    info = image_info(path)
    assert info.min is None and any("too large" in p for p in info.problems)


# ---------------------------------------------------------------------------- image_info


def _sphere_phantom(centre_value, shell_value, bg=0.0, n=40):
    """Head-like phantom: a bright/dark centre (brain) inside a shell (fluid/scalp)."""
    g = np.indices((n, n, n)).astype(float) - (n - 1) / 2
    r = np.sqrt((g**2).sum(0))
    img = np.full((n, n, n), bg, np.float32)
    img[r < 18] = shell_value
    img[r < 14] = centre_value
    rng = np.random.default_rng(0)
    return (img + rng.normal(0, 2, img.shape)).astype(np.float32) + 20


def test_info_modality_guesses(tmp_image):
    aff = _affine_from_axcodes("LPS")
    t1 = image_info(tmp_image(_sphere_phantom(centre_value=800, shell_value=300), aff))
    assert t1.modality_guess == "T1" and "guess" in t1.modality_reason
    t2 = image_info(tmp_image(_sphere_phantom(centre_value=250, shell_value=900), aff))
    assert t2.modality_guess == "T2"
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[5:15, 5:15, 5:15] = 3
    labels[8:12, 8:12, 8:12] = 7
    lab = image_info(tmp_image(labels, aff))
    assert lab.modality_guess == "label map" and "3 distinct" in lab.modality_reason
    prob = image_info(tmp_image(np.random.default_rng(0).random((10, 10, 10)).astype(np.float32), aff))
    assert prob.modality_guess == "probability map"
    series = image_info(
        tmp_image(np.random.default_rng(0).random((8, 8, 8, 20)).astype(np.float32) * 100, aff)
    )
    assert series.modality_guess == "fMRI series" and any("20 volumes" in p for p in series.problems)


def test_info_fields(tmp_image):
    aff = _affine_from_axcodes("PSR", spacing=(1.0, 1.5, 2.0), origin=(-10, 20, -30))
    data = np.arange(10 * 11 * 12, dtype=np.int16).reshape(10, 11, 12)
    info = image_info(tmp_image(data, aff))
    assert info.format == "nifti1" and info.shape == (10, 11, 12)
    assert info.voxel_size_mm == pytest.approx((1.0, 1.5, 2.0))
    assert info.axcodes == ("P", "S", "R") and info.transform == "sform"
    assert (info.sform_code, info.qform_code) == (1, 1) and not info.sform_qform_disagree
    assert info.min == 0 and info.max == data.max() and info.dtype == "int16"
    assert info.percentiles["p50"] == pytest.approx(np.percentile(data, 50))
    assert not info.problems
    d = info.to_dict()
    assert d["axcodes"] == ["P", "S", "R"] and d["shape"] == [10, 11, 12]


# ---------------------------------------------------------------------------- real data


@pytest.mark.shared_data
def test_ixi_t1_orientation(shared_data):
    path = shared_data / "ixi" / "IXI015-HH-1258_T1.nii.gz"
    if not path.exists():
        pytest.skip("IXI T1 not present")
    info = image_info(path)
    assert info.axcodes == ("P", "S", "R")
    assert info.shape == (120, 120, 90) and info.voxel_size_mm == pytest.approx((2.0, 2.0, 2.0))
    assert info.modality_guess == "T1"
    raw = load_image(path, reorient=False)
    vol = load_image(path)
    assert vol.axcodes == ("R", "A", "S") and vol.meta["original_axcodes"] == ["P", "S", "R"]
    assert vol.shape == (90, 120, 120)
    # the mapping is preserved: every voxel's world position and value are unchanged
    rng = np.random.default_rng(0)
    ijk = np.stack([rng.integers(0, n, 500) for n in raw.shape], axis=1)
    world = raw.voxel_to_world(ijk)
    new = vol.world_to_voxel(world)
    new_int = np.rint(new).astype(int)
    np.testing.assert_allclose(new, new_int, atol=1e-6)
    np.testing.assert_array_equal(vol.data[tuple(new_int.T)], raw.data[tuple(ijk.T)])
    lo, hi = vol.world_bounds()
    rlo, rhi = raw.world_bounds()
    np.testing.assert_allclose(lo, rlo, atol=1e-6)
    np.testing.assert_allclose(hi, rhi, atol=1e-6)


def test_big_endian_file_gives_native_array(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=">i2").reshape(4, 5, 6)
    hdr = nib.Nifti1Header(endianness=">")
    img = nib.Nifti1Image(data, np.eye(4), hdr)
    img.set_data_dtype(">i2")
    img.set_sform(np.eye(4), code=1)
    nib.save(img, str(tmp_path / "be.nii"))
    assert nib.load(str(tmp_path / "be.nii")).header.endianness == ">"
    vol = load_image(tmp_path / "be.nii")
    assert vol.data.dtype.isnative and vol.data.dtype == np.int16
    np.testing.assert_array_equal(vol.data, data)


def test_fmri_series_keeps_repetition_time(tmp_path):
    img = nib.Nifti1Image(np.random.default_rng(0).random((5, 6, 7, 12)).astype(np.float32) * 100, np.eye(4))
    img.header.set_xyzt_units("mm", "msec")
    img.header["pixdim"][4] = 2000.0  # TR 2 s stored in ms
    img.set_sform(np.eye(4), 1)
    nib.save(img, str(tmp_path / "bold.nii.gz"))
    vol = load_image(tmp_path / "bold.nii.gz", allow_4d=True)
    assert vol.meta["repetition_time_s"] == pytest.approx(2.0)
    out = save_nifti(vol, tmp_path / "copy.nii.gz")
    back = nib.load(str(out))
    assert back.header.get_zooms()[3] == pytest.approx(2.0) and back.header.get_xyzt_units() == ("mm", "sec")
