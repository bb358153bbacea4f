"""From whole-head posteriors to SimNIBS tissue labels with the anatomy's nesting.

:func:`labels_from_mixture` takes the most probable class of every head voxel and then
enforces what a head model must satisfy, choosing at every correction the voxel's next most
probable admissible class rather than a fixed one:

* WM/GM/CSF boundaries at the 50 % partial-volume midpoints, the WM/GM one with the
  mixture's neighbourhood term so noise does not fray it;
* the brain (WM + GM) is one connected piece; brain-labelled voxels elsewhere take their best
  non-brain class;
* CSF is the fluid around and inside that brain: CSF components not connected to the brain's
  surroundings (dark muscle, fat planes, bone marrow mistaken for CSF) take their best class
  among skull, soft tissue and air;
* along the falx (mid-sagittal band from the registration) the medial cortex is decided
  against the dura's level, not CSF's;
* T1 only: CSF voxels on the skull darker than pure CSF are dura, given to the skull;
* with a T2, CSF ends at the T2's 50 % partial-volume level between CSF and bone (the T1
  cannot tell CSF from a blurred inner table);
* the intracranial space (brain + CSF, holes filled) is surrounded by skull: non-bone voxels
  outside it that the mixture finds more bone-like than anything intracranial stay as they
  are; the topology repair (:mod:`navigator.segmentation.cleanup`) closes what is left;
* tables thinner than the image's blur (dark valleys where the atlas expects skull) are skull;
* tissue with signal (marrow) between the inner and outer tables (inside the compact bone
  closed by 3 mm), or enclosed by a cortical shell where the atlas expects bone, is spongy
  bone (8); the signal-free skull is compact bone (7);
* eyes are at most the two largest eye-class blobs (each >= 2 ml).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from navigator.core.tissues import COMPACT_BONE, CSF, EYES, GM, SCALP, SPONGY_BONE, WM
from navigator.segmentation.head_mixture import MEAN_FIELD_BETA, HeadMixture, mean_field, softmax
from navigator.segmentation.head_priors import CLASSES

_IDX = {n: i for i, n in enumerate(CLASSES)}
#: SimNIBS label of each prior class (skull split into 7/8 afterwards).
_TO_LABEL = {"background": 0, "wm": WM, "gm": GM, "deep_gm": GM, "csf": CSF, "skull": COMPACT_BONE,
             "soft": SCALP, "eyes": EYES}
#: Skull prior above which a dark valley of the T1 can be a blurred table (:func:`_thin_tables`):
#: low, because the atlas's skull band is itself blurred and can sit a few mm off this skull.
TABLE_PRIOR = 0.1
_SIX = ndi.generate_binary_structure(3, 1)
_CUBE = np.ones((3, 3, 3), bool)


def _largest(mask: np.ndarray, structure: np.ndarray = _SIX) -> np.ndarray:
    lab, n = ndi.label(mask, structure=structure)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _partial_volume_boundaries(cls: np.ndarray, mix: HeadMixture, t1: np.ndarray) -> float | None:
    """Put the WM/GM and GM/CSF boundaries at the 50 % partial-volume level (in place).

    Returns the GM/CSF level (T1 units; None when the class means are not ordered).

    Among voxels the mixture gives to WM, cortical GM or CSF, the class is re-decided by the
    T1 midpoints between the class means: a voxel half GM, half CSF has the mean of the two,
    so the midpoint is where the anatomical boundary lies. The Gaussian decision would move
    the boundary towards the narrower class (WM is much narrower than GM, CSF much wider),
    which thins the cortex. The WM/GM decision then keeps the mixture's neighbourhood prior
    (:func:`_smooth_wm_gm`), so that image noise does not fray the boundary voxel by voxel.
    """
    wm, gm, csf = (float(mix.class_mean(n)[0]) for n in ("wm", "gm", "csf"))
    # the CSF class mean is pulled up by partial-volume voxels at every CSF surface; the pure
    # CSF level is that of the CSF voxels whose six neighbours are all CSF (ventricles, cisterns)
    core = ndi.binary_erosion(cls == _IDX["csf"], structure=_SIX)
    if core.sum() >= 1000:
        csf = float(np.median(t1[core]))
    if not wm > gm > csf:
        return None
    # image noise: the robust spread of the mixture's WM interior (no boundary there; taken
    # before the midpoint cut below truncates the WM's intensities)
    interior = ndi.binary_erosion(cls == _IDX["wm"], structure=_SIX)
    noise = None
    if interior.sum() >= 1000:
        w = t1[interior]
        noise = 1.4826 * float(np.median(np.abs(w - np.median(w))))
    sel = np.isin(cls, (_IDX["wm"], _IDX["gm"], _IDX["csf"]))
    v = t1[sel]
    new = np.where(v >= 0.5 * (wm + gm), _IDX["wm"], np.where(v >= 0.5 * (gm + csf), _IDX["gm"], _IDX["csf"]))
    cls[sel] = new.astype(np.int8)
    if noise is not None and noise > 0:
        _smooth_wm_gm(cls, t1, wm, gm, noise)
    return 0.5 * (gm + csf)


def _smooth_wm_gm(cls: np.ndarray, t1: np.ndarray, wm: float, gm: float, noise: float) -> None:
    """Re-decide WM against GM with the midpoint likelihood and the mixture's Potts prior (in place).

    The midpoint rule alone decides each voxel on its own T1, so on a noisy scan (a single
    acquisition, not an average like Colin27) the WM/GM boundary frays into isolated voxels
    wherever the noise carries a voxel across the level. Here the two classes share one
    Gaussian spread, the image ``noise`` (T1 units), so their likelihoods still cross at the
    midpoint, and the mixture's mean-field neighbourhood term (:data:`MEAN_FIELD_BETA`) is
    added. On a clean image the likelihood dominates and little moves. The GM/CSF decision,
    on which the later CSF and skull rules build, is left as it is.
    """
    sel = np.isin(cls, (_IDX["wm"], _IDX["gm"]))
    v = t1[sel].astype(np.float32)
    base = np.stack([-(v - wm) ** 2, -(v - gm) ** 2]) / np.float32(2.0 * noise * noise)
    post = mean_field(softmax(base), base, sel, MEAN_FIELD_BETA)
    cls[sel] = np.where(post[0] >= post[1], _IDX["wm"], _IDX["gm"]).astype(np.int8)


#: The falx band in MNI mm: |x| <= FALX_HALF_WIDTH_MM, z > FALX_MIN_Z_MM (above the corpus
#: callosum's lower edge; the falx runs from the crista galli to the tentorium).
FALX_HALF_WIDTH_MM = 4.0
FALX_MIN_Z_MM = -10.0


def falx_band(mni_coords: np.ndarray) -> np.ndarray:
    """Bool mask of the grid voxels (``mni_coords``: (..., 3) MNI mm of each) in the falx band."""
    return (np.abs(mni_coords[..., 0]) <= FALX_HALF_WIDTH_MM) & (mni_coords[..., 2] > FALX_MIN_Z_MM)


def _medial_cortex(cls: np.ndarray, mix: HeadMixture, t1: np.ndarray, falx: np.ndarray) -> None:
    """Keep the medial cortex where the hemispheres face each other across the falx (in place).

    The falx cerebri is dura: no signal on a T1, like bone. A voxel holding medial cortex and
    falx is darker than one holding cortex and CSF, so the GM/CSF level labels it CSF and the
    medial cortex thins to nothing along the midline (GM fraction 0.40 of the GM + CSF next to
    the midline on Colin27 against 0.62 in its reference). In the falx band, CSF voxels next to
    GM whose T1 is above the GM/dura partial-volume level (half-way between GM and bone) are GM.
    """
    gm = float(mix.class_mean("gm")[0])
    bone = float(mix.class_mean("skull")[0])
    if not gm > bone:
        return
    near_gm = ndi.binary_dilation(cls == _IDX["gm"], structure=_SIX)
    cls[falx & (cls == _IDX["csf"]) & near_gm & (t1 >= 0.5 * (gm + bone))] = _IDX["gm"]


def _dura_layer(cls: np.ndarray, t1: np.ndarray) -> None:
    """T1 only: CSF voxels on the skull that are darker than pure CSF are the dura (in place).

    The dura mater (about 1 mm, lining the inner table) is as dark as CSF or darker on a T1, so
    the CSF/bone midpoint leaves it in the CSF: the CSF layer one voxel too thick all around,
    the intracranial volume ~3 % too large and the skull too thin (Colin27). The dura's
    conductivity is far below CSF's, so a voxel holding dura or bone is not CSF: CSF voxels
    touching the skull whose T1 is below the pure-CSF level (the interior of the CSF class)
    become skull. With a T2 the T2's CSF/bone level places this boundary instead.
    """
    csf = cls == _IDX["csf"]
    core = ndi.binary_erosion(csf, structure=_SIX)
    if core.sum() < 1000:
        return
    level = float(np.median(t1[core]))
    on_skull = ndi.binary_dilation(cls == _IDX["skull"], structure=_SIX)
    cls[csf & on_skull & (t1 < level)] = _IDX["skull"]


def _csf_t2_boundary(cls: np.ndarray, mix: HeadMixture, t2: np.ndarray) -> None:
    """With a T2, CSF ends where the T2 falls below half-way between pure CSF and bone (in place).

    CSF is the brightest tissue of a T2 and bone gives no signal, so the CSF/skull boundary is
    the 50 % partial-volume level of the T2. The T1 cannot place it (CSF, the tables and thin
    diploe blurred between them are all dark there); without this the intracranial space
    leaks through a one-voxel inner table into the diploe. Voxels the mixture calls CSF below
    that level take their best class among the others.
    """
    core = ndi.binary_erosion(cls == _IDX["csf"], structure=_SIX)
    if core.sum() < 1000:
        return
    csf_t2 = float(np.median(t2[core]))
    bone_t2 = float(mix.class_mean("skull")[1])
    if not csf_t2 > bone_t2:
        return
    dark = (cls == _IDX["csf"]) & (t2 < 0.5 * (csf_t2 + bone_t2))
    sub = dark[mix.region]
    if sub.any():
        names = ("wm", "gm", "deep_gm", "skull", "soft", "background")
        idx = np.asarray([_IDX[n] for n in names], np.int8)
        cls[dark] = idx[np.argmax(mix.posteriors[idx][:, sub], axis=0)]


def labels_from_mixture(mix: HeadMixture, t1: np.ndarray, spacing: float,
                        priors: np.ndarray, t2: np.ndarray | None = None,
                        falx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 SimNIBS labels on the grid, bool intracranial mask) from a fitted head mixture.

    ``t1`` (and ``t2`` when the mixture used one) are the normalised images the mixture was
    fitted to and ``priors`` (C, *grid) the priors it was fitted with, all on the mixture's grid.
    ``falx`` (bool, same grid) marks where the falx cerebri can be (the mid-sagittal band above
    the corpus callosum, from the MNI registration); None skips the medial-cortex rule.
    """
    region = mix.region
    post = mix.posteriors.copy()
    # eyes only inside the orbits: the eye prior's floor must not let dark face or neck
    # tissue become "eye" on intensity alone
    post[_IDX["eyes"], priors[_IDX["eyes"]][region] < 0.02] = 0.0
    cls = np.full(region.shape, _IDX["background"], np.int8)
    cls[region] = np.argmax(post, axis=0).astype(np.int8)
    gm_csf = _partial_volume_boundaries(cls, mix, t1)
    if falx is not None:
        _medial_cortex(cls, mix, t1, falx)
    if t2 is not None:
        _csf_t2_boundary(cls, mix, t2)
    else:
        _dura_layer(cls, t1)

    def best_among(mask: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
        """Most probable of ``names`` at the voxels of ``mask`` (class indices)."""
        sub = mask[region]
        idx = [_IDX[n] for n in names]
        return np.asarray(idx, np.int8)[np.argmax(post[idx][:, sub], axis=0)]

    def relabel(mask: np.ndarray, names: tuple[str, ...]) -> None:
        m = mask & region
        if m.any():
            cls[m] = best_among(m, names)

    # one brain
    brain_cls = (_IDX["wm"], _IDX["gm"], _IDX["deep_gm"])
    brain = np.isin(cls, brain_cls)
    main = _largest(ndi.binary_opening(brain, structure=_SIX))
    main = _largest(brain & ndi.binary_dilation(main, structure=_CUBE))
    # (tissue as bright as GM that is not brain is not CSF either: muscle where the atlas
    # puts brain or CSF, e.g. the temporal muscle beside the skull base)
    stray = brain & ~main
    bright = t1 >= gm_csf if gm_csf is not None else np.zeros_like(stray)
    relabel(stray & ~bright, ("csf", "skull", "soft", "background", "eyes"))
    relabel(stray & bright, ("skull", "soft", "background", "eyes"))

    # CSF: the fluid connected to the brain (through CSF), holes of the brain included
    csf = cls == _IDX["csf"]
    inner = _largest(main | csf, structure=_SIX)
    relabel(csf & ~inner, ("skull", "soft", "background", "eyes"))
    intracranial = ndi.binary_fill_holes(inner)
    relabel(intracranial & ~np.isin(cls, brain_cls + (_IDX["csf"],)), ("csf",))

    # eyes: the two largest blobs of at least 2 ml
    eyes = cls == _IDX["eyes"]
    lab, n = ndi.label(eyes, structure=_SIX)
    if n:
        sizes = np.bincount(lab.ravel())
        sizes[0] = 0
        keep = [i for i in np.argsort(sizes)[::-1][:2] if sizes[i] * spacing ** 3 >= 2000]
        relabel(eyes & ~np.isin(lab, keep), ("soft", "skull", "background"))

    # air inside the head only where the atlas expects air (sinuses, mastoid cells, airways):
    # elsewhere a signal-free voxel is compact bone (or tissue next to it), not an air gap
    air = (cls == _IDX["background"]) & region
    lab, _ = ndi.label(air | ~region, structure=_SIX)
    outside = np.unique(lab[~region])
    inner_air = air & ~np.isin(lab, outside[outside > 0])
    inner_air &= priors[_IDX["background"]] < 0.5
    relabel(inner_air, ("skull", "soft", "csf"))

    _thin_tables(cls, t1, mix, priors, intracranial, spacing)

    labels = np.zeros(region.shape, np.uint8)
    for name, lab_value in _TO_LABEL.items():
        labels[cls == _IDX[name]] = lab_value
    # spongy bone: tissue with signal (marrow) between the inner and outer tables, i.e. inside
    # the compact bone and intracranial space closed by 3 mm (fills diploe up to ~6 mm thick),
    # not touching anything but bone
    skull = labels == COMPACT_BONE
    closed = _close(skull | intracranial, max(1, round(3.0 / spacing)))
    between = closed & ~intracranial & ~skull & np.isin(labels, (SCALP, CSF)) & (t1 > 0)
    labels[between & ndi.binary_erosion(closed & ~intracranial, structure=_SIX)] = SPONGY_BONE
    # marrow of the thicker bones (mandible, maxilla, vertebrae, skull base): tissue enclosed
    # by a cortical shell where the atlas expects bone
    enclosed = ndi.binary_fill_holes(closed) & ~closed & (labels == SCALP) & (priors[_IDX["skull"]] >= 0.5)
    labels[enclosed] = SPONGY_BONE
    return labels, intracranial


def _thin_tables(cls: np.ndarray, t1: np.ndarray, mix: HeadMixture, priors: np.ndarray,
                 intracranial: np.ndarray, spacing: float) -> None:
    """Skull tables thinner than the image's blur: dark valleys in the skull's place (in place).

    A table one or two voxels thick, blurred by the scanner's point spread, never reaches the
    bone level: it is a valley of the T1 between the diploe and the scalp at about the
    partial-volume level of bone and soft tissue, which the mixture gives to soft tissue. Such
    valleys (T1 below its grey-level closing over about 5 mm by a quarter of the GM-bone
    contrast, and below the GM-bone midpoint) outside the intracranial space, where the atlas
    gives the skull at least :data:`TABLE_PRIOR`, become skull.
    """
    bone = float(mix.class_mean("skull")[0])
    gm = float(mix.class_mean("gm")[0])
    if not gm > bone:
        return
    size = max(3, 2 * round(2.0 / spacing) + 1)
    valley = ndi.grey_closing(t1, size=(size,) * 3) - t1
    cand = ((cls == _IDX["soft"]) & ~intracranial & (priors[_IDX["skull"]] >= TABLE_PRIOR)
            & (valley >= 0.25 * (gm - bone)) & (t1 < 0.5 * (gm + bone)))
    cls[cand] = _IDX["skull"]


def _close(mask: np.ndarray, iterations: int) -> np.ndarray:
    pad = iterations + 1
    m = ndi.binary_closing(np.pad(mask, pad), structure=_CUBE, iterations=iterations)
    return m[pad:-pad, pad:-pad, pad:-pad] | mask
