"""One live pipeline object: source → capture thread → analysis worker → results bus → sinks (Fex CSV,
recorder, LSL), with start/stop, counts and errors (DESIGN.md, "One live pipeline object").
`realtime-feat live`, `realtime-feat record` and the desktop app are thin shells around it.

    session = LiveSession(source, analyser, tracker=None, settings=None, csv_path=None,
                          lsl=False, lsl_markers=None, realtime=True, **source_options)
    session.subscribe(callback)          # callback(result: FrameResult, frame: Frame), on the analysis
                                         # thread, with the exact frame the result was computed on
    session.start()                      # OSError (one line) if the source cannot be opened
    session.start_recording(root, label="", codec="h264")  # -> the new session folder; before or after start()
    session.mark("stimulus on")          # a marker on the capture clocks (markers.csv while recording)
    session.status()                     # SessionStatus: a cheap, thread-safe snapshot
    session.wait(timeout)                # True once capture and analysis have ended (a file's end)
    session.stop_recording()             # -> the finalised folder, or None
    session.stop()                       # idempotent: threads, CSV, recording, LSL
    session.restart_analysis()           # after an analysis crash: a new worker on the same capture

`mark()` returns the `Marker` (label, t_monotonic_ns, t_wall_ns, t_lsl, frame, origin); `markers` lists
them all (terminal and LSL ones too). `last_recording` is the latest `Recorder` (its folder, counts and
`error` stay readable after stop_recording). `frame_size` and `warm_up_s` are known after start().
`analyser=None` records without analysing (every frame still goes to the video and frames.csv).
A recording error (disk full, folder removed) ends the recording and shows in `status().error`;
`record` then stops the session.
`settings` may be assigned while running (read per frame); `tracker.enrol(...)` works while running;
`error` is what stopped capture, analysis or the recording, if anything.

Calling `start_recording` before `start()` records from the very first captured frame (`record` does).
"""
from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from .capture import CaptureThread, Gap
from .errors import first_line
from .live import LiveSettings, LiveWorker, ResultsBus
from .sources import Source, open_source
from .types import Frame, FrameResult


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
    recording: Optional[Path]   # session folder while recording
    recording_s: float
    encoded: int                # recorder counts (0 when not recording)
    encoder_dropped: int
    error: Optional[str]        # one line


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


