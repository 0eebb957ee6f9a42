"""Live analysis: take the newest captured frame when free, analyse it, track the faces, publish.

Detection skipping: a full face detection runs every `redetect_every` analysed frames; in between,
each face's box is carried from its previous landmarks (ROI tracking), which costs no detector at
all. Detection also runs at once when there is no face, when a face moved more than `max_motion`
of its size between analysed frames, or when its landmarks no longer fit its box (tracking lost).
ArcFace runs with the detections, and while a track is still tentative (a new or returning face
that the tracker must be able to re-identify); otherwise the tracker follows faces by box overlap,
and a person's identity does not change from frame to frame (`identity_every_frame` overrides).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np

from ..capture.capture_thread import LatestSlot
from ..errors import first_line
from ..types import Detections, Frame, FrameResult
from .scheduler import AnalysisThread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveSettings:
    # Analysed frames between full detections (1 = detect on every frame). Higher is faster on a CPU
    # but notices a new face later (at most this many analysed frames).
    redetect_every: int = 5
    # Re-detect when a face's landmarks moved more than this fraction of its box between analysed
    # frames: a box carried from fast motion would crop the face badly.
    max_motion: float = 0.25
    # Re-detect when the landmarks' extent changed by more than this factor (zoom, or tracking lost).
    max_scale_change: float = 1.3
    # ArcFace on every analysed frame (an embedding in every CSV row) instead of with detections and
    # new tracks only: about a third more time per frame on a CPU.
    identity_every_frame: bool = False
    # Re-detect after a pause in the frames analysed longer than this (source lost, analysis stalled):
    # boxes carried across it would point at where faces were.
    max_pause_s: float = 0.5

    def __post_init__(self) -> None:
        if self.redetect_every < 1:
            raise ValueError(f"LiveSettings.redetect_every must be ≥ 1, got {self.redetect_every}")
        if not (self.max_motion > 0 and self.max_scale_change > 1):
            raise ValueError("LiveSettings.max_motion must be > 0 and max_scale_change > 1")


@dataclass(frozen=True)
class SinkFailure:
    """A sink that raised: detached, named once; analysis and the other sinks went on."""

    name: str                 # "CSV writer", "LSL outlet … face data", a subscriber's name
    error: BaseException
    frame: int                # the result's frame index; -1 outside a result (its own thread, closing)
    essential: bool           # what the command exists for (`live -o`'s CSV): the command should end

    @property
    def message(self) -> str:
        """The one line for status, banner and exit: "<name>: <cause>"."""
        return f"{self.name}: {first_line(self.error)}"


@dataclass(frozen=True)
class _Subscriber:
    callback: Callable[[FrameResult, Frame], None]
    name: str
    essential: bool


class ResultsBus:
    """Hands every result, with the exact frame it was computed on, to each subscriber's callback
    `(result, frame)`, called on the worker thread (keep it short). `latest` is the newest result.
    A callback that raises is detached and its `SinkFailure` kept in `failures`; the others go on."""

    def __init__(self):
        # Copy-on-write tuples: the worker iterates and reads them without the lock.
        self._subscribers: tuple[_Subscriber, ...] = ()
        self.failures: tuple[SinkFailure, ...] = ()
        self._lock = threading.Lock()
        self.latest: Optional[FrameResult] = None

    def subscribe(self, callback: Callable[[FrameResult, Frame], None], name: Optional[str] = None,
                  essential: bool = False) -> None:
        """`name` is how a failure is shown (default: the callable's name); `essential`: see SinkFailure."""
        subscriber = _Subscriber(callback, name or getattr(callback, "__qualname__", type(callback).__qualname__),
                                 essential)
        with self._lock:
            self._subscribers = (*self._subscribers, subscriber)

    def unsubscribe(self, callback: Callable[[FrameResult, Frame], None]) -> None:
        # == not `is`: each `obj.method` access makes a new bound method, equal to the subscribed one
        with self._lock:
            self._subscribers = tuple(s for s in self._subscribers if s.callback != callback)

    def publish(self, result: FrameResult, frame: Frame) -> None:
        self.latest = result
        for subscriber in self._subscribers:
            try:
                subscriber.callback(result, frame)
            except Exception as exc:
                with self._lock:
                    self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)
                self.fail(subscriber.name, exc, result.index, subscriber.essential)

    def fail(self, name: str, error: BaseException, frame: int = -1, essential: bool = False) -> SinkFailure:
        """Record and log (once, with the traceback for the log file) a sink's failure; also for sinks
        that fail outside `publish` (on their own thread, or while closing)."""
        failure = SinkFailure(name, error, frame, essential)
        with self._lock:
            self.failures = (*self.failures, failure)
        log.error("%s failed and was detached (analysis and the other outputs go on): %s", name,
                  first_line(error), exc_info=error)
        return failure


