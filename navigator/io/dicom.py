"""DICOM folders -> volumes in scanner RAS (via pydicom, with our own validation).

A folder may hold several series; :func:`list_dicom_series` groups the files by
SeriesInstanceUID. Every series is turned into a list of 2-D *images*, whatever the files
hold:

* classic files: one image per file;
* enhanced (multi-frame) files (e.g. Enhanced MR Image Storage): one image per frame, with the
  frame's position, orientation, pixel spacing and rescaling from the per-frame (else shared)
  functional groups;
* Siemens mosaics (``ImageType`` contains MOSAIC; resting-state fMRI): one image per tile, the
  number of tiles and the slice normal from the Siemens CSA header (read with nibabel), the
  tile positions from ImagePositionPatient corrected for the mosaic's size (as nibabel and
  dcm2niix do) plus SpacingBetweenSlices (else SliceThickness) along the slice normal.

:func:`read_dicom_series` turns the images of one series into a
:class:`~navigator.core.volume.Volume`:

* voxel axes: i = DICOM column index, j = DICOM row index, k = slice, sorted along the slice
  normal (row direction x column direction); a 4th axis when every position holds the same
  number (> 1) of images (time series or echoes);
* affine: DICOM patient coordinates are LPS mm; column i of the LPS affine is the
  ImageOrientationPatient row direction times PixelSpacing[1], column j the column direction
  times PixelSpacing[0], column k the measured step between ImagePositionPatient of
  consecutive slices (so gantry tilt is represented exactly), translation the first slice's
  ImagePositionPatient; RAS = diag(-1, -1, 1) applied to that;
* values: RescaleSlope/RescaleIntercept applied (float32 when they are not 1/0).

Compressed transfer syntaxes (JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE,
deflate) are decoded by pydicom with the pylibjpeg decoders (pylibjpeg-libjpeg, -openjpeg,
-rle), which are dependencies.

Refused with a one-line :class:`InputError`: empty folders, folders without DICOM images,
several series without a choice, missing or duplicated slices, uneven spacing, mixed
orientations or sizes, colour images, multi-frame files without plane geometry, pixel data
that cannot be decoded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import InputError
from navigator.core.volume import Volume
from navigator.io.nifti import MAX_AXIS, MAX_VOXELS

log = logging.getLogger("navigator")

#: positions along the slice normal closer than this (mm) are the same slice position
SAME_POSITION_MM = 0.01
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_DICOMDIR_SOP = "1.2.840.10008.1.3.10"


@dataclass
class DicomSeries:
    """One DICOM series found in a folder (identifying patient data is not kept).

    Attributes:
        uid: SeriesInstanceUID.
        description: SeriesDescription (or ProtocolName) or ''.
        modality: e.g. 'MR', 'CT'.
        series_number: SeriesNumber or None.
        n_files: number of image files in the series.
        rows, columns: in-plane matrix size of the first image.
        files: the image files.
    """

    uid: str
    description: str
    modality: str
    series_number: int | None
    n_files: int
    rows: int | None
    columns: int | None
    files: list[Path] = field(default_factory=list, repr=False)
    images: list["DicomImage"] = field(default_factory=list, repr=False, compare=False)

    def summary(self) -> str:
        """One-line description for messages and listings."""
        num = f"series {self.series_number}, " if self.series_number is not None else ""
        size = f"{self.columns}x{self.rows}, " if self.rows else ""
        files = f" in {self.n_files} files" if self.n_files != len(self.images) else ""
        return (
            f'"{self.description or "(no description)"}" ({self.modality or "?"}, {num}{size}'
            f"{len(self.images)} slices/images{files}, UID {self.uid})"
        )


class FrameHeader:
    """The header of one frame or mosaic tile: the file's header with some attributes replaced.

    ``getattr(h, name, default)`` answers the override when there is one, else the file's value.
    """

    def __init__(self, parent: Any, overrides: dict[str, Any]):
        self._parent = parent
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        overrides = self.__dict__.get("_overrides", {})
        if name in overrides:
            return overrides[name]
        return getattr(self.__dict__["_parent"], name)

    def __contains__(self, name: str) -> bool:
        return name in self._overrides or name in self._parent


@dataclass
class DicomImage:
    """One 2-D image of a series.

    Attributes:
        path: the file holding it.
        header: its header (a pydicom Dataset, or a :class:`FrameHeader` for a frame or tile).
        frame: 0-based frame index in a multi-frame file, None for a single-frame file.
        mosaic: (tiles per row of the mosaic, tile index) for a Siemens mosaic tile, else None.
    """

    path: Path
    header: Any
    frame: int | None = None
    mosaic: tuple[int, int] | None = None


# ---------------------------------------------------------------------------- scanning


def is_dicom_file(path: str | Path) -> bool:
    """True when the file starts with the DICOM preamble + 'DICM' marker."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


