"""Several sources, one session (DESIGN.md, "With several cameras"): a `LiveSession` per camera (its
capture thread stamping on the one set of clocks, its tracker, results bus, recorder, CSV and LSL
outlets named after it) and one shared analyser on one `AnalysisThread`, which takes the newest
frame of each camera in turn.

    session = MultiSession(["0", "1"], analyser, tracker_factory=..., lsl=True)
    session.start()                     # OSError (one line) if a source cannot be opened: none runs
    session.start_recording(root, label)  # one folder: a subfolder per camera, markers.csv + metadata.json on top
                                        # (one camera: the one-camera layout, as LiveSession records it)
    session.mark("stimulus on")         # one marker on the clocks, in every camera's timeline
    session.status()                    # MultiStatus: each camera's SessionStatus, lost cameras, errors
    session.add_camera("2"); session.remove_camera("camera2")   # not while recording
    session.stop()

Cameras are named after their sources (`camera0`, a file's stem, ...; `-2` on a clash); the same
source given twice is refused. An enrolled person is named in whichever camera they appear (every
camera's tracker knows everyone enrolled). A camera that is lost or fails, or whose recording fails
(detached alone, its folder finalised with what was written), is a line in `status().lost` while the
others go on; analysis failing, or the recording failing in every camera, is `status().error`.
MultiSession is a `LivePipeline`, as LiveSession is: code that runs one runs the other alike.
"""
from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Union
from urllib.parse import urlparse

import numpy as np

from ..capture.sources import Source, open_source
from ..errors import first_line
from .live_session import LivePipeline, LiveSession, Marker, SessionStatus
from .scheduler import AnalysisThread
from .worker import LiveSettings, SinkFailure


def source_key(source: Source) -> str:
    """What makes two sources the same: a camera's index, a stream's URL, a file's or folder's real path."""
    if source.id.startswith("camera:") or "://" in source.id:
        return source.id
    return str(Path(source.id).resolve())


def check_distinct(sources: Sequence[Source]) -> None:
    """ValueError (one line) naming a source given twice."""
    seen: dict[str, str] = {}
    for source in sources:
        key = source_key(source)
        if key in seen:
            raise ValueError(f"{source.id}: the same source is given twice (as {seen[key]} before); "
                             f"give each camera, file or stream once")
        seen[key] = source.id


def camera_name(source: Source) -> str:
    """A folder- and LSL-friendly name: camera0, a file's or folder's stem, a stream's last path part."""
    sid = source.id
    if sid.startswith("camera:"):
        raw = "camera" + sid.split(":", 1)[1]
    elif "://" in sid:
        url = urlparse(sid)
        raw = Path(url.path).stem or url.hostname or "stream"
    else:
        raw = Path(sid).stem if Path(sid).suffix else Path(sid).name
    return re.sub(r"[^\w.-]+", "-", raw).strip("-.") or "source"


def unique_name(name: str, taken) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}-{n}"
    return candidate


@dataclass(frozen=True)
class MultiStatus:
    cameras: dict[str, SessionStatus]   # each camera's own status (captured / analysed fps, drops, state)
    lost: dict[str, str]                # camera name → one line, for each camera lost, failed or whose
                                        # recording failed, while the others go on
    error: Optional[str]                # what stops the session: analysis, or the recording in every camera
    recording: Optional[Path]           # the session folder while some camera records
    recording_s: float


