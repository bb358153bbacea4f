"""Sliver repair by local node relocation (after CGAL's perturbation and exudation).

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
"""

from __future__ import annotations

import numpy as np

from navigator.meshing.quality import dihedral_angles, radius_ratios


def _incidence(tets: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    flat = tets.ravel()
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(n_nodes + 1))
    return order // 4, starts


def _surface_frames(nodes: np.ndarray, faces: np.ndarray, junction_cos: float) -> tuple[np.ndarray, np.ndarray]:
    """Per node: unit normal of the surfaces through it, and whether it may move (not a junction)."""
    n = len(nodes)
    p = nodes[faces]
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-300)
    acc = np.zeros((n, 3))
    for k in range(3):
        np.add.at(acc, faces[:, k], fn)
    normal = acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-300)
    worst = np.ones(n)
    for k in range(3):
        np.minimum.at(worst, faces[:, k], np.abs(np.einsum("ij,ij->i", fn, normal[faces[:, k]])))
    on = np.zeros(n, bool)
    on[faces.ravel()] = True
    return np.where(on[:, None], normal, 0.0), on & (worst < junction_cos)


def _signed_volumes(p: np.ndarray) -> np.ndarray:
    return np.einsum("...j,...j->...", np.cross(p[..., 1, :] - p[..., 0, :], p[..., 2, :] - p[..., 0, :]),
                     p[..., 3, :] - p[..., 0, :])


def improve_slivers(nodes: np.ndarray, tets: np.ndarray, surface_faces: np.ndarray, target_deg: float = 7.0,
                    passes: int = 4, junction_cos: float = 0.85, seed: int = 0) -> tuple[np.ndarray, int]:
    """Move nodes of tetrahedra with a dihedral angle below ``target_deg`` (see module doc).

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
    moved_nodes: set[int] = set()
    mind = dihedral_angles(nodes, tets).min(axis=1)
    it = 0
    while it <= passes:
        # Last pass: nodes on junction lines may move too, by at most 10% of their edges.
        junction_pass = it == passes
        it += 1
        fracs = fracs_junction if junction_pass else fracs_free
        bad = np.flatnonzero(mind < target_deg)
        if len(bad) == 0:
            break
        changed = False
        for t in bad[np.argsort(mind[bad])]:
            for v in tets[t]:
                if (fixed[v] and not junction_pass) or mind[t] >= target_deg:
                    continue
                inc = tet_of[starts[v]:starts[v + 1]]
                local = tets[inc]
                cur = mind[inc].min()
                d = dirs
                if normal[v].any() and not fixed[v]:  # surface node: tangential moves only
                    d = d - np.outer(d @ normal[v], normal[v])
                    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
                edge = np.linalg.norm(nodes[local] - nodes[v], axis=2)
                length = float(edge[edge > 0].mean())
                cand = nodes[v] + (d[:, None, :] * (fracs[None, :, None] * length)).reshape(-1, 3)
                # Coordinates of the incident tets for every candidate position.
                p = np.broadcast_to(nodes[local], (len(cand),) + local.shape + (3,)).copy()
                p[:, local == v] = cand[:, None, :]
                ok = (_signed_volumes(p) > 0).all(axis=1)
                if not ok.any():
                    continue
                # Never trade a sliver for a needle: keep the worst radius ratio around v.
                flat = p.reshape(-1, 4, 3)
                m = len(flat)
                rr = radius_ratios(flat.reshape(-1, 3), np.arange(4 * m).reshape(m, 4)).reshape(len(cand), len(local))
                rr_now = radius_ratios(nodes, local).min()
                ok &= rr.min(axis=1) >= min(rr_now, 0.1) * (0.5 if junction_pass else 1.0)
                if not ok.any():
                    continue
                c_idx = np.flatnonzero(ok)
                per_tet = _dihedral_from_points(p[c_idx].reshape(-1, 4, 3)).min(axis=1).reshape(len(c_idx), len(local))
                ang = per_tet.min(axis=1)
                best = int(np.argmax(ang))
                if ang[best] > cur + 1e-6:
                    nodes[v] = cand[c_idx[best]]
                    mind[inc] = per_tet[best]
                    moved_nodes.add(int(v))
                    changed = True
        if not changed and not junction_pass:
            it = passes  # nothing more to gain from free moves: go to the junction pass
    return nodes, len(moved_nodes)


def _dihedral_from_points(p: np.ndarray) -> np.ndarray:
    """(M, 6) dihedral angles of tetrahedra given as (M, 4, 3) corner coordinates, degrees."""
    m = len(p)
    return dihedral_angles(p.reshape(-1, 3), np.arange(4 * m).reshape(m, 4))