class _quiet_pydicom:
    """Silence pydicom's warnings and log lines (damage is reported as one InputError line)."""

    def __enter__(self):
        import warnings

        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        self._logger = logging.getLogger("pydicom")  # children (pydicom.pixels...) inherit the level
        self._was = self._logger.level
        self._logger.setLevel(logging.CRITICAL + 1)
        return self

    def __exit__(self, *exc):
        self._logger.setLevel(self._was)
        self._warnings.__exit__(*exc)
        return False


def _read_header(path: Path):
    with _quiet_pydicom():
        return _read_header_loud(path)


def _read_header_loud(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except InvalidDicomError:
        try:  # DICOM without the 128-byte preamble: accept only if it really looks like an image
            ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        except Exception:  # noqa: BLE001
            return None
        if "SOPClassUID" not in ds or "Rows" not in ds:
            return None
    except Exception:  # noqa: BLE001 - unreadable or not DICOM: skip
        return None
    sop = getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    if sop == _DICOMDIR_SOP or "Rows" not in ds or "Columns" not in ds:
        return None  # DICOMDIR or a non-image object (report, presentation state)
    return ds


def list_dicom_series(folder: str | Path) -> list[DicomSeries]:
    """Find the DICOM image series in ``folder`` (searched recursively).

    Returns the series sorted by series number then UID. Raises InputError when the folder is
    missing, empty or has no DICOM images.
    """
    folder = Path(folder)
    if not folder.exists():
        raise InputError(folder, "no such file or folder")
    if not folder.is_dir():
        raise InputError(folder, "is not a folder (expected a folder of DICOM files)")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(folder, "is an empty folder (no DICOM files)")
    groups: dict[str, DicomSeries] = {}
    refused: list[InputError] = []
    for f in files:
        ds = _read_header(f)
        if ds is None:
            continue
        try:
            images = _images_of(ds, f)
        except InputError as exc:  # an unusable object beside good series is skipped (reported below)
            refused.append(exc)
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "") or "unknown")
        s = groups.get(uid)
        if s is None:
            num = getattr(ds, "SeriesNumber", None)
            s = DicomSeries(
                uid=uid,
                description=str(
                    getattr(ds, "SeriesDescription", "") or getattr(ds, "ProtocolName", "") or ""
                ),
                modality=str(getattr(ds, "Modality", "") or ""),
                series_number=int(num) if num not in (None, "") else None,
                n_files=0,
                rows=int(images[0].header.Rows),
                columns=int(images[0].header.Columns),
            )
            groups[uid] = s
        s.files.append(f)
        s.images.extend(images)
        s.n_files += 1
    if not groups and refused:
        raise refused[0]
    if not groups:
        raise InputError(folder, f"contains no DICOM images ({len(files)} files checked)")
    for exc in refused:
        log.warning("skipped %s", exc)
    return sorted(
        groups.values(), key=lambda s: (s.series_number if s.series_number is not None else 1 << 30, s.uid)
    )


def _first_item(groups: list[Any], name: str) -> Any:
    """Item 0 of functional-group sequence ``name`` from the first group that has it."""
    for g in groups:
        if g is not None and name in g and len(g[name].value) > 0:
            return g[name].value[0]
    return None


