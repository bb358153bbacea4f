"""Time the sample generators and report the sizes of what they write.

Run: python benchmarks/bench_samples.py [OUT_DIR]
Prints wall time for the sphere, the phantom (first run builds the template anatomy), a second
phantom seed (anatomy cached in the process), file sizes and the peak resident memory.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from navigator.samples import write_sample


def _size_mb(folder: Path) -> dict[str, float]:
    return {p.relative_to(folder).as_posix(): round(p.stat().st_size / 1e6, 2)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="bench_samples_"))
    for name, seed in (("sphere", 0), ("phantom", 0), ("phantom", 1)):
        out = base / f"{name}{seed}"
        t = time.perf_counter()
        write_sample(name, out, seed=seed, force=True)
        dt = time.perf_counter() - t
        sizes = _size_mb(out)
        print(f"{name} seed {seed}: {dt:.1f} s, total {sum(sizes.values()):.1f} MB")
        for rel, mb in sizes.items():
            if mb >= 0.05:
                print(f"    {rel}: {mb} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MB")


if __name__ == "__main__":
    main()
