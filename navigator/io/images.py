"""Load, save and describe images: NIfTI files and DICOM folders -> :class:`Volume` in scanner RAS.

* :func:`load_image` reads a NIfTI (.nii / .nii.gz; also FreeSurfer .mgz and Analyze
  .hdr/.img) file, a NRRD (.nrrd / .nhdr) or MetaImage (.mha / .mhd) file, or a DICOM folder,
  applies the sanity checks of :mod:`navigator.io.nifti` / :mod:`navigator.io.itk_images` /
  :mod:`navigator.io.dicom`
  and (by default) reorders/flips the voxel axes to the closest RAS orientation *without
  resampling*: the affine is updated so every voxel keeps its exact world position.
* :func:`save_nifti` writes a Volume atomically with sform = qform = affine (code 1, scanner).
* :func:`image_info` reports the header, orientation, intensities and a labelled modality guess.

World coordinates are scanner RAS in millimetres throughout.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.errors import InputError
from navigator.core.volume import Volume
from navigator.io import dicom as _dicom
from navigator.io import itk_images as _itk
from navigator.io import nifti as _nifti

log = logging.getLogger("navigator")

PERCENTILES = (1, 5, 50, 95, 99)
_MAX_STAT_SAMPLES = 4_000_000


# ---------------------------------------------------------------------------- orientation


def axcodes_of(affine: np.ndarray) -> tuple[str, str, str]:
    """World direction (R/L, A/P, S/I) each voxel axis of ``affine`` points to most closely."""
    import nibabel as nib

    return tuple(str(c) for c in nib.orientations.aff2axcodes(affine))  # type: ignore[return-value]


def reorient_to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Permute/flip the first three axes to the closest RAS order, without resampling.

    Extra axes (time, vector components) are kept as they are. Returns (data, affine, ornt)
    where ``ornt`` is nibabel's (3, 2) orientation array (source axis -> RAS axis, flip);
    ``new_affine @ [i', j', k', 1]`` equals ``affine @ [i, j, k, 1]`` for corresponding voxels.
    """
    import nibabel as nib

    ornt = nib.orientations.io_orientation(affine)
    if np.array_equal(ornt, np.array([[0, 1], [1, 1], [2, 1]], float)):
        return data, np.asarray(affine, float).copy(), ornt
    new = nib.orientations.apply_orientation(data, ornt)
    new_affine = np.asarray(affine, float) @ nib.orientations.inv_ornt_aff(ornt, data.shape[:3])
    return np.ascontiguousarray(new), new_affine, ornt


def _finish(
    data: np.ndarray, affine: np.ndarray, source: str, meta: dict[str, Any], reorient: bool
) -> Volume:
    meta["original_axcodes"] = list(axcodes_of(affine))
    meta["original_affine"] = np.asarray(affine, float).tolist()
    meta["original_shape"] = list(data.shape)
    if reorient:
        data, affine, ornt = reorient_to_ras(data, affine)
        meta["reoriented"] = meta["original_axcodes"] != ["R", "A", "S"]
        meta["orientation_ornt"] = ornt.tolist()
    else:
        meta["reoriented"] = False
    return Volume(data=data, affine=affine, source=source, meta=meta)


# ---------------------------------------------------------------------------- loading


def _is_dicom_input(path: Path) -> bool:
    return path.is_dir() or _dicom.is_dicom_file(path)