def _enhanced_frames(ds: Any, path: Path) -> list[DicomImage]:
    """The frames of an enhanced (multi-frame) file, each with its own plane geometry."""
    n = int(ds.NumberOfFrames)
    per = ds.PerFrameFunctionalGroupsSequence if "PerFrameFunctionalGroupsSequence" in ds else None
    shared = (ds.SharedFunctionalGroupsSequence[0]
              if "SharedFunctionalGroupsSequence" in ds and len(ds.SharedFunctionalGroupsSequence) else None)
    if per is None and shared is None:
        raise InputError(path, f"is a multi-frame DICOM ({n} frames) without functional groups (no plane "
                               "position per frame); only enhanced MR/CT multi-frame files can be stacked")
    if per is not None and len(per) != n:
        raise InputError(path, f"multi-frame DICOM has {n} frames but {len(per)} per-frame functional groups")
    sop = str(getattr(ds, "SOPInstanceUID", "") or path.name)
    out = []
    for f in range(n):
        groups = [per[f] if per is not None else None, shared]
        over: dict[str, Any] = {"SOPInstanceUID": f"{sop}#{f + 1}", "InstanceNumber": f + 1,
                                "NumberOfFrames": 1}
        pos = _first_item(groups, "PlanePositionSequence")
        if pos is not None and "ImagePositionPatient" in pos:
            over["ImagePositionPatient"] = pos.ImagePositionPatient
        ori = _first_item(groups, "PlaneOrientationSequence")
        if ori is not None and "ImageOrientationPatient" in ori:
            over["ImageOrientationPatient"] = ori.ImageOrientationPatient
        meas = _first_item(groups, "PixelMeasuresSequence")
        for name in ("PixelSpacing", "SliceThickness", "SpacingBetweenSlices"):
            if meas is not None and name in meas:
                over[name] = meas[name].value
        pvt = _first_item(groups, "PixelValueTransformationSequence")
        for name in ("RescaleSlope", "RescaleIntercept"):
            if pvt is not None and name in pvt:
                over[name] = pvt[name].value
        content = _first_item(groups, "FrameContentSequence")
        if content is not None:
            if "TemporalPositionIndex" in content:
                over["TemporalPositionIdentifier"] = content.TemporalPositionIndex
            if "FrameAcquisitionDateTime" in content:
                over["AcquisitionTime"] = content.FrameAcquisitionDateTime
        echo = _first_item(groups, "MREchoSequence")
        if echo is not None and "EffectiveEchoTime" in echo:
            over["EchoTime"] = echo.EffectiveEchoTime
        timing = _first_item(groups, "MRTimingAndRelatedParametersSequence")
        for name in ("RepetitionTime", "FlipAngle"):
            if timing is not None and name in timing:
                over[name] = timing[name].value
        out.append(DicomImage(path, FrameHeader(ds, over), frame=f))
    return out


def _mosaic_tiles(ds: Any, path: Path) -> list[DicomImage]:
    """The tiles (slices) of a Siemens mosaic, each placed in space (see the module doc)."""
    import warnings

    with warnings.catch_warnings():  # nibabel flags its DICOM package as experimental on import
        warnings.simplefilter("ignore")
        from nibabel.nicom import csareader

    try:
        csa = csareader.get_csa_header(ds, "image")
    except Exception:  # noqa: BLE001 - damaged private header
        csa = None
    n = csareader.get_n_mosaic(csa) if csa else None
    if n is None and (0x0019, 0x100A) in ds:
        n = ds[0x0019, 0x100A].value
    try:
        n = int(n)
    except (TypeError, ValueError):
        raise InputError(path, "is a Siemens mosaic without its number of images (CSA header "
                               "NumberOfImagesInMosaic); convert it with dcm2niix") from None
    rows, cols = int(ds.Rows), int(ds.Columns)
    per_side = int(np.ceil(np.sqrt(n)))
    if n < 1 or rows % per_side or cols % per_side:
        raise InputError(path, f"Siemens mosaic of {cols}x{rows} pixels cannot hold {n} tiles "
                               f"({per_side} per side)")
    tile_r, tile_c = rows // per_side, cols // per_side
    iop = _floats(ds, "ImageOrientationPatient", 6, path)
    ipp = _floats(ds, "ImagePositionPatient", 3, path)
    ps = _floats(ds, "PixelSpacing", 2, path)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = csareader.get_slice_normal(csa) if csa else None
    normal = np.cross(row_dir, col_dir) if normal is None else np.asarray(normal, float)
    normal = normal / np.linalg.norm(normal)
    spacing = _number(ds, "SpacingBetweenSlices") or _number(ds, "SliceThickness")
    if not spacing or spacing <= 0:
        raise InputError(path, "Siemens mosaic has no SpacingBetweenSlices or SliceThickness; "
                               "cannot place its slices")
    # ImagePositionPatient is the corner of the whole mosaic: move it to the first tile's corner
    first = ipp + col_dir * ps[0] * (rows - tile_r) / 2.0 + row_dir * ps[1] * (cols - tile_c) / 2.0
    sop = str(getattr(ds, "SOPInstanceUID", "") or path.name)
    out = []
    for k in range(n):
        pos = first + k * spacing * normal
        over = {"ImagePositionPatient": [f"{v:.6f}" for v in pos], "Rows": tile_r, "Columns": tile_c,
                "SOPInstanceUID": f"{sop}#{k + 1}", "ImageType": [t for t in (ds.ImageType or [])
                                                                  if str(t).upper() != "MOSAIC"]}
        out.append(DicomImage(path, FrameHeader(ds, over), mosaic=(per_side, k)))
    return out


def _is_mosaic(ds: Any) -> bool:
    return "MOSAIC" in [str(t).upper() for t in (getattr(ds, "ImageType", None) or [])]


def _images_of(ds: Any, path: Path) -> list[DicomImage]:
    """The 2-D images a DICOM file holds (one, its frames, or its mosaic tiles)."""
    if _is_mosaic(ds):
        return _mosaic_tiles(ds, path)
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        return _enhanced_frames(ds, path)
    return [DicomImage(path, ds)]


