#!/usr/bin/env bash
# The main job on the five-shell sphere head of navigator.gui.testing (WM/GM/CSF/bone/scalp with a
# middle grey-matter surface, an identity MNI transform, fiducials and EEG 10-10), through the CLI:
#   PYTHONPATH=TREE:TREE/plugins bash scripts/sphere_head_job.sh OUT_DIR [NAVIGATOR] [PYTHON]
# head -> targets -> simulate tms (fox) and tdcs (F3-Fp2) -> optimize tms -> export (Localite) -> import-plan.
# Covers what the sphere sample lacks (cortex maps, MNI maps, EEG names, the standard F3 pose);
# compare two runs with scripts/compare_outputs.py.
set -euo pipefail
out=$1
nav=${2:-navigator}
py=${3:-python}
ws=$out/head
rm -rf "$out" && mkdir -p "$out"
$py -c "import sys; from navigator.gui.testing import write_sphere_subject; write_sphere_subject(sys.argv[1], mesh_size_mm=12.0)" "$ws"
$nav targets "$ws" --json > "$out/targets.json"
$nav -q simulate tms "$ws" --coil Magstim_D70 --target fox --intensity 50 --out "$ws/simulations/tms"
$nav -q simulate tdcs "$ws" -e F3:2:rect:50x50 -e Fp2:-2:rect:50x50 --target -38,44,26,10 --out "$ws/simulations/tdcs"
$nav -q optimize tms "$ws" --target fox --radius 8 --spacing 4 --angle-step 45 --out "$ws/plans/tms"
$nav -q export "$ws/plans/tms/plan.json" --format localite --out "$ws/plans/export/localite_targets.xml"
$nav -q import-plan "$ws/plans/export/localite_targets.xml" --image "$ws/input/T1.nii.gz" --out "$out/imported_plan.json"
