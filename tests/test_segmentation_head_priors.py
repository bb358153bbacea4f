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


def _layered_head(layers, n=72, shift=2.0, blur=0.0, seed=0, patch=None):
    """Concentric layers [(prior class, outer radius, T1, T2), ...] (voxels), Gaussian noise,
    optional blur (the scanner's point spread, sigma in voxels); priors blurred and shifted.
    ``patch(g, r) -> (mask, t1 value)`` overwrites part of the image (not the priors)."""
    from scipy import ndimage as ndi

    g = np.indices((n, n, n)).astype(np.float32) - n / 2 + 0.5
    r = np.sqrt((g ** 2).sum(0))
    t1 = np.zeros((n, n, n), np.float32)
    t2 = np.zeros((n, n, n), np.float32)
    layer = np.full((n, n, n), -1, np.int16)
    inner = 0
    for i, (_, rad, v1, v2) in enumerate(layers):
        sel = (r >= inner) & (r < rad)
        t1[sel], t2[sel], layer[sel] = v1, v2, i
        inner = rad
    if patch is not None:
        mask, value = patch(g, r)
        t1[mask], layer[mask] = value, len(layers)
    if blur:
        t1, t2 = ndi.gaussian_filter(t1, blur), ndi.gaussian_filter(t2, blur)
    rng = np.random.default_rng(seed)
    t1 = np.clip(t1 + rng.normal(0, 0.02, t1.shape).astype(np.float32), 0, None)
    t2 = np.clip(t2 + rng.normal(0, 0.02, t2.shape).astype(np.float32), 0, None)
    shifted = np.sqrt(((g - np.array([shift, 0, 0])[:, None, None, None]) ** 2).sum(0))
    priors = np.zeros((len(head_priors.CLASSES), n, n, n), np.float32)
    inner = 0
    for name, rad, _, _ in layers:
        priors[head_priors.CLASSES.index(name)] += ndi.gaussian_filter(
            ((shifted >= inner) & (shifted < rad)).astype(np.float32), 1.5)
        inner = rad
    priors[0] += ndi.gaussian_filter((shifted >= inner).astype(np.float32), 1.5)
    priors += 1e-3
    priors /= priors.sum(axis=0, keepdims=True)
    return t1, t2, priors, layer, r < inner


def test_thin_blurred_tables_with_t2_keep_csf_inside_and_fill_the_diploe():
    """Two-voxel tables blurred below the bone level around muscle-bright diploe (as on the
    phantom): with the T2 the CSF stops at the inner table (no leak of the intracranial space
    into the diploe), the blurred tables are found as skull valleys and the diploe between them
    is spongy bone."""
    layers = [("wm", 12, 0.9, 0.32), ("gm", 16, 0.6, 0.46), ("csf", 19, 0.17, 1.0),
              ("skull", 21, 0.04, 0.04), ("skull", 24, 0.5, 0.3), ("skull", 26, 0.04, 0.04),
              ("soft", 31, 0.75, 0.45)]
    t1, t2, priors, layer, head = _layered_head(layers, blur=0.8)
    mix = head_mixture.fit_head_mixture(t1, priors, head, t2)
    labels, ic = head_labels.labels_from_mixture(mix, t1, 1.0, priors, t2)
    ic_truth = (layer >= 0) & (layer <= 2)
    assert abs(ic.sum() / ic_truth.sum() - 1) < 0.04, ic.sum() / ic_truth.sum()
    bone_truth = (layer >= 3) & (layer <= 5)
    bone = np.isin(labels, (7, 8))
    dice = 2 * (bone & bone_truth).sum() / (bone.sum() + bone_truth.sum())
    assert dice > 0.8, dice
    assert (labels[layer == 4] == 8).mean() > 0.6  # the diploe is marrow, not scalp or CSF


