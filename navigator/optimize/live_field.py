"""Live field: |E| and its normal component on the cortex around a target for any coil pose in
milliseconds, after a per-subject, per-coil, per-target precomputation.

Method (measurements and accuracy in ``docs/live_field.md``). The FEM field is
``E = -dA/dt - grad v`` (:func:`navigator.tms.simulate.solve_tms`, raw P0 element field). On the
region (middle grey-matter vertices within ``region_radius_mm`` of the target) the engine reports
``S E``, where ``S`` (:func:`region_sampling`) takes at each vertex the value at the vertex of a
volume-weighted linear least-squares fit of the P0 field over the grey-matter tetrahedra around
the vertex's tetrahedron (a patch recovery, linear in E). Two parts:

* primary ``-dA/dt`` at the vertices, looked up trilinearly in a lattice of the coil's vector
  potential in the coil frame (computed once per coil);
* secondary ``y = -S grad v`` (the field of the charges on conductivity interfaces): over the
  set of valid poses it is low-rank. (1) ``n_samples`` random valid poses are solved with the FEM
  (one AMG hierarchy, :class:`~navigator.fem.system.FemSystem`); the SVD of their secondary
  fields on the region gives an orthonormal basis ``U`` (rank r). (2) For each basis vector one
  adjoint (reciprocal) FEM problem is solved, as in :mod:`navigator.optimize.reciprocity` but
  with the functional ``u_k . S (-grad v)``: ``K z_k = b(w_k)`` with ``w_k = S^T u_k / vol``;
  then exactly ``u_k . y = sum_n q_kn . dA/dt(r_n)`` over the mesh nodes, with the node sources
  ``q_kn = sum_(e at n) vol_e sigma_e grad z_k,e / 4`` (the solver's element primary field is
  the mean of its nodal values). (3) On fine meshes the node sources are spread trilinearly onto
  a ``source_spacing_mm`` world lattice (fewer points); points whose sources cannot matter
  (``|q_n|`` times the largest primary field any valid pose puts there, summed, below
  ``node_tol`` of the total) are dropped. Per update: ``c = sum_n q_n . dA/dt(r_n)`` with dA/dt
  looked up in the coil lattice (compiled, one thread), and ``y = U c``. Any coil model works (dipoles, wire segments,
  sampled grids): only its vector potential on the lattice is used.

Validity region (:class:`ValidityRegion`): coil centre over a scalp point within
``centre_radius_mm`` of the target's scalp point, centre ``2..15`` mm from the scalp along the
scalp normal, any handle angle, coil axis within ``max_tilt_deg`` of the inward scalp normal.

The precomputation is cached in ``WORKSPACE/cache/live_field/`` (atomic writes) under a key that
hashes the mesh (nodes, tetrahedra, tags), the conductivities, the coil's sources, the target
point and the settings; a changed input rebuilds it. Coordinates: subject scanner RAS mm;
fields V/m for the dI/dt given (A/s).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from navigator.core.atomic import atomic_path, atomic_write_json
from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.core.surface import Surface
from navigator.optimize.live_kernels import lattice_vectors, lattice_vectors_parallel, node_coupling
from navigator.targets.head import Head
from navigator.targets.resolve import ResolvedTarget
from navigator.tms.coil import Coil

#: Version of the precomputation format and method (part of the cache key).
LIVE_VERSION = 1
CACHE_FOLDER = "cache/live_field"


@dataclass(frozen=True)
class LiveSettings:
    """Parameters of the precomputation (all part of the cache key).

    Attributes:
        region_radius_mm: middle-GM vertices within this distance of the target form the region.
        centre_radius_mm: coil centres over scalp points within this distance of the target's
            scalp point are valid.
        min_distance_mm / max_distance_mm: valid coil-scalp distances (centre along the normal).
        max_tilt_deg: valid angle between the coil axis and the inward scalp normal.
        n_samples: FEM solves at random valid poses that span the secondary field.
        max_rank: largest basis (adjoint solves); rank_tol: relative L2 residual of the
            samples at which the basis stops growing.
        a_spacing_mm: spacing of the coil's vector-potential lattice (coil frame);
            a_margin_mm: its lateral reach beyond the coil's sources; a_depth_mm: its depth
            below the coil's bottom face.
        node_tol: share of the node-source bound that may be dropped (see the module docstring).
        source_spacing_mm: the node sources are spread onto a world lattice of this spacing
            (fewer points per update; 0 keeps them at the nodes).
        solve_rtol: CG tolerance of the sampled solves; adjoint_rtol: of the adjoint solves.
        fmm_eps: FMM precision (primary fields of the samples and of the lattice).
        seed: random seed of the sampled poses.
    """

    region_radius_mm: float = 40.0
    centre_radius_mm: float = 30.0
    min_distance_mm: float = 2.0
    max_distance_mm: float = 15.0
    max_tilt_deg: float = 10.0
    n_samples: int = 40
    max_rank: int = 56
    rank_tol: float = 2e-3
    a_spacing_mm: float = 2.0
    a_margin_mm: float = 60.0
    a_depth_mm: float = 140.0
    node_tol: float = 5e-4
    source_spacing_mm: float = 3.0
    solve_rtol: float = 1e-5
    adjoint_rtol: float = 1e-6
    fmm_eps: float = 1e-4
    seed: int = 0


@dataclass
class LiveField:
    """One live update. magnitude / normal: (m,) |E| and E . n (n = outward cortical normal) at
    the region's vertices, V/m for the dI/dt given; target_magnitude: |E| at the target point
    (interpolated on its cortical triangle), V/m; seconds: wall time of the update."""

    magnitude: np.ndarray
    normal: np.ndarray
    target_magnitude: float
    seconds: float


# ---------------------------------------------------------------------------- validity region
@dataclass
class ValidityRegion:
    """The coil poses the engine is built for (see the module docstring). Points world mm."""

    scalp_point: np.ndarray
    scalp_normal: np.ndarray
    left: bool
    centre_radius_mm: float
    min_distance_mm: float
    max_distance_mm: float
    max_tilt_deg: float
    patch: Surface  # the scalp faces near the region (for projections and normals)

    #: tolerances of :meth:`contains` (mm, degrees) over the sampled ranges
    TOL_MM = 0.5
    TOL_DEG = 1.0

    @classmethod
    def around(cls, scalp: Surface, point: np.ndarray, s: LiveSettings) -> ValidityRegion:
        from navigator.tms.pose import NORMAL_SMOOTHING_MM, project_to_surface, smoothed_normal

        p0 = project_to_surface(scalp, np.asarray(point, float))
        reach = s.centre_radius_mm + s.max_distance_mm + 2 * NORMAL_SMOOTHING_MM + 10.0
        cen = scalp.vertices[scalp.faces].mean(axis=1)
        keep = np.linalg.norm(cen - p0, axis=1) <= reach
        if not keep.any():
            raise NavigatorError("the scalp has no faces near the target")
        faces = scalp.faces[keep]
        used, inv = np.unique(faces, return_inverse=True)
        patch = Surface(scalp.vertices[used], inv.reshape(-1, 3).astype(np.int64))
        n0 = smoothed_normal(patch, p0, NORMAL_SMOOTHING_MM)
        midline_x = float(scalp.vertices[:, 0].mean())
        return cls(p0, n0, bool(p0[0] <= midline_x), s.centre_radius_mm, s.min_distance_mm, s.max_distance_mm,
                   s.max_tilt_deg, patch)

    def _query(self):
        q = self.__dict__.get("_q")
        if q is None:
            from scipy.spatial import cKDTree

            from navigator.targets.geometry import SurfaceQuery

            tri = self.patch.vertices[self.patch.faces]
            q = self.__dict__["_q"] = (SurfaceQuery(self.patch), cKDTree(tri.mean(axis=1)), tri.mean(axis=1),
                                       np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]))
        return q

    def normals_at(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) smoothed outward scalp normals at scalp points (as :func:`navigator.tms.pose.smoothed_normal`)."""
        from navigator.tms.pose import NORMAL_SMOOTHING_MM

        _sq, tree, cen, n2a = self._query()
        out = np.empty((len(points), 3))
        for i, p in enumerate(points):
            idx = np.asarray(tree.query_ball_point(p, NORMAL_SMOOTHING_MM), dtype=np.int64)
            if len(idx) == 0:
                idx = np.atleast_1d(tree.query(p)[1])
            d = np.linalg.norm(cen[idx] - p, axis=1)
            w = np.exp(-0.5 * (d / (NORMAL_SMOOTHING_MM / 2.0)) ** 2)
            n = (n2a[idx] * w[:, None]).sum(axis=0)
            out[i] = n / np.linalg.norm(n)
        return out

    def project(self, points: np.ndarray) -> np.ndarray:
        return self._query()[0].closest_point(np.atleast_2d(points), k=16)[0]

    def sample_poses(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 4, 4) random valid poses: centre uniform over the disc, distance, handle angle and
        tilt (uniform over the cone's solid angle) uniform."""
        from navigator.tms.pose import handle_from_angle, pose_matrix

        n0 = self.scalp_normal
        ref = np.array([0.0, 0.0, 1.0]) if abs(n0[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        e1 = ref - (ref @ n0) * n0
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(n0, e1)
        poses: list[np.ndarray] = []
        while len(poses) < n:
            k = 2 * (n - len(poses)) + 8
            rad = (self.centre_radius_mm + 1.0) * np.sqrt(rng.uniform(size=k))
            phi = rng.uniform(0, 2 * np.pi, k)
            guess = self.scalp_point + (rad * np.cos(phi))[:, None] * e1 + (rad * np.sin(phi))[:, None] * e2 + 5 * n0
            s = self.project(guess)
            s = s[np.linalg.norm(s - self.scalp_point, axis=1) <= self.centre_radius_mm]
            normals = self.normals_at(s)
            for p, nrm in zip(s, normals):
                if len(poses) == n:
                    break
                d = rng.uniform(self.min_distance_mm, self.max_distance_mm)
                h = handle_from_angle(nrm, rng.uniform(0.0, 360.0), self.left)
                pose = pose_matrix(p + d * nrm, nrm, h)
                cos_t = 1.0 - rng.uniform() * (1.0 - math.cos(math.radians(self.max_tilt_deg)))
                tilt = math.acos(min(1.0, cos_t))
                if tilt > 0:
                    ang = rng.uniform(0, 2 * np.pi)
                    ax = math.cos(ang) * pose[:3, 0] + math.sin(ang) * pose[:3, 1]
                    pose[:3, :3] = _rotation(ax, tilt) @ pose[:3, :3]
                poses.append(pose)
        return np.stack(poses)

    def why_outside(self, pose: np.ndarray) -> str | None:
        """None when ``pose`` is valid, else the reason (one line)."""
        pose = np.asarray(pose, float)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            return "not a finite 4x4 pose"
        c = pose[:3, 3]
        s = self.project(c)[0]
        off = float(np.linalg.norm(s - self.scalp_point))
        if off > self.centre_radius_mm + self.TOL_MM:
            return f"coil centre {off:.1f} mm from the target's scalp point (limit {self.centre_radius_mm:g} mm)"
        nrm = self.normals_at(s[None])[0]
        d = float((c - s) @ nrm)
        if not (self.min_distance_mm - self.TOL_MM <= d <= self.max_distance_mm + self.TOL_MM):
            return (f"coil-scalp distance {d:.1f} mm outside {self.min_distance_mm:g}-{self.max_distance_mm:g} mm")
        z = pose[:3, 2] / np.linalg.norm(pose[:3, 2])
        tilt = math.degrees(math.acos(float(np.clip(-z @ nrm, -1.0, 1.0))))
        if tilt > self.max_tilt_deg + self.TOL_DEG:
            return f"coil tilted {tilt:.1f} deg from the scalp normal (limit {self.max_tilt_deg:g} deg)"
        return None


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + math.sin(angle) * K + (1 - math.cos(angle)) * K @ K


# ---------------------------------------------------------------------------- region sampling
def region_sampling(mesh, points_mm: np.ndarray, *, min_patch: int = 8) -> sp.csr_matrix:
    """(P, M) sparse operator: value of a P0 field at the points (see the module docstring).

    Each point's tetrahedron is located (grey-matter tets preferred when the mesh has them); the
    patch is the tets of the same tissue that share a node with it; the value is the constant
    term of the volume-weighted least-squares linear fit over the patch's centroids, evaluated at
    the point (reproduces linear fields exactly). Patches smaller than ``min_patch`` or
    ill-conditioned fits take the volume-weighted mean.
    """
    from navigator.core.tissues import GM
    from navigator.fem.kernels import node_elements
    from navigator.fem.sampling import locate_points

    tets = np.ascontiguousarray(mesh.tetrahedra, np.int64)
    tags = mesh.tet_tags
    gm = tags == GM
    tet, _ = locate_points(mesh, points_mm, tet_mask=gm if gm.any() else None)
    start, elems = node_elements(tets, mesh.n_nodes)
    nodes = np.asarray(mesh.nodes, float)
    rows, cols, vals = [], [], []
    for i, (p, t) in enumerate(zip(np.asarray(points_mm, float), tet)):
        patch = np.unique(np.concatenate([elems[start[n]:start[n + 1]] for n in tets[t]]))
        patch = patch[tags[patch] == tags[t]]
        P = nodes[tets[patch]]
        cen = P.mean(axis=1)
        vol = np.abs(np.einsum("ij,ij->i", np.cross(P[:, 1] - P[:, 0], P[:, 2] - P[:, 0]), P[:, 3] - P[:, 0]))
        w = None
        if len(patch) >= min_patch:
            X = np.hstack([np.ones((len(patch), 1)), cen - p])
            G = X.T @ (X * vol[:, None])
            if np.linalg.cond(G) < 1e10:
                w = np.linalg.solve(G, (X * vol[:, None]).T)[0]
        if w is None:
            w = vol / vol.sum()
        rows.append(np.full(len(patch), i))
        cols.append(patch)
        vals.append(w)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(len(points_mm), mesh.n_tets))


# ---------------------------------------------------------------------------- the engine
@dataclass
class LivePrecomputation:
    """Everything :class:`LiveFieldEngine` needs (arrays; saved as one .npz).

    Attributes:
        region_vertices: (m,) middle-GM vertex indices; region_points_mm, region_normals: (m, 3).
        target_vertices / target_weights: (3,) the target's triangle and barycentric weights
            (indices into the region).
        U: (3m, r) orthonormal basis of the secondary field (x, y, z per vertex).
        nodes_mm: (N, 3) mesh nodes kept; Q: (N, r, 3) their reciprocal sources (float32;
            V/m of basis coefficient per V/m of dA/dt).
        A: (X, Y, Z, 3) coil vector potential per ampere (T m / A) in the coil frame;
            a_origin, a_spacing: its lattice.
        region: scalp point, normal, hemisphere of the validity region.
        info: build record (timings, rank, singular values, sample residual).
    """

    region_vertices: np.ndarray
    region_points_mm: np.ndarray
    region_normals: np.ndarray
    target_point_mm: np.ndarray
    target_vertices: np.ndarray
    target_weights: np.ndarray
    U: np.ndarray
    nodes_mm: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    a_origin: np.ndarray
    a_spacing: float
    scalp_point: np.ndarray
    scalp_normal: np.ndarray
    left: bool
    key: str
    info: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        arrays = {k: np.asarray(v) for k, v in asdict(self).items() if k not in ("info", "key")}
        arrays["key"] = np.array(self.key)
        arrays["info"] = np.array(json.dumps(self.info))
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> LivePrecomputation:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        d["key"] = str(d["key"])
        d["info"] = json.loads(str(d["info"]))
        d["a_spacing"] = float(d["a_spacing"])
        d["left"] = bool(d["left"])
        return cls(**d)


class LiveFieldEngine:
    """Field on the cortical region for any valid coil pose (see the module docstring).

    Attributes:
        region_vertices: (m,) indices into the Head's middle-GM surface vertices.
        region_points_mm: (m, 3) subject RAS mm.
        region_normals: (m, 3) outward unit normals of the middle-GM surface there.
        validity: the :class:`ValidityRegion`.
        info: the precomputation record (timings, rank, cache file, whether it was loaded).
    """

    def __init__(self, pre: LivePrecomputation, coil: Coil, validity: ValidityRegion):
        self.pre = pre
        self.coil = coil
        self.validity = validity
        self.region_vertices = pre.region_vertices
        self.region_points_mm = np.ascontiguousarray(pre.region_points_mm, float)
        self.region_normals = pre.region_normals
        self.info = dict(pre.info)
        self._U = np.ascontiguousarray(pre.U)
        self._nodes = np.ascontiguousarray(pre.nodes_mm, float)
        self._Q = np.ascontiguousarray(pre.Q)
        self._A = np.ascontiguousarray(pre.A)
        self._a_origin = np.ascontiguousarray(pre.a_origin, float)
        self._blocks = 16

    @property
    def rank(self) -> int:
        return int(self._U.shape[1])

    def contains(self, pose: np.ndarray) -> bool:
        """True when ``pose`` (4x4, world mm) lies in the validity region."""
        return self.validity.why_outside(pose) is None

    def secondary(self, pose: np.ndarray, didt_a_per_s: float) -> np.ndarray:
        """(m, 3) secondary field -S grad v on the region (V/m)."""
        R = np.ascontiguousarray(np.asarray(pose, float)[:3, :3])
        c = np.ascontiguousarray(np.asarray(pose, float)[:3, 3])
        coup = node_coupling(self._A, self._a_origin, float(self.pre.a_spacing), R, c, self._nodes, self._Q,
                             self._blocks)
        return (self._U @ (float(didt_a_per_s) * coup)).reshape(-1, 3)

    def primary(self, pose: np.ndarray, didt_a_per_s: float) -> np.ndarray:
        """(m, 3) primary field -dA/dt on the region (V/m)."""
        R = np.ascontiguousarray(np.asarray(pose, float)[:3, :3])
        c = np.ascontiguousarray(np.asarray(pose, float)[:3, 3])
        A = np.empty_like(self.region_points_mm)
        missed = lattice_vectors(self._A, self._a_origin, float(self.pre.a_spacing), R, c, self.region_points_mm, A)
        if missed:
            raise NavigatorError(f"coil pose outside the precomputed region ({missed} cortical points outside the "
                                 "coil's field lattice)")
        return -float(didt_a_per_s) * A

    def field(self, pose: np.ndarray, didt_a_per_s: float) -> np.ndarray:
        """(m, 3) E at the region's vertices, V/m."""
        return self.primary(pose, didt_a_per_s) + self.secondary(pose, didt_a_per_s)

    def evaluate(self, pose: np.ndarray, didt_a_per_s: float) -> LiveField:
        """The live field of ``pose`` (4x4 coil-to-world, mm) at dI/dt ``didt_a_per_s`` (A/s).

        Raises NavigatorError when the region lies outside the coil's lattice (check
        :meth:`contains` first: outside the validity region the approximation is not measured)."""
        t0 = time.perf_counter()
        E = self.field(pose, didt_a_per_s)
        return self._result(E, t0)

    def _result(self, E: np.ndarray, t0: float) -> LiveField:
        mag = np.sqrt(np.einsum("ij,ij->i", E, E))
        nrm = np.einsum("ij,ij->i", E, self.region_normals)
        Et = self.pre.target_weights @ E[self.pre.target_vertices]
        return LiveField(mag, nrm, float(np.linalg.norm(Et)), time.perf_counter() - t0)

    def observe(self, secondary_element_field: np.ndarray, pose: np.ndarray, didt_a_per_s: float) -> LiveField:
        """The engine's observable of a full FEM solution, the reference the approximation is
        measured against: the secondary element field ``-grad v`` (M, 3) of the solve (V/m; with
        :func:`navigator.tms.simulate.solve_tms` that is ``E_element + D``) sampled on the region
        by the same patch recovery, plus the primary field -dA/dt evaluated exactly (no lattice)
        at the region's vertices."""
        from navigator.tms.primary import primary_field

        t0 = time.perf_counter()
        S = self.sampling()
        E = np.asarray(S @ secondary_element_field) - primary_field(self.coil, pose, self.region_points_mm,
                                                                     didt_a_per_s)
        return self._result(E, t0)

    def sampling(self) -> sp.csr_matrix:
        S = self.__dict__.get("_S")
        if S is None:
            raise NavigatorError("the region sampling operator is only kept when the engine was built with the "
                                 "head (open_live_field(..., keep_sampling=True))")
        return S


# ---------------------------------------------------------------------------- cache key
def _hash_arrays(h, *arrays) -> None:
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())


def mesh_hash(mesh) -> str:
    h = hashlib.sha256()
    _hash_arrays(h, np.asarray(mesh.nodes, np.float64), np.asarray(mesh.tetrahedra, np.int64),
                 np.asarray(mesh.tet_tags, np.int64))
    return h.hexdigest()


def coil_hash(coil: Coil) -> str:
    h = hashlib.sha256()
    _hash_arrays(h, coil.dipole_positions, coil.dipole_moments, coil.segment_starts, coil.segment_ends,
                 coil.segment_currents)
    if coil.grid is not None:
        _hash_arrays(h, coil.grid.data, coil.grid.affine)
    return h.hexdigest()


def cache_key(mesh_digest: str, sigma: np.ndarray, coil: Coil, target_mm: np.ndarray, settings: LiveSettings) -> str:
    h = hashlib.sha256()
    h.update(f"live-field v{LIVE_VERSION}\n{mesh_digest}\n{coil_hash(coil)}\n".encode())
    _hash_arrays(h, np.asarray(sigma, np.float64), np.round(np.asarray(target_mm, np.float64), 6))
    h.update(json.dumps(asdict(settings), sort_keys=True).encode())
    return h.hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def cache_path(head: Head, coil: Coil, target: ResolvedTarget) -> Path:
    """Where the precomputation of (coil, target) lives in the workspace."""
    return head.ws.root / CACHE_FOLDER / f"{_slug(coil.name)}__{_slug(target.name or target.spec)}.npz"


# ---------------------------------------------------------------------------- build
def _target_point(target: ResolvedTarget) -> np.ndarray:
    p = target.cortical_point if target.cortical_point is not None else target.point
    return np.asarray(p, float).reshape(3)


def _target_triangle(cortex: Surface, region_vertices: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Region indices of the cortex triangle closest to ``point`` and barycentric weights."""
    from navigator.targets.geometry import SurfaceQuery

    q, face = SurfaceQuery(cortex).closest_point(point[None], k=16)
    tri = cortex.faces[int(face[0])]
    P = cortex.vertices[tri]
    T = np.stack([P[1] - P[0], P[2] - P[0]], axis=1)
    lam, *_ = np.linalg.lstsq(T, q[0] - P[0], rcond=None)
    w = np.clip(np.array([1 - lam.sum(), lam[0], lam[1]]), 0, None)
    w /= w.sum()
    pos = {int(v): i for i, v in enumerate(region_vertices)}
    if not all(int(v) in pos for v in tri):
        raise NavigatorError("the target's cortical triangle is not inside the live-field region")
    return np.array([pos[int(v)] for v in tri], np.int64), w


def _spread_to_lattice(points: np.ndarray, q: np.ndarray, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Point sources q (r, N, 3) at ``points`` (N, 3) mm spread trilinearly onto the nodes of a
    world lattice of spacing ``h`` mm (weights sum to 1 and reproduce the point, so the coupling
    with a field a is the trilinear interpolation of a at each point: error O(h^2 a''))."""
    o = points.min(axis=0) - h
    rel = (points - o) / h
    i0 = np.floor(rel).astype(np.int64)
    f = rel - i0
    shape = i0.max(axis=0) + 2
    rows, wts = [], []
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                rows.append(np.ravel_multi_index((i0[:, 0] + dx, i0[:, 1] + dy, i0[:, 2] + dz), shape))
                wts.append((f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1])
                           * (f[:, 2] if dz else 1 - f[:, 2]))
    rows = np.concatenate(rows)
    used, inv = np.unique(rows, return_inverse=True)
    n = len(points)
    P = sp.csr_matrix((np.concatenate(wts), (inv, np.tile(np.arange(n), 8))), shape=(len(used), n))
    r = q.shape[0]
    flat = np.ascontiguousarray(np.transpose(q, (1, 0, 2)).reshape(n, 3 * r))
    agg = np.asarray(P @ flat).reshape(len(used), r, 3)
    xyz = o + np.stack(np.unravel_index(used, shape), axis=1) * h
    return xyz, np.ascontiguousarray(np.transpose(agg, (1, 0, 2)))


def _significant(points: np.ndarray, q: np.ndarray, poses: np.ndarray, A: np.ndarray, a_lo: np.ndarray, ha: float,
                 tol: float) -> np.ndarray:
    """Indices of the source points to keep: point n's bound |q_n| max_poses |a(r_n)|; the
    smallest bounds that sum to at most ``tol`` of the total are dropped."""
    reach = np.zeros(len(points))
    buf = np.empty_like(points)
    for pose in poses:
        lattice_vectors_parallel(A, a_lo, ha, np.ascontiguousarray(pose[:3, :3]), np.ascontiguousarray(pose[:3, 3]),
                                 points, buf)
        np.maximum(reach, np.sqrt(np.einsum("ij,ij->i", buf, buf)), out=reach)
    score = np.sqrt(np.einsum("kic,kic->i", q, q)) * reach
    order = np.argsort(score)
    dropped = np.cumsum(score[order])
    n_drop = int(np.searchsorted(dropped, tol * dropped[-1], side="right"))
    return np.sort(order[n_drop:])


class _Recycler:
    """Initial guesses from the span of earlier solutions of K v = b: the Galerkin projection
    x0 = V (V^T K V)^-1 V^T b (K the Neumann stiffness matrix, solutions mean-free). The sampled
    fields are nearly low-rank, so later solves start closer to their solution (CG iterations
    16 -> 11 over 64 samples on the phantom). The Gram matrix grows by one row per solution;
    BLAS runs single-threaded (multi-threaded level-1/2 calls crawl on a busy 2-core machine)."""

    def __init__(self, K: sp.csr_matrix, size: int):
        self.K = K
        n = K.shape[0]
        self.V = np.empty((size, n))
        self.G = np.zeros((size, size))
        self.k = 0

    def guess(self, b: np.ndarray) -> np.ndarray | None:
        if self.k == 0:
            return None
        from navigator.fem.solver import _single_blas_thread

        with _single_blas_thread():
            V = self.V[:self.k]
            c = np.linalg.lstsq(self.G[:self.k, :self.k], V @ b, rcond=1e-12)[0]
            return c @ V

    def add(self, v: np.ndarray) -> None:
        if self.k >= len(self.V):
            return
        from navigator.fem.solver import _single_blas_thread

        with _single_blas_thread():
            k = self.k
            self.V[k] = v - v.mean()
            kv = self.K @ self.V[k]
            row = self.V[:k + 1] @ kv
            self.G[k, :k + 1] = row
            self.G[:k + 1, k] = row
            self.k += 1


def build_live_field(head: Head, coil: Coil, target: ResolvedTarget, *, sigma: np.ndarray | None = None,
                     settings: LiveSettings | None = None, system=None, key: str = "",
                     progress: Progress | None = None) -> tuple[LivePrecomputation, sp.csr_matrix]:
    """Run the precomputation (see the module docstring); returns it and the sampling operator."""
    from navigator.fem.system import FemSystem
    from navigator.tms.primary import vector_potential_coil_frame

    s = settings or LiveSettings()
    progress = ensure_progress(progress)
    if coil.is_empty():
        raise NavigatorError(f"coil {coil.name!r} has no field sources")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    cortex = head.cortex
    if cortex is None:
        raise NavigatorError(f"{head.ws.root}: no middle grey-matter surface; the live field shows the cortex")
    mesh = head.mesh
    progress.update(0.0, "region")
    tp = _target_point(target)
    d = np.linalg.norm(cortex.vertices - tp, axis=1)
    region = np.flatnonzero(d <= s.region_radius_mm)
    if len(region) < 3:
        raise NavigatorError("no middle grey-matter vertices near the target")
    pts = np.ascontiguousarray(cortex.vertices[region], float)
    normals = cortex.vertex_normals()[region]
    tv, tw = _target_triangle(cortex, region, tp)
    t0 = time.perf_counter()
    S = region_sampling(mesh, pts)
    timings["region_sampling"] = time.perf_counter() - t0
    validity = ValidityRegion.around(head.scalp, tp, s)
    rng = np.random.default_rng(s.seed)

    # ---- system
    progress.update(0.02, "assembling the FEM system")
    t0 = time.perf_counter()
    if system is None:
        system = head.system if sigma is None else FemSystem(mesh, sigma)
    system.setup()
    timings["system"] = time.perf_counter() - t0
    progress.check()

    # ---- the coil's vector potential on a lattice in the coil frame
    progress.update(0.03, "coil field lattice")
    t0 = time.perf_counter()
    src = coil.source_points()
    if coil.grid is not None:
        g = coil.grid
        corners = np.array([[i, j, k] for i in (0, g.data.shape[0] - 1) for j in (0, g.data.shape[1] - 1)
                            for k in (0, g.data.shape[2] - 1)], float)
        src = np.concatenate([src, corners @ g.affine[:3, :3].T + g.affine[:3, 3]])
    rho = float(np.linalg.norm(src[:, :2], axis=1).max()) if len(src) else 0.0
    ha = float(s.a_spacing_mm)
    lift = rho * math.sin(math.radians(s.max_tilt_deg)) + 10.0
    z_top = min(float(src[:, 2].min()) if len(src) else 0.0, 0.0) - lift
    a_lo = np.array([-rho - s.a_margin_mm, -rho - s.a_margin_mm, z_top])
    a_hi = np.array([rho + s.a_margin_mm, rho + s.a_margin_mm, s.a_depth_mm])
    a_shape = np.ceil((a_hi - a_lo) / ha).astype(int) + 1
    axes = [a_lo[i] + ha * np.arange(a_shape[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    A = np.ascontiguousarray(vector_potential_coil_frame(coil, grid, eps=s.fmm_eps).reshape(*a_shape, 3))
    del grid
    timings["coil_lattice"] = time.perf_counter() - t0
    progress.check()

    # ---- sampled solves
    poses = validity.sample_poses(s.n_samples, rng)
    Y = np.zeros((3 * len(pts), len(poses)))
    t0 = time.perf_counter()
    iters = []
    nodes = np.ascontiguousarray(mesh.nodes, float)
    Dn = np.empty_like(nodes)
    recycle = _Recycler(system.K, len(poses))
    for i, pose in enumerate(poses):
        progress.update(0.05 + 0.55 * i / len(poses), f"sampled FEM solve {i + 1}/{len(poses)}")
        # the primary field at the nodes from the coil lattice (0 beyond it, as in the coupling)
        lattice_vectors_parallel(A, a_lo, ha, np.ascontiguousarray(pose[:3, :3]), np.ascontiguousarray(pose[:3, 3]),
                                 nodes, Dn)
        b = system.rhs_impressed_nodal_field(Dn)
        res = system.solve(b, rtol=s.solve_rtol, x0=recycle.guess(b))
        recycle.add(res.v)
        iters.append(res.iterations)
        Y[:, i] = np.asarray(S @ (-system.gradient(res.v))).ravel()
    del recycle
    timings["sampled_solves"] = time.perf_counter() - t0
    progress.update(0.6, "basis")
    Uf, sv, _ = np.linalg.svd(Y, full_matrices=False)
    energy = np.sqrt(np.maximum(1.0 - np.cumsum(sv ** 2) / np.sum(sv ** 2), 0.0))
    r = int(min(s.max_rank, len(sv)))
    below = np.flatnonzero(energy <= s.rank_tol)
    if len(below):
        r = min(r, int(below[0]) + 1)
    U = np.ascontiguousarray(Uf[:, :r])

    # ---- adjoint solves
    t0 = time.perf_counter()
    vol = system.volumes
    tets = system.tets.ravel()
    q = np.zeros((r, system.n_nodes, 3))
    ST = S.T.tocsr()
    Ur = U.reshape(len(pts), 3, r)
    adj_iters = []
    for k in range(r):  # (warm starts from earlier adjoints did not cut iterations: measured)
        progress.update(0.6 + 0.25 * k / r, f"adjoint solve {k + 1}/{r}")
        w = np.stack([ST @ Ur[:, c, k] for c in range(3)], axis=1) / vol[:, None]
        res = system.solve(system.rhs_divergence(w), rtol=s.adjoint_rtol)
        adj_iters.append(res.iterations)
        g = system.gradient(res.v) * (vol * system.sigma)[:, None]
        for c in range(3):
            q[k, :, c] = np.bincount(tets, weights=np.repeat(g[:, c] / 4.0, 4), minlength=system.n_nodes)
    timings["adjoint_solves"] = time.perf_counter() - t0

    # ---- source points: the nodes, or their sources spread onto a world lattice (fewer points
    # on fine meshes); whichever keeps fewer points after dropping those that cannot matter
    progress.update(0.85, "selecting the source points")
    t0 = time.perf_counter()
    cover = np.concatenate([poses[:16], validity.sample_poses(48, rng)])
    best = None
    for kind in ("nodes", "lattice") if s.source_spacing_mm > 0 else ("nodes",):
        progress.update(0.86 if kind == "nodes" else 0.92, f"selecting the source points ({kind})")
        src_pts, qs = (nodes, q) if kind == "nodes" else _spread_to_lattice(nodes, q, float(s.source_spacing_mm))
        keep = _significant(src_pts, qs, cover, A, a_lo, ha, s.node_tol)
        if best is None or len(keep) < len(best[1]):
            best = (src_pts[keep], keep, kind, qs)
    src_pts, keep, src_kind, qs = best
    Q = np.ascontiguousarray(np.transpose(qs[:, keep], (1, 0, 2)), dtype=np.float32)
    del q, qs, best
    timings["node_selection"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_start
    info = {"rank": r, "n_samples": len(poses), "singular_values": sv.tolist(),
            "sample_residual": float(energy[r - 1]) if r >= 1 else 1.0, "cg_iterations": iters,
            "adjoint_cg_iterations": adj_iters, "source_nodes": int(len(keep)), "source_points": src_kind,
            "a_lattice_shape": list(map(int, A.shape[:3])), "region_vertices": int(len(region)),
            "timings_s": timings, "settings": asdict(s), "coil": coil.name, "target": target.name}
    progress.update(1.0, "live field ready")
    pre = LivePrecomputation(region_vertices=region, region_points_mm=pts, region_normals=normals,
                             target_point_mm=tp, target_vertices=tv, target_weights=tw, U=U,
                             nodes_mm=src_pts, Q=Q, A=A, a_origin=a_lo, a_spacing=float(ha),
                             scalp_point=validity.scalp_point, scalp_normal=validity.scalp_normal,
                             left=validity.left, key=key, info=info)
    return pre, S


def open_live_field(head: Head, coil: Coil | str, target: ResolvedTarget | str, *,
                    progress: Progress | None = None, rebuild: bool = False,
                    conductivity: dict[int, float] | None = None, settings: LiveSettings | None = None,
                    keep_sampling: bool = False) -> LiveFieldEngine:
    """The live field engine of ``coil`` around ``target`` on ``head``: loaded from the
    workspace cache when it matches the mesh, conductivities (defaults with ``conductivity``
    overrides, S/m per tissue tag), coil and settings, else built (minutes; progress, cancellable
    through ``progress``) and cached. ``keep_sampling`` keeps the region sampling operator
    (:meth:`LiveFieldEngine.observe`)."""
    from navigator.tms.library import load_coil

    progress = ensure_progress(progress)
    s = settings or LiveSettings()
    coil = load_coil(coil) if isinstance(coil, (str, Path)) else coil
    if coil.is_empty():
        raise NavigatorError(f"coil {coil.name!r} has no field sources")
    target = head.target(target)
    sigma = head.conductivity(conductivity)
    progress.update(0.0, "checking the live-field cache")
    key = cache_key(mesh_hash(head.mesh), sigma, coil, _target_point(target), s)
    path = cache_path(head, coil, target)
    pre = None
    S = None
    if not rebuild and path.exists():
        try:
            cand = LivePrecomputation.load(path)
            if cand.key == key:
                pre = cand
                pre.info["loaded_from_cache"] = True
        except (OSError, ValueError, KeyError, TypeError) as exc:  # unreadable cache: rebuild
            import logging

            logging.getLogger(__name__).warning("live-field cache %s unreadable (%s); rebuilding", path, exc)
    if pre is None:
        pre, S = build_live_field(head, coil, target, sigma=None if not conductivity else sigma, settings=s,
                                  key=key, progress=progress.sub(0.0, 0.98, "live field"))
        pre.info["loaded_from_cache"] = False
        pre.save(path)
        atomic_write_json(path.with_suffix(".json"), {"key": key, "coil": coil.name, "target": target.name,
                                                      "info": {k: v for k, v in pre.info.items()
                                                               if k != "singular_values"}})
    pre.info["cache_file"] = str(path)
    validity = ValidityRegion.around(head.scalp, _target_point(target), s)
    engine = LiveFieldEngine(pre, coil, validity)
    if keep_sampling:
        engine.__dict__["_S"] = S if S is not None else region_sampling(head.mesh, pre.region_points_mm)
    progress.update(1.0, "live field ready")
    return engine


__all__ = ["LiveField", "LiveFieldEngine", "LivePrecomputation", "LiveSettings", "ValidityRegion",
           "build_live_field", "cache_key", "open_live_field", "region_sampling"]
