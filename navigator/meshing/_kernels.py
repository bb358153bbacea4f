"""Compiled (numba) loops of the mesh post-processing: face table, element quality, node
incidence and the Newton steps of the interface projection.

Each kernel computes exactly what the numpy code it replaced computed (same formulas, same
order of faces and nodes), only without the (M, 4, 3)-sized temporaries; results agree to
rounding. Lengths are whatever the caller passes (mm in :mod:`navigator.meshing`).
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: Local node indices of the four outward faces (face i opposite node i), as in topology.TET_FACES.
_TF = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]], dtype=np.int64)
#: The two faces (by opposite node) meeting at each of the six edges, as in quality._EDGE_FACES.
_EF = np.array([[2, 3], [1, 3], [1, 2], [0, 3], [0, 2], [0, 1]], dtype=np.int64)


# ---------------------------------------------------------------------------- face table

@nb.njit(cache=True, parallel=True)
def face_table_kernel(tets: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(faces (F, 3) outward from tet[:, 0], tet (F, 2), count (F,)) in ascending sorted-node order.

    Same result as a stable sort of all 4M faces by their sorted node triple: faces are
    bucketed by their smallest node (counting sort), each bucket sorted by the other two.
    """
    m = tets.shape[0]
    nf = 4 * m
    lo = np.empty(nf, np.int64)
    rest = np.empty(nf, np.int64)  # middle node * n_nodes + largest node
    for e in nb.prange(m):
        for j in range(4):
            a = tets[e, _TF[j, 0]]
            b = tets[e, _TF[j, 1]]
            c = tets[e, _TF[j, 2]]
            if a > b:
                a, b = b, a
            if b > c:
                b, c = c, b
            if a > b:
                a, b = b, a
            lo[4 * e + j] = a
            rest[4 * e + j] = b * n_nodes + c
    start = np.zeros(n_nodes + 1, np.int64)
    for k in range(nf):
        start[lo[k] + 1] += 1
    for v in range(n_nodes):
        start[v + 1] += start[v]
    fill = start[:-1].copy()
    order = np.empty(nf, np.int64)
    key = np.empty(nf, np.int64)
    for k in range(nf):  # ascending k: stable within a bucket
        a = lo[k]
        order[fill[a]] = k
        key[fill[a]] = rest[k]
        fill[a] += 1
    n_unique = np.zeros(n_nodes, np.int64)
    for v in nb.prange(n_nodes):
        s, t = start[v], start[v + 1]
        for i in range(s + 1, t):  # insertion sort by (key, k): stable
            kk, ko = key[i], order[i]
            j = i - 1
            while j >= s and key[j] > kk:
                key[j + 1] = key[j]
                order[j + 1] = order[j]
                j -= 1
            key[j + 1] = kk
            order[j + 1] = ko
        u = 0
        for i in range(s, t):
            if i == s or key[i] != key[i - 1]:
                u += 1
        n_unique[v] = u
    out_start = np.zeros(n_nodes + 1, np.int64)
    for v in range(n_nodes):
        out_start[v + 1] = out_start[v] + n_unique[v]
    nu = out_start[n_nodes]
    faces = np.empty((nu, 3), np.int64)
    tet = np.empty((nu, 2), np.int64)
    count = np.zeros(nu, np.int64)
    for v in nb.prange(n_nodes):
        s, t = start[v], start[v + 1]
        g = out_start[v] - 1
        for i in range(s, t):
            k = order[i]
            if i == s or key[i] != key[i - 1]:
                g += 1
                e, j = k // 4, k % 4
                faces[g, 0] = tets[e, _TF[j, 0]]
                faces[g, 1] = tets[e, _TF[j, 1]]
                faces[g, 2] = tets[e, _TF[j, 2]]
                tet[g, 0] = e
                tet[g, 1] = -1
            elif count[g] == 1:
                tet[g, 1] = k // 4
            count[g] += 1
    return faces, tet, count


