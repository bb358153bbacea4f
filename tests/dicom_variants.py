"""Test helpers: turn a classic one-file-per-slice DICOM series into the variants scanners write.

* :func:`to_enhanced` -- one Enhanced MR Image Storage file (multi-frame, functional groups),
  frames stored in a shuffled order;
* :func:`transcode` -- the same series in another transfer syntax: JPEG lossless (process 14,
  SV1), JPEG-LS lossless, JPEG 2000 lossless, RLE (through python-gdcm's encoders) or deflate
  (pydicom);
* :func:`to_mosaic` -- Siemens mosaic files (one file per volume, tiles on a square grid,
  NumberOfImagesInMosaic in the SIEMENS MR HEADER private tag (0019,100A));

and :func:`dicom_dataset`, the start of every synthetic DICOM file of the tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_SERIES_LEVEL = ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Modality", "SeriesDescription",
                 "SeriesNumber", "PatientName", "PatientID", "Rows", "Columns", "SamplesPerPixel",
                 "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                 "Manufacturer")


def dicom_dataset(sop_class_uid: str, sop_instance_uid: str):
    """A pydicom Dataset with its file meta information (Explicit VR Little Endian) and its SOP
    class and instance UIDs set: the start of every synthetic DICOM file of the tests."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_instance_uid
    return ds


def _sorted_slices(paths):
    import pydicom

    return sorted((pydicom.dcmread(str(p)) for p in paths), key=lambda d: int(d.InstanceNumber))


