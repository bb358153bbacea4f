"""What the desktop app remembers inside a workspace, and the results a workspace already holds.

No Qt here (plain data and files), so it is tested and used without a display.

* :class:`SessionRecord` is the planning state the user left: target, coil, intensity, coil
  pose (parameters and, when moved by hand or by an optimizer, the explicit 4x4 matrix),
  tDCS montage and the result that was on screen. It is written atomically to
  ``<workspace>/gui/session.json`` (:func:`save_session`) and read back when the workspace is
  opened again (:func:`load_session`). Coordinates are subject scanner RAS, mm.
* :func:`discover_results` lists the simulations, optimizations and plans found in
  ``simulations/*`` and ``plans/*`` (whoever wrote them: the app, the CLI, the batch runner,
  ``navigator demo``) without loading any field: the Results list shows them at once and a
  result is read from disk only when it is selected.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from navigator.core.workspace import Workspace

log = logging.getLogger("navigator.gui")

SESSION_FILE = "gui/session.json"
SESSION_VERSION = 1

#: result kinds, in the order the Results list shows them
KIND_LABELS = {"tms": "TMS", "tdcs": "tDCS", "tms-optimization": "TMS optimization",
               "tdcs-optimization": "tDCS optimization", "tms-delivered": "TMS delivered", "plan": "Plan"}


@dataclass
class SessionRecord:
    """The planning state of one workspace (see the module docstring). ``target`` is a
    :meth:`navigator.targets.resolve.ResolvedTarget.to_json` dict (restored without resolving
    again); ``pose`` a row-major 4x4 list (subject RAS mm) when the pose is explicit;
    ``montage`` a list of ``{position, current_ma, shape, size[, channel, frequency_hz, angle_deg]}``
    (:meth:`navigator.gui.montage.ElectrodeRow.to_json`)."""

    target: dict[str, Any] | None = None
    coil: str | None = None
    intensity_mode: str = "mso"
    mso: float = 50.0
    didt_a_per_us: float = 80.0
    distance_mm: float = 4.0
    handle_angle_deg: float = 45.0
    pose: list[list[float]] | None = None
    montage: list[dict[str, Any]] = field(default_factory=list)
    current_result: str | None = None
    plan_name: str = "plan"
    version: int = SESSION_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SessionRecord:
        known = {f for f in cls.__dataclass_fields__}
        rec = cls(**{k: v for k, v in d.items() if k in known})
        if rec.pose is not None:
            p = np.asarray(rec.pose, float)
            if p.shape != (4, 4) or not np.isfinite(p).all():
                raise ValueError(f"pose is not a 4x4 matrix of numbers: {rec.pose!r}")
        if rec.intensity_mode not in ("mso", "didt"):
            raise ValueError(f"unknown intensity mode {rec.intensity_mode!r}")
        return rec


def session_path(ws: Workspace) -> Path:
    return ws.root / SESSION_FILE


def save_session(ws: Workspace, record: SessionRecord) -> Path:
    """Write the session atomically (a crash never leaves half a file); returns the path."""
    from navigator.core.atomic import atomic_write_json

    path = session_path(ws)
    atomic_write_json(path, record.to_json())
    return path


def load_session(ws: Workspace) -> tuple[SessionRecord | None, str | None]:
    """The stored session and None, or (None, a message) when there is none or it is unreadable
    (an unreadable session never stops the workspace from opening)."""
    path = session_path(ws)
    if not path.exists():
        return None, None
    try:
        return SessionRecord.from_json(json.loads(path.read_text(encoding="utf-8"))), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, ValueError) as exc:
        return None, f"{path}: the saved session could not be read ({exc}); starting from defaults"


# ------------------------------------------------------------------------------ stored results
@dataclass(frozen=True)
class ResultEntry:
    """A result found in the workspace. ``key`` is its folder relative to the workspace
    (``simulations/tms``, ``plans/tms``); ``fields_dir`` the folder holding summary.json and the
    field files (``plans/NAME/fields`` for optimizations), None for a plan without fields."""

    key: str
    kind: str
    folder: Path
    fields_dir: Path | None
    plan_path: Path | None = None
    mtime: float = 0.0

    @property
    def label(self) -> str:
        return f"{KIND_LABELS.get(self.kind, self.kind)} - {self.key}"


def result_kind(summary: dict[str, Any]) -> str:
    """The kind of a result from its summary.json: its ``type``, else tDCS when it lists
    electrodes, else TMS."""
    t = summary.get("type")
    if isinstance(t, str) and t:
        return t
    return "tdcs" if "electrodes" in summary else "tms"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("skipping %s: %s", path, exc)
        return None
    return d if isinstance(d, dict) else None


def discover_results(ws: Workspace) -> list[ResultEntry]:
    """Simulations (``simulations/*/summary.json``), optimizations (``plans/*/summary.json``
    with ``fields/``) and plans (``plans/*/plan.json``) of the workspace, newest first within
    each kind; unreadable summaries are skipped with a log message."""
    out: list[ResultEntry] = []
    for group in ("simulations", "plans"):
        root = ws.path(group)
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            key = f"{group}/{folder.name}"
            summary_file = folder / "summary.json"
            plan = folder / "plan.json"
            plan_path = plan if plan.exists() else None
            if summary_file.exists():
                summary = _read_json(summary_file)
                if summary is None:
                    continue
                kind = result_kind(summary)
                fields = folder / "fields"
                if (fields / "summary.json").exists():
                    fields_dir: Path | None = fields
                elif any((folder / n).exists() for n in ("fields.msh", "middle_gm_fields.surf.gii", "magnE.nii.gz")):
                    fields_dir = folder
                else:
                    fields_dir = None
                if fields_dir is None and plan_path is None:
                    continue
                out.append(ResultEntry(key, kind, folder, fields_dir, plan_path, summary_file.stat().st_mtime))
            elif plan_path is not None:
                out.append(ResultEntry(key, "plan", folder, None, plan_path, plan_path.stat().st_mtime))
    order = list(KIND_LABELS)
    out.sort(key=lambda e: (order.index(e.kind) if e.kind in order else len(order), -e.mtime, e.key))
    return out
