"""`navigator info IMAGE_OR_DICOM_DIR [--json]` and `navigator convert DICOM_DIR --out FILE.nii.gz`."""

from __future__ import annotations

import json

from navigator.cli import console, subcommand
from navigator.core.errors import InputError


def register(sub) -> None:
    p = subcommand(
        sub,
        "info",
        "Describe an image or DICOM folder (classic, enhanced multi-frame, Siemens mosaic, "
        "compressed): size, voxel size, orientation, sform/qform, intensities and a modality guess. "
        "Exits with 0 when navigator can load the image, 1 (and one error line) when it cannot.",
    )
    p.add_argument("image", help="image file (.nii, .nii.gz, .mgz, .nrrd, .mha) or DICOM folder")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.add_argument(
        "--series",
        metavar="UID",
        default=None,
        help="DICOM series to describe when the folder holds several (UID or series number)",
    )
    p.set_defaults(func=run_info)

    c = subcommand(sub, "convert", "Convert one DICOM series to NIfTI (scanner RAS, sform = qform).")
    c.add_argument("dicom_dir", help="folder with the DICOM files (searched recursively)")
    c.add_argument("--out", required=True, metavar="FILE.nii.gz", help="output NIfTI file (.nii or .nii.gz)")
    c.add_argument(
        "--series",
        metavar="UID",
        default=None,
        help="series to convert when the folder holds several (UID or series number)",
    )
    c.set_defaults(func=run_convert)


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_fmt(x, digits) for x in v) + ")"
    return str(v)


def run_info(args) -> int:
    from navigator.io.images import image_info

    info = image_info(args.image, series_uid=args.series)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2, default=str))
    else:
        _print_table(args, info)
    fatal = unloadable_reasons(info)
    if fatal:  # described above; exit non-zero so scripts can test whether the image loads
        raise InputError(info.path, f"cannot be loaded: {fatal[0]}")
    return 0


def unloadable_reasons(info) -> list[str]:
    """The problems that stop :func:`navigator.io.images.load_image` (several volumes do not:
    a 4-D series loads where a series is expected, e.g. resting-state fMRI)."""
    return [p for p in info.problems if not p.startswith("4-D with")]


def _print_table(args, info) -> None:
    from rich.table import Table

    out = console(args)
    t = Table(title=f"{info.path}", show_header=False, box=None, pad_edge=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    codes = (
        "" if info.sform_code is None else f" (sform_code {info.sform_code}, qform_code {info.qform_code})"
    )
    diff = info.sform_qform_max_diff_mm
    rows = [
        ("format", info.format),
        ("shape", " x ".join(str(s) for s in info.shape)),
        ("voxel size (mm)", _fmt(info.voxel_size_mm)),
        ("axis codes (file order)", "".join(info.axcodes)),
        ("world transform", f"{info.transform}{codes}"),
        (
            "sform vs qform",
            "-"
            if diff is None
            else f"{'DISAGREE' if info.sform_qform_disagree else 'agree'} (max {diff:.3g} mm over the corners)",
        ),
        ("affine (voxel -> RAS mm)", "\n".join("  ".join(f"{x:9.4f}" for x in row) for row in info.affine)),
        (
            "world bounds (mm)",
            "-"
            if info.world_bounds_mm is None
            else f"{_fmt(info.world_bounds_mm[0])} .. {_fmt(info.world_bounds_mm[1])}",
        ),
        (
            "data type",
            info.dtype
            + (
                ""
                if (info.scl_slope, info.scl_inter) == (1.0, 0.0)
                else f" (scaled: x{info.scl_slope:g} + {info.scl_inter:g})"
            ),
        ),
        ("intensity min / max", f"{_fmt(info.min)} / {_fmt(info.max)}"),
        ("percentiles", ", ".join(f"{k} {_fmt(v)}" for k, v in info.percentiles.items()) or "-"),
        ("NaN/inf voxels", str(info.n_nonfinite)),
        ("modality (guess)", f"{info.modality_guess}: {info.modality_reason}"),
    ]
    if info.dicom:
        d = info.dicom
        rows.append(
            (
                "DICOM series",
                f"{d.get('series_description')!s} (#{d.get('series_number')}, UID {d.get('series_uid')})",
            )
        )
        rows.append(("DICOM storage", f"{d.get('storage')} in {d.get('n_files')} file(s), "
                                      f"{d.get('transfer_syntax') or '?'}"))
        rows.append(
            (
                "DICOM TR/TE/TI (ms)",
                (
                    f"{_fmt(d.get('repetition_time_ms'))} / {_fmt(d.get('echo_time_ms'))}"
                    f" / {_fmt(d.get('inversion_time_ms'))}"
                ),
            )
        )
        rows.append(
            (
                "slices",
                (
                    f"{d.get('n_slices')} x {d.get('n_volumes')} volume(s), spacing "
                    f"{_fmt(d.get('slice_spacing_mm'))} mm, tilt {_fmt(d.get('gantry_tilt_deg'), 3)} deg"
                ),
            )
        )
    for w in info.warnings:
        rows.append(("warning", w))
    for p in info.problems:
        rows.append(("PROBLEM", p))
    if not info.problems:
        rows.append(("loadable", "yes"))
    for k, v in rows:
        t.add_row(k, v)
    out.print(t)


def run_convert(args) -> int:
    from navigator.io.dicom import dicom_to_nifti
    from navigator.io.images import image_info

    path = dicom_to_nifti(args.dicom_dir, args.out, series_uid=args.series)
    info = image_info(path)
    out = console(args)
    out.print(f"wrote {path}")
    out.print(
        f"  shape {' x '.join(str(s) for s in info.shape)}, voxel size {_fmt(info.voxel_size_mm)} mm, "
        f"orientation {''.join(info.axcodes)} (sform/qform code 1 = scanner RAS)"
    )
    return 0
