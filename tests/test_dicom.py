"""DICOM series -> volumes: geometry (LPS -> RAS, oblique), slice checks, series selection, conversion."""

from __future__ import annotations

import shutil
from pathlib import Path
import subprocess

import numpy as np
import pytest

from navigator.core.errors import InputError
from navigator.io.dicom import dicom_to_nifti, list_dicom_series, read_dicom_series
from navigator.io.images import image_info, load_image

NX, NY, NZ = 16, 14, 10  # columns, rows, slices


def _dcm2niix() -> str:
    """The dcm2niix executable (the pip package's, else one on PATH); skips the test without one."""
    try:
        import dcm2niix

        exe = str(dcm2niix.bin)
    except (ImportError, AttributeError):  # pragma: no cover
        exe = shutil.which("dcm2niix")
    if not exe:
        pytest.skip("dcm2niix not available")
    return exe


def _phantom(seed=1):
    rng = np.random.default_rng(seed)
    return rng.integers(10, 200, size=(NX, NY, NZ)).astype(np.int16)


def _expected_world(ijk, origin, row_dir, col_dir, ps, step):
    """RAS world position from the DICOM definition (LPS) of voxel (column i, row j, slice k)."""
    i, j, k = ijk
    lps = (
        np.asarray(origin, float)
        + i * ps[1] * np.asarray(row_dir, float)
        + j * ps[0] * np.asarray(col_dir, float)
        + k * np.asarray(step, float)
    )
    return lps * np.array([-1.0, -1.0, 1.0])


