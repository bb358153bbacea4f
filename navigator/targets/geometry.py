"""Geometry on a closed triangle surface (the scalp): closest points, plane sections, arcs.

Arcs follow the EEG convention: the curve where the plane through two end points and a third
"via" point cuts the scalp, taken on the side of the via point. Lengths are in mm.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface


class SurfaceQuery:
    """Closest-point queries on a triangle surface (cached KD-tree and vertex->face map)."""

    def __init__(self, surface: Surface):
        self.surface = surface
        self.tree = cKDTree(surface.vertices)
        nv = len(surface.vertices)
        faces = surface.faces
        order = np.argsort(faces.ravel(), kind="stable")
        self._vf_faces = (order // 3).astype(np.int64)
        self._vf_start = np.searchsorted(faces.ravel()[order], np.arange(nv + 1))
        self.vertex_normals = surface.vertex_normals()

    def faces_of(self, vertices: np.ndarray) -> np.ndarray:
        chunks = [self._vf_faces[self._vf_start[v]:self._vf_start[v + 1]] for v in np.atleast_1d(vertices)]
        return np.unique(np.concatenate(chunks)) if chunks else np.zeros(0, np.int64)

    def closest_point(self, points: np.ndarray, k: int = 12) -> tuple[np.ndarray, np.ndarray]:
        """Closest points on the surface to (N, 3) points and the face each lies on."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        k = min(k, len(self.surface.vertices))
        _, near = self.tree.query(points, k=k)
        near = np.atleast_2d(near)
        out = np.empty_like(points)
        face_out = np.empty(len(points), np.int64)
        for n, p in enumerate(points):
            faces = self.faces_of(near[n])
            if faces.size == 0:  # nearest vertices belong to no face (a cropped surface)
                faces = np.arange(len(self.surface.faces))
            tri = self.surface.vertices[self.surface.faces[faces]]
            cp = closest_point_on_triangles(p, tri)
            d = np.linalg.norm(cp - p, axis=1)
            j = int(np.argmin(d))
            out[n] = cp[j]
            face_out[n] = faces[j]
        return out, face_out

    def normal_at(self, points: np.ndarray, smoothing_mm: float = 0.0) -> np.ndarray:
        """Unit outward normal at (N, 3) surface points: vertex normals averaged within
        ``smoothing_mm`` (Gaussian weights), or the nearest vertex's normal when 0."""
        points = np.atleast_2d(points)
        if smoothing_mm <= 0:
            return self.vertex_normals[self.tree.query(points)[1]]
        out = np.empty_like(points)
        for n, p in enumerate(points):
            idx = self.tree.query_ball_point(p, 2.5 * smoothing_mm)
            if not idx:
                idx = [self.tree.query(p)[1]]
            d2 = ((self.surface.vertices[idx] - p) ** 2).sum(axis=1)
            w = np.exp(-d2 / (2 * smoothing_mm**2))
            v = (self.vertex_normals[idx] * w[:, None]).sum(axis=0)
            out[n] = v / np.linalg.norm(v)
        return out

    def ray_hit(self, origin: np.ndarray, direction: np.ndarray) -> np.ndarray | None:
        """First intersection of the ray origin + t*direction (t > 0) with the surface, or None."""
        d = np.asarray(direction, float) / np.linalg.norm(direction)
        tri = self.surface.vertices[self.surface.faces]
        e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
        h = np.cross(d, e2)
        a = np.einsum("ij,ij->i", e1, h)
        ok = np.abs(a) > 1e-12
        f = np.zeros_like(a)
        f[ok] = 1.0 / a[ok]
        s = origin - tri[:, 0]
        u = f * np.einsum("ij,ij->i", s, h)
        q = np.cross(s, e1)
        v = f * (q @ d)
        t = f * np.einsum("ij,ij->i", e2, q)
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 1e-9)
        if not hit.any():
            return None
        return origin + d * t[hit].min()


