"""The ``simulate-tms`` step (:mod:`navigator.core.steps` protocol): the TMS field of the default
coil placed over a target, written to ``simulations/tms``."""

from __future__ import annotations

from typing import Any

from navigator.core.progress import Progress
from navigator.core.steps import Step, run_folder_step, summary_numbers
from navigator.core.workspace import Workspace
from navigator.targets.head import target_inputs

FOLDER = "simulations/tms"
#: the coil and the stimulator output used when the step's parameters name none
DEFAULT_COIL = "Magstim_D70"
DEFAULT_INTENSITY_PERCENT_MSO = 50.0


def simulate_tms_step(ws: Workspace, *, progress: Progress | None = None, force: bool = False, target: str,
                      **options: Any) -> bool:
    """Place a coil over target SPEC ``target`` and simulate its field (outputs in
    ``simulations/tms``); False when the step's record is current.

    ``options`` are :func:`navigator.tms.simulate.simulate_tms_workspace` keywords: ``coil``
    (library name or coil file; default :data:`DEFAULT_COIL`), ``intensity`` (% MSO, default
    :data:`DEFAULT_INTENSITY_PERCENT_MSO` unless ``didt`` in A/s is given), ``handle_angle``
    (deg), ``distance`` (mm), ``nifti``, ... The target is the one the targets step recorded when
    it is current (:meth:`navigator.targets.head.Head.target`).
    """
    from navigator.fem.outputs import field_key_numbers
    from navigator.tms.simulate import simulate_tms_workspace

    def work(out_dir):
        p = dict(options)
        coil = p.pop("coil", DEFAULT_COIL)
        if "didt" not in p and "intensity" not in p:
            p["intensity"] = DEFAULT_INTENSITY_PERCENT_MSO
        run = simulate_tms_workspace(ws, coil, target_spec=target, out_dir=out_dir, progress=progress, **p)
        return field_key_numbers("tms", run.summary)

    return run_folder_step(ws, SIMULATE_TMS.record_name, {"target": target, **options},
                           [ws.path("mesh")] + target_inputs(ws), FOLDER, work, force=force)


SIMULATE_TMS = Step("simulate-tms", simulate_tms_step, "TMS field of a coil placed over the target",
                    record="batch-simulate-tms", outputs=(f"{FOLDER}/summary.json",),
                    numbers=summary_numbers(FOLDER))
