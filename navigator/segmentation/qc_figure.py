"""Segmentation QC figures: the clinician's QC report, documentation screenshots and the
validation overlays (ours vs a reference).

All take volumes in world RAS mm (:class:`~navigator.core.volume.Volume`) and write PNGs
atomically. The report's numbers come from :mod:`navigator.segmentation.qc`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from navigator.core.tissues import CSF, GM, TISSUES, WM
from navigator.core.volume import Volume

_COLORS = {1: "#f0f0f0", 2: "#7f7f7f", 3: "#1f77ff", 4: "#ffd700", 5: "#ff9f80", 6: "#00c000",
           7: "#ffff00", 8: "#ff4040"}

#: Verdict colours: plausible / check.
_OK_COLOR, _BAD_COLOR = "#1a9641", "#d7301f"


def _center_of(labels: np.ndarray) -> np.ndarray:
    ic = np.isin(labels, (WM, GM))
    if ic.any():
        return np.round(np.argwhere(ic).mean(axis=0)).astype(int)
    return np.array(labels.shape) // 2



def save_plane_screenshot(t1: Volume, labels: Volume, path: str | Path, view: str, dpi: int = 110) -> Path:
    """One large slice (``view`` = axial/coronal/sagittal) through the brain centre with a
    semi-transparent label overlay; used for the documentation screenshots."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
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
    fig = Figure(figsize=(10, 5.4))
    axes = fig.subplots(1, 2)
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
    return path


_CLASS_COLORS = {"wm": "#f0f0f0", "gm": "#8c8c8c", "csf": "#1f77ff", "bone": "#ffd700", "scalp": "#ff9f80"}


