"""From whole-head posteriors to SimNIBS tissue labels with the anatomy's nesting.

:func:`labels_from_mixture` takes the most probable class of every head voxel and then
enforces what a head model must satisfy, choosing at every correction the voxel's next most
probable admissible class rather than a fixed one:

* the brain (WM + GM) is one connected piece; brain-labelled voxels elsewhere take their best
  non-brain class;
* CSF is the fluid around and inside that brain: CSF components not connected to the brain's
  surroundings (dark muscle, fat planes, bone marrow mistaken for CSF) take their best class
  among skull, soft tissue and air;
* the intracranial space (brain + CSF, holes filled) is surrounded by skull: non-bone voxels
  outside it that the mixture finds more bone-like than anything intracranial stay as they
  are; the topology repair (:mod:`navigator.segmentation.cleanup`) closes what is left;
* tissue with signal (marrow) between the inner and outer tables (inside the compact bone
  closed by 3 mm) is spongy bone (8); the signal-free skull is compact bone (7);
* eyes are at most the two largest eye-class blobs (each >= 2 ml).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from navigator.core.tissues import COMPACT_BONE, CSF, EYES, GM, SCALP, SPONGY_BONE, WM
from navigator.segmentation.head_mixture import HeadMixture
from navigator.segmentation.head_priors import CLASSES

_IDX = {n: i for i, n in enumerate(CLASSES)}
#: SimNIBS label of each prior class (skull split into 7/8 afterwards).
_TO_LABEL = {"background": 0, "wm": WM, "gm": GM, "deep_gm": GM, "csf": CSF, "skull": COMPACT_BONE,
             "soft": SCALP, "eyes": EYES}
_SIX = ndi.generate_binary_structure(3, 1)
_CUBE = np.ones((3, 3, 3), bool)


def _largest(mask: np.ndarray, structure: np.ndarray = _SIX) -> np.ndarray:
    lab, n = ndi.label(mask, structure=structure)
    if n <= 1:
        return mask.copy()
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return lab == int(np.argmax(sizes))


def _partial_volume_boundaries(cls: np.ndarray, mix: HeadMixture, t1: np.ndarray) -> None:
    """Put the WM/GM and GM/CSF boundaries at the 50 % partial-volume level (in place).

    Among voxels the mixture gives to WM, cortical GM or CSF, the class is re-decided by the
    T1 midpoints between the class means: a voxel half GM, half CSF has the mean of the two,
    so the midpoint is where the anatomical boundary lies. The Gaussian decision would move
    the boundary towards the narrower class (WM is much narrower than GM, CSF much wider),
    which thins the cortex.
    """
    wm, gm, csf = (float(mix.class_mean(n)[0]) for n in ("wm", "gm", "csf"))
    # the CSF class mean is pulled up by partial-volume voxels at every CSF surface; the pure
    # CSF level is that of the CSF voxels whose six neighbours are all CSF (ventricles, cisterns)
    core = ndi.binary_erosion(cls == _IDX["csf"], structure=_SIX)
    if core.sum() >= 1000:
        csf = float(np.median(t1[core]))
    if not wm > gm > csf:
        return
    sel = np.isin(cls, (_IDX["wm"], _IDX["gm"], _IDX["csf"]))
    v = t1[sel]
    new = np.where(v >= 0.5 * (wm + gm), _IDX["wm"], np.where(v >= 0.5 * (gm + csf), _IDX["gm"], _IDX["csf"]))
    cls[sel] = new.astype(np.int8)


def labels_from_mixture(mix: HeadMixture, t1: np.ndarray, spacing: float,
                        priors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 SimNIBS labels on the grid, bool intracranial mask) from a fitted head mixture.

    ``t1`` is the normalised T1 the mixture was fitted to and ``priors`` (C, *grid) the
    priors it was fitted with, both on the mixture's grid.
    """
    region = mix.region
    post = mix.posteriors.copy()
    # eyes only inside the orbits: the eye prior's floor must not let dark face or neck
    # tissue become "eye" on intensity alone
    post[_IDX["eyes"], priors[_IDX["eyes"]][region] < 0.02] = 0.0
    cls = np.full(region.shape, _IDX["background"], np.int8)
    cls[region] = np.argmax(post, axis=0).astype(np.int8)
    _partial_volume_boundaries(cls, mix, t1)

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
    relabel(brain & ~main, ("csf", "skull", "soft", "background", "eyes"))

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
    return labels, intracranial


def _close(mask: np.ndarray, iterations: int) -> np.ndarray:
    pad = iterations + 1
    m = ndi.binary_closing(np.pad(mask, pad), structure=_CUBE, iterations=iterations)
    return m[pad:-pad, pad:-pad, pad:-pad] | mask
