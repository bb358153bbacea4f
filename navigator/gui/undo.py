"""Undoable edits (QUndoStack): target, coil, intensity, coil pose and montage.

Each command stores the old and new value and applies them through a setter of the
:class:`navigator.gui.state.PlanState`, so undo/redo go through the same code path as the edit.
Consecutive drags of the same control merge into one undo step; :meth:`SetValueCommand.seal`
ends the merging (one mouse drag of the coil = one undo step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt6.QtGui import QUndoCommand


class SetValueCommand(QUndoCommand):
    """Set a value through ``apply(value)``; undo restores the old one."""

    def __init__(self, text: str, apply: Callable[[Any], None], old: Any, new: Any, merge_id: int = -1):
        super().__init__(text)
        self._apply = apply
        self.old = old
        self.new = new
        self._merge_id = merge_id
        self._sealed = False

    def seal(self) -> None:
        """Accept no further merges (the next edit of the same control is its own undo step)."""
        self._sealed = True

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)

    def id(self) -> int:
        return self._merge_id

    def mergeWith(self, other: QUndoCommand) -> bool:
        if self._sealed or self._merge_id < 0 or other.id() != self._merge_id or not isinstance(other, SetValueCommand):
            return False
        self.new = other.new
        return True


#: merge ids for continuous controls
MERGE_HANDLE = 1
MERGE_DISTANCE = 2
MERGE_INTENSITY = 3
MERGE_MOVE = 4