def load_image(
    path: str | Path, *, allow_4d: bool = False, reorient: bool = True,
    series_uid: str | _dicom.DicomSeries | None = None,
    dicom_weighting: str | None = None,
) -> Volume:
    """Load a NIfTI/MGH/NRRD/MetaImage image or a DICOM series (folder or one of its files).

    Args:
        path: .nii / .nii.gz / .mgz / .hdr / .nrrd / .nhdr / .mha / .mhd file, a DICOM folder,
            or one DICOM file of a series.
        allow_4d: when False a 4-D image must hold one volume (squeezed to 3-D); several
            volumes raise InputError. When True, 4-D data (X, Y, Z, T or C) is returned as is
            (a 3-D file stays 3-D).
        reorient: reorder/flip voxel axes to the closest RAS orientation (no resampling).
        series_uid: which DICOM series to read when the folder holds several (UID or number, or
            the :class:`navigator.io.dicom.DicomSeries` already listed, read without listing again).
        dicom_weighting: 'T1' or 'T2': without ``series_uid``, a folder of several series (a whole
            exam) gives its only 3-D structural series of that weighting
            (:func:`navigator.io.dicom.select_series`).

    Returns:
        Volume with affine voxel -> scanner RAS mm. ``meta`` records 'format', 'transform'
        ('sform'/'qform'/'none'/'mgh'/'itk'/'dicom'), sform/qform codes and their disagreement (mm),
        'original_axcodes', 'original_affine', 'reoriented', and DICOM series facts.

    Raises:
        InputError: missing path, not an image, corrupt/truncated, 2-D, too large, several
            volumes, NaN/inf voxels, zero/negative voxel size, unusable DICOM series.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if _is_dicom_input(path):
        vol = _dicom.read_dicom_series(path, series_uid, dicom_weighting)
        data = vol.data
        if data.ndim == 4 and not allow_4d:
            raise InputError(
                path, f"DICOM series is 4-D with {data.shape[3]} volumes; a single 3-D volume is needed"
            )
        return _finish(data, vol.affine, str(path), dict(vol.meta), reorient)
    if _itk.itk_format(path):
        data, header = _itk.read_itk_image(path)
        if data.ndim == 4 and not allow_4d:
            if data.shape[3] > 1:
                raise InputError(path, f"is 4-D with {data.shape[3]} volumes or components; a single 3-D "
                                       "volume is needed")
            data = data[..., 0]
        return _finish(data, header.affine, str(path), header.meta(), reorient)
    img = _nifti.open_image(path)
    facts = _nifti.header_facts(img, path)
    _nifti.check_loadable(facts, allow_4d)
    data = _nifti.read_data(img, facts)
    if data.ndim == 4 and not allow_4d:
        data = data[..., 0]
    return _finish(data, facts.affine, str(path), facts.meta(), reorient)


# ---------------------------------------------------------------------------- saving


def _storable(data: np.ndarray, dtype: Any, path: Path) -> np.ndarray:
    """Cast ``data`` to a NIfTI-friendly (or the requested) type without silent wrap-around."""
    if dtype is not None:
        dt = np.dtype(dtype)
        if dt.kind in "iu" and data.dtype.kind in "fc":
            if not np.all(np.isfinite(data)):
                raise InputError(path, f"cannot store non-finite values as {dt}")
            data = np.rint(data)
        if dt.kind in "iu" and data.size:
            info = np.iinfo(dt)
            lo, hi = float(np.min(data)), float(np.max(data))
            if lo < info.min or hi > info.max:
                raise InputError(path, f"values {lo:g}..{hi:g} do not fit in {dt}")
        return np.asarray(data, dtype=dt)
    if data.dtype == bool:
        return data.astype(np.uint8)
    if data.dtype.kind in "iu" and data.dtype.itemsize == 8:
        lo, hi = (int(np.min(data)), int(np.max(data))) if data.size else (0, 0)
        i32 = np.iinfo(np.int32)
        if i32.min <= lo and hi <= i32.max:
            return data.astype(np.int32)
        return data.astype(np.float64)
    if data.dtype == np.float16:
        return data.astype(np.float32)
    return data


def save_nifti(volume: Volume, path: str | Path, dtype: Any = None) -> Path:
    """Write ``volume`` to ``path`` (.nii or .nii.gz) atomically; returns the path.

    sform = affine with code 1 (scanner); qform = affine with code 1 when representable
    (no shear), otherwise qform code 0. Units mm (and s: a 4-D volume's
    ``meta['repetition_time_s']`` is stored as pixdim[4]). ``dtype`` casts the data first
    (floats are rounded when an integer type is asked for; out-of-range values raise).
    """
    path = Path(path)
    data = _storable(np.asarray(volume.data), dtype, path)
    tr = volume.meta.get("repetition_time_s") if data.ndim == 4 else None
    return _nifti.write_nifti(data, volume.affine, path, repetition_time_s=tr)


# ---------------------------------------------------------------------------- info


@dataclass
class ImageInfo:
    """What ``navigator info`` reports about an image (all lengths in mm).

    ``axcodes`` are those of the file's own voxel order (before reorientation);
    ``modality_guess`` is a heuristic guess and ``modality_reason`` says why.
    ``problems`` lists why :func:`load_image` would refuse the image (empty when loadable).
    """

    path: str
    format: str
    shape: tuple[int, ...]
    voxel_size_mm: tuple[float, float, float]
    axcodes: tuple[str, str, str]
    transform: str
    sform_code: int | None
    qform_code: int | None
    sform_qform_disagree: bool
    sform_qform_max_diff_mm: float | None
    affine: list[list[float]]
    dtype: str
    scl_slope: float
    scl_inter: float
    min: float | None
    max: float | None
    percentiles: dict[str, float]
    n_nonfinite: int
    n_unique_sampled: int | None
    modality_guess: str
    modality_reason: str
    world_bounds_mm: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    dicom: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["voxel_size_mm"] = list(self.voxel_size_mm)
        d["axcodes"] = list(self.axcodes)
        return d


def _sample(data: np.ndarray) -> np.ndarray:
    flat = data.reshape(-1)
    step = int(np.ceil(flat.size / _MAX_STAT_SAMPLES))
    return flat[::step] if step > 1 else flat


#: Words of a file name that say its contrast (the BIDS suffixes T1w, T2w, FLAIR, PDw, T2starw,
#: UNIT1 and the usual protocol names), checked in this order; None: no decision from the name.
_NAME_CONTRASTS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("flair",), "other", "FLAIR"),
    (("pdw", "pd"), "other", "proton-density weighted"),
    (("t2starw", "t2star", "swi"), "other", "T2*-weighted"),
    (("inv1", "inv2"), "other", "an MP2RAGE inversion image"),
    (("unit1", "uni"), "T1", "an MP2RAGE UNI (T1-weighted)"),
    (("t1w", "t1", "mprage", "spgr", "bravo", "tfl3d"), "T1", "T1-weighted"),
    (("t2w", "t2"), "T2", "T2-weighted"),
)


def _contrast_from_name(name: str | None) -> tuple[str, str] | None:
    """(label, reason) from the words of a file name, e.g. ``sub-01_FLAIR.nii.gz`` or
    ``IXI015-HH-1258_T1.nii.gz`` (BIDS ``inv-2`` counts as "inv2"); None when no word says."""
    if not name:
        return None
    stem = re.sub(r"(\.(nii|gz|mgz|mgh|nrrd|nhdr|mha|mhd))+$", "", name.lower())
    words = set(re.split(r"[^a-z0-9]+", stem.replace("inv-", "inv")))
    for keys, label, what in _NAME_CONTRASTS:
        hit = next((k for k in keys if k in words), None)
        if hit is not None:
            return label, f"the file name {name!r} says {what} ({hit!r})"
    return None


def guess_modality(data: np.ndarray, dicom_meta: dict[str, Any] | None = None,
                   spacing: Any = None, name: str | None = None) -> tuple[str, str, int | None]:
    """Heuristic modality guess: ('T1'|'T2'|'label map'|'probability map'|'fMRI series'|'other', reason, n_unique).

    It is a guess: label maps are recognised by few integer values, probability maps by
    values in [0, 1], series by a 4th axis; T1 vs T2 by DICOM TR/TE or description when known,
    else from the intensities (:func:`_contrast_cues`): deep inside the head (the brain core:
    white matter, deep grey matter, ventricles) the dominant tissue is white matter. In a T1 it
    is the brightest tissue there, so the core's histogram peak sits near the top of the core's
    intensity range with a long dark tail (grey matter, CSF); in a T2 white matter is the
    darkest brain tissue and CSF the brightest, so the peak sits low with a long bright tail.
    When that cue is ambiguous (a uniform core, not a real head), the core is compared with the
    brightest tissue of the image: at least half as bright in a T1 (white matter vs fat), darker
    in a T2 (white matter vs CSF).
    ``spacing`` (voxel size in mm per axis; isotropic when omitted) sets the depth scale.
    ``name`` (a file name; not for DICOM, whose series description is used) is read before the
    intensities: BIDS suffixes and protocol words (:data:`_NAME_CONTRASTS`) name contrasts the
    intensities cannot tell apart (a FLAIR and a proton-density image look T1-like to them).
    """
    if data.ndim == 4 and data.shape[3] > 1:
        t = data.shape[3]
        if t == 3 and data.dtype.kind == "f":
            return "other", "4-D with 3 components: probably a vector/deformation field", None
        if t >= 10:
            return "fMRI series", f"4-D with {t} volumes (time series)", None
        return "other", f"4-D with {t} volumes (multi-echo, diffusion or short series?)", None
    vals = _sample(data)
    vals = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals
    if vals.size == 0:
        return "other", "no finite voxels", 0
    uniq = np.unique(vals)
    n_u = int(uniq.size)
    integral = vals.dtype.kind in "iub" or bool(np.all(np.mod(uniq, 1) == 0))
    vmin, vmax = float(uniq[0]), float(uniq[-1])
    if integral:
        span = vmax - vmin + 1
        if n_u <= 2:
            return "label map", f"integer values with only {n_u} distinct values (binary mask)", n_u
        if n_u <= 64 or (n_u <= 1000 and n_u / span < 0.5):
            return "label map", f"integer values with {n_u} distinct values over {vmin:g}..{vmax:g}", n_u
    if data.dtype.kind == "f" and vmin >= 0 and vmax <= 1.0 + 1e-6 and n_u > 2:
        return "probability map", f"floating-point values all within [0, 1] ({n_u} distinct in sample)", n_u
    if dicom_meta:
        desc = str(dicom_meta.get("series_description") or "").lower()
        tr, te, ti = (dicom_meta.get(k) for k in ("repetition_time_ms", "echo_time_ms", "inversion_time_ms"))
        if "flair" in desc:
            return "other", f"DICOM series description {desc!r} says FLAIR", n_u
        for key, label in (("mprage", "T1"), ("t1", "T1"), ("spgr", "T1"), ("t2", "T2")):
            if key in desc:
                return label, f"DICOM series description {desc!r} mentions {key!r}", n_u
        if te is not None and tr is not None:
            if te >= 60 and tr >= 2000 and not ti:
                return "T2", f"DICOM long TR/TE ({tr:g}/{te:g} ms): T2-weighted", n_u
            if te <= 30 and (tr <= 1000 or (ti and ti < 1500)):
                return (
                    "T1",
                    f"DICOM short TE ({te:g} ms) with short TR ({tr:g} ms) or inversion: T1-weighted",
                    n_u,
                )
    elif (by_name := _contrast_from_name(name)) is not None:
        return by_name[0], by_name[1], n_u
    cues = _contrast_cues(data, spacing)
    if cues is None:
        return "other", "could not find a head-like foreground", n_u
    label, why = _decide_t1_t2(cues)
    return label, f"guess from intensities: {why}", n_u


@dataclass(frozen=True)
class _ContrastCues:
    """Intensity cues of a head image (see :func:`_contrast_cues`)."""

    #: (histogram peak of the core - its 2nd percentile) / (98th - 2nd percentile), 0..1
    peak_position: float
    #: (histogram peak of the core - background) / (99th percentile of the head - background)
    core_to_top: float
    #: fraction of core voxels brighter than 1.5 x the peak (CSF in a T2, vessels/fat in a T1)
    bright_tail: float
    #: fraction of core voxels darker than 0.6 x the peak (CSF in a T1)
    dark_tail: float
    #: (98th - 2nd percentile of the core) / (peak - background): small for a uniform core
    spread: float
    #: depth (mm) from which voxels count as core
    core_depth_mm: float


#: Coarse grid (mm) the cues are computed on.
_CUE_VOXEL_MM = 2.5


def _otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(values, nbins=256))


def _contrast_cues(data: np.ndarray, spacing: Any = None) -> _ContrastCues | None:
    """T1/T2 cues from a 3-D head image (None when no head-like foreground is found).

    The image is subsampled to about 2.5 mm voxels; the head is the largest component above
    half the Otsu air/tissue threshold, closed and hole-filled; depth is the Euclidean distance
    (mm) to the outside. The *core* is the voxels deeper than min(25 mm, half the maximum
    depth) and within 0.6 x the maximum depth of the deepest point - in a head the central
    brain (white matter, deep grey nuclei, ventricles), far from fat, skull, the neck and the
    field-of-view edges. The core's dominant tissue is the peak of its smoothed histogram.
    """
    from scipy import ndimage as ndi

    d = np.asarray(data)
    if d.ndim != 3 or min(d.shape) < 2:
        return None
    sp = np.ones(3) if spacing is None else np.abs(np.asarray(spacing, float)[:3])
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        sp = np.ones(3)
    step = np.maximum(1, np.round(_CUE_VOXEL_MM / sp)).astype(int)
    # keep the subsampled grid small (about 2 M voxels) whatever the voxel size
    while np.prod(np.ceil(np.array(d.shape) / step)) > 2_000_000:
        step += 1
    d = np.asarray(d[::step[0], ::step[1], ::step[2]], np.float32)
    sp_c = sp * step
    finite = np.isfinite(d)
    if finite.sum() < 1000:
        return None
    vals = d[finite]
    lo, hi = (float(v) for v in np.percentile(vals, [0.5, 99.5]))
    if hi <= lo:
        return None
    thr = lo + 0.5 * (_otsu(np.clip(vals, lo, hi)) - lo)
    fg = finite & (d > thr)
    lab, n = ndi.label(fg)
    if n == 0:
        return None
    counts = np.bincount(lab.ravel())
    counts[0] = 0
    fg = lab == int(counts.argmax())
    fg = ndi.binary_closing(fg, iterations=2) | fg
    fg = ndi.binary_fill_holes(fg)
    depth = ndi.distance_transform_edt(fg, sampling=sp_c)
    dmax = float(depth.max())
    core_depth = min(25.0, 0.5 * dmax)
    # the core: deep voxels within 0.6 x the maximum depth of the deepest point (the centre of
    # the cranium), so a deep neck, shoulders or a wide face do not count
    deep = np.argwhere(depth >= 0.9 * dmax)
    centre = deep.mean(axis=0) * sp_c
    grid = np.ogrid[tuple(slice(0, n) for n in depth.shape)]
    r2 = sum(((g * s_) - c_) ** 2 for g, s_, c_ in zip(grid, sp_c, centre))
    core = (depth >= core_depth) & (r2 <= (0.6 * dmax) ** 2) & finite
    if core.sum() < 50:
        return None
    c = d[core]
    p2, p98 = (float(v) for v in np.percentile(c, [2, 98]))
    if p98 <= p2:
        # a uniform core: the peak is its value; only the rim comparison can decide
        peak, pos = p2, 0.5
    else:
        hist, edges = np.histogram(c, bins=64, range=(p2, p98))
        hist = ndi.gaussian_filter1d(hist.astype(float), 1.5, mode="constant")
        k = int(hist.argmax())
        peak = 0.5 * float(edges[k] + edges[k + 1])
        pos = (peak - p2) / (p98 - p2)
    base = max(peak - lo, 1e-6 * max(abs(hi), 1.0))
    rel = (c - lo) / base
    top = float(np.percentile(d[fg & finite], 99))
    return _ContrastCues(
        peak_position=float(pos),
        core_to_top=float(base / max(top - lo, 1e-6 * max(abs(hi), 1.0))),
        bright_tail=float(np.mean(rel > 1.5)),
        dark_tail=float(np.mean(rel < 0.6)),
        spread=float((p98 - p2) / base),
        core_depth_mm=float(core_depth),
    )


def _decide_t1_t2(cues: _ContrastCues) -> tuple[str, str]:
    """('T1'|'T2', reason) from :class:`_ContrastCues` (see :func:`guess_modality`)."""
    facts = (f"deep-head histogram peak at {cues.peak_position:.2f} of the deep range, "
             f"{cues.dark_tail * 100:.0f} % of deep voxels much darker and {cues.bright_tail * 100:.0f} % "
             f"much brighter than the peak; peak {cues.core_to_top:.2f} x the 99th percentile of the head")
    if cues.spread >= 0.25:  # the core holds several tissues: its histogram's shape decides
        if cues.peak_position >= 0.6 and cues.dark_tail > cues.bright_tail:
            return "T1", f"the dominant deep tissue is the brightest there, as white matter is in T1 ({facts})"
        if cues.peak_position <= 0.4 and cues.bright_tail >= cues.dark_tail:
            # a proton-density image has no much-brighter tail (fluid only ~1.4 x white matter)
            # but, as a T2, white matter darkest in the deep head and nothing much darker
            return "T2", (f"the dominant deep tissue is the darkest there, as white matter is in T2 and "
                          f"proton-density images ({facts})")
    if cues.core_to_top >= 0.5:
        return "T1", f"the deep head is bright compared with the brightest tissue, as in T1 ({facts})"
    return "T2", f"the deep head is dark compared with the brightest tissue, as in T2 ({facts})"


def _stats(data: np.ndarray) -> tuple[float | None, float | None, dict[str, float], int]:
    vals = _sample(data)
    n_bad = 0
    if data.dtype.kind == "f":
        n_bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return None, None, {}, n_bad
    if data.dtype.kind == "f":
        fin = data[np.isfinite(data)] if n_bad else data
        vmin, vmax = float(np.min(fin)), float(np.max(fin))
    else:
        vmin, vmax = float(np.min(data)), float(np.max(data))
    pct = np.percentile(vals.astype(np.float64), PERCENTILES)
    return vmin, vmax, {f"p{p}": float(v) for p, v in zip(PERCENTILES, pct)}, n_bad


def image_info(path: str | Path, series_uid: str | None = None) -> ImageInfo:
    """Describe an image file or DICOM folder without changing it.

    Unreadable inputs (missing, not an image, corrupt, several DICOM series without a choice)
    raise InputError; other problems (2-D, several volumes, NaN voxels, too large) are listed
    in ``problems``. Intensity statistics use at most ~4 million sampled voxels.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file or folder")
    if _is_dicom_input(path):
        vol = _dicom.read_dicom_series(path, series_uid)
        problems = [f"4-D with {vol.data.shape[3]} volumes"] if vol.data.ndim == 4 else []
        return _array_info(path, "dicom", "dicom", vol.data, vol.affine, problems, dicom_meta=vol.meta)
    if _itk.itk_format(path):
        return _itk_image_info(path)
    img = _nifti.open_image(path)
    facts = _nifti.header_facts(img, path)
    problems = list(facts.problems)
    if len(facts.shape) == 4 and facts.shape[3] > 1:
        problems.append(f"4-D with {facts.shape[3]} volumes (loads only where a series/field is expected)")
    too_large = any("too large" in p for p in facts.problems)
    vmin = vmax = None
    pct: dict[str, float] = {}
    n_bad = 0
    n_u = None
    guess, reason = "other", "not read: image too large"
    if not too_large:
        data = _nifti.read_data(img, facts, allow_nonfinite=True)
        vmin, vmax, pct, n_bad = _stats(data)
        if n_bad:
            problems.append(f"{n_bad:,} NaN/inf voxels")
        if data.ndim >= 3 and min(data.shape[:3]) >= 2:
            guess, reason, n_u = guess_modality(data if data.ndim == 3 or data.shape[3] > 1 else data[..., 0],
                                                spacing=np.sqrt((facts.affine[:3, :3] ** 2).sum(axis=0)),
                                                name=Path(path).name)
        else:
            guess, reason = "other", "not a 3-D volume"
    aff = facts.affine
    vox = tuple(float(v) for v in np.sqrt((aff[:3, :3] ** 2).sum(axis=0)))
    try:
        codes = axcodes_of(aff)
    except Exception:  # noqa: BLE001 - degenerate affine
        codes = ("?", "?", "?")
    bounds = None
    if len(facts.shape) >= 3:
        bounds = Volume(np.zeros((1, 1, 1)), aff)
        n = np.array(facts.shape[:3]) - 1
        corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])], float)
        w = bounds.voxel_to_world(corners)
        bounds = (tuple(float(x) for x in w.min(axis=0)), tuple(float(x) for x in w.max(axis=0)))
    disagree = facts.disagreement_mm
    return ImageInfo(
        path=str(path),
        format=facts.format,
        shape=facts.shape,
        voxel_size_mm=vox,
        axcodes=codes,
        transform=facts.transform,
        sform_code=facts.sform_code,
        qform_code=facts.qform_code,
        sform_qform_disagree=bool(disagree is not None and disagree > _nifti.DISAGREE_TOL_MM),
        sform_qform_max_diff_mm=disagree,
        affine=aff.tolist(),
        dtype=str(facts.dtype),
        scl_slope=facts.scl_slope,
        scl_inter=facts.scl_inter,
        min=vmin,
        max=vmax,
        percentiles=pct,
        n_nonfinite=n_bad,
        n_unique_sampled=n_u,
        modality_guess=guess,
        modality_reason=reason,
        world_bounds_mm=bounds,
        warnings=list(facts.warnings),
        problems=problems,
    )


