"""Segmentation QC: normal ranges and the verdict (navigator.segmentation.qc) and the report figure
(navigator.segmentation.qc_figure), on synthetic measures and label images."""

from __future__ import annotations

import numpy as np
import pytest

from navigator.core.volume import Volume
from navigator.segmentation import qc
from navigator.segmentation.qc_figure import report_planes, save_qc_report

#: a typical adult head (ml by SimNIBS tag): WM, GM, CSF, scalp, eyes, compact, spongy bone
NORMAL = {1: 520.0, 2: 700.0, 3: 280.0, 5: 1200.0, 6: 14.0, 7: 380.0, 8: 170.0}
TOPO_OK = {"csf_separates_brain": True, "skull_closed": True, "scalp_closed": True, "no_islands": True,
           "neck_cut_consistent": True, "islands": {}}


def test_normal_head_is_plausible():
    v = qc.assess(qc.qc_measures(NORMAL, 6.2), TOPO_OK, {"gm_fraction": 0.55, "template_gm_fraction": 0.6})
    assert v.plausible and v.summary == "plausible" and not v.problems
    # every range and every topology check is listed, plus the medial check
    assert len(v.findings) == len(qc.NORMAL_RANGES) + 5 + 1
    assert qc.verdict_lines({"verdict": v.to_json()}) == ["segmentation QC verdict: plausible"]


def test_the_issue_mprage_is_flagged_with_regions():
    # issue 20's real MPRAGE: 1430 ml bone, 553 ml scalp, WM 376 ml, scalp islands
    vols = {**NORMAL, 1: 376.0, 2: 820.0, 5: 553.0, 7: 900.0, 8: 530.0}
    topo = {**TOPO_OK, "no_islands": False, "islands": {"5": 3, "7": 0}}
    v = qc.assess(qc.qc_measures(vols, 5.0), topo)
    assert not v.plausible and v.summary.startswith("check: ")
    failed = {f.check for f in v.problems}
    assert failed == {"skull (compact + spongy bone)", "scalp / bone volume", "GM / WM ratio",
                      "topology islands"}
    assert "face and neck" in v.summary and "scalp" in v.summary
    msgs = " | ".join(f.message for f in v.problems)
    assert "1430 ml (above)" in msgs and "3 scalp" in msgs
    lines = qc.verdict_lines({"verdict": v.to_json()})
    assert lines[0].startswith("segmentation QC verdict: check:") and len(lines) == 1 + len(v.problems)


def test_unmeasured_values_do_not_fail_and_medial_cortex_can():
    v = qc.assess(qc.qc_measures(NORMAL, None), None, {"gm_fraction": 0.2, "template_gm_fraction": 0.6})
    thick = next(f for f in v.findings if f.check.startswith("vault skull thickness"))
    assert thick.ok is None and "not measured" in thick.message
    assert [f.check for f in v.problems] == ["medial cortex"]
    assert "midline" in v.summary
    assert v.to_json()["findings"][0]["value"] == pytest.approx(1500.0)
    # missing eyes (0 ml) fail: a reason to look at the orbits
    v2 = qc.assess(qc.qc_measures({**NORMAL, 6: 0.0}, 6.0))
    assert [f.check for f in v2.problems] == ["eyes (both)"]


def test_medial_gm_fraction_counts_the_band_only():
    shape = (21, 40, 40)
    mni = np.stack(np.meshgrid(np.arange(-10, 11), np.arange(-70, 90, 4), np.arange(-20, 140, 4),
                               indexing="ij"), -1).astype(np.float32)
    lab = np.full(shape, 3, np.uint8)  # CSF everywhere
    lab[np.abs(mni[..., 0]) == 1] = 2  # GM at x = +-1 mm
    lab[np.abs(mni[..., 0]) > 2] = 2  # outside the band: must not count
    frac, n = qc.medial_gm_fraction(lab, mni)
    b = qc.MEDIAL_BAND_MNI
    x, y, z = mni[..., 0], mni[..., 1], mni[..., 2]
    band = (np.abs(x) <= b["abs_x_max"]) & (y >= b["y"][0]) & (y <= b["y"][1])
    band &= (z >= b["z"][0]) & (z <= b["z"][1])
    assert 0 < n == band.sum() and frac == pytest.approx(2 / 5)  # x = -1, 1 of -2..2


