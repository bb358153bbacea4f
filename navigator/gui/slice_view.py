"""Three linked slice views painted with plain Qt (QImage), no VTK.

The displayed volume is RAS-ordered (:func:`navigator.gui.loaders.ras_volume`): array axis 0
increases to the subject's right, 1 anterior, 2 superior. Views use the neurological
convention (subject's left on screen left):

=========  ===========  ============  ===========
view       screen x     screen up     fixed axis
=========  ===========  ============  ===========
axial      L -> R (i)   A (j)         k
coronal    L -> R (i)   S (k)         j
sagittal   P -> A (j)   S (k)         i
=========  ===========  ============  ===========

Each view draws the orientation letters at its four edges (derived from this table), the
crosshair, the target and optional markers. Mouse: left click moves the cursor (all views
follow), Ctrl+left click sets the target there, right-drag changes window/level, the wheel
(or PageUp/PageDown) moves through slices. Voxel sizes are respected (square mm on screen).
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from navigator.core.volume import Volume

#: view -> (horizontal array axis, vertical array axis, fixed axis)
AXES = {"axial": (0, 1, 2), "coronal": (0, 2, 1), "sagittal": (1, 2, 0)}
#: letter at the low / high end of each RAS array axis
AXIS_LETTERS = {0: ("L", "R"), 1: ("P", "A"), 2: ("I", "S")}


def orientation_letters(view: str) -> dict[str, str]:
    """Letters at the left/right/top/bottom edges of ``view``."""
    h, v, _ = AXES[view]
    return {"left": AXIS_LETTERS[h][0], "right": AXIS_LETTERS[h][1],
            "top": AXIS_LETTERS[v][1], "bottom": AXIS_LETTERS[v][0]}


def label_lut(opacity: float) -> np.ndarray:
    """(256, 4) float RGBA colours for SimNIBS tissue tags (alpha scaled by ``opacity``)."""
    lut = np.zeros((256, 4), np.float32)
    colours = {1: (230, 230, 230), 2: (129, 129, 129), 3: (104, 163, 255), 4: (255, 239, 179),
               5: (255, 166, 133), 6: (255, 240, 0), 7: (255, 239, 179), 8: (255, 138, 57),
               9: (0, 65, 142), 10: (0, 118, 14)}
    for tag, (r, g, b) in colours.items():
        lut[tag] = (r / 255, g / 255, b / 255, opacity)
    for tag in range(11, 256):
        rng = np.random.default_rng(tag)
        lut[tag, :3] = rng.uniform(0.2, 1.0, 3)
        lut[tag, 3] = opacity
    return lut


def hot_colormap(t: np.ndarray) -> np.ndarray:
    """Black-red-yellow-white colour map for t in [0, 1] -> (..., 3) floats."""
    t = np.clip(t, 0.0, 1.0)
    r = np.clip(t * 2.5, 0, 1)
    g = np.clip(t * 2.5 - 1.0, 0, 1)
    b = np.clip(t * 5.0 - 4.0, 0, 1)
    return np.stack([r, g, b], axis=-1)


class VolumeDisplay:
    """Shared display state of the three views: volume, overlays, cursor, window/level."""

    def __init__(self) -> None:
        self.volume: Volume | None = None
        self.labels: np.ndarray | None = None
        self.field: np.ndarray | None = None
        self.field_title: str = "E magnitude (V/m)"  # legend of the overlay (what it is, unit)
        self.field_short: str = "|E|"  # status-bar name of the overlay
        self.field_max: float = 1.0
        self.field_threshold: float = 0.25  # fraction of field_max below which nothing is drawn
        self.label_opacity: float = 0.35
        self.field_opacity: float = 0.75
        self.show_labels: bool = True
        self.show_field: bool = True
        self.cursor_ijk = np.zeros(3, int)
        self.window: float = 1.0
        self.level: float = 0.5
        self.target_world: np.ndarray | None = None
        self.markers: dict[str, np.ndarray] = {}  # name -> world mm (fiducials, coil centre ...)

    def set_volume(self, vol: Volume) -> None:
        self.volume = vol
        data = np.asarray(vol.data, np.float32)
        lo, hi = np.percentile(data[::2, ::2, ::2], [1.0, 99.5])
        if hi <= lo:
            hi = lo + 1.0
        self.window, self.level = float(hi - lo), float((hi + lo) / 2)
        self.cursor_ijk = np.array(vol.shape) // 2
        self.labels = None
        self.field = None

    def set_field(self, field: np.ndarray | None, title: str = "E magnitude (V/m)", short: str = "|E|") -> None:
        """The overlay (V/m on the volume grid; None: none) and its legend title / short name."""
        self.field = field
        self.field_title, self.field_short = title, short
        if field is not None:
            finite = field[np.isfinite(field) & (field > 0)]
            self.field_max = float(np.percentile(finite, 99.9)) if finite.size else 1.0

    @property
    def cursor_world(self) -> np.ndarray:
        assert self.volume is not None
        return self.volume.voxel_to_world(self.cursor_ijk)[0]

    def set_cursor_world(self, xyz: np.ndarray) -> None:
        assert self.volume is not None
        ijk = np.rint(self.volume.world_to_voxel(np.asarray(xyz, float))[0]).astype(int)
        self.cursor_ijk = np.clip(ijk, 0, np.array(self.volume.shape) - 1)

    def value_at_cursor(self) -> tuple[float, int | None, float | None]:
        assert self.volume is not None
        i, j, k = self.cursor_ijk
        lab = None if self.labels is None else int(self.labels[i, j, k])
        fld = None if self.field is None else float(self.field[i, j, k])
        return float(self.volume.data[i, j, k]), lab, fld

    def slice_rgba(self, view: str) -> np.ndarray:
        """(rows, cols, 4) uint8 image of ``view`` at the cursor, top row first."""
        assert self.volume is not None
        h, v, fixed = AXES[view]
        idx = [slice(None)] * 3
        idx[fixed] = int(self.cursor_ijk[fixed])

        def cut(arr: np.ndarray) -> np.ndarray:
            s = arr[tuple(idx)]  # 2-D, axes in increasing order of the remaining array axes
            if h > v:  # remaining axes come out as (v, h): make it (h, v)
                s = s.T
            return s.T[::-1, :]  # rows = vertical axis, top = high end

        base = cut(np.asarray(self.volume.data, np.float32))
        lo = self.level - self.window / 2
        g = np.clip((base - lo) / max(self.window, 1e-6), 0, 1)
        rgb = np.repeat(g[..., None], 3, axis=2)
        if self.show_labels and self.labels is not None and self.label_opacity > 0:
            lab = cut(self.labels)
            lut = label_lut(self.label_opacity)[lab]
            a = lut[..., 3:4]
            rgb = rgb * (1 - a) + lut[..., :3] * a
        if self.show_field and self.field is not None:
            f = cut(self.field) / max(self.field_max, 1e-12)
            a = np.where(f >= self.field_threshold, self.field_opacity, 0.0)[..., None]
            t = (f - self.field_threshold) / max(1 - self.field_threshold, 1e-6)
            rgb = rgb * (1 - a) + hot_colormap(0.25 + 0.75 * t) * a
        out = np.empty(rgb.shape[:2] + (4,), np.uint8)
        out[..., :3] = np.clip(rgb * 255, 0, 255).astype(np.uint8)
        out[..., 3] = 255
        return np.ascontiguousarray(out)


class SliceView(QWidget):
    """One slice view; see the module docstring. Signals carry world RAS mm."""

    cursorMoved = pyqtSignal(object)  # np.ndarray world mm (click)
    hovered = pyqtSignal(object)  # np.ndarray world mm (mouse move)
    targetPicked = pyqtSignal(object)  # np.ndarray world mm (Ctrl+click)
    windowLevelChanged = pyqtSignal()
    sliceChanged = pyqtSignal()

    MARGIN = 18

    def __init__(self, view: str, display: VolumeDisplay, parent: QWidget | None = None):
        super().__init__(parent)
        self.view = view
        self.display = display
        self.setObjectName(f"slice_{view}")
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._drag_start: tuple[QPointF, float, float] | None = None
        self._image: QImage | None = None
        self._buffer: np.ndarray | None = None

    # ------------------------------------------------------------------ geometry
    def _mm_extent(self) -> tuple[float, float]:
        vol = self.display.volume
        h, v, _ = AXES[self.view]
        sp = vol.spacing
        return vol.shape[h] * sp[h], vol.shape[v] * sp[v]

    def image_rect(self) -> QRectF:
        """Where the slice is drawn (widget pixels), keeping mm aspect."""
        w_mm, h_mm = self._mm_extent()
        m = self.MARGIN
        aw, ah = max(self.width() - 2 * m, 1), max(self.height() - 2 * m, 1)
        s = min(aw / w_mm, ah / h_mm)
        w, h = w_mm * s, h_mm * s
        return QRectF(m + (aw - w) / 2, m + (ah - h) / 2, w, h)

    def ijk_to_screen(self, ijk: np.ndarray) -> QPointF:
        vol = self.display.volume
        h, v, _ = AXES[self.view]
        r = self.image_rect()
        x = r.left() + (ijk[h] + 0.5) / vol.shape[h] * r.width()
        y = r.top() + (vol.shape[v] - ijk[v] - 0.5) / vol.shape[v] * r.height()
        return QPointF(x, y)

    def world_to_screen(self, xyz: np.ndarray) -> QPointF:
        """Widget position of a world point projected onto this view."""
        return self.ijk_to_screen(self.display.volume.world_to_voxel(np.asarray(xyz, float))[0])

    def screen_to_ijk(self, pos: QPointF) -> np.ndarray:
        vol = self.display.volume
        h, v, _ = AXES[self.view]
        r = self.image_rect()
        ijk = self.display.cursor_ijk.astype(float).copy()
        ijk[h] = (pos.x() - r.left()) / r.width() * vol.shape[h] - 0.5
        ijk[v] = vol.shape[v] - (pos.y() - r.top()) / r.height() * vol.shape[v] - 0.5
        return np.clip(np.rint(ijk), 0, np.array(vol.shape) - 1).astype(int)

    def screen_to_world(self, pos: QPointF) -> np.ndarray:
        return self.display.volume.voxel_to_world(self.screen_to_ijk(pos))[0]

    # ------------------------------------------------------------------ painting
    def refresh(self) -> None:
        self._image = None
        self.update()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0))
        if self.display.volume is None:
            p.setPen(QColor(160, 160, 160))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, f"{self.view}\n(open a subject or an image)")
            p.end()
            return
        if self._image is None:
            self._buffer = self.display.slice_rgba(self.view)
            b = self._buffer
            self._image = QImage(b.data, b.shape[1], b.shape[0], b.strides[0], QImage.Format.Format_RGBA8888)
        r = self.image_rect()
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(r, self._image)
        # crosshair
        c = self.ijk_to_screen(self.display.cursor_ijk)
        p.setPen(QPen(QColor(0, 220, 0, 170), 1))
        p.drawLine(QPointF(r.left(), c.y()), QPointF(r.right(), c.y()))
        p.drawLine(QPointF(c.x(), r.top()), QPointF(c.x(), r.bottom()))
        # markers and target (drawn when within 3 mm of the slice)
        self._draw_points(p)
        # orientation letters
        letters = orientation_letters(self.view)
        f = QFont()
        f.setPointSize(11)
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor(255, 255, 0))
        W, H = self.width(), self.height()
        m = self.MARGIN
        p.drawText(QRectF(0, 0, m, H), Qt.AlignmentFlag.AlignCenter, letters["left"])
        p.drawText(QRectF(W - m, 0, m, H), Qt.AlignmentFlag.AlignCenter, letters["right"])
        p.drawText(QRectF(0, 0, W, m), Qt.AlignmentFlag.AlignCenter, letters["top"])
        p.drawText(QRectF(0, H - m, W, m), Qt.AlignmentFlag.AlignCenter, letters["bottom"])
        f.setPointSize(9)
        f.setBold(False)
        p.setFont(f)
        p.setPen(QColor(200, 200, 200))
        fixed = AXES[self.view][2]
        world = self.display.cursor_world
        p.drawText(QRectF(m + 2, m, W, 16), Qt.AlignmentFlag.AlignLeft,
                   f"{self.view}  {'xyz'[fixed]} = {world[fixed]:.1f} mm")
        self._draw_legend(p)
        p.end()

    def _draw_legend(self, p: QPainter) -> None:
        """Colour bar of the field overlay with its title and unit (bottom left), as drawn."""
        d = self.display
        if d.field is None or not d.show_field:
            return
        m = self.MARGIN
        H = self.height()
        bar_w = min(120, max(self.width() // 3, 60))
        x0, y0 = m + 4, H - m - 30
        lo = d.field_threshold
        for k in range(bar_w):
            t = k / max(bar_w - 1, 1)
            c = hot_colormap(np.array(0.25 + 0.75 * t))
            p.setPen(QColor(int(c[0] * 255), int(c[1] * 255), int(c[2] * 255)))
            p.drawLine(QPointF(x0 + k, y0), QPointF(x0 + k, y0 + 8))
        p.setPen(QColor(230, 230, 230))
        f = p.font()
        f.setPointSize(8)
        p.setFont(f)
        p.drawText(QRectF(x0, y0 + 9, bar_w + 80, 12), Qt.AlignmentFlag.AlignLeft,
                   f"{lo * d.field_max:.2g}  ...  {d.field_max:.2g} V/m")
        p.drawText(QRectF(x0, y0 - 14, self.width() - x0 - m, 13), Qt.AlignmentFlag.AlignLeft, d.field_title)

    def _draw_points(self, p: QPainter) -> None:
        vol = self.display.volume
        fixed = AXES[self.view][2]
        slice_pos = self.display.cursor_world[fixed]
        tol = max(3.0, float(vol.spacing[fixed]))
        for name, xyz in self.display.markers.items():
            if abs(xyz[fixed] - slice_pos) <= tol:
                q = self.world_to_screen(xyz)
                p.setPen(QPen(QColor(0, 200, 255), 2))
                p.drawEllipse(q, 4, 4)
                p.drawText(q + QPointF(6, -6), name)
        t = self.display.target_world
        if t is not None:
            q = self.world_to_screen(t)
            near = abs(t[fixed] - slice_pos) <= tol
            p.setPen(QPen(QColor(255, 40, 40), 2 if near else 1, Qt.PenStyle.SolidLine if near else Qt.PenStyle.DotLine))
            p.drawEllipse(q, 7, 7)
            p.drawLine(q + QPointF(-10, 0), q + QPointF(-4, 0))
            p.drawLine(q + QPointF(4, 0), q + QPointF(10, 0))

    # ------------------------------------------------------------------ interaction
    def mousePressEvent(self, ev) -> None:
        if self.display.volume is None:
            return
        if ev.button() == Qt.MouseButton.LeftButton:
            world = self.screen_to_world(ev.position())
            if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
                self.targetPicked.emit(world)
            self.display.cursor_ijk = self.screen_to_ijk(ev.position())
            self.cursorMoved.emit(world)
        elif ev.button() == Qt.MouseButton.RightButton:
            self._drag_start = (ev.position(), self.display.window, self.display.level)

    def mouseMoveEvent(self, ev) -> None:
        if self.display.volume is None:
            return
        if self._drag_start is not None:
            p0, w0, l0 = self._drag_start
            d = ev.position() - p0
            scale = max(w0, 1e-3) / 200.0
            self.display.window = max(w0 + d.x() * scale, 1e-3)
            self.display.level = l0 - d.y() * scale
            self.windowLevelChanged.emit()
            return
        r = self.image_rect()
        if r.contains(ev.position()):
            self.hovered.emit(self.screen_to_world(ev.position()))
        if ev.buttons() & Qt.MouseButton.LeftButton:
            self.display.cursor_ijk = self.screen_to_ijk(ev.position())
            self.cursorMoved.emit(self.display.cursor_world)

    def mouseReleaseEvent(self, ev) -> None:
        self._drag_start = None

    def step_slice(self, n: int) -> None:
        if self.display.volume is None:
            return
        fixed = AXES[self.view][2]
        ijk = self.display.cursor_ijk.copy()
        ijk[fixed] = int(np.clip(ijk[fixed] + n, 0, self.display.volume.shape[fixed] - 1))
        self.display.cursor_ijk = ijk
        self.sliceChanged.emit()

    def wheelEvent(self, ev) -> None:
        self.step_slice(1 if ev.angleDelta().y() > 0 else -1)

    def keyPressEvent(self, ev) -> None:
        if ev.key() in (Qt.Key.Key_PageUp, Qt.Key.Key_Up):
            self.step_slice(1)
        elif ev.key() in (Qt.Key.Key_PageDown, Qt.Key.Key_Down):
            self.step_slice(-1)
        else:
            super().keyPressEvent(ev)


class SliceViews(QWidget):
    """Owner of the shared :class:`VolumeDisplay` and the three linked views."""

    cursorChanged = pyqtSignal(object)  # world mm
    hovered = pyqtSignal(object)
    targetPicked = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.display = VolumeDisplay()
        self.views = {name: SliceView(name, self.display, self) for name in ("axial", "coronal", "sagittal")}
        for v in self.views.values():
            v.cursorMoved.connect(self._on_cursor)
            v.hovered.connect(self.hovered)
            v.targetPicked.connect(self.targetPicked)
            v.windowLevelChanged.connect(self.refresh)
            v.sliceChanged.connect(self._on_slice)
        self.hide()  # only a container of the views; the main window lays them out

    def _on_cursor(self, world) -> None:
        self.refresh()
        self.cursorChanged.emit(self.display.cursor_world)

    def _on_slice(self) -> None:
        self.refresh()
        self.cursorChanged.emit(self.display.cursor_world)

    def refresh(self) -> None:
        for v in self.views.values():
            v.refresh()

    def set_volume(self, vol: Volume | None, labels: np.ndarray | None = None) -> None:
        if vol is None:
            self.display.volume = None
        else:
            self.display.set_volume(vol)
            self.display.labels = labels
        self.refresh()

    def set_cursor_world(self, xyz) -> None:
        if self.display.volume is None:
            return
        self.display.set_cursor_world(xyz)
        self.refresh()
        self.cursorChanged.emit(self.display.cursor_world)