def _itk_image_info(path: Path) -> ImageInfo:
    """:func:`image_info` for a NRRD/MetaImage file (the header's problems, else the voxels too)."""
    header = _itk.read_header(path)
    problems = list(header.problems)
    if len(header.shape) == 4:
        problems.append(f"4-D with {header.shape[3]} volumes or components (loads only where a series is expected)")
    data = None if header.problems else _itk.read_itk_image(path, allow_nonfinite=True)[0]
    return _array_info(path, header.format, "itk", data, header.affine, problems, warnings=header.warnings,
                       shape=header.shape, dtype=header.dtype)


def _array_info(path: Path, fmt: str, transform: str, data: np.ndarray | None, affine: np.ndarray,
                problems: list[str], *, warnings: tuple[str, ...] | list[str] = (),
                dicom_meta: dict[str, Any] | None = None,
                shape: tuple[int, ...] | None = None, dtype: Any = None) -> ImageInfo:
    """:class:`ImageInfo` of an image whose voxels are in memory (DICOM, NRRD/MetaImage) or, with
    ``data`` None, unreadable for the reasons in ``problems`` (then ``shape`` and ``dtype`` come
    from the header)."""
    vmin = vmax = n_u = None
    pct: dict[str, float] = {}
    n_bad = 0
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    guess, reason = "other", "not read: " + (problems[0] if problems else "")
    if data is not None:
        vmin, vmax, pct, n_bad = _stats(data)
        if n_bad:
            problems.append(f"{n_bad:,} NaN/inf voxels")
        guess, reason, n_u = guess_modality(data, dicom_meta, spacing=spacing,
                                            name=None if dicom_meta else Path(path).name)
    shape = tuple(int(x) for x in (data.shape if data is not None else shape))
    n = np.array(shape[:3]) - 1
    corners = np.array([[i, j, k, 1.0] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])
    world = (corners @ affine.T)[:, :3]
    try:
        codes = axcodes_of(affine)
    except Exception:  # noqa: BLE001 - degenerate geometry (reported in problems)
        codes = ("?", "?", "?")
    return ImageInfo(
        path=str(path),
        format=fmt,
        shape=shape,
        voxel_size_mm=tuple(float(v) for v in spacing),
        axcodes=codes,
        transform=transform,
        sform_code=None,
        qform_code=None,
        sform_qform_disagree=False,
        sform_qform_max_diff_mm=None,
        affine=affine.tolist(),
        dtype=str(data.dtype if data is not None else dtype),
        scl_slope=1.0,
        scl_inter=0.0,
        min=vmin,
        max=vmax,
        percentiles=pct,
        n_nonfinite=n_bad,
        n_unique_sampled=n_u,
        modality_guess=guess,
        modality_reason=reason,
        world_bounds_mm=(tuple(float(x) for x in world.min(axis=0)), tuple(float(x) for x in world.max(axis=0))),
        dicom=None if dicom_meta is None else {k: v for k, v in dicom_meta.items() if k not in ("format", "transform")},
        warnings=list(warnings),
        problems=problems,
    )