@nb.njit(cache=True)
def incidence_kernel(tets: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(tet_of, starts): tetrahedra around node v are tet_of[starts[v]:starts[v + 1]], ascending."""
    m = tets.shape[0]
    starts = np.zeros(n_nodes + 1, np.int64)
    for e in range(m):
        for j in range(4):
            starts[tets[e, j] + 1] += 1
    for v in range(n_nodes):
        starts[v + 1] += starts[v]
    fill = starts[:-1].copy()
    tet_of = np.empty(4 * m, np.int64)
    for e in range(m):
        for j in range(4):
            v = tets[e, j]
            tet_of[fill[v]] = e
            fill[v] += 1
    return tet_of, starts


@nb.njit(cache=True)
def node_label_pairs(tets: np.ndarray, tags: np.ndarray, bfaces: np.ndarray, n_nodes: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes touching exactly two labels (tets' tags; 0 for nodes on ``bfaces``), and the two
    labels (ascending)."""
    lab = np.full((n_nodes, 2), -1, np.int64)
    cnt = np.zeros(n_nodes, np.int64)
    m = tets.shape[0]
    nb_ = bfaces.shape[0]
    for r in range(4 * m + 3 * nb_):
        if r < 4 * m:
            v = tets[r // 4, r % 4]
            lv = np.int64(tags[r // 4])
        else:
            q = r - 4 * m
            v = bfaces[q // 3, q % 3]
            lv = 0
        c = cnt[v]
        if c >= 3:
            continue
        if c >= 1 and lab[v, 0] == lv:
            continue
        if c >= 2 and lab[v, 1] == lv:
            continue
        if c < 2:
            lab[v, c] = lv
        cnt[v] = c + 1
    n2 = 0
    for v in range(n_nodes):
        if cnt[v] == 2:
            n2 += 1
    nodes = np.empty(n2, np.int64)
    la = np.empty(n2, np.int64)
    lb = np.empty(n2, np.int64)
    i = 0
    for v in range(n_nodes):
        if cnt[v] == 2:
            nodes[i] = v
            la[i] = min(lab[v, 0], lab[v, 1])
            lb[i] = max(lab[v, 0], lab[v, 1])
            i += 1
    return nodes, la, lb


# ---------------------------------------------------------------------------- element quality

@nb.njit(cache=True, inline="always")
def _cross(ax: float, ay: float, az: float, bx: float, by: float, bz: float) -> tuple[float, float, float]:
    return ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx


@nb.njit(cache=True)
def _tet_quality(p: np.ndarray) -> tuple[float, float, float]:
    """(smallest dihedral angle in degrees, radius ratio, signed 6 x volume) of corners p (4, 3)."""
    nrm = np.empty((4, 3))
    area2 = 0.0
    for f in range(4):
        i0, i1, i2 = _TF[f, 0], _TF[f, 1], _TF[f, 2]
        ux, uy, uz = p[i1, 0] - p[i0, 0], p[i1, 1] - p[i0, 1], p[i1, 2] - p[i0, 2]
        wx, wy, wz = p[i2, 0] - p[i0, 0], p[i2, 1] - p[i0, 1], p[i2, 2] - p[i0, 2]
        nx, ny, nz = _cross(ux, uy, uz, wx, wy, wz)
        ln = np.sqrt(nx * nx + ny * ny + nz * nz)
        area2 += ln
        d = max(ln, 1e-300)
        nrm[f, 0], nrm[f, 1], nrm[f, 2] = nx / d, ny / d, nz / d
    mind = np.inf
    for k in range(6):
        f1, f2 = _EF[k, 0], _EF[k, 1]
        c = nrm[f1, 0] * nrm[f2, 0] + nrm[f1, 1] * nrm[f2, 1] + nrm[f1, 2] * nrm[f2, 2]
        c = min(max(c, -1.0), 1.0)
        ang = 180.0 - np.degrees(np.arccos(c))
        if ang < mind:
            mind = ang
    ax, ay, az = p[1, 0] - p[0, 0], p[1, 1] - p[0, 1], p[1, 2] - p[0, 2]
    bx, by, bz = p[2, 0] - p[0, 0], p[2, 1] - p[0, 1], p[2, 2] - p[0, 2]
    cx, cy, cz = p[3, 0] - p[0, 0], p[3, 1] - p[0, 1], p[3, 2] - p[0, 2]
    abx, aby, abz = _cross(ax, ay, az, bx, by, bz)
    vol = abx * cx + aby * cy + abz * cz
    vol6 = abs(vol)
    r_in = vol6 / max(area2, 1e-300)
    bcx, bcy, bcz = _cross(bx, by, bz, cx, cy, cz)
    cax, cay, caz = _cross(cx, cy, cz, ax, ay, az)
    la, lb, lc = ax * ax + ay * ay + az * az, bx * bx + by * by + bz * bz, cx * cx + cy * cy + cz * cz
    nx = la * bcx + lb * cax + lc * abx
    ny = la * bcy + lb * cay + lc * aby
    nz = la * bcz + lb * caz + lc * abz
    r_circ = np.sqrt(nx * nx + ny * ny + nz * nz) / max(2.0 * vol6, 1e-300)
    rr = 3.0 * r_in / max(r_circ, 1e-300) if vol6 > 0 else 0.0
    return mind, rr, vol


@nb.njit(cache=True, parallel=True)
def tet_quality(nodes: np.ndarray, tets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tetrahedron: smallest dihedral angle (deg), radius ratio 3 r_in / R_circ, 6 x signed volume."""
    m = tets.shape[0]
    mind = np.empty(m)
    rr = np.empty(m)
    vol = np.empty(m)
    for e in nb.prange(m):
        p = np.empty((4, 3))
        for j in range(4):
            for d in range(3):
                p[j, d] = nodes[tets[e, j], d]
        mind[e], rr[e], vol[e] = _tet_quality(p)
    return mind, rr, vol


# ---------------------------------------------------------------------------- interface projection

@nb.njit(cache=True, inline="always")
def _axis(c: float, lo: int, n: int) -> tuple[int, float, bool]:
    """(cell index, fraction, inside) along one axis of a box of n samples starting at lo."""
    if c < lo - 0.5 or c > lo + n - 0.5:
        return 0, 0.0, False
    q = min(max(c - lo, 0.0), n - 1.0)
    i = min(int(np.floor(q)), max(n - 2, 0))
    return i, q - i, True


@nb.njit(cache=True)
def _field(buf: np.ndarray, start: int, sh: np.ndarray, lo: np.ndarray, off: float,
           cx: float, cy: float, cz: float) -> float:
    """Trilinear value of one packed label field plus its offset at grid point c; -inf outside
    its box (as ``scipy.ndimage.map_coordinates(order=1, mode="nearest")``: edges clamped)."""
    i, fi, ok0 = _axis(cx, lo[0], sh[0])
    j, fj, ok1 = _axis(cy, lo[1], sh[1])
    k, fk, ok2 = _axis(cz, lo[2], sh[2])
    if not (ok0 and ok1 and ok2):
        return -np.inf
    s1, s2 = sh[1] * sh[2], sh[2]
    base = start + i * s1 + j * s2 + k
    di = s1 if sh[0] > 1 else 0
    dj = s2 if sh[1] > 1 else 0
    dk = 1 if sh[2] > 1 else 0
    v00 = buf[base] * (1.0 - fk) + buf[base + dk] * fk
    v01 = buf[base + dj] * (1.0 - fk) + buf[base + dj + dk] * fk
    v10 = buf[base + di] * (1.0 - fk) + buf[base + di + dk] * fk
    v11 = buf[base + di + dj] * (1.0 - fk) + buf[base + di + dj + dk] * fk
    v0 = v00 * (1.0 - fj) + v01 * fj
    v1 = v10 * (1.0 - fj) + v11 * fj
    return (v0 * (1.0 - fi) + v1 * fi) + off


@nb.njit(cache=True)
def _g(buf, start, shape, lo, off, ia, ib, cx, cy, cz):
    return (_field(buf, start[ia], shape[ia], lo[ia], off[ia], cx, cy, cz)
            - _field(buf, start[ib], shape[ib], lo[ib], off[ib], cx, cy, cz))


@nb.njit(cache=True)
def _g_grad(buf, start, shape, lo, off, ia, ib, A, t, x, h, gx):
    """g = F_a - F_b at world point x and its world gradient (central differences, step h in
    grid units) into gx; returns g."""
    cx = A[0, 0] * x[0] + A[0, 1] * x[1] + A[0, 2] * x[2] + t[0]
    cy = A[1, 0] * x[0] + A[1, 1] * x[1] + A[1, 2] * x[2] + t[1]
    cz = A[2, 0] * x[0] + A[2, 1] * x[1] + A[2, 2] * x[2] + t[2]
    g0 = _g(buf, start, shape, lo, off, ia, ib, cx, cy, cz)
    g_x = (_g(buf, start, shape, lo, off, ia, ib, cx + h, cy, cz)
           - _g(buf, start, shape, lo, off, ia, ib, cx - h, cy, cz)) / (2 * h)
    g_y = (_g(buf, start, shape, lo, off, ia, ib, cx, cy + h, cz)
           - _g(buf, start, shape, lo, off, ia, ib, cx, cy - h, cz)) / (2 * h)
    g_z = (_g(buf, start, shape, lo, off, ia, ib, cx, cy, cz + h)
           - _g(buf, start, shape, lo, off, ia, ib, cx, cy, cz - h)) / (2 * h)
    for j in range(3):
        gx[j] = g_x * A[0, j] + g_y * A[1, j] + g_z * A[2, j]
    return g0


@nb.njit(cache=True, parallel=True)
def newton_project(x0: np.ndarray, ia: np.ndarray, ib: np.ndarray, buf: np.ndarray, start: np.ndarray,
                   shape: np.ndarray, lo: np.ndarray, off: np.ndarray, A: np.ndarray, t: np.ndarray,
                   iterations: int, max_move: float, h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton steps of every node towards F_a = F_b (field indices ia, ib); returns (x, g, |grad g|)
    with g and its gradient at the final x (see LabelField.project)."""
    m = x0.shape[0]
    x = x0.copy()
    g = np.full(m, np.nan)
    gn = np.zeros(m)
    for i in nb.prange(m):
        xi = x[i].copy()
        gx = np.empty(3)
        for it in range(iterations + 1):
            gi = _g_grad(buf, start, shape, lo, off, ia[i], ib[i], A, t, xi, h, gx)
            gg = gx[0] * gx[0] + gx[1] * gx[1] + gx[2] * gx[2]
            g[i] = gi
            gn[i] = np.sqrt(gg)
            if it == iterations:
                break
            if not (np.isfinite(gi) and gg > 1e-12):
                break
            s = -gi / gg
            sl = np.sqrt((s * gx[0]) ** 2 + (s * gx[1]) ** 2 + (s * gx[2]) ** 2)
            scale = min(1.0, 0.5 * max_move / max(sl, 1e-300))
            for d in range(3):
                xi[d] += s * gx[d] * scale
            if sl < 1e-4:
                break
        x[i] = xi
    return x, g, gn


# ---------------------------------------------------------------------------- sliver repair

@nb.njit(cache=True, inline="always")
def _update_min_angles(nodes: np.ndarray, tets: np.ndarray, tet_of: np.ndarray, s0: int, s1: int,
                       p: np.ndarray, mind: np.ndarray) -> None:
    """Recompute ``mind`` (smallest dihedral angle, deg) of the tets ``tet_of[s0:s1]`` around a
    node that moved; ``p`` is a (4, 3) scratch array."""
    for q in range(s0, s1):
        e = tet_of[q]
        for j in range(4):
            for c in range(3):
                p[j, c] = nodes[tets[e, j], c]
        mind[e] = _tet_quality(p)[0]


@nb.njit(cache=True)
def _below_worst_first(mind: np.ndarray, bound: float) -> np.ndarray:
    """Indices of the elements whose smallest dihedral angle ``mind`` (deg) is below ``bound``,
    worst first."""
    nbad = 0
    for e in range(mind.shape[0]):
        if mind[e] < bound:
            nbad += 1
    bad = np.empty(nbad, np.int64)
    k = 0
    for e in range(mind.shape[0]):
        if mind[e] < bound:
            bad[k] = e
            k += 1
    return bad[np.argsort(mind[bad])]


@nb.njit(cache=True, inline="always")
def _mean_corner_distance(nodes: np.ndarray, tets: np.ndarray, tet_of: np.ndarray, s0: int, s1: int,
                          v: int) -> float:
    """Mean of the non-zero distances (mm) from node ``v`` to the corners of its incident tets
    ``tet_of[s0:s1]``: the local length scale of the node's trial moves."""
    tot = 0.0
    cnt = 0
    for q in range(s0, s1):
        e = tet_of[q]
        for j in range(4):
            w = tets[e, j]
            ln = np.sqrt((nodes[w, 0] - nodes[v, 0]) ** 2 + (nodes[w, 1] - nodes[v, 1]) ** 2
                         + (nodes[w, 2] - nodes[v, 2]) ** 2)
            if ln > 0:
                tot += ln
                cnt += 1
    return tot / cnt


@nb.njit(cache=True)
def improve_slivers_kernel(nodes: np.ndarray, tets: np.ndarray, tet_of: np.ndarray, starts: np.ndarray,
                           normal: np.ndarray, fixed: np.ndarray, dirs: np.ndarray, fracs_free: np.ndarray,
                           fracs_junction: np.ndarray, target: float, passes: int,
                           mind: np.ndarray) -> np.ndarray:
    """The node-relocation loop of :func:`navigator.meshing.slivers.improve_slivers` (see there);
    updates ``nodes`` and ``mind`` (smallest dihedral angle per tet) in place, returns a mask of
    the nodes moved."""
    n = nodes.shape[0]
    moved = np.zeros(n, np.bool_)
    nd = dirs.shape[0]
    p = np.empty((4, 3))
    it = 0
    while it <= passes:
        junction_pass = it == passes
        it += 1
        fracs = fracs_junction if junction_pass else fracs_free
        nfr = fracs.shape[0]
        bad = _below_worst_first(mind, target)
        if bad.shape[0] == 0:
            break
        changed = False
        for t in bad:
            for jv in range(4):
                v = tets[t, jv]
                if (fixed[v] and not junction_pass) or mind[t] >= target:
                    continue
                s0, s1 = starts[v], starts[v + 1]
                cur = np.inf
                for q in range(s0, s1):
                    cur = min(cur, mind[tet_of[q]])
                # directions: tangential for surface nodes
                has_n = normal[v, 0] != 0.0 or normal[v, 1] != 0.0 or normal[v, 2] != 0.0
                d = dirs.copy()
                if has_n and not fixed[v]:
                    for i in range(nd):
                        dn = d[i, 0] * normal[v, 0] + d[i, 1] * normal[v, 1] + d[i, 2] * normal[v, 2]
                        for c in range(3):
                            d[i, c] -= dn * normal[v, c]
                        ln = max(np.sqrt(d[i, 0] ** 2 + d[i, 1] ** 2 + d[i, 2] ** 2), 1e-12)
                        for c in range(3):
                            d[i, c] /= ln
                length = _mean_corner_distance(nodes, tets, tet_of, s0, s1, v)
                rr_now = np.inf
                for q in range(s0, s1):
                    e = tet_of[q]
                    for j in range(4):
                        for c in range(3):
                            p[j, c] = nodes[tets[e, j], c]
                    rr_now = min(rr_now, _tet_quality(p)[1])
                rr_min = min(rr_now, 0.1) * (0.5 if junction_pass else 1.0)
                best_ang = -np.inf
                best_i = -1
                cand = np.empty(3)
                for i in range(nd):
                    for jf in range(nfr):
                        for c in range(3):
                            cand[c] = nodes[v, c] + d[i, c] * (fracs[jf] * length)
                        worst_ang, worst_rr, ok = _worst_around(nodes, tets, tet_of, s0, s1, v, cand, p)
                        if not ok or not worst_rr >= rr_min:
                            continue
                        if worst_ang > best_ang:
                            best_ang = worst_ang
                            best_i = i * nfr + jf
                if best_i >= 0 and best_ang > cur + 1e-6:
                    i, jf = best_i // nfr, best_i % nfr
                    for c in range(3):
                        nodes[v, c] = nodes[v, c] + d[i, c] * (fracs[jf] * length)
                    _update_min_angles(nodes, tets, tet_of, s0, s1, p, mind)
                    moved[v] = True
                    changed = True
        if not changed and not junction_pass:
            it = passes
    return moved


# ---------------------------------------------------------------------------- fine label grid

@nb.njit(cache=True)
def _upsample_axis(n: int, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per fine index along one axis: (main coarse index, other coarse index, main weight,
    other weight) of :func:`navigator.meshing.labelfield.upsample_linear` (weights float32)."""
    nf = n * f
    im = np.empty(nf, np.int64)
    io = np.empty(nf, np.int64)
    wm = np.empty(nf, np.float32)
    wo = np.empty(nf, np.float32)
    for q in range(nf):
        i, o = q // f, q % f
        d = (o + 0.5) / f - 0.5
        im[q] = i
        wm[q] = np.float32(1 - abs(d))
        if d < 0:
            io[q] = max(i - 1, 0)
            wo[q] = np.float32(-d)
        elif d > 0:
            io[q] = min(i + 1, n - 1)
            wo[q] = np.float32(d)
        else:
            io[q] = i
            wo[q] = np.float32(0.0)
    return im, io, wm, wo


@nb.njit(cache=True, inline="always")
def _lerp(a: np.float32, b: np.float32, wm: np.float32, wo: np.float32, skip: bool) -> np.float32:
    # numpy's float32 sequence in upsample_linear: dst = a * wm; dst += wo * b (nothing when d == 0)
    if skip:
        return a
    r = np.float32(a * wm)
    if wo != 0:
        r = np.float32(r + np.float32(wo * b))
    return r


@nb.njit(cache=True, parallel=True)
def top3_update(sm: np.ndarray, f: np.ndarray, flo: np.ndarray, lab: int, v1: np.ndarray, v2: np.ndarray,
                v3: np.ndarray, l1: np.ndarray, l2: np.ndarray, l3: np.ndarray) -> None:
    """Insert label ``lab`` with its field ``sm`` (coarse box, float32), linearly upsampled by
    ``f`` exactly as ``upsample_linear``, into the per-fine-voxel top three (value, label) lists;
    the box starts at fine index ``flo``."""
    n0, n1, n2 = sm.shape
    f0, f1, f2 = f[0], f[1], f[2]
    a_m, a_o, a_wm, a_wo = _upsample_axis(n0, f0)
    b_m, b_o, b_wm, b_wo = _upsample_axis(n1, f1)
    c_m, c_o, c_wm, c_wo = _upsample_axis(n2, f2)
    s0, s1, s2 = f0 == 1, f1 == 1, f2 == 1
    for I in nb.prange(n0 * f0):
        ia, ja, wa, xa = a_m[I], a_o[I], a_wm[I], a_wo[I]
        for J in range(n1 * f1):
            ib, jb, wb, xb = b_m[J], b_o[J], b_wm[J], b_wo[J]
            for K in range(n2 * f2):
                ic, jc, wc, xc = c_m[K], c_o[K], c_wm[K], c_wo[K]
                # axis 0 at the four (y, z) coarse corners, then axis 1, then axis 2
                t_mm = _lerp(sm[ia, ib, ic], sm[ja, ib, ic], wa, xa, s0)
                t_om = _lerp(sm[ia, jb, ic], sm[ja, jb, ic], wa, xa, s0)
                t_mo = _lerp(sm[ia, ib, jc], sm[ja, ib, jc], wa, xa, s0)
                t_oo = _lerp(sm[ia, jb, jc], sm[ja, jb, jc], wa, xa, s0)
                u_m = _lerp(t_mm, t_om, wb, xb, s1)
                u_o = _lerp(t_mo, t_oo, wb, xb, s1)
                up = _lerp(u_m, u_o, wc, xc, s2)
                X, Y, Z = flo[0] + I, flo[1] + J, flo[2] + K
                if up > v1[X, Y, Z]:
                    v3[X, Y, Z] = v2[X, Y, Z]
                    l3[X, Y, Z] = l2[X, Y, Z]
                    v2[X, Y, Z] = v1[X, Y, Z]
                    l2[X, Y, Z] = l1[X, Y, Z]
                    v1[X, Y, Z] = up
                    l1[X, Y, Z] = lab
                elif up > v2[X, Y, Z]:
                    v3[X, Y, Z] = v2[X, Y, Z]
                    l3[X, Y, Z] = l2[X, Y, Z]
                    v2[X, Y, Z] = up
                    l2[X, Y, Z] = lab
                elif up > v3[X, Y, Z]:
                    v3[X, Y, Z] = up
                    l3[X, Y, Z] = lab


@nb.njit(cache=True)
def surface_frames_kernel(nodes: np.ndarray, faces: np.ndarray,
                          junction_cos: float) -> tuple[np.ndarray, np.ndarray]:
    """Loops of :func:`navigator.meshing.slivers._surface_frames` (same summation order)."""
    n = nodes.shape[0]
    nf = faces.shape[0]
    fn = np.empty((nf, 3))
    for i in range(nf):
        a, b, c = faces[i, 0], faces[i, 1], faces[i, 2]
        x, y, z = _cross(nodes[b, 0] - nodes[a, 0], nodes[b, 1] - nodes[a, 1], nodes[b, 2] - nodes[a, 2],
                         nodes[c, 0] - nodes[a, 0], nodes[c, 1] - nodes[a, 1], nodes[c, 2] - nodes[a, 2])
        ln = max(np.sqrt(x * x + y * y + z * z), 1e-300)
        fn[i, 0], fn[i, 1], fn[i, 2] = x / ln, y / ln, z / ln
    acc = np.zeros((n, 3))
    for k in range(3):
        for i in range(nf):
            v = faces[i, k]
            for d in range(3):
                acc[v, d] += fn[i, d]
    normal = np.zeros((n, 3))
    on = np.zeros(n, np.bool_)
    for v in range(n):
        ln = max(np.sqrt(acc[v, 0] ** 2 + acc[v, 1] ** 2 + acc[v, 2] ** 2), 1e-300)
        for d in range(3):
            normal[v, d] = acc[v, d] / ln
    worst = np.ones(n)
    for k in range(3):
        for i in range(nf):
            v = faces[i, k]
            on[v] = True
            c = abs(fn[i, 0] * normal[v, 0] + fn[i, 1] * normal[v, 1] + fn[i, 2] * normal[v, 2])
            worst[v] = min(worst[v], c)
    junction = np.zeros(n, np.bool_)
    for v in range(n):
        if not on[v]:
            normal[v, 0] = normal[v, 1] = normal[v, 2] = 0.0
        junction[v] = on[v] and worst[v] < junction_cos
    return normal, junction


@nb.njit(cache=True)
def _worst_around(nodes: np.ndarray, tets: np.ndarray, tet_of: np.ndarray, s0: int, s1: int, v: int,
                  pos: np.ndarray, p: np.ndarray) -> tuple[float, float, bool]:
    """(worst dihedral angle, worst radius ratio, all positive) of the tets around node v if v sat at pos."""
    wa = np.inf
    wr = np.inf
    for q in range(s0, s1):
        e = tet_of[q]
        for j in range(4):
            w = tets[e, j]
            for c in range(3):
                p[j, c] = pos[c] if w == v else nodes[w, c]
        a, r, vol = _tet_quality(p)
        if not vol > 0:
            return wa, wr, False
        wa = min(wa, a)
        wr = min(wr, r)
    return wa, wr, True


@nb.njit(cache=True)
def lift_slivers_kernel(nodes: np.ndarray, tets: np.ndarray, tet_of: np.ndarray, starts: np.ndarray,
                        dirs: np.ndarray, fracs: np.ndarray, floor_deg: float,
                        mind: np.ndarray) -> np.ndarray:
    """Last resort for tetrahedra still below ``floor_deg``: any of their nodes may move in any
    direction (also off an interface), by the smallest of ``fracs`` (x mean incident edge length,
    ascending) at which some direction lifts the worst angle around the node to ``floor_deg``,
    else by the best move found if it improves that angle. Moves keep every incident tet positive
    and the worst radius ratio >= min(current, 0.1) / 2. Updates nodes and mind in place;
    returns a mask of the nodes moved."""
    n = nodes.shape[0]
    moved = np.zeros(n, np.bool_)
    p = np.empty((4, 3))
    cand = np.empty(3)
    bad = _below_worst_first(mind, floor_deg)
    for t in bad:
        for jv in range(4):
            if mind[t] >= floor_deg:
                break
            v = tets[t, jv]
            s0, s1 = starts[v], starts[v + 1]
            cur = np.inf
            for q in range(s0, s1):
                cur = min(cur, mind[tet_of[q]])
            length = _mean_corner_distance(nodes, tets, tet_of, s0, s1, v)
            _, rr_now, _ = _worst_around(nodes, tets, tet_of, s0, s1, v, nodes[v].copy(), p)
            rr_min = 0.5 * min(rr_now, 0.1)
            best_ang = -np.inf
            best = np.empty(3)
            for jf in range(fracs.shape[0]):
                for i in range(dirs.shape[0]):
                    for c in range(3):
                        cand[c] = nodes[v, c] + dirs[i, c] * (fracs[jf] * length)
                    wa, wr, ok = _worst_around(nodes, tets, tet_of, s0, s1, v, cand, p)
                    if ok and wr >= rr_min and wa > best_ang:
                        best_ang = wa
                        best[:] = cand
                if best_ang >= floor_deg:
                    break  # the smallest sufficient move
            if best_ang > cur + 1e-6:
                nodes[v] = best
                _update_min_angles(nodes, tets, tet_of, s0, s1, p, mind)
                moved[v] = True
    return moved
