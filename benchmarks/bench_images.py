"""Image loading benchmarks: NIfTI load + reorientation, image_info, DICOM series conversion.

Run: ``python benchmarks/bench_images.py``. Prints wall-clock seconds per operation.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from navigator.io.dicom import dicom_to_nifti
from navigator.io.images import image_info, load_image


def timed(label: str, fn, repeat: int = 3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<55s} {best:8.3f} s")
    return out


def main() -> None:
    from conftest import write_dicom_series

    shape = (176, 256, 256)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 1000, size=shape).astype(np.int16)
    ixi = REPO.parent / "shared" / "data" / "ixi" / "IXI015-HH-1258_T1.nii.gz"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        psr = np.array([[0, 0, 1.0, -90], [-1.0, 0, 0, 128], [0, 1.0, 0, -128], [0, 0, 0, 1]])
        for name, suffix in (("psr", ".nii"), ("psr", ".nii.gz")):
            img = nib.Nifti1Image(data, psr)
            img.set_sform(psr, 1)
            img.set_qform(psr, 1)
            path = tmp / f"{name}{suffix}"
            nib.save(img, str(path))
            timed(f"load_image 176x256x256 int16 PSR->RAS ({suffix})", lambda p=path: load_image(p))
        timed("image_info 176x256x256 int16 (.nii.gz)", lambda: image_info(tmp / "psr.nii.gz"))
        if ixi.exists():
            timed("load_image IXI T1 120x120x90 (PSR->RAS)", lambda: load_image(ixi))
            timed("image_info IXI T1", lambda: image_info(ixi))
        dshape = (256, 256, 176)
        ddata = rng.integers(0, 1000, size=dshape).astype(np.int16)
        t0 = time.perf_counter()
        write_dicom_series(tmp / "dcm", ddata, pixel_spacing=(1.0, 1.0), thickness=1.0)
        print(f"{'(writing 176-slice synthetic DICOM series)':<55s} {time.perf_counter() - t0:8.3f} s")
        timed(
            "dicom_to_nifti 256x256x176 (176 files, .nii.gz)",
            lambda: dicom_to_nifti(tmp / "dcm", tmp / "dcm.nii.gz"),
            repeat=2,
        )
        timed("load_image DICOM folder 256x256x176", lambda: load_image(tmp / "dcm"), repeat=2)


if __name__ == "__main__":
    main()
