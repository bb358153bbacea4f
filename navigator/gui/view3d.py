"""The 3-D view: scalp, cortex coloured by |E|, target, coil at its pose (semi-transparent
casing, windings and axes), electrodes, fiducials and EEG 10-10 positions (pyvista /
pyvistaqt QtInteractor).

A banner above the view says what the cortex colours are: the *live approximation* of the
live field engine or a *full FEM result* (and which). In live mode a left-drag that starts
on the coil (or on the scalp within :data:`GRAB_RADIUS_MM` of its centre) drags the coil
over the scalp (``coilDragged`` with the scalp point under the mouse, ``coilDragFinished``
at release); other drags rotate the view as usual.

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

#: a drag starting on the scalp this close (mm) to the coil centre grabs the coil
GRAB_RADIUS_MM = 35.0
BANNER_STYLES = {
    "live": "background:#c25e00;color:white;font-weight:bold;padding:3px;",
    "fem": "background:#2e7d32;color:white;font-weight:bold;padding:3px;",
    "none": "background:#3a3f47;color:#cfd4da;padding:3px;",
    "stale": "background:#7a6a00;color:white;font-weight:bold;padding:3px;",
}


def _polydata(surface: Surface):
    import pyvista as pv

    faces = np.hstack([np.full((len(surface.faces), 1), 3), surface.faces]).astype(np.int64).ravel()
    return pv.PolyData(np.asarray(surface.vertices, float), faces)


class View3D(QWidget):
    """See the module docstring. ``available`` tells whether 3-D rendering works."""

    targetPicked = pyqtSignal(object)  # world mm
    coilDragged = pyqtSignal(object)  # scalp point under the mouse, world mm
    coilDragFinished = pyqtSignal()

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
        self._glyph_for = None  # the coil whose glyph actors exist
        self._coil_pose: np.ndarray | None = None
        self._scalp_actor = None
        self._coil_actors: list = []
        self._drag_enabled = False
        self._dragging = False
        self._style = None
        self._observers: list[int] = []
        self.banner = QLabel("")
        self.banner.setObjectName("fieldSource")
        self.banner.setWordWrap(True)
        self.set_banner("none", "no field shown")
        layout.addWidget(self.banner)
        if os.environ.get("NAVIGATOR_NO_3D"):
            self.reason = "disabled by NAVIGATOR_NO_3D"
        else:
            try:
                from pyvistaqt import QtInteractor

                # render on change only (no 5 Hz timer); no multisampling: with software OpenGL it
                # costs 2.5x per frame (phantom: ~250 ms -> ~100 ms), which the live field feels
                self.plotter = QtInteractor(self, auto_update=False, multi_samples=0)
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
        if not self._render_pending:  # rendered by render_now in the meantime
            return
        self._render_pending = False
        if self.plotter is not None:
            self.plotter.render()

    def render_now(self) -> None:
        """Render the pending changes at once (the live map: drawn before the next pose is taken)."""
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

    def set_banner(self, kind: str, text: str) -> None:
        """What the cortex colours show: "live" (approximation), "fem" (full FEM result),
        "stale" (live pose outside the engine's region) or "none"."""
        self.banner_kind = kind
        self.banner.setStyleSheet(BANNER_STYLES.get(kind, BANNER_STYLES["none"]))
        if text != self.banner.text():
            self.banner.setText(text)

    def set_head(self, scalp: Surface | None, cortex: Surface | None) -> None:
        if self.plotter is None:
            return
        self.plotter.clear_actors()
        self._glyph_for = None
        self._coil_actors = []
        self._scalp = self._cortex_poly = None
        if cortex is not None:
            self._cortex_poly = _polydata(cortex)
            self.plotter.add_mesh(self._cortex_poly, color="#d9c4b8", name="cortex", smooth_shading=True,
                                  pickable=True, render=False)
        self._head_centre = None if scalp is None else np.asarray(scalp.vertices, float).mean(axis=0)
        if scalp is not None:
            self._scalp = self.plotter.add_mesh(_polydata(scalp), color="#f2c8a0", opacity=self.scalp_opacity,
                                                name="scalp", smooth_shading=True, pickable=False, render=False)
            self._scalp_actor = self._scalp
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

    def set_cortex_field(self, cortex: Surface | None, scalars: np.ndarray | None, title: str = "E magnitude (V/m)",
                         clim: tuple[float, float] | None = None) -> None:
        """Colour the cortex by ``scalars`` (per vertex; NaN = no value, drawn grey), or plain."""
        if self.plotter is None:
            return
        self._remove("cortex")
        if self.plotter.scalar_bars:
            self.plotter.remove_scalar_bar(render=False)
        if cortex is None:
            return
        poly = _polydata(cortex)
        self._cortex_poly = poly
        self._cortex_title = title if scalars is not None else None
        if scalars is None:
            self.plotter.add_mesh(poly, color="#d9c4b8", name="cortex", smooth_shading=True, pickable=True, render=False)
        else:
            vals = np.asarray(scalars, float)
            clim = clim or _clim(vals)
            poly.point_data["field"] = vals
            self.plotter.add_mesh(poly, scalars="field", cmap="hot", clim=clim, name="cortex", nan_color="#9a9290",
                                  smooth_shading=True, pickable=True, show_scalar_bar=False, render=False)
            self.plotter.add_scalar_bar(title=title, n_labels=4, fmt="%.2f", color="white",
                                        position_x=0.25, position_y=0.02, width=0.5, height=0.08, render=False)
        self._render()

    def update_cortex_values(self, cortex: Surface, values: np.ndarray, clim: tuple[float, float] | None = None,
                             title: str = "E magnitude (V/m)") -> None:
        """New per-vertex values on the coloured cortex in place (the live path: no new actor)."""
        if self.plotter is None:
            return
        vals = np.asarray(values, float)
        poly = self._cortex_poly
        actor = self.plotter.actors.get("cortex")
        if (poly is None or actor is None or "field" not in poly.point_data or poly.n_points != len(vals)
                or getattr(self, "_cortex_title", None) != title):
            self.set_cortex_field(cortex, vals, title, clim)
            return
        poly.point_data["field"][:] = vals
        poly.Modified()
        lo, hi = clim or _clim(vals)
        actor.mapper.scalar_range = (lo, hi)
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
        """Draw the coil at ``pose``: semi-transparent casing, winding lines and its x/y/z axes
        (see :mod:`navigator.gui.coil_glyph`). The geometry is built once per coil; moving the
        coil only changes the actors' matrix."""
        if self.plotter is None:
            return
        if coil is None or pose is None:
            for n in ("coil_casing", "coil_windings", "coil_x", "coil_y", "coil_z"):
                self._remove(n)
            self._glyph_for, self._coil_actors, self._coil_pose = None, [], None
            self._render()
            return
        if self._glyph_for is not coil or not self._coil_actors:
            self._build_coil(coil)
        self._coil_pose = np.asarray(pose, float)
        m = _vtk_matrix(self._coil_pose)
        for a in self._coil_actors:
            a.SetUserMatrix(m)
        self._apply_mode()
        self._render()

    def _build_coil(self, coil) -> None:
        import pyvista as pv

        from navigator.gui.coil_glyph import coil_glyph

        for n in ("coil_casing", "coil_windings", "coil_x", "coil_y", "coil_z"):
            self._remove(n)
        g = coil_glyph(coil)
        actors = []
        if g.casing:
            blocks = [_polydata(s) for s in g.casing]
            mesh = blocks[0].merge(blocks[1:]) if len(blocks) > 1 else blocks[0]
            actors.append(self.plotter.add_mesh(mesh, color="#5b8fd9", opacity=0.22, name="coil_casing",
                                                pickable=False, smooth_shading=False, render=False))
        if g.windings:
            pts, lines, off = [], [], 0
            for w in g.windings:
                pts.append(w)
                lines.append(np.concatenate([[len(w)], np.arange(off, off + len(w))]))
                off += len(w)
            poly = pv.PolyData(np.concatenate(pts))
            poly.lines = np.concatenate(lines).astype(np.int64)
            actors.append(self.plotter.add_mesh(poly, color="#e8a13a", line_width=2.5, name="coil_windings",
                                                pickable=False, render=False))
        for axis, colour, name in ((0, "red", "coil_x"), (1, "green", "coil_y"), (2, "blue", "coil_z")):
            d = np.zeros(3)
            d[axis] = 1.0
            actors.append(self.plotter.add_mesh(pv.Arrow(start=(0, 0, 0), direction=d, scale=30.0, shaft_radius=0.02,
                                                         tip_radius=0.06), color=colour, name=name, pickable=False,
                                                render=False))
        self._glyph_for, self._coil_actors = coil, actors
        self.coil_glyph = g

    def set_ghost_coils(self, poses: dict[str, np.ndarray], coil=None) -> None:
        """Outline coils (windings only) at named comparison poses, with their names."""
        if self.plotter is None:
            return
        import pyvista as pv

        for n in [n for n in self.plotter.actors if str(n).startswith("ghost")]:
            self._remove(n)
        if coil is not None and poses:
            from navigator.gui.coil_glyph import coil_glyph

            g = coil_glyph(coil)
            colours = ("#7fd3ff", "#c58cff", "#9cff8c")
            for i, (name, pose) in enumerate(poses.items()):
                pose = np.asarray(pose, float)
                lines = g.windings or [np.array([[-40, 0, 0], [40, 0, 0.0]])]
                for j, w in enumerate(lines[:400]):
                    world = w @ pose[:3, :3].T + pose[:3, 3]
                    self.plotter.add_mesh(pv.lines_from_points(world), color=colours[i % 3], line_width=1.5,
                                          name=f"ghost_{name}_{j}", pickable=False, render=False)
                self.plotter.add_point_labels(pose[:3, 3:4].T - 25 * pose[:3, 2], [name], font_size=11,
                                              text_color=colours[i % 3], name=f"ghost_{name}_label",
                                              shape_opacity=0.0, show_points=False, always_visible=True, render=False)
        self._render()

    # ------------------------------------------------------------------ dragging the coil
    def enable_coil_drag(self, on: bool) -> None:
        """Left-drag on the coil moves it (live mode); see the module docstring."""
        if self.plotter is None or on == self._drag_enabled:
            return
        style = self.plotter.iren.interactor.GetInteractorStyle()
        if on:
            self._style = style
            self._observers = [style.AddObserver(ev, fn) for ev, fn in (
                ("LeftButtonPressEvent", self._on_press), ("MouseMoveEvent", self._on_move),
                ("LeftButtonReleaseEvent", self._on_release))]
        elif self._style is not None:
            for o in self._observers:
                self._style.RemoveObserver(o)
            self._observers, self._style = [], None
        self._drag_enabled = on
        self._dragging = False

    def _event_xy(self) -> tuple[int, int]:
        x, y = self.plotter.iren.interactor.GetEventPosition()
        return int(x), int(y)

    def pick_scalp(self, x: int, y: int) -> np.ndarray | None:
        """The scalp point under display position (x, y) (VTK display pixels, origin bottom left)."""
        import vtk

        if self._scalp_actor is None:
            return None
        picker = vtk.vtkCellPicker()
        picker.SetTolerance(0.0005)
        picker.PickFromListOn()
        picker.AddPickList(self._scalp_actor)
        was = self._scalp_actor.GetPickable()
        self._scalp_actor.SetPickable(True)
        try:
            hit = picker.Pick(x, y, 0, self.plotter.renderer)
        finally:
            self._scalp_actor.SetPickable(was)
        return np.array(picker.GetPickPosition(), float) if hit else None

    def _on_press(self, obj, event) -> None:
        p = self.pick_scalp(*self._event_xy()) if self._coil_pose is not None else None
        if p is not None and np.linalg.norm(p - self._coil_pose[:3, 3]) <= GRAB_RADIUS_MM:
            self._dragging = True
            return
        self._style.OnLeftButtonDown()

    def _on_move(self, obj, event) -> None:
        if not self._dragging:
            self._style.OnMouseMove()
            return
        p = self.pick_scalp(*self._event_xy())
        if p is not None:
            self.coilDragged.emit(p)

    def _on_release(self, obj, event) -> None:
        if self._dragging:
            self._dragging = False
            self.coilDragFinished.emit()
            return
        self._style.OnLeftButtonUp()

    def look_at(self, point, outward, side, distance_mm: float = 340.0) -> None:
        """Point the camera at ``point`` from outside the head: ``outward`` (unit, away from the
        head) tipped 35 degrees towards ``side``, so the coil does not sit between camera and map."""
        if self.plotter is None:
            return
        o = np.asarray(outward, float) / max(np.linalg.norm(outward), 1e-12)
        sd = np.asarray(side, float) - np.dot(side, o) * o
        sd /= max(np.linalg.norm(sd), 1e-12)
        d = np.cos(np.radians(35)) * o + np.sin(np.radians(35)) * sd
        cam = self.plotter.camera
        cam.focal_point = tuple(np.asarray(point, float))
        cam.position = tuple(np.asarray(point, float) + distance_mm * d)
        cam.up = (0.0, 0.0, 1.0) if abs(d[2]) < 0.9 else (0.0, 1.0, 0.0)
        self.plotter.renderer.ResetCameraClippingRange()
        self._render()

    def world_to_display(self, point) -> tuple[float, float]:
        """VTK display coordinates (pixels, origin bottom left) of a world point."""
        r = self.plotter.renderer
        r.SetWorldPoint(*np.asarray(point, float), 1.0)
        r.WorldToDisplay()
        x, y, _ = r.GetDisplayPoint()
        return float(x), float(y)

    def set_electrodes(self, electrodes: list[tuple]) -> None:
        """Electrodes as (name, position mm, current mA, radius mm[, label]): flat discs on the
        scalp, red anodes, blue cathodes; a label (e.g. the TI channel "ch1") is written beside
        the electrode with its name."""
        if self.plotter is None:
            return
        import pyvista as pv

        for n in [n for n in self.plotter.actors if str(n).startswith("electrode")]:
            self._remove(n)
        centre = self._head_centre
        label_pts, label_text = [], []
        for i, (name, pos, cur, radius, *rest) in enumerate(electrodes):
            pos = np.asarray(pos, float)
            colour = "#ff3030" if cur > 0 else "#3060ff" if cur < 0 else "#aaaaaa"
            normal = pos - centre if centre is not None else np.array([0.0, 0.0, 1.0])
            normal /= max(np.linalg.norm(normal), 1e-9)
            pad = pv.Cylinder(center=pos + 2.0 * normal, direction=normal, radius=max(radius, 3.0), height=4.0)
            self.plotter.add_mesh(pad, color=colour, name=f"electrode{i}", pickable=False, render=False)
            if rest and rest[0]:
                label_pts.append(pos + 8.0 * normal)
                label_text.append(f"{name} {rest[0]}")
        self.electrode_labels = label_text
        if label_pts:
            self.plotter.add_point_labels(np.array(label_pts), label_text, font_size=10, text_color="white",
                                          shape_color="#303030", shape_opacity=0.6, show_points=False,
                                          always_visible=True, name="electrode_labels", render=False)
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
            if n.startswith("coil") or n.startswith("ghost"):
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


def _clim(vals: np.ndarray) -> tuple[float, float]:
    good = vals[np.isfinite(vals)]
    hi = float(np.percentile(good, 99.9)) if good.size else 1.0
    return 0.0, max(hi, 1e-9)


def _vtk_matrix(pose: np.ndarray):
    import vtk

    m = vtk.vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            m.SetElement(i, j, float(pose[i, j]))
    return m
