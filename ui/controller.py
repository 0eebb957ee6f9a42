"""The app's state, owned in one place (as mne-qt-browser's browser base owns its own): the options the
next start uses, the running `LiveSession`, the loader thread, blocking jobs run off the GUI thread
(stopping, finalising, reading a recorded session for the viewer), markers, the recording, and what the
banner says. The window is layout and wiring: it calls these methods and draws what they return and
what the signals say.

Several cameras: `source` is the first and `more` the others; the session is then a `MultiSession`.
`add_camera` joins a running MultiSession at once (a running one-camera session restarts as a
MultiSession: the models load again), `remove_camera` takes one out; neither while recording.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QObject, Signal

from realtime_feat import Enrolment, OptionError, PipelineOptions, first_line

from .controls import control_name
from .loader import SessionLoader

log = logging.getLogger("realtime_feat.ui")


@dataclass(frozen=True)
class Banner:
    """The line above the video: the worst thing to say now ("" when there is nothing)."""

    text: str = ""
    level: str = "error"    # error | warning (the rest goes on) | info (nothing is wrong: e.g. the source ended)
    restart: bool = False   # the analysis stopped: offer "Restart analysis"


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
    ready = Signal(object)            # a started LiveSession, now `session`
    failed = Signal(str)              # loading failed: one line
    weightsMissing = Signal(list)     # loading stopped: one line per missing weight file
    stopped = Signal()                # `session` was stopped (it is None now)
    recordingChanged = Signal(object)  # the recording folder, or None when it stopped or failed
    camerasChanged = Signal()         # a camera joined or left the running MultiSession
    reviewLoaded = Signal(object)     # a recorded session read by `open_recording`, for the viewer

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
        self.notice = ""   # a camera that could not join: kept in the banner while nothing worse is to say

    # -- options for the next start, and the running session's settings ------------------------------
    def update_options(self, **changes) -> bool:
        """Options that apply at the next start (detector, identity, weights, ...); False when refused
        (`failed`: one line naming the control)."""
        try:
            self.options = replace(self.options, **changes)
        except OptionError as exc:
            self.failed.emit(exc.worded(control_name))
            return False
        return True

    def set_threshold(self, value: float) -> None:
        if self.update_options(threshold=value) and self.session is not None:
            self.session.set_threshold(value)   # applied by the analysis worker between frames

    def set_redetect_every(self, value: int) -> None:
        if self.update_options(redetect_every=value) and self.session is not None:
            self.session.update_settings(redetect_every=value)

    def enrol(self, name: str, embedding) -> None:
        """Name a tracked face for the rest of the session (applied between frames)."""
        self.session.enrol(name, embedding)

    def add_reference_photo(self, name: str, path: Path) -> bool:
        """Enrolled from the photo as the next session starts (the models belong to the running analysis);
        False when refused (ArcFace off: said)."""
        return self.update_options(enrol=(*self.options.enrol, Enrolment(name, path)))

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
        self._others_run(lines[0] if len(lines) == 1 else f"{len(lines)} sources could not be opened (see the log)")

    def _others_run(self, line: str) -> None:
        """A camera that could not be opened or join while the others run: said now, then kept as the
        notice (on any thread: `failed` is queued to the GUI thread)."""
        self.notice = f"{line}; the other cameras run"
        self.failed.emit(self.notice)

    # -- several cameras ------------------------------------------------------------------------------
    @property
    def cameras(self) -> dict:
        """{camera name: its LiveSession} of the running session ({"": session} for one source)."""
        if self.session is None:
            return {}
        return getattr(self.session, "cameras", None) or {"": self.session}

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
        if session is None or not hasattr(session, "add_camera"):  # none running, or one source: (re)load all
            self.stop()
            self._drop_loader()
            self.start()
            return True

        def add():
            try:
                self._specs[session.add_camera(spec)] = spec
            except (OSError, ValueError, RuntimeError) as exc:
                self.more = tuple(m for m in self.more if m != spec)
                self._others_run(first_line(exc))
                return
            self.camerasChanged.emit()

        self.in_background(f"adding {spec}", add)
        return True

    def remove_camera(self, name: str) -> bool:
        """Take camera `name` out of the running MultiSession; False (and a log line) when it cannot."""
        session = self.session
        if session is None or not hasattr(session, "remove_camera") or name not in session.cameras:
            log.warning("no camera %s to remove", name or "(the only one)")
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
        if hasattr(session, "cameras"):  # the sources that opened, by camera name (the others were said)
            self._specs = dict(zip(session.cameras, loader.opened))
            self.source, self.more = loader.opened[0], tuple(loader.opened[1:])
        self.adopt(session)

    def adopt(self, session) -> None:
        """Make `session` (started) the running one."""
        self.session, self.notice = session, ""
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
            status = session.status()
            cameras = list(getattr(status, "cameras", {}).values()) or [status]
            log.info("stopped: %d frames captured, %d analysed", sum(c.captured for c in cameras),
                     sum(c.analysed for c in cameras))

        self.in_background("stopping the source", stop)

    def restart_analysis(self) -> None:
        try:
            self.session.restart_analysis()
            log.info("analysis restarted")
        except RuntimeError as exc:
            log.error("%s", first_line(exc))

    # -- markers, status and the banner ----------------------------------------------------------------
    def mark(self, label: str):
        """A marker now, on the capture clocks (keys 1–9); None (one log line) with no session running."""
        if self.session is None:
            log.warning("marker %s: no session running", label)
            return None
        marker = self.session.mark(label)
        log.info("marker: %s", label)
        return marker

    @property
    def markers(self) -> list:
        """The running session's markers so far ([] with none running)."""
        return [] if self.session is None else list(self.session.markers)

    def poll(self):
        """Once per tick: (status, Banner) of the running session, the recording followed; None with none."""
        if self.session is None:
            return None
        status = self.session.status()
        self.follow(status)
        return status, self.banner(status)

    def banner(self, status) -> Banner:
        """What the banner says for `status`, the worst first: the analysis stopped (a restart offered), a
        recording that failed, a sink detached, a source lost, failed or ended; else the notice."""
        if hasattr(status, "cameras"):
            return self._cameras_banner(status)
        worker = self.session.worker
        if worker is not None and worker.error is not None:
            return Banner(f"analysis stopped: {status.error}", restart=True)
        if status.recording_error:  # over: the folder keeps what was written, analysis goes on
            return Banner(status.recording_error)
        if status.sink_errors:  # detached alone: analysis and recording go on
            return Banner(f"{status.sink_errors[-1]} (detached; analysis and recording go on)", "warning")
        if status.state == "lost":
            return Banner("source lost: reconnecting… (recording continues when it is back)")
        if status.state == "failed":
            return Banner(f"source failed: {status.error}; choose another (Ctrl+O)")
        if status.state == "ended":
            return Banner("end of the source: choose another (Ctrl+O) or start it again (Space)", "info")
        return Banner(self.notice, "warning")

    def _cameras_banner(self, status) -> Banner:
        """Several cameras: what stops the session, then a sink detached, then a camera lost while the
        others go on, then all ended; else the notice."""
        sink_errors = [e for c in status.cameras.values() for e in c.sink_errors]
        analysis = self.session.analysis
        if status.error:
            return Banner(status.error, restart=analysis is not None and analysis.error is not None)
        if sink_errors:
            return Banner(f"{sink_errors[-1]} (detached; analysis and recording go on)", "warning")
        if status.lost:
            return Banner(next(iter(status.lost.values())) + (" (recording continues when it is back)"
                                                               if status.recording else ""))
        if all(c.state == "ended" for c in status.cameras.values()):
            return Banner("end of the sources: choose another (Ctrl+O) or start them again (Space)", "info")
        return Banner(self.notice, "warning")

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

    # -- the viewer ---------------------------------------------------------------------------------
    def open_recording(self, folder: Path) -> None:
        """Read the recorded session in `folder` off the GUI thread (load_session reads its CSVs and
        files): `reviewLoaded` with it, or one log line when it is not a session."""
        def load():
            from realtime_feat import load_session

            try:
                recorded = load_session(folder)
            except (OSError, ValueError) as exc:
                log.error("cannot open %s: %s", folder, first_line(exc))
                return
            self.reviewLoaded.emit(recorded)

        self.in_background(f"opening {folder}", load)

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
