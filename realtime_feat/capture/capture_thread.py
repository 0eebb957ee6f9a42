"""The capture thread: stamps every frame as it leaves the source (when `grab()` returns, before
`retrieve()` decodes and converts it), hands every frame to its
subscribers (the recorder) and the newest to a latest-frame slot (analysis). It never waits for
either (DESIGN.md, "Capture never waits for analysis").

A live source that stops delivering (camera unplugged, stream dropped) moves the thread to `lost`; it
is reopened with back-off and resumes without a restart, frame indices going on from where they
were, and the gap is reported with its start and end on the capture clock. A finite source (a file,
a folder) is never reopened: at its end the state is `ended`; when it breaks (`SourceError`, or no
frame without having ended) it is `failed`, with the one line in `error`.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from ..types import Frame
from .sources import Source, SourceError

log = logging.getLogger(__name__)


class LatestSlot:
    """Holds the newest frame; a reader takes it when free. Frames overwritten before anyone took
    them are counted (`skipped`): skipped for analysis, still delivered to every subscriber.
    `taken` is the index of the newest frame a reader took (-1 before any) and `newest` that of the newest
    frame put: a frame below `newest` that was not taken never will be, which lets the recorder settle
    each frame's `analysed` flag. `bell`, when set, is set on every put and at close: one analysis
    thread waits on it for any of several slots."""

    def __init__(self):
        self._cond = threading.Condition()
        self._frame: Optional[Frame] = None
        self._taken = True
        self.skipped = 0
        self.taken = -1
        self.closed = False
        self.bell: Optional[threading.Event] = None

    def put(self, frame: Frame) -> None:
        with self._cond:
            if not self._taken:
                self.skipped += 1
            self._frame, self._taken = frame, False
            self._cond.notify_all()
        self._ring()

    def _ring(self) -> None:
        bell = self.bell
        if bell is not None:
            bell.set()

    @property
    def newest(self) -> int:
        frame = self._frame
        return -1 if frame is None else frame.index

    def get(self, newer_than: int = -1, timeout: Optional[float] = None) -> Optional[Frame]:
        """The newest frame with index > newer_than, waiting up to `timeout`; None on timeout or close."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self.closed or (self._frame is not None and self._frame.index > newer_than), timeout)
            if not ok or self._frame is None or self._frame.index <= newer_than:
                return None
            self._taken = True
            self.taken = self._frame.index
            return self._frame

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self._ring()


class FrameQueue(queue.Queue):
    """A FIFO of frames that keeps the sum of their images' sizes (`nbytes`)."""

    def __init__(self):
        super().__init__()
        self.nbytes = 0

    def _put(self, frame: Frame) -> None:  # queue.Queue calls these two under its lock
        self.nbytes += frame.image.nbytes
        super()._put(frame)

    def _get(self) -> Frame:
        frame = super()._get()
        self.nbytes -= frame.image.nbytes
        return frame


MIN_QUEUED = 4  # frames a byte-bounded queue takes whatever their size


class Subscriber:
    """A queue of every captured frame for one consumer, bounded by `maxsize` frames and, with
    `max_bytes`, by the bytes of their images (MIN_QUEUED frames fit whatever their size); overflow
    is counted and logged, never waited for. `missed` keeps (index, t_monotonic_ns, t_wall_ns, t_lsl)
    of each frame that did not fit, so the consumer can still account for it (frames.csv has a row
    for every captured frame); `offered` counts every frame offered. Only the capture thread offers."""

    def __init__(self, name: str, maxsize: int = 256, max_bytes: Optional[int] = None):
        self.name, self.maxsize, self.max_bytes = name, maxsize, max_bytes
        self.queue = FrameQueue()
        self.dropped = self.offered = 0
        self.missed: collections.deque = collections.deque()

    def _fits(self, frame: Frame) -> bool:
        # the one producer checks, then puts: the consumer can only make room in between
        n = self.queue.qsize()
        return n < self.maxsize and (self.max_bytes is None or n < MIN_QUEUED
                                     or self.queue.nbytes + frame.image.nbytes <= self.max_bytes)

    def offer(self, frame: Frame) -> None:
        self.offered += 1
        if self._fits(frame):
            self.queue.put_nowait(frame)
        else:
            self.dropped += 1
            self.missed.append((frame.index, frame.t_monotonic_ns, frame.t_wall_ns, frame.t_lsl))
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("%s cannot keep up: %d frames dropped from its queue", self.name, self.dropped)


@dataclass(frozen=True)
class Gap:
    """A stretch with no frames from the source, on the capture clock."""

    start_ns: int
    end_ns: Optional[int]   # None while still lost
    reason: str


