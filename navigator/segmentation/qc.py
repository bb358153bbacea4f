"""Segmentation quality control: metrics (JSON) and a label-contour montage (PNG).

Metrics (all from the final labels on the T1 grid):

* ``volumes_ml``: per tissue name; ``intracranial_volume_ml`` = WM + GM + CSF.
* ``skull_thickness_mm``: at every bone voxel touching the intracranial space in the cranial
  vault (MNI z > 0), the distance to the nearest voxel that is neither bone nor intracranial,
  i.e. the local inner-to-outer skull distance; median and 5th percentile.
* ``topology``: the checks of :mod:`navigator.segmentation.cleanup`.
* ``registration``: final Mattes MI of the affine step, affine scale factors, and the Dice
  overlap of the warped template brain mask with the segmented brain (WM + GM + enclosed CSF).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from navigator.core.tissues import BONE, COMPACT_BONE, CSF, GM, SPONGY_BONE, TISSUES, WM
from navigator.core.transforms import apply_affine
from navigator.core.volume import Volume
from navigator.segmentation.validation import skull_thickness_samples

_COLORS = {1: "#f0f0f0", 2: "#7f7f7f", 3: "#1f77ff", 4: "#ffd700", 5: "#ff9f80", 6: "#00c000",
           7: "#ffff00", 8: "#ff4040"}


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


def segmentation_metrics(labels: Volume, reg, topo, cls, tm, mi: float) -> dict[str, Any]:
    """JSON-ready metrics dictionary (see module docstring)."""
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
    return {
        "volumes_ml": volumes,
        "intracranial_volume_ml": round(icv, 1),
        "brain_volume_ml": round(float(counts[WM] + counts[GM]) * vox_ml, 1),
        "skull_thickness_mm": {"median": round(med, 2), "p5": round(p5, 2), "samples": n,
                               "region": "cranial vault (MNI z > 0)"},
        "topology": topo.to_json(),
        "registration": {
            "affine_mattes_mi": round(float(mi), 4),
            "affine_scales": [round(float(s), 3) for s in scales],
            "template_brain_dice": round(dice(tb, sb), 3),
            "nonlinear_max_displacement_mm": round(float(np.abs(reg.disp).max()), 2) if reg.disp is not None
            else 0.0,
        },
        "tissue_means_t1": {"wm": round(float(cls.means[0, 0]), 3), "gm": round(float(cls.means[1, 0]), 3),
                            "csf": round(float(cls.means[2, 0]), 3)},
        "voxel_size_mm": [round(float(s), 3) for s in labels.spacing],
    }


def _center_of(labels: np.ndarray) -> np.ndarray:
    ic = np.isin(labels, (WM, GM))
    if ic.any():
        return np.round(np.argwhere(ic).mean(axis=0)).astype(int)
    return np.array(labels.shape) // 2


def save_montage(t1: Volume, labels: Volume, path: str | Path, title: str = "", slices_per_view: int = 3,
                 dpi: int = 90) -> Path:
    """PNG montage: axial, coronal and sagittal slices of the T1 with label contours.

    Rows are views (axial, coronal, sagittal); columns are slices through the brain centre
    and +-25 mm. Voxel aspect follows the grid spacing. Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from navigator.core.atomic import atomic_path

    img = np.asarray(t1.data, np.float32)
    lab = labels.data
    c = _center_of(lab)
    sp = labels.spacing
    vmax = float(np.percentile(img[lab > 0], 99.5)) if (lab > 0).any() else float(img.max() or 1)
    offsets = np.linspace(-25, 25, slices_per_view) if slices_per_view > 1 else [0.0]
    views = [("axial", 2), ("coronal", 1), ("sagittal", 0)]
    fig, axes = plt.subplots(3, len(offsets), figsize=(4.2 * len(offsets), 12.5), squeeze=False)
    tags = [t for t in _COLORS if (lab == t).any()]
    for r, (name, ax_i) in enumerate(views):
        for col, off in enumerate(offsets):
            idx = int(np.clip(c[ax_i] + round(off / sp[ax_i]), 0, lab.shape[ax_i] - 1))
            sl = [slice(None)] * 3
            sl[ax_i] = idx
            im2 = img[tuple(sl)].T
            lb2 = lab[tuple(sl)].T
            other = [a for a in range(3) if a != ax_i]
            aspect = sp[other[1]] / sp[other[0]]
            ax = axes[r, col]
            ax.imshow(im2, cmap="gray", origin="lower", vmin=0, vmax=vmax, aspect=aspect, interpolation="nearest")
            for t in tags:
                m = (lb2 == t).astype(float)
                if m.any():
                    ax.contour(m, levels=[0.5], colors=[_COLORS[t]], linewidths=0.8)
            ax.set_title(f"{name} {idx}" + (" (R on right)" if name != "sagittal" else " (A on right)"), fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [plt.Line2D([0], [0], color=_COLORS[t], lw=2, label=f"{t} {TISSUES[t].name}") for t in tags]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path


def save_plane_screenshot(t1: Volume, labels: Volume, path: str | Path, view: str, dpi: int = 110) -> Path:
    """One large slice (``view`` = axial/coronal/sagittal) through the brain centre with a
    semi-transparent label overlay; used for the documentation screenshots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from navigator.core.atomic import atomic_path

    ax_i = {"axial": 2, "coronal": 1, "sagittal": 0}[view]
    lab = labels.data
    c = _center_of(lab)
    sl = [slice(None)] * 3
    sl[ax_i] = int(c[ax_i])
    im2 = np.asarray(t1.data, np.float32)[tuple(sl)].T
    lb2 = lab[tuple(sl)].T.astype(float)
    sp = labels.spacing
    other = [a for a in range(3) if a != ax_i]
    aspect = sp[other[1]] / sp[other[0]]
    colors = ["#000000"] + [_COLORS.get(t, "#ff00ff") for t in range(1, 9)]
    cmap = ListedColormap(colors)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5.4))
    vmax = float(np.percentile(im2[lb2 > 0], 99.5)) if (lb2 > 0).any() else 1.0
    for ax in axes:
        ax.imshow(im2, cmap="gray", origin="lower", vmin=0, vmax=vmax, aspect=aspect)
        ax.set_xticks([])
        ax.set_yticks([])
    masked = np.ma.masked_where(lb2 == 0, lb2)
    axes[1].imshow(masked, cmap=cmap, vmin=0, vmax=8, alpha=0.45, origin="lower", aspect=aspect,
                   interpolation="nearest")
    axes[0].set_title(f"{view} T1")
    axes[1].set_title(f"{view} labels")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path


_CLASS_COLORS = {"wm": "#f0f0f0", "gm": "#8c8c8c", "csf": "#1f77ff", "bone": "#ffd700", "scalp": "#ff9f80"}


def save_agreement_overlays(ours: Volume, reference: Volume, classes: dict[int, str], path: str | Path, *,
                            image: Volume | None = None, vault_plane_z_mm: float | None = None,
                            title: str = "", dpi: int = 80) -> Path:
    """PNG comparing two class images on one grid: rows axial/coronal/sagittal through the
    reference brain centre; columns ours, reference, disagreement (magenta where the classes
    differ). ``classes`` maps class id -> name (0 = background, not drawn). ``image`` (same grid,
    e.g. the T1) is drawn underneath when given. ``vault_plane_z_mm`` (world z, mm) is drawn as a
    dashed line on the coronal and sagittal views. Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    from navigator.core.atomic import atomic_path

    a = np.asarray(ours.data)
    b = np.asarray(reference.data)
    if a.shape != b.shape:
        raise ValueError(f"class images differ in shape: {a.shape} vs {b.shape}")
    n = max(max(classes), int(a.max(initial=0)), int(b.max(initial=0))) + 1
    fallback = plt.get_cmap("tab10")
    colors = ["#000000"] + [_CLASS_COLORS.get(classes.get(c, "").lower(), matplotlib.colors.to_hex(fallback(c % 10)))
                            for c in range(1, n)]
    cmap = ListedColormap(colors)
    bg = None if image is None else np.asarray(image.data, np.float32)
    vmax = float(np.percentile(bg[b > 0], 99.5)) if bg is not None and (b > 0).any() else 1.0
    fg = b > 0
    c = np.round(np.argwhere(fg).mean(axis=0)).astype(int) if fg.any() else np.array(a.shape) // 2
    sp = ours.spacing
    views = [("axial", 2), ("coronal", 1), ("sagittal", 0)]
    fig, axes = plt.subplots(3, 3, figsize=(12, 12.5), squeeze=False)
    for r, (name, ax_i) in enumerate(views):
        sl = [slice(None)] * 3
        sl[ax_i] = int(c[ax_i])
        other = [k for k in range(3) if k != ax_i]
        aspect = sp[other[1]] / sp[other[0]]
        a2, b2 = a[tuple(sl)].T, b[tuple(sl)].T
        panels = [("ours", a2), ("reference", b2), ("disagreement", None)]
        for col, (what, lab2) in enumerate(panels):
            ax = axes[r, col]
            if bg is not None:
                ax.imshow(bg[tuple(sl)].T, cmap="gray", origin="lower", vmin=0, vmax=vmax, aspect=aspect,
                          interpolation="nearest")
            else:
                ax.imshow(np.zeros_like(a2, dtype=float), cmap="gray", origin="lower", aspect=aspect)
            if lab2 is not None:
                ax.imshow(np.ma.masked_where(lab2 == 0, lab2), cmap=cmap, vmin=0, vmax=n - 1, alpha=0.55,
                          origin="lower", aspect=aspect, interpolation="nearest")
            else:
                diff = (a2 != b2).astype(float)
                ax.imshow(np.ma.masked_where(diff == 0, diff), cmap=ListedColormap(["#ff00ff"]), vmin=0, vmax=1,
                          alpha=0.8, origin="lower", aspect=aspect, interpolation="nearest")
                frac = float(diff.sum()) / max(1, int(((a2 > 0) | (b2 > 0)).sum()))
                what = f"disagreement ({frac * 100:.0f} % of head pixels)"
            if vault_plane_z_mm is not None and name != "axial":
                # world z of the voxel rows of this slice (the slice's vertical axis is other[1])
                idx = np.zeros((2, 3))
                idx[:, ax_i] = c[ax_i]
                idx[1, other[1]] = 1.0
                z = ours.voxel_to_world(idx)[:, 2]
                if abs(z[1] - z[0]) > 1e-6:
                    row = (vault_plane_z_mm - z[0]) / (z[1] - z[0])
                    ax.axhline(row, color="#00ffff", lw=1.0, ls="--")
            ax.set_title(f"{name} {int(c[ax_i])}: {what}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [plt.Line2D([0], [0], color=colors[k], lw=6, label=f"{k} {classes[k]}") for k in sorted(classes)]
    handles.append(plt.Line2D([0], [0], color="#ff00ff", lw=6, label="classes differ"))
    if vault_plane_z_mm is not None:
        handles.append(plt.Line2D([0], [0], color="#00ffff", lw=1.5, ls="--", label="vault plane"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path
