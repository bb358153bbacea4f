"""Export many plans to many formats at once (used by ``navigator batch``)."""

from __future__ import annotations

import logging
from pathlib import Path

from navigator.core.errors import NavigatorError
from navigator.export import export_plan
from navigator.export.plan import Plan, load_plan
from navigator.export.registry import Plugin, get_plugin, plugins
from navigator.export.safety import check_plan_image

log = logging.getLogger(__name__)


def _has_content(plugin: Plugin, plan: Plan) -> bool:
    have = {"coil_poses": bool(plan.coil_poses), "targets": bool(plan.targets),
            "montages": bool(plan.montages), "entries": False}
    if "entries" in plugin.carries:
        have["entries"] = any(t.entry is not None for t in plan.targets) or any(p.target for p in plan.coil_poses)
        if plugin.carries == ("targets", "entries"):  # EntryTarget pairs need an entry
            return have["entries"]
    return any(have.get(c, False) for c in plugin.carries)


def export_all_plans(plan_files: list[Path], out_dir: str | Path, formats: str | list[str] = "all",
                     t1: str | Path | None = None) -> list[Path]:
    """Export each plan.json with each format into ``out_dir/<plan folder>/<format><ext>``.

    Args:
        plan_files: plan.json paths (typically ``plans/*/plan.json``).
        out_dir: output folder.
        formats: "all" (every exporter that can hold something of the plan) or format names.
        t1: the subject's T1; a plan made on another image is refused (NavigatorError).
    Returns:
        The files written.
    """
    out_dir = Path(out_dir)
    chosen = plugins("exporter") if formats == "all" else [get_plugin(f, "exporter") for f in formats]
    written: list[Path] = []
    for plan_file in plan_files:
        plan = load_plan(plan_file)
        check_plan_image(plan, t1_path=t1)
        folder = out_dir / Path(plan_file).parent.name
        for plugin in chosen:
            if not _has_content(plugin, plan):
                continue
            if plugin.name == "ant-visor2" and plan.image is None:
                log.warning("%s: no image block, skipping %s", plan_file, plugin.name)
                continue
            out = folder / f"{plugin.name}{plugin.extensions[0]}"
            try:
                written.append(export_plan(plan, plugin.name, out))
            except NavigatorError as exc:
                if formats != "all":
                    raise
                log.warning("%s: %s export skipped: %s", plan_file, plugin.name, exc)
    return written
