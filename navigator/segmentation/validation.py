"""Scoring a head segmentation against an independent reference label image.

Pure numpy/scipy: label arrays and 4x4 voxel -> world RAS (mm) affines in, dataclasses out.
The command-line front end is ``benchmarks/validate_segmentation.py``; the method is documented
in ``docs/segmentation.md`` (section "Validation against a reference").

Both label images are first mapped to common classes through a :class:`LabelMapping`
(class 0 = background/air, never scored). Then, on our grid (the reference resampled onto it by
nearest neighbour when the grids differ):

* Dice and volume (ml) per class;
* the intracranial volume (ICV, the union of the mapping's intracranial classes), its relative
  difference ``(ours - reference) / reference`` and the Dice of the two intracranial masks;
* the **cranial vault**: voxels lying more than ``vault_offset_mm`` (default
  :data:`VAULT_OFFSET_MM`) above the centroid of the *reference* intracranial mask along the
  head's superior axis ``up`` (a unit vector in world RAS: the normal of the MNI axial planes
  from a subject -> MNI affine, :func:`head_superior_axis`, or world +z when no registration is
  given). The intracranial centroid sits near the level of the thalamus, about 3-4 cm above the
  orbital roofs and 5 cm above the ear canals, so the region excludes the skull base, orbits,
  face, sinuses and mastoids and keeps the calvaria (frontal, parietal, occipital squama and the
  upper temporal squama). The same region (from the reference) is used for both label images;
* vault skull Dice: Dice of the bone class restricted to the vault;
* vault skull thickness (:func:`skull_thickness_samples`), measured identically on both images.

Units: volumes in ml, distances in mm, world coordinates in the images' scanner RAS (mm).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
from scipy import ndimage as ndi

#: Height (mm) of the vault plane above the reference intracranial centroid (world superior axis).
VAULT_OFFSET_MM = 10.0


# ---------------------------------------------------------------------------- label mappings
@dataclass(frozen=True)
class LabelMapping:
    """How two label conventions map to common classes.

    Attributes:
        name: short name (``charm5`` for the built-in one).
        classes: common class id -> name (id 0 is background and must not be listed).
        ours: our label value -> common class id (0 = background).
        reference: reference label value -> common class id.
        intracranial: common class ids whose union is the intracranial space (e.g. WM, GM, CSF).
        bone: common class id of the skull (None when the reference has no skull).
    """

    name: str
    classes: dict[int, str]
    ours: dict[int, int]
    reference: dict[int, int]
    intracranial: tuple[int, ...]
    bone: int | None

    def __post_init__(self) -> None:
        if 0 in self.classes:
            raise ValueError("mapping: class 0 is background; list only the scored classes")
        known = set(self.classes) | {0}
        for side in ("ours", "reference"):
            bad = {k: v for k, v in getattr(self, side).items() if v not in known}
            if bad:
                raise ValueError(f"mapping {side!r}: labels {sorted(bad)} map to undefined classes "
                                 f"{sorted(set(bad.values()))}")
        if not self.intracranial or any(c not in self.classes for c in self.intracranial):
            raise ValueError(f"mapping: intracranial classes {list(self.intracranial)} must be non-empty "
                             "and defined in 'classes'")
        if self.bone is not None and self.bone not in self.classes:
            raise ValueError(f"mapping: bone class {self.bone} is not defined in 'classes'")


#: Our SimNIBS labels and the SimNIBS-charm 5-tissue convention (e.g. Colin27's
#: ``tissues_charm_convention.nii.gz``: 0 air, 1 WM, 2 GM, 3 CSF, 4 bone, 5 scalp = all
#: extracranial soft tissue including the eyes).
CHARM5 = LabelMapping(
    name="charm5",
    classes={1: "WM", 2: "GM", 3: "CSF", 4: "bone", 5: "scalp"},
    # SimNIBS: 1 WM, 2 GM, 3 CSF, 4 bone, 5 scalp, 6 eyes, 7 compact bone, 8 spongy bone
    ours={0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 5, 7: 4, 8: 4},
    reference={0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5},
    intracranial=(1, 2, 3),
    bone=4,
)

#: Our labels and a full SimNIBS label image (a SimNIBS/charm ``final_tissues.nii.gz``, navigator's
#: own labels, the phantom's ground truth): bone = 4 + 7 + 8; scalp = 5 + eyes 6 + muscle 10;
#: blood 9 counts as CSF (charm's blood class is mostly the intracranial venous sinuses).
SIMNIBS = LabelMapping(
    name="simnibs",
    classes={1: "WM", 2: "GM", 3: "CSF", 4: "bone", 5: "scalp"},
    ours={0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 5, 7: 4, 8: 4},
    reference={0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 5, 7: 4, 8: 4, 9: 3, 10: 5},
    intracranial=(1, 2, 3),
    bone=4,
)

BUILTIN_MAPPINGS: dict[str, LabelMapping] = {m.name: m for m in (CHARM5, SIMNIBS)}


def mapping_from_dict(d: Mapping[str, Any], name: str = "custom") -> LabelMapping:
    """A :class:`LabelMapping` from a parsed JSON/TOML document.

    Expected keys (label values as strings or integers)::

        classes      = {"1": "WM", "2": "GM", "3": "CSF", "4": "bone", "5": "scalp"}
        ours         = {"0": 0, "1": 1, "2": 2, "3": 3, "5": 5, "6": 5, "7": 4, "8": 4}
        reference    = {"0": 0, "1": 1, ...}
        intracranial = [1, 2, 3]
        bone         = 4           # optional
        name         = "my-atlas"  # optional

    Raises ValueError naming the missing or malformed key.
    """
    missing = [k for k in ("classes", "ours", "reference", "intracranial") if k not in d]
    if missing:
        raise ValueError(f"mapping: missing key(s) {missing}")

    def ints(m: Any, key: str) -> dict[int, Any]:
        if not isinstance(m, Mapping):
            raise ValueError(f"mapping: {key!r} must be a table of label -> value")
        try:
            return {int(k): v for k, v in m.items()}
        except (TypeError, ValueError) as exc:
            raise ValueError(f"mapping: {key!r} has a non-integer label ({exc})") from None

    try:
        classes = {k: str(v) for k, v in ints(d["classes"], "classes").items()}
        ours = {k: int(v) for k, v in ints(d["ours"], "ours").items()}
        ref = {k: int(v) for k, v in ints(d["reference"], "reference").items()}
        ic = tuple(int(c) for c in d["intracranial"])
        bone = None if d.get("bone") is None else int(d["bone"])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"mapping: {exc}") from None
    return LabelMapping(str(d.get("name", name)), classes, ours, ref, ic, bone)


def map_labels(labels: np.ndarray, table: Mapping[int, int], what: str = "labels") -> np.ndarray:
    """Map an integer label array through ``table`` (label -> class) to a uint8 class array.

    Raises ValueError listing any label value present in ``labels`` but absent from ``table``
    (an unmapped tissue must not silently become background).
    """
    lab = np.asarray(labels)
    if lab.dtype.kind == "f":
        if not np.all(np.isfinite(lab)) or np.any(np.mod(lab, 1) != 0):
            raise ValueError(f"{what}: not an integer label image")
    lab = lab.astype(np.int64, copy=False)
    present = np.unique(lab)
    unknown = [int(v) for v in present if int(v) not in table]
    if unknown:
        raise ValueError(f"{what}: label value(s) {unknown} are not in the mapping "
                         f"(mapped: {sorted(table)})")
    lo = int(present.min()) if present.size else 0
    lut = np.zeros(int(present.max()) - lo + 1 if present.size else 1, np.uint8)
    for v in present:
        lut[int(v) - lo] = table[int(v)]
    return lut[lab - lo]


# ---------------------------------------------------------------------------- resampling
def same_grid(shape_a: tuple[int, ...], affine_a: np.ndarray, shape_b: tuple[int, ...],
              affine_b: np.ndarray, tol_mm: float = 1e-3) -> bool:
    """True when two grids have the same shape and voxel -> world affine (within ``tol_mm``)."""
    return tuple(shape_a[:3]) == tuple(shape_b[:3]) and bool(
        np.allclose(np.asarray(affine_a, float), np.asarray(affine_b, float), atol=tol_mm))


def resample_labels_nearest(labels: np.ndarray, affine: np.ndarray, target_affine: np.ndarray,
                            target_shape: tuple[int, int, int], fill: int = 0) -> np.ndarray:
    """Labels resampled by nearest neighbour onto another grid (both in the same world RAS mm).

    Voxels of the target whose centres fall outside ``labels``' grid get ``fill``.
    """
    vox2vox = np.linalg.inv(np.asarray(affine, float)) @ np.asarray(target_affine, float)
    return ndi.affine_transform(np.asarray(labels), vox2vox[:3, :3], offset=vox2vox[:3, 3],
                                output_shape=tuple(int(s) for s in target_shape), order=0,
                                mode="constant", cval=fill)


def grid_coverage(shape: tuple[int, int, int], affine: np.ndarray, target_affine: np.ndarray,
                  target_shape: tuple[int, int, int]) -> np.ndarray:
    """Boolean mask on the target grid: voxel centres inside the other grid's field of view."""
    ones = np.ones(tuple(int(s) for s in shape[:3]), np.uint8)
    return resample_labels_nearest(ones, affine, target_affine, target_shape).astype(bool)


