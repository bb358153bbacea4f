"""Surfaces of a tetrahedral head mesh: scalp, pial (gm), white matter (wm), middle grey matter.

All surfaces are in the mesh's frame (world RAS mm) with outward-oriented faces
(counter-clockwise seen from outside):

* ``scalp``: the outer boundary of the head, i.e. of all tissue tetrahedra (tags < 100, so
  electrodes in SimNIBS meshes are ignored); only the outermost closed shell is kept, so the
  walls of internal air cavities are not part of it.
* ``gm``: the pial surface, boundary of the union of grey and white matter (tags 1, 2).
* ``wm``: the boundary of white matter (tag 1).
* ``middle_gm``: the surface halfway between ``wm`` and ``gm``: each ``wm`` vertex moved
  outward along its normal by half its distance to ``gm``, then Taubin-smoothed (same
  triangles as ``wm``). :func:`marching_tetrahedra` is available for exact level sets of
  node fields.

For ``gm`` and ``wm`` every closed shell enclosing a positive volume of at least 1% of the
largest one is kept (e.g. cerebrum and cerebellum); shells around holes (ventricles seen
from white matter) enclose negative volume and are dropped. The ``scalp``, ``gm`` and ``wm``
surfaces are faces of the mesh itself (not smoothed), so fields on them are exact.
Surfaces whose tissues are absent are not returned.
"""

from __future__ import annotations

import numpy as np

from navigator.core.mesh import Mesh
from navigator.core.surface import Surface
from navigator.core.tissues import GM, WM
from navigator.meshing.topology import compact, connected_face_components, enclosed_volume, region_boundary

#: Volume tags below this are tissues; 100-899 are electrodes in SimNIBS meshes.
_MAX_TISSUE_TAG = 100


def _shells(vertices: np.ndarray, faces: np.ndarray, keep: str, min_fraction: float = 0.01) -> np.ndarray:
    """Faces of the outer shells of a closed boundary (``keep`` = "largest" or "outer")."""
    if len(faces) == 0:
        return faces
    comp = connected_face_components(faces)
    n = comp.max() + 1
    vols = np.array([enclosed_volume(vertices, faces[comp == c]) for c in range(n)])
    if vols.max() <= 0:
        return faces[:0]
    if keep == "largest":
        sel = [int(np.argmax(vols))]
    else:
        sel = [c for c in range(n) if vols[c] > 0 and vols[c] >= min_fraction * vols.max()]
    return faces[np.isin(comp, sel)]


def region_surface(mesh: Mesh, tags: list[int] | set[int], keep: str = "outer") -> Surface | None:
    """Outward-oriented outer boundary of the tetrahedra with the given tags (None if absent).

    ``keep``: "largest" keeps only the shell enclosing the largest volume, "outer" every shell
    enclosing a positive volume of at least 1% of the largest.
    """
    mask = np.isin(mesh.tet_tags, list(tags))
    if not mask.any():
        return None
    faces = region_boundary(mesh.tetrahedra, mesh.tet_tags, list(tags))
    faces = _shells(mesh.nodes, faces, keep)
    if len(faces) == 0:
        return None
    v, f = compact(mesh.nodes, faces)
    return Surface(vertices=v, faces=f)


def _sample_surface(surf: Surface, level: int = 3) -> np.ndarray:
    """Points on the triangles on a barycentric grid (``level`` subdivisions per edge)."""
    pts = []
    p = surf.vertices[surf.faces]
    for i in range(level + 1):
        for j in range(level + 1 - i):
            k = level - i - j
            pts.append((i * p[:, 0] + j * p[:, 1] + k * p[:, 2]) / level)
    return np.unique(np.concatenate(pts + [surf.vertices]).round(6), axis=0)


def _adjacency(n: int, faces: np.ndarray):
    from scipy.sparse import coo_matrix

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.concatenate([e, e[:, ::-1]])
    a = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    a.data[:] = 1.0
    deg = np.asarray(a.sum(axis=1)).ravel()
    return a, np.maximum(deg, 1)


def taubin_smooth(vertices: np.ndarray, faces: np.ndarray, iterations: int = 10,
                  lam: float = 0.5, mu: float = -0.53) -> np.ndarray:
    """Taubin (lambda/mu) smoothing with the uniform Laplacian; returns new vertices (mm)."""
    v = np.array(vertices, dtype=np.float64)
    if len(faces) == 0:
        return v
    a, deg = _adjacency(len(v), faces)
    for _ in range(iterations):
        for w in (lam, mu):
            v = v + w * (a @ v / deg[:, None] - v)
    return v