def _extent(points: np.ndarray) -> np.ndarray:
    """(N, K, 2) → (N, 4) xyxy of each face's points."""
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def _centre_size(xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2, np.maximum(xyxy[:, 2:] - xyxy[:, :2], 1e-3)


class RoiTracker:
    """Carries detector boxes from landmarks: at a detection, each box is stored relative to its face's
    landmark extent; later boxes are that relation applied to the latest landmarks."""

    def __init__(self, settings: LiveSettings):
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        self._relation: Optional[np.ndarray] = None   # (N, 4): box centre offset and size, in extents
        self._extent: Optional[np.ndarray] = None
        self._scores: Optional[np.ndarray] = None
        self.since_detection = 0

    def boxes(self) -> Optional[Detections]:
        """Boxes for the next frame, or None when a full detection is due."""
        if self._extent is None or len(self._extent) == 0 or self.since_detection >= self.settings.redetect_every - 1:
            return None
        centre, size = _centre_size(self._extent)
        box_centre = centre + self._relation[:, :2] * size
        box_size = self._relation[:, 2:] * size
        xyxy = np.concatenate([box_centre - box_size / 2, box_centre + box_size / 2], axis=1).astype(np.float32)
        return Detections(xyxy, self._scores)

    def observe(self, result: FrameResult, detected: bool) -> None:
        """Learn from an analysed frame; a face that moved or changed too much forces a detection."""
        extent = _extent(result.faces.landmarks68) if result.n_faces else np.zeros((0, 4))
        if detected:
            centre, size = _centre_size(extent)
            box_centre, box_size = _centre_size(result.detections.xyxy)
            self._relation = np.concatenate([(box_centre - centre) / size, box_size / size], axis=1)
            self._scores = result.detections.scores
            self.since_detection = 0
        else:
            self.since_detection += 1
            old_centre, old_size = _centre_size(self._extent)
            centre, size = _centre_size(extent)
            moved = np.linalg.norm(centre - old_centre, axis=1) / old_size.max(axis=1)
            scale = size.max(axis=1) / old_size.max(axis=1)
            if ((moved > self.settings.max_motion) | (scale > self.settings.max_scale_change)
                    | (scale < 1 / self.settings.max_scale_change) | ~np.isfinite(extent).all(axis=1)).any():
                self._extent = None  # lost or fast: detect on the next frame
                return
        self._extent = extent


class LiveWorker:
    """One source's analysis: detection skipping, its tracker, its results bus. It runs on an
    `AnalysisThread`: its own (`start()`, `stop()`), or one shared with other sources' workers
    (`AnalysisThread([a, b]).start()`; then `stop()` takes it off that thread). `analysed` and
    `detections_run` count the frames analysed and the full detections among them; `error` holds what
    stopped its thread; `done` is set once it will analyse no more (source ended, removed, stopped)."""

    def __init__(self, analyser, slot: LatestSlot, bus: Optional[ResultsBus] = None, tracker=None,
                 settings: Optional[LiveSettings] = None):
        self.analyser = analyser
        self.slot = slot
        self.bus = bus or ResultsBus()
        self.tracker = tracker
        self.settings = settings or LiveSettings()
        self.roi = RoiTracker(self.settings)
        self.analysed = 0
        self.detections_run = 0
        self.last = -1                    # the newest frame analysed
        self.done = threading.Event()
        self.thread: Optional[AnalysisThread] = None
        self._own_thread = False
        self._last_ns = 0

    def start(self) -> "LiveWorker":
        """On a thread of its own, which ends with this worker."""
        self.thread, self._own_thread = AnalysisThread([self]), True
        self.thread.start()
        return self

    def run_on(self, thread: AnalysisThread) -> "LiveWorker":
        """On `thread`, shared with other sources' workers."""
        self.thread = thread
        thread.add(self)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Returns within `timeout` s, even from an analysis that gives no result."""
        if self.thread is None:
            return
        if self._own_thread:
            self.thread.stop(timeout)
        else:
            self.thread.remove(self, timeout)

    def wait(self, timeout: Optional[float] = None) -> bool:
        return self.done.wait(timeout)

    def finish(self) -> None:
        """No more frames for this worker (called by its thread, or by `AnalysisThread.remove`)."""
        self.done.set()

    @property
    def error(self) -> Optional[BaseException]:
        return None if self.thread is None else self.thread.error

    def between_frames(self, change: Callable[[], None]) -> bool:
        """Queue `change` (of the analyser, tracker or settings) for its thread to apply before its next
        frame, so no frame sees half of it. False once the thread has ended: then apply it yourself."""
        return self.thread is not None and self.thread.between_frames(change)

    def use_settings(self, settings: LiveSettings) -> None:
        """New settings for this worker and its ROI tracker; call between frames (`between_frames`)."""
        self.settings = self.roi.settings = settings

    def step(self, frame: Frame) -> None:
        """Analyse `frame` and publish the result (on the analysis thread)."""
        self.last = frame.index
        self.bus.publish(self.analyse(frame), frame)

    def analyse(self, frame) -> FrameResult:
        if frame.t_monotonic_ns - self._last_ns > self.settings.max_pause_s * 1e9:
            self.roi.reset()
        self._last_ns = frame.t_monotonic_ns
        boxes = self.roi.boxes()
        if boxes is None:
            result = self.analyser.analyse([frame])[0]
            self.detections_run += 1
        else:
            new_faces = self.tracker is not None and any(t.track_id < 0 for t in self.tracker.tracks)
            identity = self.settings.identity_every_frame or new_faces
            result = self.analyser.analyse_boxes([frame], [boxes], identity=identity)[0]
        self.roi.observe(result, detected=boxes is None)
        timings = dict(result.timings_ms, detected=float(boxes is None))
        if self.tracker is not None:
            t0 = time.perf_counter()
            result = replace(result, track_ids=self.tracker.update(result))
            timings["track"] = (time.perf_counter() - t0) * 1e3
        timings["latency"] = (time.monotonic_ns() - frame.t_monotonic_ns) / 1e6  # capture → result
        self.analysed += 1
        return replace(result, timings_ms=timings)
