"""Segmentation quality control: metrics, normal adult ranges and a plain verdict (JSON).

Metrics (all from the final labels on the T1 grid):

* ``volumes_ml``: per tissue name; ``intracranial_volume_ml`` = WM + GM + CSF.
* ``skull_thickness_mm``: at every bone voxel touching the intracranial space in the cranial
  vault (MNI z > 0), the distance to the nearest voxel that is neither bone nor intracranial,
  i.e. the local inner-to-outer skull distance; median and 5th percentile.
* ``topology``: the checks of :mod:`navigator.segmentation.cleanup`.
* ``registration``: final Mattes MI of the affine step, affine scale factors, and the Dice
  overlap of the warped template brain mask with the segmented brain (WM + GM + enclosed CSF).
* ``face_bone_thickness_mm``: mean thickness of the bone pieces below the skull base
  (:func:`face_bone_thickness`); about one voxel when bone is speckled through muscle and fat.
* ``face_bone_speckle_ml``: bone below the skull base with soft tissue on at least 4 of its 6
  sides (:func:`face_bone_speckle_ml`): bone voxels scattered through muscle and fat.
* ``distant_csf_ml``: CSF farther than 10 mm from any brain voxel, the spinal canal and the
  cisterns around the medulla excepted, and outside the template's brain (:func:`distant_csf`).
* ``brain_cavity_ml``: the same CSF at least 3 mm inside the template's brain: a CSF-filled
  cavity where a brain should be (old infarct, resection, very large ventricles).
* ``medial_cortex``: grey-matter fraction of the GM + CSF voxels next to the midline
  (:func:`medial_gm_fraction`) and the MNI152 template's value for the same band.
* ``views``: where the QC figure cuts the head (left DLPFC target and midline, subject RAS mm,
  and the MNI axes in subject space), so the figure can be redrawn from the JSON.
* ``verdict``: ``plausible`` (bool), a one-line ``summary`` ("plausible" or "check: ...") and
  the ``findings`` behind it: every measure compared with its normal adult range
  (:data:`NORMAL_RANGES`, sources in ``docs/segmentation.md``) and every failed topology check,
  each naming the region to look at.

Figures are drawn by :mod:`navigator.segmentation.qc_figure`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from navigator.core.tissues import BONE, COMPACT_BONE, CSF, EYES, GM, SCALP, SPONGY_BONE, TISSUES, WM
from navigator.core.transforms import apply_affine
from navigator.core.volume import Volume
from navigator.segmentation.validation import skull_thickness_samples

#: The left DLPFC target the QC figure cuts through (MNI152 mm; Fox et al. 2012, the library's "fox").
DLPFC_MNI = (-38.0, 44.0, 26.0)

#: The medial band checked for cortex labelled CSF (MNI mm): |x| <= 2, -70 <= y <= 40, 30 <= z <= 70
#: (where the medial frontal and parietal cortex of both hemispheres meet at the falx, above the
#: cingulate gyrus).
MEDIAL_BAND_MNI = {"abs_x_max": 2.0, "y": (-70.0, 40.0), "z": (30.0, 70.0)}

#: A medial GM fraction below this share of the MNI152 template's value (a fifth less grey
#: matter at the midline than the population average) is reported.
MEDIAL_MIN_SHARE_OF_TEMPLATE = 0.8


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean masks (1.0 when both are empty)."""
    s = int(a.sum()) + int(b.sum())
    return 1.0 if s == 0 else 2.0 * float((a & b).sum()) / s


def skull_thickness(labels: Volume, s2m_points=None) -> tuple[float, float, int]:
    """(median, 5th percentile, number of samples) of the skull thickness in mm (see module doc).

    ``s2m_points`` maps (N, 3) subject RAS mm to MNI mm; when given only vault samples
    (MNI z > 0) are used.
    """
    lab = labels.data
    bone = np.isin(lab, (BONE, COMPACT_BONE, SPONGY_BONE))
    ic = np.isin(lab, (WM, GM, CSF))
    region = None
    if s2m_points is not None:
        inner = np.argwhere(bone & ndi.binary_dilation(ic))
        region = np.zeros(lab.shape, bool)
        if len(inner):
            mni = s2m_points(labels.voxel_to_world(inner.astype(float)))
            keep = inner[mni[:, 2] > 0]
            region[tuple(keep.T)] = True
    # centre-to-centre distance to the first non-bone, non-intracranial voxel: for a layer of
    # n voxels along the normal this is n voxel sizes, i.e. the layer's thickness
    t = skull_thickness_samples(bone, ic, labels.spacing, region)
    if t.size == 0:
        return float("nan"), float("nan"), 0
    return float(np.median(t)), float(np.percentile(t, 5)), int(t.size)