#: Fewest images of a series taken for a 3-D structural volume (localizers, 2-D stacks and
#: single reformatted slabs have fewer).
MIN_VOLUME_IMAGES = 60

#: Series descriptions (SeriesDescription or ProtocolName, lower case) of each weighting across
#: vendors: Siemens MPRAGE/SPACE, GE (IR-)FSPGR/BRAVO/CUBE, Philips 3D TFE/T2W TSE/VISTA.
_WEIGHTING_PATTERNS = {
    "T1": re.compile(r"t1|mp-?rage|mp_rage|spgr|bravo|tfe|flash"),
    "T2": re.compile(r"t2|space|cube|vista"),
}
#: Descriptions that are not a plain structural volume of either weighting: FLAIR, T2*, diffusion,
#: functional, localizers, quantitative maps, MP2RAGE inversions, phase images, angiography,
#: reformats (Siemens "_MPR_", MIP).
_NOT_STRUCTURAL = re.compile(
    r"flair|t2\*|t2star|swi|dwi|dti|diff|bold|fmri|rest|epi|localiz|localis|scout|survey|aahead|map|inv1|inv2"
    r"|phase|_ph(?![a-z])|tof|angio|asl|perf|(?<![a-z])mpr(?!age)|reformat|mip|(?<![a-z0-9])pd(?![a-z])"
)


#: An MP2RAGE's uniform image (Siemens "..._UNI_Images", the denoised "..._UNI-DEN"): T1-weighted,
#: and DERIVED by nature (computed from the two inversions), so the derived rule does not apply.
_MP2RAGE_UNI = re.compile(r"(?<![a-z])uni(?![a-z])")
_DENOISED = re.compile(r"(?<![a-z])den(?![a-z])")


def _is_mp2rage_uni(text: str) -> bool:
    """Whether a lower-case series description names an MP2RAGE uniform (UNI) image."""
    return bool(_MP2RAGE_UNI.search(text)) and ("mp2rage" in text or "t1" in text)


def is_raw_mp2rage_uni(description: str) -> bool:
    """Whether a series description names an MP2RAGE uniform image without the vendor's
    background denoising (it needs its second inversion to segment)."""
    text = description.lower()
    return _is_mp2rage_uni(text) and not _DENOISED.search(text)


def mp2rage_inv2_of(series: list[DicomSeries], uni_description: str) -> DicomSeries | None:
    """The second-inversion series of the MP2RAGE whose uniform image is ``uni_description``:
    the only series whose description says INV2 and starts like the UNI's (the protocol name
    before "UNI"), or else the exam's only INV2 series; None when there is not exactly one."""
    inv2 = [s for s in series if re.search(r"inv-?2(?![0-9])", s.description.lower())]
    prefix = _MP2RAGE_UNI.split(uni_description.lower())[0].rstrip("_- ")
    same = [s for s in inv2 if prefix and s.description.lower().startswith(prefix)]
    hits = same if len(same) == 1 else inv2
    return hits[0] if len(hits) == 1 else None


def _is_derived(s: DicomSeries) -> bool:
    """ImageType says DERIVED (reformats, MIPs, computed maps) or SECONDARY."""
    ds = s.images[0].header if s.images else None
    kinds = [str(t).upper() for t in (getattr(ds, "ImageType", None) or [])]
    return "DERIVED" in kinds or "SECONDARY" in kinds


def structural_candidates(series: list[DicomSeries], weighting: str) -> list[DicomSeries]:
    """The series that look like a 3-D ``weighting`` ('T1' or 'T2') structural volume: MR, at
    least :data:`MIN_VOLUME_IMAGES` images, original (not derived) images, a description naming
    the weighting and none of the other kinds (:data:`_NOT_STRUCTURAL`); of a series saved with
    and without distortion correction, the corrected one. For T1 an MP2RAGE uniform image
    counts too (derived by nature; its inversions and T1 map do not), and of a UNI saved with
    and without the vendor's background denoising ("UNI-DEN"), the denoised one, which needs no
    second inversion."""
    pattern = _WEIGHTING_PATTERNS[weighting]
    other = _WEIGHTING_PATTERNS["T2" if weighting == "T1" else "T1"]
    out = []
    for s in series:
        text = s.description.lower()
        uni = weighting == "T1" and _is_mp2rage_uni(text)
        if s.modality not in ("MR", "") or len(s.images) < MIN_VOLUME_IMAGES or (_is_derived(s) and not uni):
            continue
        if not (pattern.search(text) or uni) or _NOT_STRUCTURAL.search(text):
            continue
        if weighting == "T2" and other.search(text) and "t2" not in text:
            continue
        out.append(s)
    # Siemens saves the images without distortion correction beside the corrected ones as "..._ND"
    corrected = [s for s in out if not re.search(r"(^|[_\s])nd($|[_\s])", s.description.lower())]
    out = corrected if corrected else out
    if any(_is_mp2rage_uni(s.description.lower()) and not is_raw_mp2rage_uni(s.description) for s in out):
        out = [s for s in out if not is_raw_mp2rage_uni(s.description)]  # a UNI-DEN beside the raw UNI
    return out


