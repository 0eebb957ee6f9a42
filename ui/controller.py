"""The app's state, owned in one place (as mne-qt-browser's browser base owns its own): the options the
next start uses, the running `LiveSession`, the loader thread, blocking jobs run off the GUI thread, and
the recording. The window is layout and wiring: it calls these methods and draws what the signals say.

The session is a `MultiSession` (a `LivePipeline`) for one camera or several: `source` is the first and
`more` the others. `add_camera` joins the running session at once (its analyser warmed up on the
analysis thread, between the other cameras' frames), `remove_camera` takes one out; neither while
recording.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, Signal

from realtime_feat import Enrolment, PipelineOptions, first_line

from .loader import SessionLoader

log = logging.getLogger("realtime_feat.ui")


@dataclass(frozen=True)
class AppOptions:
    """What `realtime-feat app` starts with."""

    pipeline: PipelineOptions = PipelineOptions()
    source: Optional[str] = None        # None: the first camera found, else the source picker
    sessions: Optional[Path] = None     # recordings and screenshots (None: ~/Documents/realtime-feat)
    realtime: bool = True               # a file plays at its own rate (False: as fast as it decodes)
    more: tuple[str, ...] = ()          # more cameras, in one session with `source`


class SessionController(QObject):
    progress = Signal(str)            # loading: the current step
    downloaded = Signal(int, int)     # loading: bytes done, bytes in all of the current download
    loading = Signal(bool)            # a loader started (True) or finished (False)
    ready = Signal(object)            # a started session (LivePipeline), now `session`
    failed = Signal(str)              # loading failed: one line
    weightsMissing = Signal(list)     # loading stopped: one line per missing weight file
    stopped = Signal()                # `session` was stopped (it is None now)
    recordingChanged = Signal(object)  # the recording folder, or None when it stopped or failed
    camerasChanged = Signal()         # a camera joined or left the running MultiSession

    def __init__(self, options: AppOptions, parent=None):
        super().__init__(parent)
        self.options = options.pipeline
        self.source = options.source
        self.more: tuple[str, ...] = options.more
        self.realtime = options.realtime
        self.session = None
        self.loader: Optional[SessionLoader] = None
        self.recording_path: Optional[Path] = None    # the folder being recorded into
        self.last_folder: Optional[Path] = None       # the last finalised recording
        self.jobs: list[threading.Thread] = []         # blocking library calls running off the GUI thread
        self._specs: dict[str, str] = {}               # several cameras: camera name → the spec it runs
        self._stale: list[SessionLoader] = []          # loaders replaced by a newer choice, still finishing

    # -- options for the next start, and the running session's settings ------------------------------
    def update_options(self, **changes) -> None:
        """Options that apply at the next start (detector, identity, weights, ...)."""
        self.options = replace(self.options, **changes)

    def set_threshold(self, value: float) -> None:
        self.update_options(threshold=value)
        if self.session is not None:
            self.session.set_threshold(value)   # applied by the analysis worker between frames

    def set_redetect_every(self, value: int) -> None:
        self.update_options(redetect_every=value)
        if self.session is not None:
            self.session.update_settings(redetect_every=value)

    def enrol(self, name: str, embedding) -> None:
        """Name a tracked face for the rest of the session (applied between frames)."""
        self.session.enrol(name, embedding)

    def add_reference_photo(self, name: str, path: Path) -> None:
        """Enrolled from the photo as the next session starts (the models belong to the running analysis)."""
        self.update_options(enrol=(*self.options.enrol, Enrolment(name, path)))

    # -- life cycle ---------------------------------------------------------------------------------
    def use_source(self, spec: str) -> None:
        """Switch to `spec` (alone): the running session stops, a loading one is dropped, the new source loads."""
        self.source, self.more = spec, ()
        self.stop()
        self._drop_loader()
        self.start()

    def start(self) -> bool:
        """Load and start a session on the current source, off the GUI thread; False if there is no
        source or one is already running or loading."""
        if not self.source or self.session is not None or self.loader is not None:
            return False
        loader = self.loader = SessionLoader(self.options, self.source, self.realtime, self, more=self.more)
        loader.progress.connect(self.progress)
        loader.downloaded.connect(self.downloaded)
        loader.ready.connect(lambda session, l=loader: self._loaded(l, session))
        loader.failed.connect(lambda line, l=loader: l is self.loader and self.failed.emit(line))
        loader.weightsMissing.connect(lambda lines, l=loader: l is self.loader and self.weightsMissing.emit(lines))
        loader.skipped.connect(self._skipped)
        loader.finished.connect(lambda l=loader: self._loader_done(l))
        self.loading.emit(True)
        loader.start()
        return True

    def _skipped(self, lines: list) -> None:
        """Sources that could not be opened while the others started: said, and dropped from the set."""
        for line in lines:
            log.error("%s", line)
        self.failed.emit(f"{lines[0]}; the other cameras run" if len(lines) == 1 else
                         f"{len(lines)} sources could not be opened (see the log); the other cameras run")

    # -- several cameras ------------------------------------------------------------------------------
    @property
    def cameras(self) -> dict:
        """{camera name: its LiveSession} of the running session."""
        return {} if self.session is None else self.session.cameras

    def add_camera(self, spec: str) -> bool:
        """Another source in the session; False (and a log line) when it cannot be added now."""
        if spec in (self.source, *self.more):
            log.warning("%s is already one of the cameras", spec)
            return False
        if self.recording_path is not None:
            log.warning("cameras cannot be added while recording: stop the recording first")
            return False
        if not self.source:
            self.use_source(spec)
            return True
        self.more = (*self.more, spec)
        session = self.session
        if session is None:  # none running (or one loading): load them all
            self.stop()
            self._drop_loader()
            self.start()
            return True

        def add():
            try:
                self._specs[session.add_camera(spec)] = spec
            except (OSError, ValueError, RuntimeError) as exc:
                self.more = tuple(m for m in self.more if m != spec)
                self.failed.emit(f"{first_line(exc)}; the other cameras run")
                return
            self.camerasChanged.emit()

        self.in_background(f"adding {spec}", add)
        return True

    def remove_camera(self, name: str) -> bool:
        """Take camera `name` out of the running MultiSession; False (and a log line) when it cannot."""
        session = self.session
        if session is None or name not in session.cameras:
            log.warning("no camera %s to remove", name)
            return False
        if self.recording_path is not None or len(session.cameras) == 1:
            log.warning("cameras cannot be removed while recording, nor the last one: stop instead")
            return False
        self._specs.pop(name, None)
        self.source, *more = self._specs.values()
        self.more = tuple(more)

        def remove():
            session.remove_camera(name)
            self.camerasChanged.emit()

        self.in_background(f"removing {name}", remove)
        return True

    def _loaded(self, loader: SessionLoader, session) -> None:
        if loader is not self.loader:  # a source chosen while this one loaded replaced it
            self.in_background("stopping a replaced source", session.stop)
            return
        # the sources that opened, by camera name (the others were said)
        self._specs = dict(zip(session.cameras, loader.opened))
        self.source, self.more = loader.opened[0], tuple(loader.opened[1:])
        self.adopt(session)

    def adopt(self, session) -> None:
        """Make `session` (started) the running one."""
        self.session = session
        self.ready.emit(session)

    def _loader_done(self, loader: SessionLoader) -> None:
        if loader in self._stale:
            self._stale.remove(loader)
        if loader is self.loader:
            self.loader = None
            self.loading.emit(False)

    def _drop_loader(self) -> None:
        if self.loader is not None:
            self.loader.requestInterruption()
            self._stale.append(self.loader)
            self.loader = None
            self.loading.emit(False)

    def stop(self) -> None:
        """Stop the running session off the GUI thread (a recording is finalised first)."""
        session, recording = self.session, self.recording_path is not None
        if session is None:
            return
        self._recording_over()
        self.session = None
        self.stopped.emit()

        def stop():
            if recording:
                self._finalise(session)
            session.stop()
            cameras = session.status().cameras.values()
            log.info("stopped: %d frames captured, %d analysed", sum(c.captured for c in cameras),
                     sum(c.analysed for c in cameras))

        self.in_background("stopping the source", stop)

    def restart_analysis(self) -> None:
        try:
            self.session.restart_analysis()
            log.info("analysis restarted")
        except RuntimeError as exc:
            log.error("%s", first_line(exc))

    # -- recording ----------------------------------------------------------------------------------
    def start_recording(self, root: Path, label: str, leave_out: tuple[str, ...] = ()) -> Optional[Path]:
        """`leave_out`: "mesh" and/or "embedding", left out of fex.csv."""
        if self.session is None:
            log.warning("recording needs a running source: press Space or choose one")
            return None
        try:
            self.recording_path = self.session.start_recording(root, label, leave_out=leave_out)
        except (OSError, RuntimeError, ValueError, NotImplementedError) as exc:
            log.error("recording could not start: %s", first_line(exc))
            return None
        log.info("recording into %s", self.recording_path)
        self.recordingChanged.emit(self.recording_path)
        return self.recording_path

    def stop_recording(self) -> None:
        if self.recording_path is not None and self.session is not None:
            session = self.session
            self.in_background("finalising the recording", lambda: self._finalise(session))
        self._recording_over()

    def follow(self, status) -> None:
        """The recording as the session says it is (status once per tick): a recording that ended by
        itself (disk full, folder removed, encoder error) is over here too."""
        if self.recording_path is not None and status.recording is None:
            self._recording_over()  # the recorder logged why; status.recording_error holds the line

    def _recording_over(self) -> None:
        if self.recording_path is not None:
            self.recording_path = None
            self.recordingChanged.emit(None)

    def _finalise(self, session) -> None:
        """Off the GUI thread: every queued frame written, the folder closed."""
        folder = session.stop_recording()
        if folder is not None:
            log.info("recording finalised: %s", folder)
            self.last_folder = folder

    # -- background jobs and closing ---------------------------------------------------------------
    def in_background(self, what: str, job: Callable[[], None]) -> None:
        """A blocking library call (joining threads, finalising a recording) off the GUI thread, so the
        window never freezes on it; `close` waits for every such call. Errors: one log line."""
        def run():
            try:
                job()
            except Exception as exc:  # reported, never a traceback on screen
                log.error("%s failed: %s", what, first_line(exc))

        thread = threading.Thread(target=run, name=what)
        self.jobs = [t for t in self.jobs if t.is_alive()] + [thread]
        thread.start()

    def close(self) -> None:
        """Everything ended and finalised: loaders, the session, the recording, background jobs."""
        self._drop_loader()
        for loader in list(self._stale):
            loader.wait()
            if loader.session is not None and loader.session is not self.session:
                loader.session.stop()  # ready, but its signal had not reached us yet
        self.stop()
        for job in self.jobs:
            job.join()
