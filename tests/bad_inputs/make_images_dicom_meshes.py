"""Regenerate the malformed image, DICOM and mesh files of the bad-input corpus.

Run from the repository root: ``python tests/bad_inputs/make_images_dicom_meshes.py``. The files
are committed; this script documents how each was made. Each group's ``cases.json`` (written by
hand) names the command to run on a file and the one-line error expected
(see tests/test_bad_inputs.py).
"""

from __future__ import annotations

import gzip
import shutil
import struct
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # tests/: the DICOM helpers of dicom_variants


def _nifti_bytes(data: np.ndarray, affine: np.ndarray | None = None, gz: bool = True, **header) -> bytes:
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine)
    for k, v in header.items():
        img.header[k] = v
    raw = img.to_bytes()
    return gzip.compress(raw, mtime=0) if gz else raw


def images(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 1000, (12, 10, 8)).astype(np.int16)
    good = _nifti_bytes(vol, gz=False)
    (out / "truncated.nii.gz").write_bytes(gzip.compress(good, mtime=0)[: len(gzip.compress(good, mtime=0)) // 2])
    (out / "truncated_data.nii").write_bytes(good[: 352 + vol.nbytes // 3])
    (out / "header_only.nii").write_bytes(good[:352])
    (out / "not_gzip.nii.gz").write_text("this is a text file that was renamed to .nii.gz\n" * 20)
    (out / "empty.nii").write_bytes(b"")
    (out / "short.nii").write_bytes(good[:100])
    nan = rng.normal(size=(12, 10, 8)).astype(np.float32)
    nan[3, 4, 5] = np.nan
    nan[1, 1, 1] = np.inf
    (out / "nan_voxels.nii.gz").write_bytes(_nifti_bytes(nan))
    (out / "slice_2d.nii.gz").write_bytes(_nifti_bytes(vol[:, :, :1]))
    (out / "plain_2d.nii.gz").write_bytes(_nifti_bytes(vol[:, :, 0]))
    (out / "fmri_4d.nii.gz").write_bytes(_nifti_bytes(rng.integers(0, 100, (8, 8, 6, 3)).astype(np.int16)))
    img = nib.Nifti1Image(vol, np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header["pixdim"][1:4] = [2.0, 0.0, 2.0]
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    raw = img.to_bytes()
    (out / "zero_voxel_size.nii.gz").write_bytes(gzip.compress(raw, mtime=0))
    img = nib.Nifti1Image(vol, np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header["srow_z"] = [0.0, 0.0, 0.0, 5.0]  # third voxel axis maps nowhere: non-invertible sform
    img.header["sform_code"] = 1
    img.header["qform_code"] = 0
    (out / "singular_affine.nii.gz").write_bytes(gzip.compress(img.header.binaryblock + b"\0" * 4
                                                               + vol.tobytes(order="F"), mtime=0))
    bad_dims = bytearray(good)
    struct.pack_into("<h", bad_dims, 40, 9)  # dim[0] = 9 (NIfTI allows at most 7)
    (out / "bad_dim_count.nii").write_bytes(bytes(bad_dims))
    huge = bytearray(good)
    struct.pack_into("<hhhh", huge, 40, 3, 30000, 30000, 30000)
    (out / "absurd_size.nii").write_bytes(bytes(huge))
    (out / "png_renamed.nii").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(600))


def _mr_slice(z: float, uid: str, sop: str, value: int = 100):
    from pydicom.uid import MRImageStorage

    from dicom_variants import dicom_dataset

    ds = dicom_dataset(MRImageStorage, sop)
    ds.SeriesInstanceUID = uid
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.Modality = "MR"
    ds.SeriesDescription = "corpus"
    ds.SeriesNumber = 1
    ds.ImagePositionPatient = [0, 0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1, 1]
    ds.SliceThickness = 2
    ds.Rows, ds.Columns = 8, 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.PixelData = np.full((8, 8), value, "<i2").tobytes()
    return ds


def dicom(out: Path) -> None:
    import pydicom
    from pydicom.data import get_testdata_file

    out.mkdir(parents=True, exist_ok=True)
    mr = Path(get_testdata_file("MR_small.dcm"))

    def two_slices(source: str, folder: Path) -> list[Path]:
        folder.mkdir(exist_ok=True)
        paths = []
        for k in range(2):
            ds = pydicom.dcmread(get_testdata_file(source))
            ds.ImagePositionPatient = [0, 0, 5.0 * k]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.PixelSpacing = [1, 1]
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.20.{k + 1}"
            ds.save_as(str(folder / f"IM{k}.dcm"))
            paths.append(folder / f"IM{k}.dcm")
        return paths

    second = two_slices("MR_small.dcm", out / "truncated_pixels")[1]
    second.write_bytes(second.read_bytes()[:-4000])
    shutil.copyfile(mr, out / "single_slice.dcm")
    shutil.copyfile(get_testdata_file("rtplan.dcm"), out / "rt_plan_no_image.dcm")
    shutil.copyfile(get_testdata_file("SC_rgb_small_odd.dcm"), out / "colour_rgb.dcm")
    (out / "text_named.dcm").write_text("not a dicom file\n" * 50)
    ds = pydicom.dcmread(str(mr))
    del ds.ImageOrientationPatient
    ds.save_as(str(out / "no_orientation.dcm"))
    second = two_slices("MR_small_jp2klossless.dcm", out / "corrupt_jpeg2000")[1]
    j2k = bytearray(second.read_bytes())
    at = j2k.find(b"\xff\x4f\xff\x51")  # start of the JPEG 2000 codestream (SOC, SIZ)
    j2k[at + 4:at + 40] = b"\x00" * 36  # image and tile sizes destroyed
    second.write_bytes(bytes(j2k))
    second = two_slices("JPGExtended.dcm", out / "corrupt_jpeg_extended")[1]
    jpg = bytearray(second.read_bytes())
    at = jpg.find(b"\xff\xd8")  # JPEG start of image
    jpg[at + 2:at + 60] = b"\x00" * 58  # frame and table headers destroyed
    second.write_bytes(bytes(jpg))
    # folders: a series with a missing slice, one with mixed orientations, one with a duplicated slice
    uid = "1.2.826.0.1.3680043.8.498.10"
    for name, zs, tweak in (("missing_slice", [0, 2, 4, 8, 10], None), ("mixed_orientation", [0, 2, 4, 6], 2),
                            ("duplicated_slice", [0, 2, 4, 4, 6], None)):
        folder = out / name
        folder.mkdir(exist_ok=True)
        for k, z in enumerate(zs):
            ds = _mr_slice(float(z), uid, f"{uid}.{k + 1}", value=10 * k)
            if tweak == k:
                ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
            ds.InstanceNumber = k + 1
            ds.save_as(str(folder / f"IM{k}.dcm"), enforce_file_format=True)
    # an enhanced file whose pixel data holds 2 of its 3 frames
    from dicom_variants import to_enhanced

    plain = []
    for k in range(3):
        ds = _mr_slice(2.0 * k, uid + ".3", f"{uid}.3.{k + 1}", value=k)
        ds.InstanceNumber = k + 1
        ds.RescaleSlope, ds.RescaleIntercept, ds.RepetitionTime, ds.EchoTime = 1, 0, 8, 3
        ds.save_as(str(out / f".tmp{k}.dcm"), enforce_file_format=True)
        plain.append(out / f".tmp{k}.dcm")
    enh_path = to_enhanced(plain, out / "enhanced_missing_frame.dcm")
    for p in plain:
        p.unlink()
    ds = pydicom.dcmread(str(enh_path))
    ds.PixelData = ds.PixelData[: 2 * 8 * 8 * 2]
    ds.save_as(str(enh_path), enforce_file_format=True)
    # Siemens mosaics without their number of tiles, and with a count that does not fit the matrix
    ds = _mr_slice(0.0, uid + ".4", uid + ".4.1")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]
    ds.Manufacturer = "SIEMENS"
    ds.save_as(str(out / "mosaic_without_count.dcm"), enforce_file_format=True)
    ds = _mr_slice(0.0, uid + ".5", uid + ".5.1")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]
    ds.Manufacturer = "SIEMENS"
    ds.private_block(0x0019, "SIEMENS MR HEADER", create=True).add_new(0x0A, "US", 9)  # 3 x 3 tiles of 8 px?
    ds.save_as(str(out / "mosaic_bad_grid.dcm"), enforce_file_format=True)
    enh = out / "multiframe_no_geometry.dcm"
    ds = _mr_slice(0.0, uid + ".2", uid + ".2.1")
    ds.NumberOfFrames = 3
    ds.PixelData = np.zeros((3, 8, 8), "<i2").tobytes()
    ds.save_as(str(enh), enforce_file_format=True)


# ---------------------------------------------------------------------------------- meshes
def _cube_tets() -> tuple[np.ndarray, np.ndarray]:
    """2x1x1 boxes of 10 mm, each split into 6 positively oriented tetrahedra (Kuhn)."""
    nodes = np.array([[x, y, z] for x in (0, 10, 20) for y in (0, 10) for z in (0, 10)], float)
    idx = {tuple(p): i for i, p in enumerate(nodes.astype(int))}
    tets = []
    for x0 in (0, 10):
        c = [idx[(x0 + 10 * ((v >> 0) & 1), 10 * ((v >> 1) & 1), 10 * ((v >> 2) & 1))] for v in range(8)]
        for a, b in ((1, 2), (1, 4), (2, 1), (2, 4), (4, 1), (4, 2)):
            tets.append([c[0], c[a], c[a | b], c[7]])
    tets = np.array(tets)
    p = nodes[tets]
    vol = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    tets[vol < 0] = tets[vol < 0][:, [0, 2, 1, 3]]
    return nodes, tets


def _msh22(nodes: np.ndarray, tets: np.ndarray, tags: list[int] | None = None, ntags: int = 2) -> str:
    tags = tags or [5] * len(tets)
    lines = ["$MeshFormat", "2.2 0 8", "$EndMeshFormat", "$Nodes", str(len(nodes))]
    lines += [f"{i + 1} {x:g} {y:g} {z:g}" for i, (x, y, z) in enumerate(nodes)]
    lines += ["$EndNodes", "$Elements", str(len(tets))]
    for i, (t, tag) in enumerate(zip(tets, tags)):
        tag_text = " ".join([str(tag)] * ntags)
        lines.append(f"{i + 1} 4 {ntags} {tag_text} " + " ".join(str(int(n) + 1) for n in t).strip())
    lines += ["$EndElements", ""]
    return "\n".join(" ".join(l.split()) for l in lines)


def meshes(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    nodes, tets = _cube_tets()
    bad = nodes.copy()
    bad[4] = [np.nan, 0, 10]
    (out / "nan_node.msh").write_text(_msh22(bad, tets).replace("nan", "nan"))
    flat = nodes.copy()
    t = np.vstack([tets, [[0, 2, 4, 6]]])  # four nodes on the plane x = 0
    (out / "zero_volume_tet.msh").write_text(_msh22(flat, t))
    # node 11 (x=20, y=10, z=0) pushed through to x=5: its tetrahedra fold over their neighbours
    fold = nodes.copy()
    fold[9] = [5.0, 0.0, 10.0]
    (out / "inverted_tet.msh").write_text(_msh22(fold, tets))
    (out / "no_tags.msh").write_text(_msh22(nodes, tets, ntags=0))
    (out / "tag_zero.msh").write_text(_msh22(nodes, tets, tags=[5] * 11 + [0]))
    text = _msh22(nodes, tets)
    (out / "truncated.msh").write_text(text[: int(len(text) * 0.6)])
    (out / "binary_garbage.msh").write_bytes(np.random.default_rng(1).bytes(4096))
    (out / "empty.msh").write_bytes(b"")
    (out / "undefined_node.msh").write_text(_msh22(nodes, np.vstack([tets, [[0, 1, 2, 40]]])))
    surf = text.split("$Elements")[0] + "$Elements\n1\n1 2 2 1005 1005 1 2 3\n$EndElements\n"
    (out / "surface_only.msh").write_text(surf)
    dup = np.vstack([tets, tets[:1]])
    (out / "duplicate_tet.msh").write_text(_msh22(nodes, dup))
    (out / "version_3.msh").write_text(text.replace("2.2 0 8", "3.0 0 8"))
    inf = nodes.copy()
    inf[2] = [0.0, 1e400, 0.0]
    (out / "inf_node.msh").write_text(_msh22(inf, tets))
    from navigator.core.mesh import Mesh
    from navigator.io.gmsh import write_msh

    write_msh(Mesh(nodes, tets, np.full(len(tets), 5)), out / "binary_truncated.msh", binary=True)
    data = (out / "binary_truncated.msh").read_bytes()
    (out / "binary_truncated.msh").write_bytes(data[: len(data) - 120])


if __name__ == "__main__":
    images(HERE / "images")
    dicom(HERE / "dicom")
    meshes(HERE / "meshes")
