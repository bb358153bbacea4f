"""tACS, tRNS and temporal interference (TI) from tDCS solutions (the problem is linear).

Quasi-static: at tES frequencies (< 10 kHz) the field of an alternating current of amplitude
I is the tDCS field for current I times the waveform, so no new FEM solve is needed.

* tACS: field amplitude map = E_tDCS(I = amplitude). :func:`tacs_amplitude` scales a unit-current
  solution; several electrodes at the same frequency and phase combine linearly
  (:func:`combine`).
* tRNS: for a zero-mean random current with standard deviation s (A), the field is the unit
  field times the current, so its standard deviation is |E_unit| s (:func:`trns_std`).
* TI (Grossman et al. 2017): two pairs at f1, f2 = f1 + df with fields E1, E2 (amplitudes).
  The maximal envelope modulation over all directions is :func:`ti_max_envelope` and along a
  unit direction n it is | |(E1 + E2).n| - |(E1 - E2).n| | (:func:`ti_envelope_along`).
"""

from __future__ import annotations

import numpy as np


def combine(unit_fields: list[np.ndarray], currents: np.ndarray) -> np.ndarray:
    """Superpose fields computed for unit currents (V/m per A) with currents (A)."""
    return sum(np.asarray(f) * c for f, c in zip(unit_fields, np.asarray(currents, float)))


def tacs_amplitude(E_at_current: np.ndarray, current_a: float, amplitude_a: float) -> np.ndarray:
    """Field amplitude (same shape) of tACS with peak current ``amplitude_a`` from a solution at ``current_a``."""
    return np.asarray(E_at_current) * (amplitude_a / current_a)


def trns_std(E_at_current: np.ndarray, current_a: float, current_std_a: float) -> np.ndarray:
    """Standard deviation of |E| (V/m) under a random current with standard deviation ``current_std_a``."""
    E = np.asarray(E_at_current)
    return np.linalg.norm(E.reshape(-1, 3), axis=1) * abs(current_std_a / current_a)


def ti_max_envelope(E1: np.ndarray, E2: np.ndarray) -> np.ndarray:
    """Maximal TI envelope modulation amplitude (Grossman 2017, eq. 2), (M,) V/m.

    With |E1| >= |E2| (swapped per element otherwise) and the angle a between them acute
    (E2 flipped otherwise): 2 |E2| if |E2| < |E1| cos a, else 2 |E2 x (E1 - E2)| / |E1 - E2|.
    """
    E1 = np.asarray(E1, float).reshape(-1, 3).copy()
    E2 = np.asarray(E2, float).reshape(-1, 3).copy()
    swap = np.linalg.norm(E2, axis=1) > np.linalg.norm(E1, axis=1)
    E1[swap], E2[swap] = E2[swap], E1[swap].copy()
    flip = np.einsum("ij,ij->i", E1, E2) < 0
    E2[flip] *= -1
    n1 = np.linalg.norm(E1, axis=1)
    n2 = np.linalg.norm(E2, axis=1)
    cos_a = np.einsum("ij,ij->i", E1, E2) / np.maximum(n1 * n2, 1e-300)
    d = E1 - E2
    nd = np.linalg.norm(d, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        other = 2 * np.linalg.norm(np.cross(E2, d), axis=1) / nd
    out = np.where(n2 < n1 * cos_a, 2 * n2, other)
    return np.where(np.isfinite(out), out, 2 * n2)


def ti_envelope_along(E1: np.ndarray, E2: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """TI envelope modulation amplitude along unit ``direction`` ((3,) or (M, 3)), V/m."""
    E1 = np.asarray(E1, float).reshape(-1, 3)
    E2 = np.asarray(E2, float).reshape(-1, 3)
    n = np.asarray(direction, float)
    n = n / np.linalg.norm(n, axis=-1, keepdims=True)
    a = np.abs(((E1 + E2) * n).sum(axis=-1))
    b = np.abs(((E1 - E2) * n).sum(axis=-1))
    return np.abs(a - b)
