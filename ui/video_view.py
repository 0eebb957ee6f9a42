"""The video with its overlays: one `ImageItem` (row-major, RGB uint8 passed through unscaled) and a
fixed set of overlay items, whatever the number of faces, each updated with `setData` from
`geometry`'s arrays. Image and overlays are set in the same call, so Qt paints them together."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

from . import geometry
from .bridge import Shown
from .timeseries import PALETTE

N_LABELS = 16  # label pool; faces beyond it are drawn without a label


@dataclass
class OverlayOptions:
    """What is drawn; every option is a toggle in the window and a key."""

    boxes: bool = True
    labels: bool = True
    landmarks: bool = True
    mesh: bool = False
    pose: bool = True
    gaze: bool = True


class VideoView(pg.GraphicsLayoutWidget):
    faceClicked = Signal(int)   # index of the face clicked in the shown result, -1 for none

    def __init__(self):
        super().__init__()
        self.setBackground((20, 20, 20))
        self.ci.setContentsMargins(0, 0, 0, 0)
        self.box = self.addViewBox(lockAspect=True, invertY=True, enableMouse=False)
        self.box.setMenuEnabled(False)
        self.box.disableAutoRange()
        self.image = pg.ImageItem(axisOrder="row-major")
        self.box.addItem(self.image)
        pen = lambda c, w=2: pg.mkPen(c, width=w)  # noqa: E731
        # one box curve per colour slot: a curve has one pen, so faces are grouped by track_id % slots
        self.box_curves = [pg.PlotCurveItem(pen=pen(c), connect="pairs") for c in PALETTE]
        self.selected_curve = pg.PlotCurveItem(pen=pen((255, 255, 255), 6), connect="pairs")  # a rim under its box
        self.mesh = pg.ScatterPlotItem(size=1.5, pen=None, brush=pg.mkBrush(120, 220, 255, 150), pxMode=True)
        self.landmarks = pg.ScatterPlotItem(size=3, pen=None, brush=pg.mkBrush(80, 255, 80, 220), pxMode=True)
        self.axes = [pg.PlotCurveItem(pen=pen(c, 3), connect="pairs") for c in ((255, 60, 60), (60, 255, 60),
                                                                               (60, 120, 255))]
        self.gaze = pg.PlotCurveItem(pen=pen((255, 255, 0), 3), connect="pairs")
        self.labels = [pg.TextItem("", anchor=(0, 1), fill=pg.mkBrush(0, 0, 0, 160)) for _ in range(N_LABELS)]
        for z, item in enumerate([self.mesh, self.selected_curve, *self.box_curves, self.landmarks, *self.axes,
                                  self.gaze, *self.labels], start=1):
            item.setZValue(z)
            self.box.addItem(item)
        self.options = OverlayOptions()
        self.current: Shown | None = None
        self.selected_track = None   # track id followed by the panels (None: the largest face)
        self._size = None
        self.scene().sigMouseClicked.connect(self._clicked)

    def show_result(self, shown: Shown, selected: int | None) -> None:
        """Draw `shown.frame` and its result's overlays; `selected` is the index of the highlighted face."""
        self.current = shown
        frame, result = shown.frame, shown.result
        self.image.setImage(frame.image, autoLevels=False, levels=None)
        if self._size != frame.size:  # a new source size: fit once, never auto-range per frame
            self._size = frame.size
            self.box.setRange(xRange=(0, frame.size[1]), yRange=(0, frame.size[0]), padding=0)
        o = self.options
        ids = result.track_ids
        for slot, curve in enumerate(self.box_curves):
            mine = ((ids % len(self.box_curves)) == slot) & o.boxes
            curve.setVisible(bool(mine.any()))  # a hidden item costs nothing at paint time
            curve.setData(*geometry.boxes(result.detections.xyxy[mine]).T)
        sel = result.detections.xyxy[[selected]] if o.boxes and selected is not None else np.zeros((0, 4))
        self.selected_curve.setData(*geometry.boxes(sel).T)
        self.landmarks.setData(pos=geometry.points(result.faces.landmarks68) if o.landmarks else np.zeros((0, 2)))
        self.mesh.setData(pos=geometry.points(result.faces.mesh) if o.mesh else np.zeros((0, 2)))
        axes = geometry.pose_axes(result) if o.pose else (np.zeros((0, 2)),) * 3
        for curve, segs in zip(self.axes, axes):
            curve.setData(*segs.T)
        self.gaze.setData(*(geometry.gaze_arrows(result) if o.gaze else np.zeros((0, 2))).T)
        n = min(result.n_faces, N_LABELS) if o.labels else 0
        for i in range(n):
            label = self.labels[i]
            x1, y1 = result.detections.xyxy[i, :2]
            label.setText(geometry.label_of(int(ids[i]), shown.names[i] if i < len(shown.names) else ""),
                          color=PALETTE[int(ids[i]) % len(PALETTE)] if ids[i] >= 0 else (200, 200, 200))
            label.setPos(float(x1), float(y1))
            label.show()
        for label in self.labels[n:]:
            label.hide()

    def redraw(self, selected: int | None) -> None:
        """Draw the shown frame again (an overlay was toggled)."""
        if self.current is not None:
            self.show_result(self.current, selected)

    def _clicked(self, event) -> None:
        if self.current is None:
            return
        p = self.box.mapSceneToView(event.scenePos())
        index = geometry.face_at(self.current.result, p.x(), p.y())
        self.faceClicked.emit(-1 if index is None else index)