# ---------------------------------------------------------------------------- metrics
def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap 2|A and B| / (|A| + |B|) of two boolean masks (NaN when both are empty)."""
    a = np.asarray(a, bool)
    b = np.asarray(b, bool)
    s = int(a.sum()) + int(b.sum())
    return float("nan") if s == 0 else 2.0 * float(np.count_nonzero(a & b)) / s


def world_superior(shape: tuple[int, int, int], affine: np.ndarray,
                   up: np.ndarray | None = None) -> np.ndarray:
    """Height (mm) of every voxel centre of a grid along ``up`` (unit vector in world RAS; default
    world +z, i.e. the RAS z coordinate), as a float32 array."""
    a = np.asarray(affine, float)
    u = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, float)
    row = u @ a[:3, :3]
    i, j, k = (np.arange(n, dtype=np.float64) for n in shape[:3])
    z = row[0] * i[:, None, None] + row[1] * j[None, :, None] + row[2] * k[None, None, :]
    z = z + float(u @ a[:3, 3])
    return z.astype(np.float32)


def head_superior_axis(subject_to_mni_affine: np.ndarray) -> np.ndarray:
    """The head's superior axis in subject world RAS: the unit normal of the planes MNI z = const
    under a 4x4 subject -> MNI affine (its third row), pointing to MNI +z."""
    row = np.asarray(subject_to_mni_affine, float)[2, :3]
    n = float(np.linalg.norm(row))
    if n == 0:
        raise ValueError("degenerate subject -> MNI affine (no superior axis)")
    return row / n


def vault_mask(reference_intracranial: np.ndarray, affine: np.ndarray, offset_mm: float = VAULT_OFFSET_MM,
               up: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(mask, plane height in mm along ``up``) of the cranial vault (see module docstring).

    The plane is normal to ``up`` (default world +z) at the height of the centroid of
    ``reference_intracranial`` + ``offset_mm``. Raises ValueError when the intracranial mask is empty.
    """
    ic = np.asarray(reference_intracranial, bool)
    if not ic.any():
        raise ValueError("the reference has no intracranial voxels: cannot place the vault plane")
    c = np.argwhere(ic).mean(axis=0)
    a = np.asarray(affine, float)
    u = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, float) / np.linalg.norm(up)
    zc = float(u @ (a[:3, :3] @ c + a[:3, 3]))
    plane = zc + float(offset_mm)
    return world_superior(ic.shape, a, u) > plane, plane