def _sphere_labels(n=120):
    g = (np.indices((n, n, n)) - (n - 1) / 2).astype(np.float32)
    r = np.sqrt((g ** 2).sum(0))
    lab = np.zeros((n, n, n), np.uint8)
    lab[r <= 55] = 5
    lab[r <= 49] = 7
    lab[(r <= 47) & (r > 44)] = 8
    lab[r <= 42] = 3
    lab[r <= 39] = 2
    lab[r <= 33] = 1
    aff = np.eye(4)
    aff[:3, 3] = -(n - 1) / 2
    t1 = np.select([lab == 1, lab == 2, lab == 3, lab == 5, lab == 8], [0.8, 0.55, 0.15, 0.7, 0.5], 0.05)
    return Volume(lab, aff), Volume(t1.astype(np.float32), aff)


def test_report_planes_follow_the_head_axes_and_pass_through_the_target():
    labels, _ = _sphere_labels()
    a = np.deg2rad(20.0)  # head pitched 20 degrees about the left-right axis
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    target = np.array([-30.0, 25.0, 20.0])
    views = {"mni_axes_subject": rot.tolist(), "dlpfc_target": {"subject_ras_mm": target.tolist()},
             "midline_point_subject_ras_mm": [0.0, 0.0, 0.0]}
    planes = report_planes(labels, views)
    assert [p["name"].split()[0] for p in planes] == ["axial", "coronal", "sagittal", "medial"]
    for p in planes[:3]:
        normal = np.cross(p["e_u"], p["e_v"])
        assert abs(float((target - p["origin"]) @ normal)) < 1e-9  # the target is on the plane
        assert p["mark"] is not None
    mid = planes[3]
    assert np.allclose(np.abs(np.cross(mid["e_u"], mid["e_v"])), np.abs(rot[0])) and mid["mark"] is None
    assert float(mid["point"] @ rot[0]) == pytest.approx(-4.0)  # the left medial surface, off the fissure
    np.testing.assert_allclose(planes[0]["e_v"], rot[1])  # axial panel: up = anterior of the head
    # without a registration: grid axes through the brain centre, no target
    plain = report_planes(labels, None)
    assert all(p["mark"] is None for p in plain) and np.allclose(plain[0]["e_u"], [1, 0, 0])


