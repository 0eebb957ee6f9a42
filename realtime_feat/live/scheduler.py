"""One analysis thread for one or several sources: it takes the newest frame of each source in turn
(round robin over the sources that have a new frame, so no camera is starved however fast another
delivers) and hands it to that source's worker (`live.LiveWorker`: its own detection skipping,
tracker and results bus). One analyser shared by several cameras is thus never called from two
threads at once. Changes to what the workers share (the analyser's threshold, a tracker's people,
settings) are queued with `between_frames` and applied by this thread between two frames; any other
use of the shared analyser while the thread runs (a camera added warms it up) goes through `call`.

A worker here needs: `slot` (its `LatestSlot`), `last` (the index of the newest frame it analysed),
`step(frame)` (analyse and publish) and `finish()` (its source is done, or it was removed).
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from typing import Callable, Optional, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class AnalysisThread:
    """`start()`, `stop()`; `add(worker)` and `remove(worker)` at any time. `until_done`: the thread
    ends by itself once it has workers and every one is finished (one source's own thread); else it
    waits for more until stopped (a session whose cameras come and go). `error`: what crashed it."""

    def __init__(self, workers=(), until_done: bool = True, name: str = "analysis"):
        self.until_done = until_done
        self.workers: tuple = ()          # copy-on-write: read without the lock on this thread
        self.error: Optional[BaseException] = None
        self._bell = threading.Event()    # rung by every slot's put and close
        self._stop = threading.Event()
        self._busy = threading.Lock()     # held while a frame is analysed
        self._frame_began: Optional[float] = None  # time.monotonic() when that frame's analysis began
        self._lock = threading.Lock()
        self._changes: list[Callable[[], None]] = []
        self._accepting = True
        self._starting = threading.Lock()  # held by start(), and by a `call` run here before the start
        self._next = 0                    # the worker whose turn comes first
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        for worker in workers:
            self.add(worker)

    def add(self, worker) -> None:
        worker.slot.bell = self._bell
        with self._lock:
            self.workers = (*self.workers, worker)
        self._bell.set()

    def remove(self, worker, timeout: float = 10.0) -> bool:
        """Take `worker` out; returns once the frame being analysed (if any) is published, or after
        `timeout` s of an analysis that gives no result (said once; a result of it may still come).
        True if no frame was left in analysis."""
        with self._lock:
            self.workers = tuple(w for w in self.workers if w is not worker)
        published = self._busy.acquire(timeout=self._left(timeout))
        if published:
            self._busy.release()
        else:
            log.warning("analysis gave no result in %.0f s (hung?): its source was taken off without it", timeout)
        worker.finish()
        return published

    def start(self) -> "AnalysisThread":
        with self._starting:
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Returns once the thread has ended, or once the frame being analysed has taken `timeout` s."""
        self._stop.set()
        self._bell.set()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join(self._left(timeout))

    def _left(self, timeout: float) -> float:
        """What is left of `timeout` s counted from when the frame being analysed began (from now when
        none is): a hung analysis is waited for once, not again by every remove() and stop()."""
        began = self._frame_began
        return max(0.0, (time.monotonic() if began is None else began) + timeout - time.monotonic())

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def between_frames(self, change: Callable[[], None]) -> bool:
        """Queue `change` for this thread to apply before its next frame, so no frame sees half of it.
        False once the thread has ended: then apply it yourself."""
        with self._lock:
            if not self._accepting:
                return False
            self._changes.append(change)
        self._bell.set()
        return True

    def call(self, job: Callable[[], T], timeout: float = 10.0) -> T:
        """`job()` on this thread between two frames, waited for: its result, or what it raised. Run here
        when the thread is not running (not started yet, or ended): nothing else uses what it shares then.
        TimeoutError (one line), the job dropped, when the thread does not get to it within `timeout` s
        (a hung analysis); once it has, its own time is waited for."""
        with self._starting:
            if self._thread.ident is None or threading.current_thread() is self._thread:
                return job()
        future: Future = Future()

        def run():
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:  # the caller's error, not the analysis thread's
                    future.set_exception(exc)

        if not self.between_frames(run):
            run()  # the thread has ended
        try:
            return future.result(timeout)
        except TimeoutError:
            if future.cancel():  # not begun: the thread is stuck in a frame
                raise TimeoutError(f"the analysis thread took no job in {timeout:.0f} s (is an analysis hung?)") \
                    from None
            return future.result()  # begun (or its own TimeoutError): its outcome

    def _apply_changes(self) -> None:
        with self._lock:
            changes, self._changes = self._changes, []
        for change in changes:
            change()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._bell.clear()  # before looking: a frame put after the look rings it again
                self._apply_changes()
                with self._busy:
                    self._frame_began = time.monotonic()
                    served = self._serve_one()
                    self._frame_began = None
                if served:
                    continue
                workers = self.workers
                if self.until_done and workers and all(w.done.is_set() for w in workers):
                    return
                self._bell.wait(0.2)
        except BaseException as exc:  # kept for the owners, who report it
            self.error = exc
            log.exception("analysis stopped")
        finally:  # what was queued still applies: a next thread shares analyser and trackers
            with self._lock:
                self._accepting = False
            self._apply_changes()
            for worker in self.workers:
                worker.finish()

    def _serve_one(self) -> bool:
        """The newest frame of the next worker in turn that has one, analysed; False if none had."""
        workers = self.workers  # read under `_busy`: a removed worker is never served after remove()
        n = len(workers)
        for k in range(n):
            i = (self._next + k) % n
            worker = workers[i]
            closed = worker.slot.closed  # before the look: a source puts its last frame, then closes
            frame = worker.slot.get(newer_than=worker.last, timeout=0)
            if frame is None:
                if closed:
                    worker.finish()  # its source ended and its last frame was analysed
                continue
            self._next = (i + 1) % n
            worker.step(frame)
            return True
        return False
