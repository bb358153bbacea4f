"""The planning session: subject, target, coil settings and pose, montage and results.

:class:`PlanState` is the single model the panels and views observe. Every edit (target,
coil, intensity, coil pose, montage) goes through a QUndoStack (:mod:`navigator.gui.undo`),
so Ctrl+Z / Ctrl+Shift+Z work on all of them; views redraw on the state's signals only.
The state round-trips through :class:`navigator.gui.session.SessionRecord` so a workspace
reopens as the user left it. All coordinates are subject scanner RAS in mm.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QUndoStack

from navigator.core.errors import NavigatorError
from navigator.gui.loaders import FieldResult, SubjectData, named_positions
from navigator.gui.montage import MONTAGE_PRESETS, ElectrodeRow, electrodes_from_rows, rows_from_electrodes
from navigator.gui.session import ResultEntry, SessionRecord
from navigator.gui.undo import MERGE_DISTANCE, MERGE_HANDLE, MERGE_INTENSITY, MERGE_MOVE, SetValueCommand

log = logging.getLogger("navigator.gui")

DEFAULT_COIL = "Magstim_D70"


class PlanState(QObject):
    subjectChanged = pyqtSignal()
    targetChanged = pyqtSignal()
    poseChanged = pyqtSignal()
    montageChanged = pyqtSignal()
    intensityChanged = pyqtSignal()
    resultChanged = pyqtSignal(str)  # key of the result on screen
    resultsListed = pyqtSignal()  # the list of stored results changed
    message = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self.subject: SubjectData | None = None
        self.ctx = None  # navigator.targets.head.Head: the subject's head session
        self.target = None  # navigator.targets.resolve.ResolvedTarget
        self.coil_name = DEFAULT_COIL
        self._coil = None
        self.intensity_mode = "mso"  # or "didt"
        self.mso = 50.0  # % of maximum stimulator output
        self.didt_a_per_us = 80.0  # A/us
        self.distance_mm = 4.0
        self.handle_angle_deg = 45.0
        self.explicit_pose: np.ndarray | None = None
        self.placement = None  # navigator.tms.pose.CoilPlacement
        self.montage: list[ElectrodeRow] = [replace(r) for r in MONTAGE_PRESETS["F3-Fp2 (depression, pads)"]]
        self.results: dict[str, FieldResult] = {}  # loaded results by key (folder relative to the workspace)
        self.entries: dict[str, ResultEntry] = {}  # results stored in the workspace, loaded or not
        self.current_result: str | None = None
        self.plan_name = "plan"

    # ------------------------------------------------------------------ subject
    @property
    def ws(self):
        return None if self.subject is None else self.subject.ws

    def set_subject(self, subject: SubjectData) -> None:
        from navigator.targets.head import Head

        self.subject = subject
        self.ctx = subject.ctx if subject.ctx is not None else (Head.of(subject.ws) if subject.ws else None)
        self.target = None
        self.placement = None
        self.explicit_pose = None
        self.results.clear()
        self.entries.clear()
        self.current_result = None
        self.undo_stack.clear()
        self.subjectChanged.emit()
        self.targetChanged.emit()
        self.poseChanged.emit()
        self.montageChanged.emit()

    def require_workspace(self, what: str):
        if self.ws is None:
            raise NavigatorError(f"{what} needs a subject workspace: open one (File > Open) first")
        return self.ws

    def require_head_model(self, what: str):
        ws = self.require_workspace(what)
        if not ws.has("mesh"):
            raise NavigatorError(f"{ws.root}: {what} needs the head model; prepare it first (Subject > Prepare)")
        return ws

    # ------------------------------------------------------------------ target (undoable)
    def set_target(self, target, text: str = "Set target") -> None:
        if target is self.target:
            return
        self.undo_stack.push(SetValueCommand(text, self._apply_target, (self.target, self.explicit_pose),
                                             (target, None)))

    def _apply_target(self, value) -> None:
        self.target, self.explicit_pose = value
        self.targetChanged.emit()
        self.update_pose()

    @property
    def target_point(self) -> np.ndarray | None:
        """The point the coil aims at: the cortical target, else the SPEC's point."""
        t = self.target
        if t is None:
            return None
        return np.asarray(t.cortical_point if t.cortical_point is not None else t.point, float)

    # ------------------------------------------------------------------ coil (undoable pose edits)
    @property
    def coil(self):
        if self._coil is None or self._coil.name.lower() != self.coil_name.lower():
            from navigator.tms.library import load_coil

            self._coil = load_coil(self.coil_name)
        return self._coil

    def set_coil_name(self, name: str) -> None:
        """Choose the coil (library name or file); undoable. The coil is loaded here so an
        unknown name fails now, with a message, and the state keeps the previous coil."""
        if name == self.coil_name:
            return
        from navigator.tms.library import load_coil

        coil = load_coil(name)
        self.undo_stack.push(SetValueCommand(f"Coil {coil.name}", self._apply_coil, (self.coil_name, self._coil),
                                             (name, coil)))

    def _apply_coil(self, value) -> None:
        self.coil_name, self._coil = value
        self.poseChanged.emit()
        self.intensityChanged.emit()

    # ------------------------------------------------------------------ intensity (undoable)
    def set_intensity(self, mode: str | None = None, mso: float | None = None, didt_a_per_us: float | None = None) -> None:
        """Set the intensity mode ("mso" or "didt") and/or its values; consecutive spin-box
        steps merge into one undo step."""
        new = (mode or self.intensity_mode, float(self.mso if mso is None else mso),
               float(self.didt_a_per_us if didt_a_per_us is None else didt_a_per_us))
        if new[0] not in ("mso", "didt"):
            raise NavigatorError(f"unknown intensity mode {new[0]!r}")
        old = (self.intensity_mode, self.mso, self.didt_a_per_us)
        if new == old:
            return
        text = f"Intensity {new[1]:g} %MSO" if new[0] == "mso" else f"Intensity {new[2]:g} A/us"
        self.undo_stack.push(SetValueCommand(text, self._apply_intensity, old, new, MERGE_INTENSITY))

    def _apply_intensity(self, value) -> None:
        self.intensity_mode, self.mso, self.didt_a_per_us = value
        self.intensityChanged.emit()

    def set_handle_angle(self, angle: float) -> None:
        angle = float((angle + 180.0) % 360.0 - 180.0)
        if abs(angle - self.handle_angle_deg) < 1e-9 and self.explicit_pose is None:
            return
        self.undo_stack.push(SetValueCommand(f"Handle angle {angle:.0f} deg", self._apply_handle,
                                             (self.handle_angle_deg, self.explicit_pose), (angle, None),
                                             MERGE_HANDLE))

    def _apply_handle(self, value) -> None:
        self.handle_angle_deg, self.explicit_pose = value
        self.update_pose()

    def set_distance(self, mm: float) -> None:
        if abs(mm - self.distance_mm) < 1e-9 and self.explicit_pose is None:
            return
        self.undo_stack.push(SetValueCommand(f"Coil distance {mm:.1f} mm", self._apply_distance,
                                             (self.distance_mm, self.explicit_pose), (float(mm), None),
                                             MERGE_DISTANCE))

    def _apply_distance(self, value) -> None:
        self.distance_mm, self.explicit_pose = value
        self.update_pose()

    def set_explicit_pose(self, pose: np.ndarray | None, text: str = "Set coil pose") -> None:
        self.undo_stack.push(SetValueCommand(text, self._apply_explicit, self.explicit_pose,
                                             None if pose is None else np.asarray(pose, float)))

    def move_coil(self, pose: np.ndarray, text: str = "Move coil") -> None:
        """A hand move of the coil (drag, keys): the pose becomes explicit; the moves of one drag
        or one key sequence merge into a single undo step until :meth:`end_move`."""
        self.undo_stack.push(SetValueCommand(text, self._apply_explicit, self.explicit_pose,
                                             np.asarray(pose, float).copy(), MERGE_MOVE))

    def end_move(self) -> None:
        """Close the current move: the next move is a new undo step."""
        n = self.undo_stack.count()
        if n:
            cmd = self.undo_stack.command(n - 1)
            if isinstance(cmd, SetValueCommand):
                cmd.seal()

    def _apply_explicit(self, pose) -> None:
        self.explicit_pose = pose
        self.update_pose()

    def update_pose(self) -> None:
        """Recompute the coil placement from the target, handle angle and distance."""
        from navigator.tms.pose import CoilPlacement, place_coil

        self.placement = None
        if self.explicit_pose is not None:
            self.placement = CoilPlacement(pose=self.explicit_pose, target=self.target_point,
                                           handle=self.explicit_pose[:3, 1].copy(), spec={"pose": "explicit"})
        elif self.target is not None and self.ctx is not None and self.subject is not None \
                and self.subject.scalp is not None:
            try:
                self.placement = place_coil(self.subject.scalp, self.target_point,
                                            handle_angle=self.handle_angle_deg, distance=self.distance_mm,
                                            spec={"target": self.target.spec})
            except NavigatorError as exc:
                self.message.emit(str(exc))
        self.poseChanged.emit()

    @property
    def pose(self) -> np.ndarray | None:
        return None if self.placement is None else self.placement.pose

    def didt(self) -> float:
        """Planned dI/dt in A/s."""
        if self.intensity_mode == "mso":
            return self.coil.didt_from_percent_mso(self.mso)
        return self.didt_a_per_us * 1e6

    # ------------------------------------------------------------------ montage (undoable)
    def set_montage(self, rows: list[ElectrodeRow], text: str = "Edit montage") -> None:
        new = [replace(r) for r in rows]
        if new == self.montage:
            return
        self.undo_stack.push(SetValueCommand(text, self._apply_montage, [replace(r) for r in self.montage], new))

    def _apply_montage(self, rows) -> None:
        self.montage = [replace(r) for r in rows]
        self.montageChanged.emit()

    def electrode_position(self, position: str) -> np.ndarray | None:
        if "," in position:
            try:
                return np.array([float(v) for v in position.split(",")], float)
            except ValueError:
                return None
        for k, v in named_positions(self.subject).items():
            if k.lower() == position.strip().lower():
                return v
        return None

    # ------------------------------------------------------------------ results
    def set_entries(self, entries: list[ResultEntry]) -> None:
        """The results stored in the workspace (listed; loaded only when selected)."""
        self.entries = {e.key: e for e in entries}
        for k in [k for k in self.results if k not in self.entries]:
            self.results.pop(k)
        self.resultsListed.emit()

    def add_result(self, result: FieldResult, key: str | None = None) -> None:
        """A loaded result; it becomes the result on screen."""
        key = key or result.key or result.kind
        result.key = key
        self.results[key] = result
        self.current_result = key
        self.resultChanged.emit(key)

    def select_result(self, key: str) -> None:
        if key in self.results and key != self.current_result:
            self.current_result = key
            self.resultChanged.emit(key)

    def reshow_result(self) -> None:
        """The result on screen changed its shown map (e.g. TI envelope along the normal / maximal): redraw."""
        if self.current_result in self.results:
            self.resultChanged.emit(self.current_result)

    @property
    def shown_result(self) -> FieldResult | None:
        return self.results.get(self.current_result or "")

    def latest_result(self, kind: str) -> FieldResult | None:
        """The result of ``kind`` added last (loaded results only)."""
        found = [r for r in self.results.values() if r.kind == kind]
        return found[-1] if found else None

    # ------------------------------------------------------------------ session
    def session_record(self) -> SessionRecord:
        """The state to store in the workspace (what reopening restores)."""
        return SessionRecord(
            target=None if self.target is None else self.target.to_json(), coil=self.coil_name,
            intensity_mode=self.intensity_mode, mso=self.mso, didt_a_per_us=self.didt_a_per_us,
            distance_mm=self.distance_mm, handle_angle_deg=self.handle_angle_deg,
            pose=None if self.explicit_pose is None else np.asarray(self.explicit_pose, float).tolist(),
            montage=[r.to_json() for r in self.montage],
            current_result=self.current_result, plan_name=self.plan_name)

    def apply_session(self, rec: SessionRecord) -> list[str]:
        """Restore a stored session (not an undo step: the undo history starts here); returns
        notes about what could not be restored."""
        from navigator.targets.resolve import ResolvedTarget

        notes = []
        if rec.coil:
            try:
                from navigator.tms.library import load_coil

                self._coil = load_coil(rec.coil)
                self.coil_name = rec.coil
            except NavigatorError as exc:
                notes.append(f"coil {rec.coil!r} of the last session is not available ({exc})")
        self.intensity_mode, self.mso, self.didt_a_per_us = rec.intensity_mode, float(rec.mso), float(rec.didt_a_per_us)
        self.distance_mm, self.handle_angle_deg = float(rec.distance_mm), float(rec.handle_angle_deg)
        self.plan_name = rec.plan_name or "plan"
        self.target = None
        if rec.target:
            try:
                self.target = ResolvedTarget.from_json(rec.target)
            except (TypeError, ValueError) as exc:
                notes.append(f"the last target could not be restored ({exc})")
        self.explicit_pose = None if rec.pose is None else np.asarray(rec.pose, float)
        if rec.montage:
            try:
                self.montage = [ElectrodeRow.from_json(m) for m in rec.montage]
            except (KeyError, TypeError, ValueError) as exc:
                notes.append(f"the last montage could not be restored ({exc})")
        self.undo_stack.clear()
        self.targetChanged.emit()
        self.intensityChanged.emit()
        self.montageChanged.emit()
        self.update_pose()
        return notes

    # ------------------------------------------------------------------ plan
    def build_plan(self, name: str | None = None):
        """The current plan as a :class:`navigator.export.plan.Plan` (RAS mm, navigator axes)."""
        from navigator.export.plan import CoilPose, ImageInfo, Montage, Plan, Target

        ws = self.require_workspace("a plan")
        name = name or self.plan_name
        image = None
        try:
            image = ImageInfo.from_nifti(ws.source_path("T1"))
        except NavigatorError as exc:
            log.info("plan without image identity: %s", exc)
        plan = Plan(name=name, subject=ws.subject_id, image=image)
        tname = None
        if self.target is not None:
            tname = self.target.name or "target"
            t = self.target
            plan.targets.append(Target(tname, self.target_point, entry=np.asarray(t.scalp_entry, float),
                                       description=t.description or t.spec))
        if self.placement is not None:
            mso = self.mso if self.intensity_mode == "mso" else None
            try:
                didt = self.didt()
            except NavigatorError:
                didt = None
            plan.coil_poses.append(CoilPose(f"{tname or 'coil'}-pose", self.placement.pose, target=tname,
                                            coil=self.coil_name, didt=didt, mso=mso,
                                            description=f"handle {self.handle_angle_deg:.0f} deg, "
                                                        f"distance {self.distance_mm:.1f} mm"))
        scalp = self.subject.scalp if self.subject is not None else None
        electrodes = electrodes_from_rows(self.montage, self.electrode_position, scalp)
        if electrodes:
            plan.montages.append(Montage("ti" if any(e.channel is not None for e in electrodes) else "tdcs", electrodes))
        return plan

    def plan_summary(self) -> dict[str, Any]:
        return {"target": None if self.target is None else self.target.name,
                "pose": None if self.pose is None else self.pose.tolist()}

    def montage_from_plan(self, plan) -> list[ElectrodeRow]:
        """The editor rows of the plan's first montage (channel, frequency and pad rotation kept)."""
        if not plan.montages:
            return []
        s = self.subject
        return rows_from_electrodes(plan.montages[0].electrodes, named_positions(s),
                                    s.scalp if s is not None else None)


def plan_path_default(ws, name: str) -> Path:
    return ws.path("plans") / name / "plan.json"
