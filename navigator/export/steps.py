"""The ``export`` step (:mod:`navigator.core.steps` protocol): every plan the optimize steps recorded
(``plans/*/plan.json``) exported to the navigation formats, in ``plans/export``."""

from __future__ import annotations

import time
from typing import Any

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.steps import Step
from navigator.core.workspace import Workspace

RECORD = "batch-export"
FOLDER = "plans/export"


def export_plans_step(ws: Workspace, *, progress: Progress | None = None, force: bool = False,
                      formats: str | list[str] = "all") -> bool:
    """Export each ``plans/*/plan.json`` with each format (``"all"``: every exporter that can hold
    something of the plan; or format names) into ``plans/export``; False when current. A plan made
    on another image than the workspace's T1 is refused."""
    from navigator.export.batch import export_all_plans

    progress = ensure_progress(progress)
    plans = sorted(ws.path("plans").glob("*/plan.json"))
    if not plans:
        raise NavigatorError("no plan to export (run an optimize step first)")
    params = {"formats": formats}
    out_dir = ws.root / FOLDER
    if not force and ws.step_is_current(RECORD, params, plans) and out_dir.exists():
        return False
    t0 = time.perf_counter()
    written = export_all_plans(plans, out_dir, formats=formats, t1=ws.source_path("T1"))
    ws.record_step(RECORD, params, inputs=plans, outputs=written, seconds=round(time.perf_counter() - t0, 2))
    progress.update(1.0, f"{len(written)} files exported")
    return True


def export_numbers(ws: Workspace) -> dict[str, Any]:
    """``exported_files``: how many files the recorded export wrote."""
    record = ws.step(RECORD)
    return {} if record is None else {"exported_files": len(record.outputs)}


EXPORT = Step("export", export_plans_step, "plans to every navigation format", record=RECORD, outputs=(FOLDER,),
              numbers=export_numbers)
