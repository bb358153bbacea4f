"""Sliver repair by local node relocation (after CGAL's exudation).

CGAL cannot move vertices that lie on tissue interfaces, so slivers whose four nodes all sit
on interfaces survive exudation. Here each node of a bad tetrahedron may move a short
distance (a fraction of its incident edge lengths) to the candidate position that maximises
the smallest dihedral angle of all tetrahedra around it. Nodes on an interface or the outer
boundary move only within the local tangent plane of that surface (so the interface shape
changes by a second-order amount); nodes where surfaces meet at an angle (junction lines
between three tissues, corners) move only in a final pass, by at most 10% of their edge
lengths and in any direction. A move is accepted only if every incident
tetrahedron stays positively oriented, the worst radius ratio around the node does not drop
below min(its current value, 0.1) (half that in the junction pass), and the worst angle improves.
The loop is compiled (:func:`navigator.meshing._kernels.improve_slivers_kernel`).

Some slivers cannot be repaired that way: four nodes on one smooth interface, the element
lying flat on it (two of its faces on the interface). With ``floor_deg`` set, tetrahedra still
below that angle get a last pass in which their nodes may move in any direction, also off the
interface, by the smallest step (0.5-10% of the incident edge lengths, i.e. ~0.01-0.2 mm) that
lifts the worst angle around the node to ``floor_deg``; the interface moves locally by that
step. Only the few elements left below the floor take part.
"""

from __future__ import annotations

import numpy as np

from navigator.meshing._kernels import (
    improve_slivers_kernel,
    incidence_kernel,
    lift_slivers_kernel,
    surface_frames_kernel,
    tet_quality,
)


def _incidence(tets: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(tet_of, starts): the tetrahedra around node v are tet_of[starts[v]:starts[v + 1]]."""
    return incidence_kernel(np.ascontiguousarray(tets, np.int64), int(n_nodes))


def _surface_frames(nodes: np.ndarray, faces: np.ndarray,
                    junction_cos: float) -> tuple[np.ndarray, np.ndarray]:
    """Per node: unit normal of the surfaces through it (0 off the surfaces), and whether it lies
    on a junction (surfaces meeting at an angle: some face normal deviates from the node normal
    by more than acos(junction_cos))."""
    return surface_frames_kernel(np.asarray(nodes, float), np.ascontiguousarray(faces, np.int64),
                                 float(junction_cos))


def improve_slivers(nodes: np.ndarray, tets: np.ndarray, surface_faces: np.ndarray, target_deg: float = 7.0,
                    passes: int = 4, junction_cos: float = 0.85, seed: int = 0,
                    floor_deg: float = 0.0) -> tuple[np.ndarray, int]:
    """Move nodes of tetrahedra with a dihedral angle below ``target_deg`` (see module doc).

    With ``floor_deg > 0`` tetrahedra still below it afterwards get a last pass in which their
    nodes may also leave their interface (see module doc), by the smallest move that lifts them.

    Args:
        nodes: (N, 3) mm; tets: (M, 4) positively oriented; surface_faces: (K, 3) all interface
            and boundary triangles.
    Returns:
        (new nodes, number of nodes moved).
    """
    nodes = np.array(nodes, dtype=np.float64)
    tet_of, starts = _incidence(tets, len(nodes))
    normal, fixed = _surface_frames(nodes, surface_faces, junction_cos)
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(32, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    fracs_free = np.array([0.03, 0.08, 0.14, 0.2])
    fracs_junction = np.array([0.01, 0.025, 0.05, 0.1])
    tets = np.ascontiguousarray(tets, np.int64)
    mind = tet_quality(nodes, tets)[0]
    moved = improve_slivers_kernel(nodes, tets, tet_of, starts, np.ascontiguousarray(normal, float),
                                   np.ascontiguousarray(fixed, np.bool_), dirs, fracs_free, fracs_junction,
                                   float(target_deg), int(passes), mind)
    if floor_deg > 0 and mind.min(initial=np.inf) < floor_deg:
        fracs_lift = np.array([0.005, 0.01, 0.02, 0.04, 0.07, 0.1])
        moved |= lift_slivers_kernel(nodes, tets, tet_of, starts, dirs, fracs_lift, float(floor_deg), mind)
    return nodes, int(moved.sum())
