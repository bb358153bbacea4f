"""Lazy access to a subject's head geometry: scalp, middle grey-matter surface, MNI transform,
fiducials and EEG positions, each loaded from the workspace the first time it is needed."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from navigator.core.errors import NavigatorError
from navigator.core.surface import Surface
from navigator.core.transforms import MniTransform
from navigator.core.workspace import Workspace
from navigator.io.transforms import load_mni_transform
from navigator.io.eeg_positions import EegPositions
from navigator.targets.eeg import Fiducials
from navigator.targets.geometry import SurfaceQuery

USER_TARGETS = "targets/targets.json"


class HeadContext:
    """Everything target resolution needs from one workspace (see module docstring)."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def _surface(self, key: str, what: str) -> Surface:
        from navigator.io.surfaces import read_surface

        path = self.ws.path(key)
        if not path.exists():
            raise NavigatorError(f"{self.ws.root}: no {what} surface ({self.ws.relpath(path)}); run `navigator mesh`")
        return read_surface(path)

    @cached_property
    def scalp(self) -> Surface:
        """The scalp surface file, else the outer boundary of the head mesh."""
        if not self.ws.path("scalp").exists() and self.ws.path("mesh").exists():
            from navigator.io.gmsh import read_msh
            from navigator.io.mesh_boundary import outer_surface

            return outer_surface(read_msh(self.ws.path("mesh")))
        return self._surface("scalp", "scalp")

    @cached_property
    def scalp_query(self) -> SurfaceQuery:
        return SurfaceQuery(self.scalp)

    @cached_property
    def cortex(self) -> Surface | None:
        """Middle grey-matter surface, or None for head models without grey matter (spheres)."""
        path = self.ws.path("middle_gm")
        return self._surface("middle_gm", "middle grey-matter") if path.exists() else None

    @cached_property
    def cortex_query(self) -> SurfaceQuery | None:
        return None if self.cortex is None else SurfaceQuery(self.cortex)

    @cached_property
    def transform(self) -> MniTransform | None:
        folder = self.ws.path("transforms")
        try:
            return load_mni_transform(folder)
        except NavigatorError:
            return None

    def require_transform(self) -> MniTransform:
        if self.transform is None:
            raise NavigatorError(f"{self.ws.root}: no MNI transforms; run `navigator segment` (or prepare)")
        return self.transform

    @cached_property
    def fiducials(self) -> Fiducials:
        from navigator.targets.fiducials import load_fiducials

        path = self.ws.path("fiducials")
        if not path.exists():
            raise NavigatorError(f"{self.ws.root}: no fiducials; run `navigator prepare` or `navigator fiducials`")
        return load_fiducials(path)

    @cached_property
    def eeg(self) -> EegPositions:
        from navigator.io.eeg_positions import read_eeg_csv

        path = self.ws.path("eeg")
        if not path.exists():
            raise NavigatorError(f"{self.ws.root}: no EEG positions ({self.ws.relpath(path)}); run `navigator prepare`")
        return read_eeg_csv(path, system="10-10")

    def user_targets(self) -> dict[str, dict]:
        path = self.ws.root / USER_TARGETS
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise NavigatorError(f"{path}: not valid JSON ({exc})") from None
        return dict(data.get("targets", {}))

    def save_user_target(self, name: str, entry: dict) -> Path:
        from navigator.core.atomic import atomic_write_json

        path = self.ws.root / USER_TARGETS
        targets = self.user_targets()
        targets[name] = entry
        atomic_write_json(path, {"coordinate_system": "subject scanner RAS (mm) unless 'space' says mni",
                                 "targets": targets})
        return path