def _rotation(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    a = np.radians(deg)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def test_axial_series_geometry_and_values(tmp_path, tmp_dicom_series):
    data = _phantom()
    origin, ps, thick = (-20.0, -30.0, 5.0), (1.5, 1.25), 2.5
    tmp_dicom_series(tmp_path / "d", data, origin=origin, pixel_spacing=ps, thickness=thick)
    vol = read_dicom_series(tmp_path / "d")
    assert vol.data.shape == (NX, NY, NZ)
    np.testing.assert_array_equal(vol.data, data)  # file order shuffled, slices sorted back
    expected = np.array([[-1.25, 0, 0, 20.0], [0, -1.5, 0, 30.0], [0, 0, 2.5, 5.0], [0, 0, 0, 1]])
    np.testing.assert_allclose(vol.affine, expected, atol=1e-9)
    assert vol.meta["series_description"] == "test T1"
    assert vol.meta["n_slices"] == NZ and vol.meta["slice_spacing_mm"] == pytest.approx(2.5)
    # load_image reorients LPI-like (L, P, S) to RAS and keeps world positions
    img = load_image(tmp_path / "d")
    assert img.axcodes == ("R", "A", "S") and img.meta["original_axcodes"] == ["L", "P", "S"]
    ijk_orig = np.array([3, 5, 7])
    w = vol.voxel_to_world(ijk_orig)[0]
    ijk_new = np.rint(img.world_to_voxel(w)[0]).astype(int)
    assert img.data[tuple(ijk_new)] == data[tuple(ijk_orig)]


def test_left_marker_lands_at_negative_x(tmp_path, tmp_dicom_series):
    """DICOM is LPS: patient-left is +x in LPS and must become x < 0 in RAS."""
    data = np.zeros((NX, NY, NZ), np.int16)
    origin = (-7.5, -6.5, -9.0)  # LPS; column i at LPS x = -7.5 + i
    i_left = 13  # LPS x = +5.5 -> patient's left
    data[i_left, 4, 6] = 1000
    tmp_dicom_series(tmp_path / "d", data, origin=origin)
    vol = load_image(tmp_path / "d")
    ijk = np.argwhere(vol.data == 1000)
    assert len(ijk) == 1
    world = vol.voxel_to_world(ijk)[0]
    assert world[0] < 0
    np.testing.assert_allclose(world, [-5.5, 2.5, 3.0], atol=1e-9)  # RAS = (-x, -y, z) of LPS (5.5, -2.5, 3)


def test_oblique_series_every_voxel_exact(tmp_path, tmp_dicom_series):
    rot = _rotation((0.3, 1.0, 0.2), 25.0)
    row_dir, col_dir = rot[:, 0], rot[:, 1]
    origin, ps, thick = (12.0, -40.0, 22.0), (1.1, 0.9), 3.0
    step = np.cross(row_dir, col_dir) * thick
    data = _phantom(2)
    markers = [(1, 2, 3), (14, 12, 8), (8, 1, 0)]
    for m in markers:
        data[m] = 5000
    tmp_dicom_series(
        tmp_path / "d",
        data,
        row_dir=row_dir,
        col_dir=col_dir,
        origin=origin,
        pixel_spacing=ps,
        thickness=thick,
    )
    raw = read_dicom_series(tmp_path / "d")
    ijk = np.stack(np.meshgrid(np.arange(NX), np.arange(NY), np.arange(NZ), indexing="ij"), -1).reshape(-1, 3)
    got = raw.voxel_to_world(ijk)
    want = np.array([_expected_world(v, origin, row_dir, col_dir, ps, step) for v in ijk])
    np.testing.assert_allclose(got, want, atol=1e-5)  # IPP/IOP are stored as decimal strings
    vol = load_image(tmp_path / "d")
    assert vol.axcodes == ("R", "A", "S")
    for m in markers:
        new = np.rint(vol.world_to_voxel(_expected_world(m, origin, row_dir, col_dir, ps, step))[0]).astype(
            int
        )
        assert vol.data[tuple(new)] == 5000


def test_oblique_series_matches_dcm2niix(tmp_path, tmp_dicom_series):
    """Independent check of the geometry against dcm2niix (the reference converter)."""
    import nibabel as nib

    exe = _dcm2niix()
    rot = _rotation((1.0, -0.4, 0.5), 17.0)
    data = _phantom(3)
    data[2, 3, 4] = 6000
    tmp_dicom_series(
        tmp_path / "d",
        data,
        row_dir=rot[:, 0],
        col_dir=rot[:, 1],
        origin=(5.0, 7.0, -30.0),
        pixel_spacing=(1.2, 0.8),
        thickness=2.2,
    )
    out = tmp_path / "ref"
    out.mkdir()
    subprocess.run(
        [exe, "-z", "y", "-b", "n", "-f", "ref", "-o", str(out), str(tmp_path / "d")],
        check=True,
        capture_output=True,
    )
    ref = nib.load(str(next(out.glob("ref*.nii.gz"))))
    ref_data = np.asarray(ref.dataobj)
    ref_world = nib.affines.apply_affine(ref.affine, np.argwhere(ref_data == 6000))[0]
    vol = load_image(tmp_path / "d")
    ours = vol.voxel_to_world(np.argwhere(vol.data == 6000))[0]
    np.testing.assert_allclose(ours, ref_world, atol=1e-3)
    np.testing.assert_allclose(
        sorted(vol.spacing), sorted(np.sqrt((ref.affine[:3, :3] ** 2).sum(0))), atol=1e-4
    )


def test_several_series_error_and_selection(tmp_path, tmp_dicom_series):
    tmp_dicom_series(
        tmp_path / "d" / "a", _phantom(), series_uid="1.2.3.4.1", description="T1 MPRAGE", series_number=3
    )
    tmp_dicom_series(
        tmp_path / "d" / "b",
        _phantom()[:, :, :6],
        series_uid="1.2.3.4.2",
        description="T2 SPACE",
        series_number=5,
    )
    series = list_dicom_series(tmp_path / "d")
    assert [s.uid for s in series] == ["1.2.3.4.1", "1.2.3.4.2"]
    assert [s.n_files for s in series] == [NZ, 6]
    with pytest.raises(InputError) as err:
        load_image(tmp_path / "d")
    msg = str(err.value)
    assert "2 DICOM series" in msg and "--series" in msg and "1.2.3.4.2" in msg and "T2 SPACE" in msg
    assert "6 slices" in msg and "\n" not in msg
    assert load_image(tmp_path / "d", series_uid="1.2.3.4.2").shape == (NX, NY, 6)
    assert load_image(tmp_path / "d", series_uid="3").shape == (NX, NY, NZ)  # by series number
    with pytest.raises(InputError, match="no single DICOM series"):
        load_image(tmp_path / "d", series_uid="9.9.9")


def test_missing_slice_is_refused(tmp_path, tmp_dicom_series):
    tmp_dicom_series(tmp_path / "d", _phantom(), skip_slices=[4])
    with pytest.raises(InputError, match="missing slice"):
        load_image(tmp_path / "d")


def test_duplicated_slice_is_refused(tmp_path, tmp_dicom_series):
    tmp_dicom_series(tmp_path / "d", _phantom(), duplicate_slices=[6])
    with pytest.raises(InputError, match="duplicated slices"):
        load_image(tmp_path / "d")


def test_uneven_spacing_is_refused(tmp_path, tmp_dicom_series):
    d = tmp_path / "d"
    tmp_dicom_series(d, _phantom())
    import pydicom

    # move the 5th slice (z = 8 mm) by 40% of the 2 mm spacing
    f = next(p for p in d.iterdir() if int(pydicom.dcmread(str(p)).InstanceNumber) == 5)
    ds = pydicom.dcmread(str(f))
    ipp = [float(v) for v in ds.ImagePositionPatient]
    assert ipp[2] == pytest.approx(8.0)
    ds.ImagePositionPatient = [f"{v:.4f}" for v in (ipp[0], ipp[1], ipp[2] + 0.8)]
    ds.save_as(str(f))
    with pytest.raises(InputError, match="uneven slice spacing"):
        load_image(d)


def test_empty_and_non_dicom_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty folder"):
        load_image(tmp_path / "empty")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("not dicom\n" * 30)
    with pytest.raises(InputError, match="no DICOM images"):
        load_image(tmp_path / "text")
    with pytest.raises(InputError, match="no such file"):
        list_dicom_series(tmp_path / "nothing")


def test_rescale_slope_intercept(tmp_path, tmp_dicom_series):
    data = _phantom().astype(np.float64) * 0.5 - 100.0
    tmp_dicom_series(tmp_path / "d", data, slope=0.5, intercept=-100.0)
    vol = read_dicom_series(tmp_path / "d")
    assert vol.data.dtype == np.float32 and vol.meta["rescaled"]
    np.testing.assert_allclose(vol.data, data, atol=1e-4)


def test_single_file_path_and_single_slice(tmp_path, tmp_dicom_series):
    files = tmp_dicom_series(tmp_path / "d", _phantom())
    vol = load_image(files[0], reorient=False)  # one file of the series loads the whole series
    assert vol.shape == (NX, NY, NZ)
    tmp_dicom_series(tmp_path / "one", _phantom()[:, :, :1])
    with pytest.raises(InputError, match="2-D"):
        load_image(tmp_path / "one")


def test_multi_volume_series(tmp_path, tmp_dicom_series):
    data = np.stack([_phantom(1), _phantom(2), _phantom(3)], axis=-1)
    tmp_dicom_series(tmp_path / "d", data)
    with pytest.raises(InputError, match="3 volumes"):
        load_image(tmp_path / "d")
    vol = load_image(tmp_path / "d", allow_4d=True, reorient=False)
    assert vol.data.shape == (NX, NY, NZ, 3)
    np.testing.assert_array_equal(vol.data, data)


def test_dicom_to_nifti_roundtrip(tmp_path, tmp_dicom_series):
    import nibabel as nib

    rot = _rotation((0.0, 0.2, 1.0), 12.0)
    tmp_dicom_series(tmp_path / "d", _phantom(), row_dir=rot[:, 0], col_dir=rot[:, 1], origin=(3, 4, 5))
    out = dicom_to_nifti(tmp_path / "d", tmp_path / "out" / "t1.nii.gz")
    assert out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    img = nib.load(str(out))
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    direct = read_dicom_series(tmp_path / "d")
    np.testing.assert_allclose(img.affine, direct.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj), direct.data)
    info = image_info(tmp_path / "d")
    assert info.format == "dicom" and info.dicom["series_uid"] == direct.meta["series_uid"]
    assert info.modality_guess == "T1"  # "test T1" description


