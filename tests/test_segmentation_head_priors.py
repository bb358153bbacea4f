"""Head priors (shipped, from the SAMSEG atlas) and the whole-head mixture on a synthetic head."""

from __future__ import annotations

import numpy as np

from navigator.segmentation import head_labels, head_mixture, head_priors


def test_shipped_priors_are_probabilities_with_a_plausible_head():
    hp = head_priors.load_head_priors()
    p = hp.priors.astype(np.float64) / 255.0
    assert p.shape[0] == len(head_priors.CLASSES)
    assert np.allclose(p.sum(axis=0), 1.0, atol=0.02)
    vox_ml = abs(np.linalg.det(hp.affine[:3, :3])) / 1000.0
    vol = {c: p[i].sum() * vox_ml for i, c in enumerate(head_priors.CLASSES)}
    assert 1000 < vol["wm"] + vol["gm"] + vol["deep_gm"] < 1700, vol
    assert 300 < vol["skull"] < 900 and 5 < vol["eyes"] < 30, vol
    # the MNI152 -> atlas map is close to the identity (a few % scale, a few mm shift)
    m = hp.mni152_to_atlas
    assert np.allclose(m[:3, :3], np.eye(3), atol=0.1) and np.abs(m[:3, 3]).max() < 10


def test_warped_priors_at_mni_points():
    """A point at the vertex of the skull is skull-likely, the centre of the brain WM/deep GM,
    a point far outside the atlas box is soft tissue or air."""
    pts = np.array([[0.0, -20.0, 72.0], [0.0, -15.0, 10.0], [0.0, 0.0, -160.0]], np.float32)
    # find the skull along the vertical line above the vertex rather than guessing its height
    line = np.stack([np.zeros(60), np.full(60, -20.0), np.linspace(50, 90, 60)], 1).astype(np.float32)
    pr = head_priors.warp_head_priors(line.reshape(60, 1, 1, 3))[:, :, 0, 0]
    assert pr[head_priors.CLASSES.index("skull")].max() > 0.5
    pr = head_priors.warp_head_priors(pts.reshape(3, 1, 1, 3))[:, :, 0, 0]
    c = {n: i for i, n in enumerate(head_priors.CLASSES)}
    assert pr[c["wm"], 1] + pr[c["deep_gm"], 1] + pr[c["csf"], 1] > 0.6
    assert abs(pr[c["soft"], 2] - head_priors.OUTSIDE_ATLAS_SOFT) < 1e-6
    assert np.allclose(pr.sum(axis=0), 1.0, atol=1e-5)


def test_mixture_and_labels_on_a_layered_head():
    """Concentric layers (WM, GM, CSF, bone, fat, air) with priors blurred and shifted by 2 mm:
    the mixture recovers the layers and the labels nest (brain inside CSF inside bone)."""
    n = 64
    g = np.indices((n, n, n)).astype(np.float32) - n / 2 + 0.5
    r = np.sqrt((g ** 2).sum(0))
    radii = [("wm", 12, 0.62), ("gm", 16, 0.46), ("csf", 19, 0.2), ("skull", 23, 0.02), ("soft", 28, 0.7)]
    t1 = np.zeros((n, n, n), np.float32)
    truth = np.full((n, n, n), "background", object)
    inner = 0
    for name, rad, val in radii:
        sel = (r >= inner) & (r < rad)
        t1[sel] = val
        truth[sel] = name
        inner = rad
    rng = np.random.default_rng(0)
    t1 = np.clip(t1 + rng.normal(0, 0.02, t1.shape).astype(np.float32), 0, None)
    from scipy import ndimage as ndi

    priors = np.zeros((len(head_priors.CLASSES), n, n, n), np.float32)
    shifted = np.sqrt(((g - np.array([2, 0, 0])[:, None, None, None]) ** 2).sum(0))
    inner = 0
    for name, rad, _ in radii:
        priors[head_priors.CLASSES.index(name)] = ndi.gaussian_filter(((shifted >= inner) & (shifted < rad))
                                                                       .astype(np.float32), 1.5)
        inner = rad
    priors[0] = ndi.gaussian_filter((shifted >= inner).astype(np.float32), 1.5)
    priors += 1e-3
    priors /= priors.sum(axis=0, keepdims=True)
    head = r < 28
    mix = head_mixture.fit_head_mixture(t1, priors, head)
    labels, ic = head_labels.labels_from_mixture(mix, t1, 1.0, priors)
    expect = {"wm": 1, "gm": 2, "csf": 3, "skull": 7, "soft": 5}
    for name, lab in expect.items():
        t = truth == name
        got = np.isin(labels, (7, 8)) if lab == 7 else labels == lab
        dice = 2 * (t & got).sum() / (t.sum() + got.sum())
        assert dice > 0.85, (name, dice)
    # nesting: the intracranial space is enclosed by bone
    assert ic.sum() > 0 and not (ndi.binary_dilation(ic) & ~ic & (labels == 5)).any()
