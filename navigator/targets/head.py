"""The :class:`Head` session: one subject's head model, opened once from a :class:`Workspace`
and passed to every step (simulations, optimizations, targets).

It reads each part of the head model the first time a step needs it and keeps it: the tetrahedral
mesh and its conductivities (S/m), the FEM system, the scalp and middle grey-matter surfaces,
the MNI transforms, fiducials and EEG positions (all subject scanner RAS, mm; see
:class:`~navigator.targets.context.HeadContext`), the output grids of field maps, and the
targets the ``targets`` step resolved and recorded in ``targets/resolved.json``.

``Head.of(ws)`` returns the same session for the same :class:`Workspace` object, so the steps of
one job (a batch subject, a GUI session) share it; open the workspace again to see files that
another process changed.
"""

from __future__ import annotations

import json
import weakref
from functools import cached_property
from pathlib import Path

import numpy as np

from navigator.core.atomic import atomic_write_json
from navigator.core.errors import NavigatorError
from navigator.core.mesh import Mesh
from navigator.core.transforms import AFFINE_NAME, MNI_TO_SUBJECT_NAME, SUBJECT_TO_MNI_NAME
from navigator.core.workspace import Workspace
from navigator.fem.conductivity import conductivity_per_tet
from navigator.fem.outputs import OutputGrids
from navigator.fem.system import FemSystem
from navigator.io.gmsh import read_msh
from navigator.targets.context import USER_TARGETS, HeadContext
from navigator.targets.resolve import ResolvedTarget, resolve_target

#: where the targets step records the targets it resolved, and its manifest step name
RESOLVED = "targets/resolved.json"
TARGETS_STEP = "batch-targets"

_SESSIONS: weakref.WeakKeyDictionary[Workspace, Head] = weakref.WeakKeyDictionary()


def target_inputs(ws: Workspace) -> list[Path]:
    """The files target resolution reads (those present): surfaces, fiducials, EEG positions,
    MNI transforms and the user targets."""
    t = ws.path("transforms")
    cands = [ws.path("scalp"), ws.path("middle_gm"), ws.path("fiducials"), ws.path("eeg"),
             t / AFFINE_NAME, t / SUBJECT_TO_MNI_NAME, t / MNI_TO_SUBJECT_NAME, ws.root / USER_TARGETS]
    return [p for p in cands if p.exists()]


class Head(HeadContext):
    """One subject's head model (see module docstring)."""

    @classmethod
    def of(cls, ws: Workspace) -> Head:
        """The session of ``ws`` (created on first use, then shared)."""
        if not isinstance(ws, Workspace):
            raise TypeError(f"Head.of needs a Workspace, got {type(ws).__name__}")
        head = _SESSIONS.get(ws)
        if head is None:
            head = _SESSIONS[ws] = cls(ws)
        return head

    # ------------------------------------------------------------------ volume model
    @cached_property
    def mesh(self) -> Mesh:
        """The tetrahedral head mesh (``mesh/head.msh``, mm)."""
        if not self.ws.has("mesh"):
            raise NavigatorError(f"{self.ws.root}: subject has no head mesh (mesh/head.msh); "
                                 "run `navigator mesh` first")
        return read_msh(self.ws.path("mesh"))

    @cached_property
    def sigma(self) -> np.ndarray:
        """(M,) default conductivity of each tetrahedron, S/m (SimNIBS values)."""
        return conductivity_per_tet(self.mesh)

    def conductivity(self, overrides: dict[int, float] | None = None) -> np.ndarray:
        """(M,) conductivity per tetrahedron, S/m, with per-tag ``overrides``."""
        return self.sigma if not overrides else conductivity_per_tet(self.mesh, overrides)

    @cached_property
    def system(self) -> FemSystem:
        """The P1 FEM system of the mesh with the default conductivities."""
        return FemSystem(self.mesh, self.sigma)

    @property
    def has_eeg(self) -> bool:
        return self.ws.has("eeg")

    @cached_property
    def t1_grid(self) -> tuple[tuple[int, int, int], np.ndarray] | None:
        """(shape, 4x4 voxel -> subject RAS mm) of the workspace's T1 as stored, or None."""
        if not self.ws.has("t1"):
            return None
        import nibabel as nib

        img = nib.load(str(self.ws.path("t1")))
        return tuple(int(s) for s in img.shape[:3]), np.asarray(img.affine, float)

    def output_grids(self, nifti: bool = True) -> OutputGrids:
        """Where field outputs are sampled besides the mesh: the middle grey-matter surface, and
        (with ``nifti``) the T1 grid and the MNI transform when the workspace has them."""
        mni = None
        if nifti and (self.ws.path("transforms") / MNI_TO_SUBJECT_NAME).exists():
            mni = self.transform_or_reason()
        return OutputGrids(middle_gm=self.cortex, image_grid=self.t1_grid if nifti else None,
                           mni=mni if not isinstance(mni, str) else None,
                           mni_missing=mni if isinstance(mni, str) else None)

    def transform_or_reason(self):
        """The MNI transform, or the one-line reason it cannot be read."""
        from navigator.io.transforms import load_mni_transform

        try:
            return load_mni_transform(self.ws.path("transforms"))
        except Exception as exc:  # noqa: BLE001 - MNI outputs are optional; the reason is reported
            return str(exc)

    # ------------------------------------------------------------------ targets
    @cached_property
    def resolved(self) -> dict[str, ResolvedTarget]:
        """The targets recorded by the targets step (``targets/resolved.json``) while that record
        is current (same inputs); empty otherwise."""
        path = self.ws.root / RESOLVED
        record = self.ws.step(TARGETS_STEP)
        if not path.exists() or record is None:
            return {}
        if not self.ws.step_is_current(TARGETS_STEP, record.parameters, target_inputs(self.ws)):
            return {}
        try:
            data = json.loads(path.read_text())["targets"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise NavigatorError(f"{path}: not a resolved-targets file ({exc})") from None
        return {name: ResolvedTarget.from_json(entry) for name, entry in data.items()}

    def target(self, spec: str | ResolvedTarget) -> ResolvedTarget:
        """Target SPEC resolved on this head: the targets step's record when it has it, else
        resolved now (:func:`navigator.targets.resolve.resolve_target`). A target resolved
        before (e.g. picked in the GUI) is returned as it is."""
        if isinstance(spec, ResolvedTarget):
            return spec
        found = self.resolved.get(spec)
        if found is not None and found.spec == spec:
            return found
        return resolve_target(self, spec)

    def resolve_targets(self, names: list[str], force: bool = False) -> bool:
        """The targets step: resolve ``names`` and record them in ``targets/resolved.json``;
        False (nothing done) when the record is current."""
        params = {"names": list(names)}
        inputs = target_inputs(self.ws)
        out = self.ws.root / RESOLVED
        if not force and self.ws.step_is_current(TARGETS_STEP, params, inputs) and out.exists():
            return False
        resolved = {n: resolve_target(self, n) for n in names}
        atomic_write_json(out, {"targets": {n: t.to_json() for n, t in resolved.items()}})
        self.ws.record_step(TARGETS_STEP, params, inputs=inputs, outputs=[out])
        self.__dict__["resolved"] = resolved
        return True

    def save_user_target(self, name: str, entry: dict) -> Path:
        path = super().save_user_target(name, entry)
        self.__dict__.pop("resolved", None)
        return path


__all__ = ["Head", "RESOLVED", "TARGETS_STEP", "USER_TARGETS", "target_inputs"]
