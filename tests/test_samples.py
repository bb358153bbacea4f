"""Sample subjects: the sphere's radii, the phantom's anatomy, ground truth and images."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from navigator.cli import main
from navigator.core.errors import NavigatorError
from navigator.core.workspace import Workspace
from navigator.io.images import load_image
from navigator.samples import SAMPLES, write_sample
from navigator.samples.phantom import MNI_LANDMARKS, generate_phantom, gm_bone_contacts
from navigator.samples.warp import PhantomGroundTruth

BONE = (7, 8)


# ---------------------------------------------------------------------------- sphere
@pytest.fixture(scope="module")
def sphere_ws(tmp_path_factory):
    return write_sample("sphere", tmp_path_factory.mktemp("s") / "sphere")


def test_sphere_label_radii(sphere_ws):
    lab = load_image(sphere_ws.path("labels"))
    assert lab.axcodes == ("R", "A", "S")
    centre = lab.world_to_voxel(np.zeros((1, 3)))[0]
    assert np.allclose(centre, np.round(centre)) and lab.data[tuple(np.round(centre).astype(int))] == 3

    def at(r):  # label of the voxel centred at (0, 0, r) and (r, 0, 0)
        out = set()
        for p in ([0, 0, r], [r, 0, 0], [0, -r, 0]):
            ijk = np.round(lab.world_to_voxel(np.array([p], float))[0]).astype(int)
            out.add(int(lab.data[tuple(ijk)]))
        assert len(out) == 1
        return out.pop()

    assert [at(r) for r in (84, 85, 86, 90, 91, 95, 96, 100)] == [3, 3, 4, 4, 5, 5, 0, 0]
    counts = np.bincount(lab.data.ravel(), minlength=6)
    for lab_id, r0, r1 in ((3, 0, 85), (4, 85, 90), (5, 90, 95)):
        exact = 4 / 3 * np.pi * (r1 ** 3 - r0 ** 3)
        assert abs(counts[lab_id] - exact) / exact < 0.01


def test_sphere_workspace(sphere_ws):
    ws = Workspace.open(sphere_ws.root, verify_hashes=True)
    assert "T1" in ws.sources()
    step = ws.step("labels")
    assert step is not None and step.parameters["source"] == "sample:sphere"
    assert ws.step_is_current("labels", step.parameters, inputs=[])
    t1 = load_image(ws.path("t1"))
    lab = load_image(ws.path("labels"))
    assert np.allclose(t1.affine, lab.affine) and t1.shape == lab.shape
    # skin bright, bone dark, interior intermediate (a usable image for viewers)
    means = {k: float(t1.data[lab.data == k].mean()) for k in (3, 4, 5)}
    assert means[5] > means[3] > means[4]


# ---------------------------------------------------------------------------- phantom
@pytest.fixture(scope="session")
def phantom_ws(tmp_path_factory):
    return write_sample("phantom", tmp_path_factory.mktemp("p") / "phantom", seed=0)


@pytest.fixture(scope="session")
def phantom_ras(phantom_ws):
    """Ground-truth labels, T1 and T2 loaded (reoriented to RAS) plus the ground truth."""
    lab = load_image(phantom_ws.root / "ground_truth" / "labels.nii.gz")
    t1 = load_image(phantom_ws.path("t1"))
    t2 = load_image(phantom_ws.path("t2"))
    truth = PhantomGroundTruth.load(phantom_ws.root)
    return lab, t1, t2, truth


def test_phantom_workspace_layout(phantom_ws):
    ws = Workspace.open(phantom_ws.root, verify_hashes=True)
    assert set(ws.sources()) == {"T1", "T2"}
    step = ws.step("labels")
    assert step.parameters == {"source": "sample:phantom", "seed": 0}
    gt = ws.root / "ground_truth"
    for name in ("labels.nii.gz", "warp.json", "fiducials.json", "mni_landmarks.json", "phantom.json"):
        assert (gt / name).is_file(), name
    a = nib.load(str(gt / "labels.nii.gz"))
    b = nib.load(str(ws.path("labels")))
    c = nib.load(str(ws.path("t1")))
    assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
    assert np.allclose(a.affine, c.affine) and a.shape == c.shape


def test_phantom_tissues_and_volumes(phantom_ras):
    lab, _, _, _ = phantom_ras
    counts = np.bincount(lab.data.ravel(), minlength=9) / 1000.0  # ml (1 mm voxels)
    for k in (1, 2, 3, 5, 6, 7, 8):
        assert counts[k] > 5, f"label {k} missing"
    assert counts[4] == 0
    brain = counts[1] + counts[2]
    assert 1100 < brain < 1600, brain
    assert counts[1] < counts[2]  # less WM than GM
    assert 8 < counts[6] < 18  # two 12 mm spheres (14.5 ml) scaled by the subject size (~0.8)
    assert 400 < counts[7] + counts[8] < 1200
    assert 150 < counts[3] < 600


def test_phantom_csf_separates_gm_from_bone(phantom_ras, phantom_ws):
    lab, _, _, _ = phantom_ras
    assert not gm_bone_contacts(lab.data).any()
    info = json.loads((phantom_ws.root / "ground_truth" / "phantom.json").read_text())
    # the anatomy itself has a CSF barrier: only stray resampling contacts needed fixing
    assert info["gm_bone_contacts_fixed"] < 50


def test_phantom_scalp_closed(phantom_ras):
    lab, _, _, _ = phantom_ras
    data = lab.data
    air = data == 0
    comp, _ = ndi.label(air)
    border = np.unique(np.concatenate([comp[[0, -1]].ravel(), comp[:, [0, -1]].ravel(), comp[:, :, [0, -1]].ravel()]))
    outside = np.isin(comp, border[border > 0])
    near_out = ndi.binary_dilation(outside, structure=ndi.generate_binary_structure(3, 1))
    # above the neck cut (bottom ~25 mm of the head), only scalp may touch the outside air
    head_z = np.nonzero((data > 0).any(axis=(0, 1)))[0]
    upper = np.zeros(data.shape[2], bool)
    upper[head_z.min() + 25:] = True
    exposed = near_out & (data != 0) & (data != 5) & upper[None, None, :]
    assert not exposed.any(), f"{exposed.sum()} interior voxels touch outside air; {np.unique(data[exposed])}"
    # sinuses (air inside the head) exist and are enclosed: frontal, sphenoid, 2 maxillary
    assert (air & ~outside).sum() > 5000
    assert ndi.label(air & ~outside)[1] >= 3


def test_phantom_neck_cut_is_an_axial_plane(phantom_ras, phantom_ws):
    lab, _, _, _ = phantom_ras
    info = json.loads((phantom_ws.root / "ground_truth" / "phantom.json").read_text())
    z = lab.voxel_to_world(np.stack([np.zeros(lab.shape[2]), np.zeros(lab.shape[2]), np.arange(lab.shape[2])], 1))[:, 2]
    area = (lab.data > 0).sum(axis=(0, 1))
    first = int(np.nonzero(area)[0].min())
    assert z[first] >= info["neck_cut_world_z_mm"] > z[first] - 1.0
    # the whole neck is cut by that plane, not a ragged end of the template
    assert area[first] > 4000 and area[first] >= 0.9 * area[first + 5]


def test_phantom_skull_thickness_varies(phantom_ras):
    lab, _, _, truth = phantom_ras
    inv = np.linalg.inv(lab.affine)

    def thickness(mni_dir, origin=(0.0, -18.0, 5.0)):
        o = np.array([origin], float)
        d = np.array(mni_dir, float) / np.linalg.norm(mni_dir)
        c = truth.mni_to_subject(o)[0]
        ds = truth.mni_to_subject(o + 10 * d)[0] - c
        ds /= np.linalg.norm(ds)
        t = np.arange(0, 130, 0.1)
        ijk = np.rint((c + t[:, None] * ds) @ inv[:3, :3].T + inv[:3, 3]).astype(int)
        ok = (ijk >= 0).all(1) & (ijk < np.array(lab.shape)).all(1)
        vals = np.zeros(len(t), int)
        vals[ok] = lab.data[tuple(ijk[ok].T)]
        return np.isin(vals, BONE).sum() * 0.1, (vals == 5).sum() * 0.1

    temporal = [thickness((s, 0.0, 0.0))[0] for s in (-1, 1)]
    occipital = [thickness((s * 0.3, -1.0, 0.1))[0] for s in (-1, 1)]
    parietal = [thickness((s * 0.5, -0.3, 0.8))[0] for s in (-1, 1)]
    for t in temporal:
        assert 2.0 <= t <= 5.5
    for t in occipital:
        assert 6.0 <= t <= 12.0
    for t in parietal:
        assert 4.5 <= t <= 9.5
    assert min(occipital) > max(temporal) + 2
    scalp = [thickness(d)[1] for d in ((1, 0, 0), (0, 0, 1), (0.3, -1, 0.1))]
    for s in scalp:
        assert 3.0 <= s <= 9.0


def test_phantom_warp_inverse_and_json(phantom_ws):
    truth = PhantomGroundTruth.load(phantom_ws.root / "ground_truth" / "warp.json")
    rng = np.random.default_rng(1)
    x = rng.uniform([-90, -130, -110], [90, 100, 100], size=(5000, 3))
    y = truth.mni_to_subject(x)
    assert np.abs(truth.subject_to_mni(y) - x).max() < 0.01
    assert np.linalg.norm(y - x, axis=1).max() > 5  # it is not the identity
    # smooth and invertible: det of the warp's Jacobian stays positive and near 1
    det = np.linalg.det(truth.displacement_jacobian(x) + np.eye(3))
    assert det.min() > 0.5 and det.max() < 1.5
    again = PhantomGroundTruth.from_json(json.loads(json.dumps(truth.to_json())))
    assert np.array_equal(again.mni_to_subject(x), y)
    # landmarks file holds the exact mapping
    lm = json.loads((phantom_ws.root / "ground_truth" / "mni_landmarks.json").read_text())["points"]
    assert set(lm) == set(MNI_LANDMARKS)
    for rec in lm.values():
        assert np.allclose(truth.mni_to_subject(np.array([rec["mni"]]))[0], rec["subject"], atol=1e-9)


def test_phantom_labels_follow_warp(phantom_ras):
    """Deep template white matter, mapped by warp.json, lands on WM in the stored labels."""
    from navigator.samples.anatomy import build_template_anatomy

    lab, _, _, truth = phantom_ras
    anat = build_template_anatomy()
    deep_wm = ndi.binary_erosion(anat.labels == 1, iterations=2)
    ijk = np.argwhere(deep_wm)[::50]
    mni = ijk @ anat.affine[:3, :3].T + anat.affine[:3, 3]
    subj = truth.mni_to_subject(mni)
    vox = np.rint(lab.world_to_voxel(subj)).astype(int)
    assert (lab.data[tuple(vox.T)] == 1).mean() > 0.98
    # and the DLPFC targets land in the left brain
    for name in ("fox2012_dlpfc", "ba46", "beam_f3_cortex"):
        p = truth.mni_to_subject(np.array([MNI_LANDMARKS[name]]))
        v = np.rint(lab.world_to_voxel(p)[0]).astype(int)
        assert ndi.binary_dilation(np.isin(lab.data, (1, 2, 3)))[tuple(v)], name


def test_phantom_fiducials_on_scalp(phantom_ras, phantom_ws):
    lab, _, _, truth = phantom_ras
    fid = json.loads((phantom_ws.root / "ground_truth" / "fiducials.json").read_text())["points"]
    assert set(fid) == {"nasion", "inion", "lpa", "rpa"}
    p = {k: np.array(v) for k, v in fid.items()}
    head = ndi.gaussian_filter((lab.data > 0).astype(np.float32), 0.8)
    for name, xyz in p.items():
        v = lab.world_to_voxel(xyz[None])[0]
        val = ndi.map_coordinates(head, v[:, None], order=1)[0]
        assert 0.3 < val < 0.7, (name, val)  # on the air/skin boundary
        i, j, k = np.round(v).astype(int)
        block = lab.data[i - 2:i + 3, j - 2:j + 3, k - 2:k + 3]
        assert (block == 5).any() and (block == 0).any(), name
    assert p["lpa"][0] < p["rpa"][0] - 100
    assert p["nasion"][1] > p["inion"][1] + 150
    assert p["nasion"][2] > p["lpa"][2] and p["nasion"][2] > p["rpa"][2]
    # the fiducials sit where the warp says (snapping onto the resampled scalp moves them < 1 mm)
    mni = json.loads((phantom_ws.root / "ground_truth" / "fiducials.json").read_text())["mni"]
    for name, xyz in p.items():
        assert np.linalg.norm(truth.mni_to_subject(np.array([mni[name]]))[0] - xyz) < 1.0


def test_phantom_t1_storage_and_left_right(phantom_ws, phantom_ras):
    raw = nib.load(str(phantom_ws.path("t1")))
    assert nib.aff2axcodes(raw.affine) == ("P", "S", "R")
    assert raw.get_data_dtype() == np.uint16
    lab, t1, _, truth = phantom_ras
    assert t1.axcodes == ("R", "A", "S") and t1.meta.get("reoriented")
    from navigator.samples.anatomy import build_template_anatomy

    eyes = build_template_anatomy().landmarks
    left = truth.mni_to_subject(eyes["eye_left"][None])[0]
    right = truth.mni_to_subject(eyes["eye_right"][None])[0]
    assert left[0] < 0 < right[0]
    for pt in (left, right):
        v = tuple(np.rint(t1.world_to_voxel(pt[None])[0]).astype(int))
        assert lab.data[v] == 6
    # the eye on the left of the loaded image (smaller world x) is the left eye
    comp, n = ndi.label(lab.data == 6)
    assert n == 2
    cents = [lab.voxel_to_world(np.argwhere(comp == c).mean(axis=0)[None])[0] for c in (1, 2)]
    west = min(cents, key=lambda c: c[0])
    assert np.linalg.norm(west - left) < 2.0
    # world origin is not the MNI origin
    assert np.linalg.norm(truth.mni_to_subject(np.zeros((1, 3)))[0]) > 10


def test_phantom_contrast(phantom_ras):
    lab, t1, t2, _ = phantom_ras
    d = lab.data
    core = {k: ndi.binary_erosion(d == k, iterations=1) for k in (1, 2, 3, 6, 7)}
    m1 = {k: float(np.median(t1.data[v])) for k, v in core.items()}
    m2 = {k: float(np.median(t2.data[v])) for k, v in core.items()}
    assert m1[1] > m1[2] > m1[3]  # T1: WM > GM > CSF
    assert m1[6] < m1[2] and m1[7] < m1[3] * 1.5  # eyes and compact bone dark
    assert m2[3] > m2[2] > m2[1]  # T2: CSF > GM > WM
    assert m2[6] > m2[2] and m2[7] < m2[1]  # eyes bright, bone dark
    # Rician background: mean = sigma * sqrt(pi / 2); sigma ~ 2-3 % of WM
    bg = t1.data[:8, :8, -8:].astype(float)
    sigma = bg.mean() / np.sqrt(np.pi / 2)
    assert 0.01 < sigma / m1[1] < 0.045
    # bias field: the mean of pure WM differs between the octants of the brain by > 5 %
    wm = np.argwhere(core[1])
    octant = ((wm > np.median(wm, axis=0)) * [1, 2, 4]).sum(axis=1)
    vals = t1.data[tuple(wm.T)].astype(float)
    means = [vals[octant == o].mean() for o in range(8)]
    assert max(means) / min(means) > 1.05


def test_phantom_seeds_deterministic_and_different(phantom_ws):
    a = generate_phantom(1)
    stored = np.asarray(nib.load(str(phantom_ws.path("t1"))).dataobj)
    b = generate_phantom(0)
    assert np.array_equal(b.t1, stored)  # same seed, identical image
    assert a.orientation != "RAS" and nib.aff2axcodes(a.affine) != ("R", "A", "S")
    assert not np.allclose(a.truth.affine, b.truth.affine)
    assert a.t1.shape != b.t1.shape or not np.array_equal(a.t1, b.t1)
    assert not gm_bone_contacts(a.labels).any()
    counts = np.bincount(a.labels.ravel(), minlength=9)
    assert all(counts[k] > 5000 for k in (1, 2, 3, 5, 7, 8)) and counts[6] > 10000


# ---------------------------------------------------------------------------- API / CLI
def test_sample_list_and_refusals(tmp_path, capsys):
    assert set(SAMPLES) == {"sphere", "phantom"}
    assert main(["sample", "list"]) == 0
    out = capsys.readouterr().out
    assert "sphere" in out and "phantom" in out
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("keep me")
    assert main(["sample", "sphere", "--out", str(tmp_path / "busy")]) == 1
    assert main(["sample", "sphere", "--out", str(tmp_path / "busy"), "--force"]) == 1
    assert (tmp_path / "busy" / "x.txt").read_text() == "keep me"
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(NavigatorError, match="unknown sample"):
        write_sample("nope", tmp_path / "n")
    assert main(["sample", "sphere"]) == 1  # --out missing


def test_sample_cli_writes_and_force_replaces(tmp_path):
    out = tmp_path / "sph"
    assert main(["sample", "sphere", "--out", str(out), "-q"]) == 0
    first = Workspace.open(out).manifest["created"]
    assert main(["sample", "sphere", "--out", str(out), "-q"]) == 1
    assert main(["sample", "sphere", "--out", str(out), "--force", "-q"]) == 0
    assert Workspace.open(out).has("labels")
    assert Workspace.open(out).manifest["created"] >= first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left
