"""Preparation stage "head-coordinates": fiducials and EEG 10-10 positions in the workspace."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from navigator.core.progress import Progress, ensure_progress
from navigator.core.transforms import AFFINE_NAME, MNI_TO_SUBJECT_NAME, SUBJECT_TO_MNI_NAME
from navigator.core.workspace import Workspace

log = logging.getLogger("navigator")
STEP = "head-coordinates"


def head_coordinates_workspace(ws: Workspace, *, progress: Progress | None = None, force: bool = False,
                               system: str = "10-10") -> bool:
    """Find fiducials (unless the user set them) and construct EEG positions on the scalp.

    Needs the scalp surface and the MNI transforms. Fiducials whose ``source`` is "user" are
    kept as they are. Returns True if the step ran, False if it was current or not possible
    (a head model without MNI transforms, such as a sphere, has no fiducials: logged).
    """
    from navigator.targets.context import HeadContext
    from navigator.targets.eeg import construct_10_10
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
    params = {"system": system, "fiducials": "user" if user_fid else "auto"}
    if not force and ws.step_is_current(STEP, params, inputs):
        return False
    t0 = time.perf_counter()
    ctx = HeadContext(ws)
    progress.update(0.05, "fiducials")
    fid = load_fiducials(fid_path) if user_fid else find_fiducials(ctx.scalp, ctx.require_transform())
    progress.update(0.3, "EEG 10-10 positions")
    eeg = construct_10_10(ctx.scalp, fid)
    # outputs are staged and committed together with the manifest record (navigator.core.step_commit)
    with ws.step_commit(STEP) as tx:
        if not user_fid:
            save_fiducials(fid, tx.stage(fid_path))
        write_positions(ws, eeg, tx.stage(ws.path("eeg")))
        tx.commit(params, inputs=inputs, outputs=[fid_path, ws.path("eeg")], seconds=time.perf_counter() - t0)
    progress.update(1.0, "done")
    return True


def write_positions(ws: Workspace, eeg, path: Path | None = None) -> None:
    """Write EEG positions to ``path`` (default targets/eeg.csv) in SimNIBS's EEG CSV format."""
    from navigator.io.eeg_positions import EegPositions as CapFile, write_eeg_csv

    fid_names = {"Nz": "Nz", "Iz": "Iz", "LPA": "LPA", "RPA": "RPA"}
    names = [n for n in eeg.names() if n not in fid_names]
    cap = CapFile(names=names, positions=np.array([eeg[n] for n in names]),
                  fiducials={k: np.asarray(eeg[k]) for k in fid_names})
    write_eeg_csv(cap, ws.path("eeg") if path is None else path)
