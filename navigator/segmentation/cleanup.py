"""Topology repairs and checks the field solver relies on (SimNIBS label numbering).

Adjacency is the full 26-neighbourhood (3 x 3 x 3), so a repaired layer is closed even across
voxel edges and corners. Definitions:

* **intracranial** (IC): labels 1, 2, 3.  **bone**: labels 4, 7, 8.  **brain**: labels 1, 2.
* *CSF layer*: no brain voxel touches anything but brain or CSF (repair: such brain voxels
  become CSF).
* *closed skull*: every non-IC neighbour of an IC voxel is bone, unless it lies outside the
  image or in the cut region below the neck level (repair: make it compact bone).
* *closed scalp*: no bone or eye voxel touches the outside air (background connected to the
  image border); repair: such air voxels become scalp.
* *no islands*: every tissue is one 26-connected component, except that CSF, eyes and spongy
  bone may have further components of at least ``min_part_mm3`` (ventricles, two eyes, diploe
  patches), and that a compact plate on the intracranial space that joins the skull through
  spongy bone (the inner table between mastoid air cells) is part of the skull, not speckle.
  Smaller components are given the most common label around them.
* *neck cut*: everything below a plane (the MNI axial plane ``z = NECK_CUT_MNI_Z`` mapped into
  the subject with the affine registration) is background.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from navigator.core.progress import Progress, ensure_progress
from navigator.core.tissues import BONE, COMPACT_BONE, CSF, EYES, GM, SCALP, SPONGY_BONE, WM

#: MNI z (mm) of the axial plane below which the head is cut (about the C2/C3 level).
NECK_CUT_MNI_Z = -120.0

_CUBE = np.ones((3, 3, 3), bool)
_IC = (WM, GM, CSF)
_BONE = (BONE, COMPACT_BONE, SPONGY_BONE)
_MULTI_OK = (CSF, EYES, SPONGY_BONE)


@dataclass
class TopologyReport:
    """Result of :func:`check_topology` (True = passes)."""

    csf_separates_brain: bool
    skull_closed: bool
    scalp_closed: bool
    no_islands: bool
    neck_cut_consistent: bool
    brain_voxels_touching_non_csf: int
    ic_voxels_with_open_skull: int
    outside_air_touching_bone_or_eyes: int
    islands: dict[str, int]

    @property
    def ok(self) -> bool:
        return (self.csf_separates_brain and self.skull_closed and self.scalp_closed and self.no_islands
                and self.neck_cut_consistent)

    def to_json(self) -> dict:
        d = asdict(self)
        d["all_passed"] = self.ok
        return d


def _dil(mask: np.ndarray) -> np.ndarray:
    return ndi.binary_dilation(mask, structure=_CUBE)


def _outside_air(labels: np.ndarray) -> np.ndarray:
    """Background voxels connected (6-conn.) to the image border."""
    bg = labels == 0
    lab, _ = ndi.label(bg)
    border = np.unique(np.concatenate([lab[0].ravel(), lab[-1].ravel(), lab[:, 0].ravel(), lab[:, -1].ravel(),
                                       lab[:, :, 0].ravel(), lab[:, :, -1].ravel()]))
    border = border[border > 0]
    return np.isin(lab, border)


def _edge_mask(shape) -> np.ndarray:
    e = np.zeros(shape, bool)
    e[0], e[-1], e[:, 0], e[:, -1], e[:, :, 0], e[:, :, -1] = True, True, True, True, True, True
    return e


def neck_cut_mask(shape, affine: np.ndarray, affine_s2m: np.ndarray, z_mni: float = NECK_CUT_MNI_Z) -> np.ndarray:
    """Voxels of a subject grid below the neck plane (MNI z < ``z_mni`` under the affine map)."""
    m = affine_s2m @ affine  # voxel -> MNI (affine part only: a plane in the subject)
    i, j, k = (np.arange(s, dtype=np.float32) for s in shape)
    z = m[2, 0] * i[:, None, None] + m[2, 1] * j[None, :, None] + m[2, 2] * k[None, None, :] + m[2, 3]
    return z < z_mni


def _island_components(labels: np.ndarray, tag: int, voxel_mm3: float,
                       min_part_mm3: float) -> tuple[np.ndarray, list[int]]:
    """26-connected components of ``tag`` (label array) and the ids of those that are islands
    under the *no islands* rule of the module docstring."""
    lab, n = ndi.label(labels == tag, structure=_CUBE)
    if n <= 1:
        return lab, []
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    main = int(np.argmax(sizes))
    keep = {main}
    if tag in _MULTI_OK:
        keep |= {int(i) for i in np.nonzero(sizes * voxel_mm3 >= min_part_mm3)[0]}
    if tag == COMPACT_BONE:
        # a plate of the inner table: it touches the intracranial space and joins the main
        # compact bone through spongy bone (closing the skull would only make it again)
        skull, _ = ndi.label(np.isin(labels, (COMPACT_BONE, SPONGY_BONE)), structure=_CUBE)
        objs = ndi.find_objects(lab)
        main_sl = objs[main - 1]
        main_piece = int(skull[main_sl][lab[main_sl] == main][0])
        for i in range(1, n + 1):
            if i in keep:
                continue
            sl = tuple(slice(max(o.start - 1, 0), o.stop + 1) for o in objs[i - 1])
            comp = lab[sl] == i
            if int(skull[sl][comp][0]) == main_piece and (_dil(comp) & np.isin(labels[sl], _IC)).any():
                keep.add(i)
    return lab, [i for i in range(1, n + 1) if i not in keep]


def remove_islands(labels: np.ndarray, voxel_mm3: float, min_part_mm3: float = 500.0,
                   max_rounds: int = 4) -> np.ndarray:
    """Give every disallowed small component the most common label on its border."""
    out = labels.copy()
    for _ in range(max_rounds):
        changed = False
        for tag in [int(t) for t in np.unique(out) if t != 0]:
            lab, drop = _island_components(out, tag, voxel_mm3, min_part_mm3)
            if not drop:
                continue
            objs = ndi.find_objects(lab)
            for i in drop:
                sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in objs[i - 1])
                comp = lab[sl] == i
                ring = _dil(comp) & ~comp
                vals = out[sl][ring]
                vals = vals[vals != tag]
                if vals.size == 0:
                    continue
                new = int(np.bincount(vals).argmax())
                out[sl][comp] = new
                changed = True
        if not changed:
            break
    return out


def repair(labels: np.ndarray, cut: np.ndarray | None, voxel_mm3: float,
           progress: Progress | None = None) -> np.ndarray:
    """Apply all repairs (see module docstring); returns a new label array."""
    progress = ensure_progress(progress)
    out = labels.copy()
    if cut is not None:
        out[cut] = 0
    allowed_open = _edge_mask(out.shape) | (cut if cut is not None else np.zeros(out.shape, bool))
    for rnd in range(3):
        progress.update(rnd / 3, "removing islands")
        out = remove_islands(out, voxel_mm3)
        # CSF layer around the brain
        brain = (out == WM) | (out == GM)
        non_ic = ~np.isin(out, (WM, GM, CSF))
        bad = brain & _dil(non_ic)
        out[bad] = CSF
        # brain touching CSF is fine; now close the skull around the intracranial space
        ic = np.isin(out, _IC)
        need = _dil(ic) & ~ic & ~np.isin(out, _BONE) & ~allowed_open
        out[need] = COMPACT_BONE
        # close the scalp around bone and eyes
        air = _outside_air(out)
        inner = np.isin(out, _BONE + (EYES,))
        need = air & _dil(inner) & ~allowed_open
        out[need] = SCALP
        if cut is not None:
            out[cut] = 0
        rep = check_topology(out, cut, voxel_mm3)
        if rep.ok:
            break
    progress.update(1.0, "topology repaired")
    return out


def check_topology(labels: np.ndarray, cut: np.ndarray | None, voxel_mm3: float,
                   min_part_mm3: float = 500.0) -> TopologyReport:
    """Check the conditions of the module docstring (nothing is modified)."""
    allowed_open = _edge_mask(labels.shape) | (cut if cut is not None else np.zeros(labels.shape, bool))
    brain = (labels == WM) | (labels == GM)
    non_ic = ~np.isin(labels, _IC)
    n_brain_bad = int((brain & _dil(non_ic)).sum())
    ic = np.isin(labels, _IC)
    open_nb = _dil(ic) & ~ic & ~np.isin(labels, _BONE) & ~allowed_open
    n_open = int(open_nb.sum())
    air = _outside_air(labels)
    n_scalp = int((air & _dil(np.isin(labels, _BONE + (EYES,))) & ~allowed_open).sum())
    islands: dict[str, int] = {}
    for tag in [int(t) for t in np.unique(labels) if t != 0]:
        islands[str(tag)] = len(_island_components(labels, tag, voxel_mm3, min_part_mm3)[1])
    neck_ok = True
    if cut is not None:
        neck_ok = not bool((labels[cut] != 0).any())
    return TopologyReport(
        csf_separates_brain=n_brain_bad == 0,
        skull_closed=n_open == 0,
        scalp_closed=n_scalp == 0,
        no_islands=all(v == 0 for v in islands.values()),
        neck_cut_consistent=neck_ok,
        brain_voxels_touching_non_csf=n_brain_bad,
        ic_voxels_with_open_skull=n_open,
        outside_air_touching_bone_or_eyes=n_scalp,
        islands=islands,
    )
