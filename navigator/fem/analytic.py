"""Analytic potential and field of point electrodes on concentric spheres (Rush & Driscoll 1969).

A current I (A) enters the outermost sphere (radius R_L) at the surface point ``anode`` and
leaves at ``cathode``. In each shell k (conductivity sigma_k, r_{k-1} < r < r_k) the
potential is a Legendre series

    V(r, g) = sum_{n>=1} (A_n^k r^n + B_n^k r^-(n+1)) P_n(cos g)

for each electrode (g = angle between the evaluation point and the electrode), with
B_n^1 = 0 in the innermost sphere, continuity of V and of sigma dV/dr at every interface, and
sigma_L dV/dr = I (2n+1) / (4 pi R_L^2) at the outer surface (the Legendre expansion of a point
current entering the sphere). The n = 0 term cancels between the two electrodes. Radii are
handled in units of R_L so r^n never overflows. Units: mm in, V and V/m out.
"""

from __future__ import annotations

import numpy as np


def _layer_coefficients(radii_m: np.ndarray, sigmas: np.ndarray, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """A[k, n], B[k, n] for a unit current (1 A) source of unit Legendre weight, radii in units of R_L.

    Returns coefficients for V_n^k(rho) = A rho^n + B rho^-(n+1) (rho = r/R_L) such that
    sigma_L dV_n/dr at r = R_L equals (2n+1)/(4 pi R_L^2).
    """
    L = len(radii_m)
    R = radii_m[-1]
    rho = radii_m / R
    n = np.arange(n_max + 1, dtype=np.float64)
    A = np.zeros((L, n_max + 1))
    B = np.zeros((L, n_max + 1))
    A[0] = 1.0
    for k in range(L - 1):
        x = rho[k]
        # V and sigma dV/drho continuous at x
        v = A[k] * x**n + B[k] * x ** (-(n + 1))
        dv = sigmas[k] * (n * A[k] * x ** (n - 1) - (n + 1) * B[k] * x ** (-(n + 2)))
        # solve [x^n, x^-(n+1); s n x^(n-1), -s (n+1) x^-(n+2)] [A;B] = [v; dv]
        s = sigmas[k + 1]
        a11, a12 = x**n, x ** (-(n + 1))
        a21, a22 = s * n * x ** (n - 1), -s * (n + 1) * x ** (-(n + 2))
        det = a11 * a22 - a12 * a21
        A[k + 1] = (v * a22 - a12 * dv) / det
        B[k + 1] = (a11 * dv - a21 * v) / det
    # outer boundary flux for the unscaled solution, d/dr = (1/R) d/drho
    outer = sigmas[-1] * (n * A[-1] - (n + 1) * B[-1]) / R
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (2 * n + 1) / (4 * np.pi * R**2) / outer
    scale[0] = 0.0  # n = 0 cancels between anode and cathode
    return A * scale, B * scale


def _legendre_and_derivative(u: np.ndarray, n_max: int) -> tuple[np.ndarray, np.ndarray]:
    """P_n(u) and P_n'(u) for n = 0..n_max, shape (n_max+1, len(u))."""
    P = np.zeros((n_max + 1, len(u)))
    dP = np.zeros_like(P)
    P[0] = 1.0
    if n_max >= 1:
        P[1] = u
        dP[1] = 1.0
    for k in range(1, n_max):
        P[k + 1] = ((2 * k + 1) * u * P[k] - k * P[k - 1]) / (k + 1)
        dP[k + 1] = (k + 1) * P[k] + u * dP[k]
    return P, dP


def point_electrodes_potential_field(
    points_mm: np.ndarray,
    anode_mm: np.ndarray,
    cathode_mm: np.ndarray,
    current_a: float,
    radii_mm: tuple[float, ...],
    sigmas: tuple[float, ...],
    n_max: int = 400,
    chunk: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """Potential (V) and field E = -grad V (V/m) at ``points_mm`` for point electrodes.

    Args:
        points_mm: (P, 3) evaluation points, mm, centre of the spheres at the origin.
        anode_mm, cathode_mm: electrode positions (projected radially onto the outer sphere).
        current_a: current entering at the anode (A).
        radii_mm: increasing shell radii (mm); sigmas: conductivity of each shell (S/m).
        n_max: number of Legendre terms (the series converges like (r/R_L)^n; points close to
            the outer surface need more terms).

    Returns:
        v: (P,) V (zero mean over the sphere surface, i.e. no n = 0 term); E: (P, 3) V/m.
    """
    pts = np.atleast_2d(np.asarray(points_mm, dtype=np.float64)) * 1e-3
    radii = np.asarray(radii_mm, dtype=np.float64) * 1e-3
    sig = np.asarray(sigmas, dtype=np.float64)
    A, B = _layer_coefficients(radii, sig, n_max)
    R = radii[-1]
    n = np.arange(n_max + 1, dtype=np.float64)
    v_out = np.zeros(len(pts))
    E_out = np.zeros((len(pts), 3))
    for sign, e in ((1.0, anode_mm), (-1.0, cathode_mm)):
        e_hat = np.asarray(e, dtype=np.float64) / np.linalg.norm(e)
        for s in range(0, len(pts), chunk):
            p = pts[s : s + chunk]
            r = np.linalg.norm(p, axis=1)
            r_safe = np.maximum(r, 1e-12)
            r_hat = p / r_safe[:, None]
            u = np.clip(r_hat @ e_hat, -1.0, 1.0)
            layer = np.searchsorted(radii, r, side="left").clip(0, len(radii) - 1)
            rho = r_safe / R
            Ak, Bk = A[layer].T, B[layer].T  # (n_max+1, p)
            rn = rho[None, :] ** n[:, None]
            with np.errstate(over="ignore", invalid="ignore"):
                Brm = np.where(Bk != 0.0, Bk * rho[None, :] ** (-(n[:, None] + 1)), 0.0)
            c = Ak * rn + Brm  # radial factor
            dc = (n[:, None] * Ak * rn - (n[:, None] + 1) * Brm) / rho / R  # d/dr, 1/m
            P, dP = _legendre_and_derivative(u, n_max)
            V = (c * P).sum(axis=0)
            dVdr = (dc * P).sum(axis=0)
            dVdu = (c * dP).sum(axis=0)
            grad_u = (e_hat[None, :] - u[:, None] * r_hat) / r_safe[:, None]  # 1/m
            grad = dVdr[:, None] * r_hat + dVdu[:, None] * grad_u
            v_out[s : s + chunk] += sign * current_a * V
            E_out[s : s + chunk] -= sign * current_a * grad
    return v_out, E_out
