"""The workspace step "segment": input/T1.nii.gz (+ input/T2.nii.gz) -> labels, transforms, QC.

With an ``input/INV2.nii.gz`` (source "INV2", ``navigator prepare UNI --inv2 INV2``) the T1 is
an MP2RAGE UNI image: it is combined with the second inversion into a background-suppressed
T1-weighted image (:mod:`navigator.segmentation.mp2rage`) before segmentation; the combination
is a parameter of the step and the INV2 one of its inputs (a new INV2 makes the step stale).

Outputs (paths relative to the subject folder):

* ``labels/labels.nii.gz``: uint8 SimNIBS labels on the grid of ``input/T1.nii.gz`` as loaded
  by :func:`navigator.io.images.load_image` (reoriented to RAS without resampling: the same
  voxel centres in world space, axes permuted/flipped to R, A, S).
* ``transforms/``: subject <-> MNI affine and deformation fields (:class:`MniTransform`).
* ``labels/qc/segmentation_qc.png`` (label contours over the bias-corrected T1) and
  ``labels/qc/segmentation_qc.json`` (metrics, warnings, timings).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from navigator.core.atomic import atomic_write_json
from navigator.core.errors import WorkspaceError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.workspace import Workspace

STEP_NAME = "segment"
QC_PNG = "segmentation_qc.png"
QC_JSON = "segmentation_qc.json"


def _inputs(ws: Workspace, use_t2: bool) -> tuple[Path, Path | None, Path | None]:
    """(T1, T2 or None, MP2RAGE INV2 or None) of the workspace."""
    srcs = ws.sources()
    t1 = ws.source_path("T1") if "T1" in srcs else ws.path("t1")
    if not t1.exists():
        raise WorkspaceError(f"{ws.root}: workspace has no T1 image (input/T1.nii.gz); add one first")
    t2 = None
    if use_t2:
        cand = ws.source_path("T2") if "T2" in srcs else ws.path("t2")
        t2 = cand if cand.exists() else None
    inv2 = ws.source_path("INV2") if "INV2" in srcs else None
    return t1, t2, inv2


def segment_workspace(ws: Workspace, *, progress: Progress | None = None, force: bool = False,
                      use_t2: bool = True, **params: Any) -> bool:
    """Run the segmentation step on a workspace unless it is current; True if it ran.

    ``use_t2`` uses ``input/T2.nii.gz`` when present. Extra ``params`` override
    :data:`navigator.segmentation.pipeline.DEFAULT_PARAMS` and are recorded in the manifest;
    without ``method`` the method recorded by the last segmentation of this workspace is kept.
    With an INV2 source the T1 (an MP2RAGE UNI) is first combined with it; ``mp2rage_combination``
    chooses how (:data:`navigator.segmentation.mp2rage.COMBINATIONS`), recorded as a parameter.
    """
    from navigator.io.images import load_image, save_nifti
    from navigator.io.transforms import save_mni_transform
    from navigator.segmentation.pipeline import DEFAULT_PARAMS, segment_head
    from navigator.segmentation.qc import save_montage

    progress = ensure_progress(progress)
    from navigator.segmentation import mp2rage

    t1_path, t2_path, inv2_path = _inputs(ws, use_t2)
    inputs = [t1_path] + ([t2_path] if t2_path is not None else []) + ([inv2_path] if inv2_path is not None else [])
    combination = params.pop("mp2rage_combination", None) or mp2rage.DEFAULT_COMBINATION
    if combination not in mp2rage.COMBINATIONS:
        raise WorkspaceError(f"unknown MP2RAGE combination {combination!r} (choose from "
                             f"{', '.join(mp2rage.COMBINATIONS)})")
    if "method" not in params:
        # the method the workspace was last segmented with stays (e.g. `navigator segment
        # --method head-priors`, then `navigator prepare` for the rest)
        rec = ws.step(STEP_NAME)
        if rec is not None and rec.parameters.get("method"):
            params = {**params, "method": rec.parameters["method"]}
    parameters = {**DEFAULT_PARAMS, **params, "use_t2": t2_path is not None}
    if inv2_path is not None:  # only then: the records of workspaces without one stay current
        parameters["mp2rage_combination"] = combination
    if not force and ws.step_is_current(STEP_NAME, parameters, inputs):
        progress.update(1.0, "segmentation is up to date")
        return False
    t0 = time.perf_counter()
    t1 = load_image(t1_path)
    mp_info = None
    if inv2_path is not None:
        progress.update(0.0, "combining the MP2RAGE UNI and INV2")
        t1, mp_info = mp2rage.combine_volumes(t1, load_image(inv2_path), combination,
                                              uni_path=t1_path, inv2_path=inv2_path)
    t2 = load_image(t2_path) if t2_path is not None else None
    res = segment_head(t1, t2, progress=progress.sub(0.0, 0.95), params={**DEFAULT_PARAMS, **params})
    warnings = (mp_info.warnings if mp_info is not None else []) + list(res.warnings)
    progress.update(0.96, "writing results")
    import numpy as np

    # outputs are staged and committed together with the manifest record: a crash or kill
    # leaves the previous labels, transforms, QC and record (navigator.core.step_commit)
    with ws.step_commit(STEP_NAME) as tx:
        save_nifti(res.labels, tx.stage(ws.path("labels")), dtype=np.uint8)
        outputs: list[Path] = [ws.path("labels")]
        outputs += [tx.staged_final(p) for p in save_mni_transform(res.transform, tx.stage(ws.path("transforms")))]
        qc_dir = ws.path("qc")
        png = save_montage(res.t1, res.labels, tx.stage(qc_dir / QC_PNG), title=f"{ws.subject_id}: segmentation")
        report = {"subject_id": ws.subject_id, "t1": ws.relpath(t1_path),
                  "t2": ws.relpath(t2_path) if t2_path is not None else None,
                  **({"inv2": ws.relpath(inv2_path), "mp2rage": mp_info.to_json()} if mp_info is not None else {}),
                  "labels_grid": "grid of input/T1.nii.gz reoriented to RAS (no resampling)",
                  **res.metrics, "warnings": warnings}
        atomic_write_json(tx.stage(qc_dir / QC_JSON), report)
        outputs += [tx.staged_final(png), qc_dir / QC_JSON]
        tx.commit(parameters, inputs, outputs, seconds=round(time.perf_counter() - t0, 2))
    progress.update(1.0, "segmentation written")
    return True


def load_qc(ws: Workspace) -> dict[str, Any] | None:
    """The QC metrics JSON of the last segmentation (None if there is none)."""
    import json

    p = ws.path("qc") / QC_JSON
    return json.loads(p.read_text()) if p.exists() else None