# ---------------------------------------------------------------------------- normal ranges
@dataclass(frozen=True)
class NormalRange:
    """Normal adult range of one QC measure.

    Attributes:
        key: measure name in :func:`qc_measures` (e.g. ``intracranial_volume_ml``).
        label: short human name.
        low, high: inclusive bounds (NaN-free); ``unit`` their unit.
        region: where to look in the images when the value is outside the range.
        source: where the range comes from (details in ``docs/segmentation.md``).
    """

    key: str
    label: str
    low: float
    high: float
    unit: str
    region: str
    source: str


#: Normal adult ranges (SimNIBS labels; scalp = all extracranial soft tissue above the neck cut).
NORMAL_RANGES: tuple[NormalRange, ...] = (
    NormalRange("intracranial_volume_ml", "intracranial volume", 1100, 1900, "ml",
                "inner skull boundary (all around the brain)",
                "Matsumae 1996: 1469 +- 102 ml (men), 1289 +- 111 ml (women); Ahmad: 1397 +- 133 ml"),
    NormalRange("brain_volume_ml", "brain (WM + GM)", 900, 1650, "ml", "brain outline, CSF layer",
                "Matsumae 1996: 1302 +- 112 ml (men), 1143 +- 105 ml (women)"),
    NormalRange("wm_ml", "white matter", 330, 750, "ml", "white matter / grey matter boundary",
                "brain volume and GM/WM ratio 1.1-1.5 (Miller 1980), 1.2-1.9 with cerebellar and deep "
                "grey matter"),
    NormalRange("gm_ml", "grey matter", 450, 1000, "ml", "cortex (grey matter) and the CSF layer",
                "brain volume minus white matter (as above)"),
    NormalRange("gm_wm_ratio", "GM / WM ratio", 1.0, 2.1, "", "white matter / grey matter boundary",
                "Miller 1980 (cerebrum 1.1-1.5) plus cerebellar cortex and deep grey nuclei"),
    NormalRange("csf_ml", "CSF", 100, 600, "ml", "CSF layer and ventricles",
                "Yamada 2023: 265 ml (20s) to 488 ml (over 80); Matsumae 1996: 11 % of the intracranial "
                "volume"),
    NormalRange("brain_fraction", "brain / intracranial volume", 0.65, 0.93, "",
                "cortex vs CSF (cortex labelled CSF, or CSF labelled cortex?)",
                "Ahmad: 0.89 +- 0.02 (over 40 years); Matsumae 1996: 0.886; Yamada 2023: 0.66-0.81 "
                "(with age)"),
    NormalRange("bone_ml", "skull (compact + spongy bone)", 300, 900, "ml",
                "skull: face and neck (bone speckle?) and the vault",
                "issue 20: 500-700 ml for a whole adult head; widened for head size and field of view"),
    NormalRange("skull_thickness_median_mm", "vault skull thickness (median)", 3.0, 12.0, "mm",
                "skull over the vault (inner and outer table)",
                "De Boer 2016 (1097 autopsies), Lynnerup 2005: adult vault 4-10 mm, median about 6-7 mm"),
    NormalRange("scalp_to_bone_ratio", "scalp / bone volume", 1.0, 20.0, "", "scalp and face (soft tissue "
                "labelled bone?)", "issue 20: a head has more soft tissue than bone"),
    NormalRange("eyes_ml", "eyes (both)", 8, 20, "ml", "orbits",
                "an adult eye ball is about 6.5-7.5 ml (axial length ~24 mm)"),
    NormalRange("distant_csf_ml", "CSF more than 10 mm from brain", 0.0, 5.0, "ml",
                "face and neck (soft tissue labelled CSF?)",
                "anatomy: subarachnoid CSF lies within a few mm of the cortex, ventricles and cisterns are "
                "surrounded by brain; the spinal canal and the cisterns around the medulla are left out "
                "(the cord below the atlas is not labelled brain; Colin27 with and without: 4.7 / 1.6 ml)"),
    NormalRange("brain_cavity_ml", "CSF cavity where the brain should be", 0.0, 5.0, "ml",
                "brain: a CSF-filled cavity (old infarct, resection, very large ventricles?)",
                "anatomy: no CSF space of a normal brain lies more than 10 mm from brain tissue (Colin27 "
                "0.03 ml, 3 mm or more inside the template's brain); a chronic infarct or a resection is "
                "a CSF-filled cavity, which the head model treats as CSF: correct, but worth a look"),
    NormalRange("face_bone_speckle_ml", "face/neck bone speckle", 0.0, 10.0, "ml",
                "face and neck (bone speckle in soft tissue?)",
                "bone voxels below the skull base with soft tissue on at least 4 of 6 sides: plates and "
                "thin walls have almost none (Colin27 reference 1.4 ml, phantom truth 0.8 ml), bone "
                "speckled through muscle and fat a lot (3 % of the phantom's face speckled: 30 ml). The mean "
                "thickness of the face bone, the earlier check, also falls for genuine thin walls "
                "(sinus walls, orbital floor: 4.4 mm on the phantom)"),
)

#: The face/neck region of :func:`face_bone_thickness`: more than this far (mm) below the
#: intracranial centroid along the head's superior axis (below the skull base and orbits).
FACE_BELOW_CENTROID_MM = 20.0


