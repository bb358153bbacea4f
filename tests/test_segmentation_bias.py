"""Residual bias field from the tissue classes (navigator.segmentation.bias)."""

from __future__ import annotations

import numpy as np

from navigator.segmentation import bias


def _head(n: int = 64):
    g = (np.indices((n, n, n)).astype(np.float32) - n / 2 + 0.5)
    r = np.sqrt((g ** 2).sum(0))
    wm, gm = r < 14, (r >= 14) & (r < 20)
    head = r < 30
    image = np.where(wm, 0.62, np.where(gm, 0.46, np.where(head, 0.7, 0.0))).astype(np.float32)
    return g, r, wm, gm, head, image


def test_a_coil_field_brightening_the_periphery_is_recovered_from_wm_and_gm():
    """A receive field x1.0 at the centre to x1.6 at the scalp, with an anterior-posterior
    tilt: fitted on the WM and GM interiors only, the field is recovered within 3 % over the
    brain and within 8 % in the scalp just outside the fitted region; dividing by it leaves
    each class with the spread of its noise only."""
    g, r, wm, gm, head, image = _head()
    true = (1.0 + 0.6 * (r / 30.0) ** 2) * (1.0 + 0.1 * g[1] / 30.0)
    rng = np.random.default_rng(0)
    biased = (image * true * (1 + rng.normal(0, 0.02, image.shape))).astype(np.float32)
    field = bias.tissue_bias_field(biased, head, [wm, gm], 1.0)
    assert field is not None
    ratio = true / field
    brain = wm | gm
    ratio /= np.median(ratio[brain])
    assert np.abs(ratio[brain] - 1).max() < 0.03, np.abs(ratio[brain] - 1).max()
    scalp = head & (r >= 22) & (r < 28)
    assert np.percentile(np.abs(ratio[scalp] - 1), 95) < 0.08
    corrected = biased / field
    for cls in (wm, gm):
        before = biased[cls].std() / biased[cls].mean()
        after = corrected[cls].std() / corrected[cls].mean()
        assert after < 0.022 < before, (before, after)  # back to the 2 % noise
    assert (field[~head] == 1).all() and abs(np.median(field[head]) - 1) < 1e-6


def test_no_bias_gives_a_flat_field_and_too_few_voxels_give_none():
    g, r, wm, gm, head, image = _head()
    rng = np.random.default_rng(1)
    noisy = (image * (1 + rng.normal(0, 0.02, image.shape))).astype(np.float32)
    field = bias.tissue_bias_field(noisy, head, [wm, gm], 1.0)
    assert np.abs(field[wm | gm] - 1).max() < 0.01
    tiny = np.zeros_like(wm)
    tiny[30:33, 30:33, 30:33] = True
    assert bias.tissue_bias_field(noisy, head, [tiny], 1.0) is None


def test_the_field_does_not_run_away_far_from_the_fitted_region():
    """A field fitted on the brain is held within a margin of it: a long neck below the head
    gets neither a runaway polynomial nor a field outside the limits."""
    g, r, wm, gm, head, image = _head(96)
    neck = (np.sqrt(g[0] ** 2 + g[1] ** 2) < 12) & (g[2] < 0)
    head = head | neck
    true = 1.0 + 0.5 * (r / 30.0) ** 2
    field = bias.tissue_bias_field((image * true).astype(np.float32), head, [wm, gm], 1.0)
    lo, hi = bias.FIELD_LIMITS
    assert field[head].min() >= lo and field[head].max() <= hi
    far = neck & (g[2] < -45)
    near = neck & (np.abs(g[2] + 20 + bias.MARGIN_MM) < 1)
    assert np.allclose(field[far].mean(), field[near].mean(), rtol=0.05)
