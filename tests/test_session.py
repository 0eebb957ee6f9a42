"""LiveSession: the one live pipeline object behind `live`, `record` and the app."""
from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from realtime_feat.live.worker import LiveSettings
from realtime_feat.live.live_session import LiveSession
from realtime_feat.types import Detections, FaceAnalysis, FrameResult


class Synthetic:
    """`n` small frames whose pixels carry their own number, `interval` s apart (0: as fast as asked)."""

    def __init__(self, n=50, interval=0.0, size=(24, 32)):
        self.id, self.ended, self.last_pts = "synthetic", False, None
        self.n, self.interval, self.size, self.i = n, interval, size, 0

    def open(self):
        self.i, self.ended = 0, False

    def read(self):
        if self.i >= self.n:
            self.ended = True
            return None
        if self.interval:
            time.sleep(self.interval)
        self.i += 1
        return np.full((*self.size, 3), (self.i - 1) % 256, np.uint8)

    def close(self):
        pass


class FakeAnalyser:
    """No models: no faces, a fixed cost per frame; fails on frame `fail_at` (an analysis crash)."""

    identity = False
    backend = SimpleNamespace(name="fake", precision="fp32")
    device, detector_name, weight_paths, weight_digests = "cpu", "none", {}, {}

    def __init__(self, cost=0.002, fail_at=None):
        self.cost, self.fail_at, self.warmed = cost, fail_at, None

    def describe(self):
        return "fake analyser, no models"

    def warm_up(self, height, width):
        self.warmed = (height, width)

    def analyse(self, frames):
        frame = frames[0]
        if frame.index == self.fail_at:
            self.fail_at = None
            raise RuntimeError("backend fell over\nsecond line")
        time.sleep(self.cost)
        return [FrameResult.of(frame, Detections.empty(), FaceAnalysis.empty(), {})]

    analyse_boxes = None  # never asked: without faces there are no boxes to carry


def test_every_result_comes_with_the_frame_it_was_computed_on():
    analyser = FakeAnalyser()
    session = LiveSession(Synthetic(n=60, interval=0.001), analyser)
    pairs = []
    session.subscribe(lambda result, frame: pairs.append((result, frame)))
    session.start()
    assert session.wait(timeout=30)
    session.stop()
    session.stop()  # idempotent
    assert analyser.warmed == (24, 32) and session.frame_size == (24, 32)
    assert pairs and all(r.index == f.index and r.t_monotonic_ns == f.t_monotonic_ns for r, f in pairs)
    assert all(f.image[0, 0, 0] == f.index % 256 for _, f in pairs)  # the very image, not a newer one
    s = session.status()
    assert s.state == "ended" and s.captured == 60 and s.error is None
    assert s.analysed == len(pairs) and s.analysed + s.skipped == 60  # each frame analysed or skipped
    assert s.detections_run == s.analysed  # no face found: nothing to carry, detect every frame
    assert [r.index for r, _ in pairs] == sorted({r.index for r, _ in pairs})


def test_status_counts_and_settings_while_running():
    session = LiveSession(Synthetic(n=10**9, interval=0.005), FakeAnalyser(), settings=LiveSettings(redetect_every=3))
    session.start()
    try:
        time.sleep(1.2)
        s = session.status()
        assert s.state == "running" and s.captured > 0 and s.capture_fps > 0 and s.analysed_fps > 0
        assert s.latency_p50_ms > 0 and s.recording is None and s.encoded == 0
        new = LiveSettings(redetect_every=1)
        session.settings = new  # taken by the worker between frames
        assert session.settings is new
        assert eventually(lambda: session.worker.settings is new and session.worker.roi.settings is new)
    finally:
        session.stop()
    assert session.status().state == "stopped" and session.wait(0)


