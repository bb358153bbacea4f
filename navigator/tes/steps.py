"""The ``simulate-tdcs`` step (:mod:`navigator.core.steps` protocol): the tDCS field of an
electrode montage, summarized around a target, written to ``simulations/tdcs``."""

from __future__ import annotations

from typing import Any

from navigator.core.progress import Progress
from navigator.core.steps import Step, run_folder_step, summary_numbers
from navigator.core.workspace import Workspace
from navigator.targets.head import Head, target_inputs

FOLDER = "simulations/tdcs"
#: the montage used when the step's parameters give none: 5 x 5 cm pads, 2 mA from F3 to Fp2
DEFAULT_ELECTRODES = ("F3:2:rect:50x50", "Fp2:-2:rect:50x50")
#: radius (mm) of the target sphere of the summary
DEFAULT_TARGET_RADIUS_MM = 10.0


def simulate_tdcs_step(ws: Workspace, *, progress: Progress | None = None, force: bool = False, target: str,
                       **options: Any) -> bool:
    """Simulate a tDCS montage (outputs in ``simulations/tdcs``), its summary's target region a
    sphere around target SPEC ``target``; False when the step's record is current.

    ``options``: ``electrodes`` (electrode SPECs, :func:`navigator.tes.montage.parse_electrode_spec`;
    default :data:`DEFAULT_ELECTRODES`), ``target_radius`` (mm, default
    :data:`DEFAULT_TARGET_RADIUS_MM`) and :func:`navigator.tes.simulate.simulate_tdcs_workspace`
    keywords (``nifti``, ``solver``, ...). The target is the one the targets step recorded when
    it is current.
    """
    from navigator.fem.outputs import TargetRegion, field_key_numbers
    from navigator.tes.montage import parse_electrode_spec
    from navigator.tes.simulate import simulate_tdcs_workspace

    def work(out_dir):
        p = dict(options)
        electrodes = [parse_electrode_spec(e) for e in p.pop("electrodes", DEFAULT_ELECTRODES)]
        t = Head.of(ws).target(target)
        region = TargetRegion(tuple(t.cortical_point or t.point),
                              float(p.pop("target_radius", DEFAULT_TARGET_RADIUS_MM)))
        res = simulate_tdcs_workspace(ws, electrodes, out_dir, target=region, progress=progress, **p)
        return field_key_numbers("tdcs", res.summary)

    return run_folder_step(ws, SIMULATE_TDCS.record_name, {"target": target, **options},
                           [ws.path("mesh")] + target_inputs(ws), FOLDER, work, force=force)


SIMULATE_TDCS = Step("simulate-tdcs", simulate_tdcs_step, "tDCS field of an electrode montage",
                     record="batch-simulate-tdcs", outputs=(f"{FOLDER}/summary.json",),
                     numbers=summary_numbers(FOLDER))
