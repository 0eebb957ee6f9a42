"""Rolling plots of the last N seconds: one preallocated ring buffer per person slot, one curve each,
and a pool of marker lines; nothing is created per frame.

The ring buffer writes every sample twice (at i and i + capacity), so the newest `capacity` samples are
always one contiguous view: `setData` gets it without a copy or `np.roll`.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

PALETTE = [(255, 196, 0), (0, 200, 255), (255, 80, 160), (120, 230, 80), (200, 140, 255), (255, 140, 60),
           (80, 255, 210), (240, 240, 240)]  # person slot colours: boxes, labels and curves share them


class RingBuffer:
    """(t, value) samples, the newest `capacity` kept."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._t = np.full(2 * capacity, np.nan)
        self._v = np.full(2 * capacity, np.nan)
        self._head = 0      # index of the oldest kept sample
        self.count = 0

    def append(self, t: float, value: float) -> None:
        i = (self._head + self.count) % self.capacity if self.count < self.capacity else self._head
        self._t[i] = self._t[i + self.capacity] = t
        self._v[i] = self._v[i + self.capacity] = value
        if self.count < self.capacity:
            self.count += 1
        else:
            self._head = (self._head + 1) % self.capacity

    def gap(self, t: float) -> None:
        """A NaN sample: the curve breaks here (the person was away)."""
        self.append(t, np.nan)

    @property
    def last_t(self) -> float:
        return self._t[self._head + self.count - 1] if self.count else -np.inf

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """(t, values), oldest first, as views into the buffer."""
        s = slice(self._head, self._head + self.count)
        return self._t[s], self._v[s]


class RollingPlot(pg.PlotWidget):
    """One signal (e.g. AU12 or valence) over the last `seconds`, one curve per tracked person.

    x is seconds relative to the newest sample, on the capture clock. Person slots are handed to track ids
    least-recently-used first; a person unseen for more than `gap_s` gets a break in their curve.
    """

    def __init__(self, title: str, seconds: float = 20.0, max_fps: float = 60.0, slots: int = len(PALETTE),
                 markers: int = 16, y_range: tuple[float, float] = (0.0, 1.0), gap_s: float = 2.0):
        super().__init__()
        self.seconds, self.gap_s = seconds, gap_s
        item = self.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.disableAutoRange()
        item.setXRange(-seconds, 0, padding=0)
        capacity = int(seconds * max_fps * 1.5)
        self.buffers = [RingBuffer(capacity) for _ in range(slots)]
        self.curves = [pg.PlotCurveItem(pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=1.5), connect="finite")
                       for i in range(slots)]
        for curve in self.curves:
            item.addItem(curve)
        self.owner = [None] * slots          # track id per slot
        self._used = [0.0] * slots           # last time each slot was written, for LRU
        self.marker_lines = [pg.InfiniteLine(angle=90, pen=pg.mkPen((255, 255, 255, 160), style=Qt.DashLine),
                                             label="", labelOpts={"position": 0.9, "color": (230, 230, 230)})
                             for _ in range(markers)]
        for line in self.marker_lines:
            line.hide()
            item.addItem(line)
        self.reset(title, y_range)

    def reset(self, title: str, y_range: tuple[float, float]) -> None:
        """Show another signal: the same items, emptied."""
        item = self.getPlotItem()
        item.setTitle(title, size="9pt")
        item.setYRange(*y_range, padding=0.02)
        self.buffers = [RingBuffer(b.capacity) for b in self.buffers]
        self.owner = [None] * len(self.buffers)
        self._used = [0.0] * len(self.buffers)
        self.newest_t = 0.0
        self.redraw()

    def slot_of(self, track_id: int) -> int:
        if track_id in self.owner:
            return self.owner.index(track_id)
        slot = int(np.argmin(self._used))
        self.owner[slot] = track_id
        self.buffers[slot] = RingBuffer(self.buffers[slot].capacity)
        return slot

    def append(self, t: float, track_id: int, value: float) -> None:
        slot = self.slot_of(track_id)
        buf = self.buffers[slot]
        if buf.count and t < buf.last_t:  # a person seen by two cameras: the other's older sample
            return
        if buf.count and t - buf.last_t > self.gap_s:
            buf.gap(t)
        buf.append(t, value)
        self._used[slot] = t
        self.newest_t = max(self.newest_t, t)

    def redraw(self, markers: list[tuple[float, str]] = ()) -> None:
        """Curves relative to the newest sample; `markers` (t, label), newest last."""
        now = self.newest_t
        for buf, curve in zip(self.buffers, self.curves):
            curve.setVisible(buf.count > 0)  # a hidden item costs nothing at paint time
            if buf.count:
                t, v = buf.view()
                curve.setData(t - now, v)
        shown = [(t, label) for t, label in markers if now - self.seconds <= t <= now][-len(self.marker_lines):]
        for line, (t, label) in zip(self.marker_lines, shown):
            line.setPos(t - now)
            line.label.setFormat(label)
            line.show()
        for line in self.marker_lines[len(shown):]:
            line.hide()


def plot_signals(au_names, emotion_names) -> dict:
    """Rolling-plot signals: name → (faces, i) → value."""
    out = {name: (lambda f, i, j=j: f.au[i, j]) for j, name in enumerate(au_names)}
    out.update({name: (lambda f, i, j=j: f.emotions[i, j]) for j, name in enumerate(emotion_names)})
    out.update({"valence": lambda f, i: f.va[i, 0], "arousal": lambda f, i: f.va[i, 1],
                "gaze pitch": lambda f, i: f.gaze[i, 0], "gaze yaw": lambda f, i: f.gaze[i, 1],
                "head pitch": lambda f, i: f.pose[i, 0], "head yaw": lambda f, i: f.pose[i, 2]})
    return out


def y_range(signal: str) -> tuple[float, float]:
    if signal in ("valence", "arousal"):
        return -1.0, 1.0
    return (-1.2, 1.2) if " " in signal else (0.0, 1.0)   # angles in radians; else probabilities
