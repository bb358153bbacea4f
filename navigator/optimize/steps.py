"""The ``optimize-tms`` and ``optimize-tdcs`` steps (:mod:`navigator.core.steps` protocol): the best
coil placement (``plans/tms``) and the best tDCS montage (``plans/tdcs``) for a target, each with
its plan.json and summary.json (key numbers under "batch_numbers", written by the optimizer)."""

from __future__ import annotations

from typing import Any

from navigator.core.progress import Progress
from navigator.core.steps import Step, run_folder_step, summary_numbers
from navigator.core.workspace import Workspace
from navigator.targets.head import target_inputs

TMS_FOLDER = "plans/tms"
TDCS_FOLDER = "plans/tdcs"


def optimize_tms_step(ws: Workspace, *, progress: Progress | None = None, force: bool = False, target: str,
                      coil: str | None = None, **search: Any) -> bool:
    """Optimize the coil placement over target SPEC ``target`` (outputs in ``plans/tms``); False
    when the step's record is current.

    ``coil``: library name or coil file (default :data:`navigator.optimize.tms.DEFAULT_COIL`);
    ``search``: the short-named :class:`navigator.optimize.tms.TmsSearch` parameters (``radius``,
    ``spacing``, ``angle_step``, ``direction``, ...), their defaults shared with the CLI and GUI.
    """
    from navigator.optimize.tms import TmsSearch, optimize_tms_workspace

    params = {"target": target, **({"coil": coil} if coil is not None else {}), **search}

    def work(out_dir):
        result = optimize_tms_workspace(ws, target=target, out_dir=out_dir, search=TmsSearch.from_params(search),
                                        progress=progress, **({"coil": coil} if coil else {}))
        return result.numbers

    return run_folder_step(ws, OPTIMIZE_TMS.record_name, params, [ws.path("mesh")] + target_inputs(ws),
                           TMS_FOLDER, work, force=force)


def optimize_tdcs_step(ws: Workspace, *, progress: Progress | None = None, force: bool = False, target: str,
                       **search: Any) -> bool:
    """Optimize a tDCS montage for target SPEC ``target`` (outputs in ``plans/tdcs``); False when the
    step's record is current. ``search``: :class:`navigator.optimize.tdcs.TdcsSearch` parameters."""
    from navigator.optimize.tdcs import TdcsSearch, optimize_tdcs_workspace

    def work(out_dir):
        return optimize_tdcs_workspace(ws, target=target, out_dir=out_dir, search=TdcsSearch.from_params(search),
                                       progress=progress).numbers

    return run_folder_step(ws, OPTIMIZE_TDCS.record_name, {"target": target, **search},
                           [ws.path("mesh")] + target_inputs(ws), TDCS_FOLDER, work, force=force)


OPTIMIZE_TMS = Step("optimize-tms", optimize_tms_step, "best coil placement and dose for the target",
                    record="batch-optimize-tms", outputs=(f"{TMS_FOLDER}/plan.json",),
                    numbers=summary_numbers(TMS_FOLDER))
OPTIMIZE_TDCS = Step("optimize-tdcs", optimize_tdcs_step, "best tDCS electrode currents or pad montage",
                     record="batch-optimize-tdcs", outputs=(f"{TDCS_FOLDER}/plan.json",),
                     numbers=summary_numbers(TDCS_FOLDER))
