"""The work done for one subject of a batch, on a Dask worker (or in-process), and by ``navigator demo``.

The steps are declared by the packages that own them (:data:`STEPS`) and follow the workspace
step protocol of :mod:`navigator.core.steps`: each is skipped when its manifest record is current
(``prepare`` by its stages' records, the others by records such as ``batch-optimize-tms`` whose
key covers the step's parameters and the hashes of its input files), and reads what the earlier
steps recorded. A failing step stops that subject only; the error is returned in the subject's
result.
"""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from navigator.batch.discover import BatchSubject
from navigator.batch.report import REPORT
from navigator.core.errors import NavigatorError
from navigator.core.steps import Step
from navigator.core.workspace import MANIFEST_NAME, Workspace
from navigator.export.steps import EXPORT
from navigator.optimize.steps import OPTIMIZE_TDCS, OPTIMIZE_TMS
from navigator.pipeline import PREPARE
from navigator.targets.steps import TARGETS
from navigator.tes.steps import SIMULATE_TDCS
from navigator.tms.steps import SIMULATE_TMS

log = logging.getLogger("navigator")


@dataclass
class StepOutcome:
    status: str  # "ran", "skipped", "failed", "not run"
    seconds: float = 0.0
    error: str | None = None


@dataclass
class SubjectResult:
    subject_id: str
    workspace: str
    steps: dict[str, StepOutcome] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


# ----------------------------------------------------------------------------- steps
#: every step a batch (or the demo) can run, in their order; each is declared by the package that
#: owns it and follows the step protocol of :mod:`navigator.core.steps`
STEPS: dict[str, Step] = {s.name: s for s in (PREPARE, TARGETS, SIMULATE_TMS, SIMULATE_TDCS, OPTIMIZE_TMS,
                                              OPTIMIZE_TDCS, EXPORT, REPORT)}


def step_params(step: str, section: dict[str, Any], targets: list[str]) -> dict[str, Any]:
    """The keyword parameters of ``step``: its settings (a batch TOML section), plus the job's
    target SPECs ``targets``: a step that takes ``names`` resolves them all, a step that takes
    ``target`` works on the first unless its settings name one."""
    params = dict(section)
    accepted = inspect.signature(STEPS[step].run).parameters
    if "names" in accepted:
        params.setdefault("names", list(targets))
    if "target" in accepted:
        params["target"] = str(params.get("target", targets[0]))
    return params


def run_steps(open_workspace: Callable[[], Workspace], steps: Sequence[str], params: dict[str, dict[str, Any]],
              result: SubjectResult, on_step: Callable[[str, str], None] | None = None) -> Workspace | None:
    """Run ``steps`` in order on one workspace (``open_workspace()``, called once, inside the first
    step: an image that cannot be read fails that step), each with its ``params``.

    Each step's outcome and key numbers go into ``result``. A failing step stops the rest (they
    are "not run") and its error goes into ``result``; nothing is raised for it. ``on_step(step,
    status)`` is called before ("running") and after each step. Returns the workspace (None when
    it could not be opened).
    """
    ws = None
    for step in steps:
        if result.error is not None:
            result.steps[step] = StepOutcome("not run")
            continue
        t0 = time.perf_counter()
        if on_step:
            on_step(step, "running")
        try:
            if ws is None:
                ws = open_workspace()
            ran = STEPS[step].run(ws, **params.get(step, {}))
            result.numbers.update(STEPS[step].key_numbers(ws))
            result.steps[step] = StepOutcome("ran" if ran else "skipped", time.perf_counter() - t0)
            if on_step:
                on_step(step, result.steps[step].status)
        except Exception as exc:  # noqa: BLE001 - one subject's failure must not stop the batch
            msg = str(exc) if isinstance(exc, NavigatorError) else f"{type(exc).__name__}: {exc}"
            result.error = f"{step}: {msg}"
            result.steps[step] = StepOutcome("failed", time.perf_counter() - t0, msg)
            if on_step:
                on_step(step, f"failed: {msg}")
            log.debug("subject %s step %s failed:\n%s", result.subject_id, step, traceback.format_exc())
    return ws


def open_subject_workspace(subject: BatchSubject, ws_dir: Path, add_images: bool) -> Workspace:
    """The subject's workspace: created or reopened with its T1 (and T2) added when
    ``add_images`` (a batch that prepares), else opened (or created empty)."""
    if add_images:
        from navigator.pipeline import create_workspace_from_image

        return create_workspace_from_image(subject.t1, ws_dir, t2=subject.t2, subject_id=subject.subject_id)
    if (ws_dir / MANIFEST_NAME).exists():
        return Workspace.open(ws_dir)
    return Workspace.create(ws_dir, subject_id=subject.subject_id)


def run_subject(subject: BatchSubject, cfg, dry_run: bool = False,
                on_step: Callable[[str, str], None] | None = None) -> SubjectResult:
    """Run the configured steps for one subject; never raises for a subject's own failure.

    ``on_step(step, status)`` is called before ("running") and after each step.
    """
    ws_dir = Path(cfg.output) / subject.subject_id
    result = SubjectResult(subject.subject_id, str(ws_dir))
    if dry_run:
        for step in cfg.steps:
            result.steps[step] = StepOutcome(_dry_status(ws_dir, step))
        return result
    params = {step: step_params(step, cfg.params(step), cfg.targets) for step in cfg.steps}
    run_steps(lambda: open_subject_workspace(subject, ws_dir, "prepare" in cfg.steps), cfg.steps, params, result,
              on_step)
    return result


def _dry_status(ws_dir: Path, step: str) -> str:
    if not (ws_dir / MANIFEST_NAME).exists():
        return "would run"
    try:
        ws = Workspace.open(ws_dir)
    except NavigatorError:
        return "would run"
    name = "mesh" if step == "prepare" else STEPS[step].record_name
    return "done before (checked when run)" if ws.step(name) is not None else "would run"
