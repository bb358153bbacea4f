"""Automatic fiducials: template landmarks mapped from MNI and refined on the subject's scalp.

Each fiducial is defined in MNI152 space by a ray from a point inside the head, pointing out
of the head (nasion: forward at the level of the frontonasal junction; inion: backward at the
external occipital protuberance; LPA/RPA: sideways at the preauricular points). The ray is
mapped to the subject with the registration's affine part (the nonlinear field is constrained
by the brain only and is unreliable at the face and ears) and cast onto the subject's scalp
surface, so the fiducial lies on this subject's
scalp where the template ray meets it. Users can edit the result (`targets/fiducials.json`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_write_json
from navigator.core.errors import InputError, NavigatorError
from navigator.core.surface import Surface
from navigator.core.transforms import MniTransform, apply_affine
from navigator.targets.eeg import FIDUCIAL_NAMES, Fiducials
from navigator.targets.geometry import SurfaceQuery

#: (origin inside the head, outward direction) in MNI152 mm for each fiducial.
MNI_FIDUCIAL_RAYS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "nasion": ((0.0, 30.0, -32.5), (0.0, 1.0, 0.0)),
    "inion": ((0.0, -40.0, -14.0), (0.0, -1.0, 0.0)),
    "lpa": ((0.0, -18.0, -44.0), (-1.0, 0.0, 0.0)),
    "rpa": ((0.0, -18.0, -44.0), (1.0, 0.0, 0.0)),
}


def find_fiducials(scalp: Surface, transform: MniTransform) -> Fiducials:
    """Automatic fiducials on ``scalp`` (subject RAS mm) from the MNI template rays."""
    q = SurfaceQuery(scalp)
    found = {}
    # rays are mapped with the registration's affine part: the nonlinear field is constrained by
    # the brain only and outside it can tilt a ray into the jaw or neck (measured on the phantom:
    # affine 0.6-1.4 mm from ground truth, nonlinear 1.8-25 mm)
    mni_to_subject = np.linalg.inv(transform.subject_to_mni_affine)
    for name, (origin, direction) in MNI_FIDUCIAL_RAYS.items():
        o_mni = np.array(origin)
        o = apply_affine(mni_to_subject, o_mni)[0]
        d = mni_to_subject[:3, :3] @ np.array(direction)
        hit = q.ray_hit(o, d)
        if hit is None:
            # the ray misses (cut field of view): fall back to the closest scalp point to the
            # mapped template landmark 80 mm out along the ray
            far = apply_affine(mni_to_subject, o_mni + 80.0 * np.array(direction))[0]
            hit = q.closest_point(far)[0][0]
        found[name] = hit
    fid = Fiducials(**found, source="auto")
    problems = fid.check_plausible()
    if problems:
        raise NavigatorError("automatic fiducials are implausible (" + "; ".join(problems)
                             + "); check the MNI registration or set the fiducials by hand")
    return fid


def save_fiducials(fid: Fiducials, path: str | Path) -> Path:
    """Write fiducials as JSON (subject RAS mm) atomically."""
    atomic_write_json(path, {"coordinate_system": "subject scanner RAS (mm)", "source": fid.source,
                             **fid.as_dict()})
    return Path(path)


def load_fiducials(path: str | Path) -> Fiducials:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
        return Fiducials(**{n: d[n] for n in FIDUCIAL_NAMES}, source=d.get("source", "user"))
    except FileNotFoundError:
        raise InputError(path, "no fiducials file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"not a fiducials JSON with nasion, inion, lpa, rpa ({exc})") from None
