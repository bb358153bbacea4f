"""Batch planning on Dask: BIDS discovery, resumability, a failing subject, group outputs, reports.

Two small subjects (the phantom resampled to 2 mm; the second stored in another voxel order)
and one subject whose T1 is a corrupt file. The first run is killed part-way (the whole batch
process: scheduler and workers) and restarted; a further run skips every step. The head meshes
are coarse and the placement search small: the test is about the batch, the numerics are
tested elsewhere. The dry run and configuration errors need no images.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CONFIG = """
[input]
bids = "bids"

[output]
root = "out"

[steps]
run = ["prepare", "targets", "optimize-tms", "export", "report"]

[targets]
names = ["fox", "eeg:F3"]

[prepare.mesh]
cell_size_mm = 6.0
facet_size_mm = 4.0
facet_distance_mm = 1.0
upsample_mm = 0.0
exude = false
# coarse everywhere (defaults: 2 mm in GM/CSF): the test is about the batch, not the mesh
tissue_cell_sizes = { 1 = 6.0, 2 = 3.0, 3 = 3.0, 4 = 6.0, 5 = 6.0, 6 = 6.0, 7 = 6.0, 8 = 6.0, 9 = 3.0 }

[optimize_tms]
direction = "normal"   # one reciprocal solve instead of three
radius = 4.0
spacing = 4.0
angle_step = 90.0
roi_radius = 8.0
nifti = false

[export]
formats = ["localite", "brainsight"]

