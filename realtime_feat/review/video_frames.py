"""A recorded video's frames by their PTS, for review: `VideoFrames.read(pts)` decodes forward when the frame
is a little ahead of the last one read (playing, stepping) and seeks to the keyframe before it otherwise
(a jump); `FrameServer` does that on its own thread for the newest request only, so scrubbing never queues
up decoding work and the window never waits for it (ephyviewer's frame grabber, with the conversion to
RGB off the GUI thread too).

PTS are the recorder's: microseconds from the first captured frame (frames.csv's `video_time` × 10⁶).
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

import numpy as np

from ..errors import MediaError, first_line

log = logging.getLogger(__name__)

FORWARD_US = 2_000_000  # decode forward rather than seek when the frame is at most this far ahead (a GOP)


class VideoFrames:
    def __init__(self, path):
        import av

        self.path = path
        try:
            self._container = av.open(str(path))
        except Exception as exc:
            raise MediaError(f"{path}: not a readable video ({first_line(exc, 160)})") from None
        self._stream = self._container.streams.video[0]
        # frame and slice threads: a seek decodes up to a GOP (60 frames) before its frame, a throughput job
        # (measured on 2 cores, 720p: 32 ms median a seek against 55 with one thread and 38 with slices)
        self._stream.thread_type = "AUTO"
        self._decoded = None          # the decoding generator since the last seek
        self._last = None             # the last frame decoded (av.VideoFrame)
        self.seeks = 0

    def read(self, pts: int) -> Optional[np.ndarray]:
        """The frame with PTS `pts` (or the last one before it) as H×W×3 RGB; None past the decodable end
        (a killed recording's last fragment)."""
        import av

        last = self._last
        if last is not None and last.pts == pts:
            return last.to_ndarray(format="rgb24")
        if last is None or not (last.pts < pts <= last.pts + FORWARD_US):
            self._container.seek(max(int(pts), 0), stream=self._stream, backward=True, any_frame=False)
            self._decoded, self._last = self._container.decode(self._stream), None
            self.seeks += 1
        before = None
        try:
            for frame in self._decoded:
                if frame.pts is None:
                    continue
                if frame.pts >= pts:
                    self._last = frame
                    return (frame if frame.pts == pts or before is None else before).to_ndarray(format="rgb24")
                before = frame
        except (av.error.InvalidDataError, av.error.EOFError):
            pass  # the cut-off end of a killed recording
        self._last = None
        return None if before is None else before.to_ndarray(format="rgb24")

    def close(self) -> None:
        self._container.close()


class FrameServer:
    """Decodes on its own thread the newest frame asked for; `take()` returns (pts, image) once per decoded
    frame. `on_ready()` (optional) is called on that thread when a frame is ready to take, at most once until
    it is taken (a coalesced wake-up: the window need not poll). Errors end the thread and stay in `error`."""

    def __init__(self, path, on_ready: Optional[Callable[[], None]] = None):
        self.path = path
        self.frames: Optional[VideoFrames] = None  # opened on the thread (an hour's fragments take ~0.3 s)
        self.on_ready = on_ready
        self.error: Optional[str] = None
        self._wanted: Optional[int] = None
        self._ready: Optional[tuple[int, Optional[np.ndarray]]] = None
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="video frames", daemon=True)
        self._thread.start()

    def request(self, pts: int) -> None:
        with self._wake:
            self._wanted = pts
            self._wake.notify()

    def take(self) -> Optional[tuple[int, Optional[np.ndarray]]]:
        with self._wake:
            ready, self._ready = self._ready, None
        return ready

    def _run(self) -> None:
        try:
            self.frames = VideoFrames(self.path)
            while True:
                with self._wake:
                    while self._wanted is None and not self._closed:
                        self._wake.wait()
                    if self._closed:
                        return
                    pts, self._wanted = self._wanted, None
                image = self.frames.read(pts)
                with self._wake:
                    wake = self._ready is None
                    self._ready = (pts, image)
                if wake and self.on_ready is not None:
                    self.on_ready()
        except MediaError as exc:
            self.error = str(exc)
        except Exception as exc:  # reported by the window in one line
            self.error = f"{self.path}: cannot decode ({first_line(exc, 160)})"
        finally:
            if self.error:
                log.error("%s", self.error)
            if self.frames is not None:
                self.frames.close()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=10)