def save_agreement_overlays(ours: Volume, reference: Volume, classes: dict[int, str], path: str | Path, *,
                            image: Volume | None = None, vault_plane_z_mm: float | None = None,
                            vault_up: Any = None, title: str = "", dpi: int = 80) -> Path:
    """PNG comparing two class images on one grid: rows axial/coronal/sagittal through the
    reference brain centre; columns ours, reference, disagreement (magenta where the classes
    differ). ``classes`` maps class id -> name (0 = background, not drawn). ``image`` (same grid,
    e.g. the T1) is drawn underneath when given. ``vault_plane_z_mm`` (height in mm along
    ``vault_up``, a unit vector in world RAS, default +z) is drawn as a dashed line on the coronal
    and sagittal views. Written atomically.
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.colors import ListedColormap

    from navigator.core.atomic import atomic_path

    a = np.asarray(ours.data)
    b = np.asarray(reference.data)
    if a.shape != b.shape:
        raise ValueError(f"class images differ in shape: {a.shape} vs {b.shape}")
    n = max(max(classes), int(a.max(initial=0)), int(b.max(initial=0))) + 1
    fallback = matplotlib.colormaps.get_cmap("tab10")
    colors = ["#000000"] + [
        _CLASS_COLORS.get(classes.get(c, "").lower(), matplotlib.colors.to_hex(fallback(c % 10)))
        for c in range(1, n)]
    cmap = ListedColormap(colors)
    bg = None if image is None else np.asarray(image.data, np.float32)
    vmax = float(np.percentile(bg[b > 0], 99.5)) if bg is not None and (b > 0).any() else 1.0
    fg = b > 0
    c = np.round(np.argwhere(fg).mean(axis=0)).astype(int) if fg.any() else np.array(a.shape) // 2
    sp = ours.spacing
    views = [("axial", 2), ("coronal", 1), ("sagittal", 0)]
    fig = Figure(figsize=(12, 12.5))
    axes = fig.subplots(3, 3, squeeze=False)
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
                ax.imshow(np.ma.masked_where(diff == 0, diff), cmap=ListedColormap(["#ff00ff"]), vmin=0,
                          vmax=1,
                          alpha=0.8, origin="lower", aspect=aspect, interpolation="nearest")
                frac = float(diff.sum()) / max(1, int(((a2 > 0) | (b2 > 0)).sum()))
                what = f"disagreement ({frac * 100:.0f} % of head pixels)"
            if vault_plane_z_mm is not None and name != "axial":
                from navigator.segmentation.validation import world_superior

                h = world_superior(a.shape, ours.affine, vault_up)[tuple(sl)].T
                if h.min() < vault_plane_z_mm < h.max():
                    ax.contour(h, levels=[vault_plane_z_mm], colors=["#00ffff"], linewidths=1.0,
                               linestyles="--")
            ax.set_title(f"{name} {int(c[ax_i])}: {what}", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [Line2D([0], [0], color=colors[k], lw=6, label=f"{k} {classes[k]}")
               for k in sorted(classes)]
    handles.append(Line2D([0], [0], color="#ff00ff", lw=6, label="classes differ"))
    if vault_plane_z_mm is not None:
        handles.append(Line2D([0], [0], color="#00ffff", lw=1.5, ls="--", label="vault plane"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.03, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _plane(vol_data: np.ndarray, affine: np.ndarray, origin: np.ndarray, e_u: np.ndarray, e_v: np.ndarray,
           half: float, step: float, order: int) -> np.ndarray:
    """Sample a volume on the plane ``origin + u e_u + v e_v`` (world mm), u, v in [-half, half]
    with ``step`` mm; returns an array indexed [v, u] (rows = v)."""
    s = np.arange(-half, half + 1e-6, step)
    uu, vv = np.meshgrid(s, s)
    world = origin[None, None, :] + uu[..., None] * e_u + vv[..., None] * e_v
    inv = np.linalg.inv(affine)
    ijk = world @ inv[:3, :3].T + inv[:3, 3]
    return ndi.map_coordinates(vol_data, np.moveaxis(ijk, -1, 0), order=order, mode="constant", cval=0.0)


def _letters(ax, letters: tuple[str, str, str, str]) -> None:
    import matplotlib.patheffects as pe

    kw = dict(transform=ax.transAxes, fontsize=12, fontweight="bold", color="#ffe14d",
              path_effects=[pe.withStroke(linewidth=3, foreground="black")])
    left, right, bottom, top = letters
    ax.text(0.02, 0.5, left, ha="left", va="center", **kw)
    ax.text(0.98, 0.5, right, ha="right", va="center", **kw)
    ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **kw)
    ax.text(0.5, 0.98, top, ha="center", va="top", **kw)


#: The fourth panel cuts the left hemisphere this far (mm) from the midline, parallel to it:
#: the medial cortex (cingulate, medial frontal and parietal), not the interhemispheric fissure
#: and the falx that a cut exactly through the midline shows as a sheet of CSF on any head.
MEDIAL_VIEW_OFFSET_MM = 4.0


def report_planes(labels: Volume, views: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The four planes of the QC report: axial, coronal and sagittal through the left DLPFC
    target and the left medial surface (:data:`MEDIAL_VIEW_OFFSET_MM` left of the midline,
    parallel to it), each as a dict with 'name', 'point' (subject RAS mm on the
    plane), 'e_u', 'e_v' (in-plane unit vectors: the panel's rightward and upward directions),
    'letters' (left, right, bottom, top) and 'mark' (the target, or None).

    ``views`` is the ``views`` entry of the QC metrics (MNI axes in subject space, target and
    midline point); without it the planes follow the grid's RAS axes, the first three through a
    point 35 mm left of the brain centre, the last through the brain centre.
    """
    lab = np.asarray(labels.data)
    ic = np.isin(lab, (WM, GM, CSF))
    centre_vox = np.argwhere(ic).mean(axis=0) if ic.any() else (np.array(lab.shape) - 1) / 2.0
    centre = labels.voxel_to_world(centre_vox)[0]
    if views:
        axes = np.asarray(views["mni_axes_subject"], float)
        target = np.asarray(views["dlpfc_target"]["subject_ras_mm"], float)
        mid = np.asarray(views["midline_point_subject_ras_mm"], float)
        tname = "left DLPFC"
    else:
        # RAS grid axes (the labels are on a RAS-reoriented grid); no target without a registration:
        # cut the left hemisphere 35 mm from the brain centre (about the DLPFC's distance)
        axes = np.eye(3)
        target = None
        mid = centre
        tname = "left hemisphere (35 mm left of the brain centre)"
    ex, ey, ez = axes
    through = target if target is not None else centre - 35.0 * ex
    planes = [
        {"name": f"axial through {tname}", "point": through, "e_u": ex, "e_v": ey,
         "letters": ("L", "R", "P", "A")},
        {"name": f"coronal through {tname}", "point": through, "e_u": ex, "e_v": ez,
         "letters": ("L", "R", "I", "S")},
        {"name": f"sagittal through {tname}", "point": through, "e_u": ey, "e_v": ez,
         "letters": ("P", "A", "I", "S")},
        {"name": f"medial surface ({MEDIAL_VIEW_OFFSET_MM:.0f} mm left of the midline)",
         "point": mid - MEDIAL_VIEW_OFFSET_MM * ex, "e_u": ey, "e_v": ez, "letters": ("P", "A", "I", "S")},
    ]
    for p in planes:
        p["mark"] = target if (target is not None and "DLPFC" in p["name"]) else None
        n = np.cross(p["e_u"], p["e_v"])
        # centre each panel on the head: the brain centre projected onto the plane
        p["origin"] = centre + float(np.dot(p["point"] - centre, n)) * n
    return planes


