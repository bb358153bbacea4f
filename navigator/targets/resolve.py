"""Target SPEC strings -> resolved targets on this subject's cortex and scalp.

SPEC forms (accepted everywhere a target is asked for):

===========================  ===============================================================
``fox``, ``ba46``, ...        a library target (MNI; :mod:`navigator.targets.library`) or a
                              user target saved in ``targets/targets.json``
``mni:x,y,z``                 MNI152 coordinates in mm (needs the MNI transforms)
``subject:x,y,z``             subject scanner RAS in mm
``eeg:F3``                    an EEG 10-10 position on this subject's scalp
``beam-f3``                   the Beam F3 position from this subject's head measurements
``rule:5cm:hotspot=SPEC``     5 cm (or ``5.5cm``, any ``Ncm``/``Nmm``) anterior to a motor
                              hotspot; ``SPEC`` is ``x,y,z`` (subject mm) or another SPEC
===========================  ===============================================================

Each resolves to a :class:`ResolvedTarget`: the cortical point (nearest point of the middle
grey-matter surface), the scalp entry (closest scalp point to the cortical point) and the
projection along the local scalp normal (the scalp point whose smoothed normal line passes
closest to the cortical point), the scalp-cortex distance, and MNI coordinates when the
subject has MNI transforms.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from navigator.core.errors import NavigatorError
from navigator.targets import library
from navigator.targets.context import HeadContext

SCALP_NORMAL_SMOOTHING_MM = 10.0


@dataclass
class ResolvedTarget:
    """A target resolved on one subject. Points are subject scanner RAS, mm."""

    name: str
    spec: str
    kind: str  # "cortical" (defined in the brain) or "scalp" (defined on the scalp)
    point: list[float]  # the point the SPEC defines
    cortical_point: list[float] | None
    cortical_normal: list[float] | None  # outward normal of the middle GM surface there
    scalp_entry: list[float]  # closest scalp point to the cortical point (or to `point`)
    scalp_normal_projection: list[float]  # scalp point whose normal line passes through it
    scalp_normal: list[float]  # smoothed outward scalp normal at the scalp entry
    scalp_cortex_distance_mm: float | None
    mni: list[float] | None  # MNI coordinates of the cortical point (or of `point`)
    description: str = ""
    reference: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["coordinate_system"] = "subject scanner RAS (mm); 'mni' in MNI152 (mm)"
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ResolvedTarget:
        """The target :meth:`to_json` wrote (e.g. an entry of ``targets/resolved.json``)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


_VEC = r"\s*(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*"
_XYZ = re.compile(rf"^{_VEC},{_VEC},{_VEC}$")


def parse_xyz(text: str) -> np.ndarray:
    m = _XYZ.match(text)
    if not m:
        raise NavigatorError(f"expected three numbers 'x,y,z' in mm, got {text!r}")
    return np.array([float(g) for g in m.groups()])


def _parse_distance(text: str) -> float:
    m = re.match(r"^(\d+(?:\.\d+)?)\s*(cm|mm)$", text.strip().lower())
    if not m:
        raise NavigatorError(f"rule distance must look like 5cm, 5.5cm or 55mm, got {text!r}")
    return float(m.group(1)) * (10.0 if m.group(2) == "cm" else 1.0)


def target_point(ctx: HeadContext, spec: str) -> tuple[np.ndarray, str, dict[str, Any]]:
    """The point a SPEC defines (subject RAS mm), its kind and descriptive info."""
    spec = spec.strip()
    low = spec.lower()
    if low.startswith("mni:"):
        mni = parse_xyz(spec[4:])
        return ctx.require_transform().mni_to_subject(mni)[0], "cortical", {"mni_input": mni.tolist()}
    if low.startswith("subject:"):
        return parse_xyz(spec[8:]), "cortical", {}
    if _XYZ.match(spec):
        return parse_xyz(spec), "cortical", {}
    if low.startswith("eeg:"):
        return ctx.eeg[spec[4:].strip()], "scalp", {"description": f"EEG 10-10 position {spec[4:].strip()}"}
    if low == "beam-f3":
        from navigator.targets.rules import beam_f3

        p, m = beam_f3(ctx.scalp, ctx.fiducials, ctx.eeg)
        return p, "scalp", {"description": "Beam F3 from the subject's head measurements",
                            "reference": "Beam et al. 2009, Brain Stimul 2:50-54",
                            "head_measurements_mm": asdict(m)}
    if low.startswith("rule:"):
        from navigator.targets.rules import anterior_rule

        body = spec[5:]
        if ":hotspot=" not in body:
            raise NavigatorError(f"rule SPEC must be rule:DISTANCE:hotspot=SPEC, got {spec!r}")
        dist_text, hotspot_spec = body.split(":hotspot=", 1)
        hotspot, _, _ = target_point(ctx, hotspot_spec)
        if hotspot_spec.lower().startswith(("eeg:", "beam")) is False:
            hotspot = ctx.scalp_query.closest_point(hotspot)[0][0]
        d = _parse_distance(dist_text)
        return anterior_rule(ctx.scalp, ctx.fiducials, hotspot, d), "scalp", {
            "description": f"{dist_text} anterior to the motor hotspot", "hotspot": hotspot.tolist(),
            "reference": "Pascual-Leone et al. 1996; Herbsman et al. 2009 (5.5 cm)"}
    user = ctx.user_targets()
    if spec in user:
        entry = user[spec]
        p = np.asarray(entry["point"], float)
        if entry.get("space", "subject") == "mni":
            p = ctx.require_transform().mni_to_subject(p)[0]
        return p, entry.get("kind", "cortical"), {"description": entry.get("description", "user target"),
                                                   "reference": entry.get("reference", "")}
    lib = library.lookup(spec)
    if lib is not None:
        kind = "scalp" if lib.name == "f3-scalp" else "cortical"
        return ctx.require_transform().mni_to_subject(np.array(lib.mni))[0], kind, {
            "description": lib.description, "reference": lib.reference, "mni_input": list(lib.mni)}
    known = ", ".join(list(library.LIBRARY) + list(user))
    raise NavigatorError(f"unknown target {spec!r}: use a library name ({known}), mni:x,y,z, subject:x,y,z, "
                         "eeg:NAME, beam-f3 or rule:5cm:hotspot=x,y,z")