def test_grey_bright_tissue_outside_the_brain_is_not_csf():
    """Tissue as bright as GM where the mixture hesitates between GM and CSF (muscle under a
    misaligned atlas, e.g. the temporal muscle beside the skull base), cut off from the brain
    by dark CSF: it is not brain, and not CSF either (CSF is dark on a T1), even though CSF is
    its next most probable class."""
    n = 48
    g = np.indices((n, n, n)).astype(np.float32) - n / 2 + 0.5
    r = np.sqrt((g ** 2).sum(0))
    c = {name: i for i, name in enumerate(head_priors.CLASSES)}
    shells = [("wm", 8, 0.9), ("gm", 11, 0.6), ("csf", 15, 0.17), ("skull", 18, 0.02), ("soft", 22, 0.75)]
    t1 = np.zeros((n, n, n), np.float32)
    post = np.zeros((len(c), n, n, n), np.float32)
    inner = 0
    for name, rad, v in shells:
        sel = (r >= inner) & (r < rad)
        t1[sel], post[c[name], sel] = v, 1.0
        inner = rad
    cap = (r >= 12.5) & (r < 14.5) & (g[0] > 6)
    t1[cap] = 0.55
    post[:, cap] = 0.0
    post[c["gm"], cap], post[c["csf"], cap], post[c["soft"], cap] = 0.55, 0.40, 0.05
    head = r < 22
    comp = np.concatenate([np.full(head_mixture.COMPONENTS[name], i) for i, name in enumerate(head_priors.CLASSES)])
    level = {"background": 0.0, "wm": 0.9, "gm": 0.6, "deep_gm": 0.7, "csf": 0.17, "skull": 0.02,
             "soft": 0.75, "eyes": 0.15}
    means = np.array([[level[head_priors.CLASSES[k]]] for k in comp])
    mix = head_mixture.HeadMixture(post[:, head], means, np.full_like(means, 0.01), comp, head)
    labels, _ = head_labels.labels_from_mixture(mix, t1, 1.0, post)
    assert not np.isin(labels[cap], (1, 2, 3)).any(), np.unique(labels[cap], return_counts=True)


def test_medial_cortex_next_to_the_falx_stays_grey_matter():
    """Two hemispheres' cortices facing each other across the falx (dura: no T1 signal): the
    voxels half cortex, half falx are darker than the GM/CSF level and the mixture calls them
    CSF; inside the falx band they are GM (against the GM/dura level), outside it they stay CSF."""
    n = 40
    c = {name: i for i, name in enumerate(head_priors.CLASSES)}
    t1 = np.full((n, n, n), 0.6, np.float32)  # grey matter
    t1[:, :, :6] = 0.9  # white matter below
    t1[:, :, -4:] = 0.17  # CSF above
    mid = n // 2
    t1[mid, :, 12:] = 0.02  # the falx, above the white matter joining the hemispheres
    t1[mid - 1, :, 12:] = t1[mid + 1, :, 12:] = 0.32  # half cortex, half falx
    lab_of = np.where(t1 >= 0.75, c["wm"], np.where(t1 >= 0.45, c["gm"], c["csf"]))
    lab_of[mid, :, 12:] = c["skull"]
    post = np.zeros((len(c), n, n, n), np.float32)
    for k in range(len(c)):
        post[k][lab_of == k] = 1.0
    pv = np.zeros((n, n, n), bool)
    pv[[mid - 1, mid + 1], :, 12:-4] = True
    post[:, pv] = 0.0
    post[c["csf"], pv], post[c["gm"], pv] = 0.6, 0.4
    head = np.ones((n, n, n), bool)
    comp = np.concatenate([np.full(head_mixture.COMPONENTS[name], i) for i, name in enumerate(head_priors.CLASSES)])
    level = {"background": 0.0, "wm": 0.9, "gm": 0.6, "deep_gm": 0.7, "csf": 0.17, "skull": 0.02,
             "soft": 0.75, "eyes": 0.15}
    means = np.array([[level[head_priors.CLASSES[k]]] for k in comp])
    mix = head_mixture.HeadMixture(post[:, head], means, np.full_like(means, 0.01), comp, head)
    falx = np.zeros((n, n, n), bool)
    falx[mid - 4:mid + 5] = True
    with_band, _ = head_labels.labels_from_mixture(mix, t1, 1.0, post, falx=falx)
    without, _ = head_labels.labels_from_mixture(mix, t1, 1.0, post)
    assert (with_band[pv] == 2).all(), np.unique(with_band[pv], return_counts=True)
    assert (without[pv] == 3).mean() > 0.9


def test_t1_only_dura_on_the_inner_table_is_not_csf():
    """T1 only: a dura layer (darker than CSF, brighter than bone) between the CSF and the inner
    table, inside the atlas's CSF: it is not CSF (its conductivity is far below CSF's); the
    intracranial space ends at the CSF."""
    layers = [("wm", 12, 0.9, 0), ("gm", 16, 0.6, 0), ("csf", 19, 0.17, 0), ("csf", 20, 0.1, 0),
              ("skull", 24, 0.02, 0), ("soft", 29, 0.75, 0)]
    t1, _, priors, layer, head = _layered_head(layers, shift=0.0, blur=0.6)
    mix = head_mixture.fit_head_mixture(t1, priors, head)
    labels, ic = head_labels.labels_from_mixture(mix, t1, 1.0, priors)
    dura = layer == 3
    assert (labels[dura] == 3).mean() < 0.2, np.unique(labels[dura], return_counts=True)
    truth = (layer >= 0) & (layer <= 2)
    assert abs(ic.sum() / truth.sum() - 1) < 0.05, ic.sum() / truth.sum()


