"""Temporal-interference (TI) montage optimization from a per-element leadfield.

Two channels (electrode pairs) at f1 and f2 = f1 + df carry currents I1, I2 (A). With the
per-element leadfield F (L, M, 3) of the cap electrodes (V/m per A, see
:func:`navigator.optimize.leadfield.hd_leadfield` with ``keep_elements``), the carrier fields of
pairs (a, b) and (c, d) are E1 = I1 (F_a - F_b), E2 = I2 (F_c - F_d), and the envelope
amplitude in each element is (:mod:`navigator.tes.ti`)

* ``objective="magnitude"``: the maximal modulation over all directions (Grossman et al. 2017,
  eq. 2), TImax = max_n 2 min(|E1.n|, |E2.n|);
* ``objective="normal"``: the modulation along the element's cortical normal n,
  | |(E1 + E2).n| - |(E1 - E2).n| | = 2 min(|E1.n|, |E2.n|).

The objective is the volume-weighted mean envelope over the target region; avoid regions
(mean envelope <= a limit, V/m) are constraints. Safety limits: |I_k| <= ``channel_max_a`` per
channel and I1 + I2 <= ``total_max_a``.

Focality (``avoid_weight`` w > 0): maximize J = T - w A, the mean target envelope T minus w
times the mean over the avoid regions of their mean envelopes A (each region counts once; a
region whose limit is ``inf`` only enters the objective). The difference is chosen over the
ratio T / A because it keeps the search exact and deterministic: A >= 0, so every upper bound
of T below is one of J and the branch and bound stays exact, while a ratio has no finite bound
(A -> 0 far from the avoid region) and prefers montages with almost no target envelope. J is
homogeneous of degree 1 in the currents but not monotone in each channel (more current in one
channel raises T and A), so the split is searched over the whole boundary of the current limits:
(I1, I2) = s (t, 1 - t), s as large as the limits allow, t on a grid of ``split_steps`` values in
(0, 1), then refined by golden section for the chosen montage.

Search (deterministic, exact over the candidate electrodes):

1. Current split. The envelope is non-decreasing in |I1| and in |I2| (a min of terms that grow
   with each), so the optimum spends the limits: I1 = I2 = ``channel_max_a`` when
   2 ``channel_max_a`` <= ``total_max_a`` (closed form); otherwise I1 + I2 = ``total_max_a``
   and the split t = I1 / total is searched on a grid of ``split_steps`` values in the feasible
   interval, then refined by golden section around the best grid value for the chosen montage.
2. Electrodes: branch and bound over all unordered pairs of disjoint unordered electrode pairs
   (the sign of a channel does not change the envelope). For pair p let m_p be the weighted
   mean of |F_a - F_b| (magnitude) or of |(F_a - F_b).n| (normal) over the target. Since the
   envelope is at most 2 min(|E1|, |E2|) per element, mean envelope(p, q) <= UB(p, q) =
   2 min(I1 m_p, I2 m_q) maximized over the allowed split. Quadruples are evaluated in order
   of decreasing UB, in batches, and the search stops when the next bound cannot beat the best
   feasible value found: the result is the global optimum over the candidates (up to the split
   grid), and ``evaluated`` / ``total_quadruples`` say how much work the bound saved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.tes.ti import ti_max_envelope

OBJECTIVES = ("normal", "magnitude")


@dataclass
class TiRegion:
    """A region of the per-element leadfield.

    Attributes:
        fields: (L, M, 3) V/m per A for +1 A into each electrode (reference electrode: zero row).
        weights: (M,) element weights (volumes; normalized internally).
        normals: (M, 3) unit directions for the "normal" objective (None: magnitude only).
    """

    fields: np.ndarray
    weights: np.ndarray
    normals: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.fields = np.asarray(self.fields, float)
        w = np.asarray(self.weights, float).reshape(-1)
        if self.fields.ndim != 3 or self.fields.shape[2] != 3 or self.fields.shape[1] != len(w):
            raise ValueError(f"fields must be (L, M, 3) with M = len(weights), got {self.fields.shape}, {len(w)}")
        if not np.all(w >= 0) or w.sum() <= 0:
            raise ValueError("region weights must be non-negative and not all zero")
        self.weights = w / w.sum()
        if self.normals is not None:
            n = np.asarray(self.normals, float).reshape(-1, 3)
            if len(n) == 1:
                n = np.repeat(n, len(w), axis=0)
            self.normals = n / np.linalg.norm(n, axis=1, keepdims=True)

    def projected(self) -> np.ndarray:
        """(L, M) field component along the normals, V/m per A."""
        if self.normals is None:
            raise NavigatorError("the 'normal' TI objective needs element normals")
        return np.einsum("lmk,mk->lm", self.fields, self.normals)


@dataclass
class TiSolution:
    """An optimized (or evaluated) TI montage.

    Attributes:
        pairs: ((a, b), (c, d)) electrode indices of channel 1 and 2 (current enters at a and c).
        currents_a: (I1, I2), A. objective: mean target envelope, V/m. avoid: mean envelope in
        each avoid region, V/m. evaluated: quadruples evaluated exactly; total_quadruples:
        quadruples of disjoint pairs among the candidates; seconds: wall time. info: extra numbers.
        score: the optimized value, V/m: ``objective`` minus ``avoid_weight`` times the mean of
        ``avoid`` (equal to ``objective`` without focality weight; nan when not computed).
    """

    pairs: tuple[tuple[int, int], tuple[int, int]]
    currents_a: tuple[float, float]
    objective: float
    avoid: list[float] = field(default_factory=list)
    evaluated: int = 0
    total_quadruples: int = 0
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    score: float = float("nan")


def envelope(E1: np.ndarray, E2: np.ndarray, normals: np.ndarray | None = None) -> np.ndarray:
    """Per-element TI envelope of carriers E1, E2 (..., M, 3): maximal (normals None) or along
    ``normals`` (M, 3): 2 min(|E1.n|, |E2.n|). Returns (..., M) V/m."""
    E1 = np.asarray(E1, float)
    E2 = np.asarray(E2, float)
    if normals is None:
        return ti_max_envelope(E1.reshape(-1, 3), E2.reshape(-1, 3)).reshape(E1.shape[:-1])
    return 2 * np.minimum(np.abs((E1 * normals).sum(-1)), np.abs((E2 * normals).sum(-1)))


class _Evaluator:
    """Mean envelope of quadruples at given currents over one region (vectorized over batches)."""

    def __init__(self, region: TiRegion, objective: str):
        self.w = region.weights
        self.objective = objective
        if objective == "normal":
            self.S = region.projected()  # (L, M)
        else:
            self.F = region.fields

    def pair_means(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(P,) weighted mean |pair field| (magnitude) or |pair field . n| (normal) per unit current."""
        out = np.empty(len(a))
        for s in range(0, len(a), 2048):
            sl = slice(s, s + 2048)
            if self.objective == "normal":
                out[sl] = np.abs(self.S[a[sl]] - self.S[b[sl]]) @ self.w
            else:
                out[sl] = np.linalg.norm(self.F[a[sl]] - self.F[b[sl]], axis=-1) @ self.w
        return out

    def means(self, q: np.ndarray, I1: np.ndarray, I2: np.ndarray) -> np.ndarray:
        """(B,) weighted mean envelope of quadruples q (B, 4) at currents I1, I2 (B,) A."""
        if self.objective == "normal":
            s1 = np.abs(self.S[q[:, 0]] - self.S[q[:, 1]]) * np.abs(I1)[:, None]
            s2 = np.abs(self.S[q[:, 2]] - self.S[q[:, 3]]) * np.abs(I2)[:, None]
            return 2 * np.minimum(s1, s2) @ self.w
        E1 = (self.F[q[:, 0]] - self.F[q[:, 1]]) * I1[:, None, None]
        E2 = (self.F[q[:, 2]] - self.F[q[:, 3]]) * I2[:, None, None]
        return envelope(E1, E2) @ self.w

    def means_splits(self, q: np.ndarray, splits: np.ndarray) -> np.ndarray:
        """(K, B) :meth:`means` of quadruples q (B, 4) at each current pair of ``splits`` (K, 2) A,
        the pair fields gathered once (same numbers as K calls of :meth:`means`)."""
        out = np.empty((len(splits), len(q)))
        if self.objective == "normal":
            d1 = np.abs(self.S[q[:, 0]] - self.S[q[:, 1]])
            d2 = np.abs(self.S[q[:, 2]] - self.S[q[:, 3]])
            for k, (I1, I2) in enumerate(splits):
                out[k] = 2 * np.minimum(d1 * abs(I1), d2 * abs(I2)) @ self.w
            return out
        D1 = self.F[q[:, 0]] - self.F[q[:, 1]]
        D2 = self.F[q[:, 2]] - self.F[q[:, 3]]
        for k, (I1, I2) in enumerate(splits):
            out[k] = envelope(D1 * I1, D2 * I2) @ self.w
        return out


