"""The recorder: its own thread, a subscriber of the capture thread (DESIGN.md, "A recorded session").

Every captured frame goes into `video.mp4` with its capture stamp as PTS (time base 1 µs, variable
frame rate as it came), in fragmented MP4: a fragment reaches the disk every half second, so a killed
process leaves a file every player reads, short of its last fragment. Beside it:

  frames.csv    one row per captured frame: frame, t_monotonic, t_wall, t_lsl (seconds), analysed (1/0),
                n_faces (empty when not analysed), in_video (0: the recorder's queue was full; counted),
                video_time (the frame's PTS in the video, seconds)
  fex.csv       the analyser's rows (py-feat's columns + ours), for the analysed frames, in frame order
                (`leave_out`: the mesh and/or the embedding left empty, said in metadata.json)
  fex.arrays/   the same rows as memory-mapped arrays, for review (recording/fex_arrays.py); marked as fex.csv's
                copy when the recording ends cleanly, else built again from fex.csv when first read
  markers.csv   label, origin, t_monotonic, t_wall, t_lsl, frame (the newest frame captured then)
  metadata.json versions, backend, weights, source, settings, codec, clocks, counts with reasons;
                written at the start ("complete": false, "ended": null, every count null: only the end
                knows them) and again when the recording ends ("ended": "stopped", "complete": true;
                or "failed", with the "error")
  recording.lock held (flock) while recording, removed at the end: a reader tells a session being
                recorded from a killed one ("ended": null too) by it, and reads the former's rows so
                far without building anything over them (fex_arrays.being_recorded)

A frame's row is written once it is settled: analysed (its result came), or skipped (a newer frame
came before analysis took it, or analysis has stopped). A frame analysis took waits for its result
however long the analysis takes; only a hung analysis (no result for `hang_s`, 60 s) is given up on,
with one logged line and a count (`hung_analysis_given_up`); a result that still comes is counted as
late. Files are flushed at least once a second. A folder removed, a disk that fills up or an encoder
error ends the recording at once: `on_failure` detaches it from capture and the results (no frames
pile up for it), what was written stays, metadata.json says why ("ended": "failed", "error"), and
`error` holds the one line. `stop()` writes every queued frame, saying how many are left; only writing
that makes no progress at all for its timeout is given up on, and then metadata.json and `error` say
how many frames were not written.
"""
from __future__ import annotations

import csv
import logging
import queue
import re
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Optional

from ..atomic_files import write_json
from ..capture.capture_thread import LatestSlot, Subscriber
from ..errors import first_line
from ..types import Frame, FrameResult

log = logging.getLogger(__name__)

TIME_BASE = Fraction(1, 1_000_000)
# encoder, pixel format, options, (width, height) multiple
CODECS = {
    "h264": ("libx264", "yuv420p", 2),
    "ffv1": ("ffv1", "bgr0", 1),  # lossless RGB
}
# Frames waiting for the encoder, by the bytes of each frame as it came (about 2 s of 1080p30, 5 s of
# 720p30) and at most QUEUE_FRAMES (what stop() may still have to write); beyond, frames are dropped
# from the video (their rows stay, counted).
QUEUE_BYTES, QUEUE_FRAMES = 400_000_000, 256
FRAMES_COLUMNS = ["frame", "t_monotonic", "t_wall", "t_lsl", "analysed", "n_faces", "in_video", "video_time"]
MARKERS_COLUMNS = ["label", "origin", "t_monotonic", "t_wall", "t_lsl", "frame"]


def session_folder(root: Path, label: str = "") -> Path:
    """`<root>/<YYYYmmdd-HHMMSS>_<label>`, new (a suffix -2, -3, ... when that second is taken)."""
    safe = re.sub(r"[^\w.-]+", "-", label).strip("-.")
    base = time.strftime("%Y%m%d-%H%M%S") + (f"_{safe}" if safe else "")
    folder, n = Path(root) / base, 1
    while folder.exists():
        n += 1
        folder = Path(root) / f"{base}-{n}"
    folder.mkdir(parents=True)
    return folder


def _secs(ns: Optional[int]) -> str:
    return "" if ns is None else f"{ns / 1e9:.9f}"


def _lsl(t: Optional[float]) -> str:
    return "" if t is None else f"{t:.9f}"


def marker_fields(m) -> list:
    """A marker's label, origin and clocks as markers.csv writes them (its frame columns follow)."""
    return [m.label, m.origin, _secs(m.t_monotonic_ns), _secs(m.t_wall_ns), _lsl(m.t_lsl)]


