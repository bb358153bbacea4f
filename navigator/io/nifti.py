"""Low-level NIfTI (and FreeSurfer MGH) reading and writing with sanity checks.

Everything here works on the file's own voxel order; reorientation to RAS lives in
:mod:`navigator.io.images`. World coordinates are scanner RAS in millimetres, taken from the
sform when its code is > 0, else from the qform when its code is > 0 (the NIfTI rule).

Checks are made on the header *before* any voxel data is read, so an absurd or damaged file
fails fast with a one-line :class:`~navigator.core.errors.InputError` naming the file.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import InputError

log = logging.getLogger("navigator")

#: Largest accepted size along one spatial axis (voxels).
MAX_AXIS = 2048
#: Largest accepted number of voxels (all axes, including time/components).
MAX_VOXELS = 1.5e9
#: sform and qform further apart than this (mm, over the volume corners) count as disagreeing.
DISAGREE_TOL_MM = 0.01

NIFTI_SUFFIXES = (".nii", ".nii.gz")
OTHER_SUFFIXES = (".mgz", ".mgh", ".hdr", ".img", ".img.gz", ".hdr.gz")


@dataclass
class HeaderFacts:
    """What the header says, before the voxel data is read.

    Attributes:
        path: the file.
        format: 'nifti1', 'nifti2', 'nifti1-pair' or 'mgh'.
        shape: full data shape as stored (a 5-D (X, Y, Z, 1, C) vector image is reported as
            (X, Y, Z, C)).
        dtype: on-disk data type (before scaling).
        affine: 4x4 voxel -> world RAS mm of the file's own voxel order.
        transform: 'sform', 'qform', 'none' (no orientation: pixdim-only fallback) or 'mgh'.
        sform_code, qform_code: NIfTI codes (None for MGH).
        disagreement_mm: max distance (mm) between sform and qform mappings over the 8 corner
            voxels when both codes are > 0, else None.
        scl_slope, scl_inter: intensity scaling applied when reading (1, 0 when absent).
        warnings: human-readable notes about the header (already logged).
        problems: reasons :func:`read_image` would refuse the file (empty when loadable).
    """

    path: Path
    format: str
    shape: tuple[int, ...]
    dtype: np.dtype
    affine: np.ndarray
    transform: str
    sform_code: int | None
    qform_code: int | None
    disagreement_mm: float | None
    scl_slope: float
    scl_inter: float
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pixdim: tuple[float, ...] = ()
    repetition_time_s: float | None = None

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return tuple(self.shape[:3])  # type: ignore[return-value]

    @property
    def n_volumes(self) -> int:
        """Number of 3-D volumes (or vector components) along the 4th axis (1 for 3-D)."""
        return int(np.prod(self.shape[3:])) if len(self.shape) > 3 else 1

    def meta(self) -> dict[str, Any]:
        """Facts worth keeping in :attr:`Volume.meta`."""
        return {
            "format": self.format,
            "transform": self.transform,
            "sform_code": self.sform_code,
            "qform_code": self.qform_code,
            "sform_qform_disagreement_mm": self.disagreement_mm,
            "sform_qform_disagree": bool(
                self.disagreement_mm is not None and self.disagreement_mm > DISAGREE_TOL_MM
            ),
            "scl_slope": self.scl_slope,
            "scl_inter": self.scl_inter,
            "file_dtype": str(self.dtype),
            "file_shape": list(self.shape),
            "header_warnings": list(self.warnings),
            "repetition_time_s": self.repetition_time_s,
        }


# ---------------------------------------------------------------------------- opening


def _diagnose_unreadable(path: Path, exc: Exception) -> InputError:
    """Turn nibabel's 'cannot work out file type' into a specific one-line reason."""
    from nibabel.filebasedimages import ImageFileError

    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    head = b""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as e:
        return InputError(path, f"cannot be read ({e.strerror or e})")
    if size == 0:
        return InputError(path, "is an empty file, not an image")
    if path.name.lower().endswith(".gz") and head[:2] != b"\x1f\x8b":
        return InputError(path, "is named .gz but is not gzip-compressed (renamed or damaged file?)")
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                first = fh.read(540)
        except (OSError, EOFError, zlib.error) as e:
            return InputError(path, f"is a corrupt or truncated gzip file ({e})")
        if len(first) < 348:
            return InputError(
                path, f"is too short to hold a NIfTI header ({len(first)} bytes after gunzip; truncated?)"
            )
        return InputError(path, f"is gzip-compressed but holds no readable NIfTI header ({exc})")
    if 0 <= size < 348:
        return InputError(path, f"is too short to be a NIfTI image ({size} bytes)")
    if path.suffix.lower() in (".dcm", ".ima", ".dicom"):
        return InputError(path, "is not a DICOM file (no DICM marker) nor a NIfTI image")
    if isinstance(exc, ImageFileError):
        return InputError(path, f"is not a NIfTI image (no valid NIfTI header; {exc})")
    return InputError(path, f"cannot be read: corrupt or truncated file ({' '.join(str(exc).split())})")


