"""`navigator segment SUBJECT_DIR`: T1 (+T2) -> tissue labels, MNI transforms and QC."""

from __future__ import annotations

from navigator.cli import cli_progress, console, subcommand
from navigator.core.workspace import Workspace


def register(sub) -> None:
    p = subcommand(sub, "segment", "Segment the subject's T1 (and T2 if present) into tissue labels, "
                   "register it to MNI152 and write a QC report.")
    p.add_argument("subject_dir", help="subject workspace folder (with input/T1.nii.gz)")
    p.add_argument("--force", action="store_true", help="run even if the labels are up to date")
    p.add_argument("--no-t2", dest="use_t2", action="store_false",
                   help="ignore input/T2.nii.gz even if the workspace has one")
    p.add_argument("--method", choices=("intensity-rules", "head-priors"), default=None,
                   help="head-priors (the default for a new workspace): whole-head mixture with the "
                        "shipped head priors (docs/segmentation.md); intensity-rules: the earlier method, "
                        "skull and scalp by intensity rules around the brain (bone speckle in the face and "
                        "neck on real scans). Without it the method the workspace was segmented with is "
                        "kept (prepare keeps it too)")
    p.set_defaults(func=run)


def run(args) -> int:
    from navigator.segmentation.qc import verdict_lines
    from navigator.segmentation.step import load_qc, segment_workspace

    ws = Workspace.open(args.subject_dir)
    with cli_progress(args, "Segmenting") as progress:
        kw = {"method": args.method} if args.method else {}
        ran = segment_workspace(ws, progress=progress, force=args.force, use_t2=args.use_t2, **kw)
    out = console(args)
    if not ran:
        out.print("segmentation is up to date (use --force to run it again)")
    qc = load_qc(ws)
    if qc is None:
        return 0
    out.print(f"labels: {ws.path('labels')}")
    out.print("tissue volumes (ml): " + ", ".join(f"{k} {v:.0f}" for k, v in qc["volumes_ml"].items()))
    out.print(f"intracranial volume: {qc['intracranial_volume_ml']:.0f} ml; brain {qc['brain_volume_ml']:.0f} ml")
    st = qc["skull_thickness_mm"]
    out.print(f"skull thickness (vault): median {st['median']:.1f} mm, 5th percentile {st['p5']:.1f} mm")
    topo = qc["topology"]
    checks = ["csf_separates_brain", "skull_closed", "scalp_closed", "no_islands", "neck_cut_consistent"]
    out.print("topology checks: " + ", ".join(f"{c} {'ok' if topo[c] else 'FAILED'}" for c in checks))
    reg = qc["registration"]
    out.print(f"MNI registration: template brain Dice {reg['template_brain_dice']:.3f}, "
              f"affine scales {reg['affine_scales']}")
    for w in qc.get("warnings", []):
        out.print(f"[yellow]warning:[/yellow] {w}")
    for line in verdict_lines(qc):
        out.print(line)
    out.print(f"QC report: {ws.path('qc') / 'segmentation_qc.png'}")
    return 0 if topo.get("all_passed", False) else 3
