"""Automatic fiducials: template landmarks mapped from MNI and refined on the subject's scalp.

Each fiducial is defined in MNI152 space by a ray from a point inside the head, pointing out
of the head (nasion: forward at the level of the frontonasal junction; inion: backward at the
external occipital protuberance; LPA/RPA: sideways at the preauricular points). The ray is
mapped to the subject with the registration's affine part (the nonlinear field is constrained
by the brain only and is unreliable at the face and ears) and cast onto the subject's scalp
surface, so the fiducial lies on this subject's
scalp where the template ray meets it. Users can edit the result (`targets/fiducials.json`).

Where the image has no scalp at a landmark, the ray meets nothing (a field of view that ends
before the nose or the ears) or, for the nasion, meets the scalp far inside the head (a
defaced scan has its face zeroed, and the nasion's ray meets the flat cut). The fiducial is
then the template's own landmark (where the ray leaves the head of the shipped head priors),
mapped with the same affine, and it is listed in ``Fiducials.estimated`` so the user is told
to check it. Only the nasion is judged by depth: defacing removes the face, and a head that is
not head-shaped (the sphere sample) has its inion and ears well inside the template's.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_write_json
from navigator.core.errors import InputError, NavigatorError
from navigator.core.surface import Surface
from navigator.core.transforms import MniTransform, apply_affine
from navigator.targets.eeg import FIDUCIAL_NAMES, Fiducials
from navigator.targets.geometry import SurfaceQuery

log = logging.getLogger("navigator")

#: (origin inside the head, outward direction) in MNI152 mm for each fiducial.
MNI_FIDUCIAL_RAYS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "nasion": ((0.0, 30.0, -32.5), (0.0, 1.0, 0.0)),
    "inion": ((0.0, -40.0, -14.0), (0.0, -1.0, 0.0)),
    "lpa": ((0.0, -18.0, -44.0), (-1.0, 0.0, 0.0)),
    "rpa": ((0.0, -18.0, -44.0), (1.0, 0.0, 0.0)),
}


#: A nasion found farther than this (mm, along the ray) inside the template's landmark means
#: the image has no face there (defaced): the template's landmark is used instead. Measured on intact and defaced heads: docs/validation.md, Defaced scans.
MISSING_SCALP_MM = 15.0


@functools.lru_cache(maxsize=1)
def template_landmarks_mni() -> dict[str, np.ndarray]:
    """Each fiducial on the template head, MNI152 mm: the last point of its ray inside the head
    of the shipped head priors (background probability < 0.5), found in 0.25 mm steps."""
    from scipy import ndimage as ndi

    from navigator.segmentation.head_priors import load_head_priors

    hp = load_head_priors()
    mni_to_voxel = np.linalg.inv(hp.affine) @ hp.mni152_to_atlas
    steps = np.arange(0.0, 150.0, 0.25)
    out = {}
    for name, (origin, direction) in MNI_FIDUCIAL_RAYS.items():
        points = np.asarray(origin, float) + steps[:, None] * np.asarray(direction, float)
        vox = apply_affine(mni_to_voxel, points)
        background = ndi.map_coordinates(hp.priors[0].astype(np.float32), vox.T, order=1, cval=255.0) / 255.0
        inside = np.flatnonzero(background < 0.5)
        if inside.size == 0:
            raise NavigatorError(f"head priors: the {name} ray never enters the template head")
        out[name] = points[inside[-1]]
    return out


def find_fiducials(scalp: Surface, transform: MniTransform) -> Fiducials:
    """Automatic fiducials on ``scalp`` (subject RAS mm) from the MNI template rays.

    A fiducial whose ray misses the scalp, or a nasion more than :data:`MISSING_SCALP_MM`
    inside the template's landmark, is the template's landmark (listed in ``estimated``).
    """
    q = SurfaceQuery(scalp)
    found = {}
    estimated = []
    landmarks = template_landmarks_mni()
    # rays are mapped with the registration's affine part: the nonlinear field is constrained by
    # the brain only and outside it can tilt a ray into the jaw or neck (measured on the phantom:
    # affine 0.6-1.4 mm from ground truth, nonlinear 1.8-25 mm)
    mni_to_subject = np.linalg.inv(transform.subject_to_mni_affine)
    for name, (origin, direction) in MNI_FIDUCIAL_RAYS.items():
        o_mni = np.array(origin)
        o = apply_affine(mni_to_subject, o_mni)[0]
        d = mni_to_subject[:3, :3] @ np.array(direction)
        hit = q.ray_hit(o, d)
        landmark = apply_affine(mni_to_subject, landmarks[name])[0]
        depth = None if hit is None else float(np.dot(landmark - hit, d / np.linalg.norm(d)))
        if depth is None or (name == "nasion" and depth > MISSING_SCALP_MM):
            # no scalp where the template has its landmark: removed face/ears or a cut image
            found[name] = landmark
            estimated.append(name)
            where = "misses the scalp" if depth is None else f"meets the scalp {depth:.0f} mm inside the template's landmark"
            log.warning("%s: the template ray %s; the image has no scalp there (face or ears removed, or "
                        "the field of view ends): placed at the MNI template's landmark, check it", name, where)
        else:
            found[name] = hit
    fid = Fiducials(**found, source="auto", estimated=tuple(estimated))
    problems = fid.check_plausible()
    if problems:
        raise NavigatorError("automatic fiducials are implausible (" + "; ".join(problems)
                             + "); check the MNI registration or set the fiducials by hand")
    return fid


def save_fiducials(fid: Fiducials, path: str | Path) -> Path:
    """Write fiducials as JSON (subject RAS mm) atomically."""
    extra = {"estimated_from_template": list(fid.estimated)} if fid.estimated else {}
    atomic_write_json(path, {"coordinate_system": "subject scanner RAS (mm)", "source": fid.source,
                             **fid.as_dict(), **extra})
    return Path(path)


def load_fiducials(path: str | Path) -> Fiducials:
    path = Path(path)
    try:
        d = json.loads(path.read_text())
        estimated = tuple(str(n) for n in d.get("estimated_from_template", ()) if n in FIDUCIAL_NAMES)
        return Fiducials(**{n: d[n] for n in FIDUCIAL_NAMES}, source=d.get("source", "user"), estimated=estimated)
    except FileNotFoundError:
        raise InputError(path, "no fiducials file") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"not a fiducials JSON with nasion, inion, lpa, rpa ({exc})") from None