def eventually(condition, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


class People(FakeAnalyser):
    """`n` faces side by side on every frame, each with its own ArcFace embedding; checks that the
    face threshold never changes while a frame is analysed (changes come between frames)."""

    identity = True

    def __init__(self, n=4, cost=0.002):
        super().__init__(cost)
        rng = np.random.default_rng(0)
        self.embeddings = rng.normal(size=(n, 512)).astype(np.float32)
        self.boxes = np.array([[40 * i + 5, 5, 40 * i + 35, 40] for i in range(n)], np.float32)
        self.landmarks = self.boxes[:, None, :2] + rng.uniform(3, 27, size=(n, 68, 2)).astype(np.float32)
        self.decoder = SimpleNamespace(threshold=0.5)
        self.changed_mid_frame = 0

    def analyse(self, frames):
        threshold = self.decoder.threshold
        time.sleep(self.cost)
        self.changed_mid_frame += self.decoder.threshold != threshold
        n = len(self.boxes)
        z = lambda *s: np.zeros((n, *s), np.float32)  # noqa: E731
        faces = FaceAnalysis(self.boxes, z(20), z(7), z(2), z(2), z(6), z(478, 3), self.landmarks, z(52),
                             self.embeddings)
        return [FrameResult.of(frames[0], Detections(self.boxes, np.ones(n, np.float32), z(5, 2)), faces, {})]

    def analyse_boxes(self, frames, boxes, identity=True):
        return self.analyse(frames)


def test_enrolling_and_settings_from_another_thread_apply_between_frames():
    """Fault: the window enrols people and changes the threshold and re-detection interval hundreds of
    times while a tracker with four people runs, and reads their identities meanwhile."""
    from realtime_feat.analysis.tracking import FaceTracker, TrackerSettings

    analyser = People()
    session = LiveSession(Synthetic(n=10**9, interval=0.002, size=(48, 160)), analyser,
                          tracker=FaceTracker(TrackerSettings(lost_after_s=3600.0)))
    names = [f"person {i}" for i in range(len(analyser.embeddings))]
    labels = []
    session.subscribe(lambda result, frame: labels.append(session.tracker.identities(result.track_ids)[0]),
                      name="labeller")
    session.start()
    rng = np.random.default_rng(1)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads take turns far more often: a race shows in hundreds of calls
    try:
        assert eventually(lambda: len(session.tracker.tracks) == 4 and all(t.track_id > 0 for t in session.tracker.tracks))
        for k in range(300):
            i = k % len(names)
            session.enrol(names[i], analyser.embeddings[i] + rng.normal(scale=0.05, size=512))  # enrol, re-enrol
            session.set_threshold(0.3 + (k % 5) / 10)
            session.update_settings(redetect_every=1 + k % 4)
            ids = [t.track_id for t in session.tracker.tracks]
            session.tracker.identities(ids)  # as the recorder or a labeller on another thread does
            assert set(session.tracker.enrolled) <= set(names)
        assert session.settings.redetect_every == 4 and session.analysed > 0
        # the worker ends at the last values (the threshold was queued before the last settings), and names
        # the four people
        last = session.settings
        assert eventually(lambda: session.worker.settings is last and session.worker.roi.settings is last)
        assert analyser.decoder.threshold == 0.7
        assert eventually(lambda: len(labels) > 2 and sorted(labels[-1]) == names)
    finally:
        sys.setswitchinterval(switch)
        session.stop()
    assert session.error is None and session.status().sink_errors == ()
    assert sorted(session.tracker.enrolled) == names and analyser.changed_mid_frame == 0


def test_changes_without_analysis_running_apply_at_once_and_bad_ones_are_one_line():
    analyser = People()
    session = LiveSession(Synthetic(n=5), analyser)
    session.enrol("Ana", analyser.embeddings[0])
    session.set_threshold(0.8)
    assert session.tracker.enrolled == ["Ana"] and analyser.decoder.threshold == 0.8
    assert session.update_settings(max_motion=0.5) == LiveSettings(max_motion=0.5)
    for change, message in [(lambda: session.enrol("", analyser.embeddings[0]), "name must be non-empty"),
                            (lambda: session.enrol("Bo", np.zeros(3)), r"expected \(k, 512\) embeddings"),
                            (lambda: session.set_threshold(1.5), r"^threshold must be in \(0, 1\], got 1.5$"),
                            (lambda: session.update_settings(redetect_every=0), "redetect_every must be ≥ 1"),
                            (lambda: session.update_settings(redetect=2), "no setting redetect; choose from")]:
        with pytest.raises(ValueError, match=message) as caught:
            change()
        assert "\n" not in str(caught.value)
    assert session.tracker.enrolled == ["Ana"] and session.settings == LiveSettings(max_motion=0.5)


def test_an_analysis_crash_is_reported_and_analysis_restarts_on_the_same_capture():
    session = LiveSession(Synthetic(n=10**9, interval=0.003), FakeAnalyser(fail_at=5))
    results = []
    session.subscribe(lambda result, frame: results.append(result.index))
    session.start()
    try:
        assert session.worker.wait(timeout=10)
        assert session.status().error == "backend fell over"  # one line
        assert session.status().state == "running"  # capture goes on
        before = session.analysed
        session.restart_analysis()
        deadline = time.monotonic() + 10
        while session.analysed < before + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert session.analysed >= before + 5 and session.worker.error is None
        assert results == sorted(results) and max(results) > 5
    finally:
        session.stop()


def test_a_source_that_cannot_open_raises_one_line_at_start(tmp_path):
    session = LiveSession(str(tmp_path / "missing.mp4"), FakeAnalyser())
    with pytest.raises(OSError, match="missing.mp4: no such video file"):
        session.start()
    session.stop()


def test_markers_carry_the_capture_clocks_and_the_newest_frame():
    session = LiveSession(Synthetic(n=10**9, interval=0.002), None)  # record-only: no analysis
    session.start()
    try:
        time.sleep(0.2)
        before, before_wall = time.monotonic_ns(), time.time_ns()
        marker = session.mark("stimulus on")
        assert before <= marker.t_monotonic_ns <= time.monotonic_ns()
        assert before_wall <= marker.t_wall_ns <= time.time_ns() and marker.t_lsl is None
        assert 0 <= marker.frame < session.capture.frames and marker.origin == "code"
        assert session.markers == [marker]
    finally:
        session.stop()
    assert session.status().analysed == 0


def test_live_session_is_exported():
    import realtime_feat

    assert realtime_feat.LiveSession is LiveSession and realtime_feat.SessionStatus.__name__ == "SessionStatus"
