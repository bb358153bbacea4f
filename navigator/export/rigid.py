"""The one rule for coil poses that come from other programs: rounded rotations are accepted and
re-orthonormalized, anything that is not a rigid motion is refused.

Navigation systems write the rotation part of a coil pose with a few decimals: Localite
InstrumentMarkers ~6 and real tracking matrices are orthonormal only to ~5e-5, SofTaxic writes 6
significant digits, Brainsight exports 3: each entry is off by up to h = 5e-4, so an entry of
R^T R is off by at most 2*sqrt(3)*h + 3*h^2 = 1.7e-3 (1.5e-3 seen over 2000 random rotations). Such a matrix is not exactly a rotation, yet it
*is* the rigid pose the navigator showed. The rule:

* the matrix must be a finite 4x4 whose last row is ``0 0 0 1`` (within :data:`POSE_TOLERANCE`);
* its 3x3 part R must have ``det R > 0`` (a reflection swaps the coil's sides: refused);
* ``max |R^T R - I| <= POSE_TOLERANCE`` (1e-2). Three-decimal rounding stays below 1.7e-3, so
  the tolerance leaves a 5x margin, while a 1 % scaling (error 2e-2) or a shear of 0.6 degree
  already fails; a matrix that passes is within ~0.5 % of a rotation in every direction;
* an accepted R is replaced by its polar factor ``Q = U V^T`` (SVD ``R = U S V^T``), the
  rotation nearest to R in the Frobenius norm; the translation column is kept as written.
  (R already orthonormal to 1e-12 is kept bit for bit, so navigator's own files round-trip exactly.)

How far this lands from the pose the vendor had before rounding: the polar factor's rotation
error is ~|skew(R^T E)| for a rounding error E. Measured on random rotations
(``tests/test_export_rigid.py``, docs/formats.md): 6 decimals -> at most 4.2e-5 degree;
3 decimals -> median 0.019, at most 0.041 degree. The 3-decimal figure is the rounding's own limit, not the
method's: the set of rotations whose 3-decimal rounding gives the same file is +-0.03 degree
wide, so no reader can recover the vendor's pose better than that. Positions keep the file's
rounding (3 decimals: 5e-4 mm).

Every importer, pulse-log reader and the ``--pose`` option go through :func:`rigidify`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Largest accepted orthonormality error max|R^T R - I| (and last-row deviation) of a pose
#: read from another program; see the module docstring for the reasoning.
POSE_TOLERANCE = 1e-2

#: Poses whose orthonormality error is below this are exact to float64 rounding: not reported.
EXACT = 1e-12


class NotRigid(ValueError):
    """A 4x4 that is not a rigid pose; ``str()`` says why in a few words (no file name)."""


@dataclass(frozen=True)
class RigidPose:
    """A pose that passed :func:`rigidify`.

    Attributes:
        matrix: (4, 4) the re-orthonormalized pose (rotation = polar factor, last row 0 0 0 1).
        orthonormality_error: max|R^T R - I| of the matrix as given.
        correction_deg: largest angle (degrees) between an axis (column) as given and the same
            axis after re-orthonormalization: how much the import moved the coil's axes.
    """

    matrix: np.ndarray
    orthonormality_error: float
    correction_deg: float

    @property
    def corrected(self) -> bool:
        return self.orthonormality_error > EXACT


def orthonormality_error(rot: np.ndarray) -> float:
    """max |R^T R - I| of a 3x3 (or the rotation part of a 4x4)."""
    r = np.asarray(rot, dtype=np.float64)[:3, :3]
    return float(np.abs(r.T @ r - np.eye(3)).max())


def _why_not(r: np.ndarray, err: float, det: float, s: np.ndarray, tol: float) -> str:
    if det <= 0:
        if abs(det) < 1e-9:
            return "its rotation part is singular (det 0)"
        return f"its rotation part is a reflection (det {det:.3g} < 0)"
    if s.max() - s.min() <= tol:
        return (f"its rotation part is scaled by {float(np.mean(s)):.4g} (orthonormality error {err:.2g} "
                f"> tolerance {tol:g})")
    return (f"its rotation part is sheared or unevenly scaled (singular values "
            f"{', '.join(f'{v:.4g}' for v in s)}; orthonormality error {err:.2g} > tolerance {tol:g})")


def rigidify(matrix: np.ndarray, tol: float = POSE_TOLERANCE) -> RigidPose:
    """Apply the pose rule (module docstring) to a 4x4; raise :class:`NotRigid` with the reason."""
    try:
        m = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise NotRigid("it is not a matrix of numbers") from None
    if m.shape != (4, 4):
        raise NotRigid(f"it is not 4x4 (shape {'x'.join(map(str, m.shape)) or 'scalar'})")
    if not np.all(np.isfinite(m)):
        raise NotRigid("it holds non-finite numbers (NaN or infinity)")
    last = m[3]
    if np.abs(last - [0.0, 0.0, 0.0, 1.0]).max() > tol:
        raise NotRigid(f"its last row is {' '.join(f'{v:g}' for v in last)}, not 0 0 0 1")
    r = m[:3, :3]
    err = orthonormality_error(r)
    det = float(np.linalg.det(r))
    u, s, vt = np.linalg.svd(r)
    if det <= 0 or err > tol:
        raise NotRigid(_why_not(r, err, det, s, tol))
    if err <= EXACT:  # a rotation to float64 rounding: kept bit for bit (exact round trips)
        out = m.copy()
        out[3] = (0.0, 0.0, 0.0, 1.0)
        return RigidPose(out, err, 0.0)
    q = u @ vt
    out = m.copy()
    out[:3, :3] = q
    out[3] = (0.0, 0.0, 0.0, 1.0)
    cosines = np.einsum("ij,ij->j", r, q) / np.linalg.norm(r, axis=0)
    correction = math.degrees(float(np.arccos(np.clip(cosines, -1.0, 1.0)).max()))
    return RigidPose(out, err, correction)


@dataclass(frozen=True)
class PoseCorrection:
    """What :func:`rigidify` changed in one imported pose (for the import summary and provenance)."""

    name: str
    orthonormality_error: float
    correction_deg: float

    def to_json(self) -> dict:
        return {"name": self.name, "orthonormality_error": self.orthonormality_error,
                "correction_deg": self.correction_deg}

    @classmethod
    def from_json(cls, d: dict) -> PoseCorrection:
        return cls(str(d["name"]), float(d["orthonormality_error"]), float(d["correction_deg"]))


def summarize_corrections(corrections: list[PoseCorrection], n_poses: int) -> str:
    """One line for the import summary / plan notes, or "" when nothing was corrected."""
    if not corrections:
        return ""
    worst = max(corrections, key=lambda c: c.orthonormality_error)
    turn = max(corrections, key=lambda c: c.correction_deg)
    return (f"{len(corrections)} of {n_poses} pose(s) re-orthonormalized (rounded rotations; tolerance "
            f"{POSE_TOLERANCE:g}): largest orthonormality error {worst.orthonormality_error:.2g} "
            f"({worst.name!r}), largest axis correction {turn.correction_deg:.3g} degree ({turn.name!r})")
