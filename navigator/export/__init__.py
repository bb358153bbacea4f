"""Export plans to neuronavigation systems and import plans / delivered pulses back.

Public API::

    from navigator.export import export_plan, import_plan, load_plan, save_plan, Plan
    export_plan(plan, "localite", "targets.xml", space="ras")
    plan = import_plan("targets.xml")               # format detected from the file
    from navigator.export.pulses import read_pulse_log
    log = read_pulse_log("TriggerMarkers.xml")      # poses (N,4,4) RAS mm, navigator coil axes

Formats are plugins (:mod:`navigator.export.registry`); the first-party ones live in
``plugins/navigator_plugins``.
"""

from __future__ import annotations

from pathlib import Path

from navigator.core.errors import NavigatorError
from navigator.export.conventions import check_space
from navigator.export.plan import (
    CoilPose,
    Electrode,
    ImageInfo,
    Montage,
    Plan,
    Target,
    ensure_plan,
    load_plan,
    save_plan,
    validate_plan,
)

__all__ = [
    "CoilPose", "Electrode", "ImageInfo", "Montage", "Plan", "Target",
    "export_plan", "import_plan", "load_plan", "save_plan", "validate_plan",
]


def export_plan(plan: Plan, format: str, out: str | Path, space: str | None = None) -> Path:
    """Write ``plan`` with the exporter plugin ``format`` to ``out`` (atomically).

    ``space`` ("ras"/"lps") is accepted only by formats that support a choice; None picks the
    format's default.
    """
    from navigator.export.registry import get_plugin

    plugin = get_plugin(format, "exporter")
    validate_plan(plan)
    ensure_plan(plan)
    if space is None:
        space = plugin.coordinate_space if plugin.spaces else None
    else:
        space = check_space(space)
        if not plugin.spaces:
            # formats without a choice write RAS-type world coordinates (e.g. NIfTI qform RAS)
            if space != "ras":
                raise NavigatorError(f"format {plugin.name!r} has a fixed coordinate space "
                                     f"({plugin.coordinate_space}); --space {space} is not possible")
            space = None
        elif space not in plugin.spaces:
            raise NavigatorError(f"format {plugin.name!r} supports --space {', '.join(plugin.spaces)}, not {space}")
    assert plugin.write is not None
    out = Path(out)
    plugin.write(plan, out, space)
    return out


def import_plan(path: str | Path, format: str | None = None) -> Plan:
    """Read a navigation file back into a :class:`Plan` (RAS mm, navigator coil axes).

    Every importer's result goes through the same checks here: rounded rotations are
    re-orthonormalized (:mod:`navigator.export.rigid`; recorded in ``plan.pose_corrections`` and
    ``plan.notes``), a pose that is not rigid is refused naming the file and the pose, empty or
    repeated names get unique ones, and a file with nothing in it is refused.
    """
    from navigator.core.errors import InputError
    from navigator.export.plan import rigidify_plan
    from navigator.export.registry import call_reader, get_plugin, guess_plugin

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    pulse_plugin = _pulse_log_plugin(path, format)
    if pulse_plugin is not None:
        return _plan_from_pulse_log(path, pulse_plugin)
    plugin = get_plugin(format, "importer") if format else guess_plugin(path, "importer")
    assert plugin.read is not None
    plan = call_reader(plugin, plugin.read, path)
    if not plan.targets and not plan.coil_poses and not plan.montages:
        raise InputError(path, f"no targets or coil poses in the file (read as {plugin.name})")
    if plan.source is None:
        plan.source = f"{path} ({plugin.name})"
    _unique_names(plan)
    rigidify_plan(plan, path)
    validate_plan(plan, path)
    return plan


def _pulse_log_plugin(path: Path, format: str | None):
    """The pulse-log plugin to read ``path`` with when it is a delivered-pulse log, not a plan file:
    ``format`` names a pulse-log plugin, or no plan importer but one pulse-log reader recognises it."""
    from navigator.export.registry import _head, plugins

    logs = plugins("pulse-log")
    if format:
        return next((p for p in logs if p.name == format), None)
    head = _head(path)
    if any(p.sniff is not None and p.sniff(path, head) for p in plugins("importer")):
        return None
    sniffed = [p for p in logs if p.sniff is not None and p.sniff(path, head)]
    return sniffed[0] if len(sniffed) == 1 else None


def _plan_from_pulse_log(path: Path, plugin) -> Plan:
    """A delivered-pulse log (e.g. Localite TriggerMarkers) as a plan: one coil pose per tracked
    pulse, with the pulse's delivered dI/dt (A/s) and % MSO; untracked pulses are left out."""
    import math

    from navigator.export.pulses import read_pulse_log
    from navigator.export.rigid import summarize_corrections

    log = read_pulse_log(path, plugin.name)
    poses = []
    for i in range(len(log)):
        didt = None if log.didt is None or not math.isfinite(log.didt[i]) else float(log.didt[i])
        mso = None if log.mso is None or not math.isfinite(log.mso[i]) else float(log.mso[i])
        t = log.timestamps[i]
        poses.append(CoilPose(log.names[i], log.poses[i], didt=didt, mso=mso,
                              description=f"delivered pulse at {t:.3f} s" if math.isfinite(t) else "delivered pulse"))
    notes = (f"imported from the pulse log {path.name} ({plugin.name}): {len(log)} tracked pulse(s) as coil poses"
             + (f", {log.n_skipped} untracked left out" if log.n_skipped else "")
             + (f"; dI/dt from the {log.didt_source}" if log.didt_source else ""))
    line = summarize_corrections(log.pose_corrections, len(log))
    plan = Plan(name=path.stem, coil_poses=poses, notes=f"{notes}; {line}" if line else notes,
                source=f"{path} ({plugin.name})", pose_corrections=list(log.pose_corrections))
    _unique_names(plan)
    validate_plan(plan, path)
    return plan


def _unique_names(plan: Plan) -> None:
    """Give empty and repeated target / pose names unique ones ("M1", "M1 (2)"); note the renames."""
    renamed = 0
    for items, stem in ((plan.targets, "target"), (plan.coil_poses, "pose")):
        seen: set[str] = set()
        for k, item in enumerate(items):
            name = str(item.name or "").strip() or f"{stem}-{k + 1}"
            base, n = name, 1
            while name in seen:
                n += 1
                name = f"{base} ({n})"
            if name != item.name:
                renamed += 1
                item.name = name
            seen.add(name)
    if renamed:
        line = f"{renamed} empty or repeated name(s) made unique"
        plan.notes = f"{plan.notes}; {line}" if plan.notes else line
