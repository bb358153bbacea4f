"""Concentric-sphere tetrahedral meshes (validation models), built with the gmsh Python API.

Coordinates in mm, centred at the origin. Volume tags are given per shell (innermost first);
the outer-surface triangles of shell k carry tag 1000 + tag_k, as in SimNIBS meshes.
"""

from __future__ import annotations

import ctypes
import signal
import threading

import numpy as np

from navigator.core.mesh import Mesh


def _set_sigpipe(disposition: object) -> None:
    """Set this process's SIGPIPE disposition (SIG_IGN / SIG_DFL / a Python handler)."""
    if not hasattr(signal, "SIGPIPE"):
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGPIPE, disposition)  # type: ignore[arg-type]
    elif disposition in (signal.SIG_IGN, signal.SIG_DFL):  # signal.signal works in the main thread only
        libc = ctypes.CDLL(None)
        libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.signal.restype = ctypes.c_void_p
        libc.signal(int(signal.SIGPIPE), int(disposition))  # type: ignore[call-overload]


def concentric_sphere_mesh(
    radii: tuple[float, ...] = (85.0, 90.0, 95.0),
    tags: tuple[int, ...] = (3, 4, 5),
    size: float = 6.0,
    size_min: float | None = None,
    refine_points: np.ndarray | None = None,
    refine_radius: float = 15.0,
    size_surface: float | None = None,
    grade_depth: float = 25.0,
    threads: int = 1,
) -> Mesh:
    """Tetrahedral mesh of nested spheres.

    Args:
        radii: increasing radii, mm. tags: volume tag of each shell (same length).
        size: target element edge length, mm (the shells are also capped at about their thickness).
        size_min: edge length near ``refine_points`` (default: ``size``).
        refine_points: (P, 3) points (mm) around which the mesh is refined to ``size_min``,
            growing linearly back to ``size`` over ``refine_radius`` mm (use at electrodes).
        size_surface: edge length in the outer shells and the outer ``grade_depth`` mm of the
            innermost sphere, growing linearly to ``size`` at the centre (default: ``size``).
        threads: gmsh HXT threads. The default 1 gives the same mesh on every run; HXT with
            several threads is not deterministic (node counts vary by ~1 % from run to run),
            so use more only where speed matters more than reproducibility (benchmarks).
    """
    import gmsh

    if len(radii) != len(tags) or list(radii) != sorted(radii):
        raise ValueError("radii must increase and match tags")
    # gmsh.initialize() resets SIGPIPE to "terminate". Python ignores it, so that a write to a
    # pipe whose reader died (a crashed child process) raises BrokenPipeError; left at the
    # default, such a write would kill this whole process (a GUI, a test run) without a word.
    sigpipe = signal.getsignal(signal.SIGPIPE) if hasattr(signal, "SIGPIPE") else None
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("spheres")
        occ = gmsh.model.occ
        balls = [occ.addSphere(0, 0, 0, r) for r in radii]
        occ.fragment([(3, balls[-1])], [(3, b) for b in balls[:-1]])
        occ.synchronize()
        # identify each fragment volume by its bounding radius
        vols = [e[1] for e in gmsh.model.getEntities(3)]
        vol_tag = {}
        for v in vols:
            xmin, _, _, xmax, _, _ = gmsh.model.getBoundingBox(3, v)
            r = 0.5 * (xmax - xmin)
            k = int(np.argmin([abs(r - R) for R in radii]))
            vol_tag[v] = tags[k]
        for t in set(vol_tag.values()):
            gmsh.model.addPhysicalGroup(3, [v for v in vols if vol_tag[v] == t], t)
        surfs = [e[1] for e in gmsh.model.getEntities(2)]
        for s in surfs:
            xmin, _, _, xmax, _, _ = gmsh.model.getBoundingBox(2, s)
            r = 0.5 * (xmax - xmin)
            k = int(np.argmin([abs(r - R) for R in radii]))
            gmsh.model.addPhysicalGroup(2, [s], 1000 + tags[k])
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.option.setNumber("Mesh.MeshSizeMin", min(size, size_min or size) * 0.5)
        gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
        gmsh.option.setNumber("Mesh.Algorithm3D", 10)  # HXT: fast, parallel
        gmsh.option.setNumber("General.NumThreads", max(1, int(threads)))
        fields = []
        if size_surface is not None and size_surface < size:
            r0 = radii[0] - grade_depth
            f = gmsh.model.mesh.field.add("MathEval")
            expr = (f"{size_surface} + ({size} - {size_surface}) * "
                    f"max(0, ({r0} - sqrt(x*x + y*y + z*z)) / {r0})")
            gmsh.model.mesh.field.setString(f, "F", expr)
            fields.append(f)
            gmsh.option.setNumber("Mesh.MeshSizeMin", size_surface * 0.5)
        if refine_points is not None and size_min is not None:
            pts = np.atleast_2d(refine_points)
            for p in pts:
                f = gmsh.model.mesh.field.add("Ball")
                gmsh.model.mesh.field.setNumber(f, "Radius", 0.0)
                gmsh.model.mesh.field.setNumber(f, "XCenter", float(p[0]))
                gmsh.model.mesh.field.setNumber(f, "YCenter", float(p[1]))
                gmsh.model.mesh.field.setNumber(f, "ZCenter", float(p[2]))
                gmsh.model.mesh.field.setNumber(f, "VIn", size_min)
                gmsh.model.mesh.field.setNumber(f, "VOut", size)
                gmsh.model.mesh.field.setNumber(f, "Thickness", refine_radius)
                fields.append(f)
        if fields:
            fmin = gmsh.model.mesh.field.add("Min")
            gmsh.model.mesh.field.setNumbers(fmin, "FieldsList", fields)
            gmsh.model.mesh.field.setAsBackgroundMesh(fmin)
        gmsh.model.mesh.generate(3)
        node_tags, coords, _ = gmsh.model.mesh.getNodes()
        order = np.argsort(node_tags)
        node_tags = node_tags[order]
        nodes = coords.reshape(-1, 3)[order]
        index = np.full(int(node_tags.max()) + 1, -1, np.int64)
        index[node_tags.astype(np.int64)] = np.arange(len(node_tags))
        tets, tet_tags, tris, tri_tags = [], [], [], []
        for dim, phys in gmsh.model.getPhysicalGroups():
            for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, phys):
                etypes, _, enodes = gmsh.model.mesh.getElements(dim, ent)
                for et, en in zip(etypes, enodes):
                    if dim == 3 and et == 4:
                        conn = index[np.asarray(en, np.int64)].reshape(-1, 4)
                        tets.append(conn)
                        tet_tags.append(np.full(len(conn), phys))
                    elif dim == 2 and et == 2:
                        conn = index[np.asarray(en, np.int64)].reshape(-1, 3)
                        tris.append(conn)
                        tri_tags.append(np.full(len(conn), phys))
    finally:
        gmsh.finalize()
        if sigpipe is not None:
            _set_sigpipe(sigpipe)
    tets_a = np.concatenate(tets)
    used = np.unique(np.concatenate([tets_a.ravel()] + [t.ravel() for t in tris]))
    remap = np.full(len(nodes), -1, np.int64)
    remap[used] = np.arange(len(used))
    tets_a = remap[tets_a]
    # orient tetrahedra positively
    p = nodes[used][tets_a]
    neg = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0]) < 0
    tets_a[neg] = tets_a[neg][:, [0, 2, 1, 3]]
    return Mesh(
        nodes=nodes[used],
        tetrahedra=tets_a,
        tet_tags=np.concatenate(tet_tags),
        triangles=remap[np.concatenate(tris)] if tris else np.zeros((0, 3), np.int64),
        triangle_tags=np.concatenate(tri_tags) if tri_tags else np.zeros(0, np.int32),
    )


