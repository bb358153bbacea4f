"""Smooth, volume-preserving reconstruction of tissue interfaces from a label image.

A label image only says which tissue holds each voxel centre; the interfaces between voxel
centres are unknown, and taken literally (nearest voxel) they are staircases. Here every
label ``l`` (background included) gets a smooth membership field

    F_l(x) = (G_sigma * 1[label == l])(x) + b_l

i.e. its indicator Gaussian-smoothed on the input grid (``sigma``), evaluated anywhere by
trilinear interpolation, plus a per-label offset ``b_l``. A point belongs to the label of
largest ``F``; the interfaces are the sets ``F_a = F_b``. Because the smoothed indicators
sum to one, the offsets move interfaces by a fraction of a voxel only.

**Volume preservation.** Smoothing removes the staircases but also thins thin layers
(a 1-voxel sheet of spongy bone between two compact-bone sheets keeps ~80 % of its width;
irregular 1-2 voxel structures lose more). The offsets ``b_l`` are solved so that every
label keeps its voxel volume on the fine grid fed to CGAL (Newton iterations on the
counts; ``b_background = 0``), i.e. each label's interfaces sit at the level that encloses
exactly its voxel volume. Before that, *voxel-centre consistency* is enforced: a voxel centre
whose own label lost the argmax (thin sheets, single-voxel bridges) gets a local boost of
its label's field (a narrow Gaussian bump of just the missing amount plus a margin), so
thin structures stay connected instead of being dissolved and re-grown elsewhere by a
larger global offset.

:meth:`LabelField.fine_labels` samples the partition on the fine grid (the image CGAL
meshes); :meth:`LabelField.project` moves mesh nodes lying on a two-tissue interface onto
the exact surface ``F_a = F_b`` (CGAL places them on the fine grid's voxel staircase up to
its bisection tolerance, ~0.1-0.3 mm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from navigator.core.progress import Progress, ensure_progress

#: Margin (membership units) by which a voxel centre's own label must win after the boost.
CONSISTENCY_MARGIN = 0.05
#: Width (input voxels) of the Gaussian bump that restores a lost voxel centre.
CONSISTENCY_SIGMA_VOX = 0.5
#: Largest |b_l| allowed when balancing volumes (membership units, ~ <= 0.3 voxel shift of flat interfaces).
MAX_OFFSET = 0.2


def upsample_linear(a: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``a`` at fine voxel centres (factor ``f`` per axis, edges clamped).

    Fine voxel I along an axis sits at input coordinate (I + 0.5) / f - 0.5, i.e. at offset
    d = (o + 0.5) / f - 0.5 from input voxel I // f, with o = I % f.
    """
    for ax in range(3):
        k = int(f[ax])
        if k == 1:
            continue
        shp = list(a.shape)
        shp[ax] *= k
        out = np.empty(shp, a.dtype)

        def sl(s: slice, ax: int = ax) -> tuple:
            idx = [slice(None)] * 3
            idx[ax] = s
            return tuple(idx)

        for o in range(k):
            d = (o + 0.5) / k - 0.5
            dst = out[sl(slice(o, None, k))]
            np.multiply(a, 1 - abs(d), out=dst)
            if d < 0:
                dst[sl(slice(1, None))] += (-d) * a[sl(slice(None, -1))]
                dst[sl(slice(0, 1))] += (-d) * a[sl(slice(0, 1))]
            elif d > 0:
                dst[sl(slice(None, -1))] += d * a[sl(slice(1, None))]
                dst[sl(slice(-1, None))] += d * a[sl(slice(-1, None))]
        a = out
    return a


