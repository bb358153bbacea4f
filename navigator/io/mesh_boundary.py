"""Boundary faces of tetrahedral meshes: tissue interface triangles and the outer skin.

All functions take a :class:`~navigator.core.mesh.Mesh` (nodes in world RAS mm, 0-based
connectivity) and return 0-based triangle arrays; nothing here reads or writes files.

Tag convention (SimNIBS): the triangles of the interface between two tissues carry
``1000 + inner tissue``, where "inner" follows the SimNIBS nesting order
(:data:`SIMNIBS_HIERARCHY`: WM inside GM inside blood/CSF inside bone inside scalp);
faces on the outside of the mesh carry ``1000 + tissue``. So a concentric 3-sphere model
with volumes 3, 4, 5 gets the three spheres as surfaces 1003, 1004, 1005, like SimNIBS's
sphere models, and a head gets 1001 = white surface, 1002 = pial surface, 1005 = skin.
"""

from __future__ import annotations

import numpy as np

from navigator.core.mesh import Mesh
from navigator.core.surface import Surface
from navigator.core.tissues import SURFACE_OFFSET

#: SimNIBS surface hierarchy, innermost first (used by charm to give each interface one tag).
SIMNIBS_HIERARCHY: tuple[int, ...] = (1, 2, 9, 3, 4, 8, 7, 6, 10, 5)

# Faces of tetrahedron (v0, v1, v2, v3), each listed opposite vertex k = 0..3, wound so the
# normal points away from vertex k for a positively oriented tetrahedron.
_TET_FACES = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]])