def _splits(channel_max_a: float, total_max_a: float, steps: int) -> np.ndarray:
    """(K, 2) current pairs (I1, I2) to try: the closed form, or a grid on I1 + I2 = total."""
    if channel_max_a <= 0 or total_max_a <= 0:
        raise NavigatorError("TI current limits must be > 0 mA")
    if 2 * channel_max_a <= total_max_a * (1 + 1e-12):
        return np.array([[channel_max_a, channel_max_a]])
    lo, hi = max(0.0, total_max_a - channel_max_a), min(channel_max_a, total_max_a)
    t = np.linspace(lo, hi, max(int(steps), 1)) if steps > 1 else np.array([total_max_a / 2])
    return np.stack([t, total_max_a - t], axis=1)


def _boundary_splits(channel_max_a: float, total_max_a: float, steps: int) -> np.ndarray:
    """(K, 2) currents s (t, 1 - t) on the boundary of {I1, I2 <= channel max, I1 + I2 <= total}
    for ``steps`` values of t evenly inside (0, 1) (the focality objective's split grid)."""
    if channel_max_a <= 0 or total_max_a <= 0:
        raise NavigatorError("TI current limits must be > 0 mA")
    t = np.linspace(0.0, 1.0, max(int(steps), 1) + 2)[1:-1]
    return np.stack([t, 1 - t], axis=1) * _boundary_scale(t, channel_max_a, total_max_a)[:, None]