@dataclass
class LabelField:
    """Membership fields of every label on a (cropped) input grid; see the module docstring.

    Attributes:
        shape: input grid shape; spacing: voxel size (mm); f: integer upsampling factors.
        labels: label values present (background 0 included when present).
        boxes: per label, (lo, hi) index bounds of the box where its field is stored (outside
            it the label never wins).
        smooth: per label, the smoothed indicator inside its box (float32), boosts included.
        offset: per label, ``b_l``.
        counts: per label, voxel count of the input labels.
    """

    shape: tuple[int, int, int]
    spacing: np.ndarray
    f: np.ndarray
    labels: list[int]
    boxes: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    smooth: dict[int, np.ndarray] = field(default_factory=dict)
    offset: dict[int, float] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, data: np.ndarray, spacing: np.ndarray, upsample_mm: float, sigma_mm: float,
              consistency: bool = True, progress: Progress | None = None) -> LabelField:
        """Smoothed fields of ``data`` (which should have a few background voxels on every side)."""
        from scipy import ndimage

        progress = ensure_progress(progress)
        spacing = np.asarray(spacing, float)
        f = np.ones(3, int) if upsample_mm <= 0 else np.maximum(1, np.round(spacing / upsample_mm)).astype(int)
        sig = np.maximum(sigma_mm, 0.0) / spacing
        reach = np.ceil(3 * sig).astype(int) + 3
        shape = np.array(data.shape)
        labels = [int(v) for v in np.unique(data)]
        objects = ndimage.find_objects(data.astype(np.int64) + 1)
        out = cls(shape=tuple(int(s) for s in shape), spacing=spacing, f=f, labels=labels)
        for n, lab in enumerate(labels):
            progress.update(0.5 * n / len(labels), f"smoothing label {lab}")
            box = objects[lab]
            lo = np.array([max(0, sl.start - r) for sl, r in zip(box, reach)])
            hi = np.array([min(s, sl.stop + r) for sl, r, s in zip(box, reach, shape)])
            sub = tuple(slice(a, b) for a, b in zip(lo, hi))
            mask = data[sub] == lab
            ind = mask.astype(np.float32)
            if sigma_mm > 0:
                ind = ndimage.gaussian_filter(ind, sig, mode="nearest", truncate=3.0)
            out.boxes[lab] = (lo, hi)
            out.smooth[lab] = ind
            out.offset[lab] = 0.0
            out.counts[lab] = int(mask.sum())
        if consistency and sigma_mm > 0:
            progress.update(0.5, "restoring thin structures")
            out._enforce_consistency(data)
        return out

    def _coarse_argmax(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(winner label, best value, runner-up value) at the input voxel centres."""
        best = np.full(self.shape, -np.inf, np.float32)
        second = np.full(self.shape, -np.inf, np.float32)
        win = np.zeros(self.shape, np.int32)
        for lab in self.labels:
            lo, hi = self.boxes[lab]
            sub = tuple(slice(a, b) for a, b in zip(lo, hi))
            v = self.smooth[lab] + np.float32(self.offset[lab])
            b, s, w = best[sub], second[sub], win[sub]
            gt = v > b
            np.copyto(s, np.where(gt, b, np.maximum(s, v)))
            np.copyto(w, lab, where=gt)
            np.maximum(b, v, out=b)
        return win, best, second

    def _enforce_consistency(self, data: np.ndarray, rounds: int = 4) -> None:
        """Boost each label's field at its voxel centres that another label wins (see module doc)."""
        from scipy import ndimage

        s = CONSISTENCY_SIGMA_VOX
        # Centre weight of the separable sampled Gaussian (truncate 3): the bump's peak per unit mass.
        x = np.arange(-int(np.ceil(3 * s)), int(np.ceil(3 * s)) + 1)
        g = np.exp(-0.5 * (x / s) ** 2)
        w0 = float((g[len(x) // 2] / g.sum()) ** 3)
        restored = 0
        for _ in range(rounds):
            win, best, _second = self._coarse_argmax()
            lost = win != data
            n_lost = int(lost.sum())
            if n_lost == 0:
                break
            idx = np.nonzero(lost)
            own = data[idx]
            for lab in np.unique(own):
                lab = int(lab)
                sel = own == lab
                pts = tuple(i[sel] for i in idx)
                lo, hi = self.boxes[lab]
                fld = self.smooth[lab]
                loc = tuple(p - o for p, o in zip(pts, lo))
                deficit = best[pts] - (fld[loc] + self.offset[lab]) + CONSISTENCY_MARGIN
                bump = np.zeros(fld.shape, np.float32)
                bump[loc] = np.maximum(deficit, 0) / w0
                fld += ndimage.gaussian_filter(bump, s, mode="constant", truncate=3.0)
                restored += int(sel.sum())
        self.stats["consistency_boosts"] = restored

    # ------------------------------------------------------------------ fine grid
    def fine_labels(self, balance_volumes: bool = True, tol: float = 1e-3, max_iter: int = 30,
                    progress: Progress | None = None) -> np.ndarray:
        """Label of largest membership at every fine voxel centre, offsets solved for volumes."""
        progress = ensure_progress(progress)
        f = self.f
        fshape = tuple(int(s * k) for s, k in zip(self.shape, f))
        dtype = np.uint8 if max(self.labels) < 256 else np.uint16
        # Top three (value, label) per fine voxel, offsets excluded.
        v1 = np.full(fshape, -np.inf, np.float32)
        v2 = np.full(fshape, -np.inf, np.float32)
        v3 = np.full(fshape, -np.inf, np.float32)
        l1 = np.zeros(fshape, dtype)
        l2 = np.zeros(fshape, dtype)
        l3 = np.zeros(fshape, dtype)
        from navigator.meshing._kernels import top3_update

        for n, lab in enumerate(self.labels):
            progress.update(0.8 * n / len(self.labels), f"resampling label {lab}")
            lo, _hi = self.boxes[lab]
            # upsample_linear(self.smooth[lab], f) inserted voxel by voxel (compiled, same values)
            top3_update(np.ascontiguousarray(self.smooth[lab], np.float32), np.asarray(f, np.int64),
                        (np.asarray(lo) * f).astype(np.int64), lab, v1, v2, v3, l1, l2, l3)
        # Voxels whose winner cannot change for offsets within +-MAX_OFFSET.
        unsure = np.flatnonzero((v1 - v2).ravel() < 2 * MAX_OFFSET + 1e-3)
        fine = l1
        if balance_volumes and len(unsure) and len(self.labels) > 1:
            progress.update(0.85, "balancing tissue volumes")
            cand_v = np.stack([v1.ravel()[unsure], v2.ravel()[unsure], v3.ravel()[unsure]], 1)
            cand_l = np.stack([l1.ravel()[unsure], l2.ravel()[unsure], l3.ravel()[unsure]], 1).astype(np.int64)
            del v1, v2, v3, l2, l3
            sure_counts = np.bincount(fine.ravel(), minlength=max(self.labels) + 1).astype(np.int64)
            sure_counts -= np.bincount(cand_l[:, 0], minlength=len(sure_counts))
            self._solve_offsets(cand_v, cand_l, sure_counts, tol, max_iter)
            off = np.zeros(max(self.labels) + 1, np.float32)
            for lab in self.labels:
                off[lab] = self.offset[lab]
            score = np.where(np.isfinite(cand_v), cand_v + off[cand_l], -np.inf)
            pick = cand_l[np.arange(len(cand_l)), np.argmax(score, axis=1)]
            fine.ravel()[unsure] = pick.astype(fine.dtype)
        progress.update(1.0, "resampled")
        return fine

    def _solve_offsets(self, cand_v: np.ndarray, cand_l: np.ndarray, sure_counts: np.ndarray, tol: float,
                       max_iter: int) -> None:
        """Newton iterations on b_l so that every label's fine count matches its voxel count."""
        nl = len(sure_counts)
        fvol = int(np.prod(self.f))
        target = np.zeros(nl)
        for lab in self.labels:
            target[lab] = self.counts[lab] * fvol
        movable = np.array([lab for lab in self.labels if lab != 0], int)
        b = np.zeros(nl)
        rows = np.arange(len(cand_l))
        finite = np.isfinite(cand_v)
        eps = 0.02
        hist = []
        best_b, best_err = b.copy(), np.inf
        for it in range(max_iter):
            score = np.where(finite, cand_v + b[cand_l], -np.inf)
            i1 = np.argmax(score, axis=1)
            s1 = score[rows, i1]
            score[rows, i1] = -np.inf
            i2 = np.argmax(score, axis=1)
            w, r = cand_l[rows, i1], cand_l[rows, i2]
            margin = s1 - score[rows, i2]
            counts = sure_counts + np.bincount(w, minlength=nl)
            err = (target - counts)[movable]
            rel = float((np.abs(err) / np.maximum(target[movable], 1)).max())
            hist.append(rel)
            if rel < best_err:
                best_b, best_err = b.copy(), rel
            if rel < tol:
                break
            # Jacobian d count_l / d b_k from the voxels on each l|k decision (|F_l - F_k| < eps):
            # raising b_l by db gains l about D_lk db voxels from k. A graph Laplacian, background
            # (b_0 = 0) as the Dirichlet node.
            near = margin < eps
            dens = np.zeros((nl, nl))
            np.add.at(dens, (w[near], r[near]), 1.0 / (2 * eps))
            dens = dens + dens.T
            lap = np.diag(dens.sum(axis=1)) - dens
            jac = lap[np.ix_(movable, movable)] + np.eye(len(movable))  # +1: regularise isolated labels
            step = np.linalg.solve(jac, err)
            step *= min(1.0, 0.05 / max(float(np.abs(step).max()), 1e-12))
            b[movable] = np.clip(b[movable] + 0.8 * step, -MAX_OFFSET, MAX_OFFSET)
        b = best_b
        hist.append(best_err)
        for lab in self.labels:
            self.offset[lab] = float(b[lab])
        self.stats["offsets"] = {lab: round(float(b[lab]), 4) for lab in self.labels}
        self.stats["volume_balance_iterations"] = len(hist)
        self.stats["volume_balance_max_rel_error"] = hist[-1] if hist else 0.0

    # ------------------------------------------------------------------ continuous field
    def value(self, lab: int, c: np.ndarray) -> np.ndarray:
        """F_lab at points ``c`` ((N, 3) input-grid index coordinates), trilinear like the fine grid."""
        from scipy import ndimage

        lo, hi = self.boxes[lab]
        q = (np.asarray(c, float) - lo).T
        v = ndimage.map_coordinates(self.smooth[lab], q, order=1, mode="nearest", prefilter=False)
        inside = np.all((c >= lo - 0.5) & (c <= hi - 0.5), axis=1)
        return np.where(inside, v + self.offset[lab], -np.inf)

    def project(self, nodes: np.ndarray, tets: np.ndarray, tags: np.ndarray, boundary_faces: np.ndarray,
                to_grid: np.ndarray, max_move_mm: float, iterations: int = 6,
                min_angle_deg: float = 6.0, min_radius_ratio: float = 0.05) -> tuple[np.ndarray, dict]:
        """Move nodes on two-tissue interfaces onto the surface F_a = F_b (see module doc).

        Args:
            nodes: (N, 3) world mm; tets (positively oriented) and their tags; boundary_faces:
                faces on the outer boundary (outside counts as label 0).
            to_grid: 4x4 matrix world mm -> input-grid index coordinates.
            max_move_mm: nodes needing a larger move stay where they are.
            min_angle_deg, min_radius_ratio: a move may not take an incident tetrahedron's
                smallest dihedral angle below min(its current value, min_angle_deg), nor its
                radius ratio below min(its current value, min_radius_ratio); offending moves
                are halved (three times), then undone.
        Returns:
            (new nodes, statistics).
        """
        from navigator.meshing import _kernels as K

        nodes = np.array(nodes, float)
        n = len(nodes)
        # Labels around each node: tets' tags, plus 0 for nodes on the outer boundary.
        two, la, lb = K.node_label_pairs(np.ascontiguousarray(tets, np.int64),
                                         np.ascontiguousarray(tags, np.int64),
                                         np.ascontiguousarray(boundary_faces, np.int64).reshape(-1, 3), n)
        ok_lab = np.array([a in self.boxes and b in self.boxes
                           for a, b in zip(la.tolist(), lb.tolist())], bool)
        two, la, lb = two[ok_lab], la[ok_lab], lb[ok_lab]
        stats = {"interface_nodes": int(len(two))}
        if len(two) == 0:
            return nodes, stats
        A, t = np.ascontiguousarray(to_grid[:3, :3], float), np.ascontiguousarray(to_grid[:3, 3], float)
        x0 = nodes[two]
        # Every label's field packed into one buffer for the compiled Newton steps.
        order = sorted(self.boxes)
        index = np.full(max(order) + 1, -1, np.int64)
        index[order] = np.arange(len(order))
        sizes = [self.smooth[lab].size for lab in order]
        start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        buf = np.concatenate([np.ascontiguousarray(self.smooth[lab], np.float32).ravel() for lab in order])
        shape = np.array([self.smooth[lab].shape for lab in order], np.int64)
        lo = np.array([self.boxes[lab][0] for lab in order], np.int64)
        off = np.array([self.offset[lab] for lab in order], float)
        x, g, gn = K.newton_project(x0, index[la], index[lb], buf, start, shape, lo, off, A, t,
                                    int(iterations), float(max_move_mm), 0.05)
        del buf
        dist = np.linalg.norm(x - x0, axis=1)
        conv = np.isfinite(g) & (np.abs(g) < 1e-3 * np.maximum(gn, 1e-12) + 1e-9) & (dist <= max_move_mm)
        stats["converged"] = int(conv.sum())
        conv &= dist > 1e-6  # already on the surface: nothing to do
        two, x0, x, dist = two[conv], x0[conv], x[conv], dist[conv]
        # Validity: halve moves that spoil an incident tetrahedron, then drop them. Only the
        # tetrahedra around nodes whose move changed are re-evaluated.
        moving = np.zeros(n, bool)
        moving[two] = True
        local = np.ascontiguousarray(tets[moving[tets].any(axis=1)], np.int64)
        ang0, rr0, _ = K.tet_quality(nodes, local)
        floor = np.minimum(ang0, min_angle_deg)
        rr_floor = np.minimum(rr0, min_radius_ratio)
        pos = np.full(n, -1, np.int64)
        pos[two] = np.arange(len(two))
        alpha = np.ones(len(two))
        trial = nodes.copy()
        trial[two] = x
        rows = np.arange(len(local))
        bad = np.zeros(len(local), bool)
        for rnd in range(12):
            ang, rr, vol = K.tet_quality(trial, local[rows])
            bad[rows] = (vol <= 0) | (ang < floor[rows] - 1e-9) | (rr < rr_floor[rows] - 1e-12)
            if not bad.any():
                break
            culprits = np.unique(pos[local[bad]])
            culprits = culprits[culprits >= 0]
            alpha[culprits] = 0.0 if rnd >= 3 else alpha[culprits] * 0.5
            trial[two[culprits]] = x0[culprits] + alpha[culprits, None] * (x[culprits] - x0[culprits])
            changed = np.zeros(n, bool)
            changed[two[culprits]] = True
            rows = np.flatnonzero(changed[local].any(axis=1))
        else:  # pragma: no cover - every culprit is back at its start by now
            alpha[:] = 0.0
            trial = nodes.copy()
        stats["moved"] = int((alpha > 0).sum())
        stats["blocked"] = int((alpha == 0).sum())
        stats["full_moves"] = int((alpha == 1).sum())
        stats["mean_move_mm"] = float((alpha * dist).mean()) if len(dist) else 0.0
        stats["max_move_mm"] = float((alpha * dist).max()) if len(dist) else 0.0
        return trial, stats


__all__ = ["LabelField", "upsample_linear"]
