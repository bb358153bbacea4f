"""`navigator demo --out DIR`: the whole job on the bundled sample subject.

Writes the phantom sample subject, prepares its head model (segmentation and MNI registration,
head mesh, fiducials and EEG positions), resolves the DLPFC targets, simulates and optimizes
TMS and tDCS (F3-Fp2 pads) for the Fox target, optimizes the TMS coil placement, exports the
plan to every navigation format and writes the subject report. Finished steps are skipped when run again. When a display is available the
desktop app then opens on the result; otherwise the outputs are listed.

``--sample sphere`` runs the same job in under a minute on the concentric-sphere sample: its
given labels are meshed coarsely (no segmentation: the sample is not an MRI of a head), and
the target is a subject-space point under the scalp (the sphere has no MNI registration).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from navigator.cli import console, subcommand

#: The HD tDCS optimization is left out: its 64-electrode leadfield takes several minutes on
#: a 2-core machine; run it with `navigator optimize tdcs` or in a batch.
DEMO_STEPS = ("prepare", "targets", "simulate-tms", "simulate-tdcs", "optimize-tms", "export", "report")


@dataclass(frozen=True)
class DemoJob:
    """The steps (:data:`navigator.batch.tasks.STEPS`), their parameters and the targets of the demo on
    one sample subject."""

    step_params: dict[str, dict[str, Any]]
    targets: list[str]
    steps: tuple[str, ...] = DEMO_STEPS
    outputs: tuple[str, ...] = field(default=("targets/resolved.json", "simulations/tms/summary.json",
                                              "simulations/tdcs/summary.json", "plans/tms/plan.json",
                                              "plans/export", "report/report.html"))


#: a point 10 mm under the sphere's scalp, left frontal (subject RAS mm)
SPHERE_TARGET = "subject:-30,20,75"

DEMO_JOBS: dict[str, DemoJob] = {
    "phantom": DemoJob(
        step_params={"simulate-tms": {"target": "fox"}, "optimize-tms": {"target": "fox"}, "report": {"pdf": False}},
        targets=["fox", "ba46", "ba9", "f3-cortical", "5cm-rule", "beam-f3", "eeg:F3"]),
    "sphere": DemoJob(
        step_params={
            "prepare": {"use_labels": True,
                        "mesh": {"cell_size_mm": 10.0, "tissue_cell_sizes": {3: 10.0, 4: 10.0, 5: 10.0},
                                 "facet_size_mm": 6.0, "facet_distance_mm": 1.5, "upsample_mm": 0.0,
                                 "smooth_sigma_mm": 0.0}},
            "simulate-tms": {"target": SPHERE_TARGET, "nifti": False},
            "simulate-tdcs": {"electrodes": ["-45,20,80:2:disc:10", "45,20,80:-2:disc:10"], "nifti": False},
            "optimize-tms": {"target": SPHERE_TARGET, "radius": 8.0, "spacing": 4.0, "angle_step": 45.0,
                             "nifti": False},
            "report": {"pdf": False}},
        targets=[SPHERE_TARGET]),
}


def register(sub) -> None:
    p = subcommand(sub, "demo", "Run the whole planning job on the bundled sample subject (phantom): prepare, "
                   "targets, TMS and tDCS simulation, TMS placement optimization, export, report; then open the desktop app "
                   "when a display is available.")
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--sample", default="phantom", choices=sorted(DEMO_JOBS),
                   help="sample subject (default phantom; sphere: the same job in under a minute)")
    p.add_argument("--no-gui", action="store_true", help="do not open the desktop app at the end")
    p.set_defaults(func=run)


def run(args) -> int:
    from navigator.batch.tasks import SubjectResult, run_steps, step_params
    from navigator.core.workspace import MANIFEST_NAME, Workspace
    from navigator.io.images import image_info
    from navigator.samples import write_sample

    out = console(args)
    root = Path(args.out).resolve()
    ws_dir = root / args.sample
    if (ws_dir / MANIFEST_NAME).exists():
        ws = Workspace.open(ws_dir)
        out.print(f"sample subject already in {ws_dir}")
    else:
        out.print(f"writing the sample subject '{args.sample}' to {ws_dir}")
        ws = write_sample(args.sample, ws_dir)
    info = image_info(ws.source_path("T1"))
    out.print(f"T1: {info.shape} voxels of {tuple(round(float(v), 2) for v in info.voxel_size_mm)} mm, "
              f"orientation {''.join(info.axcodes)}, world from {info.transform}")
    job = DEMO_JOBS[args.sample]
    params = {step: step_params(step, job.step_params.get(step, {}), job.targets) for step in job.steps}

    def on_step(step: str, status: str) -> None:
        out.print(f"  {step}: {status}")

    # the steps run on the workspace written above, one Head session shared by all of them
    result = SubjectResult(args.sample, str(ws_dir))
    run_steps(lambda: ws, job.steps, params, result, on_step=on_step)
    if not result.ok:
        from navigator.core.errors import NavigatorError

        raise NavigatorError(f"demo stopped: {result.error}")
    out.print(f"done: workspace {ws_dir}")
    for rel in job.outputs:
        if (ws_dir / rel).exists():
            out.print(f"  {ws_dir / rel}")
    if args.no_gui:
        return 0
    from navigator.gui.app import display_available, missing_gui_packages, run_gui

    if missing_gui_packages():
        out.print("the desktop app is not installed (pip install navigator-brainstim[gui]); outputs written headless")
        return 0
    if not display_available():
        out.print("no display found: ran the plan headless; open the outputs above, or run "
                  f"`navigator gui {ws_dir}` on a workstation")
        return 0
    return run_gui(str(ws_dir))