def skull_thickness_samples(bone: np.ndarray, intracranial: np.ndarray, spacing: np.ndarray,
                            region: np.ndarray | None = None) -> np.ndarray:
    """Local skull thickness (mm) at every inner-table voxel of ``bone``.

    Inner-table voxels are bone voxels face-adjacent to the intracranial space (restricted to
    ``region`` when given). At each, the value is the Euclidean distance (in mm, anisotropic
    ``spacing`` honoured) to the nearest voxel that is neither bone nor intracranial, i.e. to the
    first voxel outside the outer table along the shortest path. For a flat layer of n voxels
    along its normal this is n voxel sizes, the layer's thickness; holes in the bone (sinuses,
    foramina) shorten it locally, as they should.
    """
    bone = np.asarray(bone, bool)
    ic = np.asarray(intracranial, bool)
    inner = bone & ndi.binary_dilation(ic)
    if region is not None:
        inner &= np.asarray(region, bool)
    if not inner.any():
        return np.zeros(0, np.float32)
    dist = ndi.distance_transform_edt(bone | ic, sampling=np.asarray(spacing, float))
    return dist[inner].astype(np.float32)


@dataclass
class ClassScore:
    """Agreement for one common class: Dice and volumes (ml) of ours and the reference."""

    name: str
    dice: float
    volume_ours_ml: float
    volume_reference_ml: float