def to_enhanced(paths, out_file: Path, seed: int = 0) -> Path:
    """Write the classic series ``paths`` as one enhanced multi-frame MR file (frames shuffled)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import EnhancedMRImageStorage, generate_uid

    slices = _sorted_slices(paths)
    first = slices[0]
    order = np.random.default_rng(seed).permutation(len(slices))
    sop = generate_uid()
    ds = dicom_dataset(EnhancedMRImageStorage, sop)
    for name in _SERIES_LEVEL:
        if name in first:
            setattr(ds, name, first.data_element(name).value)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(slices)

    def item(**kw):
        d = Dataset()
        for k, v in kw.items():
            setattr(d, k, v)
        return d

    shared = item(
        PixelMeasuresSequence=Sequence([item(PixelSpacing=first.PixelSpacing, SliceThickness=first.SliceThickness)]),
        PlaneOrientationSequence=Sequence([item(ImageOrientationPatient=first.ImageOrientationPatient)]),
        PixelValueTransformationSequence=Sequence([item(RescaleSlope=first.RescaleSlope,
                                                        RescaleIntercept=first.RescaleIntercept,
                                                        RescaleType="US")]),
        MRTimingAndRelatedParametersSequence=Sequence([item(RepetitionTime=first.RepetitionTime)]),
        MREchoSequence=Sequence([item(EffectiveEchoTime=first.EchoTime)]),
    )
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for n in order:
        s = slices[n]
        frames.append(item(
            PlanePositionSequence=Sequence([item(ImagePositionPatient=s.ImagePositionPatient)]),
            FrameContentSequence=Sequence([item(InStackPositionNumber=int(n) + 1, StackID="1",
                                                TemporalPositionIndex=int(getattr(s, "AcquisitionNumber", 1)),
                                                DimensionIndexValues=[1, int(n) + 1])]),
        ))
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = b"".join(slices[n].PixelData for n in order)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(out_file), enforce_file_format=True)
    return out_file


#: transfer syntax name -> python-gdcm constant name (lossless ones: decoded voxels must match exactly)
GDCM_SYNTAXES = {
    "jpeg-lossless": "JPEGLosslessProcess14_1",
    "jpeg-ls": "JPEGLSLossless",
    "jpeg2000": "JPEG2000Lossless",
    "rle": "RLELossless",
    "jpeg-baseline": "JPEGBaselineProcess1",  # lossy, 8-bit data only (see to_8bit)
}


def to_8bit(paths, out_folder: Path) -> list[Path]:
    """Copy the series with its values scaled into unsigned 8 bits (JPEG baseline needs them)."""
    import pydicom

    slices = [pydicom.dcmread(str(p)) for p in paths]
    top = max(int(d.pixel_array.max()) for d in slices) or 1
    out_folder.mkdir(parents=True, exist_ok=True)
    written = []
    for p, d in zip(paths, slices):
        arr = np.clip(d.pixel_array.astype(float) * 255.0 / top, 0, 255).round().astype(np.uint8)
        d.BitsAllocated = d.BitsStored = 8
        d.HighBit = 7
        d.PixelRepresentation = 0
        d.PixelData = arr.tobytes()
        out = out_folder / Path(p).name
        d.save_as(str(out), enforce_file_format=True)
        written.append(out)
    return written


def transcode(paths, out_folder: Path, syntax: str) -> list[Path]:
    """Copy the series ``paths`` into ``out_folder`` in transfer syntax ``syntax``
    (a key of :data:`GDCM_SYNTAXES`, or "deflate")."""
    out_folder.mkdir(parents=True, exist_ok=True)
    written = []
    for p in paths:
        out = out_folder / Path(p).name
        if syntax == "deflate":
            import pydicom
            from pydicom.uid import DeflatedExplicitVRLittleEndian

            ds = pydicom.dcmread(str(p))
            ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
            ds.save_as(str(out), enforce_file_format=True)
        else:
            import gdcm

            reader = gdcm.ImageReader()
            reader.SetFileName(str(p))
            assert reader.Read(), p
            change = gdcm.ImageChangeTransferSyntax()
            change.SetTransferSyntax(gdcm.TransferSyntax(getattr(gdcm.TransferSyntax, GDCM_SYNTAXES[syntax])))
            change.SetInput(reader.GetImage())
            assert change.Change(), syntax
            writer = gdcm.ImageWriter()
            writer.SetFileName(str(out))
            writer.SetFile(reader.GetFile())
            writer.SetImage(change.GetOutput())
            assert writer.Write(), out
        written.append(out)
    return written


def csa2_header(tags: dict[str, tuple[str, list[str]]]) -> bytes:
    """A Siemens CSA2 ("SV10") header holding ``tags``: name -> (VR, values as text)."""
    import struct

    out = b"SV10" + b"\x04\x03\x02\x01" + struct.pack("<2I", len(tags), 77)
    for name, (vr, values) in tags.items():
        out += struct.pack("<64si4s3i", name.encode(), len(values), vr.encode(), 0, len(values), 77)
        for v in values:
            b = v.encode() + b"\x00"
            out += struct.pack("<4i", len(b), len(b), 77, len(b)) + b + b"\x00" * ((4 - len(b) % 4) % 4)
    return out


def to_mosaic(paths, out_folder: Path, n_volumes: int, csa: bool = False, descending: bool = False) -> list[Path]:
    """Write a classic multi-volume series (InstanceNumber = volume * slices + slice + 1, slices
    along +row x column) as Siemens mosaics: one file per volume.

    ``csa`` adds a CSA image header with NumberOfImagesInMosaic and SliceNormalVector (instead of
    the (0019,100A) tag); ``descending`` tiles the slices from the top down, with the CSA slice
    normal pointing down (as for a descending acquisition)."""
    import pydicom
    from pydicom.uid import generate_uid

    slices = _sorted_slices(paths)
    n_sl = len(slices) // n_volumes
    per_side = int(np.ceil(np.sqrt(n_sl)))
    rows, cols = int(slices[0].Rows), int(slices[0].Columns)
    out_folder.mkdir(parents=True, exist_ok=True)
    written = []
    for t in range(n_volumes):
        vol = slices[t * n_sl:(t + 1) * n_sl]
        vol = sorted(vol, key=lambda d: float(np.cross(np.asarray(d.ImageOrientationPatient[:3], float),
                                                       np.asarray(d.ImageOrientationPatient[3:], float))
                                              @ np.asarray(d.ImagePositionPatient, float)), reverse=descending)
        big = np.zeros((rows * per_side, cols * per_side), np.int16)
        for k, d in enumerate(vol):
            r, c = divmod(k, per_side)
            big[r * rows:(r + 1) * rows, c * cols:(c + 1) * cols] = d.pixel_array
        ds = vol[0].copy()
        iop = np.asarray(ds.ImageOrientationPatient, float)
        ps = np.asarray(ds.PixelSpacing, float)
        ipp = np.asarray(vol[0].ImagePositionPatient, float)
        # the mosaic's ImagePositionPatient is the corner of the whole mosaic (inverse of the reader's fix)
        corner = ipp - iop[3:] * ps[0] * (big.shape[0] - rows) / 2 - iop[:3] * ps[1] * (big.shape[1] - cols) / 2
        ds.ImagePositionPatient = [f"{v:.6f}" for v in corner]
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "MOSAIC"]
        ds.Manufacturer = "SIEMENS"
        ds.SpacingBetweenSlices = f"{np.linalg.norm(np.asarray(vol[1].ImagePositionPatient, float) - ipp):.6f}"
        if csa:
            normal = np.cross(iop[:3], iop[3:]) * (-1.0 if descending else 1.0)
            block = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
            block.add_new(0x10, "OB", csa2_header({
                "NumberOfImagesInMosaic": ("US", [str(n_sl)]),
                "AcquisitionMatrixText": ("SH", [f"{rows}*{cols}"]),
                "SliceNormalVector": ("FD", [f"{v:.8f}" for v in normal]),
            }))
        else:
            block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
            block.add_new(0x0A, "US", n_sl)
        ds.Rows, ds.Columns = big.shape
        ds.PixelData = big.astype("<i2").tobytes()
        ds.InstanceNumber = t + 1
        ds.AcquisitionNumber = t + 1
        sop = generate_uid()
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        out = out_folder / f"MOSAIC{t:03d}.dcm"
        ds.save_as(str(out), enforce_file_format=True)
        written.append(out)
    return written