# ---------------------------------------------------------------------------- scanner variants
# Enhanced multi-frame, compressed transfer syntaxes and Siemens mosaics must read to the same
# voxels and world coordinates as the plain one-file-per-slice series they were made from.

IXI_T1 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ixi" / "IXI015-HH-1258_T1.nii.gz"


def _real_series(folder):
    """A classic series cut from the real IXI T1 (sagittal P,S,R storage: its own geometry, int16);
    a synthetic oblique volume when the shared data is absent. Returns (files, data, ras_affine)."""
    from conftest import write_dicom_series

    if IXI_T1.exists():
        import nibabel as nib

        img = nib.load(str(IXI_T1))
        sub = (slice(30, 78), slice(40, 80), slice(30, 54))  # 48 x 40 x 24 voxels through the head
        data = np.rint(np.asarray(img.dataobj)[sub]).astype(np.int16)
        affine = img.slicer[sub].affine
    else:  # pragma: no cover - without ../shared/data
        data = _phantom(5)
        affine = np.eye(4)
        affine[:3, :3] = _rotation((0.2, 1.0, 0.3), 20.0) @ np.diag([1.1, 0.9, 2.0])
        affine[:3, 3] = (10.0, -20.0, 5.0)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    ps = (np.linalg.norm(lps[:3, 1]), np.linalg.norm(lps[:3, 0]))  # DICOM order: row spacing, column spacing
    files = write_dicom_series(folder, data, row_dir=lps[:3, 0] / ps[1], col_dir=lps[:3, 1] / ps[0],
                               pixel_spacing=ps, origin=lps[:3, 3], slice_step=lps[:3, 2],
                               thickness=float(np.linalg.norm(lps[:3, 2])))
    return files, data, affine


