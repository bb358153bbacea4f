"""Validation of imported tetrahedral head meshes (before anything is simulated on them).

:func:`validate_mesh` checks, in this order, and raises a one-line :class:`InputError` naming
the file and the first offending node or element (with the ids the file uses):

1. node coordinates are finite;
2. every tetrahedron (and surface triangle) has a tissue tag > 0;
3. no tetrahedron has zero volume: ``|6 V| <= ZERO_VOLUME_RTOL * (longest edge)^3``
   (four nodes in a plane, repeated nodes);
4. orientation repair: tetrahedra with negative signed volume get two nodes swapped (gmsh and
   SimNIBS order nodes for positive volume; other writers differ) -- logged, not an error;
5. after the repair no element is inverted: the two tetrahedra sharing a face must lie on
   opposite sides of it (two on the same side overlap: a folded, i.e. inverted, element) and
   no face is shared by more than two tetrahedra.

Coordinates are in the file's units (SimNIBS: world RAS mm); the checks are scale-free.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from navigator.core.errors import InputError
from navigator.core.mesh import Mesh

log = logging.getLogger("navigator")

#: |6 V| below this times the cube of the longest edge counts as zero volume (a flat tetrahedron).
ZERO_VOLUME_RTOL = 1e-10


def _ids(ids: np.ndarray | None, n: int) -> np.ndarray:
    return np.arange(1, n + 1) if ids is None else np.asarray(ids)


def _nodes_text(tet: np.ndarray, node_ids: np.ndarray) -> str:
    return " ".join(str(int(node_ids[i])) for i in tet)


def _six_volumes(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    p0, p1, p2, p3 = (np.take(nodes, np.ascontiguousarray(tets[:, k]), axis=0) for k in range(4))
    return np.einsum("ij,ij->i", np.cross(p1 - p0, p2 - p0), p3 - p0)


def _longest_edges(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    longest = np.zeros(len(tets))
    for a, b in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)):
        d = np.take(nodes, np.ascontiguousarray(tets[:, a]), axis=0) - np.take(nodes, np.ascontiguousarray(tets[:, b]), axis=0)
        np.maximum(longest, np.sqrt(np.einsum("ij,ij->i", d, d)), out=longest)
    return longest


def _check_faces(nodes: np.ndarray, tets: np.ndarray, path: Path, node_ids: np.ndarray,
                 tet_ids: np.ndarray) -> None:
    """Every interior face: exactly two tetrahedra, on opposite sides (positively oriented tets)."""
    # row 4 t + k of ``faces`` is the face of tetrahedron t opposite its node k
    faces = tets[:, [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]].reshape(-1, 3)
    faces.sort(axis=1)
    if len(nodes) < 1 << 21:  # one int64 key per face: a single sort instead of a 3-key lexsort
        key = (faces[:, 0] << 42) | (faces[:, 1] << 21) | faces[:, 2]
        order = np.argsort(key)
        sk = key[order]
        same = sk[1:] == sk[:-1]
    else:
        order = np.lexsort((faces[:, 2], faces[:, 1], faces[:, 0]))
        fs = faces[order]
        same = np.all(fs[1:] == fs[:-1], axis=1)
    if not same.any():
        return
    pos = np.nonzero(same)[0]
    # faces used three or more times
    triple = np.nonzero(same[1:] & same[:-1])[0]
    if triple.size:
        i = int(triple[0])
        owners = sorted({int(tet_ids[order[j] // 4]) for j in range(i, i + 3)})
        raise InputError(path, f"face (nodes {_nodes_text(faces[order[i]], node_ids)}) is shared by more than two "
                               f"tetrahedra ({', '.join(map(str, owners))}): overlapping or duplicated elements")
    first = order[pos]
    second = order[pos + 1]
    shared_faces = faces[first]
    a, b, c = (np.take(nodes, np.ascontiguousarray(shared_faces[:, k]), axis=0) for k in range(3))
    normal = np.cross(b - a, c - a)
    d1 = np.take(nodes, tets.reshape(-1)[first], axis=0)  # node 4 t + k: the one opposite face 4 t + k
    d2 = np.take(nodes, tets.reshape(-1)[second], axis=0)
    s1 = np.einsum("ij,ij->i", normal, d1 - a)
    s2 = np.einsum("ij,ij->i", normal, d2 - a)
    bad = np.nonzero(s1 * s2 > 0)[0]
    if bad.size:
        k = int(bad[0])
        t1, t2 = int(first[k] // 4), int(second[k] // 4)
        raise InputError(
            path,
            f"tetrahedron {int(tet_ids[t2])} (nodes {_nodes_text(tets[t2], node_ids)}) is inverted: it "
            f"overlaps tetrahedron {int(tet_ids[t1])} (both lie on the same side of their shared face; "
            f"{bad.size} such face(s))",
        )


def validate_mesh(mesh: Mesh, path: str | Path, node_ids: np.ndarray | None = None,
                  tet_ids: np.ndarray | None = None, triangle_ids: np.ndarray | None = None) -> Mesh:
    """Check an imported mesh (see the module doc); returns it with tetrahedra oriented positively.

    ``node_ids``, ``tet_ids``, ``triangle_ids`` are the ids the file gives (for messages; default
    1-based positions). Raises InputError naming ``path`` and the first bad node or element.
    """
    path = Path(path)
    node_ids = _ids(node_ids, mesh.n_nodes)
    tet_ids = _ids(tet_ids, mesh.n_tets)
    triangle_ids = _ids(triangle_ids, len(mesh.triangles))
    if mesh.n_tets == 0:
        raise InputError(path, "mesh has no tetrahedra: a volume head mesh is needed")
    bad = np.nonzero(~np.isfinite(mesh.nodes).all(axis=1))[0]
    if bad.size:
        i = int(bad[0])
        xyz = ", ".join(f"{v:g}" for v in mesh.nodes[i])
        raise InputError(path, f"node {int(node_ids[i])} has non-finite coordinates ({xyz}); "
                               f"{bad.size} node(s) affected")
    tets = mesh.tetrahedra
    bad = np.nonzero(mesh.tet_tags <= 0)[0]
    if bad.size:
        i = int(bad[0])
        raise InputError(path, f"tetrahedron {int(tet_ids[i])} (nodes {_nodes_text(tets[i], node_ids)}) has no "
                               f"tissue tag (tag {int(mesh.tet_tags[i])}); {bad.size} of {mesh.n_tets} "
                               "tetrahedra untagged")
    bad = np.nonzero(mesh.triangle_tags <= 0)[0]
    if bad.size:
        i = int(bad[0])
        raise InputError(path, f"triangle {int(triangle_ids[i])} (nodes "
                               f"{_nodes_text(mesh.triangles[i], node_ids)}) has no surface tag "
                               f"(tag {int(mesh.triangle_tags[i])}); {bad.size} triangle(s) untagged")
    six_v = _six_volumes(mesh.nodes, tets)
    flat = np.abs(six_v) <= ZERO_VOLUME_RTOL * _longest_edges(mesh.nodes, tets) ** 3
    bad = np.nonzero(flat)[0]
    if bad.size:
        i = int(bad[0])
        raise InputError(path, f"tetrahedron {int(tet_ids[i])} (nodes {_nodes_text(tets[i], node_ids)}) has zero "
                               f"volume; {bad.size} degenerate tetrahedra")
    negative = six_v < 0
    if negative.any():
        tets = tets.copy()
        tets[negative] = tets[negative][:, [0, 2, 1, 3]]
        log.info("%s: %d of %d tetrahedra had negative orientation; node order repaired", path,
                 int(negative.sum()), len(tets))
    _check_faces(mesh.nodes, tets, path, node_ids, tet_ids)
    if not negative.any():
        return mesh
    return Mesh(nodes=mesh.nodes, tetrahedra=tets, tet_tags=mesh.tet_tags, triangles=mesh.triangles,
                triangle_tags=mesh.triangle_tags, node_data=mesh.node_data, tet_data=mesh.tet_data,
                triangle_data=mesh.triangle_data)
