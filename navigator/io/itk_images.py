"""Read NRRD (.nrrd / .nhdr, 3D Slicer's format) and MetaImage (.mha / .mhd, ITK's) volumes.

Both formats store the voxel -> world geometry as origin, spacing and direction cosines in
ITK's LPS frame (NRRD files written in RAS or scanner-XYZ space are converted to LPS by ITK's
reader). Here they become navigator's convention: a 4x4 affine from the file's own voxel
indices (i, j, k) to scanner **RAS** millimetres, and the voxel array indexed ``[i, j, k]``
(ITK's numpy view is ``[k, j, i]``).

The header is read before the voxels, so an absurd or damaged file fails fast with a one-line
:class:`~navigator.core.errors.InputError` naming the file. Reorientation to RAS is left to
:mod:`navigator.io.images`, as for NIfTI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import InputError
from navigator.io.nifti import MAX_AXIS, MAX_VOXELS

log = logging.getLogger("navigator")

#: File name endings read by this module -> format name recorded in the volume's meta.
ITK_SUFFIXES: dict[str, str] = {".nrrd": "nrrd", ".nhdr": "nrrd", ".mha": "metaimage", ".mhd": "metaimage"}

#: How the formats are named in messages.
ITK_SUFFIXES_DOC = "NRRD/MetaImage"

#: ITK's world frame is LPS; flipping x and y gives RAS.
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def itk_format(path: str | Path) -> str | None:
    """'nrrd' or 'metaimage' when the file name says so, else None."""
    name = Path(path).name.lower()
    for suffix, fmt in ITK_SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    return None


@dataclass
class ItkHeader:
    """What the header says, before the voxels are read.

    Attributes:
        path: the file.
        format: 'nrrd' or 'metaimage'.
        shape: (i, j, k[, n]) with n the number of volumes or vector components.
        dtype: voxel type of one component.
        affine: 4x4 voxel -> world RAS mm in the file's own voxel order.
        problems: reasons the file cannot be loaded as a volume (empty when loadable).
        warnings: notes about the header (logged when the file is loadable).
    """

    path: Path
    format: str
    shape: tuple[int, ...]
    dtype: np.dtype
    affine: np.ndarray
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        """Facts worth keeping in :attr:`Volume.meta`."""
        return {
            "format": self.format,
            "transform": "itk",
            "file_dtype": str(self.dtype),
            "file_shape": list(self.shape),
            "header_warnings": list(self.warnings),
        }


def _reader(path: Path):
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    return reader


def _sitk_error(path: Path, exc: Exception, reading_voxels: bool = False) -> InputError:
    """A one-line reason from ITK's exception text (which starts with a C++ source location)."""
    text = str(exc)
    if "Unable to determine ImageIO reader" in text:
        return InputError(path, f"is not a {ITK_SUFFIXES_DOC} file (its header is not recognised)")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    teem = [line.removeprefix("[nrrd]").strip() for line in lines if line.startswith("[nrrd]")]
    if teem:  # NRRD's own reader: the last line is the root cause, "function: reason"
        reason = teem[-1].split(": ", 1)[-1]
    else:
        reason = lines[-1].split("ERROR: ", 1)[-1] if lines else type(exc).__name__
        reason = reason.split("): ", 1)[-1]
    if reading_voxels:
        if reason.startswith("Reason:"):  # MetaImage reports a stale errno for a short file
            return InputError(path, "voxel data cannot be read: truncated or corrupt file")
        return InputError(path, f"voxel data cannot be read: truncated or corrupt file ({reason[:200]})")
    return InputError(path, f"cannot be read as {ITK_SUFFIXES_DOC}: {reason[:200]}")