@dataclass
class QcFinding:
    """One QC check: a measure against its range, or a topology check.

    ``ok`` is None when the value could not be measured (reported, not failed).
    """

    check: str
    ok: bool | None
    value: float | None
    expected: str
    region: str
    message: str


@dataclass
class QcVerdict:
    """The plain verdict: plausible, or which regions to check (and why)."""

    plausible: bool
    summary: str
    findings: list[QcFinding] = field(default_factory=list)

    @property
    def problems(self) -> list[QcFinding]:
        """Findings that failed."""
        return [f for f in self.findings if f.ok is False]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN values become None)."""
        d = asdict(self)
        for f in d["findings"]:
            if isinstance(f["value"], float) and not np.isfinite(f["value"]):
                f["value"] = None
        return d


_TOPOLOGY_CHECKS = {
    "csf_separates_brain": ("CSF layer",
                            "brain touches skull or scalp: check the cortex surface for a missing CSF layer"),
    "skull_closed": ("skull", "the skull is open: check the vault for holes"),
    "scalp_closed": ("scalp", "outside air touches bone or eyes: check the scalp and face"),
    "no_islands": ("islands", "detached islands of tissue remain: check the face and neck for speckle"),
    "neck_cut_consistent": ("neck cut", "tissue below the neck cut: check the neck"),
}


def _fmt(x: float, unit: str) -> str:
    if unit == "ml":
        return f"{x:.0f} ml"
    if unit == "mm":
        return f"{x:.1f} mm"
    return f"{x:.2f}"


def face_bone_thickness(labels: np.ndarray, affine: np.ndarray, up: np.ndarray | None = None) -> float | None:
    """Mean thickness (mm) of the bone pieces in the face and neck: 2 x bone volume / area of the
    bone-soft tissue interface (6-neighbour faces between bone 4/7/8 and scalp/eyes 5/6), over
    the voxels more than :data:`FACE_BELOW_CENTROID_MM` below the intracranial centroid along
    ``up`` (the head's superior axis, unit vector in world RAS; world +z if None). For a plate of
    thickness t embedded in soft tissue this is t; bone speckle (isolated voxels in muscle and
    fat) makes it about one voxel. None when the region holds no bone in contact with soft tissue.
    """
    from navigator.segmentation.validation import world_superior

    lab = np.asarray(labels)
    ic = np.isin(lab, (WM, GM, CSF))
    if not ic.any():
        return None
    a = np.asarray(affine, float)
    u = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, float) / np.linalg.norm(up)
    zc = float(u @ (a[:3, :3] @ np.argwhere(ic).mean(axis=0) + a[:3, 3]))
    region = world_superior(lab.shape, a, u) < zc - FACE_BELOW_CENTROID_MM
    bone = np.isin(lab, (BONE, COMPACT_BONE, SPONGY_BONE)) & region
    soft = np.isin(lab, (SCALP, EYES)) & region
    sp = np.sqrt((a[:3, :3] ** 2).sum(axis=0))
    area = 0.0
    for ax in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[ax] = slice(0, -1)
        hi[ax] = slice(1, None)
        faces = (np.count_nonzero(bone[tuple(lo)] & soft[tuple(hi)])
                 + np.count_nonzero(soft[tuple(lo)] & bone[tuple(hi)]))
        area += faces * float(np.prod(np.delete(sp, ax)))
    if area <= 0:
        return None
    return 2.0 * float(bone.sum()) * float(np.prod(sp)) / area


def face_bone_speckle_ml(labels: np.ndarray, affine: np.ndarray, up: np.ndarray | None = None) -> float:
    """Volume (ml) of the bone voxels (4/7/8) in the face and neck (the region of
    :func:`face_bone_thickness`) with soft tissue (scalp/eyes 5/6) on at least 4 of their 6
    sides: about zero for plates and walls of any thickness, most of the bone when it is
    scattered through muscle and fat."""
    from navigator.segmentation.validation import world_superior

    lab = np.asarray(labels)
    ic = np.isin(lab, (WM, GM, CSF))
    if not ic.any():
        return 0.0
    a = np.asarray(affine, float)
    u = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, float) / np.linalg.norm(up)
    zc = float(u @ (a[:3, :3] @ np.argwhere(ic).mean(axis=0) + a[:3, 3]))
    bone = np.isin(lab, (BONE, COMPACT_BONE, SPONGY_BONE)) & (world_superior(lab.shape, a, u) < zc - FACE_BELOW_CENTROID_MM)
    kernel = ndi.generate_binary_structure(3, 1).astype(np.int8)
    kernel[1, 1, 1] = 0
    soft_sides = ndi.convolve(np.isin(lab, (SCALP, EYES)).astype(np.int8), kernel, mode="constant")
    return float(np.count_nonzero(bone & (soft_sides >= 4))) * abs(float(np.linalg.det(a[:3, :3]))) / 1000.0


#: The spinal canal and the cisterns around the medulla in MNI152 mm (|x|, y range, z below):
#: CSF there is far from any brain voxel because the cord below the atlas is not labelled
#: brain, so :func:`distant_csf_ml` does not count it.
SPINAL_CANAL_MNI = {"half_width_x": 15.0, "y_min": -70.0, "y_max": -10.0, "z_max": -45.0}


def in_spinal_canal(mni: np.ndarray) -> np.ndarray:
    """Bool per point (N, 3) MNI152 mm: inside :data:`SPINAL_CANAL_MNI`."""
    c = SPINAL_CANAL_MNI
    mni = np.asarray(mni, float).reshape(-1, 3)
    return ((np.abs(mni[:, 0]) <= c["half_width_x"]) & (mni[:, 1] >= c["y_min"]) & (mni[:, 1] <= c["y_max"])
            & (mni[:, 2] <= c["z_max"]))


#: Depth (mm) inside the MNI152 template's brain mask from which distant CSF counts as a cavity
#: where the brain should be (:func:`distant_csf`); the mask's own edge is left out, since a
#: registration's error there is of this order.
BRAIN_PLACE_DEPTH_MM = 3.0


@dataclass
class DistantCsf:
    """CSF farther than the distance from any WM or GM voxel (ml), by where it lies."""

    outside_ml: float  #: where no CSF space can be (face, neck), the spinal canal left out
    brain_place_ml: float | None  #: where the template has brain: a cavity (None: not measured)


def distant_csf(labels: np.ndarray, spacing: np.ndarray, distance_mm: float = 10.0,
                affine: np.ndarray | None = None, subject_to_mni: Any = None,
                in_brain_place: Any = None) -> DistantCsf:
    """CSF voxels farther than ``distance_mm`` from any WM or GM voxel (Euclidean, anisotropic
    ``spacing`` in mm honoured), in ml.

    With ``affine`` (voxel -> subject mm) and ``subject_to_mni`` (callable, (N, 3) subject mm
    -> MNI152 mm), CSF in the spinal canal and the cisterns around the medulla
    (:data:`SPINAL_CANAL_MNI`) is not counted: it is real CSF whose cord is not labelled brain.
    With ``in_brain_place`` too (callable, (N, 3) MNI mm -> bool: where the template has brain,
    :func:`template_brain_place`), distant CSF there is a CSF-filled cavity where a brain should
    be (an old infarct, a resection, very large ventricles): counted apart as
    ``brain_place_ml``, since it is not soft tissue mislabelled as CSF.
    """
    lab = np.asarray(labels)
    csf = lab == CSF
    sp = np.asarray(spacing, float)
    vox_ml = float(np.prod(sp)) / 1000.0
    with_mni = affine is not None and subject_to_mni is not None
    if not csf.any():
        return DistantCsf(0.0, 0.0 if with_mni and in_brain_place is not None else None)
    dist = ndi.distance_transform_edt(~np.isin(lab, (WM, GM)), sampling=sp)
    far = np.argwhere(csf & (dist > distance_mm))
    cavity = None
    if with_mni:
        mni = subject_to_mni(apply_affine(np.asarray(affine, float), far.astype(float))) if len(far) \
            else np.zeros((0, 3))
        keep = ~in_spinal_canal(mni)
        if in_brain_place is not None:
            inside = np.asarray(in_brain_place(mni), bool) if len(mni) else np.zeros(0, bool)
            cavity = float((keep & inside).sum()) * vox_ml
            keep &= ~inside
        far = far[keep]
    return DistantCsf(float(len(far)) * vox_ml, cavity)


def distant_csf_ml(labels: np.ndarray, spacing: np.ndarray, distance_mm: float = 10.0,
                   affine: np.ndarray | None = None, subject_to_mni: Any = None) -> float:
    """Volume (ml) of CSF voxels farther than ``distance_mm`` from any WM or GM voxel: CSF where
    no CSF space can be (face, neck); the spinal canal is left out given the registration
    (:func:`distant_csf`)."""
    return distant_csf(labels, spacing, distance_mm, affine, subject_to_mni).outside_ml


def template_brain_place(tm: Any, depth_mm: float = BRAIN_PLACE_DEPTH_MM) -> Any:
    """Callable (N, 3) MNI152 mm -> bool: at least ``depth_mm`` inside the template's brain mask
    (``tm``: :class:`navigator.segmentation.templates.MniTemplates`, 1 mm grid)."""
    sp = np.sqrt((np.asarray(tm.affine, float)[:3, :3] ** 2).sum(axis=0))
    deep = ndi.distance_transform_edt(tm.brain, sampling=sp) > depth_mm
    to_vox = np.linalg.inv(np.asarray(tm.affine, float))

    def inside(mni: np.ndarray) -> np.ndarray:
        v = np.rint(apply_affine(to_vox, np.asarray(mni, float).reshape(-1, 3))).astype(int)
        ok = np.all((v >= 0) & (v < np.asarray(deep.shape)), axis=1)
        out = np.zeros(len(v), bool)
        out[ok] = deep[tuple(v[ok].T)]
        return out

    return inside


#: Radius (mm) around each eye centre that must lie inside the image for the eye volume to be
#: judged (an adult globe is ~24 mm across).
ORBIT_RADIUS_MM = 12.0


#: An orbit is zero-filled (its face removed by defacing) when more than this fraction of its
#: ball holds exactly the image's lowest value. A real orbit (eye, fat, muscle) has signal.
ZERO_FILLED_ORBIT = 0.5


def orbits_in_view(shape: tuple[int, int, int], affine: np.ndarray, mni_to_subject: Any) -> bool:
    """True when both orbits (balls of :data:`ORBIT_RADIUS_MM` around the MNI152 eye centres,
    mapped into the subject with ``mni_to_subject``: (N, 3) MNI mm -> subject mm) lie inside the
    image grid (``shape``, ``affine`` voxel -> subject mm)."""
    from navigator.segmentation.classify import EYE_CENTRES_MNI

    a = np.asarray(affine, float)
    centres = np.asarray(mni_to_subject(EYE_CENTRES_MNI), float)
    sp = np.sqrt((a[:3, :3] ** 2).sum(axis=0))
    vox = apply_affine(np.linalg.inv(a), centres)
    margin = ORBIT_RADIUS_MM / sp
    hi = np.asarray(shape, float) - 1.0
    return bool(((vox - margin >= 0.0) & (vox + margin <= hi)).all())


def orbits_zero_filled(image: np.ndarray, affine: np.ndarray, mni_to_subject: Any) -> bool:
    """True when an orbit inside the image holds no signal: more than :data:`ZERO_FILLED_ORBIT`
    of its ball (:data:`ORBIT_RADIUS_MM` around the MNI152 eye centre) is exactly the image's
    lowest value, as when defacing tools (pydeface, mri_deface, fsl_deface) zero the face.

    ``image``: the T1 as loaded (not normalised), ``affine`` voxel -> subject mm."""
    from navigator.segmentation.classify import EYE_CENTRES_MNI

    a = np.asarray(affine, float)
    floor = image.min()
    centres = apply_affine(np.linalg.inv(a), np.asarray(mni_to_subject(EYE_CENTRES_MNI), float))
    sp = np.sqrt((a[:3, :3] ** 2).sum(axis=0))
    reach = np.ceil(ORBIT_RADIUS_MM / sp).astype(int)
    for c in centres:
        lo = np.maximum(np.round(c).astype(int) - reach, 0)
        hi = np.minimum(np.round(c).astype(int) + reach + 1, image.shape)
        if np.any(hi <= lo):
            continue  # this orbit is outside the image (orbits_in_view handles it)
        idx = np.stack(np.meshgrid(*(np.arange(l_, h_) for l_, h_ in zip(lo, hi)), indexing="ij"), -1)
        ball = np.linalg.norm((idx - c) * sp, axis=-1) <= ORBIT_RADIUS_MM
        box = image[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        if ball.any() and float(np.mean(box[ball] == floor)) > ZERO_FILLED_ORBIT:
            return True
    return False


def qc_measures(volumes_by_tag: dict[int, float], thickness_median_mm: float | None,
                face_bone_speckle: float | None = None,
                distant_csf: float | None = None, orbits_in_view: bool = True,
                brain_cavity: float | None = None) -> dict[str, float]:
    """The measures :data:`NORMAL_RANGES` refer to, from tissue volumes (ml, by SimNIBS tag), the
    median vault skull thickness (mm), the face/neck bone speckle (ml,
    :func:`face_bone_speckle_ml`), the distant CSF outside the brain's place and inside it (ml,
    :func:`distant_csf`; None: not measured). Ratios with a
    zero denominator and missing values are NaN; so is the eye volume when the orbits are not
    both inside the image (``orbits_in_view`` False, :func:`orbits_in_view`)."""
    v = {t: float(volumes_by_tag.get(t, 0.0)) for t in range(1, 11)}
    icv = v[WM] + v[GM] + v[CSF]
    bone = v[BONE] + v[COMPACT_BONE] + v[SPONGY_BONE]
    nan = float("nan")
    return {
        "intracranial_volume_ml": icv,
        "brain_volume_ml": v[WM] + v[GM],
        "wm_ml": v[WM],
        "gm_ml": v[GM],
        "gm_wm_ratio": v[GM] / v[WM] if v[WM] > 0 else nan,
        "csf_ml": v[CSF],
        "brain_fraction": (v[WM] + v[GM]) / icv if icv > 0 else nan,
        "bone_ml": bone,
        "skull_thickness_median_mm": nan if thickness_median_mm is None else float(thickness_median_mm),
        "scalp_to_bone_ratio": v[SCALP] / bone if bone > 0 else nan,
        "eyes_ml": v[EYES] if orbits_in_view else nan,
        "face_bone_speckle_ml": nan if face_bone_speckle is None else float(face_bone_speckle),
        "distant_csf_ml": nan if distant_csf is None else float(distant_csf),
        "brain_cavity_ml": nan if brain_cavity is None else float(brain_cavity),
    }


def assess(measures: dict[str, float], topology: dict[str, Any] | None = None,
           medial: dict[str, Any] | None = None,
           ranges: tuple[NormalRange, ...] = NORMAL_RANGES) -> QcVerdict:
    """The verdict: every measure against its normal range, the topology checks and the medial
    cortex check (``medial``: the ``medial_cortex`` metrics entry).

    A measure that is missing or NaN is reported as "not measured" and does not fail (eyes
    when the image ends before the orbits: :func:`qc_measures` ``orbits_in_view``).
    """
    findings: list[QcFinding] = []
    for r in ranges:
        x = measures.get(r.key)
        expected = f"{r.low:g}-{r.high:g}" + (f" {r.unit}" if r.unit else "")
        if x is None or not np.isfinite(x):
            findings.append(QcFinding(r.label, None, None, expected, r.region, f"{r.label}: not measured"))
            continue
        ok = r.low <= x <= r.high
        side = "" if ok else (" (below)" if x < r.low else " (above)")
        findings.append(QcFinding(r.label, ok, float(x), expected, r.region,
                                  f"{r.label} {_fmt(x, r.unit)}{side}, normal {expected}"))
    for key, (label, why) in _TOPOLOGY_CHECKS.items():
        if topology is None or key not in topology:
            continue
        ok = bool(topology[key])
        msg = f"topology: {label} ok" if ok else f"topology: {why}"
        if key == "no_islands" and not ok:
            isl = {TISSUES[int(t)].name: n for t, n in (topology.get("islands") or {}).items() if n}
            if isl:
                msg += " (" + ", ".join(f"{n} {name}" for name, n in isl.items()) + ")"
        findings.append(QcFinding(f"topology {label}", ok, None, "passes", label, msg))
    if medial and medial.get("gm_fraction") is not None:
        x = float(medial["gm_fraction"])
        tmpl = float(medial.get("template_gm_fraction") or 0.0)
        lo = MEDIAL_MIN_SHARE_OF_TEMPLATE * tmpl
        ok = x >= lo
        findings.append(QcFinding(
            "medial cortex", ok, x, f">= {lo:.2f}", "medial cortex along the midline (medial-surface view)",
            f"medial cortex: {x:.2f} of the GM + CSF next to the midline is grey matter"
            + ("" if ok else f" (template {tmpl:.2f}): cortex labelled CSF?")))
    bad = [f for f in findings if f.ok is False]
    if not bad:
        return QcVerdict(True, "plausible", findings)
    regions: list[str] = []
    for f in bad:
        if f.region not in regions:
            regions.append(f.region)
    return QcVerdict(False, "check: " + "; ".join(regions), findings)


def _in_band(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Boolean mask of MNI coordinates inside :data:`MEDIAL_BAND_MNI`."""
    b = MEDIAL_BAND_MNI
    return ((np.abs(x) <= b["abs_x_max"]) & (y >= b["y"][0]) & (y <= b["y"][1])
            & (z >= b["z"][0]) & (z <= b["z"][1]))


