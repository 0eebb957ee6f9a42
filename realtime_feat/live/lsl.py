"""Lab Streaming Layer (pylsl, the optional extra `realtime-feat[lsl]`); off unless asked for, so no
network port opens by default.

Outlets (`LslOutlets`), named after the source, source_id `realtime-feat:<source>`:
  "<name> face data", type "FacialBehaviour", irregular rate, float32: one sample per tracked face per
      analysed frame (frame, track_id, 20 AUs, 7 emotions, valence, arousal, gaze pitch/yaw, pose),
      stamped with the frame's capture time on `local_clock()` (not the push time); channel labels,
      units and types in the stream's XML description.
  "<name> frames", type "VideoFrames", irregular rate, int32: one sample per captured frame (its index),
      stamped with its capture time, so a LabRecorder file lines up with the video frame by frame.

`MarkerInlet` resolves a marker stream by name or type (as stimulus software publishes it) and hands
each marker, with its time on our `local_clock()` (the sender's stamp + time correction), to a callback.

Errors: an outlet or the inlet that fails stops alone, reported once as a `SinkFailure` through the
results bus (`bus.failures`, the session's `status().sink_errors`); analysis and recording go on.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

import numpy as np

from ..capture.capture_thread import CaptureThread
from ..types import Frame, FrameResult
from .worker import ResultsBus

log = logging.getLogger(__name__)


def _pylsl():
    try:
        import pylsl
    except ImportError:
        raise OSError("LSL needs pylsl: pip install 'realtime-feat[lsl]'") from None
    return pylsl


def data_channels() -> list[tuple[str, str, str]]:
    """(label, unit, type) of each channel of the face-data outlet, in sample order."""
    from feat.multitask import AU_NAMES_V24, EMOTION_NAMES_V24, VA_COLUMNS_V2
    from feat.utils import FEAT_FACEPOSE_COLUMNS_6D, FEAT_GAZE_COLUMNS

    return ([("frame", "index", "Frame"), ("track_id", "id", "Track")]
            + [(au, "probability", "ActionUnit") for au in AU_NAMES_V24]
            + [(e, "probability", "Emotion") for e in EMOTION_NAMES_V24]
            + [(v, "normalized", "Affect") for v in VA_COLUMNS_V2]
            + [(g, "radians", "Gaze") for g in FEAT_GAZE_COLUMNS[:2]]
            + [(p, "radians" if i < 3 else "py-feat units", "HeadPose") for i, p in enumerate(FEAT_FACEPOSE_COLUMNS_6D)])


def _describe(info, channels: list[tuple[str, str, str]]) -> None:
    chans = info.desc().append_child("channels")
    for label, unit, kind in channels:
        ch = chans.append_child("channel")
        ch.append_child_value("label", label)
        ch.append_child_value("unit", unit)
        ch.append_child_value("type", kind)
    info.desc().append_child("acquisition").append_child_value("software", "realtime-feat")


def face_samples(result: FrameResult) -> np.ndarray:
    """(faces, channels) float32 in `data_channels()` order."""
    f = result.faces
    n = result.n_faces
    return np.concatenate([np.full((n, 1), result.index), result.track_ids[:, None], f.au, f.emotions, f.va,
                           f.gaze, f.pose], axis=1).astype(np.float32)


class LslOutlets:
    """The face-data outlet (fed by the results bus) and the frame-marker outlet (fed by its own
    capture subscription, on its own thread). Frames need `t_lsl` (the capture thread's clock)."""

    def __init__(self, capture: CaptureThread, bus: ResultsBus, name: str):
        pylsl = _pylsl()
        self.name = name
        self.sent_faces = self.sent_frames = 0
        channels = data_channels()
        data = pylsl.StreamInfo(f"{name} face data", "FacialBehaviour", len(channels), pylsl.IRREGULAR_RATE,
                                pylsl.cf_float32, f"realtime-feat:{name}:data")
        _describe(data, channels)
        frames = pylsl.StreamInfo(f"{name} frames", "VideoFrames", 1, pylsl.IRREGULAR_RATE, pylsl.cf_int32,
                                  f"realtime-feat:{name}:frames")
        _describe(frames, [("frame", "index", "Frame")])
        self.data, self.frames = pylsl.StreamOutlet(data), pylsl.StreamOutlet(frames)
        self.capture, self.bus = capture, bus
        self._sub = capture.subscribe("LSL frame markers", maxsize=1024)
        bus.subscribe(self.on_result, name=f"LSL outlet '{name} face data'")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._push_frames, name="lsl frames", daemon=True)
        self._thread.start()

    def on_result(self, result: FrameResult, frame: Frame) -> None:
        """Results-bus callback; raising detaches it (the bus reports it)."""
        if not result.n_faces or result.t_lsl is None:
            return
        self.data.push_chunk(face_samples(result), [result.t_lsl] * result.n_faces)
        self.sent_faces += result.n_faces

    def _push_frames(self) -> None:
        import queue

        try:
            while not (self._stop.is_set() and self._sub.queue.empty()):
                try:
                    frame = self._sub.queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                self.frames.push_sample([frame.index], frame.t_lsl)
                self.sent_frames += 1
        except Exception as exc:
            self.capture.unsubscribe(self._sub)  # nothing reads its queue any more
            self.bus.fail(f"LSL outlet '{self.name} frames'", exc)

    def close(self) -> None:
        self.bus.unsubscribe(self.on_result)
        self.capture.unsubscribe(self._sub)
        self._stop.set()
        self._thread.join(5)
        del self.data, self.frames  # the outlets close: consumers see the streams end


class MarkerInlet:
    """Markers from the LSL stream whose name or type is `stream`; `on_marker(label, t_lsl, origin)`
    is called on this inlet's thread with the marker's time on our local_clock(); `bus` reports the
    inlet's failure (as a sink's: the session goes on)."""

    def __init__(self, stream: str, on_marker: Callable[[str, float, str], None], bus: ResultsBus,
                 resolve_timeout: float = 1.0):
        self.pylsl = _pylsl()
        self.stream, self.on_marker, self.bus, self.resolve_timeout = stream, on_marker, bus, resolve_timeout
        self.connected = threading.Event()
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lsl markers", daemon=True)

    def start(self) -> "MarkerInlet":
        self._thread.start()
        return self

    def _run(self) -> None:
        pylsl = self.pylsl
        quoted = self.stream.replace("'", "")
        try:
            infos = []
            while not infos and not self._stop.is_set():  # the sender may start after us
                infos = pylsl.resolve_bypred(f"name='{quoted}' or type='{quoted}'", 1, self.resolve_timeout)
            if not infos:
                return
            inlet = pylsl.StreamInlet(infos[0], processing_flags=0)
            inlet.open_stream(timeout=10)
            correction = inlet.time_correction(timeout=5)
            self.connected.set()
            log.info("LSL marker stream %s connected (time correction %.6f s)", infos[0].name(), correction)
            origin = f"lsl:{infos[0].name()}"
            while not self._stop.is_set():
                sample, stamp = inlet.pull_sample(timeout=0.1)
                if sample is None:
                    continue
                correction = inlet.time_correction()  # cached by liblsl, refreshed in the background
                self.on_marker(str(sample[0]), stamp + correction, origin)
                self.received += 1
            inlet.close_stream()
        except Exception as exc:
            self.bus.fail(f"LSL marker inlet '{self.stream}'", exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(self.resolve_timeout + 5)
