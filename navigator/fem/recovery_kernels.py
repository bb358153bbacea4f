"""Compiled (numba) loops of the field recovery (:mod:`navigator.fem.recovery`).

The numpy formulation grouped the tetrahedron corners into (node, tissue) patches with
``np.unique`` on 8 M keys, found boundary faces with another ``np.unique`` on 8 M face keys
and accumulated every least-squares sum with one ``bincount`` pass per matrix entry; that took
~20 s at 2 M tetrahedra. Here the patches come from the node -> element adjacency
(:func:`navigator.fem.kernels.node_elements`): the patches of a node are its distinct tissues
in ascending order, numbered node by node (the ``np.unique`` order of the key
``node * n_tags + tissue``), and the corners of each patch are listed in ascending element
order, so every per-patch sum adds the same terms in the same order as ``bincount`` did.
All loops run over nodes, patches or tetrahedra in parallel and write only their own rows.

Coordinates in mm; field values in whatever unit the caller passes.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from navigator.fem.kernels import counting_order, tet_edges


@nb.njit(cache=True, inline="always")
def _distinct_tags(tag_idx: np.ndarray, node_elems: np.ndarray, p0: int, p1: int, out: np.ndarray) -> int:
    """Distinct tissue indices of the elements ``node_elems[p0:p1]`` (one node's elements),
    written to ``out`` in order of first appearance; returns how many."""
    n = 0
    for p in range(p0, p1):
        t = tag_idx[node_elems[p]]
        new = True
        for s in range(n):
            if out[s] == t:
                new = False
                break
        if new:
            out[n] = t
            n += 1
    return n


@nb.njit(cache=True, parallel=True)
def patch_index(tets: np.ndarray, tag_idx: np.ndarray, n_tags: int, node_start: np.ndarray,
                node_elems: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(node, tissue) patches from the node -> element adjacency.

    Args:
        tets: (M, 4) node indices. tag_idx: (M,) tissue index 0..n_tags-1 of each tet (all 0
            for patches that ignore tissues). node_start, node_elems: node -> element CSR.

    Returns:
        patch: (M, 4) patch of every tet corner; patch_start (P + 1,) and patch_corners (4M,)
        = corners (4 * tet + local corner) of each patch in ascending tet order;
        patch_node (P,) node of each patch.
    """
    n_nodes = node_start.shape[0] - 1
    m = tets.shape[0]
    first = np.zeros(n_nodes + 1, np.int64)
    # number of distinct tissues around each node
    n_chunks = max(1, min(n_nodes, 256))
    for ch in nb.prange(n_chunks):
        seen = np.empty(n_tags, np.int64)
        for i in range(ch * n_nodes // n_chunks, (ch + 1) * n_nodes // n_chunks):
            first[i + 1] = _distinct_tags(tag_idx, node_elems, node_start[i], node_start[i + 1], seen)
    for i in range(n_nodes):
        first[i + 1] += first[i]
    n_patch = first[n_nodes]
    patch = np.empty((m, 4), np.int64)
    patch_start = np.empty(n_patch + 1, np.int64)
    patch_start[n_patch] = node_elems.shape[0]
    patch_corners = np.empty(node_elems.shape[0], np.int64)
    patch_node = np.empty(n_patch, np.int64)
    n_chunks = max(1, min(n_nodes, 256))
    for ch in nb.prange(n_chunks):
        tags_buf = np.empty(n_tags, np.int64)
        cnt_buf = np.empty(n_tags, np.int64)
        fill = np.empty(n_tags, np.int64)
        for i in range(ch * n_nodes // n_chunks, (ch + 1) * n_nodes // n_chunks):
            n_here = first[i + 1] - first[i]
            if n_here == 0:
                continue
            # distinct tissues of the node, ascending, with their corner counts
            _distinct_tags(tag_idx, node_elems, node_start[i], node_start[i + 1], tags_buf)
            tags = tags_buf[:n_here]
            cnt = cnt_buf[:n_here]
            cnt[:] = 0
            for s in range(1, n_here):  # insertion sort (a handful of tissues)
                t = tags[s]
                j = s
                while j > 0 and tags[j - 1] > t:
                    tags[j] = tags[j - 1]
                    j -= 1
                tags[j] = t
            for p in range(node_start[i], node_start[i + 1]):
                t = tag_idx[node_elems[p]]
                for s in range(n_here):
                    if tags[s] == t:
                        cnt[s] += 1
                        break
            pos = node_start[i]
            for s in range(n_here):
                patch_start[first[i] + s] = pos
                patch_node[first[i] + s] = i
                fill[s] = pos
                pos += cnt[s]
            for p in range(node_start[i], node_start[i + 1]):  # elements ascending -> corners ascending
                e = node_elems[p]
                t = tag_idx[e]
                s = 0
                while tags[s] != t:
                    s += 1
                a = 0
                while tets[e, a] != i:
                    a += 1
                patch[e, a] = first[i] + s
                patch_corners[fill[s]] = 4 * e + a
                fill[s] += 1
    return patch, patch_start, patch_corners, patch_node


@nb.njit(cache=True, parallel=True)
def tet_geometry(nodes: np.ndarray, tets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, 3) centroids (as ``nodes[tets].mean(axis=1)``) and (M,) absolute volumes (mm^3 for mm)."""
    m = tets.shape[0]
    cent = np.empty((m, 3))
    vol = np.empty(m)
    for e in nb.prange(m):
        i0, i1, i2, i3 = tets[e, 0], tets[e, 1], tets[e, 2], tets[e, 3]
        for c in range(3):
            cent[e, c] = (((nodes[i0, c] + nodes[i1, c]) + nodes[i2, c]) + nodes[i3, c]) / 4.0
        ax, ay, az, bx, by, bz, cx, cy, cz = tet_edges(nodes, i0, i1, i2, i3)
        # (a x b) . c summed as numpy's einsum does (x + z, then + y): bit-identical to
        # abs(Mesh.tet_volumes()) with numpy 2.x
        vol[e] = abs((((ay * bz - az * by) * cx + (ax * by - ay * bx) * cz) + (az * bx - ax * bz) * cy) / 6.0)
    return cent, vol


@nb.njit(cache=True, parallel=True)
def patch_average(vol: np.ndarray, E: np.ndarray, patch_start: np.ndarray, patch_corners: np.ndarray
                  ) -> np.ndarray:
    """(P, C) volume-weighted mean of the element values of each patch (0 for an empty one)."""
    n_patch = patch_start.shape[0] - 1
    C = E.shape[1]
    avg = np.zeros((n_patch, C))
    for q in nb.prange(n_patch):
        wsum = 0.0
        for p in range(patch_start[q], patch_start[q + 1]):
            e = patch_corners[p] // 4
            w = vol[e]
            wsum += w
            for c in range(C):
                avg[q, c] += w * E[e, c]
        if wsum > 0:
            for c in range(C):
                avg[q, c] /= wsum
    return avg


@nb.njit(cache=True, inline="always")
def _jacobi_eig_ratio_ok(A: np.ndarray, tol: float) -> bool:
    """True when min eigenvalue > tol * max eigenvalue of the symmetric 4x4 A (A is destroyed)."""
    n = 4
    for _sweep in range(50):
        off = 0.0
        for i in range(n):
            for j in range(i + 1, n):
                off += A[i, j] * A[i, j]
        diag = 0.0
        for i in range(n):
            diag += A[i, i] * A[i, i]
        if off <= 1e-36 * diag or off == 0.0:
            break
        for p in range(n):
            for q in range(p + 1, n):
                apq = A[p, q]
                if apq == 0.0:
                    continue
                theta = (A[q, q] - A[p, p]) / (2.0 * apq)
                t = 1.0 / (abs(theta) + np.sqrt(theta * theta + 1.0))
                if theta < 0:
                    t = -t
                c = 1.0 / np.sqrt(t * t + 1.0)
                s = t * c
                for k in range(n):  # columns p, q
                    akp = A[k, p]
                    akq = A[k, q]
                    A[k, p] = c * akp - s * akq
                    A[k, q] = s * akp + c * akq
                for k in range(n):  # rows p, q
                    apk = A[p, k]
                    aqk = A[q, k]
                    A[p, k] = c * apk - s * aqk
                    A[q, k] = s * apk + c * aqk
    lo = A[0, 0]
    hi = A[0, 0]
    for i in range(1, n):
        lo = min(lo, A[i, i])
        hi = max(hi, A[i, i])
    return lo > tol * hi


@nb.njit(cache=True, inline="always")
def _solve4(A: np.ndarray, b: np.ndarray) -> None:
    """Solve A x = b in place (x -> b; A destroyed), Gaussian elimination with partial pivoting."""
    n = 4
    C = b.shape[1]
    for k in range(n):
        piv = k
        big = abs(A[k, k])
        for i in range(k + 1, n):
            if abs(A[i, k]) > big:
                big = abs(A[i, k])
                piv = i
        if piv != k:
            for j in range(n):
                tmp = A[k, j]
                A[k, j] = A[piv, j]
                A[piv, j] = tmp
            for c in range(C):
                tmp = b[k, c]
                b[k, c] = b[piv, c]
                b[piv, c] = tmp
        for i in range(k + 1, n):
            f = A[i, k] / A[k, k]
            for j in range(k + 1, n):
                A[i, j] -= f * A[k, j]
            for c in range(C):
                b[i, c] -= f * b[k, c]
    for k in range(n - 1, -1, -1):
        for c in range(C):
            s = b[k, c]
            for j in range(k + 1, n):
                s -= A[k, j] * b[j, c]
            b[k, c] = s / A[k, k]


@nb.njit(cache=True, parallel=True)
def patch_fits(nodes: np.ndarray, cent: np.ndarray, E: np.ndarray, patch_start: np.ndarray,
               patch_corners: np.ndarray, patch_node: np.ndarray, min_count: int, eig_tol: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear least-squares fit ``a + B (x - x_node) / rms`` of the element values at the
    centroids of each patch (unweighted; rms = the patch's RMS centroid distance to its node).

    Returns:
        coef (P, 4, C): a and B of the fits (0 where not ok); rms (P,); ok (P,) bool = at
        least ``min_count`` tets and min/max eigenvalue of the normal matrix > ``eig_tol``.
    """
    n_patch = patch_start.shape[0] - 1
    C = E.shape[1]
    coef = np.zeros((n_patch, 4, C))
    rms_out = np.ones(n_patch)
    ok = np.zeros(n_patch, np.bool_)
    n_chunks = max(1, min(n_patch, 256))
    for ch in nb.prange(n_chunks):
        A = np.empty((4, 4))
        b = np.empty((4, C))
        P = np.empty(4)
        W = np.empty((4, 4))
        for q in range(ch * n_patch // n_chunks, (ch + 1) * n_patch // n_chunks):
            i = patch_node[q]
            x0 = nodes[i, 0]
            x1 = nodes[i, 1]
            x2 = nodes[i, 2]
            count = patch_start[q + 1] - patch_start[q]
            ss = 0.0
            for p in range(patch_start[q], patch_start[q + 1]):
                e = patch_corners[p] // 4
                d0 = cent[e, 0] - x0
                d1 = cent[e, 1] - x1
                d2 = cent[e, 2] - x2
                ss += (d0 * d0 + d1 * d1) + d2 * d2
            rms = np.sqrt(ss / max(count, 1))
            if not rms > 0:
                rms = 1.0
            rms_out[q] = rms
            if count < min_count:
                continue
            A[:] = 0.0
            b[:] = 0.0
            P[0] = 1.0
            for p in range(patch_start[q], patch_start[q + 1]):
                e = patch_corners[p] // 4
                P[1] = (cent[e, 0] - x0) / rms
                P[2] = (cent[e, 1] - x1) / rms
                P[3] = (cent[e, 2] - x2) / rms
                for a in range(4):
                    for bb in range(a, 4):
                        A[a, bb] += P[a] * P[bb]
                    for c in range(C):
                        b[a, c] += P[a] * E[e, c]
            for a in range(4):
                for bb in range(a + 1, 4):
                    A[bb, a] = A[a, bb]
            W[:, :] = A
            if not _jacobi_eig_ratio_ok(W, eig_tol):
                continue
            _solve4(A, b)
            ok[q] = True
            for a in range(4):
                for c in range(C):
                    coef[q, a, c] = b[a, c]
    return coef, rms_out, ok


@nb.njit(cache=True, parallel=True)
def single_faces(tets: np.ndarray, tags: np.ndarray, node_start: np.ndarray, node_elems: np.ndarray,
                 by_tissue: bool) -> np.ndarray:
    """(M, 4) True where the face opposite corner i of a tet belongs to no other tet (or, with
    ``by_tissue``, where the tets sharing it do not all have the same tag).

    Each face is handled by its lowest node: the faces of that node's tets whose lowest node it
    is are sorted by their other two nodes, and equal faces are adjacent."""
    n_nodes = node_start.shape[0] - 1
    m = tets.shape[0]
    single = np.zeros((m, 4), np.bool_)
    max_deg = 0
    for n in range(n_nodes):
        max_deg = max(max_deg, node_start[n + 1] - node_start[n])
    n_chunks = max(1, min(n_nodes, 256))
    for ch in nb.prange(n_chunks):
        key = np.empty(3 * max_deg, np.int64)
        who = np.empty(3 * max_deg, np.int64)  # 4 * tet + opposite corner
        for n in range(ch * n_nodes // n_chunks, (ch + 1) * n_nodes // n_chunks):
            s0 = node_start[n]
            deg = node_start[n + 1] - s0
            k = 0
            for p in range(deg):
                e = node_elems[s0 + p]
                for i in range(4):
                    a = tets[e, (i + 1) % 4]
                    b = tets[e, (i + 2) % 4]
                    c = tets[e, (i + 3) % 4]
                    if a == n:
                        u, v = b, c
                    elif b == n:
                        u, v = a, c
                    elif c == n:
                        u, v = a, b
                    else:
                        continue  # face without this node
                    if u < n or v < n:
                        continue  # another node's face
                    if v < u:
                        u, v = v, u
                    # insertion sort by (u, v)
                    kk = u * n_nodes + v
                    j = k
                    while j > 0 and key[j - 1] > kk:
                        key[j] = key[j - 1]
                        who[j] = who[j - 1]
                        j -= 1
                    key[j] = kk
                    who[j] = 4 * e + i
                    k += 1
            g0 = 0
            while g0 < k:
                g1 = g0 + 1
                while g1 < k and key[g1] == key[g0]:
                    g1 += 1
                same = True
                t0 = tags[who[g0] // 4]
                for g in range(g0 + 1, g1):
                    if tags[who[g] // 4] != t0:
                        same = False
                flag = g1 - g0 == 1 or (by_tissue and not same)
                for g in range(g0, g1):
                    single[who[g] // 4, who[g] % 4] = flag
                g0 = g1
    return single


def morton_node_order(nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cache-friendly node numbering along a Morton (z-order) curve
    (:func:`navigator.fem.assembly.spatial_node_order`): (node_perm, new id of each old node)."""
    from navigator.fem.assembly import spatial_node_order

    n = len(nodes)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    node_perm = spatial_node_order(nodes)
    new_id = np.empty(n, np.int64)
    new_id[node_perm] = np.arange(n)
    return node_perm, new_id


@nb.njit(cache=True, parallel=True)
def renumber_tets(tets: np.ndarray, new_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tets with their nodes renumbered by ``new_id`` and sorted (stably) by their lowest new
    node: (tet_perm (M,), renumbered tets (M, 4) = new_id[tets[tet_perm]])."""
    m = tets.shape[0]
    n_nodes = new_id.shape[0]
    lowest = np.empty(m, np.int64)
    for e in nb.prange(m):
        a = min(new_id[tets[e, 0]], new_id[tets[e, 1]])
        lowest[e] = min(a, min(new_id[tets[e, 2]], new_id[tets[e, 3]]))
    perm = counting_order(lowest, n_nodes)
    out = np.empty((m, 4), np.int64)
    for f in nb.prange(m):
        e = perm[f]
        for k in range(4):
            out[f, k] = new_id[tets[e, k]]
    return perm, out


@nb.njit(cache=True, parallel=True)
def boundary_patches(patch_start: np.ndarray, patch_corners: np.ndarray, single: np.ndarray) -> np.ndarray:
    """(P,) True for patches whose node lies on a single face of one of the patch's tets."""
    n_patch = patch_start.shape[0] - 1
    out = np.zeros(n_patch, np.bool_)
    for q in nb.prange(n_patch):
        for p in range(patch_start[q], patch_start[q + 1]):
            e = patch_corners[p] // 4
            k = patch_corners[p] % 4
            for i in range(4):
                if i != k and single[e, i]:
                    out[q] = True
            if out[q]:
                break
    return out


@nb.njit(cache=True, parallel=True)
def neighbour_fits(nodes: np.ndarray, tets: np.ndarray, patch: np.ndarray, patch_start: np.ndarray,
                   patch_corners: np.ndarray, coef: np.ndarray, rms: np.ndarray, target: np.ndarray,
                   source: np.ndarray, out: np.ndarray) -> np.ndarray:
    """For each target patch: the mean of the fits of the source patches sharing a tet with it
    (once per shared tet), evaluated at its node, written to ``out``; returns the counts."""
    n_patch = patch_start.shape[0] - 1
    C = coef.shape[2]
    cnt = np.zeros(n_patch)
    n_chunks = max(1, min(n_patch, 256))
    for ch in nb.prange(n_chunks):
        acc = np.empty(C)
        for q in range(ch * n_patch // n_chunks, (ch + 1) * n_patch // n_chunks):
            if not target[q]:
                continue
            acc[:] = 0.0
            n = 0.0
            for p in range(patch_start[q], patch_start[q + 1]):
                e = patch_corners[p] // 4
                k = patch_corners[p] % 4
                node = tets[e, k]
                for j in range(4):
                    if j == k:
                        continue
                    qn = patch[e, j]
                    if not source[qn]:
                        continue
                    xn = tets[e, j]  # the source patch's node
                    r = rms[qn]
                    dx0 = (nodes[node, 0] - nodes[xn, 0]) / r
                    dx1 = (nodes[node, 1] - nodes[xn, 1]) / r
                    dx2 = (nodes[node, 2] - nodes[xn, 2]) / r
                    for c in range(C):
                        acc[c] += coef[qn, 0, c] + ((dx0 * coef[qn, 1, c] + dx1 * coef[qn, 2, c])
                                                    + dx2 * coef[qn, 3, c])
                    n += 1.0
            cnt[q] = n
            if n > 0:
                for c in range(C):
                    out[q, c] = acc[c] / n
    return cnt


@nb.njit(cache=True, parallel=True)
def element_means(values: np.ndarray, patch: np.ndarray) -> np.ndarray:
    """(M, C) mean of the patch values at each tet's four corners (as ``values[patch].mean(1)``)."""
    m = patch.shape[0]
    C = values.shape[1]
    out = np.empty((m, C))
    for e in nb.prange(m):
        for c in range(C):
            out[e, c] = (((values[patch[e, 0], c] + values[patch[e, 1], c]) + values[patch[e, 2], c])
                         + values[patch[e, 3], c]) / 4.0
    return out