@dataclass
class Gate:
    """One pass/fail criterion: ``value`` compared with ``threshold`` (``kind`` is '>=' or '<=')."""

    name: str
    value: float
    threshold: float
    kind: str
    passed: bool


@dataclass
class ValidationResult:
    """Everything :func:`score_segmentation` measures (volumes ml, distances mm).

    ``icv_difference`` is the relative difference (ours - reference) / reference;
    ``thickness_difference_mm`` = ours - reference (medians over the vault inner table).
    ``evaluated_fraction`` is the fraction of our grid covered by the reference's field of view
    (voxels outside it are excluded from every metric). ``vault_plane_z_mm`` is the plane's height
    along ``vault_up_ras`` (world z when that is +z); ``vault_tilt_deg`` the angle between the
    superior axis used and world +z.
    """

    mapping: str
    classes: list[ClassScore]
    icv_ours_ml: float
    icv_reference_ml: float
    icv_difference: float
    intracranial_dice: float
    vault_plane_z_mm: float
    vault_offset_mm: float
    vault_up_ras: list[float]
    vault_tilt_deg: float
    vault_skull_dice: float
    thickness_ours_mm: float
    thickness_reference_mm: float
    thickness_difference_mm: float
    thickness_samples_ours: int
    thickness_samples_reference: int
    voxel_size_mm: list[float]
    evaluated_fraction: float
    gates: list[Gate] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every gate passed (and there is at least one)."""
        return bool(self.gates) and all(g.passed for g in self.gates)

    def class_score(self, name: str) -> ClassScore:
        """The :class:`ClassScore` of a class by name (KeyError if absent)."""
        for c in self.classes:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN becomes None)."""
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not np.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            if isinstance(v, list):
                return [clean(x) for x in v]
            return v

        d = clean(asdict(self))
        d["all_gates_passed"] = self.passed
        return d


#: Gates of issue 20 (value names as in :func:`gate_values`): Dice per class, ICV and thickness.
ISSUE20_GATES: dict[str, tuple[str, float]] = {
    "dice WM": (">=", 0.90),
    "dice GM": (">=", 0.87),
    "dice CSF": (">=", 0.70),
    "dice bone": (">=", 0.70),
    "dice scalp": (">=", 0.90),
    "|ICV difference| %": ("<=", 3.0),
    "|thickness difference| mm": ("<=", 1.0),
    "intracranial dice": (">=", 0.96),
    "vault skull dice": (">=", 0.75),
}


def gate_values(res: ValidationResult) -> dict[str, float]:
    """The named figures gates refer to (see :data:`ISSUE20_GATES`)."""
    v = {f"dice {c.name}": c.dice for c in res.classes}
    v["|ICV difference| %"] = abs(res.icv_difference) * 100.0
    v["|thickness difference| mm"] = abs(res.thickness_difference_mm)
    v["intracranial dice"] = res.intracranial_dice
    v["vault skull dice"] = res.vault_skull_dice
    return v


def evaluate_gates(res: ValidationResult,
                   gates: Mapping[str, tuple[str, float]] = ISSUE20_GATES) -> list[Gate]:
    """Gates whose figure exists in ``res`` (a class absent from the mapping is skipped);
    a NaN figure fails."""
    vals = gate_values(res)
    out = []
    for name, (kind, thr) in gates.items():
        if name not in vals:
            continue
        x = float(vals[name])
        ok = np.isfinite(x) and (x >= thr if kind == ">=" else x <= thr)
        out.append(Gate(name, x, float(thr), kind, bool(ok)))
    return out


