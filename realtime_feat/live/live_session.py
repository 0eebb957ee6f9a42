"""One live pipeline object: source → capture thread → analysis worker → results bus → sinks (Fex CSV,
recorder, LSL), with start/stop, counts and errors (DESIGN.md, "One live pipeline object").
`realtime-feat live`, `realtime-feat record` and the desktop app are thin shells around it, through
`LivePipeline`: what a `LiveSession` and a `MultiSession` (several cameras) both are.

    session = LiveSession(source, analyser, tracker=None, settings=None, csv_path=None,
                          lsl=False, lsl_markers=None, realtime=True, **source_options)
    session.subscribe(callback, name="my sink")  # callback(result: FrameResult, frame: Frame), on the
                                         # analysis thread, with the exact frame the result was computed on
    session.start()                      # OSError (one line) if the source cannot be opened
    session.start_recording(root, label="", codec="h264")  # -> the new session folder; before or after start()
    session.mark("stimulus on")          # a marker on the capture clocks (markers.csv while recording)
    session.status()                     # SessionStatus: a cheap, thread-safe snapshot
    session.wait(timeout)                # True once capture and analysis have ended (a file's end)
    session.stop_recording(progress=print)   # -> the finalised folder, or None; `progress` hears what
                                         # is left to write, once a second
    session.stop(progress=print)         # idempotent: threads, CSV, recording, LSL
    session.restart_analysis()           # after an analysis crash: a new worker on the same capture

`name` names the source in LSL outlets and `cameras` ({name: session}; default: the source's file or
camera name); `analysis`, an `AnalysisThread` shared with other sources' sessions (`MultiSession`), runs
this session's analysis instead of a thread of its own (and its warm-up, when that thread runs).
`record_into(folder, label, codec)` records into a folder given.

`mark()` returns the `Marker` (label, t_monotonic_ns, t_wall_ns, t_lsl, frame, origin); `markers` lists
them all (terminal and LSL ones too). `last_recording` is the latest `Recorder` (its folder, counts and
`error` stay readable after stop_recording). `frame_size` and `warm_up_s` are known after start().
`analyser=None` records without analysing (every frame still goes to the video and frames.csv).
A recording error (disk full, folder removed, encoder error) ends the recording at once (detached from
capture and results, its folder finalised with what was written) and shows in `status().recording_error`
and `status().error`, with `status().recording` None; analysis and capture go on; `record` then stops
the session.
`error` is what stopped capture, analysis or the recording, if anything.

A sink that fails (a subscriber that raises, the `csv_path` writer on a full disk, an LSL outlet or the
marker inlet) is detached alone and named once: in the log (with its traceback), in `sink_failures`
(`SinkFailure`s) and in `status().sink_errors` (one line each), never in `error`; analysis, recording and
the other sinks go on. `essential_failure` is the failure of a sink the session exists for (the
`csv_path` writer; a subscriber given `essential=True`): `live -o` then ends with exit 1.

Changes while analysis runs are applied by the analysis worker between frames (at once when none runs),
after checking the arguments now (ValueError, one line):
    session.enrol("Ana", embeddings)     # reference embeddings (512,) or (k, 512): see FaceTracker.enrol
    session.set_threshold(0.7)           # the face detector's score threshold, in (0, 1]
    session.update_settings(redetect_every=3)   # any LiveSettings field; `settings = ...` likewise

Calling `start_recording` before `start()` records from the very first captured frame (`record` does).
"""
from __future__ import annotations

import abc
import collections
import functools
import threading
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..capture.capture_thread import CaptureThread, Gap
from ..capture.sources import Source, open_source
from ..errors import first_line
from ..options import check_threshold
from ..types import Frame, FrameResult
from .scheduler import AnalysisThread
from .worker import LiveSettings, LiveWorker, ResultsBus, SinkFailure


