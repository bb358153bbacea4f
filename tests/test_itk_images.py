"""NRRD (.nrrd/.nhdr, 3D Slicer) and MetaImage (.mha/.mhd) volumes: geometry, voxels, errors."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from navigator.core.errors import InputError
from navigator.io.images import image_info, load_image
from navigator.samples.warp import _rotation_xyz


def _oblique_itk_image() -> tuple[sitk.Image, np.ndarray, tuple[int, int, int]]:
    """An anisotropic oblique ITK image (LPS geometry) with one bright marker voxel."""
    data = np.zeros((12, 9, 7), np.int16)  # [i, j, k]
    data += np.arange(12, dtype=np.int16)[:, None, None]  # intensity tells the i index
    marker = (9, 2, 5)
    data[marker] = 1000
    image = sitk.GetImageFromArray(np.transpose(data, (2, 1, 0)))  # ITK's numpy view is [k, j, i]
    image.SetSpacing((0.9, 1.2, 2.5))
    image.SetOrigin((31.0, -17.5, 44.0))
    image.SetDirection(tuple(_rotation_xyz(0.3, -0.2, 0.5).ravel()))
    return image, data, marker


def _itk_world_ras(image: sitk.Image, index: tuple[int, int, int]) -> np.ndarray:
    lps = np.asarray(image.TransformIndexToPhysicalPoint(tuple(int(i) for i in index)))
    return lps * [-1, -1, 1]


@pytest.mark.parametrize("suffix", [".nrrd", ".nhdr", ".mha", ".mhd"])
def test_itk_volume_keeps_every_voxel_world_position(tmp_path, suffix):
    image, data, marker = _oblique_itk_image()
    path = tmp_path / f"t1{suffix}"
    sitk.WriteImage(image, str(path))
    vol = load_image(path, reorient=False)
    assert vol.meta["format"] == ("nrrd" if suffix in (".nrrd", ".nhdr") else "metaimage")
    np.testing.assert_array_equal(vol.data, data)
    for index in [(0, 0, 0), marker, (11, 8, 6), (3, 7, 1)]:
        ours = (vol.affine @ np.r_[index, 1.0])[:3]
        np.testing.assert_allclose(ours, _itk_world_ras(image, index), atol=1e-9)
    # reoriented to RAS: the marker keeps its world position
    ras = load_image(path)
    found = np.argwhere(ras.data == 1000)[0]
    np.testing.assert_allclose((ras.affine @ np.r_[found, 1.0])[:3], _itk_world_ras(image, marker), atol=1e-9)


def test_itk_and_nifti_copies_agree(tmp_path):
    """ITK's own NIfTI writer and our NRRD reading must give the same RAS geometry."""
    image, _, marker = _oblique_itk_image()
    sitk.WriteImage(image, str(tmp_path / "a.nrrd"))
    sitk.WriteImage(image, str(tmp_path / "a.nii.gz"))
    from_nrrd, from_nifti = load_image(tmp_path / "a.nrrd"), load_image(tmp_path / "a.nii.gz")
    np.testing.assert_allclose(from_nrrd.affine, from_nifti.affine, atol=1e-4)  # NIfTI stores float32
    np.testing.assert_array_equal(from_nrrd.data, from_nifti.data)


def test_hand_written_nrrd_in_ras_space(tmp_path):
    """A detached-header NRRD as other programs write it, with its space given as RAS."""
    data = np.zeros((4, 5, 6), np.float32)
    data[3, 1, 2] = 7.5
    (tmp_path / "vol.raw").write_bytes(np.transpose(data, (2, 1, 0)).astype("<f4").tobytes())
    (tmp_path / "vol.nhdr").write_text(
        "NRRD0004\n"
        "type: float\n"
        "dimension: 3\n"
        "space: right-anterior-superior\n"
        "sizes: 4 5 6\n"
        "space directions: (0,2,0) (-1.5,0,0) (0,0,3)\n"
        "kinds: domain domain domain\n"
        "endian: little\n"
        "encoding: raw\n"
        "space origin: (10,20,-30)\n"
        "data file: vol.raw\n"
    )
    vol = load_image(tmp_path / "vol.nhdr", reorient=False)
    # RAS world of voxel (3, 1, 2) = origin + 3*(0,2,0) + 1*(-1.5,0,0) + 2*(0,0,3)
    np.testing.assert_allclose((vol.affine @ [3, 1, 2, 1.0])[:3], [8.5, 26.0, -24.0], atol=1e-9)
    assert vol.data[3, 1, 2] == pytest.approx(7.5)


def test_itk_info_and_errors(tmp_path):
    image, _, _ = _oblique_itk_image()
    sitk.WriteImage(image, str(tmp_path / "t1.mha"))
    info = image_info(tmp_path / "t1.mha")
    assert info.format == "metaimage" and info.shape == (12, 9, 7)
    np.testing.assert_allclose(sorted(info.voxel_size_mm), [0.9, 1.2, 2.5], atol=1e-9)

    damaged = tmp_path / "damaged.nrrd"
    damaged.write_bytes(b"NRRD0004\ntype: float\ndimension: 3\nsizes: 40 50 60\nencoding: raw\n\n" + b"\0" * 100)
    with pytest.raises(InputError) as err:
        load_image(damaged)
    assert "damaged.nrrd" in str(err.value)

    flat = sitk.GetImageFromArray(np.zeros((1, 8, 8), np.uint8))
    sitk.WriteImage(flat, str(tmp_path / "flat.nrrd"))
    with pytest.raises(InputError, match="2-D"):
        load_image(tmp_path / "flat.nrrd")

    not_nrrd = tmp_path / "text.nrrd"
    not_nrrd.write_text("hello\n")
    with pytest.raises(InputError, match="text.nrrd"):
        load_image(not_nrrd)

    nan = sitk.GetImageFromArray(np.full((4, 4, 4), np.nan, np.float32))
    sitk.WriteImage(nan, str(tmp_path / "nan.mha"))
    with pytest.raises(InputError, match="non-finite"):
        load_image(tmp_path / "nan.mha")


def test_nrrd_without_space_field_warns(tmp_path, caplog):
    data = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)
    (tmp_path / "plain.raw").write_bytes(np.transpose(data, (2, 1, 0)).tobytes())
    (tmp_path / "plain.nhdr").write_text(
        "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 4 5 6\nspacings: 1 1 2\nencoding: raw\ndata file: plain.raw\n")
    with caplog.at_level("WARNING", logger="navigator"):
        vol = load_image(tmp_path / "plain.nhdr", reorient=False)
    np.testing.assert_array_equal(vol.data, data)
    assert "UNKNOWN" in caplog.text
    assert any("UNKNOWN" in w for w in image_info(tmp_path / "plain.nhdr").warnings)