def marching_tetrahedra(nodes: np.ndarray, tets: np.ndarray, values: np.ndarray, level: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Level set ``values == level`` of a piecewise-linear node field on tetrahedra.

    Returns (vertices, faces); faces are oriented so that normals point towards increasing
    ``values``; vertices on shared edges are shared (the surface is watertight where the
    level set is closed).
    """
    f = np.asarray(values, dtype=np.float64).copy()
    f[f == level] = level + 1e-9  # no vertex exactly on the level set
    below = f[tets] < level
    nb = below.sum(axis=1)
    cut = (nb > 0) & (nb < 4)
    t = tets[cut]
    b = below[cut]
    nb = nb[cut]
    out_edges = []  # (T, 3 or 4, 2) node pairs in cyclic order
    tris = []
    for k in (1, 3):
        sel = nb == k
        if not sel.any():
            continue
        tt, bb = t[sel], b[sel]
        odd = bb if k == 1 else ~bb  # the single node on its own side
        i_odd = np.argmax(odd, axis=1)
        others = np.array([[j for j in range(4) if j != i] for i in range(4)])[i_odd]
        o = tt[np.arange(len(tt)), i_odd]
        e = np.stack([np.stack([o, tt[np.arange(len(tt)), others[:, m]]], axis=1) for m in range(3)], axis=1)
        tris.append(e)
    sel = nb == 2
    if sel.any():
        tt, bb = t[sel], b[sel]
        order = np.argsort(~bb, axis=1, kind="stable")  # two below first, then two above
        s = np.take_along_axis(tt, order, axis=1)
        a0, a1, c0, c1 = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
        quad = [np.stack(x, axis=1) for x in ((a0, c0), (a0, c1), (a1, c1), (a1, c0))]
        out_edges.append(np.stack([quad[0], quad[1], quad[2]], axis=1))
        out_edges.append(np.stack([quad[0], quad[2], quad[3]], axis=1))
    tri_edges = np.concatenate(tris + out_edges) if (tris or out_edges) else np.zeros((0, 3, 2), np.int64)
    if len(tri_edges) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64)
    pairs = np.sort(tri_edges.reshape(-1, 2), axis=1)
    uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
    fa, fb = f[uniq[:, 0]], f[uniq[:, 1]]
    w = (level - fa) / (fb - fa)
    verts = nodes[uniq[:, 0]] + w[:, None] * (nodes[uniq[:, 1]] - nodes[uniq[:, 0]])
    faces = inv.reshape(-1, 3)
    # Orient along increasing values: compare each normal with low -> high direction of its edges.
    p = verts[faces]
    nrm = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    e = tri_edges
    lo = np.where(f[e[..., 0]] < f[e[..., 1]], e[..., 0], e[..., 1])
    hi = np.where(f[e[..., 0]] < f[e[..., 1]], e[..., 1], e[..., 0])
    up = (nodes[hi] - nodes[lo]).mean(axis=1)
    flip = np.einsum("ij,ij->i", nrm, up) < 0
    faces[flip] = faces[flip][:, ::-1]
    keep = np.linalg.norm(nrm, axis=1) > 0
    return verts, faces[keep]


def middle_surface(wm: Surface, gm: Surface, smooth_iterations: int = 5) -> Surface:
    """Mid-thickness grey-matter surface: ``wm`` vertices moved outward by half the thickness.

    Each white-matter vertex v moves along its outward normal n by ``d / 2``, where d is its
    distance to the pial surface ``gm`` (measured on a dense barycentric sampling of ``gm``);
    the result is Taubin-smoothed. It keeps the white surface's triangles and orientation.
    Where grey matter is absent (white matter touching CSF) d = 0 and the surfaces coincide.
    """
    from scipy.spatial import cKDTree

    d = cKDTree(_sample_surface(gm)).query(wm.vertices)[0]
    v = wm.vertices + 0.5 * d[:, None] * wm.vertex_normals()
    v = taubin_smooth(v, wm.faces, smooth_iterations)
    return Surface(vertices=v, faces=wm.faces.copy())


def extract_surfaces(mesh: Mesh, middle: bool = True) -> dict[str, Surface]:
    """Surfaces ``scalp``, ``gm``, ``wm`` and ``middle_gm`` of a head mesh (those that exist).

    Works on any tetrahedral mesh with SimNIBS volume tags (WM 1, GM 2, ...); see the module
    docstring for the definitions. Coordinates as in ``mesh`` (world RAS mm).
    """
    out: dict[str, Surface] = {}
    present = set(mesh.tissue_tags())
    tissue = [t for t in present if 0 < t < _MAX_TISSUE_TAG]
    if tissue:
        s = region_surface(mesh, tissue, keep="largest")
        if s is not None:
            out["scalp"] = s
    if present & {WM, GM}:
        s = region_surface(mesh, [WM, GM])
        if s is not None:
            out["gm"] = s
    if WM in present:
        s = region_surface(mesh, [WM])
        if s is not None:
            out["wm"] = s
    if middle and "gm" in out and "wm" in out and GM in present:
        out["middle_gm"] = middle_surface(out["wm"], out["gm"])
    return out