@dataclass(frozen=True)
class SessionStatus:
    state: str              # capture state: starting | running | lost | ended | stopped | failed
    captured: int
    analysed: int
    skipped: int            # captured, not analysed (analysis takes the newest frame)
    detections_run: int
    capture_fps: float      # over the last ~second
    analysed_fps: float
    latency_p50_ms: float   # capture stamp → result, over the last second (NaN without results)
    latency_p99_ms: float
    faces: int
    recording: Optional[Path]   # session folder while recording (None once a recording failed)
    recording_s: float
    encoded: int                # recorder counts (0 when not recording)
    encoder_dropped: int
    error: Optional[str]        # one line: what stopped capture, analysis or the recording
    sink_errors: tuple[str, ...] = ()   # one line per failed, detached sink ("CSV writer: writing … failed (…)")
    recording_error: Optional[str] = None  # one line: why the latest recording failed (it is over)
    mode: Optional[str] = None     # a camera's mode as its driver gave it ("MJPG 1280×720 @ 30 fps")
    slow: Optional[str] = None     # one line while a camera delivers fewer frames than asked
    name: str = ""                 # the camera's name (its session's `name`)

    # As MultiStatus has them, so that code reads one camera's status and several cameras' alike.
    @property
    def cameras(self) -> dict[str, "SessionStatus"]:
        return {self.name: self}

    @property
    def lost(self) -> dict[str, str]:
        """Cameras lost or failed while the others go on: none with one camera (`state`, `error` say it)."""
        return {}


@dataclass(frozen=True)
class Marker:
    """A marker on the capture clocks. `frame`: the newest frame captured when it came or, from LSL,
    when it arrived (-1: none yet); join on t_monotonic for the nearest analysed frame."""

    label: str
    t_monotonic_ns: int
    t_wall_ns: int
    t_lsl: Optional[float]
    frame: int
    origin: str             # "code", "terminal" or "lsl:<stream name>"


