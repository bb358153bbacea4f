"""Primary field dA/dt of a coil at arbitrary points.

A magnetic dipole m at r0 has the vector potential ``A(r) = mu0/(4 pi) m x (r - r0) / |r - r0|^3``;
a straight current segment a->b carrying current I has
``A(r) = mu0 I/(4 pi) (b - a)/L * ln((R_a + R_b + L)/(R_a + R_b - L))``.
The primary field is ``dA/dt = dI/dt * A_per_ampere`` (V/m for dI/dt in A/s).

Evaluation: direct summation for small problems, the Laplace FMM of ``fmm3dpy`` otherwise.
fmm3dpy's kernel is ``1/(4 pi r)``: each Cartesian component of A is the potential of a
dipole distribution (``A_x`` of dipoles ``(0, -m_z, m_y)``, etc.), so the FMM result is
scaled by ``mu0`` (not ``mu0/(4 pi)``); ``tests/test_tms_primary.py`` checks this against
direct summation. Segments are handled by the FMM as charges ``I dl`` at 2-point Gauss nodes.
Grid coils are interpolated trilinearly. Numerics are in SI units (points converted mm -> m).
"""

from __future__ import annotations

import math

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.core.progress import Progress, ensure_progress
from navigator.tms.coil import Coil

MU0 = 4e-7 * math.pi  # T m / A

#: Above this number of source-target pairs the FMM is used instead of direct summation.
DIRECT_PAIR_LIMIT = 2e6
_CHUNK_PAIRS = 4e6
#: FMM path: segments are split into pieces of at most this length (m) before quadrature.
FMM_SEGMENT_PIECE = 1e-3


def _choose(method: str, n_src: int, n_tgt: int) -> str:
    if method not in ("auto", "direct", "fmm"):
        raise ValueError(f"unknown method {method!r} (auto, direct, fmm)")
    if method == "auto":
        return "direct" if n_src * n_tgt <= DIRECT_PAIR_LIMIT else "fmm"
    return method