def save_qc_report(t1: Volume, labels: Volume, path: str | Path, title: str = "",
                   metrics: dict[str, Any] | None = None, dpi: int = 80) -> Path:
    """The QC figure a clinician reads in ten seconds (PNG, written atomically).

    Left: the verdict in large coloured text ("plausible" or "check: <regions>") and every
    check (tissue volumes and ratios against normal adult ranges, skull thickness, topology,
    medial cortex), failed ones in red. Right: the T1 with the labels as a coloured fill, in
    four planes: axial, coronal and sagittal through the left DLPFC target (cross-hair) and the
    left medial surface (4 mm off the midline). Planes follow the MNI axes (the head's own orientation, whatever the scan's),
    1 mm sampling, subject's right on the right and anterior on the right.

    ``metrics`` is the QC metrics dictionary of :func:`navigator.segmentation.qc.segmentation_metrics`
    with at least the verdict (:func:`navigator.segmentation.qc.save_montage` adds the verdict of
    the labels alone when there is none); without views the planes follow the grid (see
    :func:`report_planes`).
    """
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.colors import ListedColormap

    from navigator.core.atomic import atomic_path
    verdict = (metrics or {}).get("verdict")
    if not verdict:
        raise ValueError("the QC figure needs the QC verdict (metrics['verdict']); use qc.save_montage")
    planes = report_planes(labels, (metrics or {}).get("views"))
    lab = np.asarray(labels.data)
    img = np.asarray(t1.data, np.float32)
    head = lab > 0
    vmax = float(np.percentile(img[head], 99.5)) if head.any() else float(img.max() or 1.0)
    step = float(max(0.7, min(1.0, labels.spacing.min())))
    colors = ["#000000"] + [_COLORS.get(t, "#ff00ff") for t in range(1, 9)]
    cmap = ListedColormap(colors)

    fig = Figure(figsize=(16, 9.6))
    gs = fig.add_gridspec(2, 3, width_ratios=[1.05, 1, 1], left=0.01, right=0.995, top=0.93, bottom=0.06,
                          wspace=0.04, hspace=0.1)
    # ---- verdict and checks
    axt = fig.add_subplot(gs[:, 0])
    axt.axis("off")
    ok = bool(verdict.get("plausible"))
    axt.text(0.0, 1.0, "PLAUSIBLE" if ok else "CHECK", color=_OK_COLOR if ok else _BAD_COLOR, fontsize=30,
             fontweight="bold", va="top", transform=axt.transAxes)
    import textwrap

    y = 0.9
    if not ok:
        regions = verdict["summary"].removeprefix("check: ").split("; ")
        for r in regions:
            for k, line in enumerate(textwrap.wrap(r, 46)):
                axt.text(0.0, y, ("- " if k == 0 else "  ") + line, color=_BAD_COLOR, fontsize=11.5,
                         va="top", transform=axt.transAxes)
                y -= 0.034
        y -= 0.01
    else:
        axt.text(0.0, y, "all checks within normal adult ranges", color=_OK_COLOR, fontsize=12, va="top",
                 transform=axt.transAxes)
        y -= 0.045
    for f in verdict.get("findings", []):
        if f["ok"] is None:
            mark, col = "--", "#888888"
        else:
            mark, col = ("ok", "#333333") if f["ok"] else ("X", _BAD_COLOR)
        for k, line in enumerate(textwrap.wrap(f["message"], 58)):
            axt.text(0.0, y, f"{mark:>2}  " + line if k == 0 else "    " + line, color=col, fontsize=9,
                     family="monospace", va="top", transform=axt.transAxes)
            y -= 0.026
    # ---- planes
    for i, p in enumerate(planes):
        ax = fig.add_subplot(gs[i // 2, 1 + i % 2])
        half = 125.0
        li = _plane(lab.astype(np.float32), labels.affine, p["origin"], p["e_u"], p["e_v"], half, step, 0)
        ti = _plane(img, t1.affine, p["origin"], p["e_u"], p["e_v"], half, step, 1)
        li = np.rint(li).astype(int)
        rows = np.flatnonzero((li > 0).any(axis=1))
        cols = np.flatnonzero((li > 0).any(axis=0))
        s = np.arange(-half, half + 1e-6, step)
        if rows.size and cols.size:
            m = int(round(6 / step))
            r0, r1 = max(rows[0] - m, 0), min(rows[-1] + m, len(s) - 1)
            c0, c1 = max(cols[0] - m, 0), min(cols[-1] + m, len(s) - 1)
        else:
            r0, r1, c0, c1 = 0, len(s) - 1, 0, len(s) - 1
        li, ti = li[r0:r1 + 1, c0:c1 + 1], ti[r0:r1 + 1, c0:c1 + 1]
        ext = (s[c0] - step / 2, s[c1] + step / 2, s[r0] - step / 2, s[r1] + step / 2)
        ax.imshow(ti, cmap="gray", origin="lower", vmin=0, vmax=vmax, extent=ext, interpolation="nearest")
        ax.imshow(np.ma.masked_where(li == 0, li), cmap=cmap, vmin=0, vmax=8, alpha=0.38, origin="lower",
                  extent=ext, interpolation="nearest")
        for t in np.unique(li):
            if t > 0:
                ax.contour(s[c0:c1 + 1], s[r0:r1 + 1], (li == t).astype(float), levels=[0.5],
                           colors=[_COLORS.get(int(t), "#ff00ff")], linewidths=0.6)
        if p["mark"] is not None:
            d = p["mark"] - p["origin"]
            mu, mv = float(d @ p["e_u"]), float(d @ p["e_v"])
            ax.plot([mu], [mv], marker="+", ms=22, mew=2.2, color="#00ffff")
            ax.plot([mu], [mv], marker="o", ms=14, mfc="none", mew=1.5, color="#00ffff")
        _letters(ax, p["letters"])
        ax.set_title(p["name"], fontsize=11 if len(p["name"]) < 45 else 9.5)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    from matplotlib.patches import Patch

    tags = [t for t in _COLORS if (lab == t).any()]
    handles: list[Any] = [Patch(facecolor=_COLORS[t], edgecolor="#333333", label=f"{t} {TISSUES[t].name}")
                          for t in tags]
    if any(p["mark"] is not None for p in planes):
        handles.append(Line2D([0], [0], color="#00ffff", marker="+", ms=12, lw=0, mew=2,
                                  label="DLPFC target"))
    fig.legend(handles=handles, loc="lower right", ncol=len(handles), fontsize=9.5, frameon=False,
               bbox_to_anchor=(0.995, 0.0), handlelength=1.5, columnspacing=1.2)
    if title:
        fig.suptitle(title, fontsize=13, x=0.01, ha="left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path