def medial_gm_fraction(labels: np.ndarray, mni_coords: np.ndarray) -> tuple[float | None, int]:
    """(GM / (GM + CSF), number of GM + CSF voxels) in :data:`MEDIAL_BAND_MNI`.

    ``labels`` are SimNIBS labels, ``mni_coords`` the (..., 3) MNI mm of every voxel (same grid).
    A healthy medial cortex is mostly grey matter there; a segmentation that labels the medial
    cortex CSF gives a low fraction. None when the band holds no GM or CSF.
    """
    x, y, z = (mni_coords[..., k] for k in range(3))
    band = _in_band(x, y, z)
    lab = labels[band]
    n_gm = int(np.count_nonzero(lab == GM))
    n = n_gm + int(np.count_nonzero(lab == CSF))
    return (n_gm / n if n else None), n


def medial_band_box(labels: Volume, mni_to_subject) -> tuple[slice, slice, slice]:
    """Voxel box of ``labels`` holding :data:`MEDIAL_BAND_MNI` (+ 5 mm), from the subject
    positions of the band's corners (``mni_to_subject``: (N, 3) MNI mm -> subject RAS mm)."""
    b = MEDIAL_BAND_MNI
    m = 5.0
    corners = np.array([[x, y, z] for x in (-b["abs_x_max"] - m, b["abs_x_max"] + m)
                        for y in (b["y"][0] - m, b["y"][1] + m) for z in (b["z"][0] - m, b["z"][1] + m)])
    ijk = labels.world_to_voxel(mni_to_subject(corners))
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int), 0, None)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, labels.shape)
    hi = np.maximum(hi, lo)
    return tuple(slice(int(a_), int(b_)) for a_, b_ in zip(lo, hi))  # type: ignore[return-value]


