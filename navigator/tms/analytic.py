"""Closed-form TMS field of a magnetic dipole over a spherically symmetric conductor.

Heller & van Hulsteyn (1992, Biophys. J. 63:129-138): for a dipole ``m`` (A m^2 per A) at
``r0`` outside a sphere centred at the origin whose conductivity depends only on the radius,
the total induced field (primary plus the field of the surface charges) at ``r`` inside is

    E(r) = -dI/dt * mu0 / (4 pi F^2) * ( F (r x m) - (m . grad F) (r x r0) )

with ``a = r0 - r``, ``F = |a| (|r0| |a| + |r0|^2 - r0 . r)`` and
``grad F = (|a|^2/|r0| + a.r0/|a| + 2|a| + 2|r0|) r0 - (|a| + 2|r0| + a.r0/|a|) r``
(the gradient is with respect to ``r0``; this is Sarvas' 1987 MEG formula read through
reciprocity). The field is independent of the conductivity profile and has no radial
component. Everything here is SI: metres, A/s, V/m.
"""

from __future__ import annotations

import math

import numpy as np

MU0 = 4e-7 * math.pi


def sphere_dipole_e_field(dipole_pos_m: np.ndarray, dipole_moment: np.ndarray, points_m: np.ndarray,
                          didt: float, centre_m: np.ndarray | None = None) -> np.ndarray:
    """Total E (V/m) at (N, 3) points inside a sphere from one or more external dipoles.

    Args:
        dipole_pos_m: (3,) or (D, 3) dipole positions, metres (outside the sphere).
        dipole_moment: (3,) or (D, 3) moments, A m^2 per A of coil current.
        points_m: (N, 3) evaluation points inside the sphere, metres.
        didt: coil current rate of change, A/s.
        centre_m: sphere centre (default origin), metres.
    """
    c = np.zeros(3) if centre_m is None else np.asarray(centre_m, dtype=np.float64)
    r = np.atleast_2d(np.asarray(points_m, dtype=np.float64)) - c
    out = np.zeros_like(r)
    for r0, m in zip(np.atleast_2d(dipole_pos_m).astype(np.float64) - c, np.atleast_2d(dipole_moment).astype(np.float64)):
        a = r0[None, :] - r
        na = np.linalg.norm(a, axis=1)
        nr0 = np.linalg.norm(r0)
        adotr0 = a @ r0
        f = na * (nr0 * na + nr0 ** 2 - r @ r0)
        grad_f = ((na ** 2 / nr0 + adotr0 / na + 2 * na + 2 * nr0)[:, None] * r0[None, :]
                  - (na + 2 * nr0 + adotr0 / na)[:, None] * r)
        term = f[:, None] * np.cross(r, m) - (grad_f @ m)[:, None] * np.cross(r, r0)
        out += term / (f ** 2)[:, None]
    return -didt * MU0 / (4 * math.pi) * out