def face_keys(faces: np.ndarray, n_nodes: int) -> np.ndarray:
    """One int64 key per triangle, equal for triangles with the same three nodes (any order).

    Uses ``(a * n + b) * n + c`` of the sorted node indices when that fits in int64
    (n < 2,097,152), else a dense renumbering of the unique sorted rows.
    """
    s = np.sort(np.asarray(faces, dtype=np.int64), axis=1)
    if n_nodes < 2_097_152:
        n = np.int64(max(n_nodes, 1))
        return (s[:, 0] * n + s[:, 1]) * n + s[:, 2]
    _, inverse = np.unique(s, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def _all_faces(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    """(4M, 3) faces (outward for positive tets) and (4M,) index of the owning tetrahedron."""
    tets = mesh.tetrahedra
    faces = tets[:, _TET_FACES].reshape(-1, 3)
    owner = np.repeat(np.arange(len(tets)), 4)
    return faces, owner


def _orient_outward(mesh: Mesh, faces: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """Flip faces whose normal points toward the owning tetrahedron's fourth vertex."""
    if len(faces) == 0:
        return faces
    p = mesh.nodes[faces]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    centroid_tet = mesh.nodes[mesh.tetrahedra[owner]].mean(axis=1)
    inward = np.einsum("ij,ij->i", normal, centroid_tet - p.mean(axis=1)) > 0
    out = faces.copy()
    out[inward] = out[inward][:, [0, 2, 1]]
    return out


def _rank(tags: np.ndarray, hierarchy: tuple[int, ...]) -> np.ndarray:
    """Nesting rank of each tag: position in ``hierarchy``; unknown tags after all, by value."""
    tags = np.asarray(tags, dtype=np.int64)
    rank = len(hierarchy) + tags.astype(np.float64)  # unknown: after known tags, ordered by tag
    for i, t in enumerate(hierarchy):
        rank[tags == t] = i
    return rank


def boundary_triangles(mesh: Mesh, hierarchy: tuple[int, ...] = SIMNIBS_HIERARCHY) -> tuple[np.ndarray, np.ndarray]:
    """Interface and outer-boundary triangles of a tetrahedral mesh, SimNIBS-tagged.

    Every face between tetrahedra of different tags and every face on the mesh's outside
    becomes one triangle. An interface face is tagged ``1000 + inner`` (the tag earlier in
    ``hierarchy``; tags not in it rank after all listed ones, smaller tag first) and oriented
    with its normal pointing out of the inner tissue; an outside face is tagged
    ``1000 + tissue`` and points out of the mesh.

    Returns:
        triangles: (K, 3) int64 node indices; tags: (K,) int32.
    """
    if mesh.n_tets == 0:
        return np.zeros((0, 3), np.int64), np.zeros(0, np.int32)
    faces, owner = _all_faces(mesh)
    keys = face_keys(faces, mesh.n_nodes)
    order = np.argsort(keys, kind="stable")
    ks = keys[order]
    same_next = np.zeros(len(ks), bool)
    same_next[:-1] = ks[1:] == ks[:-1]
    same_prev = np.zeros(len(ks), bool)
    same_prev[1:] = same_next[:-1]
    single = order[~same_next & ~same_prev]
    # pairs: the first of two equal keys (faces shared by 3+ tets are non-manifold; first two used)
    first = np.flatnonzero(same_next & ~same_prev)
    a, b = order[first], order[first + 1]
    tag = mesh.tet_tags
    ta, tb = tag[owner[a]], tag[owner[b]]
    differ = ta != tb
    a, b, ta, tb = a[differ], b[differ], ta[differ], tb[differ]
    a_inner = _rank(ta, hierarchy) <= _rank(tb, hierarchy)
    inner_face = np.where(a_inner, a, b)
    inner_tag = np.where(a_inner, ta, tb)

    sel = np.concatenate([single, inner_face])
    tags = np.concatenate([tag[owner[single]], inner_tag]).astype(np.int32) + SURFACE_OFFSET
    tris = _orient_outward(mesh, faces[sel], owner[sel])
    # deterministic order: by tag, then by position in the tetrahedron list
    o = np.lexsort((sel, tags))
    return tris[o], tags[o]


def outer_boundary(mesh: Mesh) -> np.ndarray:
    """(K, 3) faces on the outside of the tetrahedral mesh, oriented outward (any tag)."""
    if mesh.n_tets == 0:
        return np.zeros((0, 3), np.int64)
    faces, owner = _all_faces(mesh)
    keys = face_keys(faces, mesh.n_nodes)
    _, idx, counts = np.unique(keys, return_index=True, return_counts=True)
    single = np.sort(idx[counts == 1])
    return _orient_outward(mesh, faces[single], owner[single])


def outer_surface(mesh: Mesh) -> Surface:
    """Outer boundary of a tetrahedral mesh as a surface with outward normals."""
    faces = outer_boundary(mesh)
    used, inv = np.unique(faces, return_inverse=True)
    surf = Surface(mesh.nodes[used], inv.reshape(-1, 3))
    # orient outwards (signed volume positive)
    p = surf.vertices[surf.faces]
    vol = np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum()
    if vol < 0:
        surf = Surface(surf.vertices, surf.faces[:, ::-1])
    return surf


def largest_component(faces: np.ndarray, n_nodes: int) -> np.ndarray:
    """The faces of the largest connected piece (faces sharing a vertex are connected)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(faces) == 0:
        return faces
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n_nodes, n_nodes))
    _, label = connected_components(graph, directed=False)
    face_label = label[faces[:, 0]]
    best = np.bincount(face_label).argmax()
    return faces[face_label == best]


def adjacent_tets(mesh: Mesh) -> np.ndarray:
    """For each triangle of ``mesh``, the index of a tetrahedron it is a face of, or -1.

    A tetrahedron of the tissue the triangle bounds (``triangle tag - 1000``) is preferred;
    otherwise any tetrahedron sharing the face.
    """
    k = len(mesh.triangles)
    out = np.full(k, -1, np.int64)
    if k == 0 or mesh.n_tets == 0:
        return out
    # only tetrahedra with at least three nodes on the triangles can share a face with one
    on_surface = np.zeros(mesh.n_nodes, bool)
    on_surface[mesh.triangles] = True
    cand = np.flatnonzero(on_surface[mesh.tetrahedra].sum(axis=1) >= 3)
    faces = mesh.tetrahedra[cand][:, _TET_FACES].reshape(-1, 3)
    owner = np.repeat(cand, 4)
    if mesh.n_nodes < 2_097_152:
        tri_keys = face_keys(mesh.triangles, mesh.n_nodes)
        tet_keys = face_keys(faces, mesh.n_nodes)
    else:  # keys must be computed jointly for the renumbering to agree
        both = face_keys(np.concatenate([mesh.triangles, faces]), mesh.n_nodes)
        tri_keys, tet_keys = both[:k], both[k:]
    order = np.argsort(tri_keys)
    sorted_keys = tri_keys[order]
    pos = np.searchsorted(sorted_keys, tet_keys)
    pos = np.minimum(pos, k - 1)
    hit = sorted_keys[pos] == tet_keys
    # several triangles may share a key (duplicates); handle each run of equal keys
    tri_idx = order[pos[hit]]
    tet_idx = owner[hit]
    out[tri_idx] = tet_idx  # any adjacent tetrahedron
    pref = mesh.tet_tags[tet_idx] == mesh.triangle_tags[tri_idx] - SURFACE_OFFSET
    out[tri_idx[pref]] = tet_idx[pref]
    # duplicate triangles (same nodes) after the first in sorted order: resolve by key
    dup = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1
    if len(dup):
        for j in dup:  # rare: duplicated surface triangles
            i_first = order[np.searchsorted(sorted_keys, sorted_keys[j])]
            cand = owner[tet_keys == sorted_keys[j]]
            tri = order[j]
            good = cand[mesh.tet_tags[cand] == mesh.triangle_tags[tri] - SURFACE_OFFSET]
            out[tri] = good[0] if len(good) else (cand[0] if len(cand) else out[i_first])
    return out
