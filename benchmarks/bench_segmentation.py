"""Benchmark: segmentation of a 1 mm 256 x 256 x 176 T1 (wall time, CPU time, peak memory).

The T1 is a phantom (``navigator.samples.phantom``, seed given by ``--seed``) resampled onto a
1 mm grid of 176 (sagittal, R-L) x 256 x 256 voxels centred on the head, i.e. the size of a
typical MPRAGE. Usage::

    python benchmarks/bench_segmentation.py [--seed 3] [--workspace DIR] [--t2]

Prints the figures; the limits of the issue are 5 minutes wall on 2 cores and 8 GB peak.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workspace", help="existing phantom workspace to take the T1 from")
    ap.add_argument("--t2", action="store_true", help="also pass the T2")
    ap.add_argument("--method", choices=("intensity-rules", "head-priors"), default="intensity-rules",
                    help="segmentation method (navigator segment --method)")
    ap.add_argument("--image", help="a real T1 (NIfTI/DICOM) to put on the benchmark grid instead of a phantom")
    args = ap.parse_args(argv)

    from navigator.core.volume import Volume
    from navigator.io.images import load_image
    from navigator.segmentation.pipeline import segment_head
    from navigator.segmentation.preprocess import resample

    tmp = None
    if args.image:
        t1 = load_image(args.image)
    elif args.workspace:
        ws_dir = Path(args.workspace)
    else:
        from navigator.samples.phantom import write_phantom

        tmp = tempfile.TemporaryDirectory()
        ws_dir = Path(tmp.name) / "bench"
        write_phantom(ws_dir, seed=args.seed)
    if not args.image:
        t1 = load_image(ws_dir / "input" / "T1.nii.gz")
    # 1 mm grid, 176 x 256 x 256 (R-L sagittal slices), centred on the head's bounding box
    lo, hi = t1.world_bounds()
    centre = 0.5 * (lo + hi)
    shape = (176, 256, 256)
    aff = np.eye(4)
    aff[:3, 3] = centre - (np.array(shape) - 1) / 2.0
    bench = resample(t1, aff, shape, order=1)
    bench = Volume(bench.data.astype(np.float32), aff, source="benchmark T1 256x256x176")
    t2 = None
    if args.t2 and not args.image:
        t2 = resample(load_image(ws_dir / "input" / "T2.nii.gz"), aff, shape, order=1)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    c0 = time.process_time()
    w0 = time.perf_counter()
    res = segment_head(bench, t2, params={"method": args.method})
    wall = time.perf_counter() - w0
    cpu = time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"grid: {shape} voxels, 1 mm; cores available: {os.cpu_count()}; T2: {t2 is not None}; "
          f"method: {args.method}; source: {args.image or 'phantom seed %d' % args.seed}")
    print(f"wall time: {wall:.1f} s   CPU time (all threads): {cpu:.1f} s")
    print(f"peak resident memory: {peak / 1024:.2f} GB (before segmentation {rss0 / 1024:.2f} GB)")
    print("stage timings (s): " + ", ".join(f"{k} {v}" for k, v in res.timings.items()))
    print(f"ICV {res.metrics['intracranial_volume_ml']} ml; topology ok: {res.metrics['topology']['all_passed']}")
    ok = wall <= 300 and peak <= 8 * 1024
    print("within limits (<= 300 s wall, <= 8 GB)" if ok else "OUTSIDE the limits (300 s wall, 8 GB)")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
