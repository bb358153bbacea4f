"""The compiled field recovery (navigator.fem.recovery_kernels) against its definition.

``_reference_recovery`` is the former numpy implementation (bincount sums over (node, tissue)
patches, np.unique boundary faces), kept here as the executable definition: the compiled
version must give the same numbers up to rounding. Plus hand-checkable cases: constant fields,
patches too small for a fit, tissue-wise independence, and the rasterization / voxel fill.
"""

from __future__ import annotations

import numpy as np
import pytest

from navigator.core.mesh import Mesh
from navigator.fem.recovery import recover_nodal_field, recovered_element_field
from navigator.fem.spheres import concentric_sphere_mesh


def _reference_recovery(mesh: Mesh, E: np.ndarray, by_tissue: bool, method: str) -> np.ndarray:
    """(M, 4, C) recovered corner values, numpy definition (the implementation before numba)."""
    E = np.asarray(E, float).reshape(mesh.n_tets, -1)
    C = E.shape[1]
    tets = mesh.tetrahedra
    if by_tissue:
        _, tag_idx = np.unique(mesh.tet_tags, return_inverse=True)
        key = tets * (int(tag_idx.max()) + 1) + tag_idx.reshape(-1, 1)
        uniq, inv = np.unique(key.ravel(), return_inverse=True)
        patch, n_patch = inv.reshape(-1, 4), len(uniq)
    else:
        patch, n_patch = tets.copy(), mesh.n_nodes
    p = patch.ravel()
    w = np.repeat(np.abs(mesh.tet_volumes()), 4)
    wsum = np.bincount(p, weights=w, minlength=n_patch)
    avg = np.stack([np.bincount(p, weights=w * np.repeat(E[:, c], 4), minlength=n_patch)
                    for c in range(C)], 1)
    avg /= np.where(wsum > 0, wsum, 1.0)[:, None]
    if method == "average":
        return avg[patch]
    xnode = np.zeros((n_patch, 3))
    xnode[p] = mesh.nodes[tets.ravel()]
    d = np.repeat(mesh.tet_centroids(), 4, axis=0) - xnode[p]
    count = np.bincount(p, minlength=n_patch)
    rms = np.sqrt(np.bincount(p, weights=(d * d).sum(1), minlength=n_patch) / np.maximum(count, 1))
    rms = np.where(rms > 0, rms, 1.0)
    P = np.concatenate([np.ones((len(p), 1)), d / rms[p][:, None]], axis=1)
    A = np.zeros((n_patch, 4, 4))
    b = np.zeros((n_patch, 4, C))
    Ec = np.repeat(E, 4, axis=0)
    for i in range(4):
        for j in range(4):
            A[:, i, j] = np.bincount(p, weights=P[:, i] * P[:, j], minlength=n_patch)
        for c in range(C):
            b[:, i, c] = np.bincount(p, weights=P[:, i] * Ec[:, c], minlength=n_patch)
    ok = count >= 6
    eig = np.linalg.eigvalsh(A[ok])
    ok[np.flatnonzero(ok)[~(eig[:, 0] > 1e-3 * eig[:, -1])]] = False
    out = avg.copy()
    coef = np.zeros((n_patch, 4, C))
    coef[ok] = np.linalg.solve(A[ok], b[ok])
    out[ok] = coef[ok, 0]
    # boundary patches: node on a face of no other tet of the same tissue
    faces_local = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])
    f = np.sort(tets[:, faces_local].reshape(-1, 3), axis=1)
    _, inv, counts = np.unique(f, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    single = counts[inv] == 1
    if by_tissue:
        tag = np.repeat(mesh.tet_tags.astype(float), 4)
        s1, s2 = np.bincount(inv, weights=tag), np.bincount(inv, weights=tag * tag)
        single |= counts[inv] * s2[inv] != s1[inv] ** 2
    single = single.reshape(-1, 4)
    boundary = np.zeros(n_patch, bool)
    for i in range(4):
        t = np.flatnonzero(single[:, i])
        boundary[patch[t][:, [c for c in range(4) if c != i]].ravel()] = True

    def neighbour_fits(target, source):
        acc, cnt = np.zeros((n_patch, C)), np.zeros(n_patch)
        for k in range(4):
            for j in range(4):
                if j == k:
                    continue
                q, qn = patch[:, k], patch[:, j]
                sel = target[q] & source[qn]
                dx = (mesh.nodes[tets[sel, k]] - xnode[qn[sel]]) / rms[qn[sel]][:, None]
                val = coef[qn[sel], 0] + np.einsum("ki,kic->kc", dx, coef[qn[sel], 1:])
                for c in range(C):
                    acc[:, c] += np.bincount(q[sel], weights=val[:, c], minlength=n_patch)
                cnt += np.bincount(q[sel], minlength=n_patch)
        return acc, cnt

    acc, cnt = neighbour_fits(boundary, ok & ~boundary)
    has = cnt > 0
    out[has] = acc[has] / cnt[has, None]
    rest = ~ok & ~has
    acc, cnt = neighbour_fits(rest, ok)
    out[cnt > 0] = acc[cnt > 0] / cnt[cnt > 0, None]
    return out[patch]


@pytest.fixture(scope="module")
def mesh():
    # three tissues incl. a thin shell (many boundary / small patches)
    return concentric_sphere_mesh(radii=(30.0, 40.0, 43.0), tags=(1, 2, 3), size=6.0)


@pytest.mark.parametrize("by_tissue", [True, False])
@pytest.mark.parametrize("method", ["spr", "average"])
def test_compiled_recovery_matches_the_numpy_definition(mesh, by_tissue, method):
    rng = np.random.default_rng(3)
    cent = mesh.tet_centroids()
    E = np.stack([np.sin(cent[:, 0] / 9.0), cent[:, 1] * cent[:, 2] / 400.0, np.ones(len(cent))], 1)
    E += 0.1 * rng.standard_normal(E.shape)
    E[mesh.tet_tags == 3] *= 7.0  # jumps at the interfaces
    ref = _reference_recovery(mesh, E, by_tissue, method)
    got = recover_nodal_field(mesh, E, by_tissue=by_tissue, method=method)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    np.testing.assert_allclose(recovered_element_field(mesh, E, by_tissue=by_tissue, method=method),
                               ref.mean(axis=1), rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    # the node numbering must not matter (the kernels renumber internally)
    perm = rng.permutation(mesh.n_nodes)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    shuffled = Mesh(nodes=mesh.nodes[perm], tetrahedra=inv[mesh.tetrahedra], tet_tags=mesh.tet_tags)
    np.testing.assert_allclose(recover_nodal_field(shuffled, E, by_tissue=by_tissue, method=method), got,
                               rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_linear_field_exact_and_tissues_independent(mesh):
    """A linear field is recovered exactly at every corner; changing the field in one tissue
    leaves the recovered field of the others untouched (bit for bit)."""
    g = np.array([0.02, -0.01, 0.03])
    E = (1.0 + mesh.tet_centroids() @ g)[:, None] * np.ones((1, 2))
    corners = recover_nodal_field(mesh, E)
    exact = (1.0 + mesh.nodes[mesh.tetrahedra] @ g)[..., None] * np.ones(2)
    np.testing.assert_allclose(corners, exact, atol=1e-9)
    E2 = E.copy()
    E2[mesh.tet_tags == 2] = np.random.default_rng(0).standard_normal((int((mesh.tet_tags == 2).sum()), 2))
    a, b = recovered_element_field(mesh, E), recovered_element_field(mesh, E2)
    other = mesh.tet_tags != 2
    assert np.array_equal(a[other], b[other])
    assert not np.allclose(a[~other], b[~other])


def test_small_hand_checkable_cases():
    """Two tets of different tissues sharing a face: every patch has one tet, so each tet keeps
    its own value (no fit, no mixing). Same tissue: each shared node is the volume-weighted mean
    of the two, the tip nodes keep their tet's value."""
    nodes = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, -2.0]])
    tets = np.array([[0, 1, 2, 3], [0, 2, 1, 4]])  # volumes 1/6 and 2/6
    E = np.array([[1.0, 0.0], [4.0, 3.0]])
    m2 = Mesh(nodes=nodes, tetrahedra=tets, tet_tags=[1, 2])
    np.testing.assert_array_equal(recovered_element_field(m2, E), E)
    m1 = Mesh(nodes=nodes, tetrahedra=tets, tet_tags=[1, 1])
    c = recover_nodal_field(m1, E)
    shared = (1.0 * E[0] + 2.0 * E[1]) / 3.0
    np.testing.assert_allclose(c[0, :3], np.tile(shared, (3, 1)), rtol=1e-14)
    np.testing.assert_allclose(c[1, :3], np.tile(shared, (3, 1)), rtol=1e-14)
    np.testing.assert_array_equal(c[0, 3], E[0])
    np.testing.assert_array_equal(c[1, 3], E[1])
    # unused nodes and scalar input
    m3 = Mesh(nodes=np.vstack([nodes, [[5.0, 5.0, 5.0]]]), tetrahedra=tets, tet_tags=[1, 2])
    np.testing.assert_array_equal(recovered_element_field(m3, E[:, 1]), E[:, 1])


