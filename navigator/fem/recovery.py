"""Field recovery: smoother, more accurate element fields from piecewise-constant (P0) ones.

The gradient of a P1 potential is constant per tetrahedron and converges at first order
in the element size. Recovering a continuous field at the nodes and then averaging it back
to the elements removes much of the element-to-element scatter. Because E is
discontinuous across conductivity jumps (the normal component jumps by the conductivity
ratio), recovery is done separately within each tissue: a node on an interface gets one
recovered value per adjacent tissue, and each tetrahedron only uses the values of its own
tissue. Values are therefore returned per tetrahedron corner, shape (M, 4, C).

Two recoveries:

* ``"average"``: volume-weighted mean of the element values of the tissue's tetrahedra
  around the node;
* ``"spr"`` (default): superconvergent patch recovery (Zienkiewicz & Zhu 1992): a linear
  least-squares fit ``a + B (x - x_node)`` of the element values at the centroids of the
  tissue's patch around the node, evaluated at the node. Nodes on a tissue boundary take the
  mean of the neighbouring interior patches' fits evaluated at the node; patches with fewer
  than 6 tetrahedra or an ill-conditioned fit take the neighbouring fits, else the average.

Units are those of the input field (V/m for E); coordinates in mm.
"""

from __future__ import annotations

import numpy as np

from navigator.core.mesh import Mesh

RECOVERY_METHODS = ("spr", "average")


def _patches(mesh: Mesh, by_tissue: bool) -> tuple[np.ndarray, int]:
    """(M, 4) patch index of every tetrahedron corner and the number of patches.

    A patch is a (node, tissue) pair when ``by_tissue`` (else just the node)."""
    tets = mesh.tetrahedra
    if not by_tissue:
        return tets.copy(), mesh.n_nodes
    _, tag_idx = np.unique(mesh.tet_tags, return_inverse=True)
    n_tags = int(tag_idx.max()) + 1 if len(tag_idx) else 1
    key = tets * n_tags + tag_idx.reshape(-1, 1)
    uniq, inv = np.unique(key.ravel(), return_inverse=True)
    return inv.reshape(-1, 4), len(uniq)


def recover_nodal_field(mesh: Mesh, E_tets: np.ndarray, *, by_tissue: bool = True,
                        method: str = "spr") -> np.ndarray:
    """Recovered field at the corners of every tetrahedron, (M, 4, C) (C components of E_tets).

    Corner (t, k) holds the recovered value at node ``mesh.tetrahedra[t, k]`` computed from
    the tetrahedra of tet t's tissue only (``by_tissue=True``) or from all tetrahedra around
    the node (``by_tissue=False``, for fields continuous across tissues).

    Args:
        mesh: tetrahedral mesh (mm).
        E_tets: (M,) or (M, C) element values (any unit; returned in the same unit).
        by_tissue: recover separately within each tissue tag.
        method: "spr" (linear least-squares patch fit) or "average" (volume-weighted mean).
    """
    if method not in RECOVERY_METHODS:
        raise ValueError(f"method must be one of {RECOVERY_METHODS}, not {method!r}")
    E = np.asarray(E_tets, dtype=np.float64)
    scalar = E.ndim == 1
    E = E.reshape(len(E), -1)
    if len(E) != mesh.n_tets:
        raise ValueError(f"E_tets has {len(E)} rows for {mesh.n_tets} tetrahedra")
    C = E.shape[1]
    patch, n_patch = _patches(mesh, by_tissue)
    p = patch.ravel()
    vol = np.abs(mesh.tet_volumes())
    w = np.repeat(vol, 4)
    wsum = np.bincount(p, weights=w, minlength=n_patch)
    avg = np.empty((n_patch, C))
    for c in range(C):
        avg[:, c] = np.bincount(p, weights=w * np.repeat(E[:, c], 4), minlength=n_patch)
    avg /= np.where(wsum > 0, wsum, 1.0)[:, None]
    result = avg
    if method == "spr":
        result = _spr(mesh, E, patch, n_patch, avg, by_tissue)
    out = result[patch]  # (M, 4, C)
    return out[..., 0] if scalar else out


