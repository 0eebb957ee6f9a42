"""Playing and seeking a recorded session: which frame is on screen, on the recording's own clock or one
frame at a time. Frames are decoded off the GUI thread (`FrameServer`, newest request wins); a decoded frame
is shown only if it is the one last asked for, together with its own recorded overlays, in one `shown`
signal (as live: image and overlays from the same pair)."""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from realtime_feat.review.playback import ReviewFrame, SessionReview
from realtime_feat.types import Detections, FaceAnalysis, Frame, FrameResult
from realtime_feat.review.video_frames import FrameServer

from .bridge import Shown

REFRESH_S = 0.5   # while fex.csv is being read: how often the window hears of new rows


class Player(QObject):
    shown = Signal(object, object)     # (Shown, ReviewFrame): the frame on screen and what review knows of it
    playingChanged = Signal(bool)
    analysisGrew = Signal()            # more of fex.csv was read (the first open of a session)
    failed = Signal(str)               # the video cannot be read: one line
    _decoded = Signal()                # a frame is ready (emitted on the decoding thread, queued to this one)

    def __init__(self, review: SessionReview, interval_ms: int = 15, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.review = review
        self.server = FrameServer(review.session.video, on_ready=self._decoded.emit)
        self._decoded.connect(self._take)
        self.speed = 1.0
        self.playing = False
        self.wanted: Optional[ReviewFrame] = None   # the frame asked for last
        self.current: Optional[ReviewFrame] = None  # the frame on screen
        self._clock = (0.0, 0.0)                    # (session t, time.monotonic()) when play started
        self._refreshed = 0.0
        self._reading = True                        # fex.csv's rows may still be coming in
        self._failed = False
        self._image: Optional[np.ndarray] = None    # the decoded image on screen
        self._blank: Optional[np.ndarray] = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    @property
    def position(self) -> int:
        return -1 if self.wanted is None else self.wanted.position

    def seek(self, position: int) -> None:
        """Show captured frame `position` (a row of frames.csv) as soon as it is decoded."""
        self.wanted = self.review.show(position)
        if self.wanted.pts is not None:
            self.server.request(self.wanted.pts)
        else:  # not in the video: nothing to decode
            self._show(self.wanted, None)

    def seek_time(self, t: float) -> None:
        self.seek(self.review.position_at(t))

    def step(self, n: int) -> None:
        self.pause()
        self.seek(self.position + n)

    def play(self) -> None:
        if self.position >= len(self.review) - 1:
            self.seek(0)
        self._clock = (self.review.t[max(self.position, 0)], time.monotonic())
        self.playing = True
        self.playingChanged.emit(True)

    def pause(self) -> None:
        if self.playing:
            self.playing = False
            self.playingChanged.emit(False)

    def toggle(self) -> None:
        self.pause() if self.playing else self.play()

    def set_speed(self, speed: float) -> None:
        if self.playing:
            self._clock = (self.review.t[self.position], time.monotonic())
        self.speed = speed

    def tick(self) -> None:
        if self.playing:
            t = self._clock[0] + (time.monotonic() - self._clock[1]) * self.speed
            position = self.review.position_at(t)
            if position != self.position:
                self.seek(position)
            if position >= len(self.review) - 1:
                self.pause()
        self._take()
        if self.server.error and not self._failed:
            self._failed = True
            self.failed.emit(self.server.error)
        if self._reading and time.monotonic() - self._refreshed >= REFRESH_S:
            self._refresh()

    def _take(self) -> None:
        """Show the decoded frame if it is the one asked for last (an older one was overtaken: dropped)."""
        ready = self.server.take()
        if ready is not None and self.wanted is not None and ready[0] == self.wanted.pts:
            self._show(self.wanted, ready[1])

    def _refresh(self) -> None:
        self._refreshed = time.monotonic()
        self._reading = self.review.loading  # one more look once the reading has ended
        if self.review.refresh():
            self.analysisGrew.emit()
            if self.current is not None and self.current.result is None:
                self.redescribe()

    def redescribe(self) -> None:
        """Show the current frame again with what review now knows of it (names, rows read since)."""
        if self.current is not None:
            self.wanted = self.review.show(self.current.position)
            self._show(self.wanted, self._image)

    def _show(self, info: ReviewFrame, image: Optional[np.ndarray]) -> None:
        self._image = image
        if image is None:  # not in the video (or past a killed recording's decodable end): a blank frame
            image = self._blank if self._blank is not None else np.zeros((360, 640, 3), np.uint8)
        else:
            if self._blank is None or self._blank.shape != image.shape:
                self._blank = np.full(image.shape, 40, np.uint8)
        t_ns = round((self.review.t[info.position] + self.review.session.t0) * 1e9)
        frame = Frame(image, info.frame, t_ns, 0)
        result = info.result
        if result is None:
            result = FrameResult.of(frame, Detections.empty(), FaceAnalysis.empty(), {})
        elif (result.height, result.width) != image.shape[:2]:
            result = replace(result, height=image.shape[0], width=image.shape[1])
        self.current = info
        self.shown.emit(Shown(frame, result, info.names), info)

    def close(self) -> None:
        self.timer.stop()
        self.pause()
        self.server.close()