def read_header(path: str | Path) -> ItkHeader:
    """Read the geometry and voxel type of a NRRD/MetaImage file (no voxel data).

    Raises InputError when the file is missing or its header cannot be parsed; problems that
    only make it unusable as a volume (2-D, 5-D, too large, singular geometry) are listed in
    ``problems``.
    """
    path = Path(path)
    fmt = itk_format(path)
    if fmt is None:
        raise InputError(path, f"is not a {ITK_SUFFIXES_DOC} file (name ends in none of {sorted(ITK_SUFFIXES)})")
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        raise InputError(path, "is a folder, not an image file")
    reader = _reader(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise _sitk_error(path, exc) from exc
    ndim = int(reader.GetDimension())
    size = tuple(int(s) for s in reader.GetSize())
    ncomp = int(reader.GetNumberOfComponents())
    problems: list[str] = []
    if ndim < 3 or min(size[:3]) < 2:
        problems.append(f"is a 2-D image (size {size}); a 3-D volume is needed")
    if ndim > 4:
        problems.append(f"has {ndim} dimensions (size {size}); at most 4 are supported")
    shape = size[:3] + ((size[3],) if ndim == 4 and size[3] > 1 else ()) + ((ncomp,) if ncomp > 1 else ())
    if ndim == 4 and size[3] > 1 and ncomp > 1:
        problems.append(f"is a 4-D image of {ncomp}-component vectors; one scalar volume is needed")
    if len(shape) >= 3 and max(shape[:3]) > MAX_AXIS:
        problems.append(f"is too large: {shape[:3]} voxels (limit {MAX_AXIS} along an axis)")
    elif np.prod(np.asarray(shape, float)) > MAX_VOXELS:
        problems.append(f"is too large: {int(np.prod(np.asarray(shape, float))):,} voxels (limit {MAX_VOXELS:.3g})")
    spacing = np.asarray(reader.GetSpacing(), float)[:3]
    origin = np.asarray(reader.GetOrigin(), float)[:3]
    direction = np.asarray(reader.GetDirection(), float).reshape(ndim, ndim)[:3, :3] if ndim >= 3 else np.eye(3)
    affine = np.eye(4)
    if ndim >= 3:
        if np.any(~np.isfinite(spacing)) or np.any(spacing <= 0):
            problems.append(f"zero or negative voxel size {tuple(spacing)} mm in the header")
        linear = _LPS_TO_RAS @ direction @ np.diag(spacing)
        if not np.all(np.isfinite(linear)) or abs(np.linalg.det(linear)) < 1e-12:
            problems.append("its direction cosines are degenerate (the voxel axes lie in a plane)")
        affine[:3, :3] = linear
        affine[:3, 3] = _LPS_TO_RAS @ origin
    warnings: list[str] = []
    if fmt == "nrrd" and "NRRD_space" not in reader.GetMetaDataKeys():
        warnings.append("the NRRD header has no 'space' field: the image has no scanner orientation; "
                        "left/right is UNKNOWN (ITK's LPS default is assumed)")
    if not problems:
        for note in warnings:
            log.warning("%s: %s", path, note)
    return ItkHeader(path=path, format=fmt, shape=shape, dtype=_component_dtype(reader), affine=affine,
                     problems=problems, warnings=warnings)


def _component_dtype(reader) -> np.dtype:
    """numpy type of one voxel component (scalar or vector pixel types)."""
    import SimpleITK as sitk

    for scalar, vector, dtype in (
        (sitk.sitkUInt8, sitk.sitkVectorUInt8, np.uint8), (sitk.sitkInt8, sitk.sitkVectorInt8, np.int8),
        (sitk.sitkUInt16, sitk.sitkVectorUInt16, np.uint16), (sitk.sitkInt16, sitk.sitkVectorInt16, np.int16),
        (sitk.sitkUInt32, sitk.sitkVectorUInt32, np.uint32), (sitk.sitkInt32, sitk.sitkVectorInt32, np.int32),
        (sitk.sitkUInt64, sitk.sitkVectorUInt64, np.uint64), (sitk.sitkInt64, sitk.sitkVectorInt64, np.int64),
        (sitk.sitkFloat32, sitk.sitkVectorFloat32, np.float32),
        (sitk.sitkFloat64, sitk.sitkVectorFloat64, np.float64),
    ):
        if reader.GetPixelID() in (scalar, vector):
            return np.dtype(dtype)
    return np.dtype(np.float64)  # complex or label-map types: read as converted by ITK


def read_itk_image(path: str | Path, allow_nonfinite: bool = False) -> tuple[np.ndarray, ItkHeader]:
    """Read a NRRD/MetaImage volume.

    Returns:
        (data, header): data indexed ``[i, j, k]`` (plus a last axis for several volumes or
        vector components) in the file's voxel type; ``header.affine`` maps (i, j, k) to
        scanner RAS mm.

    Raises:
        InputError: unreadable, truncated or unusable file (2-D, too large, degenerate
            geometry), or NaN/inf voxels (unless ``allow_nonfinite``).
    """
    import SimpleITK as sitk

    header = read_header(path)
    if header.problems:
        raise InputError(header.path, header.problems[0])
    reader = _reader(header.path)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise _sitk_error(header.path, exc, reading_voxels=True) from exc
    array = sitk.GetArrayFromImage(image)  # [(t,) k, j, i (, c)]
    ncomp = image.GetNumberOfComponentsPerPixel()
    nspatial = image.GetDimension()
    axes = list(range(nspatial))[::-1]  # numpy's axes reversed: i, j, k (, t)
    if ncomp > 1:
        axes.append(nspatial)
    data = np.transpose(array, axes)
    if data.ndim == 4 and nspatial == 4 and data.shape[3] == 1:
        data = data[..., 0]
    data = np.ascontiguousarray(data)
    if data.dtype.kind == "f" and not allow_nonfinite:
        finite = np.isfinite(data)
        if not finite.all():
            n_bad = int(data.size - np.count_nonzero(finite))
            raise InputError(header.path, f"has {n_bad:,} non-finite (NaN/inf) voxels; replace them (e.g. with 0) "
                                          "before use")
    return data, header
