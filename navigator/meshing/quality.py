"""Quality and validity checks for tetrahedral head meshes.

:func:`mesh_quality` measures element shape (dihedral angles in degrees, radius ratio
``3 r_in / R_circ`` which is 1 for a regular tetrahedron and 0 for a flat one), counts
inverted and degenerate elements and sums the volume of each tissue (mm^3).
:func:`check_mesh` turns those measurements plus conformity tests into a list of problems
(an empty list means the mesh passed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from navigator.core.mesh import Mesh
from navigator.core.tissues import SURFACE_OFFSET, tissue_name
from navigator.core.volume import Volume
from navigator.meshing.topology import TET_FACES, boundary_faces, face_table

#: Percentiles reported for the dihedral-angle and radius-ratio distributions.
PERCENTILES = (0.1, 1.0, 5.0, 50.0)
#: A tetrahedron is degenerate when |volume| < DEGENERATE_REL * (mean edge length)^3.
DEGENERATE_REL = 1e-8
#: Pairs of local nodes of the six edges, and the two faces (by opposite node) meeting there.
_EDGES = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
_EDGE_FACES = np.array([[2, 3], [1, 3], [1, 2], [0, 3], [0, 2], [0, 1]])


@dataclass
class MeshQuality:
    """Shape statistics of a tetrahedral mesh.

    Angles in degrees, volumes in mm^3. ``dihedral_percentiles`` and
    ``radius_ratio_percentiles`` map a percentile (e.g. "1.0") to the value below which that
    share of elements lies (for dihedral angles: the per-element minimum angle).
    """

    n_nodes: int
    n_tets: int
    n_triangles: int
    n_inverted: int
    n_degenerate: int
    min_dihedral_deg: float
    max_dihedral_deg: float
    dihedral_percentiles: dict[str, float]
    dihedral_histogram: dict[str, int]
    min_radius_ratio: float
    mean_radius_ratio: float
    radius_ratio_percentiles: dict[str, float]
    tissue_volumes_mm3: dict[int, float] = field(default_factory=dict)
    tissue_tet_counts: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["tissue_volumes_mm3"] = {str(k): v for k, v in self.tissue_volumes_mm3.items()}
        d["tissue_tet_counts"] = {str(k): v for k, v in self.tissue_tet_counts.items()}
        return d


def _face_normals(p: np.ndarray) -> np.ndarray:
    """(M, 4, 3) unnormalised outward face normals for (M, 4, 3) tetrahedron corners."""
    f = p[:, TET_FACES]  # (M, 4, 3 corners, 3 xyz)
    return np.cross(f[:, :, 1] - f[:, :, 0], f[:, :, 2] - f[:, :, 0])


def dihedral_angles(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    """(M, 6) interior dihedral angles of each tetrahedron at its six edges, degrees.

    Uses |signed volume| orientation-independently: for an inverted element the angles are
    those of its mirror image.
    """
    p = nodes[tets]
    n = _face_normals(p)
    n /= np.maximum(np.linalg.norm(n, axis=2, keepdims=True), 1e-300)
    a = n[:, _EDGE_FACES[:, 0]]
    b = n[:, _EDGE_FACES[:, 1]]
    cos = np.clip(np.einsum("mek,mek->me", a, b), -1.0, 1.0)
    # Interior dihedral = pi - angle between the outward normals (same for mirrored tets).
    return 180.0 - np.degrees(np.arccos(cos))


def radius_ratios(nodes: np.ndarray, tets: np.ndarray) -> np.ndarray:
    """(M,) normalised radius ratio 3 r_in / R_circ (1 regular, 0 flat)."""
    p = nodes[tets]
    a, b, c = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]
    vol6 = np.abs(np.einsum("ij,ij->i", np.cross(a, b), c))
    area2 = np.linalg.norm(_face_normals(p), axis=2).sum(axis=1)  # 2 * total face area
    r_in = vol6 / np.maximum(area2, 1e-300)  # 3V / A = (6V) / (2A)
    num = (
        (a * a).sum(1)[:, None] * np.cross(b, c)
        + (b * b).sum(1)[:, None] * np.cross(c, a)
        + (c * c).sum(1)[:, None] * np.cross(a, b)
    )
    r_circ = np.linalg.norm(num, axis=1) / np.maximum(2.0 * vol6, 1e-300)
    return np.where(vol6 > 0, 3.0 * r_in / np.maximum(r_circ, 1e-300), 0.0)


def tissue_volumes(mesh: Mesh) -> dict[int, float]:
    """Total |volume| of the tetrahedra of each tag, mm^3."""
    vol = np.abs(mesh.tet_volumes())
    return {int(t): float(vol[mesh.tet_tags == t].sum()) for t in np.unique(mesh.tet_tags)}


def mesh_quality(mesh: Mesh, chunk: int = 500_000) -> MeshQuality:
    """Measure element quality of ``mesh`` (see :class:`MeshQuality`)."""
    tets = mesh.tetrahedra
    m = len(tets)
    min_dih = np.empty(m)
    max_dih = np.empty(m)
    rr = np.empty(m)
    for s in range(0, m, chunk):
        sl = slice(s, min(s + chunk, m))
        d = dihedral_angles(mesh.nodes, tets[sl])
        min_dih[sl] = d.min(axis=1)
        max_dih[sl] = d.max(axis=1)
        rr[sl] = radius_ratios(mesh.nodes, tets[sl])
    vol = mesh.tet_volumes()
    p = mesh.nodes[tets]
    edge = np.linalg.norm(p[:, _EDGES[:, 0]] - p[:, _EDGES[:, 1]], axis=2).mean(axis=1) if m else np.zeros(0)
    degenerate = np.abs(vol) <= DEGENERATE_REL * edge**3
    inverted = (vol < 0) & ~degenerate
    bins = [0, 5, 10, 15, 20, 30, 40, 60, 180]
    hist, _ = np.histogram(min_dih, bins=bins) if m else (np.zeros(len(bins) - 1, int), None)
    pct = {str(q): float(np.percentile(min_dih, q)) if m else float("nan") for q in PERCENTILES}
    rpct = {str(q): float(np.percentile(rr, q)) if m else float("nan") for q in PERCENTILES}
    tags = mesh.tet_tags
    return MeshQuality(
        n_nodes=mesh.n_nodes,
        n_tets=m,
        n_triangles=len(mesh.triangles),
        n_inverted=int(inverted.sum()),
        n_degenerate=int(degenerate.sum()),
        min_dihedral_deg=float(min_dih.min()) if m else float("nan"),
        max_dihedral_deg=float(max_dih.max()) if m else float("nan"),
        dihedral_percentiles=pct,
        dihedral_histogram={f"{bins[i]}-{bins[i + 1]}": int(hist[i]) for i in range(len(bins) - 1)},
        min_radius_ratio=float(rr.min()) if m else float("nan"),
        mean_radius_ratio=float(rr.mean()) if m else float("nan"),
        radius_ratio_percentiles=rpct,
        tissue_volumes_mm3={int(t): float(np.abs(vol[tags == t]).sum()) for t in np.unique(tags)},
        tissue_tet_counts={int(t): int((tags == t).sum()) for t in np.unique(tags)},
    )


def label_volumes(labels: Volume) -> dict[int, float]:
    """Volume of each non-zero label of a label image, mm^3 (voxel count x voxel volume)."""
    voxel = abs(float(np.linalg.det(labels.affine[:3, :3])))
    values, counts = np.unique(np.asarray(labels.data), return_counts=True)
    return {int(v): float(c) * voxel for v, c in zip(values, counts) if v != 0}


def volume_errors(mesh: Mesh, labels: Volume) -> dict[int, tuple[float, float, float]]:
    """tag -> (label volume, mesh volume, relative error) for every tag in either, mm^3."""
    lv = label_volumes(labels)
    mv = tissue_volumes(mesh)
    out = {}
    for t in sorted(set(lv) | set(mv)):
        a, b = lv.get(t, 0.0), mv.get(t, 0.0)
        out[t] = (a, b, (b - a) / a if a > 0 else float("inf"))
    return out


def hanging_nodes(mesh: Mesh, boundary: np.ndarray | None = None, rel_tol: float = 1e-6) -> np.ndarray:
    """Indices of nodes that lie on a boundary face (or its edge) without being its corner.

    In a conforming mesh no node lies inside a face it does not belong to; a node that does
    (a "hanging" node) leaves a crack, which shows up as a pair of boundary faces inside the
    volume. ``boundary``: the boundary faces, if already computed.
    """
    from scipy.spatial import cKDTree

    if boundary is None:
        boundary, _ = boundary_faces(mesh.tetrahedra, mesh.n_nodes)
    if len(boundary) == 0:
        return np.zeros(0, dtype=np.int64)
    bnodes = np.unique(boundary)
    tree = cKDTree(mesh.nodes[bnodes])
    p = mesh.nodes[boundary]
    centre = p.mean(axis=1)
    radius = np.linalg.norm(p - centre[:, None], axis=2).max(axis=1)
    scale = float(radius.mean())
    cand = tree.query_ball_point(centre, radius * (1 + 1e-9) + rel_tol * scale, return_sorted=False)
    lengths = np.fromiter((len(c) for c in cand), dtype=np.int64, count=len(cand))
    many = np.flatnonzero(lengths > 3)  # a face's own corners are always candidates
    if len(many) == 0:
        return np.zeros(0, dtype=np.int64)
    fidx = np.repeat(many, lengths[many])
    nidx = bnodes[np.concatenate([np.asarray(cand[i], dtype=np.int64) for i in many])]
    own = (nidx == boundary[fidx, 0]) | (nidx == boundary[fidx, 1]) | (nidx == boundary[fidx, 2])
    fidx, nidx = fidx[~own], nidx[~own]
    e1 = p[fidx, 1] - p[fidx, 0]
    e2 = p[fidx, 2] - p[fidx, 0]
    nrm = np.cross(e1, e2)
    nn = np.sqrt(np.einsum("ij,ij->i", nrm, nrm))
    q = mesh.nodes[nidx] - p[fidx, 0]
    dist = np.abs(np.einsum("ij,ij->i", q, nrm)) / np.maximum(nn, 1e-300)
    on_plane = (dist <= rel_tol * scale) & (nn > 0)
    e1, e2, q, nidx = e1[on_plane], e2[on_plane], q[on_plane], nidx[on_plane]
    d00, d01, d11 = (e1 * e1).sum(1), (e1 * e2).sum(1), (e2 * e2).sum(1)
    d20, d21 = (q * e1).sum(1), (q * e2).sum(1)
    den = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    u = 1 - v - w
    tol = 1e-9
    inside = (u >= -tol) & (v >= -tol) & (w >= -tol)
    return np.unique(nidx[inside])


def check_mesh(
    mesh: Mesh,
    labels: Volume | None = None,
    *,
    min_dihedral_deg: float = 5.0,
    volume_tolerance: float = 0.05,
    quality: MeshQuality | None = None,
) -> list[str]:
    """Problems found in ``mesh``; an empty list means it passed every check.

    Checks: no inverted or degenerate tetrahedra; minimum dihedral angle >= ``min_dihedral_deg``;
    conformity (every face held by at most two tetrahedra, no duplicate nodes, no hanging
    nodes, every node used by a tetrahedron); surface triangles are faces of the mesh with tags
    >= 1000; and, with ``labels``, each tissue's mesh volume within ``volume_tolerance``
    (relative) of its label volume.
    """
    from scipy.spatial import cKDTree

    problems: list[str] = []
    if mesh.n_tets == 0:
        return ["mesh has no tetrahedra"]
    q = quality or mesh_quality(mesh)
    if q.n_inverted:
        problems.append(f"{q.n_inverted} inverted tetrahedra (negative volume)")
    if q.n_degenerate:
        problems.append(f"{q.n_degenerate} degenerate (flat) tetrahedra")
    if not q.min_dihedral_deg >= min_dihedral_deg:
        problems.append(f"minimum dihedral angle {q.min_dihedral_deg:.2f} deg < {min_dihedral_deg} deg")

    tets = mesh.tetrahedra
    if tets.min() < 0 or tets.max() >= mesh.n_nodes:
        return problems + ["tetrahedra reference nodes that do not exist"]
    ft = face_table(tets, mesh.n_nodes)
    over = int((ft.count > 2).sum())
    if over:
        problems.append(f"{over} faces shared by more than two tetrahedra (overlapping elements)")
    unused = mesh.n_nodes - len(np.unique(tets))
    if unused:
        problems.append(f"{unused} nodes belong to no tetrahedron")
    extent = float(np.ptp(mesh.nodes, axis=0).max()) if mesh.n_nodes else 0.0
    pairs = cKDTree(mesh.nodes).query_pairs(r=max(extent, 1.0) * 1e-9, output_type="ndarray")
    if len(pairs):
        problems.append(f"{len(pairs)} pairs of duplicate nodes (coincident coordinates)")
    bnd = ft.faces[ft.count == 1]
    hang = hanging_nodes(mesh, bnd)
    if len(hang):
        problems.append(f"{len(hang)} hanging nodes (lying on a face they do not belong to)")

    if len(mesh.triangles):
        from navigator.meshing.topology import _face_keys

        fkeys = np.sort(_face_keys(np.sort(ft.faces, axis=1), mesh.n_nodes))
        tkeys = _face_keys(np.sort(mesh.triangles, axis=1), mesh.n_nodes)
        pos = np.clip(np.searchsorted(fkeys, tkeys), 0, len(fkeys) - 1)
        missing = int((fkeys[pos] != tkeys).sum())
        if missing:
            problems.append(f"{missing} surface triangles are not faces of any tetrahedron")
        bad = int((mesh.triangle_tags < SURFACE_OFFSET).sum())
        if bad:
            problems.append(f"{bad} surface triangles have tags below {SURFACE_OFFSET}")

    if labels is not None:
        for tag, (lv, mv, err) in volume_errors(mesh, labels).items():
            if not abs(err) <= volume_tolerance:
                problems.append(
                    f"tissue {tag} ({tissue_name(tag)}): mesh volume {mv:.0f} mm^3 vs label volume "
                    f"{lv:.0f} mm^3 ({100 * err:+.1f}%, allowed {100 * volume_tolerance:.0f}%)"
                )
    return problems