def _assert_same_volume(a, b):
    assert a.data.shape == b.data.shape
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_allclose(a.affine, b.affine, atol=1e-4)


def test_real_series_matches_its_nifti(tmp_path):
    files, data, affine = _real_series(tmp_path / "plain")
    plain = read_dicom_series(tmp_path / "plain")
    assert plain.data.shape == data.shape
    # every voxel sits where the NIfTI puts it (slices may be re-sorted along the slice normal)
    ijk = np.argwhere(np.ones(data.shape, bool))
    src = np.rint(nib_apply(np.linalg.inv(affine), plain.voxel_to_world(ijk))).astype(int)
    np.testing.assert_allclose(nib_apply(np.linalg.inv(affine), plain.voxel_to_world(ijk)), src, atol=1e-3)
    np.testing.assert_array_equal(plain.data[tuple(ijk.T)], data[tuple(src.T)])


def test_enhanced_multiframe_reads_like_the_plain_series(tmp_path):
    from dicom_variants import to_enhanced

    files, data, affine = _real_series(tmp_path / "plain")
    enhanced = to_enhanced(files, tmp_path / "enh" / "enhanced.dcm")
    plain = read_dicom_series(tmp_path / "plain")
    multi = read_dicom_series(tmp_path / "enh")
    _assert_same_volume(multi, plain)
    assert multi.meta["n_slices"] == data.shape[2] and multi.meta["repetition_time_ms"] == 8.0
    assert multi.meta["echo_time_ms"] == 3.0
    # through load_image (reoriented to RAS) both land on the same world positions
    a, b = load_image(tmp_path / "plain"), load_image(enhanced)
    _assert_same_volume(b, a)
    series = list_dicom_series(tmp_path / "enh")
    assert series[0].n_files == 1 and len(series[0].images) == data.shape[2]
    assert read_dicom_series(tmp_path / "plain").meta["storage"] == "classic"


def test_enhanced_multiframe_4d_reads_like_the_plain_series(tmp_path, tmp_dicom_series):
    """A 4-D enhanced file (time series: TemporalPositionIndex per frame) -> (X, Y, Z, T)."""
    from dicom_variants import to_enhanced

    data = np.stack([_phantom(30 + t) for t in range(3)], axis=-1)
    rot = _rotation((1.0, 0.2, 0.1), 30.0)
    files = tmp_dicom_series(tmp_path / "plain", data, row_dir=rot[:, 0], col_dir=rot[:, 1], origin=(4, 5, 6))
    to_enhanced(files, tmp_path / "enh" / "fmri.dcm")
    multi = read_dicom_series(tmp_path / "enh")
    assert multi.data.shape == (NX, NY, NZ, 3) and multi.meta["storage"] == "enhanced multi-frame"
    _assert_same_volume(multi, read_dicom_series(tmp_path / "plain"))


