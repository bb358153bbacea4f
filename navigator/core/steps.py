"""The workspace step protocol: one shape for the preparation stages and the planning steps.

A *step* is a function ``run(ws, *, progress=None, force=False, **params) -> bool`` that

* works on an open :class:`~navigator.core.workspace.Workspace` (never a path) and takes its
  parameters as keywords (the keys of a batch TOML section, the demo's settings);
* returns False without doing anything when its manifest record is current
  (:meth:`Workspace.step_is_current`: same parameters, unchanged inputs, outputs present), unless
  ``force``;
* otherwise writes its outputs into the workspace, records itself in the manifest (parameters,
  input and output hashes, seconds) and returns True;
* reads what earlier steps recorded (the head model, ``targets/resolved.json`` through
  :meth:`navigator.targets.head.Head.target`, ``plans/*/plan.json``) instead of recomputing it;
* reports progress through ``progress`` and can be cancelled there.

:class:`Step` names such a function together with its manifest record, its main outputs and a
reader of its key numbers. Each package declares its own steps: the preparation stages
(``segmentation.step``, ``meshing.step``, ``targets.step``, gathered by ``pipeline``), the
targets step (``targets.steps``), the simulations (``tms.steps``, ``tes.steps``), the
optimizations (``optimize.steps``), the export (``export.steps``) and the report
(``batch.report``). ``navigator.batch.tasks`` runs them in order for a batch subject or for
``navigator demo``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from navigator.core.progress import Progress
from navigator.core.workspace import Workspace

#: where a step that writes a summary.json keeps its key numbers (flat name -> number), so that a
#: skipped step reports the same numbers as the run that wrote them
NUMBERS_KEY = "batch_numbers"


class StepFunction(Protocol):
    """``run(ws, *, progress=None, force=False, **params) -> bool``: True when the step ran,
    False when its record was current (see the module docstring)."""

    def __call__(self, ws: Workspace, *, progress: Progress | None = None, force: bool = False,
                 **params: Any) -> bool: ...


@dataclass(frozen=True)
class Step:
    """One workspace step.

    Attributes:
        name: the name users give it (``[steps] run`` of a batch TOML, the demo's step list).
        run: the step function (:class:`StepFunction`).
        description: one line for listings.
        record: the manifest record it writes (default: ``name``). The planning steps keep the
            ``batch-<name>`` records they were written under before they left the batch package,
            so workspaces made earlier stay current.
        outputs: its main outputs, relative to the workspace folder.
        numbers: ``numbers(ws) -> {name: number}``, the step's key numbers read back from what it
            recorded (for summary tables); the same whether the step ran or was skipped.
        weight: its share of a progress bar when steps run in sequence.
    """

    name: str
    run: StepFunction
    description: str
    record: str = ""
    outputs: tuple[str, ...] = ()
    numbers: Callable[[Workspace], dict[str, Any]] | None = None
    weight: float = 1.0

    @property
    def record_name(self) -> str:
        return self.record or self.name

    def key_numbers(self, ws: Workspace) -> dict[str, Any]:
        """The step's key numbers (empty when it declares none or has not run)."""
        return dict(self.numbers(ws)) if self.numbers is not None else {}


def read_numbers(summary_json: Path) -> dict[str, Any]:
    """The key numbers a step stored in its ``summary.json`` (empty when there are none)."""
    if not summary_json.exists():
        return {}
    return dict(json.loads(summary_json.read_text()).get(NUMBERS_KEY) or {})


def store_numbers(summary_json: Path, numbers: dict[str, Any]) -> None:
    """Add a step's key numbers to its ``summary.json`` (atomic rewrite)."""
    from navigator.core.atomic import atomic_write_json

    d = json.loads(summary_json.read_text()) if summary_json.exists() else {}
    d[NUMBERS_KEY] = numbers
    atomic_write_json(summary_json, d)


def summary_numbers(folder: str) -> Callable[[Workspace], dict[str, Any]]:
    """A :attr:`Step.numbers` reader for a step that writes ``<folder>/summary.json``."""

    def numbers(ws: Workspace) -> dict[str, Any]:
        return read_numbers(ws.root / folder / "summary.json")

    return numbers


def run_folder_step(ws: Workspace, record: str, params: dict[str, Any], inputs: list[Path], folder: str,
                    work: Callable[[Path], dict[str, Any] | None], *, force: bool = False) -> bool:
    """The body of a step that writes one folder with a ``summary.json``.

    Skipped (False) when record ``record`` is current for ``params`` and ``inputs`` and the
    summary is there; otherwise ``work(out_dir)`` writes ``<ws>/<folder>`` and returns the key
    numbers, which are stored in the summary (:func:`store_numbers`) before the folder is
    recorded under ``record`` (True).
    """
    import time

    out_dir = ws.root / folder
    summary = out_dir / "summary.json"
    if not force and ws.step_is_current(record, params, inputs) and summary.exists():
        return False
    t0 = time.perf_counter()
    numbers = work(out_dir) or {}
    store_numbers(summary, numbers)
    ws.record_step(record, params, inputs=inputs, outputs=[out_dir], seconds=round(time.perf_counter() - t0, 2))
    return True


__all__ = ["NUMBERS_KEY", "Step", "StepFunction", "read_numbers", "run_folder_step", "store_numbers",
           "summary_numbers"]