def test_rasterization_and_voxel_fill_against_brute_force():
    """Every voxel centre inside a tet (float64, margin 1e-5) is found, none clearly outside
    all tets is; the P1 fill of a linear potential is exact."""
    from navigator.fem.sampling import bbox_grid, fill_voxels, rasterize_tets

    m = concentric_sphere_mesh(radii=(10.0, 12.0), tags=(1, 2), size=4.0)
    affine, shape = bbox_grid(m, 1.0, margin_mm=1.0)
    flat, tet, bary = rasterize_tets(m, affine, shape, chunk=500)
    assert np.all(np.diff(flat) > 0)
    ijk = np.stack(np.unravel_index(np.arange(int(np.prod(shape))), shape), 1)
    world = ijk @ affine[:3, :3].T + affine[:3, 3]
    # brute force float64 barycentric min over all tets
    p = m.nodes[m.tetrahedra]
    T = np.transpose(p[:, 1:] - p[:, :1], (0, 2, 1))
    Ti = np.linalg.inv(T)
    best = np.full(len(world), -np.inf)
    for s in range(0, len(world), 2000):
        lam = np.einsum("tij,vtj->vti", Ti, world[s:s + 2000, None, :] - p[None, :, 0])
        b = np.concatenate([1 - lam.sum(-1, keepdims=True), lam], -1).min(-1)
        best[s:s + 2000] = b.max(1)
    found = np.zeros(len(world), bool)
    found[flat] = True
    assert found[best > 1e-5].all()
    assert not found[best < -1e-5].any()
    rec = (m.nodes[m.tetrahedra[tet]] * bary[:, :, None]).sum(1)
    np.testing.assert_allclose(rec, world[flat], atol=1e-4)
    # fill: a linear potential is interpolated exactly, per-tet values copied
    v = 2.0 + m.nodes @ np.array([0.5, -1.0, 0.25])
    vals = np.column_stack([np.arange(m.n_tets, dtype=float), -np.arange(m.n_tets, dtype=float)])
    tg = np.zeros((len(world), 2), np.float32)
    vg = np.zeros(len(world), np.float32)
    fill_voxels(flat, tet, bary, m.tetrahedra, vals, v, tg, vg)
    np.testing.assert_allclose(vg[flat], 2.0 + world[flat] @ np.array([0.5, -1.0, 0.25]), atol=1e-4)
    np.testing.assert_array_equal(tg[flat], vals[tet].astype(np.float32))
    assert not vg[~found].any() and not tg[~found].any()