def _unknown(counts: dict) -> dict:
    """The same keys, every count null."""
    return {k: _unknown(v) if isinstance(v, dict) else None for k, v in counts.items()}


def check_codec(codec: str) -> None:
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose {' or '.join(CODECS)}")


class RecordingError(OSError):
    """A recording that could not go on (disk full, folder removed, encoder error); the message is one line."""


class Recorder:
    """`start()`; feed it with `on_result` (a results-bus callback) and `mark`; `stop()` finalises.
    `frames`: this recorder's capture subscription; `slot`: the analysis slot (which frames analysis
    took); `analysing()`: whether analysis is still running; `identities(track_ids)`: the tracker's labels;
    `on_failure(recorder)`: called on the recorder's thread the moment it fails, before it finalises;
    `hang_s`: how long a frame analysis took may go without a result before analysis counts as hung;
    `name`: the camera's, naming its failure in the log (with several cameras)."""

    def __init__(self, folder: Path, codec: str, frames: Subscriber, slot: LatestSlot,
                 analysing: Callable[[], bool], identities: Optional[Callable] = None, metadata: Optional[dict] = None,
                 on_failure: Optional[Callable[["Recorder"], None]] = None, hang_s: float = 60.0,
                 flush_s: float = 0.5, leave_out: tuple[str, ...] = (), name: str = ""):
        check_codec(codec)
        from .fex import N_VALUES, FexWriter, columns
        from .fex_arrays import FOLDER, ArraysWriter, RecordingLock

        self.folder, self.codec = Path(folder), codec
        self._lock = RecordingLock(self.folder)  # before any file: a reader never takes it for a killed one
        self.frames, self.slot, self.analysing, self.identities = frames, slot, analysing, identities
        self.metadata = dict(metadata or {}, fex={"left_out": list(leave_out)})
        self.on_failure, self.hang_s, self.flush_s, self.name = on_failure, hang_s, flush_s, name
        self.video_path = self.folder / "video.mp4"
        self.encoded = 0
        self.rows = 0                 # frames.csv rows
        self.analysed = 0
        self.results_dropped = 0      # results that did not fit the queue (their frames count as skipped)
        self.late_results = 0         # results that came after their frame was settled as skipped
        self.given_up = 0             # frames whose analysis hung: written as not analysed
        self.pts_bumped = 0           # two frames within one µs: the later one's PTS moved by 1 µs
        self.resized = 0              # frames of another size than the first, scaled to it
        self.not_written = 0          # frames without a frames.csv row when stop() gave up on a stuck writer
        self.error: Optional[RecordingError] = None
        self.ended: Optional[str] = None  # as metadata.json says: "stopped" (complete), "failed", None (recording)
        self.started_ns: Optional[int] = None
        self.first_index: Optional[int] = None
        self.t0_ns: Optional[int] = None
        self._results: queue.Queue = queue.Queue(1024)
        self._markers: queue.SimpleQueue = queue.SimpleQueue()
        self._pending: list = []      # (index, t_mono, t_wall, t_lsl, pts_us or None), in index order
        self._by_index: dict = {}     # index → (result, identities)
        self._container = self._stream = None
        self._size: Optional[tuple[int, int]] = None
        self._last_pts = -1
        self._last_settled = -1
        self._taken, self._taken_at = -1, time.monotonic()  # the newest frame analysis took, seen when
        self._last_result = -1        # the newest frame a result came for
        self._stop_by = float("inf")  # stop(): an analysis still running by then is not waited for
        self._stop = threading.Event()
        self._given_up = False        # stop() gave up on this thread: it writes nothing more
        self._ending = threading.RLock()  # metadata.json says the end once: the thread's or stop()'s
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._frames_file = open(self.folder / "frames.csv", "w", newline="")
        self._frames_csv = csv.writer(self._frames_file)
        self._frames_csv.writerow(FRAMES_COLUMNS)
        self._markers_file = open(self.folder / "markers.csv", "w", newline="")
        self._markers_csv = csv.writer(self._markers_file)
        self._markers_csv.writerow(MARKERS_COLUMNS)
        self._fex = FexWriter(self.folder / "fex.csv", video=False, partial=False, leave_out=leave_out)
        self._arrays = ArraysWriter(self.folder / FOLDER, columns(False)[:N_VALUES], mesh="mesh" not in leave_out)
        self._flush()  # the headers: a reader of the session being recorded finds every file readable
        self._write_metadata(ended=None)

    # -- the other threads' side -----------------------------------------------------------------
    def start(self) -> "Recorder":
        self.started_ns = time.monotonic_ns()
        self._thread.start()
        return self

    def on_result(self, result: FrameResult, frame: Frame) -> None:
        """Results-bus callback (analysis thread): queue the result with its identities, never wait."""
        ids = self.identities(result.track_ids) if self.identities else None
        try:
            self._results.put_nowait((result, ids))
        except queue.Full:
            self.results_dropped += 1

    def mark(self, marker) -> None:
        self._markers.put(marker)

    def stop(self, timeout: float = 30.0, progress: Optional[Callable[[str], None]] = None) -> Path:
        """Write every queued frame, settle every frame (the one being analysed waits for its result for
        half of `timeout` at most), close the video and the files. Every second until then, `progress`
        hears what is left ("writing N queued frames to FOLDER…"). Writing that makes no progress for
        `timeout` s (a stuck encoder or disk) is given up on: the recording ends as failed, `error` and
        metadata.json saying how many frames were not written."""
        self._stop_by = time.monotonic() + timeout / 2
        self._stop.set()
        done, since = None, time.monotonic()
        while self._thread.is_alive():
            self._thread.join(1.0)
            if not self._thread.is_alive():
                break
            if (self.encoded, self.rows) != done:
                done, since = (self.encoded, self.rows), time.monotonic()
            elif time.monotonic() - since >= timeout:
                self._give_up(timeout)
                break
            if progress is not None:
                progress(self._left())
        return self.folder

    def _left(self) -> str:
        left = self.frames.offered - self.rows  # queued, being encoded, or waiting for their analysis
        return f"writing {left} queued frames to {self.folder}…" if left else f"closing {self.folder}…"

    def _give_up(self, stalled_s: float) -> None:
        """On the stopping thread: the recorder thread is stuck; the recording ends as failed, saying
        what it leaves unwritten."""
        with self._ending:
            if self.ended is not None:  # it ended after all
                return
            self._given_up = True
            self.not_written = self.frames.offered - self.rows
            self.error = RecordingError(
                f"recording stopped: writing made no progress for {stalled_s:.0f} s (a stuck encoder or disk); "
                f"{self.not_written} of its {self.frames.offered} frames were not written (frames.csv has "
                f"{self.rows} rows, the video {self.encoded} frames)")
            log.error("%s", self.error)
            try:
                self._write_metadata(ended="failed")
            except OSError:
                pass
            self._lock.release()  # over: a reader takes it as ended, not as being recorded

    @property
    def elapsed_s(self) -> float:
        return 0.0 if self.started_ns is None else (time.monotonic_ns() - self.started_ns) / 1e9

    @property
    def dropped(self) -> int:
        """Captured frames that are not in the video (the encoder could not keep up)."""
        return self.frames.dropped

    # -- the recorder thread ---------------------------------------------------------------------
    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_s
        try:
            while True:
                if self._given_up:  # back from being stuck: what was written stays as stop() described it
                    self._close_quietly()
                    return
                stopping = self._stop.is_set()
                # newest, then taken, then the results: a frame below `newest` can no longer be taken, and
                # one below `taken` that analysis took has its result queued by now
                newest = self.slot.newest
                taken, analysing = self.slot.taken, self.analysing()
                if taken != self._taken:
                    self._taken, self._taken_at = taken, time.monotonic()
                got = self._drain_frames()
                if self._given_up:
                    continue  # closed at the top: no row written after stop() said what was not written
                self._drain_results()
                self._settle(newest, taken, analysing, stopping)
                self._drain_markers()
                if time.monotonic() >= next_flush:
                    self._flush()
                    next_flush = time.monotonic() + self.flush_s
                if stopping and self.frames.queue.empty() and not self.frames.missed and not self._pending:
                    break
                if not got and stopping:  # waiting for the result of the frame being analysed
                    time.sleep(0.02)
                elif not got:
                    self._stop.wait(0.02)
            self._finish()
        except Exception as exc:  # kept for the session, which reports it; what was written stays
            self._fail(exc)

    def _drain_frames(self, most: int = 64) -> int:
        n = 0
        while n < most and not self._given_up:
            try:
                frame = self.frames.queue.get_nowait()
            except queue.Empty:
                break
            self._missed_before(frame.index)
            if self.first_index is None:
                self.first_index = frame.index
            self._pending.append((frame.index, frame.t_monotonic_ns, frame.t_wall_ns, frame.t_lsl,
                                  self._encode(frame)))
            n += 1
        if n == 0:
            self._missed_before(None)
        return n

    def _missed_before(self, index: Optional[int]) -> None:
        """Rows (not in the video) for frames that did not fit the queue, in their place by index."""
        missed = self.frames.missed
        while missed and (index is None or missed[0][0] < index):
            i, t_mono, t_wall, t_lsl = missed.popleft()
            if self.first_index is None:
                self.first_index = i
            self._pending.append((i, t_mono, t_wall, t_lsl, None))

    def _encode(self, frame: Frame) -> int:
        import av

        if self._container is None:
            self._open_video(frame)
        image = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
        if (image.width, image.height) != self._size:
            image = image.reformat(width=self._size[0], height=self._size[1])
            self.resized += 1
        pts = (frame.t_monotonic_ns - self.t0_ns) // 1000
        if pts <= self._last_pts:
            pts = self._last_pts + 1
            self.pts_bumped += 1
        image.pts, image.time_base = pts, TIME_BASE
        self._last_pts = pts
        for packet in self._stream.encode(image):
            self._container.mux(packet)
        self.encoded += 1
        return pts

    def _open_video(self, frame: Frame) -> None:
        import av

        name, pix_fmt, multiple = CODECS[self.codec]
        height, width = frame.size
        self._size = (width // multiple * multiple, height // multiple * multiple)
        self.t0_ns = frame.t_monotonic_ns
        # Fragmented MP4: the index travels with each fragment, so a killed file is readable up to its
        # last complete fragment; flush_packets sends each fragment to the disk as it is finished.
        self._container = av.open(str(self.video_path), "w", format="mp4", options={
            "movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "500000",
            "video_track_timescale": str(TIME_BASE.denominator), "flush_packets": "1"})
        stream = self._container.add_stream(name)
        stream.width, stream.height, stream.pix_fmt = *self._size, pix_fmt
        stream.codec_context.time_base = stream.time_base = TIME_BASE  # no `rate`: that would force CFR
        if name == "libx264":
            # ultrafast from 720p up, veryfast below: encoding must leave the cores to analysis
            # (research/stack_probe.md); zerolatency: no frames held back in a lookahead.
            preset = "ultrafast" if width * height > 640 * 480 else "veryfast"
            stream.codec_context.options = {"preset": preset, "tune": "zerolatency"}
            stream.codec_context.gop_size = 60
        self._stream = stream
        self.metadata["video"] = {"file": self.video_path.name, "container": "mp4 (fragmented)", "encoder": name,
                                  "pix_fmt": pix_fmt, "options": dict(stream.codec_context.options),
                                  "width": self._size[0], "height": self._size[1], "time_base": "1/1000000",
                                  "pts_zero_t_monotonic_ns": self.t0_ns,
                                  "pts_rule": "pts = (t_monotonic_ns - pts_zero_t_monotonic_ns) // 1000"}
        self._write_metadata(ended=None)

    def _drain_results(self) -> None:
        while True:
            try:
                result, ids = self._results.get_nowait()
            except queue.Empty:
                return
            self._last_result = max(self._last_result, result.index)
            if self.first_index is not None and result.index < self.first_index:
                continue  # analysed before this recording began
            if result.index <= self._last_settled:
                self.late_results += 1  # its frame is already in frames.csv as skipped
                continue
            self._by_index[result.index] = (result, ids)

    def _settle(self, newest: int, taken: int, analysing: bool, stopping: bool = False) -> None:
        """Write the rows of the frames whose fate is known, in order. A frame analysis took waits for
        its result (unless analysis hung); one it did not take waits only while it is the newest (the
        only one analysis can still take); the others were skipped."""
        now = time.monotonic()
        hung = analysing and self._last_result < taken and (
            now - self._taken_at > self.hang_s or (stopping and now > self._stop_by))
        done = 0
        for index, t_mono, t_wall, t_lsl, pts in self._pending:
            hit = self._by_index.pop(index, None)
            if hit is None and analysing:
                if index == taken and not hung:
                    break  # being analysed: its result comes, however long that takes
                # the newest: analysis may still take it, unless the recording is over and it has not yet
                if index > taken and index >= newest and not (stopping and index > self.slot.taken):
                    break
                if index == taken:
                    self.given_up += 1
                    log.error("analysis gave frame %d no result in %.0f s (hung?): its row says not analysed, "
                              "and a result that still comes is counted as late", index, now - self._taken_at)
            if hit is not None:
                result, ids = hit
                self._fex.append(result, result.source_id, ids)
                self._arrays.append(result, ids)
                self.analysed += 1
            self._frames_csv.writerow([index, _secs(t_mono), _secs(t_wall), _lsl(t_lsl), int(hit is not None),
                                       hit[0].n_faces if hit else "", int(pts is not None),
                                       "" if pts is None else f"{pts / 1e6:.6f}"])
            done += 1
        if done:
            self._last_settled = self._pending[done - 1][0]
        del self._pending[:done]
        self.rows += done

    def _drain_markers(self) -> None:
        while True:
            try:
                m = self._markers.get_nowait()
            except queue.Empty:
                return
            self._markers_csv.writerow([*marker_fields(m), m.frame])

    def _flush(self) -> None:
        if not self.folder.is_dir():  # writes to a removed folder succeed silently: look
            raise RecordingError(f"the session folder {self.folder} was removed while recording")
        self._frames_file.flush()
        self._markers_file.flush()
        self._fex.flush()
        self._arrays.flush()

    def _finish(self) -> None:
        self._drain_results()
        self._settle(self.slot.newest, self.slot.taken, analysing=False)
        self._drain_markers()
        if self._container is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        self._flush()
        self._close_files()
        self._arrays.close(self._fex.path)  # the copy matches the finished fex.csv
        self._write_metadata(ended="stopped")
        self._lock.release()

    def _fail(self, exc: Exception) -> None:
        if self.on_failure is not None:  # detached at once: no frames or results pile up for it
            self.on_failure(self)
        self._discard_queued()
        self.error = RecordingError(f"recording stopped: {self._why(exc)}; {self.rows} frames are in frames.csv, "
                                    f"{self.encoded} in the video")
        log.error("%s%s", f"{self.name}: " if self.name else "", self.error)
        self._close_quietly()
        try:
            self._write_metadata(ended="failed")
        except OSError:
            pass
        self._lock.release()

    def _close_quietly(self) -> None:
        for close in (self._close_video_quietly, self._close_files):
            try:
                close()
            except Exception:  # the disk that failed may fail again: what was written stays
                pass

    def _why(self, exc: Exception) -> str:
        import av

        if isinstance(exc, RecordingError):
            return first_line(exc)
        if isinstance(exc, OSError):  # PyAV's errors from the disk are OSErrors too
            why = getattr(exc, "strerror", None) or first_line(exc)
            return f"writing to {self.folder} failed ({why}): free some space or record elsewhere"
        if isinstance(exc, av.FFmpegError):
            encoder = self.metadata.get("video", {}).get("encoder", self.codec)
            return f"the video encoder {encoder} failed ({first_line(exc)}): record with the other codec (h264 or ffv1)"
        log.exception("recorder failed")
        return first_line(exc)

    def _discard_queued(self) -> None:
        """Frees the frames and results that were waiting: nothing will write them now."""
        for waiting in (self.frames.queue, self._results):
            while True:
                try:
                    waiting.get_nowait()
                except queue.Empty:
                    break

    def _close_video_quietly(self) -> None:
        if self._container is not None:
            self._container.close()

    def _close_files(self) -> None:
        for f in (self._frames_file, self._markers_file):
            if not f.closed:
                f.close()
        if not self._fex._file.closed:
            self._fex.close()
        self._arrays.close()

    def counts(self) -> dict:
        return {"captured": self.rows + (self.not_written or len(self._pending)),
                "not_written": self.not_written, "encoded": self.encoded, "analysed": self.analysed,
                "dropped": {"not_in_video_encoder_queue_full": self.frames.dropped,
                            "results_queue_full": self.results_dropped,
                            "results_after_frame_settled": self.late_results},
                "skipped_for_analysis": self.rows - self.analysed, "hung_analysis_given_up": self.given_up,
                "adjusted": {"pts_bumped_same_microsecond": self.pts_bumped, "resized_to_first_frame": self.resized},
                "fex_rows": self._fex.rows_written, "first_frame": self.first_index}

    def _write_metadata(self, ended: Optional[str]) -> None:
        """`ended`: "stopped" (complete), "failed" (`error` says why) or None (recording; a killed
        process leaves it so: its counts are null, unknown, as only the end knows them)."""
        with self._ending:
            if self.ended is not None or (self._given_up and ended != "failed"):
                return  # said once; a thread back from being stuck does not rewrite it
            counts = self.counts()
            if ended is None:
                counts = dict(_unknown(counts), first_frame=self.first_index)
            data = dict(self.metadata, codec=self.codec, complete=ended == "stopped", ended=ended,
                        analysis_hang_s=self.hang_s, counts=counts,
                        error=None if self.error is None else str(self.error))
            write_json(self.folder / "metadata.json", data)
            self.ended = ended
