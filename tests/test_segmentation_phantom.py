"""End-to-end segmentation tests on the phantom sample and the real IXI T1 (slow)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from navigator.core.volume import Volume

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IXI = SHARED / "ixi" / "IXI015-HH-1258_T1.nii.gz"


def _dice(a, b):
    return 2.0 * float((a & b).sum()) / max(int(a.sum()) + int(b.sum()), 1)


@pytest.fixture(scope="module")
def phantom_ws(tmp_path_factory):
    from navigator.samples.phantom import write_phantom

    return write_phantom(tmp_path_factory.mktemp("seg") / "ph5", seed=5)


@pytest.mark.slow
def test_phantom_workspace_dice_registration_and_skip(phantom_ws, tmp_path):
    """Segment a fresh workspace holding only the phantom's T1/T2 (seed 5, never tuned on)."""
    from navigator.core.workspace import Workspace
    from navigator.io.images import load_image
    from navigator.segmentation.step import segment_workspace
    from navigator.io.transforms import load_mni_transform

    ws = Workspace.create(tmp_path / "subj")
    for role, key in (("T1", "t1"), ("T2", "t2")):
        ws.write_file_from(key, phantom_ws.path(key))
        ws.add_source(role, ws.path(key))
    assert segment_workspace(ws) is True
    labels = load_image(ws.path("labels"))
    truth = load_image(phantom_ws.root / "ground_truth" / "labels.nii.gz")
    assert labels.shape == truth.shape and np.allclose(labels.affine, truth.affine)
    L, G = labels.data, truth.data
    # The phantom's facial skeleton and cervical spine (bone farther than 20 mm from the
    # intracranial space: ~110 ml) are solid blocks where real heads hold the oral cavity and
    # the tongue (navigator/samples/anatomy.py, maxilla/mandible); no anatomical atlas has bone
    # there, so the default (head-priors) method labels them soft tissue. They are left out of
    # the bone and scalp scores; the whole-head figures are printed beside them.
    intracranial = np.isin(G, [1, 2, 3, 9])
    far = ndi.distance_transform_edt(~intracranial, sampling=truth.spacing) > 20.0
    scored = ~(np.isin(G, [4, 7, 8]) & far)
    classes = [("wm", [1]), ("gm", [2]), ("csf", [3]), ("bone", [4, 7, 8]), ("scalp", [5])]
    d = {name: _dice(np.isin(L, tags) & scored, np.isin(G, tags) & scored) for name, tags in classes}
    whole = {name: round(_dice(np.isin(L, tags), np.isin(G, tags)), 4) for name, tags in classes}
    print("phantom seed 5 Dice:", {k: round(v, 4) for k, v in d.items()}, "whole head:", whole,
          "compact", round(_dice(L == 7, G == 7), 4), "spongy", round(_dice(L == 8, G == 8), 4))
    # Loose guards (the validated figures are in docs/validation.md); they fail on a broken
    # pipeline, not on the last percent.
    assert d["wm"] > 0.88 and d["gm"] > 0.85 and d["csf"] > 0.65 and d["bone"] > 0.75 and d["scalp"] > 0.85, d
    icv = np.isin(L, [1, 2, 3]).sum() / intracranial.sum() - 1.0
    assert abs(icv) < 0.03, icv
    # MNI registration: landmarks mapped subject -> MNI land near their MNI definition
    tr = load_mni_transform(ws.path("transforms"))
    pts = json.loads((phantom_ws.root / "ground_truth" / "mni_landmarks.json").read_text())["points"]
    subj = np.array([v["subject"] for v in pts.values()])
    mni = np.array([v["mni"] for v in pts.values()])
    err = np.linalg.norm(tr.subject_to_mni(subj) - mni, axis=1)
    assert np.median(err) < 3.0, err
    err_back = np.linalg.norm(tr.mni_to_subject(mni) - subj, axis=1)
    assert np.median(err_back) < 3.0, err_back
    print("landmarks subject->MNI error (mm): median", round(float(np.median(err)), 2), "max",
          round(float(err.max()), 2))
    qc = json.loads((ws.path("qc") / "segmentation_qc.json").read_text())
    assert qc["topology"]["all_passed"], qc["topology"]
    assert (ws.path("qc") / "segmentation_qc.png").stat().st_size > 10_000
    # second call is skipped (inputs and parameters unchanged)
    assert segment_workspace(ws) is False


