"""Preparation stage "head-coordinates": fiducials and EEG positions in the workspace: the 10-10
system in ``targets/eeg.csv`` and the 10-05 system in ``targets/eeg_caps/EEG10-05.csv`` (both
SimNIBS EEG CSV files, subject RAS mm)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.transforms import AFFINE_NAME, MNI_TO_SUBJECT_NAME, SUBJECT_TO_MNI_NAME
from navigator.core.workspace import Workspace

log = logging.getLogger("navigator")
STEP = "head-coordinates"
#: workspace file of each extra cap system the step builds (relative to the workspace root)
CAP_FILES = {"10-05": "targets/eeg_caps/EEG10-05.csv"}


def stored_cap(ws: Workspace, system: str):
    """The ``system`` cap (a key of :data:`CAP_FILES`) this step stored in ``ws`` as
    :class:`~navigator.io.eeg_positions.EegPositions` (subject RAS mm), or None when not stored."""
    from navigator.io.eeg_positions import read_eeg_csv

    path = ws.root / CAP_FILES[system]
    return read_eeg_csv(path, system=system) if path.exists() else None


def eeg_scalp(ws: Workspace, ctx, fid):
    """The scalp the EEG positions are built on: the subject's, or, when the image lacks part of
    the head (a fiducial had no scalp under it, or the QC found the orbits zero-filled: a defaced
    face), the subject's head completed with the template head where the image was zero-filled
    (:mod:`navigator.targets.completed_scalp`; identical wherever the image has scalp)."""
    from navigator.io.images import load_image
    from navigator.segmentation.step import load_qc
    from navigator.targets.completed_scalp import completed_scalp

    face_removed = bool(fid.estimated) or bool((load_qc(ws) or {}).get("orbits_zero_filled"))
    if not face_removed or not (ws.path("t1").exists() and ws.path("labels").exists()):
        return ctx.scalp
    try:
        transform = ctx.require_transform()
    except NavigatorError:
        return ctx.scalp
    t1, labels = load_image(ws.path("t1")), load_image(ws.path("labels"))
    if t1.shape != labels.shape or not np.allclose(t1.affine, labels.affine, atol=1e-4):
        return ctx.scalp
    surface = completed_scalp(t1, labels, transform)
    if surface is None:
        return ctx.scalp
    log.warning("%s: the image lacks part of the head (defaced face); the EEG positions are built on the "
                "scalp completed with the MNI template head there", ws.root)
    return surface


def head_coordinates_workspace(ws: Workspace, *, progress: Progress | None = None, force: bool = False,
                               system: str = "10-10") -> bool:
    """Find fiducials (unless the user set them) and construct EEG positions on the scalp: the
    10-10 system (``targets/eeg.csv``) and the 10-05 system (:data:`CAP_FILES`).

    Needs the scalp surface and the MNI transforms. Fiducials whose ``source`` is "user" are
    kept as they are. Returns True if the step ran, False if it was current or not possible
    (a head model without MNI transforms, such as a sphere, has no fiducials: logged).
    """
    from navigator.targets.context import HeadContext
    from navigator.targets.eeg import construct_10_10, construct_cap
    from navigator.targets.fiducials import find_fiducials, load_fiducials, save_fiducials

    progress = ensure_progress(progress)
    scalp = ws.path("scalp")
    tdir = ws.path("transforms")
    transforms = [tdir / AFFINE_NAME, tdir / SUBJECT_TO_MNI_NAME, tdir / MNI_TO_SUBJECT_NAME]
    fid_path = ws.path("fiducials")
    user_fid = fid_path.exists() and load_fiducials(fid_path).source == "user"
    if not scalp.exists():
        log.warning("%s: no scalp surface; skipping fiducials and EEG positions", ws.root)
        return False
    if not user_fid and not all(p.exists() for p in transforms):
        log.warning("%s: no MNI transforms and no user fiducials; skipping fiducials and EEG positions", ws.root)
        return False
    inputs = [scalp] + ([fid_path] if user_fid else transforms)
    inputs += [p for p in (ws.path("t1"), ws.path("labels")) if p.exists()]  # the scalp's completion
    params = {"system": system, "fiducials": "user" if user_fid else "auto", "caps": sorted(CAP_FILES)}
    if not force and ws.step_is_current(STEP, params, inputs):
        return False
    t0 = time.perf_counter()
    ctx = HeadContext(ws)
    progress.update(0.05, "fiducials")
    fid = load_fiducials(fid_path) if user_fid else find_fiducials(ctx.scalp, ctx.require_transform())
    scalp_for_eeg = eeg_scalp(ws, ctx, fid)
    progress.update(0.3, "EEG 10-10 positions")
    eeg = construct_10_10(scalp_for_eeg, fid)
    progress.update(0.6, "EEG 10-05 positions")
    caps = {}
    for cap_system in sorted(CAP_FILES):
        try:
            caps[cap_system] = construct_cap(scalp_for_eeg, fid, cap_system)
        except NavigatorError as exc:  # the 10-10 positions stand on their own
            log.warning("%s: no EEG %s positions: %s", ws.root, cap_system, exc)
    # outputs are staged and committed together with the manifest record (navigator.core.step_commit)
    with ws.step_commit(STEP) as tx:
        if not user_fid:
            save_fiducials(fid, tx.stage(fid_path))
        write_positions(ws, eeg, tx.stage(ws.path("eeg")))
        cap_paths = [ws.root / CAP_FILES[c] for c in caps]
        for c, path in zip(caps, cap_paths):
            write_positions(ws, caps[c], tx.stage(path))
        for c in set(CAP_FILES) - set(caps):
            tx.remove(ws.root / CAP_FILES[c])  # no stale cap from earlier fiducials
        tx.commit(params, inputs=inputs, outputs=[fid_path, ws.path("eeg"), *cap_paths],
                  seconds=time.perf_counter() - t0)
    progress.update(1.0, "done")
    return True


def write_positions(ws: Workspace, eeg, path: Path | None = None) -> None:
    """Write EEG positions (:class:`navigator.io.eeg_positions.EegPositions`) to ``path``
    (default targets/eeg.csv) in SimNIBS's EEG CSV format."""
    from navigator.io.eeg_positions import write_eeg_csv

    write_eeg_csv(eeg, ws.path("eeg") if path is None else path)
