"""The 3-D view: scalp, cortex coloured by |E|, target, coil at its pose with its axes,
electrodes, fiducials and EEG 10-10 positions (pyvista / pyvistaqt QtInteractor).

If VTK cannot render (no OpenGL, or ``NAVIGATOR_NO_3D=1``) the view degrades to a label that
says so; everything else in the application keeps working. Press ``P`` with the mouse over
the cortex to set the target there.
"""

from __future__ import annotations

import logging
import os

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from navigator.core.surface import Surface

log = logging.getLogger("navigator.gui")


def _polydata(surface: Surface):
    import pyvista as pv

    faces = np.hstack([np.full((len(surface.faces), 1), 3), surface.faces]).astype(np.int64).ravel()
    return pv.PolyData(np.asarray(surface.vertices, float), faces)


class View3D(QWidget):
    """See the module docstring. ``available`` tells whether 3-D rendering works."""

    targetPicked = pyqtSignal(object)  # world mm

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("view3d")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plotter = None
        self.reason = ""
        self.scalp_opacity = 0.35
        self._scalp = None
        self._cortex_poly = None
        self._render_pending = False
        self._head_centre: np.ndarray | None = None
        self._mode = "all"
        if os.environ.get("NAVIGATOR_NO_3D"):
            self.reason = "disabled by NAVIGATOR_NO_3D"
        else:
            try:
                from pyvistaqt import QtInteractor

                self.plotter = QtInteractor(self, auto_update=False)  # render on change only (no 5 Hz timer)
                self.plotter.set_background("#20242a")
                layout.addWidget(self.plotter.interactor)
                self._axes_widget = self.plotter.add_axes(labels_off=False)
            except Exception as exc:  # noqa: BLE001 - any VTK/OpenGL failure: degrade
                log.warning("3-D view unavailable: %s", exc)
                self.plotter = None
                self.reason = f"{type(exc).__name__}: {exc}"
        if self.plotter is None:
            lab = QLabel(f"3-D view unavailable ({self.reason}).\nSlice views and all planning functions still work.")
            lab.setObjectName("view3dUnavailable")
            lab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            lab.setWordWrap(True)
            layout.addWidget(lab)

    @property
    def available(self) -> bool:
        return self.plotter is not None

    def close_plotter(self) -> None:
        if self.plotter is not None:
            try:
                self.plotter.close()
            except Exception as exc:  # noqa: BLE001 - closing must not raise
                log.debug("closing the 3-D view: %s", exc)
            self.plotter = None

    def _render(self) -> None:
        """Render once after the current batch of changes (coalesced through the event loop)."""
        if self.plotter is not None and not self._render_pending:
            self._render_pending = True
            QTimer.singleShot(0, self._do_render)

    def _do_render(self) -> None:
        self._render_pending = False
        if self.plotter is not None:
            self.plotter.render()

    def _remove(self, name: str) -> None:
        if self.plotter is not None:
            self.plotter.remove_actor(name, reset_camera=False, render=False)

    # ------------------------------------------------------------------ content
    def clear(self) -> None:
        if self.plotter is None:
            return
        self.plotter.clear_actors()
        self._scalp = self._cortex_poly = None
        self._render()

    def set_head(self, scalp: Surface | None, cortex: Surface | None) -> None:
        if self.plotter is None:
            return
        self.plotter.clear_actors()
        self._scalp = self._cortex_poly = None
        if cortex is not None:
            self._cortex_poly = _polydata(cortex)
            self.plotter.add_mesh(self._cortex_poly, color="#d9c4b8", name="cortex", smooth_shading=True,
                                  pickable=True, render=False)
        self._head_centre = None if scalp is None else np.asarray(scalp.vertices, float).mean(axis=0)
        if scalp is not None:
            self._scalp = self.plotter.add_mesh(_polydata(scalp), color="#f2c8a0", opacity=self.scalp_opacity,
                                                name="scalp", smooth_shading=True, pickable=False, render=False)
        self.plotter.view_vector((-1.0, 0.9, 0.7), viewup=(0, 0, 1))  # from left, front, above
        self.plotter.reset_camera()
        try:
            self.plotter.enable_point_picking(callback=self._picked, show_message=False, left_clicking=False,
                                              show_point=False, pickable_window=False)
        except Exception as exc:  # noqa: BLE001 - picking is a convenience
            log.info("3-D point picking unavailable: %s", exc)
        self._render()

    def _picked(self, point, *args) -> None:
        if point is not None:
            self.targetPicked.emit(np.asarray(point, float).reshape(3))

    def set_scalp_opacity(self, opacity: float) -> None:
        self.scalp_opacity = float(opacity)
        if self._scalp is not None:
            self._scalp.GetProperty().SetOpacity(self.scalp_opacity)
            self._render()

    def set_cortex_field(self, cortex: Surface | None, scalars: np.ndarray | None, title: str = "E magnitude (V/m)") -> None:
        if self.plotter is None:
            return
        self._remove("cortex")
        if self.plotter.scalar_bars:
            self.plotter.remove_scalar_bar(render=False)
        if cortex is None:
            return
        poly = _polydata(cortex)
        self._cortex_poly = poly
        if scalars is None:
            self.plotter.add_mesh(poly, color="#d9c4b8", name="cortex", smooth_shading=True, pickable=True, render=False)
        else:
            vals = np.asarray(scalars, float)
            hi = float(np.percentile(vals, 99.9)) if vals.size else 1.0
            poly.point_data["field"] = vals
            self.plotter.add_mesh(poly, scalars="field", cmap="hot", clim=(0.0, max(hi, 1e-9)), name="cortex",
                                  smooth_shading=True, pickable=True, show_scalar_bar=False, render=False)
            self.plotter.add_scalar_bar(title=title, n_labels=4, fmt="%.2f", color="white",
                                        position_x=0.25, position_y=0.02, width=0.5, height=0.08, render=False)
        self._render()

    def set_target(self, point: np.ndarray | None) -> None:
        if self.plotter is None:
            return
        import pyvista as pv

        self._remove("target")
        if point is not None:
            self.plotter.add_mesh(pv.Sphere(radius=3.0, center=np.asarray(point, float)), color="red", name="target",
                                  pickable=False, render=False)
        self._render()

    def set_coil(self, coil, pose: np.ndarray | None) -> None:
        """Draw the coil casing (or its source points) at ``pose`` with its x/y/z axes."""
        if self.plotter is None:
            return
        import pyvista as pv

        for n in ("coil", "coil_x", "coil_y", "coil_z"):
            self._remove(n)
        if coil is None or pose is None:
            self._render()
            return
        pose = np.asarray(pose, float)
        R, c = pose[:3, :3], pose[:3, 3]
        if coil.casing:
            blocks = []
            for s in coil.casing:
                world = Surface(s.vertices @ R.T + c, s.faces)
                blocks.append(_polydata(world))
            mesh = blocks[0].merge(blocks[1:]) if len(blocks) > 1 else blocks[0]
            self.plotter.add_mesh(mesh, color="#3a7bd5", opacity=0.45, name="coil", pickable=False, render=False)
        else:
            pts = coil.source_points()
            if len(pts):
                self.plotter.add_mesh(pv.PolyData(pts @ R.T + c), color="#3a7bd5", point_size=3, name="coil",
                                      render_points_as_spheres=True, pickable=False, render=False)
        for axis, colour, name in ((0, "red", "coil_x"), (1, "green", "coil_y"), (2, "blue", "coil_z")):
            self.plotter.add_mesh(pv.Arrow(start=c, direction=R[:, axis], scale=40.0), color=colour, name=name,
                                  pickable=False, render=False)
        self._apply_mode()
        self._render()

    def set_electrodes(self, electrodes: list[tuple[str, np.ndarray, float, float]]) -> None:
        """Electrodes as (name, position mm, current mA, radius mm): flat discs on the scalp,
        red anodes, blue cathodes."""
        if self.plotter is None:
            return
        import pyvista as pv

        for n in [n for n in self.plotter.actors if str(n).startswith("electrode")]:
            self._remove(n)
        centre = self._head_centre
        for i, (name, pos, cur, radius) in enumerate(electrodes):
            pos = np.asarray(pos, float)
            colour = "#ff3030" if cur > 0 else "#3060ff" if cur < 0 else "#aaaaaa"
            normal = pos - centre if centre is not None else np.array([0.0, 0.0, 1.0])
            normal /= max(np.linalg.norm(normal), 1e-9)
            pad = pv.Cylinder(center=pos + 2.0 * normal, direction=normal, radius=max(radius, 3.0), height=4.0)
            self.plotter.add_mesh(pad, color=colour, name=f"electrode{i}", pickable=False, render=False)
        self._apply_mode()
        self._render()

    def set_mode(self, mode: str) -> None:
        """"tms": show the coil, hide electrodes; "tdcs": the reverse; "all": both."""
        self._mode = mode
        self._apply_mode()
        self._render()

    def _apply_mode(self) -> None:
        if self.plotter is None:
            return
        mode = self._mode
        for name, actor in self.plotter.actors.items():
            n = str(name)
            if n.startswith("coil"):
                actor.SetVisibility(mode != "tdcs")
            elif n.startswith("electrode"):
                actor.SetVisibility(mode != "tms")

    def set_points(self, fiducials: dict[str, np.ndarray], eeg: dict[str, np.ndarray], show_eeg: bool = True) -> None:
        if self.plotter is None:
            return
        import pyvista as pv

        for n in ("fiducials", "fiducial_labels", "eeg", "eeg_labels"):
            self._remove(n)
        if fiducials:
            pts = np.array(list(fiducials.values()), float)
            self.plotter.add_mesh(pv.PolyData(pts), color="yellow", point_size=12, render_points_as_spheres=True,
                                  name="fiducials", pickable=False, render=False)
            self.plotter.add_point_labels(pts, list(fiducials), font_size=10, name="fiducial_labels",
                                          shape_opacity=0.3, always_visible=False, render=False)
        if eeg and show_eeg:
            names = list(eeg)
            pts = np.array([eeg[n] for n in names], float)
            self.plotter.add_mesh(pv.PolyData(pts), color="white", point_size=6, render_points_as_spheres=True,
                                  name="eeg", pickable=False, render=False)
        self._render()