def _boundary_scale(t: np.ndarray, channel_max_a: float, total_max_a: float) -> np.ndarray:
    """Largest s with s max(t, 1 - t) <= channel max and s <= total (s (t, 1 - t) within the limits)."""
    t = np.asarray(t, float)
    return np.minimum(channel_max_a / np.maximum(t, 1 - t), total_max_a)


def evaluate_montage(target: TiRegion, pairs: tuple[tuple[int, int], tuple[int, int]], currents_a: tuple[float, float],
                     *, objective: str = "normal", avoid: list[tuple[TiRegion, float]] | None = None,
                     avoid_weight: float = 0.0) -> TiSolution:
    """Mean envelope of one montage (electrode indices, currents A) in the target and avoid
    regions; ``score`` = target - ``avoid_weight`` x mean avoid envelope (module docstring)."""
    q = np.array([[pairs[0][0], pairs[0][1], pairs[1][0], pairs[1][1]]])
    I1, I2 = np.array([currents_a[0]], float), np.array([currents_a[1]], float)
    val = float(_Evaluator(target, objective).means(q, I1, I2)[0])
    av = [float(_Evaluator(r, objective).means(q, I1, I2)[0]) for r, _ in avoid or []]
    score = val - float(avoid_weight) * (float(np.mean(av)) if av else 0.0)
    return TiSolution(pairs, (float(I1[0]), float(I2[0])), val, av, 1, 1, score=score)