def template_medial_gm_fraction(tm) -> float:
    """GM / (GM + CSF) of the MNI152 template priors in :data:`MEDIAL_BAND_MNI`."""
    b = MEDIAL_BAND_MNI
    # only the voxels of the band's bounding box (the template grid is axis-aligned with MNI)
    inv = np.linalg.inv(tm.affine)
    corners = np.array([[sx * b["abs_x_max"], y, z] for sx in (-1, 1) for y in b["y"] for z in b["z"]])
    ijk = corners @ inv[:3, :3].T + inv[:3, 3]
    lo = np.clip(np.floor(ijk.min(axis=0)).astype(int) - 1, 0, None)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 2, tm.gm.shape)
    box = tuple(slice(int(a_), int(b_)) for a_, b_ in zip(lo, hi))
    axes = [np.arange(a_, b_) for a_, b_ in zip(lo, hi)]
    idx = np.stack(np.meshgrid(*axes, indexing="ij"), -1).astype(float)
    mni = idx @ tm.affine[:3, :3].T + tm.affine[:3, 3]
    x, y, z = (mni[..., k] for k in range(3))
    band = _in_band(x, y, z)
    gm = float(tm.gm[box][band].sum())
    csf = float(tm.csf[box][band].sum())
    return gm / (gm + csf) if gm + csf > 0 else float("nan")


