"""The work done for one subject of a batch, on a Dask worker (or in-process).

Each step is skipped when it is current: ``prepare`` by its own stage records, the others by a
workspace step record ``batch-<step>`` whose key covers the step's parameters and the hashes
of its input files (see :meth:`navigator.core.workspace.Workspace.step_is_current`). A failing
step stops that subject only; the error is returned in the subject's result.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from navigator.batch.discover import BatchSubject
from navigator.core.errors import NavigatorError
from navigator.core.workspace import MANIFEST_NAME, Workspace
from navigator.targets.head import RESOLVED, Head, target_inputs

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
def _step_prepare(ws: Workspace, subject: BatchSubject, params: dict, cfg) -> tuple[bool, dict]:
    from navigator.pipeline import create_workspace_from_image, prepare

    ws = create_workspace_from_image(subject.t1, ws.root, t2=subject.t2)
    report = prepare(ws, force=False, stage_params={k: v for k, v in params.items() if isinstance(v, dict)},
                     use_given_labels=bool(params.get("use_labels", False)))
    ran = any(v == "ran" for v in report.stages.values())
    return ran, {f"prepare_{k}_s": round(v, 2) for k, v in report.seconds.items()}


def _step_targets(ws: Workspace, subject: BatchSubject, params: dict, cfg) -> tuple[bool, dict]:
    names = list(params.get("names", cfg.targets))
    ran = Head.of(ws).resolve_targets(names)
    return ran, _numbers_from_targets(ws.root / RESOLVED)


def _numbers_from_targets(path: Path) -> dict:
    if not path.exists():
        return {}
    d = json.loads(path.read_text())["targets"]
    out = {}
    for name, t in d.items():
        pt = t.get("cortical_point") or t.get("point")
        out.update({f"target_{name}_x": pt[0], f"target_{name}_y": pt[1], f"target_{name}_z": pt[2]})
        if t.get("mni"):
            out.update({f"target_{name}_mni_x": t["mni"][0], f"target_{name}_mni_y": t["mni"][1],
                        f"target_{name}_mni_z": t["mni"][2]})
        if t.get("scalp_cortex_distance_mm") is not None:
            out[f"target_{name}_scalp_cortex_mm"] = t["scalp_cortex_distance_mm"]
    return out


def _field_numbers(prefix: str, summary: dict) -> dict:
    """Flat key numbers from a simulation summary (see navigator.fem.outputs.field_summary)."""
    out = {f"{prefix}_peak_v_per_m": summary.get("E_roi_p99_9_V_per_m")}
    target = summary.get("target") or {}
    if target.get("mean_magnE_V_per_m") is not None:
        out[f"{prefix}_field_at_target_v_per_m"] = target["mean_magnE_V_per_m"]
    focality = summary.get("focality_mm3") or {}
    if "50" in focality:
        out[f"{prefix}_focality50_mm3"] = focality["50"]
    return out


def _simulate_tms(ws: Workspace, out_dir: Path, target: str, p: dict) -> dict:
    from navigator.tms.simulate import simulate_tms_workspace

    p = dict(p)
    coil = p.pop("coil", "Magstim_D70")
    if "didt" not in p and "intensity" not in p:
        p["intensity"] = 50.0
    run = simulate_tms_workspace(ws, coil, target_spec=target, out_dir=out_dir, **p)
    return _field_numbers("tms", run.summary)


def _simulate_tdcs(ws: Workspace, out_dir: Path, target: str, p: dict) -> dict:
    from navigator.fem.outputs import TargetRegion
    from navigator.tes.montage import parse_electrode_spec
    from navigator.tes.simulate import simulate_tdcs_workspace

    p = dict(p)
    electrodes = [parse_electrode_spec(e) for e in p.pop("electrodes", ["F3:2:rect:50x50", "Fp2:-2:rect:50x50"])]
    t = Head.of(ws).target(target)
    region = TargetRegion(tuple(t.cortical_point or t.point), float(p.pop("target_radius", 10.0)))
    res = simulate_tdcs_workspace(ws, electrodes, out_dir, target=region, **p)
    return _field_numbers("tdcs", res.summary)


def _optimize_tms(ws: Workspace, out_dir: Path, target: str, p: dict) -> dict:
    from navigator.optimize.tms import TmsSearch, optimize_tms_workspace

    p = dict(p)
    coil = p.pop("coil", None)
    result = optimize_tms_workspace(ws, target=target, out_dir=out_dir, search=TmsSearch.from_params(p),
                                    **({"coil": coil} if coil else {}))
    return result.numbers


def _optimize_tdcs(ws: Workspace, out_dir: Path, target: str, p: dict) -> dict:
    from navigator.optimize.tdcs import TdcsSearch, optimize_tdcs_workspace

    return optimize_tdcs_workspace(ws, target=target, out_dir=out_dir, search=TdcsSearch.from_params(p)).numbers


#: step -> (output folder under the workspace, function(ws, out_dir, target SPEC, params) -> numbers)
TOOL_STEPS: dict[str, tuple[str, Callable]] = {
    "simulate-tms": ("simulations/tms", _simulate_tms),
    "simulate-tdcs": ("simulations/tdcs", _simulate_tdcs),
    "optimize-tms": ("plans/tms", _optimize_tms),
    "optimize-tdcs": ("plans/tdcs", _optimize_tdcs),
}


def _tool_step(step: str):
    """A batch step that writes one folder with a summary.json, skipped when current."""
    folder, func = TOOL_STEPS[step]

    def run(ws: Workspace, subject: BatchSubject, params: dict, cfg) -> tuple[bool, dict]:
        target = str(params.get("target", cfg.targets[0]))
        p = {k: v for k, v in params.items() if k != "target"}
        out_dir = ws.root / folder
        summary = out_dir / "summary.json"
        key = {"target": target, **p}
        inputs = [ws.path("mesh")] + target_inputs(ws)
        if ws.step_is_current(f"batch-{step}", key, inputs) and summary.exists():
            return False, json.loads(summary.read_text()).get("batch_numbers", {})
        numbers = func(ws, out_dir, target, p) or {}
        _store_numbers(summary, numbers)
        ws.record_step(f"batch-{step}", key, inputs=inputs, outputs=[out_dir])
        return True, numbers

    return run


def _store_numbers(summary: Path, numbers: dict) -> None:
    """Keep a step's key numbers in its summary.json so a skipped step still reports them."""
    from navigator.core.atomic import atomic_write_json

    d = json.loads(summary.read_text()) if summary.exists() else {}
    d["batch_numbers"] = numbers
    atomic_write_json(summary, d)