def optimize_ti(target: TiRegion, *, objective: str = "normal", channel_max_a: float = 2e-3,
                total_max_a: float = 4e-3, avoid: list[tuple[TiRegion, float]] | None = None,
                candidates: np.ndarray | None = None, split_steps: int = 11, batch: int = 512,
                initial: list[tuple[tuple[int, int], tuple[int, int]]] | None = None,
                avoid_weight: float = 0.0, progress: Progress | None = None) -> TiSolution:
    """The TI montage maximizing the mean target envelope, or with ``avoid_weight`` w > 0 the
    focality objective target - w x mean avoid envelope (see the module docstring).

    Args:
        target: per-element leadfield of the target region. objective: "normal" or "magnitude".
        channel_max_a, total_max_a: current limits, A. avoid: (region, max mean envelope V/m).
        candidates: electrode indices allowed (default all L). split_steps: grid of the current
            split when the total limit binds. batch: quadruples per vectorized evaluation.
        initial: montages evaluated first (e.g. the standard ones) so that the bound prunes from
            the start; they do not restrict the search.
        avoid_weight: w >= 0 of the focality objective (needs avoid regions; a limit of ``inf``
            puts a region into the objective only).
    Raises NavigatorError when no montage satisfies the avoid limits.
    """
    if objective not in OBJECTIVES:
        raise NavigatorError(f"unknown TI objective {objective!r}; use normal or magnitude")
    progress = ensure_progress(progress)
    t0 = time.perf_counter()
    avoid = list(avoid or [])
    L = target.fields.shape[0]
    cand = np.arange(L) if candidates is None else np.unique(np.asarray(candidates, int))
    if len(cand) < 4:
        raise NavigatorError(f"TI needs at least 4 candidate electrodes, got {len(cand)}")
    w = float(avoid_weight)
    if not w >= 0:
        raise NavigatorError(f"the TI avoid weight must be >= 0, got {avoid_weight}")
    if w > 0 and not avoid:
        raise NavigatorError("the TI focality objective (avoid weight > 0) needs at least one avoid region")
    ev = _Evaluator(target, objective)
    ev_av = [(_Evaluator(r, objective), float(lim)) for r, lim in avoid]
    ia, ib = np.triu_indices(len(cand), 1)
    pa, pb = cand[ia], cand[ib]  # all unordered pairs
    m = ev.pair_means(pa, pb)
    splits = (_boundary_splits(channel_max_a, total_max_a, split_steps) if w > 0
              else _splits(channel_max_a, total_max_a, split_steps))
    # UB(p, q) = 2 max_split min(I1 m_p, I2 m_q) <= 2 min(c m_p, c m_q, T m_p m_q / (m_p + m_q))
    c1, T = float(splits[:, 0].max()), float(splits.sum(axis=1).max())

    def bound(mp: np.ndarray, mq: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            h = np.where(mp + mq > 0, T * mp * mq / (mp + mq), 0.0)
        return 2 * np.minimum(np.minimum(c1 * mp, c1 * mq), h)

    # order pairs by m (descending); every quadruple (p, q) with p before q has UB <= 2 c1 m_q,
    # so quadruples are generated per q and a q whose 2 c1 m_q cannot win ends the search
    order = np.argsort(-m, kind="stable")
    pa, pb, m = pa[order], pb[order], m[order]
    P = len(m)
    best_val, best_q, best_I, best_av = -np.inf, None, None, []
    evaluated = 0
    # quadruples of disjoint pairs: C(P, 2) minus the pairs of pairs sharing one electrode
    n = len(cand)
    total = P * (P - 1) // 2 - n * ((n - 1) * (n - 2) // 2)
    pending_q: list[np.ndarray] = []
    pending_ub: list[np.ndarray] = []

    def avoid_values(q: np.ndarray, T: np.ndarray) -> np.ndarray:
        """(K, B) values (target envelope T minus the avoid penalty, -inf where a limit is broken)
        of quadruples q at each split; -inf where not needed. A value is at most its target
        envelope, so each quadruple's splits are taken in order of decreasing T and the avoid
        regions are evaluated only while T can still beat both the incumbent and the best value
        of that quadruple so far: the same maximum as evaluating every split."""
        K, B = T.shape
        out = np.full((K, B), -np.inf)
        order = np.argsort(-T, axis=0, kind="stable")
        floor = np.full(B, best_val)
        cols_all = np.arange(B)
        for r in range(K):
            k_r = order[r]
            Tr = T[k_r, cols_all]
            cols = np.flatnonzero(Tr > floor)
            if len(cols) == 0:
                break
            I1, I2 = splits[k_r[cols], 0], splits[k_r[cols], 1]
            ok = np.ones(len(cols), bool)
            penalty = np.zeros(len(cols))
            for e, lim in ev_av:
                a = e.means(q[cols], I1, I2)
                ok &= a <= lim
                penalty += a
            v = Tr[cols] - w * penalty / len(ev_av) if w > 0 else Tr[cols]
            v = np.where(ok, v, -np.inf)
            out[k_r[cols], cols] = v
            floor[cols] = np.maximum(floor[cols], v)
        return out

    def flush() -> None:
        nonlocal best_val, best_q, best_I, best_av, evaluated
        if not pending_q:
            return
        Q = np.concatenate(pending_q)
        UB = np.concatenate(pending_ub)
        pending_q.clear()
        pending_ub.clear()
        keep = UB > best_val
        Q, UB = Q[keep], UB[keep]
        for s in range(0, len(Q), batch):
            q = Q[s:s + batch]
            if UB[s:s + batch].max() <= best_val:
                continue
            vals = ev.means_splits(q, splits)  # (K, B) target envelopes
            if ev_av:
                vals = avoid_values(q, vals)
            evaluated += len(q)
            k, j = np.unravel_index(int(np.argmax(vals)), vals.shape)
            if vals[k, j] > best_val:
                best_val, best_q, best_I = float(vals[k, j]), q[j].copy(), tuple(float(x) for x in splits[k])

    if initial:
        pending_q.append(np.array([[a, b, c, d] for (a, b), (c, d) in initial], int))
        pending_ub.append(np.full(len(initial), np.inf))
        flush()
        evaluated = 0  # counted are the quadruples of the search itself
    progress.update(0.0, f"TI search over {len(cand)} electrodes ({P} pairs)")
    last = time.perf_counter()
    for qi in range(1, P):
        if 2 * c1 * m[qi] <= best_val:
            break  # no later quadruple can beat the incumbent
        p = np.arange(qi)
        disjoint = (pa[p] != pa[qi]) & (pa[p] != pb[qi]) & (pb[p] != pa[qi]) & (pb[p] != pb[qi])
        p = p[disjoint]
        if len(p) == 0:
            continue
        ub = bound(m[p], np.full(len(p), m[qi]))
        sel = ub > best_val
        if not sel.any():
            continue
        p = p[sel]
        pending_q.append(np.stack([pa[p], pb[p], np.full(len(p), pa[qi]), np.full(len(p), pb[qi])], axis=1))
        pending_ub.append(ub[sel])
        if sum(len(x) for x in pending_q) >= (batch if best_q is None else 8 * batch):
            flush()
        if time.perf_counter() - last > 0.5:
            progress.update(min(qi / P, 0.99), f"TI search: {evaluated} montages evaluated, best "
                                               f"{max(best_val, 0):.4g} V/m")
            last = time.perf_counter()
    flush()
    if best_q is None:
        raise NavigatorError("no TI montage satisfies the avoid-region limits; raise the limit or "
                             "shrink the avoid regions")
    if w > 0 and best_val <= 0:
        raise NavigatorError(f"no TI montage puts more envelope into the target than {w:g} x the mean envelope "
                             "of the avoid regions; lower the focality weight or move the avoid regions")
    I1, I2 = best_I
    refined = False
    if w > 0 and len(splits) > 1:  # golden-section refinement of t on the limits' boundary
        q = best_q[None]
        t_grid = splits[:, 0] / splits.sum(axis=1)
        k0 = int(np.argmin(np.abs(t_grid - I1 / (I1 + I2))))
        dt = 1.0 / (len(splits) + 1)
        a, b = max(t_grid[0], t_grid[k0] - dt), min(t_grid[-1], t_grid[k0] + dt)  # never towards one channel off

        def currents(t: float) -> tuple[float, float]:
            s_ = float(_boundary_scale(np.array([t]), channel_max_a, total_max_a)[0])
            return s_ * t, s_ * (1 - t)

        def fw(t: float) -> float:
            x1, x2 = currents(t)
            v = float(ev.means(q, np.array([x1]), np.array([x2]))[0])
            pen = 0.0
            for e, lim in ev_av:
                av_ = float(e.means(q, np.array([x1]), np.array([x2]))[0])
                if av_ > lim:
                    return -np.inf
                pen += av_
            return v - w * pen / len(ev_av)

        x, fx = _golden_max(fw, a, b)
        if fx > best_val:
            best_val, refined = fx, True
            I1, I2 = currents(x)
    elif len(splits) > 1:  # golden-section refinement of the split around the best grid value
        lo, hi = max(0.0, T - c1), min(c1, T)
        step = (hi - lo) / max(len(splits) - 1, 1)
        a, b = max(lo, I1 - step), min(hi, I1 + step)
        q = best_q[None]

        def f(x: float) -> float:
            v = float(ev.means(q, np.array([x]), np.array([T - x]))[0])
            if any(float(e.means(q, np.array([x]), np.array([T - x]))[0]) > lim for e, lim in ev_av):
                return -np.inf
            return v

        x, fx = _golden_max(f, a, b)
        if fx > best_val:
            best_val, I1, I2, refined = fx, x, T - x, True
    pairs = ((int(best_q[0]), int(best_q[1])), (int(best_q[2]), int(best_q[3])))
    sol = evaluate_montage(target, pairs, (I1, I2), objective=objective, avoid=avoid, avoid_weight=w)
    sol.evaluated, sol.total_quadruples = evaluated, int(total)
    sol.seconds = time.perf_counter() - t0
    sol.info = {"pairs": P, "candidates": len(cand), "split_grid": len(splits), "split_refined": refined,
                "bound_pruned_fraction": 1.0 - evaluated / max(total, 1), "avoid_weight": w,
                "split_search": "boundary of the current limits" if w > 0 else
                ("closed form" if len(splits) == 1 else "I1 + I2 = total")}
    progress.update(1.0, f"TI search done: {evaluated} of {total} montages evaluated")
    return sol


def exhaustive_ti(target: TiRegion, *, objective: str = "normal", currents_a: tuple[float, float] = (2e-3, 2e-3),
                  candidates: np.ndarray | None = None, batch: int = 2048, avoid: list[TiRegion] | None = None,
                  avoid_weight: float = 0.0) -> TiSolution:
    """Reference: every quadruple at fixed currents (for tests and the benchmark's check of the
    bound); with ``avoid`` regions and ``avoid_weight`` the focality score target - w x mean avoid."""
    L = target.fields.shape[0]
    cand = np.arange(L) if candidates is None else np.asarray(candidates, int)
    ia, ib = np.triu_indices(len(cand), 1)
    pa, pb = cand[ia], cand[ib]
    P = len(pa)
    i, j = np.triu_indices(P, 1)
    ok = (pa[i] != pa[j]) & (pa[i] != pb[j]) & (pb[i] != pa[j]) & (pb[i] != pb[j])
    i, j = i[ok], j[ok]
    Q = np.stack([pa[i], pb[i], pa[j], pb[j]], axis=1)
    ev = _Evaluator(target, objective)
    ev_av = [_Evaluator(r, objective) for r in avoid or []]
    best, bq = -np.inf, None
    for s in range(0, len(Q), batch):
        q = Q[s:s + batch]
        I1, I2 = np.full(len(q), currents_a[0]), np.full(len(q), currents_a[1])
        v = ev.means(q, I1, I2)
        if ev_av and avoid_weight:
            v = v - float(avoid_weight) * sum(e.means(q, I1, I2) for e in ev_av) / len(ev_av)
        k = int(np.argmax(v))
        if v[k] > best:
            best, bq = float(v[k]), q[k]
    pairs = ((int(bq[0]), int(bq[1])), (int(bq[2]), int(bq[3])))
    sol = evaluate_montage(target, pairs, tuple(currents_a), objective=objective,
                           avoid=[(r, np.inf) for r in avoid or []], avoid_weight=avoid_weight)
    sol.evaluated = sol.total_quadruples = len(Q)
    return sol


def _golden_max(f, a: float, b: float, iterations: int = 40) -> tuple[float, float]:
    """(x, f(x)) of the golden-section search for a maximum of ``f`` on [a, b]."""
    g = (np.sqrt(5) - 1) / 2
    x1, x2 = b - g * (b - a), a + g * (b - a)
    f1, f2 = f(x1), f(x2)
    for _ in range(iterations):
        if f1 >= f2:
            b, x2, f2 = x2, x1, f1
            x1 = b - g * (b - a)
            f1 = f(x1)
        else:
            a, x1, f1 = x1, x2, f2
            x2 = a + g * (b - a)
            f2 = f(x2)
    return (x1, f1) if f1 >= f2 else (x2, f2)
