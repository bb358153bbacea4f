"""Coordinate spaces and coil-axis conventions of the navigation systems.

navigator's own convention (SimNIBS's; see FIELD_NOTES "TMS coils"):

* a coil pose is a 4x4 matrix ``[x y z c]`` in subject scanner RAS, millimetres;
* column ``z`` = coil normal pointing **into the head**, column ``y`` = handle direction,
  column ``x`` = ``y x z``; ``c`` = coil centre on its bottom face.

Each navigation system stores the same physical pose with other axes (a fixed right-multiplied
permutation/sign matrix on the rotation part) and possibly in LPS instead of RAS (a fixed
left-multiplied ``diag(-1, -1, 1)``). Both conversions here are exact (only sign flips and
permutations), so a round trip reproduces the input bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

from navigator.core.errors import NavigatorError

#: Identifier of navigator's coil-axis convention as written into plan.json.
OUR_COIL_AXES = "navigator"
OUR_COIL_AXES_TEXT = "x = y cross z, y = handle direction, z = coil normal into the head (SimNIBS)"

SPACES = ("ras", "lps")

#: RAS <-> LPS: negate x and y (its own inverse).
RAS_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Localite axes from ours: x_loc = z, y_loc = -y, z_loc = x (FIELD_NOTES); its own inverse.
LOCALITE_AXES = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
LOCALITE_AXES_TEXT = "x = coil normal into the head, y = opposite to the handle, z = x_ours (Localite)"

#: Brainsight axes from ours: x and z negated (FIELD_NOTES); its own inverse.
BRAINSIGHT_AXES = np.diag([-1.0, 1.0, -1.0])
BRAINSIGHT_AXES_TEXT = "x = -x_ours, y = handle direction, z = coil normal out of the head (Brainsight)"


def check_space(space: str) -> str:
    """Normalise and check a coordinate-space name ("ras" or "lps")."""
    s = str(space).lower()
    if s not in SPACES:
        raise NavigatorError(f"unknown coordinate space {space!r}: use 'ras' or 'lps'")
    return s


def pose_to_space(pose: np.ndarray, space: str) -> np.ndarray:
    """4x4 pose in RAS mm -> the same pose in ``space`` (RAS returns a copy; LPS negates x, y rows)."""
    pose = np.asarray(pose, dtype=np.float64)
    return RAS_LPS @ pose if check_space(space) == "lps" else pose.copy()


#: The conversion is an involution: LPS -> RAS is the same operation.
pose_from_space = pose_to_space


def point_to_space(point: np.ndarray, space: str) -> np.ndarray:
    """(3,) or (N, 3) points in RAS mm -> ``space`` (LPS negates x and y)."""
    p = np.array(point, dtype=np.float64)
    if check_space(space) == "lps":
        p[..., :2] *= -1.0
    return p


point_from_space = point_to_space


def _apply_axes(pose: np.ndarray, axes: np.ndarray) -> np.ndarray:
    out = np.array(pose, dtype=np.float64)
    out[:3, :3] = out[:3, :3] @ axes
    return out


def ours_to_localite(pose: np.ndarray) -> np.ndarray:
    """Our coil axes -> Localite's (rotation @ LOCALITE_AXES); position unchanged."""
    return _apply_axes(pose, LOCALITE_AXES)


def localite_to_ours(pose: np.ndarray) -> np.ndarray:
    return _apply_axes(pose, LOCALITE_AXES)


def ours_to_brainsight(pose: np.ndarray) -> np.ndarray:
    """Our coil axes -> Brainsight's (x and z negated); position unchanged."""
    return _apply_axes(pose, BRAINSIGHT_AXES)


def brainsight_to_ours(pose: np.ndarray) -> np.ndarray:
    return _apply_axes(pose, BRAINSIGHT_AXES)


def rotation_error(rot: np.ndarray) -> tuple[float, float]:
    """(max |R^T R - I|, det R) of a 3x3 matrix."""
    r = np.asarray(rot, dtype=np.float64)[:3, :3]
    return float(np.abs(r.T @ r - np.eye(3)).max()), float(np.linalg.det(r))


def is_rigid_pose(pose: np.ndarray, tol: float = 1e-6) -> bool:
    """True if ``pose`` is a 4x4 with an orthonormal, right-handed rotation and last row 0 0 0 1."""
    m = np.asarray(pose, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        return False
    err, det = rotation_error(m)
    return err <= tol and abs(det - 1.0) <= tol and np.allclose(m[3], [0, 0, 0, 1], atol=tol)


def euler_sxyz_from_matrix(rot: np.ndarray) -> tuple[float, float, float]:
    """Static-axes x-y-z Euler angles (radians) with ``R = Rz(g) @ Ry(b) @ Rx(a)``.

    Returns (a, b, g), b in [-pi/2, pi/2]. At gimbal lock (|b| = pi/2) g is set to 0 and the
    whole rotation is carried by a, so the matrix is still reproduced.
    """
    r = np.asarray(rot, dtype=np.float64)
    cy = math.hypot(r[0, 0], r[1, 0])
    if cy > 1e-12:
        a = math.atan2(r[2, 1], r[2, 2])
        b = math.atan2(-r[2, 0], cy)
        g = math.atan2(r[1, 0], r[0, 0])
    else:
        a = math.atan2(-r[1, 2], r[1, 1])
        b = math.atan2(-r[2, 0], cy)
        g = 0.0
    return a, b, g


def matrix_from_euler_sxyz(a: float, b: float, g: float) -> np.ndarray:
    """3x3 rotation ``Rz(g) @ Ry(b) @ Rx(a)`` from static x-y-z Euler angles in radians."""
    ca, sa, cb, sb, cg, sg = math.cos(a), math.sin(a), math.cos(b), math.sin(b), math.cos(g), math.sin(g)
    return np.array(
        [
            [cg * cb, cg * sb * sa - sg * ca, cg * sb * ca + sg * sa],
            [sg * cb, sg * sb * sa + cg * ca, sg * sb * ca - cg * sa],
            [-sb, cb * sa, cb * ca],
        ]
    )


def fmt(x: float) -> str:
    """Shortest decimal text that reads back as exactly the same float64 (Python repr)."""
    v = float(x) + 0.0  # turns -0.0 into 0.0
    if not math.isfinite(v):
        raise NavigatorError(f"cannot export a non-finite number ({v})")
    return repr(v)
