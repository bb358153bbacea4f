"""The main job end to end through the command line, on the sphere sample (under a minute):

`demo --sample sphere` (sample -> prepare -> targets -> simulate TMS and tDCS -> optimize TMS ->
export -> report, through the batch steps), then the exported Localite file is read back with
`import-plan`, and `prepare`, `mesh`, `workspace` and a second `demo` find everything current.
Also the one-line errors of `segment` (an image that is no head) and `gui` (no display).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from navigator.cli import main
from navigator.cli.cmd_demo import SPHERE_TARGET


@pytest.fixture(scope="module")
def sphere_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["-q", "demo", "--sample", "sphere", "--out", str(out), "--no-gui"]) == 0
    return out / "sphere"


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_demo_writes_the_whole_job(sphere_demo: Path) -> None:
    ws = sphere_demo
    steps = _json(ws / "subject.json")["steps"]
    # prepare meshed the sample's given labels (no segmentation), with the coarse demo mesh
    assert "segment" not in steps and steps["mesh"]["parameters"]["cell_size_mm"] == 10.0
    for step in ("batch-targets", "batch-simulate-tms", "batch-simulate-tdcs", "batch-optimize-tms",
                 "batch-export", "batch-report"):
        assert step in steps, step
    resolved = _json(ws / "targets" / "resolved.json")["targets"][SPHERE_TARGET]
    np.testing.assert_allclose(resolved["point"], [-30.0, 20.0, 75.0])
    # the scalp entry lies on the 95 mm sphere
    assert abs(np.linalg.norm(resolved["scalp_entry"]) - 95.0) < 1.0
    tms = _json(ws / "simulations" / "tms" / "summary.json")
    tdcs = _json(ws / "simulations" / "tdcs" / "summary.json")
    assert tms["target"]["mean_magnE_V_per_m"] > 10.0 and tms["batch_numbers"]["tms_peak_v_per_m"] > 0
    assert tdcs["target"]["mean_magnE_V_per_m"] > 0.01
    plan = _json(ws / "plans" / "tms" / "plan.json")
    summary = _json(ws / "plans" / "tms" / "summary.json")
    # reciprocity and the direct solve at the optimum agree (same field, two routes)
    best = summary["best"]
    assert abs(best["score_reciprocity_per_A_per_us"] / best["score_direct_per_A_per_us"] - 1) < 0.02
    # the optimized coil sits over the target: centre within the search radius of the scalp entry
    pose = np.asarray(plan["coil_poses"][0]["matrix"], float)
    entry = np.asarray(resolved["scalp_entry"])
    assert np.linalg.norm(pose[:3, 3] - entry) < 8.0 + 4.0 + 1.0  # radius + coil distance + tolerance
    assert np.dot(pose[:3, 2], entry / np.linalg.norm(entry)) < -0.95  # coil z points into the head
    assert list((ws / "plans" / "export").rglob("*.xml")), "no Localite export"
    html = (ws / "report" / "report.html").read_text()
    assert "subject scanner RAS" in html


def test_exported_pose_reads_back(sphere_demo: Path, tmp_path: Path) -> None:
    ws = sphere_demo
    plan = _json(ws / "plans" / "tms" / "plan.json")
    exported = sorted((ws / "plans" / "export").rglob("*.xml"))
    localite = next(p for p in exported if "InstrumentMarker" in p.read_text())
    back = tmp_path / "imported.json"
    assert main(["-q", "import-plan", str(localite), "--image", str(ws / "input" / "T1.nii.gz"),
                 "--out", str(back)]) == 0
    imported = {p["name"]: np.asarray(p["matrix"], float) for p in _json(back)["coil_poses"]}
    for pose in plan["coil_poses"]:
        m = np.asarray(pose["matrix"], float)
        match = min(imported.values(), key=lambda x: np.linalg.norm(x[:3, 3] - m[:3, 3]))
        np.testing.assert_allclose(match[:3, 3], m[:3, 3], atol=0.01)  # mm
        np.testing.assert_allclose(match[:3, :3], m[:3, :3], atol=1e-4)


def test_everything_is_current_afterwards(sphere_demo: Path, capsys) -> None:
    ws = sphere_demo
    before = _json(ws / "subject.json")["steps"]
    assert main(["prepare", str(ws), "--use-labels", "--cell-size", "10", "--tissue-size", "3=10",
                 "--tissue-size", "4=10", "--tissue-size", "5=10", "--facet-size", "6", "--facet-distance", "1.5",
                 "--upsample", "0", "--smooth", "0"]) == 0
    out = capsys.readouterr().out
    assert "segment: skipped (labels given: sample:sphere)" in out and "mesh: skipped (current)" in out
    assert main(["mesh", str(ws), "--cell-size", "10", "--tissue-size", "3=10", "--tissue-size", "4=10",
                 "--tissue-size", "5=10", "--facet-size", "6", "--facet-distance", "1.5", "--upsample", "0",
                 "--smooth", "0"]) == 0
    assert "mesh is up to date" in capsys.readouterr().out
    assert main(["demo", "--sample", "sphere", "--out", str(ws.parent), "--no-gui"]) == 0
    out = capsys.readouterr().out
    assert out.count(": skipped") == 7 and ": ran" not in out
    assert main(["workspace", str(ws)]) == 0
    assert "step batch-optimize-tms: done" in capsys.readouterr().out
    after = _json(ws / "subject.json")["steps"]
    assert {k: v["completed"] for k, v in after.items()} == {k: v["completed"] for k, v in before.items()}


def test_prepare_use_labels_needs_given_labels(tmp_path: Path, capsys) -> None:
    from navigator.core.volume import Volume
    from navigator.io.images import save_nifti

    img = tmp_path / "t1.nii.gz"
    save_nifti(Volume(np.zeros((8, 8, 8), np.float32), np.eye(4)), img)
    assert main(["-q", "prepare", str(img), "--out", str(tmp_path / "ws"), "--use-labels"]) == 1
    err = capsys.readouterr().err
    assert "no given tissue labels" in err and len(err.strip().splitlines()) == 1


def test_segment_rejects_an_image_that_is_no_head(tmp_path: Path, capsys) -> None:
    from navigator.core.volume import Volume
    from navigator.core.workspace import Workspace
    from navigator.io.images import save_nifti

    ws = Workspace.create(tmp_path / "ws")
    noise = np.random.default_rng(0).random((40, 40, 40)).astype(np.float32)
    save_nifti(Volume(noise, np.eye(4)), ws.path("t1"))
    ws.add_source("T1", ws.path("t1"))
    assert main(["-q", "segment", str(ws.root)]) == 1
    err = capsys.readouterr().err.strip()
    assert "T1.nii.gz" in err and "too small" in err and len(err.splitlines()) == 1
    assert not ws.path("labels").exists()


def test_gui_command_without_display(monkeypatch, capsys) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert main(["gui"]) == 1
    err = capsys.readouterr().err
    assert "no display available" in err


def test_steps_reuse_the_workspace_they_are_given(sphere_demo: Path, monkeypatch) -> None:
    """`demo` hands the batch steps the workspace it wrote: its T1 is not read again, and the
    steps share one Head session per Workspace."""
    import navigator.io.images as images
    from navigator.core.workspace import Workspace
    from navigator.pipeline import create_workspace_from_image
    from navigator.targets.head import Head

    def no_reload(*args, **kwargs):
        raise AssertionError("the workspace's own T1 was loaded again")

    monkeypatch.setattr(images, "load_image", no_reload)
    ws = create_workspace_from_image(sphere_demo / "input" / "T1.nii.gz", sphere_demo)
    assert ws.root == sphere_demo
    assert Head.of(ws) is Head.of(ws) and Head.of(ws) is not Head.of(Workspace.open(sphere_demo))
    # later steps read what the targets step recorded
    head = Head.of(ws)
    assert set(head.resolved) == {SPHERE_TARGET}
    assert head.target(SPHERE_TARGET) is head.resolved[SPHERE_TARGET]


def test_later_steps_read_what_the_targets_step_recorded(sphere_demo: Path, tmp_path: Path, monkeypatch) -> None:
    """Re-running the simulation and optimization steps (forced, on a copy of the demo) takes the
    target from targets/resolved.json: resolving it again would fail here. Without force they
    are current and report the numbers recorded by the demo's run."""
    import shutil

    import navigator.targets.head as head_mod
    from navigator.batch.tasks import STEPS
    from navigator.cli.cmd_demo import DEMO_JOBS
    from navigator.core.workspace import Workspace

    ws_dir = tmp_path / "sphere"
    shutil.copytree(sphere_demo, ws_dir)
    ws = Workspace.open(ws_dir)
    recorded = {name: STEPS[name].key_numbers(ws) for name in ("simulate-tms", "simulate-tdcs", "optimize-tms")}
    assert recorded["simulate-tms"]["tms_peak_v_per_m"] > 0 and recorded["optimize-tms"]

    def no_resolving(*args, **kwargs):
        raise AssertionError("a target was resolved again instead of read from the targets step's record")

    monkeypatch.setattr(head_mod, "resolve_target", no_resolving)
    params = DEMO_JOBS["sphere"].step_params
    # the forced search runs on a coarser field lattice without refinement (what is tested here
    # is where its target comes from, not the optimum)
    cheaper = {"optimize-tms": {"refine": False, "world_grid": 4.0}}
    for name in ("simulate-tms", "simulate-tdcs", "optimize-tms"):
        p = {k: v for k, v in params[name].items() if k != "target"}
        assert STEPS[name].run(ws, target=SPHERE_TARGET, **p) is False  # current: nothing done
        assert STEPS[name].run(ws, target=SPHERE_TARGET, force=True, **p, **cheaper.get(name, {})) is True
        again = STEPS[name].key_numbers(ws)
        assert set(again) == set(recorded[name]), name
    # the same mesh, target and parameters give the same field at the target
    now = STEPS["simulate-tms"].key_numbers(ws)["tms_field_at_target_v_per_m"]
    assert now == pytest.approx(recorded["simulate-tms"]["tms_field_at_target_v_per_m"], rel=1e-9)
