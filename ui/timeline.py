"""The session viewer's timeline, under the video: a lane plot (markers, review's events, exclusions, and the
spans where capture paused, the encoder dropped frames or analysis skipped a stretch) and whole-session
signal plots, one curve per person, all on one time axis (seconds from the first frame) with one cursor.

Items are created once and updated with `setData` (curves from a pool that grows to the number of people,
each in its person's colour slot, dashed for a second person in one slot; downsampled by peak and clipped to
the view, so an hour draws as fast as a minute); only the user's annotations (a few)
are items of their own, rebuilt when they change. Mouse: wheel zooms time, drag pans, click or drag the
cursor seeks, Shift+drag draws an exclusion span, events and spans drag to move. The widget only reports
intents (signals); the window applies them.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

from .timeseries import PALETTE

LANES = ("analysis", "excluded", "events", "markers")          # bottom to top
SPAN_COLOURS = {"capture gap": (214, 39, 40, 220), "encoder drop": (255, 127, 14, 220),
                "not analysed": (150, 150, 150, 170)}
EXCLUDED = (120, 120, 140, 90)
EVENT = (255, 220, 0)
N_MARKER_LABELS = 40
DASHES = (Qt.SolidLine, Qt.DashLine, Qt.DotLine, Qt.DashDotLine)  # the 1st, 2nd, ... person in one colour slot


def y_range(signal: str) -> tuple[float, float]:
    if signal in ("valence", "arousal"):
        return -1.0, 1.0
    if signal in ("gaze_pitch", "gaze_yaw", "Pitch", "Yaw", "Roll"):
        return -1.2, 1.2   # radians
    return 0.0, 1.0        # probabilities, blendshapes, scores


class ClockAxis(pg.AxisItem):
    """Seconds as m:ss (h:mm:ss past an hour)."""

    def tickStrings(self, values, scale, spacing):
        def clock(v: float) -> str:
            sign, v = ("-" if v < 0 else ""), abs(v)
            h, rest = divmod(v, 3600)
            m, s = divmod(rest, 60)
            frac = f"{s:04.1f}" if spacing < 1 else f"{int(s):02d}"
            return f"{sign}{int(h)}:{int(m):02d}:{frac}" if h else f"{sign}{int(m)}:{frac}"
        return [clock(v) for v in values]


class TimeBox(pg.ViewBox):
    """Time only: the wheel zooms and a drag pans along x; a click reports its time; Shift+drag draws a span."""

    clicked = Signal(float)
    spanDrawn = Signal(float, float)

    def __init__(self):
        super().__init__(enableMenu=False)
        self.setMouseEnabled(x=True, y=False)
        self._draft = None

    def mouseClickEvent(self, ev) -> None:
        if ev.button() == Qt.LeftButton:
            ev.accept()
            self.clicked.emit(self.mapSceneToView(ev.scenePos()).x())

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() != Qt.LeftButton or not ev.modifiers() & Qt.ShiftModifier:
            return super().mouseDragEvent(ev, axis)
        ev.accept()
        x0, x1 = (self.mapSceneToView(p).x() for p in (ev.buttonDownScenePos(), ev.scenePos()))
        if self._draft is None:
            self._draft = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(*EXCLUDED[:3], 120))
            self.addItem(self._draft)
        self._draft.setRegion((x0, x1))
        if ev.isFinish():
            self.removeItem(self._draft)
            self._draft = None
            if x0 != x1:
                self.spanDrawn.emit(min(x0, x1), max(x0, x1))


class Timeline(pg.GraphicsLayoutWidget):
    seekRequested = Signal(float)              # t
    spanDrawn = Signal(float, float)           # a new exclusion span (t0, t1)
    annotationMoved = Signal(int, float, float)  # annotation index, its new start and end
    annotationClicked = Signal(int)

    def __init__(self, n_plots: int = 2):
        super().__init__()
        self.setBackground((25, 25, 25))
        self.boxes = [TimeBox() for _ in range(n_plots + 1)]
        self.lanes = self.addPlot(row=0, col=0, viewBox=self.boxes[0], axisItems={"bottom": ClockAxis("bottom")})
        self.lanes.setMaximumHeight(110)
        self.lanes.setYRange(-0.5, len(LANES) - 0.5, padding=0)
        self.lanes.getAxis("left").setTicks([[(i, name) for i, name in enumerate(LANES)]])
        self.plots = []
        for i in range(n_plots):
            plot = self.addPlot(row=i + 1, col=0, viewBox=self.boxes[i + 1], axisItems={"bottom": ClockAxis("bottom")})
            plot.setXLink(self.lanes)
            plot.addLegend(offset=(-5, 5), labelTextSize="8pt", brush=pg.mkBrush(0, 0, 0, 140))
            # set on the plot: PlotItem.addItem gives every curve the plot's own downsampling and clipping
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
            self.plots.append(plot)
        for plot in (self.lanes, *self.plots):
            plot.hideButtons()
            plot.setMenuEnabled(False)
            plot.getAxis("left").setWidth(70)
        for box in self.boxes:
            box.clicked.connect(self.seekRequested)
            box.spanDrawn.connect(self.spanDrawn)
        # each plot's curves, one per person shown, reused (and added to) whenever the signal changes
        self.curves: list[list[pg.PlotDataItem]] = [[] for _ in self.plots]
        self.shown: list[dict[str, pg.PlotDataItem]] = [{} for _ in self.plots]   # person → their curve
        self.signals = [""] * n_plots
        # lanes: one bar item per kind of span, one scatter for markers, a pool of marker labels
        self.span_bars = {name: pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], brush=colour, pen=None)
                          for name, colour in SPAN_COLOURS.items()}
        self.excluded_bar = pg.BarGraphItem(x0=[], x1=[], y0=[], y1=[], brush=EXCLUDED[:3], pen=None)
        self.marker_dots = pg.ScatterPlotItem(symbol="t", size=9, pen=None, brush=pg.mkBrush(230, 230, 230))
        for item in (*self.span_bars.values(), self.excluded_bar, self.marker_dots):
            self.lanes.addItem(item)
        self.marker_labels = [pg.TextItem("", color=(220, 220, 220), anchor=(0, 0.5)) for _ in range(N_MARKER_LABELS)]
        for label in self.marker_labels:
            label.hide()
            self.lanes.addItem(label)
        self.markers = np.zeros(0), []
        self.lanes.sigXRangeChanged.connect(self._place_marker_labels)
        # the cursor, in every plot
        self.cursors = []
        for plot in (self.lanes, *self.plots):
            line = pg.InfiniteLine(0, movable=True, pen=pg.mkPen((255, 255, 255), width=1.5),
                                   hoverPen=pg.mkPen((255, 255, 0), width=3))
            line.setZValue(100)
            line.sigDragged.connect(lambda ln: self.seekRequested.emit(ln.value()))
            plot.addItem(line)
            self.cursors.append(line)
        self.annotation_items: list = []

    # -- data ---------------------------------------------------------------------------------------------
    def set_duration(self, seconds: float) -> None:
        end = max(seconds, 1e-3)
        for plot in (self.lanes, *self.plots):
            plot.setLimits(xMin=-0.02 * end, xMax=1.02 * end, minXRange=min(0.5, end))
        self.lanes.setXRange(0, end, padding=0.01)

    def set_signal(self, i: int, name: str, curves: dict, colours: dict[str, int]) -> None:
        """Plot `i` shows `name`: (t, values) per person, each in its colour slot."""
        plot = self.plots[i]
        self.signals[i] = name
        plot.setTitle(name, size="9pt")
        plot.setYRange(*y_range(name), padding=0.02)
        plot.legend.clear()
        pool, self.shown[i] = self.curves[i], {}
        while len(pool) < len(curves):
            pool.append(pg.PlotDataItem(connect="finite"))
            plot.addItem(pool[-1])
        in_slot: dict[int, int] = {}   # people so far in each colour slot (their boxes have that colour too)
        for curve, (person, (t, v)) in zip(pool, curves.items()):
            slot = colours.get(person, 0) % len(PALETTE)
            style = DASHES[in_slot.get(slot, 0) % len(DASHES)]
            in_slot[slot] = in_slot.get(slot, 0) + 1
            curve.setPen(pg.mkPen(PALETTE[slot], width=1.2, style=style))
            curve.setData(t, v, connect="finite")
            curve.show()
            plot.legend.addItem(curve, person)
            self.shown[i][person] = curve
        for curve in pool[len(curves):]:
            curve.setData([], [])
            curve.hide()

    def set_spans(self, spans: dict) -> None:
        lane = LANES.index("analysis")
        for name, bar in self.span_bars.items():
            s = spans.get(name)
            n = 0 if s is None else len(s)
            bar.setOpts(x0=s.start if n else [], x1=np.maximum(s.end, s.start + 1e-3) if n else [],
                        y0=np.full(n, lane - 0.4), y1=np.full(n, lane + 0.4))

    def set_markers(self, t: np.ndarray, labels: list[str]) -> None:
        self.markers = np.asarray(t, np.float64), list(labels)
        self.marker_dots.setData(x=self.markers[0], y=np.full(len(t), LANES.index("markers"), float))
        self._place_marker_labels()

    def _place_marker_labels(self, *_) -> None:
        """Labels for the markers in view (the first N_MARKER_LABELS of them), the rest hidden."""
        t, labels = self.markers
        lo, hi = self.lanes.viewRange()[0]
        shown = np.flatnonzero((t >= lo) & (t <= hi))[:N_MARKER_LABELS]
        for item, k in zip(self.marker_labels, shown):
            item.setText(labels[k])
            item.setPos(t[k], LANES.index("markers"))
            item.show()
        for item in self.marker_labels[len(shown):]:
            item.hide()

    def set_annotations(self, items: list, t0: float) -> None:
        """Review's events (a line each) and exclusion spans (a region in every signal plot, and the
        excluded lane), times on the capture clock (`t0` is the first frame's)."""
        for plot, item in self.annotation_items:
            plot.removeItem(item)
        self.annotation_items = []
        spans = []
        for index, a in enumerate(items):
            if a.kind == "event":
                line = pg.InfiniteLine(a.t_start - t0, movable=True, pen=pg.mkPen(EVENT, width=2),
                                       hoverPen=pg.mkPen(EVENT, width=4), label=a.label or "event",
                                       labelOpts={"position": 0.6, "color": EVENT})  # beside its lane
                line.sigPositionChangeFinished.connect(
                    lambda ln, i=index: self.annotationMoved.emit(i, ln.value(), ln.value()))
                line.sigClicked.connect(lambda *_, i=index: self.annotationClicked.emit(i))
                self._add(self.lanes, line)
            else:
                spans.append((a.t_start - t0, a.t_end - t0))
                for plot in self.plots:
                    region = pg.LinearRegionItem((a.t_start - t0, a.t_end - t0), brush=pg.mkBrush(*EXCLUDED),
                                                 hoverBrush=pg.mkBrush(*EXCLUDED[:3], 140))
                    pg.InfLineLabel(region.lines[0], a.label + (f" ({a.person})" if a.person else ""), position=0.85,
                                    anchor=(0, 0.5), color=(210, 210, 230))
                    region.sigRegionChangeFinished.connect(
                        lambda r, i=index: self.annotationMoved.emit(i, *r.getRegion()))
                    self._add(plot, region)
        lane = LANES.index("excluded")
        start, end = (np.array([s[k] for s in spans]) for k in (0, 1))
        self.excluded_bar.setOpts(x0=start, x1=end, y0=np.full(len(spans), lane - 0.4),
                                  y1=np.full(len(spans), lane + 0.4))

    def _add(self, plot, item) -> None:
        plot.addItem(item)
        self.annotation_items.append((plot, item))

    def set_cursor(self, t: float) -> None:
        for line in self.cursors:
            line.blockSignals(True)
            line.setValue(t)
            line.blockSignals(False)

    @property
    def cursor(self) -> float:
        return self.cursors[0].value()

    def show_range(self, start: float, end: float) -> None:
        self.lanes.setXRange(start, end, padding=0)