def select_series(folder: str | Path, series_uid: str | None = None, weighting: str | None = None,
                  listing: list[DicomSeries] | None = None) -> DicomSeries:
    """The one series to use: the only one, the one whose UID (or series number) is given, or,
    with ``weighting`` ('T1' or 'T2') and several series in the folder (a whole exam), the only
    one that looks like a 3-D structural volume of that weighting (:func:`structural_candidates`;
    logged). Anything else is an InputError listing the series. ``listing`` is the folder's
    :func:`list_dicom_series` when the caller already has it (the headers are not read again)."""
    series = list_dicom_series(folder) if listing is None else listing
    listed = "; ".join(f"[{i + 1}] {s.summary()}" for i, s in enumerate(series))
    if series_uid is None:
        if len(series) == 1:
            return series[0]
        found = structural_candidates(series, weighting) if weighting else []
        if len(found) == 1:
            log.warning("%s: %d DICOM series; using %s, the only 3-D %s-weighted one (choose another with "
                        "--series)", folder, len(series), found[0].summary(), weighting)
            return found[0]
        why = ""
        if weighting:
            why = (f"{len(found)} of them look like a 3-D {weighting}-weighted volume, " if found
                   else f"none of them looks like a 3-D {weighting}-weighted volume, ")
        raise InputError(
            folder,
            f"holds {len(series)} DICOM series: {listed}; {why}pass --series UID or series number "
            "(series_uid=...) to choose one",
        )
    wanted = str(series_uid).strip()
    hits = [s for s in series if s.uid == wanted] or [
        s for s in series if s.series_number is not None and str(s.series_number) == wanted
    ]
    if len(hits) != 1:
        raise InputError(folder, f"no single DICOM series matches {wanted!r}; available: {listed}")
    return hits[0]


# ---------------------------------------------------------------------------- geometry


def _floats(ds, name: str, n: int, path: Path) -> np.ndarray:
    value = getattr(ds, name, None)
    if value is None:
        raise InputError(path, f"DICOM image has no {name}; cannot place it in space")
    arr = np.asarray([float(v) for v in value], float)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise InputError(path, f"DICOM {name} is malformed: {list(value)}")
    return arr


def _order_key(ds) -> tuple:
    def num(name):
        v = getattr(ds, name, None)
        try:
            return float(v)
        except (TypeError, ValueError):
            return 0.0

    return (
        num("TemporalPositionIdentifier"),
        num("AcquisitionNumber"),
        num("EchoNumbers"),
        str(getattr(ds, "AcquisitionTime", "") or ""),
        num("InstanceNumber"),
    )


def _check_uniform(series: DicomSeries, folder: Path) -> None:
    for im in series.images:
        if int(getattr(im.header, "SamplesPerPixel", 1) or 1) != 1:
            raise InputError(im.path, "is a colour DICOM image; a greyscale MR/CT series is needed")
    rc = {(int(im.header.Rows), int(im.header.Columns)) for im in series.images}
    if len(rc) > 1:
        raise InputError(
            folder,
            f"series {series.uid} mixes image sizes {sorted(rc)} (localizer?); cannot stack it into a volume",
        )


