"""Helpers shared by the format plugins: provenance text, qform-world conversion, entries."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from navigator import __version__
from navigator.core.errors import NavigatorError
from navigator.export.conventions import rotation_error
from navigator.export.plan import Plan
from navigator.export.safety import sform_qform_warning

log = logging.getLogger(__name__)


def provenance(plan: Plan, space_text: str, axes_text: str) -> str:
    """One line naming the plan, subject, image (with sha256), coordinate system and coil axes."""
    img = plan.image
    image = f"image {Path(img.path).name} sha256 {img.sha256}" if img is not None else "image unknown"
    subject = plan.subject or "unknown"
    return (f"navigator {__version__} plan {plan.name!r}; subject {subject}; {image}; "
            f"coordinates {space_text}, mm; coil axes: {axes_text}")


def require_image(plan: Plan, fmt: str):
    if plan.image is None:
        raise NavigatorError(f"format {fmt!r} needs the plan's image geometry (plan.json 'image' block); "
                             "this plan has none")
    return plan.image


def qform_transform(plan: Plan, fmt: str) -> np.ndarray | None:
    """Rigid 4x4 from plan world to the image's qform world, or None when they agree.

    Formats that position the plan on the NIfTI qform (Brainsight ``NIfTI:Q``, ANT visor2)
    need it when the plan's world came from a differing sform. Raises if the mapping is not
    rigid (the rotations could not be carried over).
    """
    img = plan.image
    if img is None or img.qform is None:
        return None
    if sform_qform_warning(img) is None:
        # agree to 1e-3 mm on the whole grid (float32 header rounding only): same world
        return None
    t = img.qform_world_from_plan_world()
    err, det = rotation_error(t[:3, :3])
    if err > 1e-6 or abs(det - 1) > 1e-6:
        raise NavigatorError(f"{img.path}: sform and qform differ by a non-rigid transform; {fmt} positions "
                             "plans on the qform - rewrite the image with sform = qform")
    log.warning("%s: converting plan coordinates from the sform world to the qform world for %s", img.path, fmt)
    return t


def apply_rigid(t: np.ndarray | None, pose: np.ndarray) -> np.ndarray:
    return pose.copy() if t is None else t @ pose


def apply_rigid_point(t: np.ndarray | None, p: np.ndarray) -> np.ndarray:
    return np.array(p, float) if t is None else t[:3, :3] @ p + t[:3, 3]


def entry_of(plan: Plan, target_name: str) -> np.ndarray | None:
    """Scalp entry point of a target: its own ``entry`` or the centre of the first pose aimed at it."""
    t = plan.target(target_name)
    if t is not None and t.entry is not None:
        return t.entry
    for p in plan.coil_poses:
        if p.target == target_name:
            return p.centre
    return None


def warn_dropped(fmt: str, what: str, n: int) -> None:
    if n:
        log.warning("%s cannot hold %s: %d item(s) not exported", fmt, what, n)