def test_skull_stripped_input_is_rejected():
    """The MNI template itself is a brain-only image: a clear InputError, not a bad head."""
    from navigator.core.errors import InputError
    from navigator.segmentation.pipeline import segment_head
    from navigator.segmentation.templates import load_templates

    tm = load_templates()
    data = tm.t1[::2, ::2, ::2] * 1000.0
    aff = tm.affine.copy()
    aff[:3, :3] *= 2
    with pytest.raises(InputError, match="skull-stripped"):
        segment_head(Volume(np.ascontiguousarray(data), aff, source="brain.nii.gz"))


#: FLAIR-like levels per SimNIBS label (CSF nulled, grey matter brighter than white matter).
_FLAIR_LEVELS = {1: 0.70, 2: 1.00, 3: 0.08, 5: 0.80, 6: 0.10, 7: 0.05, 8: 0.60, 9: 0.30, 10: 0.50}


@pytest.mark.slow
def test_non_t1_contrasts_are_refused(phantom_ws):
    """A T2 or a FLAIR given as the main image is refused with the contrast named, before any
    labels are made (a FLAIR used to run to the end with nonsense labels and a QC verdict that
    named only the intracranial volume)."""
    from navigator.core.errors import InputError
    from navigator.io.images import load_image
    from navigator.segmentation.pipeline import segment_head

    with pytest.raises(InputError, match="CSF is as bright as white matter.*T2-weighted"):
        segment_head(load_image(phantom_ws.path("t2")))
    truth = load_image(phantom_ws.root / "ground_truth" / "labels.nii.gz")
    lab = np.asarray(truth.data)
    flair = np.zeros(lab.shape, np.float32)
    for label, level in _FLAIR_LEVELS.items():
        flair[lab == label] = level
    rng = np.random.default_rng(3)
    flair = ndi.gaussian_filter(flair, 0.7)
    flair = np.hypot(flair + rng.normal(0, 0.02, lab.shape), rng.normal(0, 0.02, lab.shape)).astype(np.float32)
    with pytest.raises(InputError, match="grey matter is as bright as white matter.*FLAIR"):
        segment_head(Volume(flair * 1000.0, truth.affine.copy(), source="flair.nii.gz"))


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not IXI.exists(), reason="../shared/data/ixi not available")
def test_ixi_real_t1(tmp_path):
    from navigator.io.images import load_image
    from navigator.segmentation.pipeline import segment_head

    t1 = load_image(IXI)
    res = segment_head(t1)
    m = res.metrics
    assert res.labels.shape == t1.shape and np.allclose(res.labels.affine, t1.affine)
    assert 1100 <= m["intracranial_volume_ml"] <= 1800, m["intracranial_volume_ml"]
    assert 4.0 <= m["skull_thickness_mm"]["median"] <= 9.0, m["skull_thickness_mm"]
    assert m["topology"]["all_passed"], m["topology"]
    assert m["registration"]["template_brain_dice"] > 0.85