def _spr(mesh: Mesh, E: np.ndarray, patch: np.ndarray, n_patch: int, avg: np.ndarray,
         by_tissue: bool) -> np.ndarray:
    """Linear least-squares fit per patch (unweighted, sampling points = centroids)."""
    C = E.shape[1]
    p = patch.ravel()
    node_of_corner = mesh.tetrahedra.ravel()
    # node position of each patch
    xnode = np.zeros((n_patch, 3))
    xnode[p] = mesh.nodes[node_of_corner]
    cent = mesh.tet_centroids()
    d = np.repeat(cent, 4, axis=0) - xnode[p]  # (4M, 3) centroid relative to the patch node, mm
    count = np.bincount(p, minlength=n_patch)
    # scale coordinates by the patch's RMS distance for conditioning
    rms = np.sqrt(np.bincount(p, weights=(d * d).sum(1), minlength=n_patch) / np.maximum(count, 1))
    rms = np.where(rms > 0, rms, 1.0)
    d = d / rms[p][:, None]
    P = np.concatenate([np.ones((len(p), 1)), d], axis=1)  # (4M, 4)
    A = np.zeros((n_patch, 4, 4))
    for i in range(4):
        for j in range(i, 4):
            A[:, i, j] = np.bincount(p, weights=P[:, i] * P[:, j], minlength=n_patch)
            A[:, j, i] = A[:, i, j]
    Ec = np.repeat(E, 4, axis=0)
    b = np.zeros((n_patch, 4, C))
    for i in range(4):
        for c in range(C):
            b[:, i, c] = np.bincount(p, weights=P[:, i] * Ec[:, c], minlength=n_patch)
    ok = count >= 6
    if ok.any():
        Aok = A[ok]
        # reject near-singular patches (e.g. all centroids nearly coplanar)
        eig = np.linalg.eigvalsh(Aok)
        good = eig[:, 0] > 1e-3 * eig[:, -1]
        idx = np.flatnonzero(ok)[good]
        ok[:] = False
        ok[idx] = True
    out = avg.copy()
    if not ok.any():
        return out
    coef = np.zeros((n_patch, 4, C))
    coef[ok] = np.linalg.solve(A[ok], b[ok])  # value and scaled gradient at the patch node
    out[ok] = coef[ok, 0, :]
    # Patches of nodes on a tissue's boundary are one-sided, and their own fit extrapolates
    # the noisy element values. As usual in SPR, their value is instead the mean of the fits
    # of the neighbouring interior patches (same tissue) evaluated at the boundary node
    # (their own fit when they have no interior neighbour).
    boundary = _boundary_patches(mesh, patch, n_patch, by_tissue)
    # 1) boundary patches: mean of the interior neighbours' fits
    acc, cnt = _neighbour_fits(mesh, patch, n_patch, coef, xnode, rms, target=boundary, source=ok & ~boundary)
    has = cnt > 0
    out[has] = acc[has] / cnt[has, None]
    # 2) patches with neither an own fit nor interior neighbours (thin layers): mean of the
    #    fits of any neighbouring patch of the same tissue
    rest = ~ok & ~has
    if rest.any():
        acc, cnt = _neighbour_fits(mesh, patch, n_patch, coef, xnode, rms, target=rest, source=ok)
        has = cnt > 0
        out[has] = acc[has] / cnt[has, None]
    return out


def _neighbour_fits(mesh: Mesh, patch: np.ndarray, n_patch: int, coef: np.ndarray, xnode: np.ndarray,
                    rms: np.ndarray, *, target: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum and count, per target patch, of the linear fits of the source patches sharing a
    tetrahedron with it, evaluated at the target patch's node."""
    C = coef.shape[2]
    tets = mesh.tetrahedra
    acc = np.zeros((n_patch, C))
    cnt = np.zeros(n_patch)
    for k in range(4):
        q = patch[:, k]
        for j in range(4):
            if j == k:
                continue
            qn = patch[:, j]
            sel = target[q] & source[qn]
            if not sel.any():
                continue
            dx = (mesh.nodes[tets[sel, k]] - xnode[qn[sel]]) / rms[qn[sel]][:, None]
            val = coef[qn[sel], 0, :] + np.einsum("ki,kic->kc", dx, coef[qn[sel], 1:, :])
            for c in range(C):
                acc[:, c] += np.bincount(q[sel], weights=val[:, c], minlength=n_patch)
            cnt += np.bincount(q[sel], minlength=n_patch)
    return acc, cnt


def _boundary_patches(mesh: Mesh, patch: np.ndarray, n_patch: int, by_tissue: bool = True) -> np.ndarray:
    """(n_patch,) True for patches whose node lies on a face of the patch's tissue region
    that is shared with no other tetrahedron of that tissue (interface or outer surface)."""
    faces_local = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    tets = mesh.tetrahedra
    n = max(mesh.n_nodes, 1)
    f = np.sort(tets[:, faces_local].reshape(-1, 3), axis=1)  # (4M, 3), face opposite corner i
    if float(n) ** 3 < 2.0**62:
        key = (f[:, 0] * n + f[:, 1]) * n + f[:, 2]
        _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    else:
        _, inv, counts = np.unique(f, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    single = counts[inv] == 1
    if by_tissue:  # an interior face between two tissues is a boundary of both
        tag = np.repeat(mesh.tet_tags.astype(np.float64), 4)
        s1 = np.bincount(inv, weights=tag)
        s2 = np.bincount(inv, weights=tag * tag)
        single |= (counts[inv] * s2[inv]) != (s1[inv] ** 2)
    single = single.reshape(-1, 4)
    out = np.zeros(n_patch, bool)
    for i in range(4):
        corners = [c for c in range(4) if c != i]
        t = np.flatnonzero(single[:, i])
        out[patch[t][:, corners].ravel()] = True
    return out


def element_from_corners(corner_values: np.ndarray) -> np.ndarray:
    """(M, C) element value = mean of the (M, 4, C) corner values (the centroid value of
    the linear interpolant)."""
    return np.asarray(corner_values).mean(axis=1)


def recovered_element_field(mesh: Mesh, E_tets: np.ndarray, *, by_tissue: bool = True,
                            method: str = "spr") -> np.ndarray:
    """(M, C) element field from the tissue-wise recovered nodal field: the mean of the
    recovered values at each tetrahedron's four corners (same unit as ``E_tets``)."""
    return element_from_corners(recover_nodal_field(mesh, E_tets, by_tissue=by_tissue, method=method))