def _geometry(series: DicomSeries, folder: Path):
    """Slice order, 4-D grouping and the RAS affine of a series."""
    headers = [im.header for im in series.images]
    files = [im.path for im in series.images]
    # drop exact duplicate files (same SOPInstanceUID) -- copies, not extra slices
    seen: dict[str, int] = {}
    keep = []
    for idx, ds in enumerate(headers):
        sop = str(getattr(ds, "SOPInstanceUID", "") or f"#{idx}")
        if sop in seen:
            log.warning(
                "%s: same image as %s (SOPInstanceUID %s); ignoring the copy",
                files[idx],
                files[seen[sop]],
                sop,
            )
            continue
        seen[sop] = idx
        keep.append(idx)
    iops = np.array([_floats(headers[i], "ImageOrientationPatient", 6, files[i]) for i in keep])
    ipps = np.array([_floats(headers[i], "ImagePositionPatient", 3, files[i]) for i in keep])
    sps = np.array([_floats(headers[i], "PixelSpacing", 2, files[i]) for i in keep])
    if np.max(np.abs(iops - iops[0])) > 1e-3:
        raise InputError(
            folder, f"series {series.uid} mixes slice orientations (localizer or several stacks?)"
        )
    if np.max(np.abs(sps - sps[0])) > 1e-4:
        raise InputError(
            folder, f"series {series.uid} mixes pixel spacings {np.unique(sps, axis=0).tolist()}"
        )
    if np.any(sps[0] <= 0):
        raise InputError(folder, f"series {series.uid} has zero or negative PixelSpacing {sps[0].tolist()}")
    row_dir = iops[0, :3] / np.linalg.norm(iops[0, :3])
    col_dir = iops[0, 3:] / np.linalg.norm(iops[0, 3:])
    if abs(float(row_dir @ col_dir)) > 1e-3:
        raise InputError(
            folder, f"ImageOrientationPatient row/column directions are not orthogonal: {iops[0]}"
        )
    normal = np.cross(row_dir, col_dir)
    pos = ipps @ normal
    order = np.argsort(pos, kind="stable")
    # cluster equal positions
    clusters: list[list[int]] = []
    for o in order:
        if clusters and abs(pos[o] - pos[clusters[-1][0]]) <= SAME_POSITION_MM:
            clusters[-1].append(int(o))
        else:
            clusters.append([int(o)])
    counts = np.array([len(c) for c in clusters])
    if counts.min() != counts.max():
        usual = int(np.bincount(counts).argmax())
        example = next(c for c in clusters if len(c) != usual)
        names = ", ".join(files[keep[i]].name for i in example[:4])
        if usual > 1:
            raise InputError(
                folder,
                f"incomplete multi-volume series {series.uid}: most slice positions have "
                f"{usual} images but position {pos[example[0]]:.3f} mm has {len(example)} "
                f"({names})",
            )
        raise InputError(
            folder,
            f"duplicated slices in series {series.uid}: {len(example)} images at the same "
            f"position {pos[example[0]]:.3f} mm along the slice normal ({names}); "
            f"{int((counts > 1).sum())} of {len(clusters)} positions affected",
        )
    n_vol = int(counts[0])
    for c in clusters:
        c.sort(key=lambda i: _order_key(headers[keep[i]]))
    n_slices = len(clusters)
    if n_slices < 2:
        raise InputError(
            folder, f"series {series.uid} has a single slice position (2-D image); a 3-D volume is needed"
        )
    upos = np.array([pos[c[0]] for c in clusters])
    d = np.diff(upos)
    med = float(np.median(d))
    big = np.nonzero(d > 1.5 * med)[0]
    if big.size:
        b = int(big[0])
        n_missing = round(d[b] / med) - 1
        raise InputError(
            folder,
            f"missing slice(s) in series {series.uid}: gap of {d[b]:.3f} mm between slice "
            f"positions {upos[b]:.3f} and {upos[b + 1]:.3f} mm (other slices are {med:.3f} mm "
            f"apart; about {n_missing} slice(s) missing)",
        )
    first = ipps[clusters[0][0]]
    last = ipps[clusters[-1][0]]
    step = (last - first) / (n_slices - 1)
    fitted = first + np.outer(np.arange(n_slices), step)
    actual = np.array([ipps[c[0]] for c in clusters])
    resid = float(np.max(np.linalg.norm(actual - fitted, axis=1)))
    if resid > max(0.1 * float(np.linalg.norm(step)), 0.05):
        raise InputError(
            folder,
            f"uneven slice spacing in series {series.uid}: slice positions deviate up to "
            f"{resid:.3f} mm from a regular grid (spacing {np.linalg.norm(step):.3f} mm)",
        )
    lps = np.eye(4)
    lps[:3, 0] = row_dir * sps[0][1]
    lps[:3, 1] = col_dir * sps[0][0]
    lps[:3, 2] = step
    lps[:3, 3] = first
    tilt = float(np.degrees(np.arccos(np.clip(abs(step @ normal) / np.linalg.norm(step), -1, 1))))
    # image lists: [volume][slice]
    grid = [[series.images[keep[c[t]]] for c in clusters] for t in range(n_vol)]
    hdrs = [[headers[keep[c[t]]] for c in clusters] for t in range(n_vol)]
    return LPS_TO_RAS @ lps, grid, hdrs, tilt


# ---------------------------------------------------------------------------- reading


_TRANSFER_SYNTAX_HINT = "pydicom decodes compressed DICOM with pylibjpeg, pylibjpeg-libjpeg, -openjpeg and -rle"