[dask]
workers = 2
memory_per_worker_gb = 10
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """bids/sub-01 (phantom at 2 mm, RAS), sub-02 (same anatomy, LPS voxel order), sub-03 (corrupt)."""
    import nibabel as nib
    from scipy import ndimage as ndi

    from navigator.io.images import load_image
    from navigator.samples import write_sample

    root = tmp_path_factory.mktemp("study")
    ws = write_sample("phantom", root / "phantom")
    t1 = load_image(ws.source_path("T1"))
    data = ndi.zoom(np.asarray(t1.data, np.float32), 0.5, order=1)
    aff = t1.affine.copy()
    aff[:3, :3] *= 2.0
    for sub, flip in (("sub-01", False), ("sub-02", True)):
        anat = root / "bids" / sub / "anat"
        anat.mkdir(parents=True)
        d, a = data, aff
        if flip:  # LPS storage: reverse the first two axes, keep every voxel's world position
            d = data[::-1, ::-1, :]
            a = aff @ np.array([[-1, 0, 0, data.shape[0] - 1], [0, -1, 0, data.shape[1] - 1], [0, 0, 1, 0],
                                [0, 0, 0, 1.0]])
        img = nib.Nifti1Image(d.astype(np.int16), a)
        img.set_qform(a, 1)
        img.set_sform(a, 1)
        nib.save(img, anat / f"{sub}_T1w.nii.gz")
    bad = root / "bids" / "sub-03" / "anat"
    bad.mkdir(parents=True)
    good = (root / "bids" / "sub-01" / "anat" / "sub-01_T1w.nii.gz").read_bytes()
    (bad / "sub-03_T1w.nii.gz").write_bytes(good[: len(good) // 3])  # truncated gzip
    (root / "batch.toml").write_text(CONFIG)
    return root


def _manifest_steps(root: Path, sub: str) -> dict:
    p = root / "out" / sub / "subject.json"
    return json.loads(p.read_text())["steps"] if p.exists() else {}


@pytest.mark.slow
def test_batch_killed_restarted_and_resumed(study: Path) -> None:
    from navigator.batch.config import load_config
    from navigator.batch.runner import run_batch

    cfg_path = study / "batch.toml"
    # 1. start the batch in its own process group; kill everything once one subject has finished
    proc = subprocess.Popen([sys.executable, "-m", "navigator", "-q", "batch", str(cfg_path), "--workers", "2"],
                            cwd=study, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finished = None
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None:
        for sub in ("sub-01", "sub-02"):
            if "batch-report" in _manifest_steps(study, sub):
                finished = sub
        if finished:
            break
        time.sleep(2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the batch already exited (the assertion below reports why)
    proc.wait(timeout=60)
    assert finished is not None, f"no subject finished before the kill: {proc.stderr.read().decode()[-2000:]}"
    done_before = {k: v["completed"] for k, v in _manifest_steps(study, finished).items()}

    # 2. restart: the finished subject is not redone, the other completes, the corrupt one fails
    cfg = load_config(cfg_path)
    outcome = run_batch(cfg, workers=2)
    by_id = {r.subject_id: r for r in outcome.results}
    assert set(by_id) == {"sub-01", "sub-02", "sub-03"}
    assert all(o.status == "skipped" for o in by_id[finished].steps.values()), by_id[finished].steps
    assert {k: v["completed"] for k, v in _manifest_steps(study, finished).items()} == done_before
    other = "sub-02" if finished == "sub-01" else "sub-01"
    assert by_id[other].ok, by_id[other].error
    assert not by_id["sub-03"].ok and "sub-03_T1w.nii.gz" in by_id["sub-03"].error
    assert by_id["sub-03"].steps["targets"].status == "not run"

    # 3. group outputs and per-subject outputs
    import pandas as pd

    table = pd.read_csv(outcome.summary_csv)
    assert list(table["subject"]) == ["sub-01", "sub-02", "sub-03"]
    assert pd.read_parquet(outcome.summary_parquet).shape[0] == 3
    ok_rows = table[table["ok"]]
    assert (ok_rows["target_fox_x"] < 0).all()  # left DLPFC in both storage orders
    assert np.allclose(ok_rows["target_fox_x"].iloc[0], ok_rows["target_fox_x"].iloc[1], atol=3.0)
    assert "truncated" in table.loc[table["subject"] == "sub-03", "error"].iloc[0].lower() or \
        "gzip" in table.loc[table["subject"] == "sub-03", "error"].iloc[0].lower()
    for sub in ("sub-01", "sub-02"):
        ws = study / "out" / sub
        assert (ws / "plans" / "tms" / "plan.json").exists()
        assert list((ws / "plans" / "export").rglob("*.xml")), "no Localite export"
        html = (ws / "report" / "report.html").read_text()
        assert "subject scanner RAS" in html and "data:image/png;base64" in html
    assert (study / "out" / "group_targets_mni.png").exists()

    # 4. run again: every step of every good subject is skipped
    again = run_batch(cfg, workers=2)
    for r in again.results:
        if r.subject_id != "sub-03":
            assert all(o.status == "skipped" for o in r.steps.values()), (r.subject_id, r.steps)


def test_dry_run_lists_without_running(tmp_path: Path, capsys) -> None:
    """The same study layout (two T1s and a corrupt one) is listed without reading any image."""
    from navigator.cli import main

    for sub in ("sub-01", "sub-02", "sub-03"):
        anat = tmp_path / "bids" / sub / "anat"
        anat.mkdir(parents=True)
        (anat / f"{sub}_T1w.nii.gz").write_bytes(b"not read by a dry run")
    (tmp_path / "batch.toml").write_text(CONFIG)
    assert main(["batch", str(tmp_path / "batch.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 subject(s)" in out and "sub-03" in out and "would run" in out
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("subject.json"))


def test_config_errors(tmp_path: Path) -> None:
    from navigator.batch.config import load_config
    from navigator.core.errors import InputError

    (tmp_path / "a.toml").write_text("[input]\n")
    with pytest.raises(InputError, match="needs bids"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text('[input]\nsubjects = ["x.nii.gz"]\n[steps]\nrun = ["segment-everything"]\n')
    with pytest.raises(InputError, match="unknown step"):
        load_config(tmp_path / "b.toml")
    (tmp_path / "c.toml").write_text("[input\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_config(tmp_path / "c.toml")
    (tmp_path / "d.toml").write_text('[input]\nsubjects = ["x.nii.gz"]\n[optimize_tms]\nradius = 4\nangle = 10\n')
    with pytest.raises(InputError, match=r"\[optimize_tms\] unknown TMS optimization parameter\(s\): angle"):
        load_config(tmp_path / "d.toml")
    (tmp_path / "e.toml").write_text('[input]\nsubjects = ["x.nii.gz"]\n[optimize_tdcs]\nmode = "rings"\n')
    with pytest.raises(InputError, match="unknown tDCS optimization mode"):
        load_config(tmp_path / "e.toml")


#: the package that owns (declares and implements) each step
STEP_OWNERS = {"prepare": "navigator.pipeline", "targets": "navigator.targets", "simulate-tms": "navigator.tms",
               "simulate-tdcs": "navigator.tes", "optimize-tms": "navigator.optimize",
               "optimize-tdcs": "navigator.optimize", "export": "navigator.export", "report": "navigator.batch"}


def test_every_step_follows_the_step_protocol() -> None:
    """The preparation stages and the batch/demo steps have one shape, run(ws, *, progress=None,
    force=False, **params) -> bool, and each step lives in the package that owns it."""
    import inspect

    from navigator.batch.config import ALL_STEPS
    from navigator.batch.tasks import STEPS
    from navigator.pipeline import STAGES

    assert tuple(STEPS) == ALL_STEPS
    for step in [*STAGES, *STEPS.values()]:
        sig = inspect.signature(step.run)
        first, *rest = sig.parameters.values()
        assert first.name == "ws" and first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, step.name
        assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in rest), step.name
        assert sig.parameters["progress"].default is None and sig.parameters["force"].default is False, step.name
        assert sig.return_annotation in ("bool", bool), step.name
    for name, step in STEPS.items():
        assert step.name == name and step.run.__module__.startswith(STEP_OWNERS[name]), (name, step.run.__module__)


def test_run_steps_stops_at_a_failure_and_reads_numbers_back(tmp_path: Path, monkeypatch) -> None:
    """A step's key numbers come from what it recorded, so a skipped step reports the numbers of
    the run that wrote them; a failing step stops the ones after it."""
    from navigator.batch import tasks
    from navigator.core.errors import NavigatorError
    from navigator.core.steps import Step
    from navigator.core.workspace import Workspace

    runs = []

    def count(ws, *, progress=None, force=False, value: int) -> bool:
        out = ws.root / "count.txt"
        if not force and ws.step_is_current("count", {"value": value}, []) and out.exists():
            return False
        runs.append(value)
        out.write_text(str(value * 10))
        ws.record_step("count", {"value": value}, inputs=[], outputs=[out])
        return True

    def broken(ws, *, progress=None, force=False) -> bool:
        raise NavigatorError("nothing to do it with")

    monkeypatch.setattr(tasks, "STEPS", {
        "count": Step("count", count, "writes a number", numbers=lambda ws: {"n": int((ws.root / "count.txt").read_text())}),
        "broken": Step("broken", broken, "fails"),
        "after": Step("after", count, "never reached")})
    ws = Workspace.create(tmp_path / "ws")
    seen = []
    first = tasks.SubjectResult("s", str(ws.root))
    assert tasks.run_steps(lambda: ws, ["count"], {"count": {"value": 4}}, first) is ws
    again = tasks.SubjectResult("s", str(ws.root))
    tasks.run_steps(lambda: ws, ["count", "broken", "after"], {"count": {"value": 4}, "after": {"value": 5}}, again,
                    on_step=lambda step, status: seen.append((step, status)))
    assert runs == [4]
    assert first.steps["count"].status == "ran" and again.steps["count"].status == "skipped"
    assert first.numbers == again.numbers == {"n": 40}
    assert again.error == "broken: nothing to do it with" and again.steps["after"].status == "not run"
    assert seen == [("count", "running"), ("count", "skipped"), ("broken", "running"),
                    ("broken", "failed: nothing to do it with")]
