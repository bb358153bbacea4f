#!/usr/bin/env bash
# The main job on the sphere sample through the CLI, for before/after comparisons of a change:
#   PYTHONPATH=TREE:TREE/plugins bash scripts/sphere_job.sh OUT_DIR [NAVIGATOR]
# sample -> mesh (coarse) -> simulate tms, simulate tdcs -> optimize tms -> export (Localite) -> import-plan.
# Compare two runs with scripts/compare_outputs.py. Takes about a minute on 2 cores.
set -euo pipefail
out=$1
nav=${2:-navigator}
ws=$out/sphere
target=subject:-30,20,75
rm -rf "$out" && mkdir -p "$out"
$nav -q sample sphere --out "$ws"
$nav -q mesh "$ws" --cell-size 10 --tissue-size 3=10 --tissue-size 4=10 --tissue-size 5=10 \
    --facet-size 6 --facet-distance 1.5 --upsample 0 --smooth 0
$nav -q simulate tms "$ws" --coil Magstim_D70 --target "$target" --didt 1e8 --out "$ws/simulations/tms"
$nav -q simulate tdcs "$ws" -e -45,20,80:2:disc:10 -e 45,20,80:-2:disc:10 --out "$ws/simulations/tdcs"
$nav -q optimize tms "$ws" --target "$target" --radius 8 --spacing 4 --angle-step 45 --out "$ws/plans/tms"
$nav -q export "$ws/plans/tms/plan.json" --format localite --out "$ws/plans/export/localite_targets.xml"
$nav -q import-plan "$ws/plans/export/localite_targets.xml" --image "$ws/input/T1.nii.gz" --out "$out/imported_plan.json"