class MultiSession(LivePipeline):
    """See the module's docstring. `tracker_factory()` makes each camera's tracker (knowing the people
    enrolled at the start); `csv_dir`: each camera's analysed rows into `<csv_dir>/<camera>.csv`."""

    def __init__(self, sources: Sequence[Union[str, Source]], analyser, *,
                 tracker_factory: Optional[Callable[[], object]] = None, settings: Optional[LiveSettings] = None,
                 csv_dir: Optional[Path] = None, lsl: bool = False, lsl_markers: Optional[str] = None,
                 realtime: bool = True, **source_options):
        self.analyser = analyser
        self.tracker_factory = tracker_factory
        self._settings = settings or LiveSettings()
        self.csv_dir = Path(csv_dir) if csv_dir else None
        self.lsl, self.lsl_markers = lsl, lsl_markers
        self.realtime, self.source_options = realtime, source_options
        self.analysis = AnalysisThread(until_done=False) if analyser is not None else None
        self._cameras: dict[str, LiveSession] = {}
        self.markers: list[Marker] = []
        self.started: Optional[float] = None
        self._recording = None           # the MultiRecording while recording several cameras
        self._flat: Optional[LiveSession] = None   # the camera recording alone, in the one-camera layout
        self._enrolled: dict[str, np.ndarray] = {}   # people enrolled while running: for cameras added later
        self._inlet = None
        self._lock = threading.Lock()
        self._stopped = False
        opened = [self._source(s) for s in sources]
        if not opened:
            raise ValueError("MultiSession: no source given")
        check_distinct(opened)
        for source in opened:
            self._add(source)

    @property
    def cameras(self) -> dict[str, LiveSession]:
        return self._cameras

    def _source(self, source: Union[str, Source]) -> Source:
        return open_source(source, realtime=self.realtime, **self.source_options) if isinstance(source, str) else source

    def _add(self, source: Source) -> LiveSession:
        name = unique_name(camera_name(source), self.cameras)
        tracker = self.tracker_factory() if self.tracker_factory else None
        camera = LiveSession(source, self.analyser, tracker=tracker, settings=self._settings,
                             csv_path=self.csv_dir / f"{name}.csv" if self.csv_dir else None, lsl=self.lsl,
                             name=name, analysis=self.analysis)
        if self.lsl_markers and camera.capture.clock is None:  # markers from LSL: frames on its clock too
            from .lsl import lsl_clock

            camera.capture.clock = lsl_clock()
        for person, refs in self._enrolled.items():
            camera.enrol(person, refs)
        self.cameras[name] = camera
        return camera

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every camera, then the shared analysis. A source that cannot be opened raises its
        OSError (one line) and the cameras already started are stopped: none runs."""
        if self.started is not None:
            raise RuntimeError("MultiSession.start: already started")
        self.started = time.monotonic()
        try:
            for camera in self.cameras.values():
                camera.start()
        except BaseException:
            self.stop()
            raise
        if self.analysis is not None:
            self.analysis.start()
        if self._recording is not None:  # started before start(): sizes and modes are known only now
            self._recording.describe(self._camera_metadata())
        if self.lsl_markers:  # the inlet's failure shows among the first camera's sink errors
            self._inlet = self._marker_inlet(next(iter(self.cameras.values())).bus)

    def add_camera(self, source: Union[str, Source]) -> str:
        """A camera more (started at once when the session runs); its name. Not while recording."""
        source = self._source(source)
        with self._lock:
            if self.recording:
                raise RuntimeError("cameras cannot be added while recording: stop the recording first")
            check_distinct([c.source for c in self.cameras.values()] + [source])
            camera = self._add(source)
        if self.started is not None:
            try:
                camera.start()
            except BaseException:
                camera.stop()
                del self.cameras[camera.name]
                raise
        return camera.name

    def remove_camera(self, name: str) -> None:
        """Stop camera `name` and take it out (its CSV and LSL outlets closed). Not while recording."""
        with self._lock:
            if self.recording:
                raise RuntimeError("cameras cannot be removed while recording: stop the recording first")
            camera = self.cameras.pop(name)
        camera.stop()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """True once every camera's capture and analysis have ended (files at their end, failures, stop())."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for camera in list(self.cameras.values()):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not camera.wait(left):
                return False
        return True

    def stop(self, progress: Optional[Callable[[str], None]] = None) -> None:
        """Stop every camera, the analysis, the recording (`progress`: as stop_recording) and LSL. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self.stop_recording(progress)
        if self._inlet is not None:
            self._inlet.close()
        for camera in self.cameras.values():
            camera.stop()
        if self.analysis is not None:
            self.analysis.stop()

    def restart_analysis(self) -> None:
        """After an analysis crash: a new shared thread for every camera, on the same captures."""
        if self.analysis is None or self.started is None:
            raise RuntimeError("MultiSession.restart_analysis: no analysis running to restart")
        if self.analysis.alive:
            raise RuntimeError("MultiSession.restart_analysis: analysis is still running")
        self.analysis = AnalysisThread(until_done=False)
        for camera in self.cameras.values():
            camera.restart_analysis(on=self.analysis)
        self.analysis.start()

    # -- changes shared by every camera, applied between frames ----------------------------------
    def _use_settings(self, settings: LiveSettings) -> None:
        for camera in list(self.cameras.values()):
            camera.settings = settings

    def set_threshold(self, value: float) -> None:
        """The shared face detector's score threshold, applied between frames."""
        next(iter(self.cameras.values())).set_threshold(value)

    def enrol(self, name: str, embeddings: np.ndarray) -> None:
        """Name a person in every camera (each camera's tracker), applied between frames."""
        from ..analysis.tracking import references

        refs = references(name, embeddings)
        self._enrolled[name] = refs
        for camera in self.cameras.values():
            camera.enrol(name, refs)

    # -- recording and markers -------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self._recording is not None or self._flat is not None

    def start_recording(self, root: Path, label: str = "", codec: str = "h264", leave_out: tuple[str, ...] = ()) -> Path:
        """One session folder under `root`: each camera records into `<folder>/<camera>/` (a complete
        one-camera session), markers.csv and metadata.json at the top; with one camera, the one-camera
        layout (DESIGN.md). `leave_out`: as LiveSession.start_recording. Returns the folder."""
        from ..recording.multi_recording import MultiRecording
        from ..recording.recorder import session_folder

        with self._lock:
            if self.recording:
                raise RuntimeError("MultiSession.start_recording: already recording")
            if self._stopped:
                raise RuntimeError("MultiSession.start_recording: the session is stopped")
            if len(self.cameras) == 1:
                (camera,) = self.cameras.values()
                folder = camera.start_recording(root, label, codec, leave_out)
                self._flat = camera
                return folder
            folder = session_folder(root, label)
            started = []
            try:
                for name, camera in self.cameras.items():
                    camera.record_into(folder / name, label, codec, leave_out, named=True)
                    started.append(camera)
            except BaseException:
                for camera in started:
                    camera.stop_recording()
                raise
            first = next(iter(self.cameras.values()))
            common = {k: v for k, v in first.metadata(label).items() if k != "source"}
            self._recording = MultiRecording(folder, common, list(self.cameras), codec)
            self._recording.describe(self._camera_metadata())
        return folder

    def stop_recording(self, progress: Optional[Callable[[str], None]] = None) -> Optional[Path]:
        """Every camera's recording finalised, then the top metadata.json; the folder, or None.
        `progress(line)`: as LiveSession.stop_recording."""
        with self._lock:
            recording, flat, self._recording, self._flat = self._recording, self._flat, None, None
        if flat is not None:
            return flat.stop_recording(progress)
        if recording is None:
            return None
        def finish(camera) -> None:
            camera.stop_recording(progress)
            if camera.last_recording is not None:
                camera.last_recording.stop()  # one that failed may still be finalising its folder

        # together: every camera's recording ends at the same frame time, and a wait (for a hung
        # analysis, a slow encoder) is waited once, not once per camera
        with ThreadPoolExecutor(len(self.cameras), thread_name_prefix="stop recording") as pool:
            list(pool.map(finish, self.cameras.values()))
        recording.finish(self._camera_metadata())
        return recording.folder

    def _camera_metadata(self) -> list[dict]:
        out = []
        for name, camera in self.cameras.items():
            rec = camera.last_recording
            out.append({"name": name, "folder": name, "source": camera.source_metadata(),
                        "complete": None if rec is None else rec.ended == "stopped",
                        "error": None if rec is None or rec.error is None else str(rec.error),
                        # null until it ended (a killed process leaves them so: unknown)
                        "counts": None if rec is None or rec.ended is None else rec.counts()})
        return out

    def add_marker(self, marker: Marker) -> Marker:
        """`marker` in every camera's timeline (each with its newest frame) and the top markers.csv."""
        frames = {name: camera.add_marker(marker).frame for name, camera in list(self.cameras.items())}
        self.markers.append(marker)
        recording = self._recording
        if recording is not None:
            recording.mark(marker, frames)
        return marker

    # -- status ----------------------------------------------------------------------------------
    @property
    def sink_failures(self) -> tuple[SinkFailure, ...]:
        return tuple(f for camera in self.cameras.values() for f in camera.sink_failures)

    @property
    def essential_failure(self) -> Optional[SinkFailure]:
        return next((c.essential_failure for c in self.cameras.values() if c.essential_failure), None)

    @property
    def analysis_error(self) -> Optional[BaseException]:
        return None if self.analysis is None else self.analysis.error

    def status(self) -> MultiStatus:
        cameras = {name: camera.status() for name, camera in list(self.cameras.items())}
        multi, flat = self._recording, self._flat
        # a camera whose recording failed is off it (its `recording` None): detached alone, the others record on
        failed = {name: s.recording_error for name, s in cameras.items()
                  if (multi is not None or flat is not None) and s.recording is None and s.recording_error}
        over = bool(failed) and len(failed) == len(cameras)  # the recording failed in every camera
        others = "; the other cameras go on" if len(cameras) > 1 else ""
        lost = {}
        for name, s in cameras.items():
            if s.state == "lost":
                lost[name] = f"{name} lost ({self.cameras[name].source.id} delivers no frame){others}"
            elif s.state == "failed":
                lost[name] = f"{name} failed: {s.error}{others}"
            elif name in failed:
                lost[name] = f"{name}: {failed[name]}" + ("" if over else "; the other cameras record on")
        analysis = self.analysis_error
        error = (f"analysis stopped: {first_line(analysis)}" if analysis is not None else
                 next(f"{name}: {line}" for name, line in failed.items()) if over else None)
        if over:
            return MultiStatus(cameras, lost, error, None, 0.0)
        if flat is not None and flat.name in cameras:
            return MultiStatus(cameras, lost, error, cameras[flat.name].recording, cameras[flat.name].recording_s)
        return MultiStatus(cameras, lost, error, multi.folder if multi else None, multi.elapsed_s if multi else 0.0)