COLIN = SHARED / "real" / "colin27"


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not (COLIN / "T1.nii.gz").exists(), reason="../shared/data/real/colin27 not available")
def test_head_priors_method_on_colin27():
    """The default (head-priors) method on a real T1 against Colin27's reference labels (scored
    only: neither the priors nor any parameter come from this case). Floors just below the
    figures measured on 2026-12-02 (docs/validation.md): the skull over the vault, the scalp,
    the intracranial space and the medial cortex hold."""
    from navigator.io.images import load_image
    from navigator.segmentation.pipeline import segment_head
    from navigator.segmentation.validation import CHARM5, head_superior_axis, score_segmentation

    t1 = load_image(COLIN / "T1.nii.gz")
    res = segment_head(t1)
    ref = load_image(COLIN / "tissues_charm_convention.nii.gz")
    score, _, _ = score_segmentation(res.labels.data, res.labels.affine, ref.data, ref.affine, CHARM5,
                                     up=head_superior_axis(res.registration.affine_s2m))
    dice = {c.name: c.dice for c in score.classes}
    print("Colin27 head-priors:", dice, score.icv_difference, score.vault_skull_dice, score.thickness_difference_mm)
    assert res.metrics["topology"]["all_passed"], res.metrics["topology"]
    assert dice["scalp"] >= 0.89 and dice["WM"] >= 0.88 and dice["GM"] >= 0.83, dice
    assert score.vault_skull_dice >= 0.77, score.vault_skull_dice
    assert abs(score.icv_difference) <= 0.03 and score.intracranial_dice >= 0.95, (score.icv_difference,
                                                                                   score.intracranial_dice)
    assert res.metrics["medial_cortex"]["gm_fraction"] >= 0.55, res.metrics["medial_cortex"]
    assert abs(score.thickness_difference_mm) <= 0.6, score.thickness_difference_mm


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(not (COLIN / "T1.nii.gz").exists(), reason="../shared/data/real/colin27 not available")
def test_colin27_under_a_head_coil_receive_field():
    """Colin27 as a phased-array head coil without intensity normalisation would record it: a
    receive field x1.0 at the brain's centre to x2.0 at the scalp with a front-back tilt, and
    Rician noise of 3 % of the WM. N4 leaves part of such a field (the scalp fat is bright at
    the periphery anyway); the residual field from the brain's own classes removes the rest.
    Without it: WM Dice 0.805, intracranial volume +4.6 %, intracranial Dice 0.959
    (docs/validation.md, 2026-12-03)."""
    from navigator.io.images import load_image
    from navigator.segmentation.pipeline import segment_head
    from navigator.segmentation.validation import CHARM5, head_superior_axis, score_segmentation

    t1 = load_image(COLIN / "T1.nii.gz")
    data = np.asarray(t1.data, np.float64)
    ijk = np.indices(data.shape).reshape(3, -1).T
    xyz = (ijk @ t1.affine[:3, :3].T + t1.affine[:3, 3]).reshape(data.shape + (3,))
    centre = np.array([0.0, -15.0, 10.0])  # near the brain's centre (Colin27 is in MNI space)
    r = np.linalg.norm(xyz - centre, axis=-1) / 95.0
    field = (1.0 + 0.8 * np.clip(r, 0, 1.0) ** 2) * (1.0 + 0.125 * np.clip((xyz[..., 1] - centre[1]) / 100.0, -1, 1))
    rng = np.random.default_rng(7)
    s = 0.03 * np.percentile(data[data > 0.3 * data.max()], 75)
    y = data * field
    noisy = np.sqrt((y + s * rng.standard_normal(y.shape)) ** 2 + (s * rng.standard_normal(y.shape)) ** 2)
    res = segment_head(Volume(noisy.astype(np.float32), t1.affine.copy(), source="colin27 + coil field"))
    ref = load_image(COLIN / "tissues_charm_convention.nii.gz")
    score, _, _ = score_segmentation(res.labels.data, res.labels.affine, ref.data, ref.affine, CHARM5,
                                     up=head_superior_axis(res.registration.affine_s2m))
    dice = {c.name: c.dice for c in score.classes}
    print("Colin27 + coil field:", dice, score.icv_difference, score.intracranial_dice, score.vault_skull_dice,
          res.metrics["residual_bias_range"])
    low, high = res.metrics["residual_bias_range"]
    assert high / low > 1.2, (low, high)  # a residual field was found and removed
    assert dice["WM"] >= 0.87 and dice["GM"] >= 0.82, dice
    assert abs(score.icv_difference) <= 0.03 and score.intracranial_dice >= 0.955, (score.icv_difference,
                                                                                    score.intracranial_dice)
    assert score.vault_skull_dice >= 0.78, score.vault_skull_dice