def qc_views(reg, labels: Volume) -> dict[str, Any]:
    """Where the QC figure cuts the head (subject RAS mm): the left DLPFC target (MNI
    :data:`DLPFC_MNI` through the registration), a point on the midline (the subject position of
    MNI (0, -18, 20)), and ``mni_axes_subject``: rows are the MNI x, y, z directions in subject
    space (rotation part of the affine registration, scaling removed)."""
    target = reg.mni_to_subject(np.array([DLPFC_MNI]))[0]
    mid = reg.mni_to_subject(np.array([[0.0, -18.0, 20.0]]))[0]
    u, _, vt = np.linalg.svd(reg.affine_s2m[:3, :3])
    rot = u @ vt  # subject direction -> MNI direction; rows = MNI axes in subject space
    return {"dlpfc_target": {"name": "left DLPFC (Fox 2012)", "mni": list(DLPFC_MNI),
                             "subject_ras_mm": [round(float(c), 2) for c in target]},
            "midline_point_subject_ras_mm": [round(float(c), 2) for c in mid],
            "mni_axes_subject": [[round(float(c), 5) for c in row] for row in rot]}


def segmentation_metrics(labels: Volume, reg, topo, tissue_means: Any, tm, mi: float,
                         t1: np.ndarray | None = None) -> dict[str, Any]:
    """JSON-ready metrics dictionary (see module docstring).

    ``t1``: the T1 as loaded, on the labels' grid; with it, zero-filled (defaced) orbits are not
    judged for their eyes (:func:`orbits_zero_filled`).

    ``tissue_means``: (classes, channels) fitted means with WM, GM, CSF first (normalised T1 in
    channel 0), or an object holding them as ``.means`` (the brain mixture's result).

    The dictionary is also recorded in ``labels.meta["qc"]``, where :func:`save_montage` finds it.
    """
    means = np.atleast_2d(np.asarray(getattr(tissue_means, "means", tissue_means), float))
    lab = labels.data
    vox_ml = float(np.prod(labels.spacing)) / 1000.0
    counts = np.bincount(lab.ravel(), minlength=11)
    volumes = {TISSUES[t].name: round(float(counts[t]) * vox_ml, 2) for t in TISSUES if t < len(counts)
               and counts[t] > 0}
    icv = float(counts[WM] + counts[GM] + counts[CSF]) * vox_ml
    med, p5, n = skull_thickness(labels, reg.subject_to_mni)
    # registration overlap: warped template brain vs segmented brain (filled)
    from navigator.segmentation.register import warp_template_to_subject

    step = 2
    sub = lab[::step, ::step, ::step]
    aff = labels.affine.copy()
    aff[:3, :3] *= step
    coords = reg.subject_grid_to_mni(aff, sub.shape)
    tb = warp_template_to_subject(tm.brain.astype(np.float32), tm.affine, coords) > 0.5
    sb = ndi.binary_fill_holes((sub == WM) | (sub == GM))
    scales = np.linalg.svd(reg.affine_s2m[:3, :3], compute_uv=False)
    # the medial band at full resolution (it is a few mm wide): MNI coordinates of its box only
    box = medial_band_box(labels, reg.mni_to_subject)
    box_aff = labels.affine.copy()
    box_aff[:3, 3] = labels.voxel_to_world(np.array([[s_.start for s_ in box]], float))[0]
    box_shape = tuple(s_.stop - s_.start for s_ in box)
    if min(box_shape) > 0:
        frac, n_med = medial_gm_fraction(lab[box], reg.subject_grid_to_mni(box_aff, box_shape))
    else:
        frac, n_med = None, 0
    medial = {"gm_fraction": None if frac is None else round(frac, 3), "voxels": n_med,
              "template_gm_fraction": round(template_medial_gm_fraction(tm), 3),
              "band_mni": "|x| <= 2, -70 <= y <= 40, 30 <= z <= 70 mm"}
    topo_json = topo.to_json()
    by_tag = {t: float(counts[t]) * vox_ml for t in range(min(len(counts), 11))}
    from navigator.segmentation.validation import head_superior_axis

    up = head_superior_axis(reg.affine_s2m)
    face_t = face_bone_thickness(lab, labels.affine, up)
    speckle = face_bone_speckle_ml(lab, labels.affine, up)
    far_csf = distant_csf(lab, labels.spacing, affine=labels.affine, subject_to_mni=reg.subject_to_mni,
                          in_brain_place=template_brain_place(tm))
    eyes_seen = orbits_in_view(lab.shape, labels.affine, reg.mni_to_subject)
    face_removed = t1 is not None and orbits_zero_filled(t1, labels.affine, reg.mni_to_subject)
    eyes_seen = eyes_seen and not face_removed
    verdict = assess(qc_measures(by_tag, med if n else None, speckle, far_csf.outside_ml, eyes_seen,
                                 far_csf.brain_place_ml), topo_json, medial)
    result = {
        "volumes_ml": volumes,
        "intracranial_volume_ml": round(icv, 1),
        "brain_volume_ml": round(float(counts[WM] + counts[GM]) * vox_ml, 1),
        "skull_thickness_mm": {"median": round(med, 2), "p5": round(p5, 2), "samples": n,
                               "region": "cranial vault (MNI z > 0)"},
        "topology": topo_json,
        "registration": {
            "affine_mattes_mi": round(float(mi), 4),
            "affine_scales": [round(float(s), 3) for s in scales],
            "template_brain_dice": round(dice(tb, sb), 3),
            "nonlinear_max_displacement_mm": round(float(np.abs(reg.disp).max()), 2) if reg.disp is not None
            else 0.0,
        },
        "tissue_means_t1": {"wm": round(float(means[0, 0]), 3), "gm": round(float(means[1, 0]), 3),
                            "csf": round(float(means[2, 0]), 3)},
        "voxel_size_mm": [round(float(s), 3) for s in labels.spacing],
        "medial_cortex": medial,
        "face_bone_thickness_mm": None if face_t is None else round(face_t, 2),
        "face_bone_speckle_ml": round(speckle, 2),
        "distant_csf_ml": round(far_csf.outside_ml, 2),
        "brain_cavity_ml": round(far_csf.brain_place_ml, 2),
        "orbits_in_view": eyes_seen,
        "orbits_zero_filled": face_removed,
        "views": qc_views(reg, labels),
        "verdict": verdict.to_json(),
    }
    # the QC figure drawn later from these labels (save_montage) shows this verdict and these views
    labels.meta["qc"] = result
    return result