class LiveSession:
    def __init__(self, source: Union[str, Source], analyser, *, tracker=None, settings: Optional[LiveSettings] = None,
                 csv_path: Optional[Path] = None, lsl: bool = False, lsl_markers: Optional[str] = None,
                 realtime: bool = True, **source_options):
        from .tracking import FaceTracker

        self.source = open_source(source, realtime=realtime, **source_options) if isinstance(source, str) else source
        self.analyser = analyser
        self.tracker = tracker if tracker is not None else FaceTracker(
            use_embeddings=bool(getattr(analyser, "identity", False)))
        self._settings = settings or LiveSettings()
        self.csv_path = Path(csv_path) if csv_path else None
        self.lsl, self.lsl_markers = lsl, lsl_markers
        self.bus = ResultsBus()
        self.capture = CaptureThread(self.source, clock=_lsl_clock() if lsl or lsl_markers else None)
        self.worker: Optional[LiveWorker] = None
        self.frame_size: Optional[tuple[int, int]] = None   # learnt at start()
        self.warm_up_s = 0.0
        self.started: Optional[float] = None                 # time.monotonic() at start()
        self.markers: list[Marker] = []
        self.csv_rows = 0
        self._writer = None
        self._recorder = None
        self.last_recording = None   # the Recorder of the latest recording, for its counts and error
        self._sinks: list = []      # LSL outlets and the marker inlet: each has close() and error
        self._rates = _Rates()
        self._retired = (0, 0)      # (analysed, detections_run) of workers replaced by restart_analysis
        self._lock = threading.Lock()
        self._stopped = False
        self.bus.subscribe(self._rates.on_result)

    # -- settings shared with the running worker -------------------------------------------------
    @property
    def settings(self) -> LiveSettings:
        return self._settings

    @settings.setter
    def settings(self, value: LiveSettings) -> None:
        self._settings = value
        if self.worker is not None:  # the worker and its ROI tracker read them per frame
            self.worker.settings = self.worker.roi.settings = value

    # -- life cycle ------------------------------------------------------------------------------
    def subscribe(self, callback: Callable[[FrameResult, Frame], None]) -> None:
        self.bus.subscribe(callback)

    def start(self) -> None:
        if self.started is not None:
            raise RuntimeError("LiveSession.start: already started")
        self.frame_size = probe_source(self.source)
        if self._recorder is not None:  # started before start(): the size is known only now
            self._recorder.metadata["source"]["frame_size"] = self.frame_size
        if self.analyser is not None and self.frame_size:
            t = time.monotonic()  # engines, graphs and kernels for this frame size, before the first real frame
            self.analyser.warm_up(*self.frame_size)
            self.warm_up_s = time.monotonic() - t
        if self.csv_path:
            from .fex import FexWriter

            self._writer = FexWriter(self.csv_path, video=False)
            self.bus.subscribe(self._write_csv)
        if self.lsl:
            from .lsl import LslOutlets

            self._sinks.append(LslOutlets(self.capture, self.bus, f"realtime-feat {Path(self.source.id).name}"))
        if self.lsl_markers:
            from .lsl import MarkerInlet

            self._sinks.append(MarkerInlet(self.lsl_markers, self._lsl_marker).start())
        self.started = time.monotonic()
        self._rates.sample(0, 0)
        try:
            self.capture.start()
        except BaseException:
            self.stop()
            raise
        if self.analyser is not None:
            self.worker = LiveWorker(self.analyser, self.capture.slot, self.bus, self.tracker, self._settings).start()

    def _write_csv(self, result: FrameResult, frame: Frame) -> None:
        self._writer.append(result, self.source.id, self.tracker.identities(result.track_ids))
        self.csv_rows = self._writer.rows_written

    def wait(self, timeout: Optional[float] = None) -> bool:
        """True once capture and analysis have ended (a file's end, a failure, stop())."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.started is None or not self.capture.wait(timeout):
            return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.worker is None or self.worker.wait(left)

    def stop(self) -> None:
        """Stop capture and analysis, finalise the CSV, the recording and LSL. Idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        if self.started is not None:
            self.capture.stop()
        if self.worker is not None:
            self.worker.stop()
        self.stop_recording()
        if self._writer is not None:
            self.csv_path = self._writer.close()
        for sink in self._sinks:
            sink.close()

    def restart_analysis(self) -> None:
        """A new analysis worker on the same capture, after the previous one stopped (e.g. crashed)."""
        if self.analyser is None or self.started is None:
            raise RuntimeError("LiveSession.restart_analysis: no analysis running to restart")
        if self.worker is not None:
            if not self.worker.wait(0):
                raise RuntimeError("LiveSession.restart_analysis: analysis is still running")
            self._retired = (self._retired[0] + self.worker.analysed, self._retired[1] + self.worker.detections_run)
        self.worker = LiveWorker(self.analyser, self.capture.slot, self.bus, self.tracker, self._settings).start()

    # -- recording and markers -------------------------------------------------------------------
    def start_recording(self, root: Path, label: str = "", codec: str = "h264",
                        leave_out: tuple[str, ...] = ()) -> Path:
        """Record into a new session folder under `root` (DESIGN.md layout), from the next captured
        frame (from the first, when called before start()). Returns the folder. `leave_out`: "mesh"
        and/or "embedding", left out of fex.csv (most of each row)."""
        from .recorder import CODECS, Recorder, session_folder

        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}; choose {' or '.join(CODECS)}")
        with self._lock:
            if self._recorder is not None:
                raise RuntimeError(f"already recording to {self._recorder.folder}")
            if self._stopped:
                raise RuntimeError("LiveSession.start_recording: the session is stopped")
            folder = session_folder(root, label)
            h, w = self.frame_size or (720, 1280)
            # about 400 MB of frames may wait for the encoder (5 s of 720p30) before frames are dropped
            sub = self.capture.subscribe("recorder", maxsize=int(max(16, min(256, 400e6 // (h * w * 3)))))
            try:
                recorder = Recorder(folder, codec, sub, self.capture.slot, self._analysing, self.tracker.identities,
                                    self._metadata(label), leave_out=leave_out)
            except BaseException:
                self.capture.unsubscribe(sub)
                raise
            self.bus.subscribe(recorder.on_result)
            self._recorder = self.last_recording = recorder.start()
        return folder

    def stop_recording(self) -> Optional[Path]:
        """Finalise the recording (every queued frame written, the video closed); its folder, or None."""
        with self._lock:
            recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        self.capture.unsubscribe(recorder.frames)
        self.bus.unsubscribe(recorder.on_result)
        return recorder.stop()

    def _analysing(self) -> bool:
        return self.worker is not None and not self.worker.wait(0)

    def _metadata(self, label: str) -> dict:
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
        plain = (int, float, str, bool, type(None))
        return {
            "label": label, "started": datetime.datetime.now().astimezone().isoformat(),
            "versions": {n: installed(n) for n in ("realtime-feat", "py-feat", "torch", "av", "numpy", "onnxruntime",
                                                   "openvino", "pylsl")},
            "python": platform.python_version(), "platform": platform.platform(), "analyser": analyser,
            "source": {"id": self.source.id, "kind": type(self.source).__name__, "frame_size": self.frame_size,
                       "options": {k: v for k, v in vars(self.source).items()
                                   if not k.startswith("_") and isinstance(v, plain)}},
            "settings": dataclasses.asdict(self._settings),
            "tracker": {"use_embeddings": self.tracker.use_embeddings, "enrolled": self.tracker.enrolled},
            "clocks": {"t_monotonic": "time.monotonic_ns() as the frame left the source (seconds in the CSVs)",
                       "t_wall": "time.time_ns() at the same moment",
                       "t_lsl": "pylsl.local_clock() at the same moment (empty without LSL)"},
            "lsl": {"outlets": self.lsl, "marker_inlet": self.lsl_markers}}

    def mark(self, label: str, origin: str = "code") -> Marker:
        """A marker now, on the capture clocks."""
        t_lsl = self.capture.clock() if self.capture.clock else None
        marker = Marker(label, time.monotonic_ns(), time.time_ns(), t_lsl, self.capture.frames - 1, origin)
        self._add_marker(marker)
        return marker

    def _lsl_marker(self, label: str, t_lsl: float, origin: str) -> None:
        """A marker from the LSL inlet, stamped by its sender: put on our clocks by its age."""
        age_ns = int((self.capture.clock() - t_lsl) * 1e9)
        self._add_marker(Marker(label, time.monotonic_ns() - age_ns, time.time_ns() - age_ns, t_lsl,
                                self.capture.frames - 1, origin))

    def _add_marker(self, marker: Marker) -> None:
        self.markers.append(marker)
        recorder = self._recorder
        if recorder is not None:
            recorder.mark(marker)

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
    def error(self) -> Optional[BaseException]:
        candidates = [self.capture.error, self.worker.error if self.worker else None,
                      getattr(self.last_recording, "error", None), *(s.error for s in self._sinks)]
        return next((e for e in candidates if e is not None), None)

    def status(self) -> SessionStatus:
        captured, analysed = self.capture.frames, self.analysed
        cap_fps, ana_fps, p50, p99, faces = self._rates.sample(captured, analysed)
        rec = self._recorder
        return SessionStatus(
            state=self.capture.state, captured=captured, analysed=analysed, skipped=self.capture.slot.skipped,
            detections_run=self.detections_run, capture_fps=cap_fps, analysed_fps=ana_fps,
            latency_p50_ms=p50, latency_p99_ms=p99, faces=faces,
            recording=rec.folder if rec else None, recording_s=rec.elapsed_s if rec else 0.0,
            encoded=rec.encoded if rec else 0, encoder_dropped=rec.dropped if rec else 0,
            error=None if self.error is None else first_line(self.error))


def _lsl_clock() -> Callable[[], float]:
    try:
        from pylsl import local_clock
    except ImportError:
        raise OSError("LSL needs pylsl: pip install 'realtime-feat[lsl]'") from None
    return local_clock
