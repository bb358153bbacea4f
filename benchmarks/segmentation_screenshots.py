"""Documentation screenshots of the head segmentation: axial, coronal and sagittal label overlays.

Segments a T1 with :func:`navigator.segmentation.pipeline.segment_head` and writes
``segmentation_axial.png``, ``segmentation_coronal.png`` and ``segmentation_sagittal.png`` to
the output folder. Each image shows one slice through the brain centre (centroid of WM + GM,
i.e. the centre of the cranium): left the bias-corrected T1, right the same slice with the
labels as a semi-transparent fill plus contours, orientation letters for world RAS
(neurological display: subject's right on the right of axial/coronal views, anterior on the
right of sagittal views) and a legend with the SimNIBS tissue numbers. Also prints the
intracranial volume, the median skull thickness and whether all topology checks pass.

Also writes ``segmentation_qc_report.png``: the QC report of ``navigator segment`` (verdict,
checks, planes through the left DLPFC and the midline; see docs/segmentation.md) and prints the
verdict.

Default input is the real IXI T1 in ``../shared/data/ixi`` (see ``../shared/data/README.md``);
when it is absent the script says so and exits 0 without writing anything. Usage::

    python benchmarks/segmentation_screenshots.py [T1] [--out docs/screenshots]
        [--save-labels labels.nii.gz] [--labels labels.nii.gz]

``--labels`` draws a previously saved label map (same grid as the T1) instead of segmenting;
the raw T1 is then shown and no metrics are printed.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
IXI = REPO.parent / "shared" / "data" / "ixi" / "IXI015-HH-1258_T1.nii.gz"

#: Label numbers shown in the legend (SimNIBS convention) and their short names.
LEGEND = {1: "WM", 2: "GM", 3: "CSF", 4: "bone", 5: "scalp", 6: "eyes", 7: "compact bone",
          8: "spongy bone", 9: "blood", 10: "muscle"}

#: view -> (RAS axis normal to the slice, letters (left, right, bottom, top) of the panel)
VIEWS = {"axial": (2, ("L", "R", "P", "A")),
         "coronal": (1, ("L", "R", "I", "S")),
         "sagittal": (0, ("P", "A", "I", "S"))}
_AXIS_NAMES = ("x", "y", "z")


def _ras(vol):
    """(data, affine) permuted/flipped to the closest RAS voxel order (no resampling)."""
    from navigator.io.images import reorient_to_ras

    data, aff, _ = reorient_to_ras(np.asarray(vol.data), vol.affine)
    return data, aff


def _letter(ax, x, y, text, ha, va):
    import matplotlib.patheffects as pe

    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=15, fontweight="bold",
            color="#ffe14d", path_effects=[pe.withStroke(linewidth=3, foreground="black")])


def save_view(t1_data: np.ndarray, lab: np.ndarray, affine: np.ndarray, view: str, path: Path, title: str,
              footer: str, dpi: int = 110) -> Path:
    """One PNG: T1 slice | T1 slice with label fill + contours, orientation letters, legend.

    ``t1_data`` and ``lab`` share the voxel grid ``affine``, which must be (close to) RAS with
    positive diagonal, i.e. as returned by :func:`_ras`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Patch

    from navigator.core.atomic import atomic_path
    from navigator.segmentation.qc_figure import _COLORS, MEDIAL_VIEW_OFFSET_MM, _center_of

    normal, (left, right, bottom, top) = VIEWS[view]
    c = np.asarray(_center_of(lab), float)
    if view == "sagittal":  # the left medial surface, not the fissure (as the QC report)
        c[normal] -= MEDIAL_VIEW_OFFSET_MM / abs(float(affine[normal, normal]))
    sl = [slice(None)] * 3
    sl[normal] = int(round(c[normal]))
    im2 = np.asarray(t1_data, np.float32)[tuple(sl)].T  # rows: second in-plane axis, cols: first
    lb2 = np.asarray(lab)[tuple(sl)].T
    u, v = [a for a in range(3) if a != normal]
    sp = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    # world mm extent of the in-plane axes (voxel centres +- half a voxel)
    uu = affine[u, u] * np.arange(lab.shape[u]) + affine[u, 3]
    vv = affine[v, v] * np.arange(lab.shape[v]) + affine[v, 3]
    extent = (uu[0] - sp[u] / 2, uu[-1] + sp[u] / 2, vv[0] - sp[v] / 2, vv[-1] + sp[v] / 2)
    pos_mm = float(affine[normal, normal] * c[normal] + affine[normal, 3])

    head = lb2 > 0
    vmax = float(np.percentile(im2[head], 99.5)) if head.any() else float(im2.max() or 1.0)
    # legend: every tissue of the volume (the same in all three views); fill: those in the slice
    tags = [int(t) for t in np.unique(lab) if t > 0]
    rgba = np.zeros(lb2.shape + (4,), np.float32)
    for t in tags:
        rgba[lb2 == t] = to_rgba(_COLORS.get(int(t), "#ff00ff"), alpha=0.42)

    fig, axes = plt.subplots(1, 2, figsize=(11, 6.6))
    for ax in axes:
        ax.imshow(im2, cmap="gray", origin="lower", vmin=0, vmax=vmax, extent=extent, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        _letter(ax, 0.02, 0.5, left, "left", "center")
        _letter(ax, 0.98, 0.5, right, "right", "center")
        _letter(ax, 0.5, 0.015, bottom, "center", "bottom")
        _letter(ax, 0.5, 0.985, top, "center", "top")
    ax = axes[1]
    ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest")
    for t in tags:
        m = (lb2 == t).astype(float)
        if not m.any():
            continue
        ax.contour(uu, vv, m, levels=[0.5], colors=[_COLORS.get(int(t), "#ff00ff")], linewidths=0.9)
    axes[0].set_title(f"{view} T1, {_AXIS_NAMES[normal]} = {pos_mm:.0f} mm", fontsize=11)
    axes[1].set_title(f"{view} labels", fontsize=11)
    handles = [Patch(facecolor=_COLORS.get(int(t), "#ff00ff"), edgecolor="black", label=f"{t} {LEGEND.get(int(t), t)}")
               for t in tags]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.035), ncol=min(len(handles), 8),
               fontsize=10.5, frameon=False, handlelength=1.4, columnspacing=1.3)
    fig.suptitle(title, fontsize=12)
    fig.text(0.5, 0.008, footer + "; no fill = label 0 (background/air)", ha="center", va="bottom", fontsize=8,
             color="#555555")
    fig.tight_layout(rect=(0, 0.1, 1, 0.96))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("t1", nargs="?", help=f"T1 image (default: {IXI})")
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshots"), help="output folder")
    ap.add_argument("--labels", help="draw this label map instead of segmenting")
    ap.add_argument("--save-labels", help="also save the computed label map (NIfTI)")
    ap.add_argument("--dpi", type=int, default=110)
    args = ap.parse_args(argv)

    if args.t1 is None:
        t1_path = IXI
        if not t1_path.exists():
            print(f"skipped: the IXI T1 is not available ({t1_path}); it lives beside the repository "
                  "in ../shared/data (see ../shared/data/README.md). Pass a T1 path to use another image.")
            return 0
    else:
        t1_path = Path(args.t1)
        if not t1_path.exists():
            print(f"error: no such file: {t1_path}", file=sys.stderr)
            return 2

    from navigator.core.volume import Volume
    from navigator.io.images import axcodes_of, load_image, save_nifti

    t1 = load_image(t1_path)
    name = t1_path.name.split(".")[0]
    print(f"T1 {t1_path} shape {t1.shape} voxel {np.round(t1.spacing, 2).tolist()} mm "
          f"(stored {''.join(t1.meta.get('original_axcodes', []))}, loaded {''.join(axcodes_of(t1.affine))})")

    if args.labels:
        lab_vol = load_image(args.labels)
        if lab_vol.shape != t1.shape or not np.allclose(lab_vol.affine, t1.affine, atol=1e-3):
            print("error: the label map is not on the T1's grid", file=sys.stderr)
            return 2
        lab_vol = Volume(np.rint(lab_vol.data).astype(np.uint8), lab_vol.affine)
        shown = t1
        t1_desc = "T1"
    else:
        from navigator.core.progress import Progress
        from navigator.segmentation.pipeline import segment_head

        last = [-1]

        def report(f: float, msg: str) -> None:
            pct = int(f * 10) * 10
            if pct > last[0]:
                last[0] = pct
                print(f"  {pct:3d}% {msg}", flush=True)

        w0 = time.perf_counter()
        res = segment_head(t1, progress=Progress(callback=report))
        print(f"segmentation took {time.perf_counter() - w0:.0f} s")
        m = res.metrics
        topo = m["topology"]
        failed = [k for k, v in topo.items() if isinstance(v, bool) and not v and k != "all_passed"]
        print(f"intracranial volume: {m['intracranial_volume_ml']:.1f} ml "
              f"(brain WM+GM {m['brain_volume_ml']:.1f} ml)")
        st = m["skull_thickness_mm"]
        print(f"skull thickness, median: {st['median']:.2f} mm (5th percentile {st['p5']:.2f} mm, "
              f"{st['samples']} samples, {st['region']})")
        print(f"topology checks: {'all pass' if topo['all_passed'] else 'FAILED: ' + ', '.join(failed)}")
        print(f"template brain Dice: {m['registration']['template_brain_dice']}")
        print("volumes (ml):", m["volumes_ml"])
        for w in res.warnings:
            print("warning:", w)
        from navigator.segmentation.qc import verdict_lines

        for line in verdict_lines(m):
            print(line)
        lab_vol = res.labels
        shown = res.t1
        t1_desc = "bias-corrected T1"
        if args.save_labels:
            save_nifti(lab_vol, args.save_labels)

    t1_ras, aff = _ras(shown)
    lab_ras, aff_l = _ras(lab_vol)
    assert np.allclose(aff, aff_l)
    off_diag = np.abs(aff[:3, :3] - np.diag(np.diag(aff[:3, :3]))).max()
    if off_diag > 1e-3:
        print(f"note: the grid is oblique (max off-diagonal {off_diag:.3f}); the letters give the closest "
              "world directions")
    from navigator.segmentation.qc_figure import MEDIAL_VIEW_OFFSET_MM

    out = Path(args.out)
    footer = (f"{name}: {t1_desc} with navigator segment labels; slices through the brain centre "
              f"(sagittal: {MEDIAL_VIEW_OFFSET_MM:.0f} mm to its left, the medial surface); "
              f"benchmarks/segmentation_screenshots.py, {datetime.date.today().isoformat()}")
    for view in VIEWS:
        p = save_view(t1_ras, lab_ras, aff, view, out / f"segmentation_{view}.png",
                      f"{name} - {view} slice (world RAS, subject's right = R)", footer, dpi=args.dpi)
        print("wrote", p)
    from navigator.segmentation.qc import save_montage

    # the QC report as `navigator segment` writes it (verdict from the labels alone with --labels)
    p = save_montage(shown, lab_vol, out / "segmentation_qc_report.png", title=f"{name}: segmentation QC",
                     dpi=min(args.dpi, 80))
    print("wrote", p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
