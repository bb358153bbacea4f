"""Safety checks around exporting and importing plans.

* :func:`parse_xml` reads XML with defusedxml, refusing any entity declaration or external
  reference (XXE, "billion laughs") before anything is expanded or fetched.
* :func:`check_plan_image` refuses a plan whose image hash differs from the subject's T1
  (the navigator would show the targets on a different image) unless forced.
* :func:`sform_qform_warning` warns when the image's sform and qform differ: navigators differ
  in which of the two they use, so the same coordinates land in different places.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from navigator.core.atomic import sha256_file
from navigator.core.errors import InputError, NavigatorError

log = logging.getLogger(__name__)

#: Largest XML file we read (a Localite session log with 10^5 pulses is ~100 MB).
MAX_XML_BYTES = 512 * 1024 * 1024


def parse_xml(path: str | Path) -> ET.Element:
    """Parse an XML file safely; InputError naming the file for DTDs, entities or bad XML."""
    import defusedxml
    import defusedxml.ElementTree as DET

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(path, f"cannot read file ({exc.strerror})") from None
    if size > MAX_XML_BYTES:
        raise InputError(path, f"XML file too large ({size} bytes)")
    try:
        # A bare DOCTYPE is allowed (some navigator software writes one); any entity declaration
        # (internal: billion laughs; external: XXE) or external reference is refused before expansion.
        tree = DET.parse(str(path), forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise InputError(path, "refused: XML contains a DTD (possible entity-expansion or external-entity attack)") from None
    except defusedxml.EntitiesForbidden:
        raise InputError(path, "refused: XML declares entities (possible entity-expansion attack)") from None
    except defusedxml.ExternalReferenceForbidden:
        raise InputError(path, "refused: XML references an external resource") from None
    except defusedxml.DefusedXmlException as exc:
        raise InputError(path, f"refused: unsafe XML ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise InputError(path, f"not well-formed XML ({exc})") from None
    except (LookupError, ValueError) as exc:  # e.g. an unknown encoding in the XML declaration
        raise InputError(path, f"not well-formed XML ({exc})") from None
    return tree.getroot()


def sform_qform_warning(image, tol_mm: float = 1e-3) -> str | None:
    """A warning text if the plan image's sform and qform differ (or one is missing), else None.

    ``image`` is a :class:`navigator.export.plan.ImageInfo`. The matrices are compared on the
    voxel-grid corners so the tolerance is in mm.
    """
    if image is None:
        return None
    s, q = image.sform, image.qform
    if s is None or q is None:
        if s is None and q is None:
            return f"{image.path}: image has neither sform nor qform; navigators may place it differently"
        return None
    n = np.array(image.shape, float) - 1
    corners = np.array([[i, j, k, 1.0] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])
    d = float(np.abs(corners @ (s - q).T).max())
    if d > tol_mm:
        return (f"{image.path}: sform and qform differ by up to {d:.3g} mm on the image grid; navigators "
                "that use the qform (Brainsight NIfTI:Q, ANT visor2) and those that use the sform will "
                "disagree - rewrite the image with sform = qform before navigating")
    return None


def check_plan_image(plan, t1_path: str | Path | None = None, t1_sha256: str | None = None,
                     force: bool = False) -> list[str]:
    """Check that ``plan`` was made on the T1 the navigator will load.

    Compares ``plan.image.sha256`` with ``t1_sha256`` (or the hash of ``t1_path``). A mismatch
    raises NavigatorError unless ``force``; then (and for other issues) warning texts are
    returned and logged. Also reports the sform/qform disagreement.
    """
    warnings: list[str] = []
    image = plan.image
    if image is None:
        msg = f"plan {plan.name!r} records no image: cannot verify it matches the subject's T1"
        if (t1_path is not None or t1_sha256 is not None) and not force:
            raise NavigatorError(msg + " (use --force to export anyway)")
        warnings.append(msg)
    else:
        if t1_sha256 is None and t1_path is not None:
            t1_sha256 = sha256_file(t1_path)
        if t1_sha256 is not None and t1_sha256 != image.sha256:
            msg = (f"plan {plan.name!r} was made on an image with sha256 {image.sha256[:12]}..., but the "
                   f"subject's T1 {t1_path or ''} has sha256 {t1_sha256[:12]}...: targets would be shown on "
                   "a different image")
            if not force:
                raise NavigatorError(msg + " (use --force to export anyway)")
            warnings.append(msg)
        w = sform_qform_warning(image)
        if w:
            warnings.append(w)
    for w in warnings:
        log.warning("%s", w)
    return warnings


def subject_t1(subject_dir: str | Path) -> tuple[Path, str]:
    """(path, recorded sha256) of the T1 of a subject workspace."""
    from navigator.core.workspace import Workspace

    ws = Workspace.open(subject_dir)
    src = ws.sources().get("T1")
    if src is None:
        raise NavigatorError(f"{subject_dir}: workspace has no T1 image")
    return ws.root / src["path"], str(src["sha256"])