def labels_verdict(labels: Volume) -> QcVerdict:
    """The verdict from a label image alone (volumes and whole-skull thickness; no topology,
    registration or medial check), for label maps made elsewhere."""
    vox_ml = float(np.prod(labels.spacing)) / 1000.0
    counts = np.bincount(np.asarray(labels.data, np.int64).ravel(), minlength=11)
    med, _, n = skull_thickness(labels)
    lab = np.asarray(labels.data)
    return assess(qc_measures({t: float(counts[t]) * vox_ml for t in range(11)}, med if n else None,
                              face_bone_speckle_ml(lab, labels.affine), distant_csf_ml(lab, labels.spacing)))


def verdict_lines(qc: dict[str, Any]) -> list[str]:
    """Plain-text lines for a terminal from a QC JSON dictionary: the verdict, then one line per
    failed check (empty when the JSON predates the verdict)."""
    v = qc.get("verdict")
    if not v:
        return []
    lines = [f"segmentation QC verdict: {v['summary']}"]
    lines += [f"  - {f['message']}" for f in v.get("findings", []) if f.get("ok") is False]
    return lines


def save_montage(t1: Volume, labels: Volume, path: str | Path, title: str = "",
                 metrics: dict[str, Any] | None = None, dpi: int = 80) -> Path:
    """The QC figure (PNG); see :func:`navigator.segmentation.qc_figure.save_qc_report`.

    ``metrics`` defaults to the ones :func:`segmentation_metrics` recorded in ``labels.meta["qc"]``;
    without a verdict there, the verdict of the labels alone (:func:`labels_verdict`) is shown.
    """
    from navigator.segmentation.qc_figure import save_qc_report

    if metrics is None:
        metrics = labels.meta.get("qc")
    if not (metrics or {}).get("verdict"):
        metrics = {**(metrics or {}), "verdict": labels_verdict(labels).to_json()}
    return save_qc_report(t1, labels, path, title=title, metrics=metrics, dpi=dpi)