def test_qc_report_png(tmp_path):
    labels, t1 = _sphere_labels()
    p = qc.save_montage(t1, labels, tmp_path / "qc.png", title="sphere")  # verdict from the labels alone
    assert p.stat().st_size > 30_000
    with pytest.raises(ValueError, match="needs the QC verdict"):
        save_qc_report(t1, labels, tmp_path / "qc0.png")
    # with metrics (views and verdict) as recorded by segmentation_metrics in labels.meta
    verdict = qc.assess(qc.qc_measures(NORMAL, 6.0), TOPO_OK).to_json()
    labels.meta["qc"] = {"verdict": verdict, "views": {"mni_axes_subject": np.eye(3).tolist(),
                                                       "dlpfc_target": {"subject_ras_mm": [-30, 20, 25]},
                                                       "midline_point_subject_ras_mm": [0, 0, 0]}}
    p2 = qc.save_montage(t1, labels, tmp_path / "qc2.png", title="sphere with metrics")
    assert p2.stat().st_size > 30_000
    import matplotlib.image as mpimg

    img = mpimg.imread(str(p2))
    # the verdict word is drawn in the plausible colour (green) in the top-left corner
    corner = img[: img.shape[0] // 8, : img.shape[1] // 5, :3]
    green = (corner[..., 1] > 0.5) & (corner[..., 0] < 0.3) & (corner[..., 2] < 0.4)
    assert green.sum() > 200


def test_face_bone_thickness_tells_plates_from_speckle():
    lab = np.zeros((60, 60, 100), np.uint8)
    lab[10:50, 10:50, 60:95] = 1  # "brain": intracranial centroid at z = 77
    lab[5:55, 5:55, 5:40] = 5  # soft tissue of the face/neck, below centroid - 20 mm
    aff = np.eye(4)
    plate = lab.copy()
    plate[5:55, 5:55, 20:26] = 7  # a 6 mm bone plate across the soft tissue (edges touch air only)
    assert qc.face_bone_thickness(plate, aff) == pytest.approx(6.0)
    speck = lab.copy()
    rng = np.random.default_rng(0)
    pts = rng.integers([6, 6, 6], [54, 54, 39], size=(600, 3))
    speck[tuple(pts.T)] = 8  # isolated bone voxels in the soft tissue
    assert qc.face_bone_thickness(speck, aff) < 0.5
    # the same plate above the face region (next to the brain) is not counted
    high = lab.copy()
    high[10:50, 10:50, 56:60] = 7
    assert qc.face_bone_thickness(high, aff) is None
    # the verdict counts the speckled bone (soft tissue on >= 4 of 6 sides), not the plate
    assert qc.face_bone_speckle_ml(plate, aff) < 0.5 and qc.face_bone_speckle_ml(speck, aff) > 0.55
    assert qc.face_bone_speckle_ml(high, aff) == 0.0
    thin = lab.copy()
    thin[5:55, 5:55, 20:21] = 7  # a one-voxel wall (sinus wall, orbital floor) is no speckle either
    assert qc.face_bone_speckle_ml(thin, aff) < 0.2
    speck[tuple((rng.integers([6, 6, 6], [54, 54, 39], size=(12000, 3))).T)] = 8
    m = qc.qc_measures(NORMAL, 6.0, qc.face_bone_speckle_ml(speck, aff))
    v = qc.assess(m, TOPO_OK)
    assert [f.check for f in v.problems] == ["face/neck bone speckle"] and "speckle" in v.summary


def test_distant_csf_counts_csf_away_from_brain_only():
    lab = np.zeros((80, 40, 40), np.uint8)
    lab[5:35, 5:35, 5:35] = 2  # brain
    lab[4:36, 4:36, 4] = 3  # a CSF sheet on it: near
    lab[60:70, 10:20, 10:20] = 3  # 1000 voxels of CSF 25-35 voxels away
    sp = np.array([1.0, 1.0, 1.0])
    assert qc.distant_csf_ml(lab, sp) == pytest.approx(1.0)
    assert qc.distant_csf_ml(lab, sp * 0.5) == pytest.approx(0.125)  # 12.5-17.5 mm away at 0.5 mm voxels
    assert qc.distant_csf_ml(lab, sp * 0.25) == 0.0  # 6.25-8.75 mm away: within 10 mm
    v = qc.assess(qc.qc_measures(NORMAL, 6.0, 6.0, 12.0), TOPO_OK)
    assert [f.check for f in v.problems] == ["CSF more than 10 mm from brain"] and "labelled CSF" in v.summary


def test_distant_csf_leaves_out_the_spinal_canal():
    """CSF far from the brain in the spinal canal (cord not labelled brain) is not counted; the
    same CSF in the face is."""
    lab = np.zeros((120, 120, 120), np.uint8)
    lab[30:90, 30:90, 70:110] = 2  # brain
    lab[55:65, 35:45, 10:20] = 3  # 1000 voxels below the brain, behind: the canal
    lab[55:65, 100:110, 40:50] = 3  # 1000 voxels below the brain, in front: the face
    aff = np.eye(4)
    aff[:3, 3] = [-60.0, -80.0, -100.0]  # voxel (60, 40, 15) -> world (0, -40, -85)
    sp = np.ones(3)

    def to_mni(pts):
        return np.asarray(pts, float)  # the subject is in MNI space here

    assert qc.distant_csf_ml(lab, sp) == pytest.approx(2.0)
    assert qc.distant_csf_ml(lab, sp, affine=aff, subject_to_mni=to_mni) == pytest.approx(1.0)
    assert qc.in_spinal_canal(np.array([[0.0, -40.0, -85.0], [0.0, 25.0, -55.0], [40.0, -40.0, -85.0]])).tolist() \
        == [True, False, False]


def test_eyes_not_judged_when_the_image_ends_before_the_orbits():
    """A scan cut in front of or below the eyes gets 'eyes: not measured', not 'check: orbits'."""
    ident = lambda p: np.asarray(p, float)  # noqa: E731 (subject = MNI here)
    whole = np.eye(4)
    whole[:3, 3] = [-90.0, -126.0, -72.0]  # 181 x 217 x 181 at 1 mm: the MNI box, eyes inside
    assert qc.orbits_in_view((181, 217, 181), whole, ident)
    assert not qc.orbits_in_view((181, 185, 181), whole, ident)  # ends at y = +58: eye centres at y = 57
    low_cut = whole.copy()
    low_cut[2, 3] = -40.0  # starts at z = -40: eye centres at z = -35 only 5 mm inside
    assert not qc.orbits_in_view((181, 217, 150), low_cut, ident)
    no_eyes = {k: v for k, v in NORMAL.items() if k != 6}
    cut = qc.assess(qc.qc_measures(no_eyes, 6.0, 1.0, 0.0, orbits_in_view=False), TOPO_OK)
    assert cut.plausible and any(f.message == "eyes (both): not measured" for f in cut.findings)
    seen = qc.assess(qc.qc_measures(no_eyes, 6.0, 1.0, 0.0), TOPO_OK)
    assert [f.check for f in seen.problems] == ["eyes (both)"]


def test_defaced_orbits_are_not_judged_for_eyes():
    """A defaced scan (face zeroed) has its orbits inside the grid but holds no signal there:
    'eyes: not measured' rather than 'check: orbits'; an intact scan is judged as before."""
    from navigator.segmentation.classify import EYE_CENTRES_MNI

    ident = lambda p: np.asarray(p, float)  # noqa: E731 (subject = MNI here)
    aff = np.eye(4)
    aff[:3, 3] = [-90.0, -126.0, -72.0]  # 181 x 217 x 181 at 1 mm: the MNI box
    rng = np.random.default_rng(3)
    t1 = rng.integers(1, 200, size=(181, 217, 181)).astype(np.int16)  # signal everywhere
    assert not qc.orbits_zero_filled(t1, aff, ident)
    ii, jj, kk = np.indices(t1.shape, sparse=True)
    y, z = jj - 126.0, kk - 72.0
    defaced = t1.copy()
    defaced[np.broadcast_to((y > 40.0) & (z < 10.0), t1.shape)] = 0  # the face in front of y = 40 below z = 10
    assert qc.orbits_zero_filled(defaced, aff, ident)
    # a zero in a few orbit voxels (noise floor) is not defacing
    sparse = t1.copy()
    eye = np.round(np.asarray(EYE_CENTRES_MNI[0]) - aff[:3, 3]).astype(int)
    sparse[eye[0] - 3:eye[0] + 3, eye[1] - 3:eye[1] + 3, eye[2] - 3:eye[2] + 3] = 0
    assert not qc.orbits_zero_filled(sparse, aff, ident)


def test_distant_csf_in_the_brains_place_is_a_cavity_not_face_csf():
    """CSF far from any brain voxel where the template has brain (an old infarct, a resection)
    is counted apart and named as a cavity; the same CSF outside the template's brain is face
    or neck CSF as before."""
    lab = np.zeros((120, 120, 120), np.uint8)
    lab[20:100, 20:100, 40:110] = 2  # brain
    lab[45:75, 45:75, 60:90] = 3  # a 27 ml cavity in it: its core is > 10 mm from brain
    lab[55:65, 100:110, 5:15] = 3  # 1000 voxels in front, below: the face
    aff = np.eye(4)
    aff[:3, 3] = [-60.0, -60.0, -75.0]
    sp = np.ones(3)

    def to_mni(pts):
        return np.asarray(pts, float)

    def brain_place(mni):  # the template's brain: a box around the cavity
        mni = np.asarray(mni, float)
        return np.all(np.abs(mni - [0.0, 0.0, 0.0]) < 35.0, axis=1)

    plain = qc.distant_csf(lab, sp, affine=aff, subject_to_mni=to_mni)
    split = qc.distant_csf(lab, sp, affine=aff, subject_to_mni=to_mni, in_brain_place=brain_place)
    core = 10 ** 3 / 1000.0  # voxels 55..64 along each axis are more than 10 mm from the brain
    assert plain.brain_place_ml is None and plain.outside_ml == pytest.approx(1.0 + core)
    assert split.outside_ml == pytest.approx(1.0) and split.brain_place_ml == pytest.approx(core)
    v = qc.assess(qc.qc_measures(NORMAL, 6.0, 6.0, 1.0, brain_cavity=12.0), TOPO_OK)
    assert [f.check for f in v.problems] == ["CSF cavity where the brain should be"]
    assert "infarct" in v.summary and "labelled CSF" not in v.summary


def test_template_brain_place_is_the_template_brain_less_its_edge():
    from navigator.segmentation.templates import load_templates

    tm = load_templates()
    inside = qc.template_brain_place(tm)
    got = inside(np.array([[0.0, -18.0, 20.0], [-40.0, 30.0, 30.0], [0.0, 0.0, 100.0], [0.0, 90.0, -40.0],
                           [500.0, 0.0, 0.0]]))
    assert got.tolist() == [True, True, False, False, False]