@contextlib.contextmanager
def _c_stderr_captured():
    """Redirect file descriptor 2 into a temporary file inside the block; yields a list that
    then holds what was written there (C libraries bypass Python's sys.stderr)."""
    said: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to capture
        yield said
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace").strip()
            if text:
                said.append(text)


class _PixelReader:
    """Decodes pixel data file by file; a multi-frame or mosaic file is decoded once and kept
    until all its images have been taken."""

    def __init__(self, images: list[DicomImage]):
        self._left: dict[Path, int] = {}
        for im in images:
            self._left[im.path] = self._left.get(im.path, 0) + 1
        self._cache: dict[Path, tuple[np.ndarray, Any]] = {}
        #: the first file decoded (its transfer syntax is reported)
        self.first_dataset: Any = None

    def _decode(self, path: Path) -> tuple[np.ndarray, Any]:
        import pydicom

        if path in self._cache:
            return self._cache[path]
        with _quiet_pydicom():
            return self._decode_loud(path)

    def _decode_loud(self, path: Path) -> tuple[np.ndarray, Any]:
        import pydicom

        try:
            ds = pydicom.dcmread(str(path), force=True)
        except Exception as exc:  # noqa: BLE001 - unreadable file
            raise InputError(path, f"DICOM file cannot be read ({' '.join(str(exc).split())})") from exc
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", None) or str(syntax or "unknown transfer syntax")
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            raise InputError(path, "DICOM file has no pixel data (truncated?)")
        try:
            with _c_stderr_captured() as said:  # C decoders print damage reports straight to fd 2
                arr = ds.pixel_array
            if said:
                log.debug("%s: decoder said: %s", path, " ".join(said[0].split()))
        except Exception as exc:  # noqa: BLE001 - decoder missing, damaged or truncated data
            msg = " ".join(str(exc).split())[:300]
            raise InputError(path, f"DICOM pixel data ({name}) cannot be decoded: {msg}") from exc
        self._cache[path] = (arr, ds)
        if self.first_dataset is None:
            self.first_dataset = ds
        return arr, ds

    def read(self, image: DicomImage, shape: tuple[int, int]) -> tuple[np.ndarray, float, float]:
        """(rows, columns) stored values of ``image`` with its rescale slope and intercept."""
        arr, ds = self._decode(image.path)
        if image.mosaic is not None:
            per_side, k = image.mosaic
            r, c = shape
            big = arr if arr.ndim == 2 else arr[0]
            if big.shape != (r * per_side, c * per_side):
                raise InputError(image.path, f"Siemens mosaic pixel data has shape {big.shape}, expected "
                                             f"{(r * per_side, c * per_side)}")
            tile = big[(k // per_side) * r:(k // per_side + 1) * r, (k % per_side) * c:(k % per_side + 1) * c]
        elif image.frame is not None:
            if arr.ndim != 3 or image.frame >= arr.shape[0]:
                raise InputError(image.path, f"multi-frame pixel data has shape {arr.shape}; frame "
                                             f"{image.frame + 1} is missing (truncated?)")
            tile = arr[image.frame]
        else:
            tile = arr
        if tile.shape != shape:
            raise InputError(image.path, f"DICOM pixel data has shape {tile.shape}, expected {shape}")
        self._left[image.path] -= 1
        if self._left[image.path] <= 0:
            self._cache.pop(image.path, None)
        h = image.header
        slope = float(getattr(h, "RescaleSlope", 1) or 1)
        inter = float(getattr(h, "RescaleIntercept", 0) or 0)
        return tile, slope, inter


def _number(ds, name: str) -> float | None:
    v = getattr(ds, name, None)
    try:
        return None if v in (None, "") else float(v)
    except (TypeError, ValueError):
        return None


def read_dicom_series(folder: str | Path, series_uid: str | DicomSeries | None = None,
                      weighting: str | None = None) -> Volume:
    """Read one DICOM series into a Volume (file voxel order, RAS affine, not reoriented).

    ``folder`` may also be one DICOM file: its folder is scanned and its series chosen.
    ``series_uid`` may be a :class:`DicomSeries` already listed by :func:`list_dicom_series`
    (the folder's headers are then not read again).
    ``weighting`` ('T1'/'T2'): in a folder of several series, take the only 3-D structural one
    of that weighting when no ``series_uid`` is given (:func:`select_series`).
    Data is (X, Y, Z) or (X, Y, Z, T) when each slice position has T images.
    """
    folder = Path(folder)
    if isinstance(series_uid, DicomSeries):
        series = series_uid
        folder = folder.parent if folder.is_file() else folder
    else:
        if folder.is_file():
            if not is_dicom_file(folder):
                raise InputError(folder, "is not a DICOM file")
            ds = _read_header(folder)
            if ds is None:
                raise InputError(folder, "is a DICOM file without an image")
            series_uid = series_uid or str(getattr(ds, "SeriesInstanceUID", ""))
            folder = folder.parent
        series = select_series(folder, series_uid, weighting)
    _check_uniform(series, folder)
    affine, grid, hdrs, tilt = _geometry(series, folder)
    rows, cols = series.rows, series.columns
    n_vol, n_sl = len(grid), len(grid[0])
    if max(rows, cols, n_sl) > MAX_AXIS or float(rows) * cols * n_sl * n_vol > MAX_VOXELS:
        raise InputError(
            folder,
            f"series {series.uid} is too large: {cols}x{rows}x{n_sl} voxels x {n_vol} "
            f"volumes (limit {MAX_AXIS} per axis, {MAX_VOXELS:.3g} voxels)",
        )
    raw = np.empty((n_vol, n_sl), dtype=object)
    slopes = np.ones((n_vol, n_sl))
    inters = np.zeros((n_vol, n_sl))
    reader = _PixelReader([im for row in grid for im in row])
    for t in range(n_vol):
        for k in range(n_sl):
            raw[t, k], slopes[t, k], inters[t, k] = reader.read(grid[t][k], (rows, cols))
    scaled = not (np.all(slopes == 1.0) and np.all(inters == 0.0))
    dtype = np.float32 if scaled else np.result_type(*[a.dtype for a in raw.ravel()])
    data = np.empty((cols, rows, n_sl, n_vol), dtype=dtype)
    for t in range(n_vol):
        for k in range(n_sl):
            a = raw[t, k].T
            data[:, :, k, t] = a.astype(np.float32) * slopes[t, k] + inters[t, k] if scaled else a
    if n_vol == 1:
        data = data[..., 0]
    h0 = hdrs[0][0]
    first = grid[0][0]
    storage = ("Siemens mosaic" if first.mosaic is not None
               else "enhanced multi-frame" if first.frame is not None else "classic")
    syntax = getattr(getattr(reader.first_dataset, "file_meta", None), "TransferSyntaxUID", None)
    meta: dict[str, Any] = {
        "format": "dicom",
        "storage": storage,
        "n_files": series.n_files,
        "transfer_syntax": getattr(syntax, "name", None) or (str(syntax) if syntax else None),
        "transform": "dicom",
        "series_uid": series.uid,
        "series_description": series.description,
        "series_number": series.series_number,
        "modality": series.modality,
        "n_slices": n_sl,
        "n_volumes": n_vol,
        "slice_spacing_mm": float(np.linalg.norm(affine[:3, 2])),
        "slice_thickness_mm": _number(h0, "SliceThickness"),
        "gantry_tilt_deg": tilt,
        "rescaled": bool(scaled),
        "manufacturer": str(getattr(h0, "Manufacturer", "") or ""),
        "model": str(getattr(h0, "ManufacturerModelName", "") or ""),
        "field_strength_T": _number(h0, "MagneticFieldStrength"),
        "repetition_time_ms": _number(h0, "RepetitionTime"),
        "repetition_time_s": (_number(h0, "RepetitionTime") or 0) / 1000.0 or None,
        "echo_time_ms": _number(h0, "EchoTime"),
        "inversion_time_ms": _number(h0, "InversionTime"),
        "flip_angle_deg": _number(h0, "FlipAngle"),
        "scanning_sequence": "\\".join(str(v) for v in (getattr(h0, "ScanningSequence", None) or []))
        if not isinstance(getattr(h0, "ScanningSequence", None), str)
        else str(h0.ScanningSequence),
    }
    if tilt > 0.01:
        log.info(
            "%s: slices are stacked at %.2f deg to their normal (gantry tilt); the affine keeps it exactly",
            folder,
            tilt,
        )
    return Volume(data=data, affine=affine, source=str(folder), meta=meta)


def dicom_to_nifti(folder: str | Path, out_path: str | Path, series_uid: str | None = None) -> Path:
    """Convert one DICOM series to NIfTI (atomic write; sform/qform code 1 = scanner RAS).

    The voxel order is the DICOM one (columns, rows, slices along the normal); the affine maps
    it exactly to scanner RAS mm. Returns the written path.
    """
    from navigator.io.nifti import write_nifti

    vol = read_dicom_series(folder, series_uid)
    desc = f"navigator from DICOM {vol.meta.get('series_description', '')}"[:79]
    descrip = desc.encode("ascii", "replace").decode()
    return write_nifti(
        vol.data,
        vol.affine,
        out_path,
        extra_header={"descrip": descrip},
        repetition_time_s=vol.meta.get("repetition_time_s"),
    )