def resolve_target(ctx: HeadContext, spec: str, name: str | None = None) -> ResolvedTarget:
    """Resolve ``spec`` on the subject in ``ctx`` (see module docstring)."""
    point, kind, info = target_point(ctx, spec)
    cortical = normal = None
    if ctx.cortex_query is not None:
        cp, _ = ctx.cortex_query.closest_point(point)
        cortical = cp[0]
        normal = ctx.cortex_query.normal_at(cortical, smoothing_mm=3.0)[0]
    anchor = cortical if cortical is not None else point
    sq = ctx.scalp_query
    entry = sq.closest_point(anchor)[0][0] if kind == "cortical" or cortical is not None else point
    if kind == "scalp":
        entry = sq.closest_point(point)[0][0]
    projection = _normal_projection(ctx, anchor, entry)
    scalp_normal = sq.normal_at(entry, smoothing_mm=SCALP_NORMAL_SMOOTHING_MM)[0]
    mni = None
    if ctx.transform is not None:
        mni = ctx.transform.subject_to_mni(anchor)[0].tolist()
    return ResolvedTarget(
        name=name or spec,
        spec=spec,
        kind=kind,
        point=np.asarray(point).tolist(),
        cortical_point=None if cortical is None else cortical.tolist(),
        cortical_normal=None if normal is None else normal.tolist(),
        scalp_entry=entry.tolist(),
        scalp_normal_projection=projection.tolist(),
        scalp_normal=scalp_normal.tolist(),
        scalp_cortex_distance_mm=None if cortical is None else float(np.linalg.norm(entry - cortical)),
        mni=mni,
        description=info.pop("description", ""),
        reference=info.pop("reference", ""),
        extra=info,
    )


def _normal_projection(ctx: HeadContext, anchor: np.ndarray, near: np.ndarray, radius_mm: float = 40.0) -> np.ndarray:
    """Scalp vertex near ``near`` whose smoothed outward normal line passes closest to ``anchor``."""
    sq = ctx.scalp_query
    idx = np.array(sq.tree.query_ball_point(near, radius_mm))
    if len(idx) == 0:
        return near
    v = ctx.scalp.vertices[idx]
    n = _smoothed_vertex_normals(ctx)[idx]
    w = anchor - v
    along = (w * n).sum(1)
    perp = np.linalg.norm(w - along[:, None] * n, axis=1)
    perp[along > 0] = np.inf  # the anchor must lie inside (against the outward normal)
    if not np.isfinite(perp).any():
        return near
    return sq.closest_point(v[int(np.argmin(perp))])[0][0]


def _smoothed_vertex_normals(ctx: HeadContext) -> np.ndarray:
    cached = getattr(ctx, "_smoothed_scalp_normals", None)
    if cached is None:
        from navigator.targets.geometry import smooth_vertex_normals

        cached = smooth_vertex_normals(ctx.scalp, SCALP_NORMAL_SMOOTHING_MM)
        ctx._smoothed_scalp_normals = cached
    return cached


def list_targets(ctx: HeadContext) -> list[ResolvedTarget]:
    """Every target resolvable on this subject (skipping, with a reason, those that are not)."""
    specs = [(n, n) for n in library.LIBRARY] + [(n, n) for n in ctx.user_targets()]
    specs += [("eeg:F3", "eeg:F3"), ("eeg:F4", "eeg:F4"), ("beam-f3", "beam-f3")]
    out = []
    for name, spec in specs:
        try:
            out.append(resolve_target(ctx, spec, name=name))
        except NavigatorError as exc:
            import logging

            logging.getLogger("navigator").info("target %s not resolvable: %s", name, exc)
    return out