def closest_point_on_triangles(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Closest point to ``p`` on each of (T, 3, 3) triangles (Ericson, Real-Time Collision Detection)."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp = p - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp_ = p - c
    d5, d6 = (ab * cp_).sum(1), (ac * cp_).sum(1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 / (va + vb + vc)
        v = vb * denom
        w = vc * denom
        res = a + ab * v[:, None] + ac * w[:, None]
        # edge regions
        t_ab = d1 / (d1 - d3)
        m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
        res[m] = a[m] + ab[m] * t_ab[m, None]
        t_ac = d2 / (d2 - d6)
        m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
        res[m] = a[m] + ac[m] * t_ac[m, None]
        t_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        m = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
        res[m] = b[m] + (c[m] - b[m]) * t_bc[m, None]
    # vertex regions
    m = (d1 <= 0) & (d2 <= 0)
    res[m] = a[m]
    m = (d3 >= 0) & (d4 <= d3)
    res[m] = b[m]
    m = (d6 >= 0) & (d5 <= d6)
    res[m] = c[m]
    bad = ~np.isfinite(res).all(axis=1)  # degenerate (zero-area) triangles: fall back to a vertex
    res[bad] = a[bad]
    return res


def plane_section(surface: Surface, point: np.ndarray, normal: np.ndarray) -> list[np.ndarray]:
    """Closed (or open, at holes) polylines where the plane (point, normal) cuts the surface."""
    normal = np.asarray(normal, float) / np.linalg.norm(normal)
    d = (surface.vertices - point) @ normal
    d[np.abs(d) < 1e-9] = 1e-9  # no vertex exactly on the plane
    f = surface.faces
    s = np.sign(d[f])
    cut = ~((s[:, 0] == s[:, 1]) & (s[:, 1] == s[:, 2]))
    fc = f[cut]
    if len(fc) == 0:
        return []
    edges = []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        e = np.sort(fc[:, [i, j]], axis=1)
        crosses = np.sign(d[e[:, 0]]) != np.sign(d[e[:, 1]])
        edges.append(np.where(crosses[:, None], e, -1))
    E = np.stack(edges, axis=1)  # (F, 3, 2); exactly two valid edges per cut face
    seg = np.array([row[row[:, 0] >= 0] for row in E])  # (F, 2, 2)
    keys = seg.reshape(-1, 2)
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1, 2)
    da, db = d[uniq[:, 0]], d[uniq[:, 1]]
    t = da / (da - db)
    pts = surface.vertices[uniq[:, 0]] + (surface.vertices[uniq[:, 1]] - surface.vertices[uniq[:, 0]]) * t[:, None]
    # adjacency between edge-points via faces
    adj: dict[int, list[int]] = {}
    for a_, b_ in inv:
        adj.setdefault(int(a_), []).append(int(b_))
        adj.setdefault(int(b_), []).append(int(a_))
    seen: set[int] = set()
    loops = []
    # start open chains at degree-1 points first
    starts = [k for k, v in adj.items() if len(v) == 1] + list(adj)
    for s0 in starts:
        if s0 in seen:
            continue
        chain = [s0]
        seen.add(s0)
        cur = s0
        while True:
            nxt = [n for n in adj[cur] if n not in seen]
            if not nxt:
                break
            cur = nxt[0]
            seen.add(cur)
            chain.append(cur)
        closed = len(adj[s0]) == 2 and s0 in adj[chain[-1]] and len(chain) > 2
        poly = pts[chain]
        if closed:
            poly = np.vstack([poly, poly[:1]])
        loops.append(poly)
    return loops


def locate_on_polyline(poly: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(arc-length position of the closest point on ``poly`` to ``p``, distance)."""
    a, b = poly[:-1], poly[1:]
    ab = b - a
    L = np.linalg.norm(ab, axis=1)
    t = np.clip(((p - a) * ab).sum(1) / np.maximum(L**2, 1e-30), 0, 1)
    q = a + ab * t[:, None]
    dist = np.linalg.norm(q - p, axis=1)
    k = int(np.argmin(dist))
    cum = np.concatenate([[0.0], np.cumsum(L)])
    return float(cum[k] + t[k] * L[k]), float(dist[k])


def sub_polyline(poly: np.ndarray, s0: float, s1: float) -> np.ndarray:
    """Part of ``poly`` between arc-length positions s0 < s1."""
    cum = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(poly, axis=0), axis=1))])
    inner = poly[(cum > s0) & (cum < s1)]
    return np.vstack([point_at_length(poly, s0), inner, point_at_length(poly, s1)])


def polyline_length(poly: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(poly, axis=0), axis=1).sum())


def point_at_length(poly: np.ndarray, s: float) -> np.ndarray:
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = float(np.clip(s, 0, cum[-1]))
    k = min(int(np.searchsorted(cum, s, side="right")) - 1, len(seg) - 1)
    t = (s - cum[k]) / max(seg[k], 1e-30)
    return poly[k] + (poly[k + 1] - poly[k]) * t


def point_at_fraction(poly: np.ndarray, fraction: float) -> np.ndarray:
    return point_at_length(poly, fraction * polyline_length(poly))


def surface_arc(surface: Surface, a: np.ndarray, b: np.ndarray, via: np.ndarray,
                 shortest: bool = False) -> np.ndarray:
    """The scalp curve from ``a`` to ``b`` in the plane through a, b and ``via``, on via's side
    (or the shorter of the two ways round when ``shortest``).

    Returns an (N, 3) polyline starting at (the section's point nearest) ``a`` and ending at
    ``b``. Raises NavigatorError when the plane misses the surface near the points.
    """
    a, b, via = (np.asarray(x, float) for x in (a, b, via))
    normal = np.cross(b - a, via - a)
    if np.linalg.norm(normal) < 1e-9:
        raise NavigatorError("cannot build a scalp arc: the three points are collinear")
    loops = plane_section(surface, a, normal)
    best = None
    for poly in loops:
        sa, da = locate_on_polyline(poly, a)
        sb, db = locate_on_polyline(poly, b)
        score = da + db
        if best is None or score < best[0]:
            best = (score, poly, sa, sb)
    if best is None or best[0] > 20.0:
        # the plane's section is broken up (holes or islands in the scalp surface, a cut neck
        # or face): follow the circle through the three points, projected onto the surface
        return _projected_circle_arc(surface, a, b, via)
    _, poly, sa, sb = best
    closed = np.allclose(poly[0], poly[-1])
    lo, hi = min(sa, sb), max(sa, sb)
    inner = sub_polyline(poly, lo, hi)
    candidates = [inner]
    if closed:
        total = polyline_length(poly)
        tail = sub_polyline(poly, hi, total)
        head = sub_polyline(poly, 0.0, lo)
        candidates.append(np.vstack([tail, head[1:]]))  # hi -> end -> start -> lo
    def via_dist(c):
        return locate_on_polyline(c, via)[1]
    arc = min(candidates, key=polyline_length if shortest else via_dist)
    if not shortest and via_dist(arc) > 20.0:
        # an open section (a hole in the surface on via's side): the way round through via
        # is not in it
        return _projected_circle_arc(surface, a, b, via)
    # orient from a to b
    if np.linalg.norm(arc[0] - a) > np.linalg.norm(arc[-1] - a):
        arc = arc[::-1]
    return arc


def _projected_circle_arc(surface: Surface, a: np.ndarray, b: np.ndarray, via: np.ndarray,
                          n: int = 400) -> np.ndarray:
    """(n, 3) polyline from ``a`` to ``b`` through ``via``: the circle through the three points,
    each sample moved to its closest point on ``surface`` (used where the plane section is not
    one clean loop; the points stay within about a voxel of the plane on a smooth scalp)."""
    center, radius, u, v = _circle_through(a, b, via)
    ang = [np.arctan2((p - center) @ v, (p - center) @ u) for p in (a, via, b)]
    t_via = (ang[1] - ang[0]) % (2 * np.pi)
    t_b = (ang[2] - ang[0]) % (2 * np.pi)
    span = t_b if t_via <= t_b else t_b - 2 * np.pi  # go round the side of ``via``
    t = ang[0] + np.linspace(0.0, span, n)
    pts = center + radius * (np.cos(t)[:, None] * u + np.sin(t)[:, None] * v)
    on = SurfaceQuery(surface).closest_point(pts)[0]
    on[0], on[-1] = a, b
    return on


def _circle_through(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """(centre, radius, u, v) of the circle through three points; u, v span its plane."""
    ab, ac = b - a, c - a
    n = np.cross(ab, ac)
    n2 = float(n @ n)
    center = a + (np.cross(n, ab) * (ac @ ac) + np.cross(ac, n) * (ab @ ab)) / (2.0 * n2)
    u = (a - center) / np.linalg.norm(a - center)
    v = np.cross(n / np.sqrt(n2), u)
    return center, float(np.linalg.norm(a - center)), u, v


def walk_in_plane(surface: Surface, start: np.ndarray, plane_normal: np.ndarray, direction: np.ndarray,
                  distance_mm: float) -> np.ndarray:
    """The point ``distance_mm`` along the scalp from ``start``, staying in the plane through
    ``start`` with normal ``plane_normal``, leaving in the sense of ``direction``."""
    loops = plane_section(surface, start, plane_normal)
    if not loops:
        raise NavigatorError("the plane through the start point does not cut the scalp")
    best = min(loops, key=lambda poly: locate_on_polyline(poly, start)[1])
    s0, dist = locate_on_polyline(best, start)
    if dist > 20.0:
        raise NavigatorError("the start point is not on the scalp surface")
    total = polyline_length(best)
    closed = np.allclose(best[0], best[-1])
    step = 1.0
    ahead = point_at_length(best, min(s0 + step, total)) - point_at_length(best, s0)
    sign = 1.0 if ahead @ np.asarray(direction, float) >= 0 else -1.0
    s = s0 + sign * distance_mm
    if closed:
        s = s % total
    elif s < 0 or s > total:
        raise NavigatorError("the scalp ends before the requested distance (cut field of view?)")
    return point_at_length(best, s)


def smooth_vertex_normals(surface: Surface, smoothing_mm: float) -> np.ndarray:
    """(N, 3) outward vertex normals smoothed over about ``smoothing_mm`` (Gaussian sigma).

    Repeated averaging over mesh neighbours is a random walk: after k steps with edges of
    length h the spread is sigma^2 ~ k h^2 / 2, so k = 2 sigma^2 / h^2 steps are taken.
    """
    from scipy.sparse import coo_matrix, diags

    raw = surface.vertex_normals()
    f = surface.faces
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    n = len(raw)
    A = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    A.data[:] = 1.0
    A = A + diags(np.ones(n))
    A = diags(1.0 / np.asarray(A.sum(axis=1)).ravel()) @ A
    h = float(np.linalg.norm(surface.vertices[f[:, 0]] - surface.vertices[f[:, 1]], axis=1).mean())
    steps = int(np.clip(2 * smoothing_mm**2 / max(h, 1e-6) ** 2, 1, 2000))
    acc = raw.copy()
    for _ in range(steps):
        acc = A @ acc
    return acc / np.maximum(np.linalg.norm(acc, axis=1, keepdims=True), 1e-30)