class LivePipeline(abc.ABC):
    """A live session with one camera (`LiveSession`) or several (`MultiSession`), used alike:

        session.cameras                  {camera name: its LiveSession} (a LiveSession: {name: itself})
        session.start(); session.wait(timeout); session.stop()
        session.status()                 .cameras {name: SessionStatus}, .lost {name: line}, .error,
                                         .recording, .recording_s
        session.mark(label)              a Marker on the capture clocks, in every camera's timeline
        session.start_recording(root, label, codec, leave_out); session.stop_recording(progress)
        session.recording                True while recording
        session.enrol(name, embeddings); session.set_threshold(value)
        session.settings = ...; session.update_settings(**changes)   # applied between frames
        session.restart_analysis(); session.analysis_error; session.sink_failures; session.essential_failure

    `analyser`, `started` (time.monotonic() at start(), else None) and `markers` are attributes of both.
    """

    analyser: object
    started: Optional[float]
    markers: list
    lsl_markers: Optional[str]
    _settings: LiveSettings

    @property
    @abc.abstractmethod
    def cameras(self) -> dict[str, "LiveSession"]:
        """{camera name: its LiveSession}."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def wait(self, timeout: Optional[float] = None) -> bool:
        """True once capture and analysis have ended (a file's end, a failure, stop())."""

    @abc.abstractmethod
    def stop(self, progress: Optional[Callable[[str], None]] = None) -> None:
        """Stop capture and analysis, finalise the CSVs, the recording (`progress`: as stop_recording) and
        LSL. Idempotent."""

    @abc.abstractmethod
    def status(self): ...

    @abc.abstractmethod
    def start_recording(self, root: Path, label: str = "", codec: str = "h264",
                        leave_out: tuple[str, ...] = ()) -> Path: ...

    @abc.abstractmethod
    def stop_recording(self, progress: Optional[Callable[[str], None]] = None) -> Optional[Path]:
        """The recording finalised (`progress(line)`: how many queued frames are left, while writing them);
        its folder, or None."""

    @property
    @abc.abstractmethod
    def recording(self) -> bool: ...

    @abc.abstractmethod
    def enrol(self, name: str, embeddings: np.ndarray) -> None: ...

    @abc.abstractmethod
    def set_threshold(self, value: float) -> None: ...

    @abc.abstractmethod
    def restart_analysis(self) -> None: ...

    @property
    @abc.abstractmethod
    def analysis_error(self) -> Optional[BaseException]:
        """What stopped the analysis (restart_analysis() starts it again), or None."""

    @property
    @abc.abstractmethod
    def sink_failures(self) -> tuple[SinkFailure, ...]: ...

    @property
    @abc.abstractmethod
    def essential_failure(self) -> Optional[SinkFailure]: ...

    @abc.abstractmethod
    def add_marker(self, marker: Marker) -> Marker:
        """`marker` (stamped by the caller) kept and recorded, with each camera's newest frame."""

    @abc.abstractmethod
    def _use_settings(self, settings: LiveSettings) -> None:
        """`settings` for the running analysis, between frames."""

    # -- what both do alike ----------------------------------------------------------------------
    @property
    def settings(self) -> LiveSettings:
        return self._settings

    @settings.setter
    def settings(self, value: LiveSettings) -> None:
        if not isinstance(value, LiveSettings):
            raise ValueError(f"{type(self).__name__}.settings must be LiveSettings, got {type(value).__name__}")
        self._settings = value  # what a next worker or camera starts with
        self._use_settings(value)

    def update_settings(self, **changes) -> LiveSettings:
        """The settings with `changes` (LiveSettings fields), applied between frames; the new settings."""
        unknown = set(changes) - {f.name for f in fields(LiveSettings)}
        if unknown:
            raise ValueError(f"{type(self).__name__}.update_settings: no setting {', '.join(sorted(unknown))}; "
                             f"choose from {', '.join(f.name for f in fields(LiveSettings))}")
        self.settings = replace(self._settings, **changes)
        return self._settings

    def mark(self, label: str, origin: str = "code") -> Marker:
        """A marker now, on the capture clocks."""
        clock = next((c.capture.clock for c in self.cameras.values() if c.capture.clock), None)
        return self.add_marker(Marker(label, time.monotonic_ns(), time.time_ns(), clock() if clock else None, -1,
                                      origin))

    def _marker_inlet(self, bus: ResultsBus):
        """The LSL inlet of `lsl_markers`, started; its failure is `bus`'s (a sink's: the session goes on)."""
        from .lsl import MarkerInlet

        return MarkerInlet(self.lsl_markers, self._lsl_marker, bus).start()

    def _lsl_marker(self, label: str, t_lsl: float, origin: str) -> None:
        """A marker from the LSL inlet, stamped by its sender on pylsl's local_clock: put on our clocks by
        its age."""
        from .lsl import lsl_clock

        local_clock = lsl_clock()
        age_ns = int((local_clock() - t_lsl) * 1e9)
        self.add_marker(Marker(label, time.monotonic_ns() - age_ns, time.time_ns() - age_ns, t_lsl, -1, origin))


def probe_source(source: Source) -> Optional[tuple[int, int]]:
    """Open the source, read one frame, close it: its (height, width), or None if it gave no frame.
    Raises OSError (one line) when it cannot be opened: before any model is loaded, where callers can."""
    source.open()
    try:
        image = source.read()
    finally:
        source.close()
    return None if image is None else image.shape[:2]


class _Rates:
    """Rates and latencies over the last ~second, for status(); fed on the analysis thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: collections.deque = collections.deque()  # (t, ms)
        self.history: collections.deque = collections.deque()    # (t, captured, analysed) per status()
        self.faces = 0

    def on_result(self, result: FrameResult, frame: Frame) -> None:
        now = time.monotonic()
        with self.lock:
            self.latencies.append((now, result.timings_ms.get("latency", np.nan)))
            while self.latencies and self.latencies[0][0] < now - 1.0:
                self.latencies.popleft()
            self.faces = result.n_faces

    def sample(self, captured: int, analysed: int) -> tuple[float, float, float, float, int]:
        now = time.monotonic()
        with self.lock:
            self.history.append((now, captured, analysed))
            while len(self.history) > 2 and self.history[1][0] <= now - 1.0:
                self.history.popleft()
            t0, c0, a0 = self.history[0]
            lat = [ms for t, ms in self.latencies if t >= now - 1.0]
            faces = self.faces
        dt = now - t0
        cap, ana = ((captured - c0) / dt, (analysed - a0) / dt) if dt > 0 else (0.0, 0.0)
        p50, p99 = np.percentile(lat, [50, 99]) if lat else (np.nan, np.nan)
        return cap, ana, float(p50), float(p99), faces


class LiveSession(LivePipeline):
    def __init__(self, source: Union[str, Source], analyser, *, tracker=None, settings: Optional[LiveSettings] = None,
                 csv_path: Optional[Path] = None, lsl: bool = False, lsl_markers: Optional[str] = None,
                 realtime: bool = True, name: Optional[str] = None, analysis: Optional[AnalysisThread] = None,
                 **source_options):
        from ..analysis.tracking import FaceTracker
        from .lsl import lsl_clock

        self.source = open_source(source, realtime=realtime, **source_options) if isinstance(source, str) else source
        self.name = name or Path(self.source.id).name
        self._shared = analysis
        self.analyser = analyser
        self.tracker = tracker if tracker is not None else FaceTracker(
            use_embeddings=bool(getattr(analyser, "identity", False)))
        self._settings = settings or LiveSettings()
        self.csv_path = Path(csv_path) if csv_path else None
        self.lsl, self.lsl_markers = lsl, lsl_markers
        self.bus = ResultsBus()
        self.capture = CaptureThread(self.source, clock=lsl_clock() if lsl or lsl_markers else None)
        self.worker: Optional[LiveWorker] = None
        self.frame_size: Optional[tuple[int, int]] = None   # learnt at start()
        self.warm_up_s = 0.0
        self.started: Optional[float] = None                 # time.monotonic() at start()
        self.markers: list[Marker] = []
        self.csv_rows = 0
        self._writer = None
        self._recorder = None
        self._results_to = None     # the recorder results go to: the one recording, or one stopping
        self.last_recording = None   # the Recorder of the latest recording, for its counts and error
        self._sinks: list = []      # LSL outlets and the marker inlet, closed by stop() (failures: to the bus)
        self._rates = _Rates()
        self._rate_check = None     # a camera's delivered rate against the one asked (known after start)
        self._retired = (0, 0)      # (analysed, detections_run) of workers replaced by restart_analysis
        self._lock = threading.Lock()
        self._stopped = False
        self.bus.subscribe(self._rates.on_result, "status rates")
        self.bus.subscribe(self._to_recorder, "recorder")

    @property
    def cameras(self) -> dict[str, "LiveSession"]:
        return {self.name: self}

    # -- settings shared with the running worker -------------------------------------------------
    def _use_settings(self, settings: LiveSettings) -> None:
        worker = self.worker
        if worker is not None:
            worker.between_frames(lambda: worker.use_settings(settings))

    def set_threshold(self, value: float) -> None:
        """The face detector's score threshold, applied between frames."""
        if self.analyser is None:
            raise ValueError("LiveSession.set_threshold: this session records without analysis")
        check_threshold(value)
        decoder = self.analyser.decoder
        self._between_frames(lambda: setattr(decoder, "threshold", float(value)))

    def enrol(self, name: str, embeddings: np.ndarray) -> None:
        """Name a person from reference embeddings (as FaceTracker.enrol), applied between frames."""
        from ..analysis.tracking import references

        refs = references(name, embeddings)
        self._between_frames(lambda: self.tracker.enrol(name, refs))

    def _between_frames(self, change: Callable[[], None]) -> None:
        worker = self.worker
        if worker is None or not worker.between_frames(change):
            change()  # no analysis running: nothing reads what it changes

    # -- life cycle ------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[FrameResult, Frame], None], name: Optional[str] = None,
                  essential: bool = False) -> None:
        """`callback(result, frame)` on the analysis thread; if it raises it is detached and named (by
        `name`, default the callable's) in `status().sink_errors`; `essential`: see `essential_failure`."""
        self.bus.subscribe(callback, name, essential)

    def start(self) -> None:
        if self.started is not None:
            raise RuntimeError("LiveSession.start: already started")
        self.frame_size = probe_source(self.source)
        if self._recorder is not None:  # started before start(): the size and mode are known only now
            self._recorder.metadata["source"] = self.source_metadata()
        asked = getattr(self.source, "asked_fps", None)
        if asked:
            from ..capture.camera_modes import RateCheck

            self._rate_check = RateCheck(self.name, asked)
        if self.analyser is not None and self.frame_size:
            t = time.monotonic()  # engines, graphs and kernels for this frame size, before the first real frame
            warm_up = functools.partial(self.analyser.warm_up, *self.frame_size)
            # a shared analyser is used on its analysis thread only (it may be analysing other cameras)
            self._shared.call(warm_up) if self._shared is not None else warm_up()
            self.warm_up_s = time.monotonic() - t
        if self.csv_path:
            from ..recording.fex import FexWriter

            self._writer = FexWriter(self.csv_path, video=False)
            self.bus.subscribe(self._write_csv, _CSV_SINK, essential=True)
        if self.lsl:
            from .lsl import LslOutlets

            self._sinks.append(LslOutlets(self.capture, self.bus, f"realtime-feat {self.name}"))
        if self.lsl_markers:
            self._sinks.append(self._marker_inlet(self.bus))
        self.started = time.monotonic()
        self._rates.sample(0, 0)
        try:
            self.capture.start()
        except BaseException:
            self.stop()
            raise
        if self.analyser is not None:
            self._start_worker()

    def _start_worker(self) -> None:
        worker = LiveWorker(self.analyser, self.capture.slot, self.bus, self.tracker, self._settings)
        self.worker = worker.run_on(self._shared) if self._shared is not None else worker.start()

    def _write_csv(self, result: FrameResult, frame: Frame) -> None:
        self._writer.append(result, self.source.id, self.tracker.identities(result.track_ids))
        self.csv_rows = self._writer.rows_written

    def _close_csv(self) -> Path:
        """The CSV under its final name; kept as `.partial`, with the rows written before, when writing it
        failed (named once: a second error while closing is the same failure)."""
        complete = not any(f.name == _CSV_SINK for f in self.bus.failures)
        try:
            return self._writer.close(complete)
        except OSError as exc:
            if complete:
                self.bus.fail(_CSV_SINK, exc, essential=True)
            return self._writer.partial

    def wait(self, timeout: Optional[float] = None) -> bool:
        """True once capture and analysis have ended (a file's end, a failure, stop())."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.started is None or not self.capture.wait(timeout):
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.worker is None or self.worker.wait(left)

    def stop(self, progress: Optional[Callable[[str], None]] = None) -> None:
        """Stop capture and analysis, finalise the CSV, the recording (`progress`: as stop_recording)
        and LSL. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self.started is not None:
            self.capture.stop()
        if self.worker is not None:
            self.worker.stop()
        self.stop_recording(progress)
        if self.last_recording is not None:  # one that failed may still be finalising its folder
            self.last_recording.stop()
        if self._writer is not None:
            self.csv_path = self._close_csv()
        for sink in self._sinks:
            sink.close()

    def restart_analysis(self, on: Optional[AnalysisThread] = None) -> None:
        """A new analysis worker on the same capture, after the previous one stopped (e.g. crashed);
        `on`: the new shared thread, for a session whose analysis is shared."""
        if self.analyser is None or self.started is None:
            raise RuntimeError("LiveSession.restart_analysis: no analysis running to restart")
        if self.worker is not None:
            if not self.worker.wait(0):
                raise RuntimeError("LiveSession.restart_analysis: analysis is still running")
            self._retired = (self._retired[0] + self.worker.analysed, self._retired[1] + self.worker.detections_run)
        self._shared = on or self._shared
        self._start_worker()

    # -- recording and markers -------------------------------------------------------------------
    def start_recording(self, root: Path, label: str = "", codec: str = "h264",
                        leave_out: tuple[str, ...] = ()) -> Path:
        """Record into a new session folder under `root` (DESIGN.md layout), from the next captured
        frame (from the first, when called before start()). Returns the folder. `leave_out`: "mesh"
        and/or "embedding", left out of fex.csv (most of each row)."""
        from ..recording.recorder import session_folder

        self._check_can_record(codec)
        return self.record_into(session_folder(root, label), label, codec, leave_out)

    def _check_can_record(self, codec: str) -> None:
        from ..recording.recorder import check_codec

        check_codec(codec)  # before a folder is made for it
        if self._recorder is not None:
            raise RuntimeError(f"already recording to {self._recorder.folder}")
        if self._stopped:
            raise RuntimeError("LiveSession.start_recording: the session is stopped")

    def record_into(self, folder: Path, label: str = "", codec: str = "h264", leave_out: tuple[str, ...] = (),
                    named: bool = False) -> Path:
        """As start_recording, into `folder` (made if missing; a camera's folder of a MultiSession, `named`:
        its failure is said with this camera's name)."""
        from ..recording.recorder import QUEUE_BYTES, QUEUE_FRAMES, Recorder

        with self._lock:
            self._check_can_record(codec)
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            sub = self.capture.subscribe("recorder", maxsize=QUEUE_FRAMES, max_bytes=QUEUE_BYTES)
            try:
                recorder = Recorder(folder, codec, sub, self.capture.slot, self._analysing, self.tracker.identities,
                                    self.metadata(label), on_failure=self._recording_failed, leave_out=leave_out,
                                    name=self.name if named else "")
            except BaseException:
                self.capture.unsubscribe(sub)
                raise
            self._results_to = self._recorder = self.last_recording = recorder.start()
        return folder

    def stop_recording(self, progress: Optional[Callable[[str], None]] = None) -> Optional[Path]:
        """Finalise the recording (every queued frame written, the video closed); its folder, or None.
        `progress(line)` hears, once a second until then, how many frames are left to write."""
        with self._lock:
            recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        self.capture.unsubscribe(recorder.frames)
        folder = recorder.stop(progress=progress)  # results still go to it: the frame being analysed gets its result
        with self._lock:
            if self._results_to is recorder:
                self._results_to = None
        return folder

    def _to_recorder(self, result: FrameResult, frame: Frame) -> None:
        recorder = self._results_to
        if recorder is not None:
            recorder.on_result(result, frame)

    def _recording_failed(self, recorder) -> None:
        """On the recorder's thread, the moment it fails: off capture and the results at once, so no
        frames pile up for it; it then finalises its folder by itself."""
        with self._lock:
            if self._recorder is not recorder:  # stop_recording has it
                return
            self._recorder = self._results_to = None
            self.capture.unsubscribe(recorder.frames)

    def _analysing(self) -> bool:
        return self.worker is not None and not self.worker.wait(0)

    def metadata(self, label: str) -> dict:
        """What metadata.json says of this session: versions, analyser, source and its mode, settings, ..."""
        import dataclasses
        import datetime
        import platform
        from importlib.metadata import PackageNotFoundError, version

        def installed(name):
            try:
                return version(name)
            except PackageNotFoundError:
                return None

        a = self.analyser
        analyser = None if a is None else {
            "describe": a.describe(), "backend": a.backend.name, "device": str(a.device),
            "precision": getattr(a.backend, "precision", "fp32"), "detector": a.detector_name, "identity": a.identity,
            "weights": {name: {"file": str(path), "sha256": a.weight_digests[name]} for name, path in a.weight_paths.items()}}
        return {
            "label": label, "started": datetime.datetime.now().astimezone().isoformat(),
            "versions": {n: installed(n) for n in ("realtime-feat", "py-feat", "torch", "av", "numpy", "onnxruntime",
                                                   "openvino", "pylsl")},
            "python": platform.python_version(), "platform": platform.platform(), "analyser": analyser,
            "source": self.source_metadata(),
            "settings": dataclasses.asdict(self._settings),
            "tracker": {"use_embeddings": self.tracker.use_embeddings, "enrolled": self.tracker.enrolled},
            "clocks": {"t_monotonic": ("time.monotonic_ns() as the frame left the source, before it was decoded "
                                      "(a camera's grab()); seconds in the CSVs"),
                       "t_wall": "time.time_ns() at the same moment",
                       "t_lsl": "pylsl.local_clock() at the same moment (empty without LSL)"},
            "lsl": {"outlets": self.lsl, "marker_inlet": self.lsl_markers}}

    def source_metadata(self) -> dict:
        """The source as metadata.json records it: id, kind, frame size, options, the camera's mode."""
        plain = (int, float, str, bool, type(None))
        mode = getattr(self.source, "mode", None)
        return {"id": self.source.id, "kind": type(self.source).__name__, "frame_size": self.frame_size,
                "options": {k: v for k, v in vars(self.source).items() if not k.startswith("_") and isinstance(v, plain)},
                **({"mode": mode.as_dict()} if mode is not None else {})}

    def add_marker(self, marker: Marker) -> Marker:
        """`marker` (stamped by the caller) with this source's newest frame, kept and recorded."""
        marker = replace(marker, frame=self.capture.stamped)  # stamped before it, even if still decoding
        self.markers.append(marker)
        recorder = self._recorder
        if recorder is not None:
            recorder.mark(marker)
        return marker

    # -- counts ----------------------------------------------------------------------------------
    @property
    def analysed(self) -> int:
        return self._retired[0] + (self.worker.analysed if self.worker else 0)

    @property
    def detections_run(self) -> int:
        return self._retired[1] + (self.worker.detections_run if self.worker else 0)

    @property
    def gaps(self) -> list[Gap]:
        return list(self.capture.gaps)

    @property
    def recording(self) -> bool:
        return self._recorder is not None

    @property
    def analysis_error(self) -> Optional[BaseException]:
        return None if self.worker is None else self.worker.error

    @property
    def error(self) -> Optional[BaseException]:
        candidates = [self.capture.error, self.worker.error if self.worker else None,
                      getattr(self.last_recording, "error", None)]
        return next((e for e in candidates if e is not None), None)

    @property
    def sink_failures(self) -> tuple[SinkFailure, ...]:
        """Every sink that failed and was detached, in order."""
        return self.bus.failures

    @property
    def essential_failure(self) -> Optional[SinkFailure]:
        """The first failure of a sink this session exists for (the `csv_path` writer, a subscriber given
        `essential=True`): a command like `live -o` should then stop and exit 1 with its `message`."""
        return next((f for f in self.bus.failures if f.essential), None)

    def status(self) -> SessionStatus:
        captured, analysed = self.capture.frames, self.analysed
        cap_fps, ana_fps, p50, p99, faces = self._rates.sample(captured, analysed)
        rec, last = self._recorder, self.last_recording
        return SessionStatus(
            state=self.capture.state, captured=captured, analysed=analysed, skipped=self.capture.slot.skipped,
            detections_run=self.detections_run, capture_fps=cap_fps, analysed_fps=ana_fps,
            latency_p50_ms=p50, latency_p99_ms=p99, faces=faces,
            recording=rec.folder if rec else None, recording_s=rec.elapsed_s if rec else 0.0,
            encoded=rec.encoded if rec else 0, encoder_dropped=rec.dropped if rec else 0,
            error=None if self.error is None else first_line(self.error),
            sink_errors=tuple(f.message for f in self.bus.failures),
            recording_error=None if last is None or last.error is None else first_line(last.error),
            mode=None if getattr(self.source, "mode", None) is None else str(self.source.mode),
            slow=self._rate_check.observe(captured, self.capture.state == "running") if self._rate_check else None,
            name=self.name)


_CSV_SINK = "CSV writer"

