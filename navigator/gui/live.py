"""Live field updates while the coil moves: the latest pose only, on one worker thread.

No Qt here. :class:`LatestOnlyWorker` keeps at most one pending request: a new pose replaces
the one waiting (it is *dropped*, counted in :attr:`LatestOnlyWorker.dropped`), so however fast
the mouse moves, the worker computes the pose the coil is at now, never a queue of stale ones.
Results go to ``deliver(request, result, error)`` on the worker thread; the window turns that
into a queued Qt signal.

:func:`move_pose_to` / :func:`nudge_pose` / :func:`rotate_pose` / :func:`tilt_pose` are the coil
moves the mouse and keys make (subject RAS mm; coil frame: z into the head, y handle).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from navigator.core.surface import Surface

log = logging.getLogger("navigator.gui")


@dataclass
class LiveRequest:
    """One pose to evaluate. ``seq`` increases with every request; ``extra`` holds named
    poses evaluated with it (the side-by-side comparison)."""

    seq: int
    pose: np.ndarray
    didt_a_per_s: float
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    submitted: float = field(default_factory=time.perf_counter)


class LatestOnlyWorker:
    """A worker thread computing ``compute(request)`` for the newest request only."""

    def __init__(self, compute: Callable[[LiveRequest], Any],
                 deliver: Callable[[LiveRequest, Any, BaseException | None], None], name: str = "live-field"):
        self._compute = compute
        self._deliver = deliver
        self._cond = threading.Condition()
        self._pending: LiveRequest | None = None
        self._stop = False
        self._busy = False
        self.submitted = 0
        self.computed = 0
        self.dropped = 0
        self.seconds: list[float] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: LiveRequest) -> None:
        with self._cond:
            if self._pending is not None:
                self.dropped += 1
            self._pending = request
            self.submitted += 1
            self._cond.notify()

    @property
    def idle(self) -> bool:
        with self._cond:
            return self._pending is None and not self._busy

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._pending = None
            self._cond.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                req, self._pending = self._pending, None
                self._busy = True
            t0 = time.perf_counter()
            result, error = None, None
            try:
                result = self._compute(req)
            except BaseException as exc:  # noqa: BLE001 - reported to the UI
                error = exc
            self.seconds.append(time.perf_counter() - t0)
            self.computed += 1
            try:
                self._deliver(req, result, error)
            except Exception:  # noqa: BLE001 - a failing delivery must not kill the worker
                log.exception("live field delivery failed")
            with self._cond:
                self._busy = False


# ------------------------------------------------------------------------------ coil moves
class ScalpGeometry:
    """The scalp's closest points and smoothed normals with their search structures built once
    (the same results as :func:`navigator.tms.pose.project_to_surface` and
    :func:`~navigator.tms.pose.smoothed_normal`, without rebuilding them at every mouse move)."""

    def __init__(self, surface: Surface):
        from scipy.spatial import cKDTree

        from navigator.targets.geometry import SurfaceQuery

        self.surface = surface
        self._query = SurfaceQuery(surface)
        p = surface.vertices[surface.faces]
        self._cen = p.mean(axis=1)
        self._n2a = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        self._tree = cKDTree(self._cen)

    def project(self, point: np.ndarray) -> np.ndarray:
        return self._query.closest_point(np.asarray(point, float).reshape(1, 3), k=16)[0][0]

    def normal(self, point: np.ndarray, radius_mm: float | None = None) -> np.ndarray:
        from navigator.tms.pose import NORMAL_SMOOTHING_MM

        r = NORMAL_SMOOTHING_MM if radius_mm is None else radius_mm
        point = np.asarray(point, float).reshape(3)
        idx = np.asarray(self._tree.query_ball_point(point, r), int)
        if len(idx) == 0:
            idx = np.array([int(self._tree.query(point)[1])])
        d = np.linalg.norm(self._cen[idx] - point, axis=1)
        w = np.exp(-0.5 * (d / max(r / 2.0, 1e-6)) ** 2)
        n = (self._n2a[idx] * w[:, None]).sum(axis=0)
        return n / max(np.linalg.norm(n), 1e-12)


_GEOMETRY: dict[int, ScalpGeometry] = {}


def scalp_geometry(scalp: Surface | ScalpGeometry) -> ScalpGeometry:
    """The cached :class:`ScalpGeometry` of a scalp surface (one per surface object)."""
    if isinstance(scalp, ScalpGeometry):
        return scalp
    g = _GEOMETRY.get(id(scalp))
    if g is None or g.surface is not scalp:
        _GEOMETRY.clear()  # one subject at a time
        g = _GEOMETRY[id(scalp)] = ScalpGeometry(scalp)
    return g


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    a = np.asarray(axis, float)
    a = a / max(np.linalg.norm(a), 1e-12)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * K + (1 - np.cos(angle_rad)) * (K @ K)


def _align(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``a`` to unit vector ``b``."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v = np.cross(a, b)
    s, c = np.linalg.norm(v), float(np.dot(a, b))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        perp = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
        return _rotation(perp, np.pi)
    return _rotation(v, np.arctan2(s, c))


def move_pose_to(pose: np.ndarray, scalp: Surface | ScalpGeometry, point: np.ndarray, distance_mm: float) -> np.ndarray:
    """The coil moved so that it sits ``distance_mm`` above the scalp point nearest ``point``;
    its orientation is carried along (the smallest rotation turning the old scalp normal into
    the new one), so handle direction and tilt relative to the scalp are kept."""
    g = scalp_geometry(scalp)
    pose = np.asarray(pose, float)
    old_sp = g.project(pose[:3, 3])
    n_old = g.normal(old_sp)
    sp = g.project(np.asarray(point, float).reshape(3))
    n_new = g.normal(sp)
    R = _align(n_old, n_new)
    out = np.eye(4)
    out[:3, :3] = R @ pose[:3, :3]
    # keep any tilt: the centre sits where the tilted coil's axis crosses the offset surface
    out[:3, 3] = sp + distance_mm * n_new
    return out


def nudge_pose(pose: np.ndarray, scalp: Surface | ScalpGeometry, dx_mm: float, dy_mm: float, distance_mm: float) -> np.ndarray:
    """Slide the coil over the scalp by ``dx_mm`` along its x axis and ``dy_mm`` along its
    handle (y) axis."""
    pose = np.asarray(pose, float)
    target = pose[:3, 3] + dx_mm * pose[:3, 0] + dy_mm * pose[:3, 1]
    return move_pose_to(pose, scalp, target, distance_mm)


def rotate_pose(pose: np.ndarray, degrees: float) -> np.ndarray:
    """Turn the handle by ``degrees`` about the coil's z axis (the centre stays)."""
    pose = np.asarray(pose, float).copy()
    R = _rotation(pose[:3, 2], np.deg2rad(degrees))
    pose[:3, :3] = R @ pose[:3, :3]
    return pose


def tilt_pose(pose: np.ndarray, axis: str, degrees: float) -> np.ndarray:
    """Tilt the coil by ``degrees`` about its own x (``axis="x"``: handle up/down) or y axis
    (``"y"``: roll sideways), pivoting about the coil centre."""
    pose = np.asarray(pose, float).copy()
    k = {"x": 0, "y": 1}[axis]
    R = _rotation(pose[:3, k], np.deg2rad(degrees))
    pose[:3, :3] = R @ pose[:3, :3]
    return pose


def tilt_degrees(pose: np.ndarray, scalp: Surface) -> float:
    """Angle (deg) between the coil axis and the inward scalp normal under the coil centre."""
    from navigator.tms.pose import project_to_surface, smoothed_normal

    sp = project_to_surface(scalp, np.asarray(pose, float)[:3, 3])
    n = smoothed_normal(scalp, sp)
    c = float(np.clip(np.dot(-n, pose[:3, 2]), -1, 1))
    return float(np.degrees(np.arccos(c)))