def dipole_vector_potential(positions_m: np.ndarray, moments: np.ndarray, points_m: np.ndarray,
                            method: str = "auto", eps: float = 1e-3) -> np.ndarray:
    """A (T m per A of coil current) of dipoles at (N, 3) points.

    Args:
        positions_m: (D, 3) dipole positions, metres.
        moments: (D, 3) dipole moments, A m^2 per A.
        points_m: (N, 3) evaluation points, metres.
        method: "direct", "fmm" or "auto".
        eps: FMM relative precision.
    """
    pos = np.ascontiguousarray(positions_m, dtype=np.float64).reshape(-1, 3)
    mom = np.ascontiguousarray(moments, dtype=np.float64).reshape(-1, 3)
    pts = np.ascontiguousarray(points_m, dtype=np.float64).reshape(-1, 3)
    out = np.zeros((len(pts), 3))
    if len(pos) == 0 or len(pts) == 0:
        return out
    if _choose(method, len(pos), len(pts)) == "direct":
        step = max(1, int(_CHUNK_PAIRS // len(pos)))
        for s in range(0, len(pts), step):
            d = pts[s:s + step, None, :] - pos[None, :, :]  # (n, D, 3)
            r3 = np.einsum("ndk,ndk->nd", d, d) ** 1.5
            out[s:s + step] = np.einsum("ndk,nd->nk", np.cross(mom[None, :, :], d), 1.0 / r3)
        return out * (MU0 / (4 * math.pi))
    import fmm3dpy

    mx, my, mz = mom.T
    zero = np.zeros_like(mx)
    dipvec = np.stack([np.stack([zero, -mz, my]), np.stack([mz, zero, -mx]), np.stack([-my, mx, zero])])
    res = fmm3dpy.lfmm3d(eps=eps, sources=np.ascontiguousarray(pos.T), dipvec=np.ascontiguousarray(dipvec),
                         targets=np.ascontiguousarray(pts.T), pgt=1, nd=3)
    # fmm3dpy: u = sum v . grad_{source}(1/(4 pi |x - y|)) = sum v . (x - y) / (4 pi |x - y|^3)
    return MU0 * np.asarray(res.pottarg).T


def segment_vector_potential(starts_m: np.ndarray, ends_m: np.ndarray, currents: np.ndarray,
                             points_m: np.ndarray, method: str = "auto", eps: float = 1e-3) -> np.ndarray:
    """A (T m per A) of straight current segments (start -> end, metres; current in A per A)."""
    a = np.asarray(starts_m, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(ends_m, dtype=np.float64).reshape(-1, 3)
    cur = np.asarray(currents, dtype=np.float64).reshape(-1)
    pts = np.ascontiguousarray(points_m, dtype=np.float64).reshape(-1, 3)
    out = np.zeros((len(pts), 3))
    if len(a) == 0 or len(pts) == 0:
        return out
    vec = b - a
    length = np.linalg.norm(vec, axis=1)
    keep = length > 0
    a, b, cur, vec, length = a[keep], b[keep], cur[keep], vec[keep], length[keep]
    if _choose(method, len(a), len(pts)) == "direct":
        unit_i = vec / length[:, None] * cur[:, None]
        step = max(1, int(_CHUNK_PAIRS // len(a)))
        for s in range(0, len(pts), step):
            p = pts[s:s + step, None, :]
            ra = np.linalg.norm(p - a[None], axis=2)
            rb = np.linalg.norm(p - b[None], axis=2)
            ssum = ra + rb
            w = np.log((ssum + length[None]) / np.maximum(ssum - length[None], 1e-300))
            out[s:s + step] = w @ unit_i
        return out * (MU0 / (4 * math.pi))
    import fmm3dpy

    # split into pieces of at most FMM_SEGMENT_PIECE, 2-point Gauss nodes on each piece
    nsub = np.maximum(1, np.ceil(length / FMM_SEGMENT_PIECE).astype(np.int64))
    idx = np.repeat(np.arange(len(a)), nsub)
    k = np.arange(len(idx)) - np.repeat(np.cumsum(nsub) - nsub, nsub)
    piece = vec[idx] / nsub[idx, None]
    start = a[idx] + k[:, None] * piece
    g = 0.5 / math.sqrt(3.0)
    nodes = np.concatenate([start + (0.5 - g) * piece, start + (0.5 + g) * piece])
    charges = np.concatenate([0.5 * piece * cur[idx, None]] * 2)  # I dl per node, A m
    res = fmm3dpy.lfmm3d(eps=eps, sources=np.ascontiguousarray(nodes.T), charges=np.ascontiguousarray(charges.T),
                         targets=np.ascontiguousarray(pts.T), pgt=1, nd=3)
    return MU0 * np.asarray(res.pottarg).T


def vector_potential_coil_frame(coil: Coil, points_mm: np.ndarray, method: str = "auto",
                                eps: float = 1e-3) -> np.ndarray:
    """A per ampere of coil current (T m / A) at (N, 3) coil-frame points in mm."""
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    out = np.zeros((len(pts), 3))
    if coil.n_dipoles:
        out += dipole_vector_potential(coil.dipole_positions * 1e-3, coil.dipole_moments, pts * 1e-3, method, eps)
    if coil.n_segments:
        out += segment_vector_potential(coil.segment_starts * 1e-3, coil.segment_ends * 1e-3,
                                        coil.segment_currents, pts * 1e-3, method, eps)
    if coil.grid is not None:
        out += coil.grid.sample(pts)
    return out


def check_pose(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a 4x4 coil pose with the pose rule of :mod:`navigator.export.rigid` (rotation within
    1e-2 of orthonormal, right-handed, last row 0 0 0 1); return (R (3, 3) re-orthonormalized,
    centre (3,) mm)."""
    from navigator.export.rigid import NotRigid, rigidify

    try:
        m = rigidify(pose).matrix
    except NotRigid as exc:
        raise NavigatorError(f"coil pose is not a rigid pose: {exc} (columns = coil x, y (handle), "
                             "z (into the head), centre)") from None
    return m[:3, :3], m[:3, 3]


def primary_field(coil: Coil, pose: np.ndarray, points_mm: np.ndarray, didt: float,
                  method: str = "auto", eps: float = 1e-3, progress: Progress | None = None) -> np.ndarray:
    """dA/dt (V/m) of a posed coil at (N, 3) world points (mm), in world axes.

    Args:
        coil: the coil model.
        pose: 4x4 coil-to-world matrix [x y z centre] in world mm.
        points_mm: (N, 3) world points, mm.
        didt: rate of change of the coil current, A/s.
        method: "auto", "direct" or "fmm" (dipoles and segments).
        eps: FMM precision.
    """
    progress = ensure_progress(progress)
    r, c = check_pose(pose)
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    progress.update(0.0, "primary field")
    local = (pts - c) @ r  # world -> coil frame
    a = vector_potential_coil_frame(coil, local, method=method, eps=eps)
    progress.update(1.0, "primary field")
    return float(didt) * (a @ r.T)