def structured_ball_mesh(
    spacing: float = 2.0,
    radii: tuple[float, ...] = (85.0, 90.0, 95.0),
    tags: tuple[int, ...] = (3, 4, 5),
) -> Mesh:
    """Fast "head-like" mesh: a cubic grid split into 6 tetrahedra per cube (Kuhn split,
    conforming), keeping tets whose centroid lies inside the outer radius; each tet is tagged
    by the shell its centroid falls in. Interfaces are staircases, so use it for performance
    and qualitative tests, not for accuracy (use :func:`concentric_sphere_mesh`).
    """
    R = radii[-1]
    n = int(np.ceil(2 * R / spacing)) + 2
    ax = (np.arange(n) - (n - 1) / 2) * spacing
    X, Y, Z = np.meshgrid(ax, ax, ax, indexing="ij")
    nodes = np.stack([X.ravel(), Y.ravel(), Z.ravel()], axis=1)
    idx = np.arange(n**3).reshape(n, n, n)
    c = idx[:-1, :-1, :-1].ravel()
    sx, sy, sz = n * n, n, 1
    v = {(i, j, k): c + i * sx + j * sy + k * sz for i in (0, 1) for j in (0, 1) for k in (0, 1)}
    # Kuhn: the 6 monotone paths from (0,0,0) to (1,1,1)
    paths = [((1, 0, 0), (1, 1, 0)), ((1, 0, 0), (1, 0, 1)), ((0, 1, 0), (1, 1, 0)),
             ((0, 1, 0), (0, 1, 1)), ((0, 0, 1), (1, 0, 1)), ((0, 0, 1), (0, 1, 1))]
    tets = np.concatenate([np.stack([v[(0, 0, 0)], v[a], v[b], v[(1, 1, 1)]], axis=1) for a, b in paths])
    cent = nodes[tets].mean(axis=1)
    r = np.linalg.norm(cent, axis=1)
    keep = r < R
    tets, r = tets[keep], r[keep]
    tet_tags = np.asarray(tags)[np.searchsorted(np.asarray(radii), r, side="right").clip(0, len(radii) - 1)]
    used, inv = np.unique(tets, return_inverse=True)
    tets = inv.reshape(-1, 4)
    nodes = nodes[used]
    p = nodes[tets]
    neg = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0]) < 0
    tets[neg] = tets[neg][:, [0, 2, 1, 3]]
    return Mesh(nodes=nodes, tetrahedra=tets, tet_tags=tet_tags)
