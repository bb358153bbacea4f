"""Whole-head tissue classification: a Gaussian mixture weighted by spatial head priors.

Every head voxel gets posterior probabilities of the eight prior classes of
:mod:`navigator.segmentation.head_priors` (background/air, WM, cortical GM, deep GM, CSF,
skull, soft tissue, eyes). Each class's intensity distribution is a small mixture of
Gaussians fitted to the subject's own image (so any scanner, vendor or T1 contrast works):
soft tissue has three (muscle, fat, skin). Air (the background class) keeps the noise level of
the air around the head, and the skull is signal-free like air with the spread of CSF (so the
CSF/bone boundary is the 50 % partial-volume level); bone marrow is found afterwards as the
tissue enclosed between the tables (:mod:`navigator.segmentation.head_labels`). This is the "unified segmentation" model of SPM and
SAMSEG, with the atlas deformation fixed by navigator's own registration:

    p(class c | x) ~ prior_c(position) * sum_k w_ck N(x; mu_ck, Sigma_ck)

fitted by expectation-maximisation on a subsample of the head, then evaluated on every voxel,
followed by a light mean-field smoothing of the posteriors (neighbouring voxels tend to share
a class), which removes salt-and-pepper labels without moving boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from navigator.core.progress import Progress, ensure_progress
from navigator.segmentation.head_priors import CLASSES

#: Strength of the mean-field (Potts) neighbourhood term: a class's log score gains this times
#: the summed posterior of that class over the six neighbours (see :func:`mean_field`).
MEAN_FIELD_BETA = 0.6

#: Gaussians per class (T1-weighted contrast), in :data:`CLASSES` order.
COMPONENTS: dict[str, int] = {"background": 1, "wm": 1, "gm": 1, "deep_gm": 1, "csf": 1, "skull": 1,
                              "soft": 3, "eyes": 1}


@dataclass
class HeadMixture:
    """Fitted mixture and posteriors over the ``region`` voxels.

    Attributes:
        posteriors: (C, N) float32 class posteriors of the region voxels (C order of
            :data:`CLASSES`, N = region.sum(), C-order voxel order of ``region``).
        means: (K, F) component means; ``component_class``: (K,) class index of each.
        region: bool mask of the classified voxels.
    """

    posteriors: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    component_class: np.ndarray
    region: np.ndarray

    def full_posteriors(self) -> np.ndarray:
        """(C, *grid) posteriors on the whole grid (outside the region: background 1)."""
        out = np.zeros((self.posteriors.shape[0],) + self.region.shape, np.float32)
        out[0] = 1.0
        out[:, self.region] = self.posteriors
        return out

    def brain_means(self) -> np.ndarray:
        """(3, F) mean intensities of WM, cortical GM and CSF (rows in that order)."""
        return np.stack([self.class_mean(n) for n in ("wm", "gm", "csf")])

    def class_mean(self, name: str) -> np.ndarray:
        """Mean (F,) of a class's components weighted equally (for thresholds and reports)."""
        c = CLASSES.index(name)
        return self.means[self.component_class == c].mean(axis=0)