def score_classes(ours: np.ndarray, reference: np.ndarray, spacing: np.ndarray, mapping: LabelMapping,
                  affine: np.ndarray, *, vault_offset_mm: float = VAULT_OFFSET_MM,
                  up: np.ndarray | None = None, evaluate: np.ndarray | None = None,
                  gates: Mapping[str, tuple[str, float]] | None = ISSUE20_GATES) -> ValidationResult:
    """Score two *class* arrays (already mapped, same grid) against each other.

    Args:
        ours, reference: common-class arrays (0 = background) of the same shape.
        spacing: voxel size (mm) along each array axis.
        mapping: the mapping that produced them (class names, intracranial and bone classes).
        affine: the grid's voxel -> world RAS (mm) affine (for the vault plane).
        vault_offset_mm: vault plane height above the reference intracranial centroid.
        up: the head's superior axis (unit vector, world RAS; :func:`head_superior_axis`); world +z if None.
        evaluate: optional boolean mask of voxels to score (e.g. the reference's field of view).
        gates: gates to evaluate (None for none).
    """
    ours = np.asarray(ours)
    ref = np.asarray(reference)
    if ours.shape != ref.shape:
        raise ValueError(f"label arrays differ in shape: {ours.shape} vs {ref.shape}")
    if evaluate is not None:
        ev = np.asarray(evaluate, bool)
        ours = np.where(ev, ours, 0)
        ref = np.where(ev, ref, 0)
        frac = float(ev.mean())
    else:
        frac = 1.0
    sp = np.asarray(spacing, float)
    vox_ml = float(np.prod(sp)) / 1000.0
    n_cls = max(max(mapping.classes), int(ours.max(initial=0)), int(ref.max(initial=0))) + 1
    # one pass for all per-class counts: joint histogram of (ours, reference)
    joint = np.bincount(ours.astype(np.int64).ravel() * n_cls + ref.astype(np.int64).ravel(),
                        minlength=n_cls * n_cls).reshape(n_cls, n_cls)
    n_ours = joint.sum(axis=1)
    n_ref = joint.sum(axis=0)
    classes = []
    for c, name in sorted(mapping.classes.items()):
        s = int(n_ours[c] + n_ref[c])
        d = float("nan") if s == 0 else 2.0 * float(joint[c, c]) / s
        classes.append(ClassScore(name, d, float(n_ours[c]) * vox_ml, float(n_ref[c]) * vox_ml))
    ic_ours = np.isin(ours, mapping.intracranial)
    ic_ref = np.isin(ref, mapping.intracranial)
    icv_o = float(ic_ours.sum()) * vox_ml
    icv_r = float(ic_ref.sum()) * vox_ml
    u = np.array([0.0, 0.0, 1.0]) if up is None else np.asarray(up, float) / np.linalg.norm(up)
    vault, plane = vault_mask(ic_ref, affine, vault_offset_mm, u)
    if mapping.bone is not None:
        bone_o = ours == mapping.bone
        bone_r = ref == mapping.bone
        vdice = dice(bone_o & vault, bone_r & vault)
        t_o = skull_thickness_samples(bone_o, ic_ours, sp, vault)
        t_r = skull_thickness_samples(bone_r, ic_ref, sp, vault)
    else:
        vdice = float("nan")
        t_o = t_r = np.zeros(0, np.float32)
    med_o = float(np.median(t_o)) if t_o.size else float("nan")
    med_r = float(np.median(t_r)) if t_r.size else float("nan")
    res = ValidationResult(
        mapping=mapping.name, classes=classes, icv_ours_ml=icv_o, icv_reference_ml=icv_r,
        icv_difference=(icv_o - icv_r) / icv_r if icv_r > 0 else float("nan"),
        intracranial_dice=dice(ic_ours, ic_ref), vault_plane_z_mm=plane,
        vault_offset_mm=float(vault_offset_mm), vault_up_ras=[round(float(x), 5) for x in u],
        vault_tilt_deg=float(np.degrees(np.arccos(np.clip(u[2], -1, 1)))),
        vault_skull_dice=vdice, thickness_ours_mm=med_o, thickness_reference_mm=med_r,
        thickness_difference_mm=med_o - med_r, thickness_samples_ours=int(t_o.size),
        thickness_samples_reference=int(t_r.size), voxel_size_mm=[float(s) for s in sp],
        evaluated_fraction=frac)
    if gates is not None:
        res.gates = evaluate_gates(res, gates)
    return res