class _quiet_nibabel:
    """Silence nibabel's own logger (it prints header problems to stderr) inside the block."""

    _NAMES = ("nibabel", "nibabel.global")

    def __enter__(self):
        self._loggers = [logging.getLogger(n) for n in self._NAMES]
        self._was = [lg.level for lg in self._loggers]
        for lg in self._loggers:
            lg.setLevel(logging.CRITICAL + 1)
        return self

    def __exit__(self, *exc):
        for lg, was in zip(self._loggers, self._was):
            lg.setLevel(was)
        return False


def open_image(path: str | Path):
    """Open an image file lazily (header only); returns the nibabel image.

    Raises InputError for a missing path, a folder, an unreadable or non-image file.
    """
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if path.is_dir():
        raise InputError(path, "is a folder, not an image file")
    try:
        with _quiet_nibabel():  # nibabel logs header faults itself; we report them as one line
            img = nib.load(str(path), mmap=False)
    except (ImageFileError, OSError, EOFError, zlib.error) as exc:
        raise _diagnose_unreadable(path, exc) from exc
    except Exception as exc:
        raise InputError(path, f"has a damaged header ({type(exc).__name__}: {exc})") from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image, nib.Nifti1Pair, nib.MGHImage)):
        raise InputError(path, f"is a {type(img).__name__}, not NIfTI/MGH; convert it to NIfTI first")
    return img


# ---------------------------------------------------------------------------- header facts


def _corners(shape: tuple[int, ...]) -> np.ndarray:
    n = np.asarray(shape[:3], float) - 1
    return np.array([[i, j, k, 1.0] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])


def affine_disagreement_mm(a: np.ndarray, b: np.ndarray, shape: tuple[int, ...]) -> float:
    """Max distance (mm) between two voxel->world mappings over the 8 corner voxel centres."""
    c = _corners(shape)
    return float(np.max(np.linalg.norm((c @ a.T - c @ b.T)[:, :3], axis=1)))


def _affine_ok(aff: np.ndarray | None) -> bool:
    if aff is None or not np.all(np.isfinite(aff)):
        return False
    norms = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
    return bool(np.all(norms > 1e-6) and abs(np.linalg.det(aff[:3, :3])) > 1e-12)


def _affine_problem(aff: np.ndarray) -> str:
    """Why a voxel->world matrix cannot be used (for messages)."""
    if not np.all(np.isfinite(aff)):
        return "it holds NaN or infinite values"
    norms = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
    if np.any(norms <= 1e-6):
        return f"voxel axis {int(np.argmin(norms))} has zero length (a voxel size of 0)"
    return "it is not invertible (determinant 0: the voxel axes lie in a plane)"


def _raw_pixdim(img) -> tuple[float, ...]:
    """pixdim[1:4] as stored in the file (nibabel silently 'fixes' zero/negative values on load)."""
    from nibabel.openers import ImageOpener

    try:
        fmap = img.file_map["header"] if "header" in img.file_map else img.file_map["image"]
        with ImageOpener(fmap.filename) as fobj:
            raw = type(img.header).from_fileobj(fobj, check=False)
        return tuple(float(p) for p in np.asarray(raw["pixdim"])[1:4])
    except Exception:  # noqa: BLE001 - fall back to the (possibly repaired) loaded header
        return tuple(float(p) for p in np.asarray(img.header["pixdim"])[1:4])


