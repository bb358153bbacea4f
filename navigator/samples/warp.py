"""Exact, parametric MNI <-> subject mapping of the synthetic phantom.

The phantom's anatomy is built in MNI152 template space (mm) and carried into the subject's
scanner space (world RAS, mm) by

    y = A @ [x + u(x), 1]          (MNI point x -> subject point y)

where ``A`` is a 4x4 affine (small rotation, scaling, arbitrary world translation) and ``u`` is
a smooth displacement made of a few seeded plane waves::

    u(x) = sum_k a_k * sin(2 pi f_k . x + phi_k)      (a_k: mm, f_k: cycles/mm)

The waves are drawn so that ``sum_k |a_k| 2 pi |f_k| <= lipschitz < 1``: ``x -> x + u(x)`` is then
a diffeomorphism (its Jacobian ``I + grad u`` has no zero eigenvalue), and the inverse is found
by Newton iteration (to ~1e-9 mm). Everything is closed-form, so the ground truth of every
point is exact; the parameters are stored as JSON (``ground_truth/warp.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.atomic import atomic_write_json
from navigator.core.errors import InputError


@dataclass
class PhantomGroundTruth:
    """The phantom's exact MNI -> subject mapping (see the module docstring).

    Attributes:
        affine: 4x4, applied after the warp; maps warped MNI mm -> subject world RAS mm.
        amplitudes: (K, 3) displacement amplitude of each wave, mm.
        wavevectors: (K, 3) spatial frequency of each wave, cycles/mm.
        phases: (K,) phase of each wave, radians.
        meta: free-form facts (seed, template name, orientation of the stored images).
    """

    affine: np.ndarray
    amplitudes: np.ndarray
    wavevectors: np.ndarray
    phases: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.affine = np.asarray(self.affine, dtype=np.float64).reshape(4, 4)
        self.amplitudes = np.asarray(self.amplitudes, dtype=np.float64).reshape(-1, 3)
        self.wavevectors = np.asarray(self.wavevectors, dtype=np.float64).reshape(-1, 3)
        self.phases = np.asarray(self.phases, dtype=np.float64).reshape(-1)
        if not (len(self.amplitudes) == len(self.wavevectors) == len(self.phases)):
            raise ValueError("amplitudes, wavevectors and phases must have the same length")

    # ------------------------------------------------------------------ construction
    @classmethod
    def random(
        cls,
        rng: np.random.Generator,
        n_waves: int = 6,
        wavelength_mm: tuple[float, float] = (90.0, 220.0),
        lipschitz: float = 0.3,
        max_rotation_deg: float = 6.0,
        scale_range: tuple[float, float] = (0.89, 0.95),
        shift_mm: float = 4.0,
        world_offset_mm: tuple[float, float, float] = (8.0, 40.0, 40.0),
    ) -> PhantomGroundTruth:
        """Draw a random smooth warp plus affine.

        ``scale_range``: per-axis scaling; the MNI152 template is larger than a typical adult
        head, so subjects are drawn about 5-11 % smaller along each axis.
        ``world_offset_mm``: the world origin is moved by up to this much along x, y, z (at least
        a third of it along y and z), so the subject is not centred at the scanner origin like
        MNI space is; x stays small so that left-hemisphere structures keep world x < 0.
        """
        dirs = rng.normal(size=(n_waves, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        wl = rng.uniform(*wavelength_mm, size=n_waves)
        wavevectors = dirs / wl[:, None]
        adirs = rng.normal(size=(n_waves, 3))
        adirs /= np.linalg.norm(adirs, axis=1, keepdims=True)
        weights = rng.uniform(0.5, 1.0, size=n_waves)
        # share the Lipschitz budget: sum_k |a_k| 2 pi |f_k| == lipschitz
        gain = 2 * np.pi / wl
        amps = weights / (weights * gain).sum() * lipschitz
        amplitudes = adirs * amps[:, None]
        phases = rng.uniform(0, 2 * np.pi, size=n_waves)

        angles = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, size=3))
        rot = _rotation_xyz(*angles)
        scales = rng.uniform(*scale_range, size=3)
        shift = rng.uniform(-shift_mm, shift_mm, size=3)
        lim = np.asarray(world_offset_mm, dtype=np.float64)
        offset = rng.choice([-1.0, 1.0], size=3) * rng.uniform(lim / 3, lim)
        offset[0] = rng.uniform(-lim[0], lim[0])
        affine = np.eye(4)
        affine[:3, :3] = rot @ np.diag(scales)
        affine[:3, 3] = shift + offset
        return cls(affine, amplitudes, wavevectors, phases,
                   meta={"rotation_deg": np.rad2deg(angles).tolist(), "scales": scales.tolist(),
                         "lipschitz": lipschitz})

    # ------------------------------------------------------------------ evaluation
    def displacement(self, points: np.ndarray) -> np.ndarray:
        """u(x) in mm at (N, 3) MNI points."""
        x = np.atleast_2d(np.asarray(points, dtype=np.float64))
        arg = 2 * np.pi * (x @ self.wavevectors.T) + self.phases  # (N, K)
        return np.sin(arg) @ self.amplitudes

    def displacement_jacobian(self, points: np.ndarray) -> np.ndarray:
        """(N, 3, 3) d u_i / d x_j at MNI points."""
        x = np.atleast_2d(np.asarray(points, dtype=np.float64))
        arg = 2 * np.pi * (x @ self.wavevectors.T) + self.phases
        c = np.cos(arg)  # (N, K)
        return np.einsum("nk,ki,kj->nij", c, self.amplitudes, 2 * np.pi * self.wavevectors)

    def mni_to_subject(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) MNI152 mm -> (N, 3) subject world RAS mm (exact)."""
        x = np.atleast_2d(np.asarray(points, dtype=np.float64))
        w = x + self.displacement(x)
        return w @ self.affine[:3, :3].T + self.affine[:3, 3]

    def subject_to_mni(self, points: np.ndarray, tol: float = 1e-9, max_iter: int = 30) -> np.ndarray:
        """(N, 3) subject world RAS mm -> (N, 3) MNI152 mm (Newton inversion of the warp).

        Solves ``x + u(x) = w`` with ``w = A^-1 y``; converges because ``|grad u| < 1``.
        """
        y = np.atleast_2d(np.asarray(points, dtype=np.float64))
        inv = np.linalg.inv(self.affine)
        w = y @ inv[:3, :3].T + inv[:3, 3]
        x = w - self.displacement(w)  # fixed-point start
        for _ in range(max_iter):
            r = x + self.displacement(x) - w
            if np.abs(r).max(initial=0.0) < tol:
                break
            jac = self.displacement_jacobian(x) + np.eye(3)
            x = x - np.linalg.solve(jac, r[..., None])[..., 0]
        return x

    # ------------------------------------------------------------------ persistence
    def to_json(self) -> dict[str, Any]:
        return {
            "description": "y = affine @ [x + sum_k a_k sin(2 pi f_k . x + phi_k), 1]; x: MNI152 mm, "
                           "y: subject world RAS mm",
            "affine": self.affine.tolist(),
            "amplitudes_mm": self.amplitudes.tolist(),
            "wavevectors_per_mm": self.wavevectors.tolist(),
            "phases_rad": self.phases.tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PhantomGroundTruth:
        return cls(np.array(d["affine"]), np.array(d["amplitudes_mm"]), np.array(d["wavevectors_per_mm"]),
                   np.array(d["phases_rad"]), meta=dict(d.get("meta", {})))

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> PhantomGroundTruth:
        """Read ``ground_truth/warp.json`` (or a sample folder containing it)."""
        path = Path(path)
        if path.is_dir():
            path = path / "ground_truth" / "warp.json"
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InputError(path, "no phantom ground truth (warp.json) here") from None
        except (json.JSONDecodeError, KeyError, ValueError) as exc:
            raise InputError(path, f"not a phantom warp file ({exc})") from None


def _rotation_xyz(ax: float, ay: float, az: float) -> np.ndarray:
    """Rotation matrix R = Rz @ Ry @ Rx (angles in radians)."""
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx
