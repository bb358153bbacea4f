"""Validate the head segmentation against an independent reference label image.

Usage::

    python benchmarks/validate_segmentation.py T1 REFERENCE_LABELS --mapping charm5
        [--labels EXISTING_LABELS] [--t2 T2] [--inv2 INV2] [--json OUT.json] [--overlays DIR]
        [--transforms DIR] [--save-labels OUT.nii.gz] [--vault-offset-mm 10]

Without ``--labels`` it runs :func:`navigator.segmentation.segment_head` on the T1 (and T2) in
memory (about 2.5 minutes on 2 cores for a 1 mm head; run it with ``nice``); with ``--labels``
it scores an existing label image (SimNIBS numbering, e.g. ``labels/labels.nii.gz`` of a
workspace, or the workspace folder itself, which also supplies its ``transforms/``) without
re-running. With ``--inv2`` the T1 is an MP2RAGE UNI image, combined with its second inversion
before segmenting as ``navigator prepare --inv2`` does (:mod:`navigator.segmentation.mp2rage`).
``--mapping`` is ``charm5`` (the SimNIBS-charm 5-tissue
convention: 0 air, 1 WM, 2 GM, 3 CSF, 4 bone, 5 all extracranial soft tissue incl. eyes),
``simnibs`` (a full SimNIBS label image: charm's final_tissues, a phantom's ground truth) or a
JSON/TOML file (format in :func:`navigator.segmentation.validation.mapping_from_dict`).

The cranial vault is the region more than 10 mm above the reference's intracranial centroid
along the head's superior axis: the MNI z axis of the registration when the script segments,
or of ``--transforms`` (a workspace's ``transforms/`` folder) with ``--labels``; world +z
otherwise (then a head pitched by a few degrees tilts the vault boundary with it).

Prints Dice per class, volumes, intracranial volume and Dice, vault skull Dice and thickness,
the gates of issue 20 (PASS/FAIL) and the QC verdict of our labels (docs/segmentation.md,
Quality control; from the labels alone with ``--labels``). The method (vault plane, thickness)
is documented in ``docs/segmentation.md``. Exit status: 0 when scored (whatever the gates say),
1 on a bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def _load_mapping(spec: str):
    from navigator.segmentation.validation import BUILTIN_MAPPINGS, mapping_from_dict

    if spec in BUILTIN_MAPPINGS:
        return BUILTIN_MAPPINGS[spec]
    p = Path(spec)
    if not p.is_file():
        raise ValueError(f"--mapping {spec!r}: neither a built-in mapping ({', '.join(BUILTIN_MAPPINGS)}) "
                         "nor a JSON/TOML file")
    text = p.read_text()
    if p.suffix.lower() == ".toml":
        import tomllib

        doc = tomllib.loads(text)
    else:
        doc = json.loads(text)
    try:
        return mapping_from_dict(doc, name=p.stem)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None


def _progress_printer():
    from navigator.core.progress import Progress

    last = [-1.0]

    def cb(frac: float, msg: str) -> None:
        if frac - last[0] >= 0.05 or frac >= 1.0:
            last[0] = frac
            print(f"  [{frac * 100:3.0f} %] {msg}", file=sys.stderr, flush=True)

    return Progress(callback=cb)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("t1", help="T1-weighted image (NIfTI/MGH or DICOM folder)")
    ap.add_argument("reference", help="reference label image in the same world space")
    ap.add_argument("--mapping", required=True, help="'charm5' or a JSON/TOML mapping file")
    ap.add_argument("--labels", help="score this existing label image (SimNIBS labels) instead of "
                    "segmenting; a subject workspace folder means its labels/labels.nii.gz and transforms/")
    ap.add_argument("--t2", help="T2 image for the segmentation (same world space)")
    ap.add_argument("--inv2", help="the MP2RAGE's second inversion image when T1 is its UNI image "
                    "(combined as by `navigator prepare --inv2`)")
    ap.add_argument("--mp2rage-combination", default=None,
                    help="with --inv2: how UNI and INV2 are combined (default: the pipeline's)")
    ap.add_argument("--method", choices=("intensity-rules", "head-priors"), default=None,
                    help="segmentation method (navigator segment --method; default: the pipeline default, head-priors)")
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--overlays", help="write three-plane overlays (ours | reference | disagreement) here")
    ap.add_argument("--save-labels", help="write the segmentation's labels to this NIfTI (when segmenting)")
    ap.add_argument("--transforms", help="subject<->MNI transforms folder (a workspace's transforms/) giving "
                    "the head's superior axis for the vault plane when scoring --labels")
    ap.add_argument("--vault-offset-mm", type=float, default=None,
                    help="vault plane height above the reference intracranial centroid (default 10)")
    args = ap.parse_args(argv)

    from navigator.core.errors import NavigatorError
    from navigator.core.volume import Volume
    from navigator.io.images import load_image, save_nifti
    from navigator.segmentation import validation as V

    try:
        mapping = _load_mapping(args.mapping)
        ref = load_image(args.reference)
        t1 = load_image(args.t1)
        info = {"t1": str(args.t1), "reference": str(args.reference), "mapping": mapping.name}
        up = None
        verdict = None
        if args.labels:
            labels_path, transforms = Path(args.labels), args.transforms
            if labels_path.is_dir():
                from navigator.core.workspace import Workspace

                ws = Workspace.open(labels_path)
                labels_path = ws.path("labels")
                if transforms is None and ws.path("transforms").is_dir():
                    transforms = ws.path("transforms")
            labels = load_image(labels_path)
            info["labels"] = str(labels_path)
            seconds = None
            if transforms:
                from navigator.io.transforms import load_mni_transform

                up = V.head_superior_axis(load_mni_transform(transforms).subject_to_mni_affine)
        else:
            from navigator.segmentation import segment_head

            t2 = load_image(args.t2) if args.t2 else None
            if args.inv2:
                from navigator.segmentation import mp2rage

                t1, mp_info = mp2rage.combine_volumes(
                    t1, load_image(args.inv2), args.mp2rage_combination or mp2rage.DEFAULT_COMBINATION,
                    uni_path=args.t1, inv2_path=args.inv2)
                info["mp2rage"] = {**mp_info.to_json(), "inv2": str(args.inv2)}
                for w in mp_info.warnings:
                    print(f"MP2RAGE warning: {w}", file=sys.stderr)
            print(f"segmenting {args.t1}" + (f" with {args.t2}" if args.t2 else "") + " ...", file=sys.stderr)
            t0 = time.perf_counter()
            res = segment_head(t1, t2, progress=_progress_printer(), params={"method": args.method} if args.method else None)
            seconds = round(time.perf_counter() - t0, 1)
            labels = res.labels
            up = V.head_superior_axis(res.registration.affine_s2m)
            verdict = res.metrics.get("verdict")
            info["labels"] = "segment_head (in memory)"
            for w in res.warnings:
                print(f"segmentation warning: {w}", file=sys.stderr)
            if args.save_labels:
                save_nifti(labels, args.save_labels, dtype=np.uint8)
                print(f"labels written to {args.save_labels}", file=sys.stderr)
        kw: dict = {"up": up}
        if args.vault_offset_mm is not None:
            kw["vault_offset_mm"] = args.vault_offset_mm
        result, ours_c, ref_c = V.score_segmentation(np.asarray(labels.data), labels.affine,
                                                     np.asarray(ref.data), ref.affine, mapping, **kw)
    except (NavigatorError, ValueError, OSError) as exc:
        print(f"validate_segmentation: error: {exc}", file=sys.stderr)
        return 1

    print(f"T1 {args.t1}\nreference {args.reference}\nlabels {info['labels']}"
          + (f" ({seconds} s)" if seconds is not None else ""))
    print(V.format_table(result))
    if verdict is None:  # existing labels: the QC verdict from the labels alone
        from navigator.segmentation.qc import labels_verdict

        verdict = labels_verdict(labels).to_json()
    from navigator.segmentation.qc import verdict_lines

    print("\n".join(verdict_lines({"verdict": verdict})))
    if args.json:
        from navigator.core.atomic import atomic_write_json

        atomic_write_json(Path(args.json), {**info, "segmentation_seconds": seconds, **result.to_json(),
                                            "qc_verdict": verdict})
        print(f"figures written to {args.json}")
    if args.overlays:
        from navigator.segmentation.qc_figure import save_agreement_overlays

        t1_on_grid = t1 if V.same_grid(t1.shape, t1.affine, labels.shape, labels.affine) else None
        png = save_agreement_overlays(
            Volume(ours_c, labels.affine), Volume(ref_c, labels.affine), mapping.classes,
            Path(args.overlays) / "validation_overlays.png", image=t1_on_grid,
            vault_plane_z_mm=result.vault_plane_z_mm, vault_up=np.array(result.vault_up_ras),
            title=f"{Path(args.t1).name}: ours vs {Path(args.reference).name} ({mapping.name})")
        print(f"overlays written to {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