def header_facts(img, path: str | Path) -> HeaderFacts:
    """Read shape, type, scaling and the voxel->world transform from the header (no voxel data).

    Problems that make the image unusable are collected in ``problems`` (not raised), so
    ``navigator info`` can report them; :func:`check_loadable` raises the first one.
    """
    import nibabel as nib

    path = Path(path)
    hdr = img.header
    shape = tuple(int(s) for s in img.shape)
    warnings: list[str] = []
    problems: list[str] = []
    # ITK/NIfTI vector images are 5-D (X, Y, Z, 1, C): treat as (X, Y, Z, C).
    if len(shape) == 5 and shape[3] == 1:
        shape = shape[:3] + shape[4:]
    pixdim: tuple[float, ...] = ()

    if isinstance(img, nib.MGHImage):
        fmt = "mgh"
        aff = np.asarray(img.affine, float)
        transform, s_code, q_code, disagree = "mgh", None, None, None
        slope, inter = 1.0, 0.0
        zooms = np.asarray(hdr.get_zooms()[:3], float)
        pixdim = tuple(float(z) for z in zooms)
        if np.any(zooms <= 0):
            problems.append(f"zero or negative voxel size {tuple(zooms)} mm in the header")
    else:
        fmt = {nib.Nifti2Image: "nifti2", nib.Nifti1Image: "nifti1"}.get(type(img), "nifti1-pair")
        s_code = int(hdr["sform_code"])
        q_code = int(hdr["qform_code"])
        pixdim = _raw_pixdim(img)
        nspatial = min(3, len(shape))
        if any(p <= 0 or not np.isfinite(p) for p in pixdim[:nspatial]):
            problems.append(f"zero or negative voxel size in the header (pixdim {pixdim[:nspatial]})")
        sform = np.asarray(hdr.get_sform(), float) if s_code > 0 else None
        try:
            qform = np.asarray(hdr.get_qform(), float) if q_code > 0 else None
        except Exception as exc:  # noqa: BLE001 - nibabel refuses negative pixdims here
            qform = None
            warnings.append(f"qform unusable ({exc})")
        disagree = None
        if (
            sform is not None
            and qform is not None
            and _affine_ok(sform)
            and _affine_ok(qform)
            and len(shape) >= 3
        ):
            disagree = affine_disagreement_mm(sform, qform, shape)
        if _affine_ok(sform):
            aff, transform = sform, "sform"
            if disagree is not None and disagree > DISAGREE_TOL_MM:
                warnings.append(
                    f"sform and qform disagree by up to {disagree:.3g} mm; using the sform "
                    "(NIfTI rule: sform wins when its code is > 0)"
                )
        elif _affine_ok(qform):
            if sform is not None:
                warnings.append("sform is degenerate (zero-size or non-finite); using the qform")
            aff, transform = qform, "qform"
        elif sform is not None or qform is not None:
            aff, transform = np.asarray(hdr.get_base_affine(), float), "none"
            bad = sform if sform is not None else qform
            problems.append(f"{'sform' if sform is not None else 'qform'} is unusable: {_affine_problem(bad)}")
        else:
            aff, transform = np.asarray(hdr.get_base_affine(), float), "none"
            warnings.append(
                "sform_code and qform_code are both 0: the image has no scanner orientation; "
                "left/right is UNKNOWN (using pixdim only)"
            )
        # nibabel moves scl_slope/scl_inter from the header into the data proxy on load
        s_raw, i_raw = getattr(img.dataobj, "slope", None), getattr(img.dataobj, "inter", None)
        slope = 1.0 if s_raw is None or not np.isfinite(s_raw) or s_raw == 0 else float(s_raw)
        inter = 0.0 if i_raw is None or not np.isfinite(i_raw) else float(i_raw)

    if len(shape) < 3 or min(shape[:3]) < 2:
        problems.append(f"is a 2-D image (shape {shape}); a 3-D volume is needed")
    if len(shape) > 4:
        problems.append(f"has {len(shape)} dimensions (shape {shape}); at most 4 are supported")
    if len(shape) >= 3 and max(shape[:3]) > MAX_AXIS:
        problems.append(f"is too large: {shape[:3]} voxels (limit {MAX_AXIS} along an axis)")
    elif np.prod(np.asarray(shape, float)) > MAX_VOXELS:
        problems.append(
            f"is too large: {int(np.prod(np.asarray(shape, float))):,} voxels (limit {MAX_VOXELS:.3g})"
        )
    tr = None
    if len(shape) == 4 and shape[3] > 1 and not isinstance(img, nib.MGHImage):
        zoom_t = float(hdr["pixdim"][4])
        unit = hdr.get_xyzt_units()[1]
        factor = {"sec": 1.0, "msec": 1e-3, "usec": 1e-6}.get(unit)
        if factor is not None and zoom_t > 0:
            tr = zoom_t * factor
    if not problems:  # an unusable image gets its one-line error; notes would only bury it
        for w in warnings:
            log.warning("%s: %s", path, w)
    return HeaderFacts(
        repetition_time_s=tr,
        path=path,
        format=fmt,
        shape=shape,
        dtype=np.dtype(img.get_data_dtype()),
        affine=np.asarray(aff, float),
        transform=transform,
        sform_code=s_code,
        qform_code=q_code,
        disagreement_mm=disagree,
        scl_slope=float(slope),
        scl_inter=float(inter),
        warnings=warnings,
        problems=problems,
        pixdim=pixdim,
    )


