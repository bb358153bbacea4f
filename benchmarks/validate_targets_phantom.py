"""Validate head coordinates and targets on a prepared phantom workspace against its ground truth.

Usage:
    python benchmarks/validate_targets_phantom.py WORKSPACE
where WORKSPACE is a phantom sample (`navigator sample phantom --out DIR`) that went through
`navigator prepare DIR` (segmentation -> MNI transforms, mesh -> surfaces, head coordinates).

Prints: automatic fiducials vs ground truth; EEG 10-10 positions vs positions built from the
ground-truth fiducials on the same scalp; MNI landmarks mapped with the estimated transform vs
their exact positions; Beam F3 vs 10-10 F3; the cortical points of the DLPFC library targets
and the distances between them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from navigator.core.workspace import Workspace
from navigator.targets import library
from navigator.targets.context import HeadContext
from navigator.targets.eeg import Fiducials, construct_10_10
from navigator.targets.resolve import resolve_target


def main(path: str) -> None:
    ws = Workspace.open(path)
    ctx = HeadContext(ws)
    gt_dir = ws.root / "ground_truth"
    gt_fid = json.loads((gt_dir / "fiducials.json").read_text())["points"]
    print(f"workspace {ws.root}")
    print("\nautomatic fiducials vs ground truth (mm):")
    fid = ctx.fiducials
    for n in ("nasion", "inion", "lpa", "rpa"):
        print(f"  {n:7s} {np.linalg.norm(getattr(fid, n) - np.array(gt_fid[n])):6.2f}")
    gt = Fiducials(*(gt_fid[n] for n in ("nasion", "inion", "lpa", "rpa")), source="ground truth")
    eeg_gt = construct_10_10(ctx.scalp, gt)
    eeg = ctx.eeg
    d = np.array([np.linalg.norm(eeg[n] - eeg_gt[n]) for n in eeg_gt.labels() if n in eeg])
    print(f"\nEEG 10-10 ({len(d)} positions) vs built from ground-truth fiducials: median {np.median(d):.2f} mm, "
          f"95th percentile {np.percentile(d, 95):.2f} mm, max {d.max():.2f} mm")
    lm = json.loads((gt_dir / "mni_landmarks.json").read_text())["points"]
    tr = ctx.require_transform()
    errs = {k: float(np.linalg.norm(tr.mni_to_subject(np.array(v["mni"]))[0] - np.array(v["subject"])))
            for k, v in lm.items()}
    print("\nMNI landmarks mapped to the subject vs exact (mm): "
          + ", ".join(f"{k} {v:.2f}" for k, v in errs.items()) + f"; median {np.median(list(errs.values())):.2f}")
    beam = resolve_target(ctx, "beam-f3")
    f3 = resolve_target(ctx, "eeg:F3")
    print(f"\nBeam F3 vs 10-10 F3 on the scalp: {np.linalg.norm(np.array(beam.point) - np.array(f3.point)):.1f} mm")
    names = list(library.LIBRARY) + ["beam-f3", "eeg:F3"]
    res = {n: resolve_target(ctx, n) for n in names}
    pts = {n: np.array(r.cortical_point) for n, r in res.items()}
    print("\ncortical points (subject RAS mm), scalp-cortex distance:")
    for n, r in res.items():
        print(f"  {n:12s} ({', '.join(f'{v:7.1f}' for v in pts[n])})  {r.scalp_cortex_distance_mm:5.1f} mm")
    print("\ndistances between cortical points (mm):")
    print("| | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for a in names:
        print(f"| {a} | " + " | ".join(f"{np.linalg.norm(pts[a] - pts[b]):.0f}" for b in names) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo_output/phantom")