@pytest.mark.parametrize("syntax", ["jpeg-lossless", "jpeg-ls", "jpeg2000", "rle", "deflate"])
def test_compressed_series_reads_like_the_plain_series(tmp_path, syntax):
    import pydicom

    from dicom_variants import transcode

    if syntax != "deflate":
        pytest.importorskip("gdcm")
    files, data, affine = _real_series(tmp_path / "plain")
    out = transcode(files, tmp_path / syntax, syntax)
    ts = pydicom.dcmread(str(out[0]), stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert ts.is_compressed or ts.is_deflated
    if syntax != "deflate":  # the runtime decoders (pylibjpeg family) suffice; gdcm is only a test tool
        ds = pydicom.dcmread(str(out[0]))
        ds.pixel_array_options(decoding_plugin="pylibjpeg")
        np.testing.assert_array_equal(ds.pixel_array, pydicom.dcmread(str(files[0])).pixel_array)
    _assert_same_volume(read_dicom_series(tmp_path / syntax), read_dicom_series(tmp_path / "plain"))
    # left stays left: the world position of a voxel is the same as in the source NIfTI
    vol = load_image(tmp_path / syntax)
    ijk = np.array([[5, 7, 3]])
    world = nib_apply(affine, ijk)
    assert vol.data[tuple(np.rint(vol.world_to_voxel(world)[0]).astype(int))] == data[5, 7, 3]


def test_jpeg_baseline_series_reads_close_to_the_plain_series(tmp_path):
    """Lossy JPEG baseline (8-bit): same geometry, voxels within the compression error."""
    pytest.importorskip("gdcm")
    from dicom_variants import to_8bit, transcode

    files, data, affine = _real_series(tmp_path / "plain16")
    plain = to_8bit(files, tmp_path / "plain")
    jpeg = transcode(plain, tmp_path / "jpeg", "jpeg-baseline")
    import pydicom

    assert pydicom.dcmread(str(jpeg[0]), stop_before_pixels=True).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
    a, b = read_dicom_series(tmp_path / "plain"), read_dicom_series(tmp_path / "jpeg")
    np.testing.assert_allclose(b.affine, a.affine, atol=1e-6)
    diff = np.abs(a.data.astype(float) - b.data.astype(float))
    print(f"JPEG baseline: mean |error| {diff.mean():.2f}, max {diff.max():.0f} (8-bit values)")
    assert diff.mean() < 3.0 and np.corrcoef(a.data.ravel(), b.data.ravel())[0, 1] > 0.99


def nib_apply(affine, ijk):
    import nibabel as nib

    return nib.affines.apply_affine(affine, ijk)


def test_lossy_jpeg_and_pydicom_reference_files_decode(tmp_path):
    """JPEG baseline/extended and other encodings of pydicom's reference MR image decode; a
    2-slice series made from each reads like the uncompressed one (lossy: close, not equal)."""
    import pydicom
    from pydicom.data import get_testdata_file

    def series(name, folder):
        for k in range(2):
            ds = pydicom.dcmread(get_testdata_file(name))
            ds.ImagePositionPatient = [0, 0, 5.0 * k]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.SOPInstanceUID = pydicom.uid.generate_uid()
            ds.SeriesInstanceUID = "1.2.3.4"
            folder.mkdir(exist_ok=True)
            ds.save_as(str(folder / f"{k}.dcm"))
        return read_dicom_series(folder)

    ref = series("MR_small.dcm", tmp_path / "ref")
    for name in ("MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                 "MR_small_bigendian.dcm", "MR_small_implicit.dcm"):
        _assert_same_volume(series(name, tmp_path / name), ref)
    # JPEG extended (12-bit lossy, process 2+4) of a CT image
    jpg = series("JPGExtended.dcm", tmp_path / "jpg")
    assert jpg.data.shape[2] == 2 and np.ptp(jpg.data) > 0


def test_siemens_mosaic_fmri_reads_like_the_plain_4d_series(tmp_path, tmp_dicom_series):
    from dicom_variants import to_mosaic

    rot = _rotation((0.1, 0.3, 1.0), 15.0)
    n_t = 4
    data = np.stack([_phantom(10 + t)[:, :, :7] for t in range(n_t)], axis=-1)  # 16 x 14 x 7 slices x 4
    data[3, 9, 6, :] = 9000  # a marker in the last (top) slice: the slice order must survive the mosaic
    files = tmp_dicom_series(tmp_path / "plain", data, row_dir=rot[:, 0], col_dir=rot[:, 1],
                             origin=(-30.0, 12.0, 40.0), pixel_spacing=(3.0, 2.5), thickness=3.5)
    to_mosaic(files, tmp_path / "mosaic", n_volumes=n_t)
    plain = read_dicom_series(tmp_path / "plain")
    mosaic = read_dicom_series(tmp_path / "mosaic")
    assert mosaic.data.shape == (NX, NY, 7, n_t) and mosaic.meta["storage"] == "Siemens mosaic"
    _assert_same_volume(mosaic, plain)
    vol = load_image(tmp_path / "mosaic", allow_4d=True)
    assert vol.data.ndim == 4 and vol.axcodes == ("R", "A", "S")


@pytest.mark.parametrize("descending", [False, True])
def test_siemens_mosaic_with_csa_header_matches_nibabel(tmp_path, tmp_dicom_series, descending):
    """Mosaics placed by their CSA header (NumberOfImagesInMosaic, SliceNormalVector, also a
    normal pointing down) read like the plain series and agree with nibabel's MosaicWrapper."""
    import warnings

    import pydicom

    from dicom_variants import to_mosaic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers
    rot = _rotation((0.5, 0.1, 1.0), 20.0)
    data = np.stack([_phantom(40), _phantom(41)], axis=-1)[:, :, :6]
    data[5, 2, 1, :] = 8000
    files = tmp_dicom_series(tmp_path / "plain", data, row_dir=rot[:, 0], col_dir=rot[:, 1],
                             origin=(10.0, -20.0, 35.0), pixel_spacing=(2.5, 2.0), thickness=3.0)
    mosaics = to_mosaic(files, tmp_path / "mosaic", n_volumes=2, csa=True, descending=descending)
    mosaic = read_dicom_series(tmp_path / "mosaic")
    _assert_same_volume(mosaic, read_dicom_series(tmp_path / "plain"))
    ours = mosaic.voxel_to_world(np.argwhere(mosaic.data[..., 0] == 8000))[0]
    wrapper = dicomwrappers.wrapper_from_data(pydicom.dcmread(str(mosaics[0])))
    assert wrapper.is_mosaic
    ref = wrapper.get_data()
    ijk = np.argwhere(ref == 8000)
    assert len(ijk) == 1
    lps = wrapper.affine @ np.r_[ijk[0], 1.0]
    np.testing.assert_allclose(ours, lps[:3] * [-1, -1, 1], atol=1e-3)


def test_siemens_mosaic_matches_dcm2niix(tmp_path, tmp_dicom_series):
    """The tile positions agree with dcm2niix's mosaic conversion."""
    import nibabel as nib

    from dicom_variants import to_mosaic

    exe = _dcm2niix()
    data = np.stack([_phantom(20), _phantom(21)], axis=-1)[:, :, :5]
    data[2, 11, 4, :] = 7000
    files = tmp_dicom_series(tmp_path / "plain", data, origin=(-20.0, -10.0, 30.0), pixel_spacing=(2.0, 2.0),
                             thickness=3.0)
    to_mosaic(files, tmp_path / "mosaic", n_volumes=2)
    out = tmp_path / "ref"
    out.mkdir()
    subprocess.run([exe, "-z", "y", "-b", "n", "-f", "ref", "-o", str(out), str(tmp_path / "mosaic")],
                   check=True, capture_output=True)
    ref = nib.load(str(next(out.glob("ref*.nii.gz"))))
    ref_data = np.asarray(ref.dataobj)
    assert ref_data.shape[:3] == (NX, NY, 5)
    ref_world = nib.affines.apply_affine(ref.affine, np.argwhere(ref_data[..., 0] == 7000))[0]
    vol = load_image(tmp_path / "mosaic", allow_4d=True)
    ours = vol.voxel_to_world(np.argwhere(vol.data[..., 0] == 7000))[0]
    np.testing.assert_allclose(ours, ref_world, atol=1e-3)


def test_unusable_object_beside_a_good_series_is_skipped(tmp_path, tmp_dicom_series, caplog):
    """A multi-frame object without plane geometry (e.g. a screen capture) in the folder of a good
    series is skipped with a warning; alone it is refused with its own reason."""
    import shutil as _shutil

    corpus = Path(__file__).parent / "bad_inputs" / "dicom" / "multiframe_no_geometry.dcm"
    data = _phantom()
    tmp_dicom_series(tmp_path / "d", data)
    _shutil.copyfile(corpus, tmp_path / "d" / "capture.dcm")
    with caplog.at_level("WARNING", logger="navigator"):
        vol = read_dicom_series(tmp_path / "d")
    np.testing.assert_array_equal(vol.data, data)
    assert "capture.dcm" in caplog.text and "without functional groups" in caplog.text
    (tmp_path / "alone").mkdir()
    _shutil.copyfile(corpus, tmp_path / "alone" / "capture.dcm")
    with pytest.raises(InputError, match="capture.dcm: is a multi-frame DICOM"):
        read_dicom_series(tmp_path / "alone")


@pytest.mark.parametrize("variant", ["enhanced", "jpeg-lossless", "mosaic"])
def test_left_marker_lands_at_negative_x_in_every_variant(tmp_path, tmp_dicom_series, variant):
    """The left/right test of the classic reader, on each scanner variant: patient-left (+x in
    DICOM LPS) must become x < 0 in RAS."""
    import dicom_variants

    data = np.zeros((NX, NY, NZ), np.int16)
    data[13, 4, 6] = 1000  # LPS x = -7.5 + 13 = +5.5: the patient's left
    files = tmp_dicom_series(tmp_path / "plain", data, origin=(-7.5, -6.5, -9.0))
    if variant == "enhanced":
        dicom_variants.to_enhanced(files, tmp_path / "v" / "e.dcm")
    elif variant == "mosaic":
        dicom_variants.to_mosaic(files, tmp_path / "v", n_volumes=1, csa=True)
    else:
        pytest.importorskip("gdcm")
        dicom_variants.transcode(files, tmp_path / "v", variant)
    vol = load_image(tmp_path / "v")
    ijk = np.argwhere(vol.data == 1000)
    assert len(ijk) == 1
    np.testing.assert_allclose(vol.voxel_to_world(ijk)[0], [-5.5, 2.5, 3.0], atol=1e-6)


def test_whole_exam_folder_gives_its_3d_t1(tmp_path, tmp_dicom_series, caplog):
    """A DICOM export of a whole exam: localizer, T2, FLAIR, a T1 MPRAGE and its MPR reformat.
    Asked for a T1 (prepare, the app), the MPRAGE is taken and logged; for a T2, the T2; with
    two plain T1 volumes it is ambiguous and the error lists the series and --series."""
    from navigator.io.dicom import MIN_VOLUME_IMAGES

    n = MIN_VOLUME_IMAGES
    vol = np.random.default_rng(0).integers(0, 500, size=(8, 7, n)).astype(float)
    exam = tmp_path / "exam"
    tmp_dicom_series(exam / "1", vol[:, :, :3], description="AAHead_Scout_32ch", series_number=1)
    tmp_dicom_series(exam / "2", vol, description="t2_space_sag_p2_iso", series_number=2)
    tmp_dicom_series(exam / "3", vol, description="t2_space_dark-fluid_sag (FLAIR)", series_number=3)
    tmp_dicom_series(exam / "4", vol, description="t1_mprage_sag_p2_iso", series_number=4,
                     series_uid="1.2.840.99.4")
    tmp_dicom_series(exam / "5", vol[:, :, ::-1], description="t1_mprage_sag_p2_iso_MPR_Tra", series_number=5)
    with caplog.at_level("WARNING", logger="navigator"):
        t1 = load_image(exam, dicom_weighting="T1")
    assert t1.meta["series_uid"] == "1.2.840.99.4"
    assert "t1_mprage_sag_p2_iso" in caplog.text and "--series" in caplog.text
    assert load_image(exam, dicom_weighting="T2").meta["series_description"] == "t2_space_sag_p2_iso"
    assert load_image(exam, series_uid="5").meta["series_number"] == 5  # an explicit choice always wins
    with pytest.raises(InputError, match="5 DICOM series"):
        load_image(exam)  # no weighting asked for (navigator info, convert): the user chooses
    # Siemens' copy without distortion correction ("_ND") does not make it ambiguous
    tmp_dicom_series(exam / "4nd", vol, description="t1_mprage_sag_p2_iso_ND", series_number=7)
    assert load_image(exam, dicom_weighting="T1").meta["series_uid"] == "1.2.840.99.4"
    tmp_dicom_series(exam / "6", vol, description="T1 3D TFE", series_number=6)
    with pytest.raises(InputError) as err:
        load_image(exam, dicom_weighting="T1")
    assert "2 of them look like a 3-D T1-weighted volume" in str(err.value) and "--series" in str(err.value)


def test_mp2rage_exam_gives_its_uniform_image(tmp_path, tmp_dicom_series):
    """A Siemens MP2RAGE exam: the two inversions, the uniform image (DERIVED by nature) and the
    T1 map. Asked for a T1, the UNI is taken (not skipped as derived, not the map or an
    inversion); with the vendor's denoised UNI-DEN beside it, the UNI-DEN (no INV2 needed)."""
    from navigator.io.dicom import MIN_VOLUME_IMAGES

    vol = np.random.default_rng(1).integers(0, 500, size=(8, 7, MIN_VOLUME_IMAGES)).astype(float)
    derived = ("DERIVED", "PRIMARY", "M", "UNI")
    exam = tmp_path / "exam"
    tmp_dicom_series(exam / "1", vol, description="t1_mp2rage_sag_p3_iso_INV1", series_number=1)
    tmp_dicom_series(exam / "2", vol, description="t1_mp2rage_sag_p3_iso_INV2", series_number=2)
    tmp_dicom_series(exam / "3", vol, description="t1_mp2rage_sag_p3_iso_T1_Images", series_number=3,
                     image_type=("DERIVED", "PRIMARY", "T1 MAP"))
    tmp_dicom_series(exam / "4", vol, description="anat-MP2RAGE_acq-WIP925_UNI_Images", series_number=4,
                     image_type=derived)
    assert load_image(exam, dicom_weighting="T1").meta["series_number"] == 4
    tmp_dicom_series(exam / "5", vol, description="anat-MP2RAGE_acq-WIP925_UNI-DEN", series_number=5,
                     image_type=derived)
    assert load_image(exam, dicom_weighting="T1").meta["series_number"] == 5
    tmp_dicom_series(exam / "6", vol, description="t1_mprage_sag_p2_iso", series_number=6)
    with pytest.raises(InputError, match="2 of them look like a 3-D T1"):  # an MPRAGE too: the user says
        load_image(exam, dicom_weighting="T1")


def test_prepare_takes_the_t1_of_a_whole_exam(tmp_path, tmp_dicom_series):
    """`navigator prepare EXAM_FOLDER` (and the app) start from the exam's T1; --series overrides."""
    from navigator.cli import build_parser
    from navigator.io.dicom import MIN_VOLUME_IMAGES
    from navigator.pipeline import create_workspace_from_image

    vol = np.random.default_rng(1).integers(0, 500, size=(8, 7, MIN_VOLUME_IMAGES)).astype(float)
    exam = tmp_path / "exam"
    tmp_dicom_series(exam / "a", vol[:, :, :3], description="localizer", series_number=1)
    tmp_dicom_series(exam / "b", vol, description="Sag IR-FSPGR", series_number=2)
    tmp_dicom_series(exam / "c", vol[::-1], description="Sag CUBE T2", series_number=3)
    ws = create_workspace_from_image(exam, tmp_path / "ws")
    np.testing.assert_array_equal(load_image(ws.source_path("T1")).data, load_image(exam, series_uid="2").data)
    ws2 = create_workspace_from_image(exam, tmp_path / "ws2", series="3")
    np.testing.assert_array_equal(load_image(ws2.source_path("T1")).data, load_image(exam, series_uid="3").data)
    args = build_parser().parse_args(["prepare", str(exam), "--out", "w", "--series", "2", "--t2-series", "3"])
    assert (args.series, args.t2_series) == ("2", "3")
