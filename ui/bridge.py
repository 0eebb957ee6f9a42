"""The only code that touches the analysis thread: results cross to the GUI through a latest-result
slot read by one QTimer, never one queued signal per result (bounded memory and latency whatever the
rates; painting paced to the display; deterministic tests: fill the slot, call `tick()`).

The session calls `_on_result(result, frame)` on its analysis thread with the exact frame the result
was computed on; the pair travels together, so overlays are always drawn on their own frame.
"""
from __future__ import annotations

import collections
import weakref
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from realtime_feat.types import Frame, FrameResult


@dataclass(frozen=True)
class Shown:
    """One analysed frame as the window shows it: image, result and each face's label."""

    frame: Frame
    result: FrameResult
    names: tuple[str, ...]   # enrolled name per face ("" or "unknown" when none)
    live: bool = False       # live video: `frame` is newer than the one `result` was computed on


class _WeakCallback:
    """A subscriber that neither keeps the bridge alive nor calls it once detached (the session's
    subscribers cannot be removed)."""

    def __init__(self, method):
        self._ref = weakref.WeakMethod(method)
        self.active = True

    def __call__(self, *args) -> None:
        method = self._ref()
        if self.active and method is not None:
            method(*args)


class LiveBridge(QObject):
    shown = Signal(object)        # Shown: the newest analysed frame, once per tick at most
    results = Signal(list)        # every FrameResult since the last tick, oldest first (for plots)

    def __init__(self, interval_ms: int = 15, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        # track ids → names, called on the analysis thread where the tracker lives
        self.labeller: Callable[[np.ndarray], list[str]] = lambda ids: [""] * len(ids)
        self.shown_index = -1
        self.ticks_drawn = 0
        self._latest: Optional[Shown] = None
        self._rows: collections.deque = collections.deque(maxlen=4096)
        self._embeddings: dict[int, np.ndarray] = {}
        self._callback: Optional[_WeakCallback] = None
        self._live = None                              # (capture thread, its subscriber) in live-video mode
        self.live_frame: Optional[Frame] = None        # the newest captured frame shown in live video
        self.analysed: Optional[Shown] = None          # the newest analysed pair shown

    def attach(self, session) -> None:
        """Subscribe to `session` and start the GUI timer."""
        self.detach()
        self._callback = _WeakCallback(self._on_result)
        session.subscribe(self._callback, name="window")
        self.shown_index = -1
        self.timer.start()

    def detach(self) -> None:
        self.set_live_video(None)
        self.analysed = None
        if self._callback is not None:
            self._callback.active = False
            self._callback = None
        self.timer.stop()

    @property
    def attached(self) -> bool:
        return self._callback is not None

    def _on_result(self, result: FrameResult, frame: Frame) -> None:
        """Analysis thread: no Qt calls, only reference swaps and a deque append (atomic under the GIL)."""
        emb = result.faces.embedding
        if emb is not None:  # kept per person so a face can be enrolled by clicking it later
            for tid, e in zip(result.track_ids, emb):
                if tid >= 0 and np.isfinite(e[0]):
                    self._embeddings[int(tid)] = e
        try:
            names = tuple(self.labeller(result.track_ids))
        except (KeyError, ValueError):  # a track the tracker just dropped: unnamed this once
            names = ("",) * result.n_faces
        self._latest = Shown(frame, result, names)
        self._rows.append(result)

    def embedding_of(self, track_id: int) -> Optional[np.ndarray]:
        return self._embeddings.get(track_id)

    def tick(self) -> None:
        """GUI thread: show the newest pair if newer than the one shown; hand every new result to the plots."""
        rows = []
        while self._rows:
            rows.append(self._rows.popleft())
        if rows:
            self.results.emit(rows)
        latest, self._latest = self._latest, None
        fresh = latest is not None and latest.result.index > self.shown_index
        if fresh:
            self.shown_index = latest.result.index
            self.analysed = latest
        newest = self._newest_capture()
        if self._live is not None and (newest is not None or fresh) and self.analysed is not None:
            # live video: the newest captured frame, under the last analysed frame's overlays
            self.live_frame = newest or self.live_frame or self.analysed.frame
            if self.live_frame.index < self.analysed.frame.index:
                self.live_frame = self.analysed.frame
            self.ticks_drawn += 1
            self.shown.emit(replace(self.analysed, frame=self.live_frame, live=True))
        elif fresh:
            self.ticks_drawn += 1
            self.shown.emit(latest)

    def set_live_video(self, capture) -> None:
        """Show every captured frame with the last analysed frame's overlays (`capture`: the session's
        capture thread), or, with None, only analysed frames under their own overlays (the default)."""
        if self._live is not None:
            self._live[0].unsubscribe(self._live[1])
        self._live = None if capture is None else (capture, capture.subscribe("live view", maxsize=8))
        self.live_frame: Optional[Frame] = None

    def _newest_capture(self) -> Optional[Frame]:
        if self._live is None:
            return None
        frame = None
        queue = self._live[1].queue
        while not queue.empty():
            frame = queue.get_nowait()  # only this thread takes from it
        return frame
