"""The selected face's numbers: AU, emotion and blendshape bars (one `BarGraphItem` each, heights set
with `setOpts`) and the valence/arousal plane with a short trail. Values are the result's own, the
ones written to disk."""
from __future__ import annotations

import collections
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from . import geometry


def _fixed_plot(widget: pg.PlotWidget) -> pg.PlotItem:
    item = widget.getPlotItem()
    item.hideButtons()
    item.setMenuEnabled(False)
    item.setMouseEnabled(x=False, y=False)
    item.disableAutoRange()
    return item


class Bars(pg.PlotWidget):
    """Horizontal bars in [0, 1], one per name, top to bottom; empty when no face is selected."""

    def __init__(self, names: list[str], colour=(90, 170, 255)):
        super().__init__()
        self.names = list(names)
        item = _fixed_plot(self)
        n = len(names)
        item.setXRange(0, 1, padding=0)
        item.setYRange(-0.6, n - 0.4, padding=0)
        item.getViewBox().invertY(True)
        item.getAxis("left").setTicks([[(i, name) for i, name in enumerate(names)]])
        axis = item.getAxis("left")
        axis.setStyle(tickLength=0, tickFont=QFont("DejaVu Sans", 7))
        axis.setWidth(90 if max(map(len, names)) > 8 else 50)
        self.bars = pg.BarGraphItem(x0=0, y=np.arange(n), height=0.7, width=np.zeros(n), brush=colour, pen=None)
        item.addItem(self.bars)
        self.values = np.zeros(n, np.float32)

    def set_values(self, values: np.ndarray | None) -> None:
        self.values = np.zeros(len(self.names), np.float32) if values is None else np.asarray(values, np.float32)
        self.bars.setOpts(width=self.values)


class VAPlane(pg.PlotWidget):
    """Valence (x) and arousal (y) in [-1, 1]: the current point and the last `trail` points."""

    def __init__(self, trail: int = 30):
        super().__init__()
        item = _fixed_plot(self)
        item.setXRange(-1, 1, padding=0.05)
        item.setYRange(-1, 1, padding=0.05)
        item.setLabel("bottom", "valence")
        item.setLabel("left", "arousal")
        for angle in (0, 90):
            item.addItem(pg.InfiniteLine(0, angle=angle, pen=pg.mkPen((150, 150, 150), width=1)))
        self.trail = collections.deque(maxlen=trail)
        self.curve = pg.PlotCurveItem(pen=pg.mkPen((255, 196, 0, 120), width=2))
        self.point = pg.ScatterPlotItem(size=12, brush=pg.mkBrush(255, 196, 0), pen=pg.mkPen("w"))
        item.addItem(self.curve)
        item.addItem(self.point)

    def set_value(self, va: np.ndarray | None) -> None:
        if va is None:
            self.trail.clear()
            self.point.setData(pos=np.zeros((0, 2)))
        else:
            self.trail.append(np.asarray(va, np.float64))
            self.point.setData(pos=[va])
        xy = np.array(self.trail) if self.trail else np.zeros((0, 2))
        self.curve.setData(*xy.T)


class FacePanel(QWidget):
    """The selected face's bars (AUs, emotions, blendshapes in tabs) and VA plane, titled with who it is;
    the live window and the session viewer show the same one."""

    def __init__(self, names: dict[str, list[str]]):
        super().__init__()
        self.au_bars = Bars(names["au"])
        self.emotion_bars = Bars(names["emotions"], colour=(255, 150, 60))
        self.blend_bars = Bars(names["blendshapes"], colour=(150, 220, 120))
        self.va = VAPlane()
        tabs = QTabWidget()
        tabs.addTab(self.au_bars, "Action units")
        tabs.addTab(self.emotion_bars, "Emotions")
        self.blend_bars.setMinimumHeight(16 * len(names["blendshapes"]))  # 52 readable names: scrolled
        scroll = QScrollArea(widgetResizable=True)
        scroll.setWidget(self.blend_bars)
        tabs.addTab(scroll, "Blendshapes")
        self.title = QLabel("no face")
        self.setMinimumWidth(400)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(tabs, 3)
        layout.addWidget(self.va, 2)

    def show_face(self, result, i: Optional[int], names: tuple[str, ...]) -> None:
        """Face `i` of `result` (None: no face)."""
        f = None if result is None else result.faces
        self.au_bars.set_values(None if i is None else f.au[i])
        self.emotion_bars.set_values(None if i is None else f.emotions[i])
        self.blend_bars.set_values(None if i is None else f.blendshapes[i])
        self.va.set_value(None if i is None else f.va[i])
        if i is None:
            self.title.setText("no face")
        else:
            tid = int(result.track_ids[i])
            self.title.setText("face " + geometry.label_of(tid, names[i] if i < len(names) else ""))
