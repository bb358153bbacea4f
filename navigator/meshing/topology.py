"""Face topology of tetrahedral meshes: shared faces, boundaries, interfaces between tissues.

Conventions: a tetrahedron (a, b, c, d) is positively oriented when
``det[b - a, c - a, d - a] > 0``. For such a tetrahedron the faces in :data:`TET_FACES`
(face ``i`` is opposite node ``i``) are counter-clockwise seen from outside, i.e. their
right-hand normals point out of the tetrahedron.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Local node indices of the four faces; face i is opposite local node i; outward for
#: positively oriented tetrahedra.
TET_FACES = np.array([[1, 2, 3], [0, 3, 2], [0, 1, 3], [0, 2, 1]], dtype=np.int64)


@dataclass
class FaceTable:
    """Every distinct face of a tetrahedral mesh and the tetrahedra on its sides.

    Attributes:
        faces: (F, 3) node indices, oriented outward from the tetrahedron ``tet[:, 0]``.
        tet: (F, 2) index of the tetrahedra sharing each face; ``tet[:, 1] == -1`` for a
            face on the boundary of the mesh.
        count: (F,) how many tetrahedra hold the face (1 boundary, 2 interior; more means
            the mesh is not conforming).
    """

    faces: np.ndarray
    tet: np.ndarray
    count: np.ndarray


def _face_keys(sorted_faces: np.ndarray, n_nodes: int) -> np.ndarray:
    """One sortable key per face (rows of node indices sorted ascending)."""
    if n_nodes < 2**21:
        s = sorted_faces.astype(np.int64)
        return (s[:, 0] << 42) | (s[:, 1] << 21) | s[:, 2]
    # Fallback for very large meshes: a structured view compares rows lexicographically.
    s = np.ascontiguousarray(sorted_faces.astype(np.int64))
    return s.view([("a", np.int64), ("b", np.int64), ("c", np.int64)]).reshape(-1)


def face_table(tetrahedra: np.ndarray, n_nodes: int | None = None) -> FaceTable:
    """Build the :class:`FaceTable` of ``tetrahedra`` ((M, 4) node indices, positively oriented).

    Faces come in ascending order of their sorted node triple; of a shared face, ``tet[:, 0]``
    is the tetrahedron listed first.
    """
    from navigator.meshing._kernels import face_table_kernel

    tets = np.ascontiguousarray(np.asarray(tetrahedra, dtype=np.int64).reshape(-1, 4))
    m = len(tets)
    if n_nodes is None:
        n_nodes = int(tets.max()) + 1 if m else 0
    if m == 0:
        return FaceTable(faces=np.zeros((0, 3), np.int64), tet=np.zeros((0, 2), np.int64),
                         count=np.zeros(0, np.int64))
    n_nodes = max(int(n_nodes), int(tets.max()) + 1)
    faces, tet, count = face_table_kernel(tets, n_nodes)
    return FaceTable(faces=faces, tet=tet, count=count)


def subset_face_table(ft: FaceTable, tetrahedra: np.ndarray, keep: np.ndarray) -> FaceTable:
    """The face table of ``tetrahedra[keep]`` derived from ``ft``, the table of ``tetrahedra``.

    Same result as ``face_table(tetrahedra[keep])`` (tetrahedra renumbered in kept order) without
    sorting the faces again. Falls back to :func:`face_table` for non-conforming meshes.
    """
    keep = np.asarray(keep, bool)
    if ft.count.max(initial=0) > 2:
        return face_table(tetrahedra[keep])
    new_id = np.cumsum(keep) - 1
    t0, t1 = ft.tet[:, 0], ft.tet[:, 1]
    a0 = keep[t0]
    a1 = (t1 >= 0) & keep[np.maximum(t1, 0)]
    live = a0 | a1
    faces = ft.faces.copy()
    # Where the first tetrahedron goes, the face is seen from the second one.
    sw = np.flatnonzero(~a0 & a1)
    if len(sw):
        tt = tetrahedra[t1[sw]]
        missing = ~((tt[:, :, None] == ft.faces[sw][:, None, :]).any(axis=2))  # the node opposite the face
        j = np.argmax(missing, axis=1)
        faces[sw] = tt[np.arange(len(sw))[:, None], TET_FACES[j]]
    first = np.where(a0, t0, t1)
    second = np.where(a0 & a1, t1, -1)
    tet = np.stack([new_id[first], np.where(second >= 0, new_id[np.maximum(second, 0)], -1)], axis=1)
    count = a0.astype(np.int64) + a1
    return FaceTable(faces=faces[live], tet=tet[live], count=count[live])


def boundary_faces(tetrahedra: np.ndarray, n_nodes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Faces held by exactly one tetrahedron, oriented outward, and that tetrahedron's index."""
    ft = face_table(tetrahedra, n_nodes)
    b = ft.count == 1
    return ft.faces[b], ft.tet[b, 0]


def region_boundary(tetrahedra: np.ndarray, tags: np.ndarray, region: set[int] | list[int]) -> np.ndarray:
    """Outward-oriented boundary triangles of the union of tetrahedra whose tag is in ``region``."""
    mask = np.isin(tags, list(region))
    faces, _ = boundary_faces(tetrahedra[mask])
    return faces


def interfaces(tetrahedra: np.ndarray, tags: np.ndarray, ft: FaceTable | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All faces where the tag changes (including the mesh boundary).

    Returns ``(faces, tag_in, tag_out)``: faces oriented outward from the side with
    ``tag_in``; ``tag_out`` is the tag on the other side, 0 on the mesh boundary.
    ``ft``: the face table of ``tetrahedra`` if already computed.
    """
    ft = ft if ft is not None else face_table(tetrahedra)
    t_in = tags[ft.tet[:, 0]]
    t_out = np.where(ft.tet[:, 1] >= 0, tags[np.maximum(ft.tet[:, 1], 0)], 0)
    keep = t_in != t_out
    return ft.faces[keep], t_in[keep].astype(np.int32), t_out[keep].astype(np.int32)


def connected_face_components(faces: np.ndarray) -> np.ndarray:
    """Component label per triangle; triangles are connected when they share an edge."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = np.asarray(faces, dtype=np.int64)
    n = len(f)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    edges.sort(axis=1)
    owner = np.tile(np.arange(n), 3)
    nn = int(f.max()) + 1
    key = edges[:, 0] * nn + edges[:, 1]
    order = np.argsort(key, kind="stable")
    ks = key[order]
    same = ks[1:] == ks[:-1]
    a = owner[order[:-1][same]]
    b = owner[order[1:][same]]
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    return connected_components(g, directed=False)[1]


def tet_components(tetrahedra: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Component label per tetrahedron (connected through shared faces); -1 outside ``mask``."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    tets = np.asarray(tetrahedra, dtype=np.int64)
    sel = np.flatnonzero(mask) if mask is not None else np.arange(len(tets))
    out = np.full(len(tets), -1, dtype=np.int64)
    if len(sel) == 0:
        return out
    ft = face_table(tets[sel])
    inner = ft.tet[:, 1] >= 0
    a, b = ft.tet[inner, 0], ft.tet[inner, 1]
    n = len(sel)
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    out[sel] = connected_components(g, directed=False)[1]
    return out


def enclosed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by a closed triangle surface (positive if normals point out), mm^3."""
    p = vertices[faces]
    return float(np.einsum("ij,ij->i", p[:, 0], np.cross(p[:, 1], p[:, 2])).sum() / 6.0)


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop unreferenced vertices; returns (vertices, renumbered faces)."""
    used, inv = np.unique(faces, return_inverse=True)
    return vertices[used], inv.reshape(-1, 3)
