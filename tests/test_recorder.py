"""Recording a session: every captured frame in the video at its capture stamp, frames.csv, fex.csv,
markers.csv and metadata.json; a kill, a full disk and a removed folder (real processes, real files)."""
from __future__ import annotations

import functools
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from realtime_feat.live.live_session import LiveSession
from test_session import FakeAnalyser, Synthetic


class Jittery(Synthetic):
    """Synthetic frames at irregular intervals (2 to 9 ms): a variable frame rate to honour."""

    def read(self):
        time.sleep(0.002 + 0.007 * ((self.i * 7919) % 13) / 13)
        return super().read()


def decode(path: Path, cut_off: bool = False, images: bool = True) -> tuple[list[int], list[np.ndarray]]:
    """PTS and images of every frame; `cut_off`: the file may end in a partly written fragment (a
    killed process, a full disk), which ends the decoding there, as in a player."""
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base == Fraction(1, 1_000_000)  # µs: the capture stamps' resolution in the video
        try:
            for f in container.decode(stream):
                frames.append((f.pts, f.to_ndarray(format="rgb24") if images else None))
        except av.error.InvalidDataError:
            if not cut_off:
                raise
    return [p for p, _ in frames], [img for _, img in frames]


@pytest.mark.parametrize("codec", ["h264", "ffv1"])
def test_every_captured_frame_is_in_the_video_at_its_capture_stamp(tmp_path, codec):
    from feat.utils.io import read_feat

    session = LiveSession(Jittery(n=150, size=(48, 64)), FakeAnalyser(cost=0.01))
    folder = session.start_recording(tmp_path, label="vfr test", codec=codec)
    session.start()
    time.sleep(0.3)
    session.mark("stimulus on")
    assert session.wait(timeout=60)
    session.stop()
    assert folder.parent == tmp_path and folder.name.endswith("_vfr-test")

    frames = pd.read_csv(folder / "frames.csv")
    assert list(frames["frame"]) == list(range(150)) and (frames["in_video"] == 1).all()
    ns = (frames["t_monotonic"] * 1e9).round().astype(np.int64).to_numpy()
    assert (np.diff(ns) > 0).all() and (np.diff(frames["t_wall"]) > 0).all()
    meta = json.loads((folder / "metadata.json").read_text())
    t0 = meta["video"]["pts_zero_t_monotonic_ns"]
    pts, images = decode(folder / "video.mp4")
    assert len(pts) == len(frames)
    # PTS = capture stamp to the time base (1 µs); t_monotonic carries 9 decimals, the full ns stamp
    assert pts == [int(v) for v in (ns - t0) // 1000]
    assert np.diff(pts).std() > 500  # the irregular intervals are kept, not evened out
    values = np.array([img.mean() for img in images])
    if codec == "ffv1":  # lossless: each frame is exactly the one captured
        assert (values == frames["frame"].to_numpy() % 256).all()
    else:
        assert np.abs(values - frames["frame"].to_numpy() % 256).max() < 2

    analysed = frames[frames["analysed"] == 1]
    assert 0 < len(analysed) == session.status().analysed and (analysed["n_faces"] == 0).all()
    assert frames.loc[frames["analysed"] == 0, "n_faces"].isna().all()
    fex = read_feat(str(folder / "fex.csv"))  # py-feat's reader: a placeholder row per analysed frame
    assert list(fex["frame"]) == list(analysed["frame"])
    assert np.allclose(fex["t_monotonic"], analysed["t_monotonic"], atol=1e-6)

    markers = pd.read_csv(folder / "markers.csv")
    (marker,) = markers.itertuples()
    assert marker.label == "stimulus on" and marker.origin == "code"
    row = frames[frames["frame"] == marker.frame].iloc[0]
    assert row["t_monotonic"] <= marker.t_monotonic  # the newest frame captured when the marker came
    assert marker.frame == 149 or frames.loc[frames["frame"] == marker.frame + 1, "t_monotonic"].iloc[0] > marker.t_monotonic

    assert meta["complete"] is True and meta["error"] is None and meta["codec"] == codec
    counts = meta["counts"]
    assert counts["captured"] == counts["encoded"] == 150 and counts["analysed"] == len(analysed)
    assert counts["skipped_for_analysis"] == 150 - len(analysed) and counts["fex_rows"] == len(fex)
    assert counts["dropped"] == {"not_in_video_encoder_queue_full": 0, "results_queue_full": 0,
                                 "results_after_frame_settled": 0}
    assert meta["analyser"]["describe"] == "fake analyser, no models" and meta["source"]["frame_size"] == [48, 64]


def test_recording_starts_and_stops_on_a_running_session(tmp_path):
    session = LiveSession(Synthetic(n=10**9, interval=0.004), FakeAnalyser())
    session.start()
    try:
        time.sleep(0.3)
        folder = session.start_recording(tmp_path)
        time.sleep(0.5)
        assert session.status().recording == folder and session.status().encoded > 0
        assert session.stop_recording() == folder
        after = session.status()
        assert after.recording is None and after.state == "running"
    finally:
        session.stop()
    frames = pd.read_csv(folder / "frames.csv")
    first = frames["frame"].iloc[0]
    assert first > 0 and list(frames["frame"]) == list(range(first, first + len(frames)))
    assert len(decode(folder / "video.mp4")[0]) == len(frames) == session.last_recording.encoded
    assert json.loads((folder / "metadata.json").read_text())["counts"]["first_frame"] == first


def test_an_encoder_that_cannot_keep_up_is_counted_and_every_frame_keeps_its_row(tmp_path, monkeypatch):
    from realtime_feat.recording import recorder

    real = recorder.Recorder._encode

    def slow_encode(self, frame):
        time.sleep(0.01)
        return real(self, frame)

    monkeypatch.setattr(recorder.Recorder, "_encode", slow_encode)
    session = LiveSession(Synthetic(n=400), None)  # as fast as it generates: far above 100 frames/s
    session.start_recording(tmp_path)
    session.start()
    assert session.wait(timeout=60)
    session.stop()
    rec = session.last_recording
    frames = pd.read_csv(rec.folder / "frames.csv")
    assert list(frames["frame"]) == list(range(400))  # no index missing, dropped or not
    dropped = frames["in_video"] == 0
    assert dropped.sum() == rec.dropped > 0 and frames.loc[dropped, "video_time"].isna().all()
    assert frames.loc[dropped, "t_monotonic"].notna().all()  # its capture stamp is still known
    assert len(decode(rec.folder / "video.mp4")[0]) == (~dropped).sum() == rec.encoded
    meta = json.loads((rec.folder / "metadata.json").read_text())
    assert meta["counts"]["dropped"]["not_in_video_encoder_queue_full"] == rec.dropped


def test_a_removed_folder_stops_the_recording_with_one_clear_line(tmp_path):
    session = LiveSession(Synthetic(n=10**9, interval=0.004), None)
    folder = session.start_recording(tmp_path)
    session.start()
    try:
        time.sleep(0.5)
        shutil.rmtree(folder)
        deadline = time.monotonic() + 20
        while session.status().error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        error = session.status().error
    finally:
        session.stop()
    assert error.startswith(f"recording stopped: the session folder {folder} was removed while recording; ")
    assert "\n" not in error


def wait_for(condition, timeout: float = 30.0) -> bool:
    """Hang guard: polls `condition` until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


class BreakingEncoder:
    """The video stream with an encoder that fails on its `at`-th frame, as libx264 does on an internal
    error."""

    def __init__(self, stream, at: int):
        self.stream, self.at, self.n = stream, at, 0

    def encode(self, image=None):
        import av

        self.n += 1
        if self.n == self.at:
            raise av.error.ExternalError(-542398533, "Generic error in an external library")
        return self.stream.encode(image)


def test_an_encoder_error_detaches_the_recording_at_once_and_the_session_goes_on(tmp_path, monkeypatch):
    from realtime_feat.recording import recorder

    real_open_video = recorder.Recorder._open_video

    def open_video(self, frame):
        real_open_video(self, frame)
        self._stream = BreakingEncoder(self._stream, at=20)

    monkeypatch.setattr(recorder.Recorder, "_open_video", open_video)
    session = LiveSession(Synthetic(n=10**9, interval=0.004), FakeAnalyser())
    folder = session.start_recording(tmp_path)
    session.start()
    try:
        rec = session.last_recording
        assert wait_for(lambda: session.status().recording_error is not None)
        s = session.status()
        # off capture and the results at once: nothing is queued for it, nothing counted as dropped
        assert rec.frames not in session.capture.subscribers
        captured, analysed, dropped = session.capture.frames, session.analysed, rec.frames.dropped
        assert wait_for(lambda: session.capture.frames > captured + 50 and session.analysed > analysed + 5)
        assert rec.frames.queue.qsize() == 0 and rec.frames.dropped == dropped  # frames do not pile up
        assert rec._results.empty()  # nor results
        after = session.status()
        assert after.state == "running" and after.error == s.error  # capture and analysis go on
    finally:
        session.stop()
    assert s.recording is None and s.encoded == 0
    assert s.recording_error == s.error == str(rec.error)  # one line
    assert s.error.startswith("recording stopped: the video encoder libx264 failed ([Errno -542398533] Generic "
                              "error in an external library): record with the other codec (h264 or ffv1); ")
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["complete"] is False and meta["ended"] == "failed" and meta["error"] == s.error
    assert meta["counts"]["encoded"] == rec.encoded == 19
    frames = pd.read_csv(folder / "frames.csv")
    assert list(frames["frame"]) == list(range(len(frames))) and len(frames) == rec.rows
    assert 0 < len(decode(folder / "video.mp4", cut_off=True)[0]) <= 19
    assert session.stop_recording() is None  # nothing left to stop


def test_a_slow_analysis_loses_no_row(tmp_path):
    """2.5 s per analysed frame: every analysed frame's rows reach fex.csv, none is settled as skipped first."""
    from feat.utils.io import read_feat

    session = LiveSession(Synthetic(n=150, interval=0.02), FakeAnalyser(cost=2.5))
    results = []
    session.subscribe(lambda result, frame: results.append(result.index))
    folder = session.start_recording(tmp_path)
    session.start()
    assert session.wait(timeout=120)
    session.stop()
    frames = pd.read_csv(folder / "frames.csv")
    assert len(results) >= 2 and list(frames["frame"]) == list(range(150))
    fex = read_feat(str(folder / "fex.csv"))
    assert list(frames.loc[frames["analysed"] == 1, "frame"]) == results == list(fex["frame"])
    counts = json.loads((folder / "metadata.json").read_text())["counts"]
    assert counts["dropped"]["results_after_frame_settled"] == 0 and counts["hung_analysis_given_up"] == 0
    assert counts["analysed"] == len(results)


def test_stopping_a_recording_waits_for_the_frame_being_analysed(tmp_path):
    session = LiveSession(Synthetic(n=10**9, interval=0.01), FakeAnalyser(cost=1.0))
    session.start()
    try:
        folder = session.start_recording(tmp_path)
        rec = session.last_recording
        assert wait_for(lambda: rec.first_index is not None and session.capture.slot.taken > rec.first_index)
        in_flight = session.capture.slot.taken
        session.stop_recording()
    finally:
        session.stop()
    frames = pd.read_csv(folder / "frames.csv").set_index("frame")
    assert frames.loc[in_flight, "analysed"] == 1 and frames.index[-1] >= in_flight
    assert json.loads((folder / "metadata.json").read_text())["counts"]["dropped"]["results_after_frame_settled"] == 0


class Hangs(FakeAnalyser):
    """Hangs on the first frame from `at` on until `release` is set (a stuck backend)."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.hung, self.release = at, None, threading.Event()

    def analyse(self, frames):
        if self.hung is None and frames[0].index >= self.at:
            self.hung = frames[0].index
            self.release.wait(60)
        return super().analyse(frames)


def test_a_hung_analysis_is_given_up_on_with_one_line_and_counted(tmp_path, monkeypatch, caplog):
    from realtime_feat.recording import recorder

    monkeypatch.setattr(recorder, "Recorder", functools.partial(recorder.Recorder, hang_s=0.5))
    analyser = Hangs(at=10)
    session = LiveSession(Synthetic(n=10**9, interval=0.01), analyser)
    folder = session.start_recording(tmp_path)
    session.start()
    try:
        rec = session.last_recording
        # given up on: its row and those after it are written while the analysis still hangs
        assert wait_for(lambda: rec.given_up == 1 and rec.rows > analyser.hung + 20)
        analyser.release.set()
        assert wait_for(lambda: rec.analysed > analyser.hung + 5)  # analysis is back: rows analysed again
    finally:
        session.stop()
    frames = pd.read_csv(folder / "frames.csv").set_index("frame")
    assert frames.loc[analyser.hung, "analysed"] == 0 and frames.loc[analyser.hung + 1:, "analysed"].any()
    counts = json.loads((folder / "metadata.json").read_text())["counts"]
    assert counts["hung_analysis_given_up"] == 1
    assert counts["dropped"]["results_after_frame_settled"] == 1  # the hung frame's result, when it came
    (line,) = [r.getMessage() for r in caplog.records if "no result" in r.getMessage()]
    assert line.startswith(f"analysis gave frame {analyser.hung} no result in ")


class Large(Synthetic):
    """`n` 4K frames (3840×2160 RGB, 24.9 MB each) as fast as asked; each frame after the first waits for
    `ready`. One image is shared by every frame: the test holds no gigabytes, the queue counts each
    frame's own size as from a camera."""

    def __init__(self, n: int, ready: threading.Event):
        super().__init__(n=n, size=(2160, 3840))
        self.image, self.ready = np.zeros((*self.size, 3), np.uint8), ready

    def read(self):
        if self.i:
            self.ready.wait(30)
        return None if super().read() is None else self.image


def test_the_encoder_queue_is_bounded_by_bytes_from_the_real_frame_size(tmp_path, monkeypatch):
    """4K frames with the encoder blocked on the first: about 400 MB wait (16 frames), not 144 frames (3.6
    GB) sized before the frame size was known; the rest are dropped from the video and keep their rows."""
    from realtime_feat.recording import recorder

    blocked, release = threading.Event(), threading.Event()

    def blocked_encode(self, frame):  # no video: the queue is what is looked at
        blocked.set()
        release.wait(60)
        self.encoded += 1
        return frame.index

    monkeypatch.setattr(recorder.Recorder, "_encode", blocked_encode)
    source = Large(60, ready=blocked)
    session = LiveSession(source, None)
    session.start_recording(tmp_path)
    session.start()
    rec = session.last_recording
    try:
        assert session.capture.wait(timeout=60)  # every frame offered while the first is in the encoder
        budget = 400_000_000  # what README promises may wait for the encoder
        fit = budget // source.image.nbytes
        assert fit == 16
        assert rec.frames.queue.qsize() == fit and fit * source.image.nbytes <= budget
        assert rec.dropped == 60 - 1 - fit
    finally:
        release.set()
        session.stop()
    frames = pd.read_csv(rec.folder / "frames.csv")
    assert list(frames["frame"]) == list(range(60)) and (frames["in_video"] == 0).sum() == rec.dropped
    assert rec.frames.queue.nbytes == 0  # every frame taken out was counted out


def slow_encoder(monkeypatch, cost: float, stuck_from: int = 10**9) -> threading.Event:
    """Each frame takes `cost` s to encode; from frame `stuck_from` on the encoder hangs until the
    returned event is set."""
    from realtime_feat.recording import recorder

    real, release = recorder.Recorder._encode, threading.Event()

    def encode(self, frame):
        time.sleep(cost)
        if frame.index >= stuck_from:
            release.wait(60)
        return real(self, frame)

    monkeypatch.setattr(recorder.Recorder, "_encode", encode)
    return release


def test_stopping_with_a_slow_encoder_writes_every_queued_frame_saying_how_many_are_left(tmp_path, monkeypatch):
    """40 frames queued, 0.25 s each to encode: 10 s of writing, never 3 s without progress. stop(timeout=3)
    writes them all (it gave up after 3 s, leaving "ended": null) and says what is left every second."""
    slow_encoder(monkeypatch, cost=0.25)
    session = LiveSession(Synthetic(n=40), None)
    folder = session.start_recording(tmp_path)
    session.start()
    rec = session.last_recording
    lines = []
    try:
        assert session.capture.wait(timeout=30)
        rec.stop(timeout=3.0, progress=lines.append)
        assert rec.ended == "stopped" and rec.error is None
    finally:
        session.stop()
    left = [int(re.fullmatch(rf"writing (\d+) queued frames to {re.escape(str(folder))}…", line)[1])
            for line in lines if not line.startswith("closing")]
    assert left and left[0] > 0 and left == sorted(left, reverse=True)
    frames = pd.read_csv(folder / "frames.csv")
    assert list(frames["frame"]) == list(range(40)) and (frames["in_video"] == 1).all()
    assert len(decode(folder / "video.mp4", images=False)[0]) == 40
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["complete"] is True and meta["counts"]["not_written"] == 0


def test_a_stuck_encoder_is_given_up_at_stop_saying_what_was_not_written(tmp_path, monkeypatch):
    release = slow_encoder(monkeypatch, cost=0.0, stuck_from=5)
    session = LiveSession(Synthetic(n=20), None)
    folder = session.start_recording(tmp_path)
    session.start()
    rec = session.last_recording
    try:
        assert session.capture.wait(timeout=30) and wait_for(lambda: rec.encoded == 5)
        rec.stop(timeout=1.0)  # returns: nothing is written while the encoder hangs
        error = str(rec.error)
        meta = json.loads((folder / "metadata.json").read_text())
    finally:
        release.set()
        session.stop()
    assert rec.ended == "failed" and "\n" not in error
    assert error.startswith("recording stopped: writing made no progress for 1 s (a stuck encoder or disk); ")
    not_written = 20 - rec.rows
    assert f"{not_written} of its 20 frames were not written (frames.csv has {rec.rows} rows" in error
    assert meta["ended"] == "failed" and meta["complete"] is False and meta["error"] == error
    assert meta["counts"]["not_written"] == not_written > 0 and meta["counts"]["captured"] == 20
    # the thread, back from the encoder, rewrites nothing
    assert json.loads((folder / "metadata.json").read_text()) == meta


HANGS = """
import sys, threading
sys.path.insert(0, {tests!r})
from test_session import FakeAnalyser
from realtime_feat import factories


class Hangs(FakeAnalyser):
    fallbacks = ()

    def analyse(self, frames):
        if frames[0].index >= 10:
            threading.Event().wait()  # a backend that never returns
        return super().analyse(frames)


factories.make_analyser = lambda options, *args, **kw: Hangs()
from realtime_feat.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_ends_record_of_two_cameras_whose_analysis_hangs(tmp_path, sample_data):
    """SIGINT to `record` with two sources while their shared analysis never returns: it ends (it waited
    for that frame's result forever), each camera's recording written to the end and ended together (the
    second camera recorded on while the first waited for its analysis)."""
    video = sample_data / "WolfgangLanger_Pexels.mp4"
    copy = shutil.copy(video, tmp_path / "second.mp4")
    script = HANGS.format(tests=str(Path(__file__).parent))
    proc = subprocess.Popen([sys.executable, "-c", script, "record", "--source", str(video), "--source", str(copy),
                             "--out", str(tmp_path / "out"), "--backend", "onnxruntime", "--detector", "fast",
                             "--precision", "fp32"], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: [lines.append(line) for line in proc.stderr], daemon=True)
    reader.start()
    try:
        # the hang comes at frame 10: before the third status line of the second camera
        assert wait_for(lambda: sum(" second: " in line and "fps" in line for line in lines) >= 3, timeout=120)
        interrupted_at = time.monotonic()  # CLOCK_MONOTONIC: the child's stamps' clock
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)  # the hang guard: a stop that waits forever fails here
    finally:
        proc.kill()
        reader.join(10)
    err = "".join(lines)
    assert proc.returncode == 0, err
    assert "no result" in err and "Traceback" not in err
    (folder,) = (tmp_path / "out").iterdir()
    for name in ("WolfgangLanger_Pexels", "second"):
        meta = json.loads((folder / name / "metadata.json").read_text())
        frames = pd.read_csv(folder / name / "frames.csv")
        assert meta["ended"] == "stopped" and len(frames) == meta["counts"]["captured"] > 10
        # the analysis is waited for 15 s: a bound below it, as in the kill tests' bounds in seconds
        assert frames["t_monotonic"].iloc[-1] - interrupted_at < 10.0


SCRIPT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
from realtime_feat.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_full_disk_ends_the_session_with_what_was_written(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "record", "--source", "pyfeat:WolfgangLanger_Pexels.mp4",
                           "--fast", "--no-analysis", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr  # 1: partly done, what was written stays
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    (folder,) = tmp_path.iterdir()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["ended"] == "failed" and meta["error"] in last
    assert last.startswith(f"realtime-feat: error: recording stopped: writing to {folder} failed (")
    assert "free some space or record elsewhere" in last
    frames = pd.read_csv(folder / "frames.csv")
    assert len(frames) and list(frames["frame"]) == list(range(len(frames)))
    assert 0 < len(decode(folder / "video.mp4", cut_off=True)[0])


def record_then_kill(options: list[str], status: Callable[[str], bool], after_s: float) -> float:
    """`realtime-feat record OPTIONS` in its own process: once two stderr lines satisfy `status` (frames
    flow), a marker typed on its terminal, then SIGKILL `after_s` later. Returns when it was killed, on
    CLOCK_MONOTONIC: the same clock as the child's stamps."""
    proc = subprocess.Popen([sys.executable, "-m", "realtime_feat.cli", "record", *options],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = 0
        for line in proc.stderr:
            seen += status(line)
            if seen >= 2:
                break
        proc.stdin.write("stimulus on\n")
        proc.stdin.flush()
        time.sleep(after_s)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return killed_at


def test_a_killed_recording_leaves_files_py_feat_and_players_read(tmp_path, weights_dir, fast_analyser):
    """SIGKILL mid-session: fex.csv loads in py-feat, frames.csv is whole up to the end, the video
    decodes to within its last second, and a marker typed on the terminal is in markers.csv."""
    from feat.utils.io import read_feat

    # frames are flowing and analysed once two status lines came
    killed_at = record_then_kill(["--source", "pyfeat:WolfgangLanger_Pexels.mp4", "--out", str(tmp_path), "--label",
                                  "kill", "--weights", str(weights_dir), "--backend", "onnxruntime"],
                                 lambda line: "capture" in line and "fps" in line, after_s=2.5)
    (folder,) = tmp_path.iterdir()
    frames = pd.read_csv(folder / "frames.csv")
    assert len(frames) > 30 and list(frames["frame"]) == list(range(len(frames)))
    # Bounds in seconds stay in this test: what a kill may cost is time (the promise), so it is
    # measured on the capture clock. Rows were on disk until shortly before: a row waits for its frame's
    # analysis (one or two analysis periods) and a flush (0.5 s); the rest is slack for a loaded machine
    assert killed_at - frames["t_monotonic"].iloc[-1] < 5.0
    fex = read_feat(str(folder / "fex.csv"))
    analysed = frames[frames["analysed"] == 1]
    assert len(fex) >= len(analysed) > 0 and set(analysed["frame"]) <= set(fex["frame"])
    pts, _ = decode(folder / "video.mp4", cut_off=True)
    t0 = json.loads((folder / "metadata.json").read_text())["video"]["pts_zero_t_monotonic_ns"]
    row_pts = ((frames["t_monotonic"] * 1e9).round().astype(np.int64).to_numpy() - t0) // 1000
    n = min(len(pts), len(frames))
    assert n > 30 and pts[:n] == [int(p) for p in row_pts[:n]]  # each decoded frame is its row's, at its stamp
    # the bound: at most the last second lost (a fragment is 0.5 s; 0.5 s of slack for scheduling)
    assert killed_at - (t0 + pts[-1] * 1000) / 1e9 < 1.5
    not_in_video = frames["t_monotonic"].iloc[len(pts):]  # rows (if any) whose frame the kill cut off
    assert not_in_video.empty or frames["t_monotonic"].iloc[-1] - not_in_video.iloc[0] <= 1.0  # ≤ the last second
    markers = pd.read_csv(folder / "markers.csv")
    assert list(markers["label"]) == ["stimulus on"] and list(markers["origin"]) == ["terminal"]
    assert frames["t_monotonic"].iloc[0] < markers["t_monotonic"].iloc[0] < killed_at


def test_a_recording_killed_mid_row_reads_the_same_rows_everywhere_and_its_counts_are_unknown(
        tmp_path, weights_dir, fast_analyser, capsys):
    """SIGKILL: py-feat's reader (`.fex`), `table()` and the arrays all end at fex.csv's last whole line;
    metadata.json's counts are null (only a clean end knows them) and the report says "unknown"."""
    from realtime_feat.cli import main
    from realtime_feat.recording.fex_arrays import FOLDER, RECORDING_LOCK, FexArrays
    from realtime_feat.review.recorded_session import load_session

    def rows_on_disk() -> int:
        return sum(f.read_bytes().count(b"\n") - 1 for f in (tmp_path / "s").glob("*/fex.csv"))

    # killed once status lines come with rows of fex.csv on disk
    record_then_kill(["--source", "pyfeat:WolfgangLanger_Pexels.mp4", "--out", str(tmp_path / "s"), "--label", "kill",
                      "--weights", str(weights_dir), "--backend", "onnxruntime"],
                     lambda line: "capture" in line and rows_on_disk() > 2, after_s=0.5)
    (folder,) = (tmp_path / "s").iterdir()
    fex_csv = folder / "fex.csv"
    text = fex_csv.read_bytes()
    if text.endswith(b"\n"):  # a kill lands mid-row nearly always (a row is ~20 kB, written in 8 kB pieces)
        fex_csv.write_bytes(text[:-100])
    whole = fex_csv.read_bytes().count(b"\n") - 1  # rows after the header
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["ended"] is None and meta["counts"]["encoded"] is None
    assert meta["counts"]["dropped"] == {"not_in_video_encoder_queue_full": None, "results_queue_full": None,
                                         "results_after_frame_settled": None}

    session = load_session(folder)
    assert (folder / RECORDING_LOCK).exists() and not session.recording  # the killed recorder's lock was let go
    assert whole > 0 and len(session.fex) == len(session.table()) == FexArrays(folder / FOLDER).n_rows == whole
    assert session.fex["FrameWidth"].notna().all()  # no half row
    out = tmp_path / "report.html"
    assert main(["report", str(folder), "-o", str(out)]) == 0
    assert "<th>results dropped</th><td>unknown" in out.read_text()
    assert "still being recorded" not in capsys.readouterr().err


def test_record_then_load_and_reanalyse_every_frame_on_the_capture_clocks(capsys, tmp_path, weights_dir, sample_data,
                                                                           fast_analyser):
    """`record` on py-feat's sample video played live; `load_session` reads it back as a Fex;
    `process SESSION_DIR` analyses every recorded frame into a CSV on the same capture clocks."""
    import realtime_feat
    from realtime_feat.cli import main

    models = ["--weights", str(weights_dir), "--backend", "onnxruntime"]
    assert main(["record", "--source", str(sample_data / "single_face.mp4"), "--out", str(tmp_path / "sessions"),
                 "--label", "sample", *models]) == 0
    err = capsys.readouterr().err
    (folder,) = (tmp_path / "sessions").iterdir()
    assert err.strip().splitlines()[-1].endswith(f"and 0 marker(s) to {folder}")
    assert "recorded 72 frames (72 in the video, 0 dropped by the encoder queue)" in err

    session = realtime_feat.load_session(folder)
    assert session.complete and len(session.frames) == 72 and session.markers.empty
    analysed = session.frames[session.frames["analysed"] == 1]
    assert len(analysed) > 0 and (analysed["n_faces"] == 1).all()  # real faces: the fast detector's weights
    fex = session.fex
    assert type(fex).__name__ == "Fex" and list(fex["frame"]) == list(analysed["frame"])
    assert fex.aus.shape == (len(analysed), 20) and {"t_monotonic", "track_id", "identity"} <= set(fex.columns)

    out = tmp_path / "offline.csv"
    assert main(["process", str(folder), "-o", str(out), "--detector", "fast", *models]) == 0
    offline = pd.read_csv(out)
    frames = session.frames
    assert list(offline["frame"]) == list(frames["frame"])  # every frame, not only the analysed ones
    assert np.allclose(offline["t_monotonic"], frames["t_monotonic"], atol=1e-6)
    assert np.allclose(offline["timestamp"], frames["video_time"], atol=1e-6)
    assert (offline["n_faces"] == 1).all()


class Soak(Synthetic):
    """A fast synthetic camera that, like a real one, never outruns the recorder (it waits while the
    recorder's queue is half full): every frame must then reach the video."""

    def __init__(self, n, session_ref):
        super().__init__(n=n, size=(32, 32))
        self.session_ref = session_ref

    def read(self):
        recording = self.session_ref[0].last_recording
        while recording is not None and recording.frames.queue.qsize() > recording.frames.maxsize // 2:
            time.sleep(0.0005)
        return super().read()


@pytest.mark.slow
def test_an_hour_at_30_fps_loses_no_frame(tmp_path):
    """108,000 frames (an hour at 30 fps), small, no analysis: no missing index, strictly increasing
    stamps, as many video frames as frames.csv rows, each at its capture stamp."""
    n, ref = 108_000, []
    session = LiveSession(Soak(n, ref), None)
    ref.append(session)
    folder = session.start_recording(tmp_path)
    session.start()
    assert session.wait(timeout=900)
    session.stop()
    frames = pd.read_csv(folder / "frames.csv")
    assert len(frames) == n and (frames["frame"].to_numpy() == np.arange(n)).all()
    ns = (frames["t_monotonic"] * 1e9).round().astype(np.int64).to_numpy()
    assert (np.diff(ns) > 0).all() and (frames["in_video"] == 1).all()
    meta = json.loads((folder / "metadata.json").read_text())
    pts, _ = decode(folder / "video.mp4", images=False)
    assert len(pts) == n
    assert (np.array(pts) == (ns - meta["video"]["pts_zero_t_monotonic_ns"]) // 1000).all()
    assert meta["counts"]["encoded"] == n and meta["counts"]["adjusted"]["pts_bumped_same_microsecond"] == 0


def test_process_reads_a_cut_off_session_up_to_its_last_row(tmp_path, caplog):
    """A killed recording's video can run ahead of frames.csv: frames with no row are left out, said once."""
    from realtime_feat.capture.media import iter_video
    from realtime_feat.review.recorded_session import on_capture_clocks

    session = LiveSession(Synthetic(n=40, size=(48, 64)), None)
    folder = session.start_recording(tmp_path)
    session.start()
    assert session.wait(timeout=30)
    session.stop()
    lines = (folder / "frames.csv").read_text().splitlines(keepends=True)
    (folder / "frames.csv").write_text("".join(lines[:31]))  # the last 10 rows never reached the disk
    frames = list(on_capture_clocks(iter_video(folder / "video.mp4"), folder))
    table = pd.read_csv(folder / "frames.csv")
    assert [f.index for f in frames] == list(table["frame"]) == list(range(30))
    assert [f.t_monotonic_ns for f in frames] == list((table["t_monotonic"] * 1e9).round().astype(np.int64))
    assert "video frames from 30 on have no row in frames.csv" in caplog.text


def test_record_into_a_folder_that_cannot_be_made_is_one_line(capsys, tmp_path, sample_data):
    from realtime_feat.cli import main

    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    assert main(["record", "--source", str(sample_data / "single_face.mp4"), "--out", str(blocker / "sessions"),
                 "--no-analysis"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"realtime-feat: error: cannot create a session folder in {blocker / 'sessions'}: ")