def _log_gauss(x: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(cov)
    d = x - mean
    maha = np.einsum("ni,ij,nj->n", d, inv, d) if x.shape[1] > 1 else d[:, 0] ** 2 * inv[0, 0]
    return -0.5 * maha - 0.5 * np.log(np.linalg.det(cov)) - 0.5 * x.shape[1] * np.log(2 * np.pi)


def _weighted_quantiles(v: np.ndarray, w: np.ndarray, qs: np.ndarray) -> np.ndarray:
    order = np.argsort(v)
    cw = np.cumsum(w[order])
    cw /= max(cw[-1], 1e-12)
    return np.interp(qs, cw, v[order])


class _Model:
    """Mixture parameters and the E-step (shared by the fit and the final evaluation)."""

    def __init__(self, comp_class: np.ndarray, n_features: int):
        self.cc = comp_class
        self.frozen = np.zeros(len(comp_class), bool)  # no update at all
        self.tied_cov: dict[int, int] = {}  # component -> component whose covariance it shares
        k = len(comp_class)
        self.means = np.zeros((k, n_features))
        self.covs = np.tile(np.eye(n_features), (k, 1, 1))
        self.weights = np.ones(k)

    def component_loglik(self, x: np.ndarray) -> np.ndarray:
        """(K, N) log(w_k N(x; mu_k, Sigma_k)) of every component."""
        logc = np.empty((len(self.cc), len(x)))
        for j in range(len(self.cc)):
            logc[j] = _log_gauss(x, self.means[j], self.covs[j]) + np.log(self.weights[j] + 1e-12)
        return logc

    def class_loglik(self, x: np.ndarray, n_classes: int) -> np.ndarray:
        """(C, N) log p(x | class): log-sum-exp of each class's components."""
        logc = self.component_loglik(x)
        out = np.empty((n_classes, len(x)))
        for c in range(n_classes):
            sel = logc[self.cc == c]
            m = sel.max(axis=0)
            out[c] = m + np.log(np.exp(sel - m).sum(axis=0))
        return out

    def e_step(self, x: np.ndarray, logpri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class posteriors (C, N), component responsibilities (K, N))."""
        logc = self.component_loglik(x)
        logc = softmax(logc + logpri[self.cc])
        post = np.zeros((logpri.shape[0], len(x)))
        np.add.at(post, self.cc, logc)
        return post, logc

    def m_step(self, x: np.ndarray, resp: np.ndarray) -> None:
        nf = x.shape[1]
        for j in range(len(self.cc)):
            if self.frozen[j]:
                continue
            r = resp[j]
            s = r.sum() + 1e-9
            self.means[j] = (r[:, None] * x).sum(axis=0) / s
            d = x - self.means[j]
            self.covs[j] = (r[:, None, None] * (d[:, :, None] * d[:, None, :])).sum(axis=0) / s + np.eye(nf) * 1e-5
        for j, src in self.tied_cov.items():
            self.covs[j] = self.covs[src]
        for c in np.unique(self.cc):
            js = np.nonzero(self.cc == c)[0]
            tot = resp[js].sum(axis=1)
            self.weights[js] = tot / max(tot.sum(), 1e-12)


def fit_head_mixture(t1: np.ndarray, priors: np.ndarray, region: np.ndarray, t2: np.ndarray | None = None,
                     iterations: int = 25, floor: float = 1e-3, max_fit: int = 400_000,
                     smoothing: float = MEAN_FIELD_BETA, progress: Progress | None = None) -> HeadMixture:
    """Fit the prior-weighted mixture on ``region`` and return every region voxel's posteriors.

    Args:
        t1, t2: bias-corrected, normalised intensities on the working grid (t2 optional).
        priors: (C, *grid) class priors (:func:`navigator.segmentation.head_priors.warp_head_priors`).
        region: bool mask of the voxels to classify (the head).
        floor: prior added to every class (tolerates small registration errors).
        smoothing: strength of the mean-field step (0 = none): each class's log posterior
            gains ``smoothing`` x 6 x the mean posterior of that class among the 6 neighbours.
    """
    progress = ensure_progress(progress)
    feats = [t1[region]] + ([t2[region]] if t2 is not None else [])
    x_all = np.stack(feats, axis=1).astype(np.float64)
    pri_all = priors[:, region].astype(np.float64) + floor
    pri_all /= pri_all.sum(axis=0, keepdims=True)
    logpri_all = np.log(pri_all)
    cc = np.concatenate([np.full(COMPONENTS[n], i) for i, n in enumerate(CLASSES)])
    model = _Model(cc, x_all.shape[1])

    stride = max(1, int(np.ceil(len(x_all) / max_fit)))
    x, pri, logpri = x_all[::stride], pri_all[:, ::stride], logpri_all[:, ::stride]
    # start: prior-weighted intensity quantiles of each class, split among its components
    resp = np.zeros((len(cc), len(x)))
    for c, name in enumerate(CLASSES):
        js = np.nonzero(cc == c)[0]
        w = pri[c] ** 2
        if len(js) == 1:
            resp[js[0]] = pri[c]
            continue
        edges = _weighted_quantiles(x[:, 0], w, np.linspace(0, 1, len(js) + 1))
        for i, j in enumerate(js):
            inside = (x[:, 0] >= edges[i]) & (x[:, 0] <= edges[i + 1])
            resp[j] = pri[c] * inside
    model.m_step(x, resp)
    # air (background class) keeps the intensity of the air around the head: its noise level,
    # not whatever dark-to-grey tissue the background prior covers inside the head
    bg = int(np.nonzero(cc == CLASSES.index("background"))[0][0])
    air = np.stack([f[~ndi.binary_dilation(region, iterations=3)] for f in ([t1] + ([t2] if t2 is not None else []))],
                   axis=1).astype(np.float64)
    if len(air) > 1000:
        air = air[:: max(1, len(air) // 200_000)]
        model.means[bg] = np.median(air, axis=0)
        mad = 1.4826 * np.median(np.abs(air - model.means[bg]), axis=0)
        model.covs[bg] = np.diag(np.maximum(mad, 0.02) ** 2)
        model.frozen[bg] = True
        # compact bone gives no signal either: the skull's darkest component is centred on
        # the air level (its spread is fitted), so it cannot drift onto CSF, muscle or fat
        # and its spread is tied to CSF's, so the CSF/bone boundary falls at the 50 %
        # partial-volume level between them (a wider bone class took the bright fat over the
        # skull, a narrower one pushed the inner table into CSF)
        sk = int(np.nonzero(cc == CLASSES.index("skull"))[0][0])
        model.means[sk] = model.means[bg]
        model.frozen[sk] = True
        model.tied_cov[sk] = int(np.nonzero(cc == CLASSES.index("csf"))[0][0])
    for it in range(iterations):
        progress.check()
        post, resp = model.e_step(x, logpri)
        before = model.means.copy()
        model.m_step(x, resp)
        progress.update(0.8 * (it + 1) / iterations, f"head tissue mixture: iteration {it + 1}")
        if np.abs(model.means - before).max() < 1e-4:
            break

    progress.update(0.85, "head tissue mixture: posteriors")
    # log p(x | class) + log prior of every voxel, a chunk at a time; the posteriors and the
    # mean-field rounds both start from it
    base = np.concatenate([model.class_loglik(x_all[s:s + 1_000_000], len(CLASSES)).astype(np.float32)
                           for s in range(0, len(x_all), 1_000_000)], axis=1)
    base += logpri_all.astype(np.float32)
    post = softmax(base)
    if smoothing > 0:
        progress.update(0.92, "head tissue mixture: spatial smoothing")
        post = mean_field(post, base, region, smoothing)
    progress.update(1.0, "head tissue mixture done")
    covs = model.covs
    return HeadMixture(post.astype(np.float32), model.means.copy(),
                       np.array([np.diag(c) for c in covs]), cc, region)


def softmax(logp: np.ndarray) -> np.ndarray:
    """Normalised exp over axis 0 (class posteriors from log scores)."""
    out = logp - logp.max(axis=0, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=0, keepdims=True)
    return out


def mean_field(post: np.ndarray, base: np.ndarray, region: np.ndarray, beta: float, rounds: int = 2) -> np.ndarray:
    """Posteriors with a Potts-like neighbourhood term, by two mean-field updates.

    ``base`` (C, N) is log p(x | class) + log prior of the ``region`` voxels (C-order voxel
    order of the bool mask ``region``), ``post`` (C, N) the posteriors to start from; voxels
    outside ``region`` count as no class.
    """
    c = post.shape[0]
    grid = np.zeros(region.shape, np.float32)
    kernel = ndi.generate_binary_structure(3, 1).astype(np.float32)
    kernel[1, 1, 1] = 0
    for _ in range(rounds):
        nb = np.empty_like(post)
        for ci in range(c):
            grid[region] = post[ci]
            nb[ci] = ndi.convolve(grid, kernel, mode="constant")[region]
        post = softmax(base + beta * nb)
    return post
