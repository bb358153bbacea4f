"""The record every optimizer returns: what it wrote and its key numbers.

:class:`OptimizationResult` holds the four things the CLI, the batch runner, the report and the
GUI read from any optimization (the output folder, the plan, the flat key numbers and the
content of ``summary.json``); :class:`navigator.optimize.tms.TmsOptimization` and
:class:`navigator.optimize.tdcs.TdcsOptimization` add what is particular to them (the coil
pose, the montage).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.export.plan import Plan


@dataclass
class OptimizationResult:
    """What an optimizer produced.

    Attributes:
        out_dir: the output folder (plan.json, summary.json, fields/, ...).
        plan: the plan written to plan.json.
        numbers: flat key numbers (field at the target V/m, dose, currents, timings, ...), also
            in summary.json under "batch_numbers".
        summary: the content of summary.json.
    """

    out_dir: Path
    plan: Plan
    numbers: dict[str, Any]
    summary: dict[str, Any]

    @property
    def fields_dir(self) -> Path:
        """The field outputs at the optimum (:func:`navigator.fem.outputs.write_field_outputs`)."""
        return self.out_dir / "fields"