def test_prior_warp_smoothing_keeps_the_layers_under_the_cerebellum():
    """The registration's field can squeeze the few mm below the brain's lower edge into one MNI
    height (measured under Colin27's cerebellum); pulled through it, the atlas's CSF and skull
    there are skipped. With the fold smoothed they reach the subject as a layer; an affine or
    gently nonlinear map is returned unchanged."""
    c = {n: i for i, n in enumerate(head_priors.CLASSES)}
    shape = (9, 9, 60)
    grid = np.eye(4)
    grid[:3, 3] = [16.0, -64.0, -85.0]  # 1 mm voxels around MNI x = 20, y = -60, z -85..-26
    subj = np.indices(shape).transpose(1, 2, 3, 0).astype(np.float32) + grid[:3, 3].astype(np.float32)
    z = subj[..., 2]
    mni = subj.copy()
    # above z = -61 the identity; the 7 mm below all map to MNI z = -69.6; then the map resumes
    mni[..., 2] = np.where(z > -61, z, np.where(z >= -67, -69.6, z - 3.0))
    below = (subj[4, 4, :, 2] >= -70) & (subj[4, 4, :, 2] <= -58)

    def dark_layer(coords):
        p = head_priors.warp_head_priors(coords)[:, 4, 4, :]
        return (p[c["csf"]] + p[c["skull"]])[below]

    assert dark_layer(mni).max() < 0.2  # the layer is skipped by the raw field
    smoothed = head_priors.smooth_prior_warp(mni, grid, np.eye(4))
    assert dark_layer(smoothed).max() > 0.6 and (dark_layer(smoothed) > 0.5).sum() >= 2
    assert head_priors.warp_folds(mni, grid, np.eye(4))[4, 4, below].any()
    # an affine map, and a gentle nonlinear one (volume change < 2x), are left as they are
    aff = np.array([[1.1, 0.05, 0, 3], [0, 0.95, 0.1, -2], [0.02, 0, 1.05, 5], [0, 0, 0, 1.0]])
    lin = subj @ aff[:3, :3].T.astype(np.float32) + aff[:3, 3].astype(np.float32)
    assert np.abs(head_priors.smooth_prior_warp(lin, grid, aff) - lin).max() < 1e-4
    gentle = lin.copy()
    gentle[..., 2] += 2.0 * np.sin(subj[..., 2] / 8.0)
    assert not head_priors.warp_folds(gentle, grid, aff).any()
    assert np.abs(head_priors.smooth_prior_warp(gentle, grid, aff) - gentle).max() < 1e-4


def test_noisy_wm_gm_boundary_is_decided_with_the_neighbourhood():
    """A flat WM/GM boundary under noise of 40 % of the WM-GM contrast: the midpoint rule alone
    flips every voxel the noise carries across the level; with the mixture's neighbourhood
    term the boundary is clean again, and it stays where it is (the WM volume is unbiased)."""
    rng = np.random.default_rng(3)
    n = 40
    c = {name: i for i, name in enumerate(head_priors.CLASSES)}
    truth = np.zeros((n, n, n), bool)
    truth[:, :, : n // 2] = True  # white matter below, grey matter above
    clean = np.where(truth, 0.62, 0.46).astype(np.float32)
    noise = 0.4 * (0.62 - 0.46)
    t1 = clean + rng.normal(0.0, noise, clean.shape).astype(np.float32)
    cls = np.where(t1 >= 0.54, c["wm"], c["gm"]).astype(np.int8)
    midpoint_errors = int((cls == c["wm"])[~truth].sum() + (cls == c["gm"])[truth].sum())
    head_labels._smooth_wm_gm(cls, t1, 0.62, 0.46, noise)
    wm = cls == c["wm"]
    errors = int(wm[~truth].sum() + (~wm)[truth].sum())
    assert midpoint_errors > 0.2 * n ** 3 * 0.5  # the test's noise does fray the midpoint decision
    assert errors < 0.25 * midpoint_errors, (errors, midpoint_errors)
    assert abs(wm.sum() / truth.sum() - 1) < 0.02
    # a clean image keeps its midpoint decision voxel for voxel
    cls = np.where(clean >= 0.54, c["wm"], c["gm"]).astype(np.int8)
    head_labels._smooth_wm_gm(cls, clean, 0.62, 0.46, 0.005)
    assert ((cls == c["wm"]) == truth).all()