def score_segmentation(ours: np.ndarray, ours_affine: np.ndarray, reference: np.ndarray,
                       reference_affine: np.ndarray, mapping: LabelMapping, *,
                       vault_offset_mm: float = VAULT_OFFSET_MM, up: np.ndarray | None = None,
                       gates: Mapping[str, tuple[str, float]] | None = ISSUE20_GATES
                       ) -> tuple[ValidationResult, np.ndarray, np.ndarray]:
    """Score our label image against a reference label image.

    Both are raw label arrays with their voxel -> world RAS (mm) affines, in the same world
    space. Labels are mapped to common classes; the reference is resampled onto our grid by
    nearest neighbour when the grids differ, and only voxels inside the reference's field of view
    are scored. ``up`` is the head's superior axis for the vault plane (world +z if None).
    Returns (result, our classes, reference classes on our grid).
    """
    ours_c = map_labels(ours, mapping.ours, "our labels")
    ref_c = map_labels(reference, mapping.reference, "reference labels")
    evaluate = None
    if not same_grid(ours_c.shape, ours_affine, ref_c.shape, reference_affine):
        ref_c = resample_labels_nearest(ref_c, reference_affine, ours_affine, ours_c.shape)
        evaluate = grid_coverage(reference.shape, reference_affine, ours_affine, ours_c.shape)
        if not evaluate.any():
            raise ValueError("the reference and our labels do not overlap in world space "
                             "(different coordinate systems?)")
    sp = np.sqrt((np.asarray(ours_affine, float)[:3, :3] ** 2).sum(axis=0))
    res = score_classes(ours_c, ref_c, sp, mapping, ours_affine, vault_offset_mm=vault_offset_mm, up=up,
                        evaluate=evaluate, gates=gates)
    return res, ours_c, ref_c


def format_table(res: ValidationResult) -> str:
    """Plain-text report: per-class table, intracranial and vault figures, gates (PASS/FAIL)."""
    gates = {g.name: g for g in res.gates}

    def verdict(name: str) -> str:
        g = gates.get(name)
        if g is None:
            return ""
        return f"{'PASS' if g.passed else 'FAIL'} ({g.kind} {g.threshold:g})"

    def f(x: float, fmt: str) -> str:
        return "n/a" if not np.isfinite(x) else format(x, fmt)

    lines = [f"mapping {res.mapping}; voxel {' x '.join(f'{s:g}' for s in res.voxel_size_mm)} mm; "
             f"scored fraction of our grid {res.evaluated_fraction:.3f}",
             f"{'class':<12}{'Dice':>8}{'ours ml':>11}{'ref ml':>11}{'diff %':>9}   gate"]
    for c in res.classes:
        diff = (c.volume_ours_ml - c.volume_reference_ml) / c.volume_reference_ml * 100 \
            if c.volume_reference_ml > 0 else float("nan")
        lines.append(f"{c.name:<12}{f(c.dice, '.3f'):>8}"
                     f"{c.volume_ours_ml:>11.1f}{c.volume_reference_ml:>11.1f}"
                     f"{f(diff, '+.1f'):>9}   {verdict('dice ' + c.name)}")
    lines += [
        f"intracranial volume: ours {res.icv_ours_ml:.1f} ml, reference {res.icv_reference_ml:.1f} ml, "
        f"difference {f(res.icv_difference * 100, '+.2f')} %   {verdict('|ICV difference| %')}",
        f"intracranial Dice: {f(res.intracranial_dice, '.3f')}   {verdict('intracranial dice')}",
        (f"cranial vault: world z > {res.vault_plane_z_mm:.1f} mm (reference intracranial centroid "
         f"+ {res.vault_offset_mm:g} mm)" if res.vault_tilt_deg < 1e-6 else
         f"cranial vault: more than {res.vault_offset_mm:g} mm above the reference intracranial "
         f"centroid along "
         f"the head's superior axis ({res.vault_tilt_deg:.1f} deg from world z; plane height "
         f"{res.vault_plane_z_mm:.1f} mm)"),
        f"vault skull Dice: {f(res.vault_skull_dice, '.3f')}   {verdict('vault skull dice')}",
        f"vault skull thickness (median over the inner table): ours {f(res.thickness_ours_mm, '.2f')} mm "
        f"({res.thickness_samples_ours} samples), reference {f(res.thickness_reference_mm, '.2f')} mm "
        f"({res.thickness_samples_reference} samples), "
        f"difference {f(res.thickness_difference_mm, '+.2f')} mm   "
        f"{verdict('|thickness difference| mm')}",
    ]
    if res.gates:
        n_ok = sum(g.passed for g in res.gates)
        failed = ", ".join(g.name for g in res.gates if not g.passed)
        lines.append(f"gates: {n_ok}/{len(res.gates)} passed" + ("" if res.passed else "; failed: " + failed))
    return "\n".join(lines)