def check_loadable(facts: HeaderFacts, allow_4d: bool) -> None:
    """Raise InputError for the first header problem, or for several volumes when not allowed."""
    if facts.problems:
        raise InputError(facts.path, facts.problems[0])
    if len(facts.shape) == 4 and facts.shape[3] > 1 and not allow_4d:
        raise InputError(
            facts.path,
            f"is 4-D with {facts.shape[3]} volumes; a single 3-D volume is needed "
            "(extract one volume first, e.g. `fslroi in out 0 1`)",
        )


# ---------------------------------------------------------------------------- data


def read_data(img, facts: HeaderFacts, allow_nonfinite: bool = False) -> np.ndarray:
    """Read the voxel array (intensity scaling applied) in the file's voxel order.

    Integer images without scaling keep their type (label maps stay integers); scaled
    images become float32. Raises InputError for truncated/corrupt data and for NaN/inf voxels.
    """
    path = facts.path
    try:
        if facts.scl_slope != 1.0 or facts.scl_inter != 0.0:
            data = (
                np.asarray(img.dataobj.get_scaled(dtype=np.float32))
                if hasattr(img.dataobj, "get_scaled")
                else img.get_fdata(dtype=np.float32)
            )
        else:
            data = (
                np.asarray(img.dataobj.get_unscaled())
                if hasattr(img.dataobj, "get_unscaled")
                else np.asanyarray(img.dataobj)
            )
    except MemoryError:
        raise
    except Exception as exc:
        msg = " ".join(str(exc).split())
        raise InputError(path, f"voxel data cannot be read: truncated or corrupt file ({msg})") from exc
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0, :]
    if not data.dtype.isnative:  # big-endian files: hand out native-order arrays
        data = data.astype(data.dtype.newbyteorder("="))
    if data.dtype.kind == "f" and not allow_nonfinite:
        finite = np.isfinite(data)
        if not finite.all():
            n_bad = int(data.size - np.count_nonzero(finite))
            n_nan = int(np.count_nonzero(np.isnan(data)))
            raise InputError(
                path,
                f"has {n_bad:,} non-finite voxels ({n_nan:,} NaN, {n_bad - n_nan:,} inf); "
                "replace them (e.g. with 0) before use",
            )
    return data


# ---------------------------------------------------------------------------- writing


def qform_representable(affine: np.ndarray, shape: tuple[int, ...], tol_mm: float = 1e-3) -> bool:
    """Whether the qform (rotation + zooms + qfac, float32) reproduces ``affine`` within tol_mm."""
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_shape(shape[:3])
    try:
        hdr.set_qform(affine, code=1, strip_shears=False)
    except Exception:  # noqa: BLE001 - shears or degenerate
        return False
    return affine_disagreement_mm(np.asarray(hdr.get_qform(), float), affine, shape) <= tol_mm


def write_nifti(
    data: np.ndarray,
    affine: np.ndarray,
    path: str | Path,
    extra_header: dict[str, Any] | None = None,
    repetition_time_s: float | None = None,
) -> Path:
    """Write ``data`` with ``affine`` (voxel -> world RAS mm) to ``path`` atomically.

    sform gets code 1 (scanner); the qform also gets code 1 when it can represent the affine
    (no shear), else code 0. Units: mm and seconds (``repetition_time_s`` goes to pixdim[4]
    of 4-D data). No intensity scaling is stored.
    """
    import nibabel as nib

    from navigator.core.atomic import atomic_path

    path = Path(path)
    name = path.name.lower()
    if not name.endswith(NIFTI_SUFFIXES):
        raise InputError(path, "output image name must end with .nii or .nii.gz")
    affine = np.asarray(affine, float)
    img = nib.Nifti1Image(data, affine)
    hdr = img.header
    hdr.set_data_dtype(data.dtype)
    img.set_sform(affine, code=1)
    if qform_representable(affine, data.shape):
        img.set_qform(affine, code=1, strip_shears=False)
    else:
        img.set_qform(affine, code=0)
    hdr.set_xyzt_units("mm", "sec")
    if data.ndim == 4 and repetition_time_s:
        hdr["pixdim"][4] = float(repetition_time_s)
    for key, value in (extra_header or {}).items():
        hdr[key] = value
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path