def _step_export(ws, subject, params, cfg):
    from navigator.export.batch import export_all_plans

    plans = sorted(ws.path("plans").glob("*/plan.json"))
    if not plans:
        raise NavigatorError("no plan to export (run an optimize step first)")
    formats = params.get("formats", "all")
    p = {"formats": formats}
    out_dir = ws.path("plans") / "export"
    if ws.step_is_current("batch-export", p, plans) and out_dir.exists():
        return False, {}
    written = export_all_plans(plans, out_dir, formats=formats, t1=ws.source_path("T1"))
    ws.record_step("batch-export", p, inputs=plans, outputs=written)
    return True, {"exported_files": len(written)}


def _step_report(ws, subject, params, cfg):
    from navigator.batch.report import write_subject_report

    out = ws.root / "report" / "report.html"
    inputs = [p for p in [ws.path("labels"), *sorted(ws.path("plans").glob("*/plan.json")),
                          *sorted(ws.path("plans").glob("*/summary.json")),
                          *sorted(ws.path("simulations").glob("*/summary.json"))] if p.exists()]
    p = {"pdf": bool(params.get("pdf", False))}
    if ws.step_is_current("batch-report", p, inputs) and out.exists():
        return False, {}
    written = write_subject_report(ws, out, pdf=p["pdf"])
    ws.record_step("batch-report", p, inputs=inputs, outputs=written)
    return True, {}


STEP_FUNCTIONS: dict[str, Callable] = {
    "prepare": _step_prepare,
    "targets": _step_targets,
    **{name: _tool_step(name) for name in TOOL_STEPS},
    "export": _step_export,
    "report": _step_report,
}


def run_subject(subject: BatchSubject, cfg, dry_run: bool = False,
                on_step: Callable[[str, str], None] | None = None) -> SubjectResult:
    """Run the configured steps for one subject; never raises for a subject's own failure.

    ``on_step(step, status)`` is called before ("running") and after each step.
    """
    ws_dir = Path(cfg.output) / subject.subject_id
    result = SubjectResult(subject.subject_id, str(ws_dir))
    ws = None
    for step in cfg.steps:
        if result.error is not None:
            result.steps[step] = StepOutcome("not run")
            continue
        if dry_run:
            result.steps[step] = StepOutcome(_dry_status(ws_dir, step))
            continue
        t0 = time.perf_counter()
        if on_step:
            on_step(step, "running")
        try:
            if ws is None:
                ws = Workspace.open(ws_dir) if (ws_dir / MANIFEST_NAME).exists() else Workspace.create(
                    ws_dir, subject_id=subject.subject_id)
            ran, numbers = STEP_FUNCTIONS[step](ws, subject, cfg.params(step), cfg)
            if step == "prepare":
                ws = Workspace.open(ws_dir)
            result.numbers.update(numbers or {})
            result.steps[step] = StepOutcome("ran" if ran else "skipped", time.perf_counter() - t0)
            if on_step:
                on_step(step, result.steps[step].status)
        except Exception as exc:  # noqa: BLE001 - one subject's failure must not stop the batch
            msg = str(exc) if isinstance(exc, NavigatorError) else f"{type(exc).__name__}: {exc}"
            result.error = f"{step}: {msg}"
            result.steps[step] = StepOutcome("failed", time.perf_counter() - t0, msg)
            if on_step:
                on_step(step, f"failed: {msg}")
            log.debug("subject %s step %s failed:\n%s", subject.subject_id, step, traceback.format_exc())
    return result


def _dry_status(ws_dir: Path, step: str) -> str:
    if not (ws_dir / MANIFEST_NAME).exists():
        return "would run"
    try:
        ws = Workspace.open(ws_dir)
    except NavigatorError:
        return "would run"
    name = {"prepare": "mesh"}.get(step, f"batch-{step}")
    return "done before (checked when run)" if ws.step(name) is not None else "would run"
