"""NIfTI coils: the vector potential sampled on a grid (SimNIBS ``.nii`` / ``.nii.gz`` coils).

The image is (X, Y, Z, 3) (or (X, Y, Z, 1, 3)): A per ampere of coil current in T m / A,
i.e. dA/dt in V/m per A/s, components along the coil-frame axes; the affine maps voxel
indices to coil-frame millimetres. Values are interpolated trilinearly; outside the grid the
field is taken as zero (the grids are made large enough for the head, e.g. +-300 mm).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from navigator.core.errors import InputError
from navigator.tms.coil import Coil, GridField
from navigator.tms.primary import vector_potential_coil_frame


def read_nifti_coil(path: str | Path, max_didt: float | None = None) -> Coil:
    """Read a NIfTI A-field coil; ``max_didt`` (A/s) is not stored in the file."""
    import nibabel as nib

    path = Path(path)
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for bad files
        raise InputError(path, f"cannot read NIfTI coil ({exc})") from None
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0, :]
    if data.ndim != 4 or data.shape[3] != 3:
        raise InputError(path, f"NIfTI coil must be a (X, Y, Z, 3) vector image, got shape {data.shape}")
    if not np.isfinite(data).all():
        raise InputError(path, "NIfTI coil holds non-finite values")
    name = path.name.removesuffix(".gz").removesuffix(".nii")
    # SimNIBS writes "dIdtmax=<A/us>[,...];coilname=...;stimulator=...;brand=..." into descrip
    from navigator.tms.ccd import parse_ccd_header

    try:
        descrip = bytes(img.header.get("descrip", b"")).decode("ascii", "replace").strip("\x00 ")
    except (TypeError, AttributeError):
        descrip = ""
    kv = parse_ccd_header(descrip)
    if max_didt is None and kv.get("dIdtmax"):
        try:
            max_didt = float(kv["dIdtmax"].split(",")[0]) * 1e6
        except ValueError:
            pass
    stim = kv.get("stimulator", "")
    return Coil(name=kv.get("coilname") or name, grid=GridField(data, img.affine), max_didt=max_didt,
                stimulator="" if stim == "None" else stim, brand=kv.get("brand", "").replace("None", ""),
                source=str(path))


def write_nifti_coil(grid: GridField, path: str | Path, coil: Coil | None = None) -> None:
    """Write a grid field as a (X, Y, Z, 3) float32 NIfTI, atomically; with ``coil`` its
    max dI/dt, name, stimulator and brand go into the header's ``descrip`` as SimNIBS does."""
    import nibabel as nib

    from navigator.core.atomic import atomic_path

    img = nib.Nifti1Image(grid.data.astype(np.float32), grid.affine)
    if coil is not None:
        parts = []
        if coil.max_didt is not None:
            parts.append(f"dIdtmax={coil.max_didt / 1e6:.6g}")
        parts.append(f"coilname={coil.name}")
        if coil.stimulator:
            parts.append(f"stimulator={coil.stimulator}")
        if coil.brand:
            parts.append(f"brand={coil.brand}")
        img.header["descrip"] = ";".join(parts).encode("ascii", "replace")[:79]
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))


def sample_coil_on_grid(coil: Coil, limits_mm: np.ndarray, resolution_mm: float) -> GridField:
    """Tabulate a coil's vector potential per ampere on a regular coil-frame grid.

    ``limits_mm`` is [[xmin, xmax], [ymin, ymax], [zmin, zmax]]. Useful to export a dipole or
    segment coil as a NIfTI coil.
    """
    lim = np.asarray(limits_mm, dtype=np.float64).reshape(3, 2)
    axes = [np.arange(lo, hi + 0.5 * resolution_mm, resolution_mm) for lo, hi in lim]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)
    a = vector_potential_coil_frame(coil, mesh.reshape(-1, 3))
    affine = np.diag([resolution_mm] * 3 + [1.0])
    affine[:3, 3] = lim[:, 0]
    return GridField(a.reshape(mesh.shape), affine)
