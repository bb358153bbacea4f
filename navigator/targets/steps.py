"""The ``targets`` step (:mod:`navigator.core.steps` protocol): resolve the named targets on the
subject and record them in ``targets/resolved.json``, which the later steps read through
:meth:`navigator.targets.head.Head.target`. (The preparation stage that places fiducials and EEG
positions is :mod:`navigator.targets.step`.)"""

from __future__ import annotations

import json
from typing import Any

from navigator.core.progress import Progress, ensure_progress
from navigator.core.steps import Step
from navigator.core.workspace import Workspace
from navigator.targets.head import RESOLVED, TARGETS_STEP, Head


def resolve_targets_step(ws: Workspace, *, progress: Progress | None = None, force: bool = False,
                         names: list[str]) -> bool:
    """Resolve target SPECs ``names`` (library names, ``mni:``, ``eeg:F3``, rules; see
    :func:`navigator.targets.resolve.resolve_target`) and record them; False when current."""
    progress = ensure_progress(progress)
    ran = Head.of(ws).resolve_targets(list(names), force=force)
    progress.update(1.0, "targets resolved" if ran else "targets are up to date")
    return ran


def target_numbers(ws: Workspace) -> dict[str, Any]:
    """Per recorded target: its point (subject RAS mm; the cortical point when it has one), its MNI
    coordinate and its scalp-cortex distance (mm), as ``target_<name>_x`` etc."""
    path = ws.root / RESOLVED
    if not path.exists():
        return {}
    out: dict[str, Any] = {}
    for name, t in json.loads(path.read_text())["targets"].items():
        pt = t.get("cortical_point") or t.get("point")
        out.update({f"target_{name}_x": pt[0], f"target_{name}_y": pt[1], f"target_{name}_z": pt[2]})
        if t.get("mni"):
            out.update({f"target_{name}_mni_x": t["mni"][0], f"target_{name}_mni_y": t["mni"][1],
                        f"target_{name}_mni_z": t["mni"][2]})
        if t.get("scalp_cortex_distance_mm") is not None:
            out[f"target_{name}_scalp_cortex_mm"] = t["scalp_cortex_distance_mm"]
    return out


TARGETS = Step("targets", resolve_targets_step, "resolve the DLPFC targets on the subject", record=TARGETS_STEP,
               outputs=(RESOLVED,), numbers=target_numbers)