class CaptureThread:
    """`start()`, then frames flow; `stop()` ends it cleanly; `state` is what consumers see:
    "starting", "running", "lost", "ended" (a finite source finished), "stopped" or "failed"."""

    def __init__(self, source: Source, slot: Optional[LatestSlot] = None, clock: Optional[Callable[[], float]] = None,
                 retry_initial_s: float = 0.5, retry_max_s: float = 5.0, on_state: Optional[Callable] = None):
        self.source = source
        self.slot = slot or LatestSlot()
        self.subscribers: list[Subscriber] = []
        self.clock = clock            # e.g. pylsl.local_clock, read at the same moment as the others
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.on_state = on_state
        self.state = "starting"
        self.frames = 0
        self.stamped = -1             # the newest frame stamped, maybe still being decoded: a marker's frame
        self.gaps: list[Gap] = []
        self.error: Optional[BaseException] = None
        self._stop = threading.Event()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"capture {source.id}", daemon=True)

    def subscribe(self, name: str, maxsize: int = 256, max_bytes: Optional[int] = None) -> Subscriber:
        sub = Subscriber(name, maxsize, max_bytes)
        self.subscribers = [*self.subscribers, sub]  # a new list: the capture thread may be iterating the old one
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers = [s for s in self.subscribers if s is not sub]

    def start(self, timeout: float = 15.0) -> "CaptureThread":
        """Starts capturing; raises the source's error if it cannot be opened at all."""
        self._thread.start()
        self._opened.wait(timeout)
        if self.error is not None:
            self._thread.join(1.0)
            raise self.error
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("capture thread for %s did not stop within %.0f s", self.source.id, timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the thread ends (source ended, stop, failure); True if it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_state:
                self.on_state(state)

    def _run(self) -> None:
        try:
            self.source.open()
        except BaseException as exc:
            self.error = exc
            self._set_state("failed")
            self._opened.set()
            self.slot.close()
            return
        self._opened.set()
        self._set_state("running")
        try:
            self._loop()
        except BaseException as exc:  # kept for the owner; the thread ends cleanly
            self.error = exc
            self._set_state("failed")
        finally:
            self.source.close()  # released on the thread that owns it
            if self.state not in ("ended", "failed"):
                self._set_state("stopped")
            self.slot.close()

    def _loop(self) -> None:
        is_open, delay = True, self.retry_initial_s
        while not self._stop.is_set():
            image, (t_mono, t_wall, t_lsl) = self._take() if is_open else (None, self._stamp())
            if image is None:
                if self.source.ended:
                    self._set_state("ended")
                    return
                if not self.source.reopenable:
                    raise SourceError(f"{self.source.id}: delivered no frame after frame {self.frames - 1} and "
                                      f"cannot be reopened (not a camera or live stream)")
                if self.state != "lost":  # lost: report the gap, then reopen with back-off
                    self._set_state("lost")
                    self.gaps.append(Gap(t_mono, None, "source delivered no frame"))
                    log.warning("%s lost; retrying", self.source.id)
                    delay = self.retry_initial_s
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.retry_max_s)
                self.source.close()
                try:
                    self.source.open()
                    is_open = True
                except OSError as exc:
                    log.info("%s: reopen failed: %s", self.source.id, exc)
                    is_open = False
                continue
            if self.state == "lost":
                gap = self.gaps[-1] = Gap(self.gaps[-1].start_ns, t_mono, self.gaps[-1].reason)
                log.warning("%s back after %.1f s", self.source.id, (gap.end_ns - gap.start_ns) / 1e9)
                self._set_state("running")
            frame = Frame(image, self.frames, t_mono, t_wall, t_lsl, self.source.id,
                          getattr(self.source, "last_pts", None))
            self.frames += 1
            for sub in self.subscribers:
                sub.offer(frame)
            self.slot.put(frame)

    def _stamp(self) -> tuple[int, int, Optional[float]]:
        return time.monotonic_ns(), time.time_ns(), self.clock() if self.clock else None

    def _take(self) -> tuple:
        """The next image (None: none came) and the clocks read the moment it left the source: as
        grab() returns, before retrieve() decodes it (after read() for a source with read() alone). Only a
        class that defines grab() itself is split: a wrapper that overrides read() and hands the rest on
        (pacing, logging) is read through its read()."""
        split = hasattr(type(self.source), "grab")
        image = None if split else self.source.read()
        got = self.source.grab() if split else image is not None
        stamp = self._stamp()
        if got:
            self.stamped = self.frames
        return (self.source.retrieve() if split and got else image), stamp
