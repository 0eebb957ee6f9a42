"""Several cameras in one session (MultiSession): one shared analyser taking each camera's newest frame
in turn, one clock, one folder with a subfolder per camera; a lost camera while the others go on; a
killed two-camera recording; camera modes with a stand-in for OpenCV's capture object."""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realtime_feat.live.live_session import LivePipeline, LiveSession
from realtime_feat.live.multi_session import MultiSession
from realtime_feat.live.worker import LiveSettings
from realtime_feat.review.recorded_session import load_session
from test_recorder import BreakingEncoder, decode, record_then_kill
from test_session import FakeAnalyser, People, Synthetic, eventually


def write_video(path: Path, fps: int, n: int, size=(48, 64)) -> Path:
    """`n` frames at `fps` (constant rate), pixels carrying the frame's number."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        for i in range(n):
            image = av.VideoFrame.from_ndarray(np.full((*size, 3), (i * 5) % 256, np.uint8), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory):
    """Two files at different rates: 24 fps (48 frames) and 30 fps (60 frames), two seconds each."""
    folder = tmp_path_factory.mktemp("videos")
    return write_video(folder / "left.mp4", 24, 48), write_video(folder / "right.mp4", 30, 60)


# -- the fair scheduler ----------------------------------------------------------------------------

class Busy:
    """A worker whose source always has a new frame (each step puts the next one): the scheduler's
    choice alone decides who is served."""

    def __init__(self, name, order, fresh=True):
        from realtime_feat.capture.capture_thread import LatestSlot
        from realtime_feat.types import Frame

        self.name, self.order, self.fresh, self.last = name, order, fresh, -1
        self.done = threading.Event()
        self.slot, self.Frame = LatestSlot(), Frame
        if fresh:
            self._put(0)

    def _put(self, index):
        self.slot.put(self.Frame(np.zeros((2, 2, 3), np.uint8), index, index, index))

    def step(self, frame):
        self.last = frame.index
        self.order.append(self.name)
        self._put(frame.index + 1)

    def finish(self):
        self.done.set()


def test_one_analysis_thread_serves_the_cameras_in_turn_none_starved():
    from realtime_feat.live.scheduler import AnalysisThread

    order: list[str] = []
    workers = [Busy("a", order), Busy("b", order), Busy("idle", order, fresh=False), Busy("c", order)]
    thread = AnalysisThread(workers, until_done=False).start()
    try:
        assert eventually(lambda: len(order) >= 60)
    finally:
        thread.stop()
    assert not thread.alive and thread.error is None
    first = order[:60]
    assert first == ["a", "b", "c"] * 20  # round robin over the cameras that have a frame; one without waits
    assert all(w.done.is_set() for w in workers)  # the thread's end finishes its workers


def test_a_job_for_the_analysis_thread_runs_there_and_its_outcome_comes_back():
    """What else uses the shared analyser (a camera's warm-up) runs on the analysis thread between two
    frames; before the thread starts, and after it ended, on the caller's."""
    from realtime_feat.live.scheduler import AnalysisThread

    order: list[str] = []
    thread = AnalysisThread([Busy("a", order)], until_done=False)
    assert thread.call(lambda: threading.current_thread()) is threading.current_thread()
    thread.start()
    try:
        assert eventually(lambda: len(order) >= 3)
        assert thread.call(lambda: threading.current_thread().name) == "analysis"
        with pytest.raises(ZeroDivisionError):  # the job's error is the caller's
            thread.call(lambda: 1 / 0)
        served = len(order)
        assert eventually(lambda: len(order) > served) and thread.error is None  # and analysis goes on
    finally:
        thread.stop()
    assert not thread.alive and thread.call(lambda: threading.current_thread()) is threading.current_thread()


class Loop(Synthetic):
    """A camera showing `images` over and over, ~30 frames a second."""

    def __init__(self, images, id):
        super().__init__(n=10**9, interval=0.033)
        self.images, self.id = images, id

    def read(self):
        i = self.i
        return None if super().read() is None else self.images[i % len(self.images)]


@pytest.mark.slow
def test_a_camera_added_and_removed_while_two_are_analysed_leaves_openvino_to_the_analysis_thread(
        tmp_path, weights_dir, sample_data, pinned_wheel):
    """Fault: "Add camera…" warmed the shared analyser up on the caller's thread while the analysis thread
    ran it (OpenVINO keeps one infer request per model: it raises, or outputs mix). A third camera, at
    another frame size, is added and removed four times while two cameras are analysed: every analyser
    call runs on the one analysis thread, nothing fails, and each result equals its frame analysed alone."""
    import av

    from realtime_feat.analysis.analyser import Analyser
    from realtime_feat.engines import available_backends
    from realtime_feat.engines.fast_detector import available

    why = available_backends()["openvino"] or available()
    if why:
        pytest.skip(why)
    analyser = Analyser("openvino", detector="fast", identity=False, weights_dir=weights_dir)
    with av.open(str(sample_data / "WolfgangLanger_Pexels.mp4")) as container:
        faces = [f.to_ndarray(format="rgb24") for _, f in zip(range(48), container.decode(video=0))]
    cameras = [Loop(faces, f"camera:{i}") for i in (1, 2)]  # they run until stopped, however slow
    third = write_video(tmp_path / "third.mp4", 30, 30, size=(120, 160))
    # a detection on every frame: each result depends on its frame alone, as a single-thread run's
    session = MultiSession(cameras, analyser, settings=LiveSettings(redetect_every=1))
    results = {name: [] for name in session.cameras}
    for name, camera in session.cameras.items():
        camera.subscribe(lambda result, frame, got=results[name]: got.append((result, frame)))
    session.start()
    callers = set()
    for method in ("analyse", "analyse_boxes"):  # warm_up calls these too
        real = getattr(analyser, method)
        setattr(analyser, method, lambda *a, real=real, **k: (callers.add(threading.current_thread().name),
                                                              real(*a, **k))[1])
    try:
        assert eventually(lambda: all(any(r.n_faces for r, _ in got) for got in results.values()), timeout=120)
        for _ in range(4):
            session.remove_camera(session.add_camera(str(third)))
        status = session.status()
    finally:
        session.stop()
    del analyser.analyse, analyser.analyse_boxes
    assert callers == {"analysis"}
    assert status.error is None and session.analysis_error is None and not session.sink_failures
    assert all(s.state == "running" for s in status.cameras.values())  # analysed all along
    alone_of = {}  # the cameras show the same images over and over: each analysed alone once
    for pairs in results.values():
        for result, frame in pairs:
            key = frame.image.tobytes()
            if key not in alone_of:
                (alone_of[key],) = analyser.analyse([frame])
            alone = alone_of[key]
            assert np.allclose(result.detections.xyxy, alone.detections.xyxy, atol=1e-4)
            for field in ("face_rect", "au", "emotions", "va", "gaze", "pose", "landmarks68"):
                assert np.allclose(getattr(result.faces, field), getattr(alone.faces, field), atol=1e-4), field


@pytest.mark.parametrize("several", [False, True], ids=["one camera", "two cameras"])
def test_one_camera_and_several_are_driven_alike_through_the_live_pipeline(tmp_path, several):
    """The CLI and the app hold no type checks between LiveSession and MultiSession: the same code
    records, names a person, changes the threshold and settings, marks, reads status and stops either."""
    analyser = People(n=2)
    sources = [Synthetic(n=10**9, interval=0.005, size=(48, 160)) for _ in range(1 + several)]
    for i, source in enumerate(sources):
        source.id = f"camera:{i}"
    session = MultiSession(sources, analyser) if several else LiveSession(sources[0], analyser)
    assert isinstance(session, LivePipeline)

    def named(camera):
        ids = [t.track_id for t in camera.tracker.tracks if t.track_id > 0]
        return "Ana" in camera.tracker.identities(ids)[0]

    folder = session.start_recording(tmp_path, "alike")
    session.start()
    try:
        cameras = session.cameras
        assert [c.source for c in cameras.values()] == sources
        session.enrol("Ana", analyser.embeddings[0])
        session.set_threshold(0.4)
        assert session.update_settings(redetect_every=2) is session.settings
        assert eventually(lambda: all(named(c) for c in cameras.values()))
        assert eventually(lambda: all(c.worker.settings.redetect_every == 2 for c in cameras.values()))
        marker = session.mark("stimulus on")
        status = session.status()
        assert list(status.cameras) == list(cameras) and status.lost == {} and status.error is None
        assert all(s.state == "running" and s.analysed > 0 for s in status.cameras.values())
        assert status.recording == folder and session.recording
        assert session.stop_recording() == folder
        assert not session.recording and session.status().recording is None
    finally:
        session.stop()
    assert session.analysis_error is None and not session.sink_failures and session.essential_failure is None
    assert analyser.decoder.threshold == 0.4 and session.markers == [marker]
    for sub in [folder / name for name in cameras] if several else [folder]:  # DESIGN.md's layouts
        assert list(pd.read_csv(sub / "markers.csv")["label"]) == ["stimulus on"]
        assert json.loads((sub / "metadata.json").read_text())["complete"]


class Stuck(Busy):
    """A worker whose first frame's analysis never returns (until `release`): a hung backend."""

    def __init__(self, name, order):
        super().__init__(name, order)
        self.entered, self.release = threading.Event(), threading.Event()

    def step(self, frame):
        self.entered.set()
        self.release.wait(60)
        super().step(frame)


def test_taking_cameras_off_a_hung_analysis_returns_after_its_timeout(caplog):
    """remove() waited for the frame in analysis without end: a hung backend kept `record` from ending."""
    from realtime_feat.live.scheduler import AnalysisThread

    order: list[str] = []
    stuck, other = Stuck("stuck", order), Busy("other", order)
    thread = AnalysisThread([stuck, other], until_done=False).start()
    removed = []
    try:
        assert stuck.entered.wait(30)
        remover = threading.Thread(target=lambda: removed.extend(
            [thread.remove(other, timeout=1.0), thread.remove(stuck, timeout=1.0)]), daemon=True)
        remover.start()
        remover.join(30)  # the hang guard: a remove() that waits for the hung frame fails here
        assert removed == [False, False] and other.done.is_set() and stuck.done.is_set()
    finally:
        stuck.release.set()
        thread.stop()
    # said once for each camera taken off
    assert caplog.text.count("analysis gave no result in 1 s (hung?): its source was taken off without it") == 2


def test_a_job_for_a_hung_analysis_thread_is_dropped_after_its_timeout():
    """A camera added while analysis hangs: its warm-up is never taken, so "Add camera…" ends in one line
    (and the app can close) instead of waiting for ever; the job does not run later."""
    from realtime_feat.live.scheduler import AnalysisThread

    stuck = Stuck("stuck", [])
    thread = AnalysisThread([stuck], until_done=False).start()
    ran = []
    try:
        assert stuck.entered.wait(30)
        with pytest.raises(TimeoutError, match=r"^the analysis thread took no job in 1 s \(is an analysis hung\?\)$"):
            thread.call(lambda: ran.append(1), timeout=1.0)
        stuck.release.set()
        assert thread.call(lambda: "after") == "after"
    finally:
        stuck.release.set()
        thread.stop()
    assert ran == []


# -- two files at different rates, recorded together -------------------------------------------

def test_two_files_at_24_and_30_fps_recorded_together_on_one_clock(tmp_path, two_videos):
    """Every frame of each file is in its camera's video and frames.csv, stamps increase per camera and
    interleave on the one clock, both cameras are analysed by the one analyser, a marker lands in both
    timelines, and load_session reads the folder back with a camera column."""
    left, right = two_videos
    analyser = FakeAnalyser(cost=0.01)
    calls = []
    analyse = analyser.analyse
    analyser.analyse = lambda frames: (calls.append(threading.get_ident()), analyse(frames))[1]
    session = MultiSession([str(left), str(right)], analyser)
    assert list(session.cameras) == ["left", "right"]
    folder = session.start_recording(tmp_path, label="two")
    session.start()
    time.sleep(1.0)
    marker = session.mark("stimulus on")
    assert session.wait(timeout=60)
    session.stop()
    assert len(set(calls)) == 1  # one analysis thread: the analyser never runs on two at once

    status = session.status()
    assert status.error is None and status.lost == {}
    stamps = {}
    for name, n in (("left", 48), ("right", 60)):
        s = status.cameras[name]
        assert s.state == "ended" and s.captured == n and s.analysed > 0 and s.analysed + s.skipped == n
        sub = folder / name
        frames = pd.read_csv(sub / "frames.csv")
        assert list(frames["frame"]) == list(range(n)) and (frames["in_video"] == 1).all()
        ns = (frames["t_monotonic"] * 1e9).round().astype(np.int64).to_numpy()
        assert (np.diff(ns) > 0).all()
        stamps[name] = ns
        pts, images = decode(sub / "video.mp4")
        assert len(pts) == n and pts == [round(t * 1e6) for t in frames["video_time"]]
        assert np.allclose([img[0, 0, 0] for img in images[:3]], [0, 5, 10], atol=3)  # the file's frames, in order
        meta = json.loads((sub / "metadata.json").read_text())  # each subfolder: a complete one-camera session
        assert meta["complete"] and meta["counts"]["encoded"] == n and meta["source"]["id"] == str(two_videos[name == "right"])
        mine = pd.read_csv(sub / "markers.csv")
        assert list(mine["label"]) == ["stimulus on"] and mine["frame"][0] == marker_frame(frames, marker)
    # one clock: the cameras' stamps overlap in time and interleave all along
    both = np.concatenate([stamps["left"], stamps["right"]])
    cams = np.array([0] * 48 + [1] * 60)[np.argsort(both, kind="stable")]
    assert (np.diff(cams) != 0).sum() > 40

    top = pd.read_csv(folder / "markers.csv")
    assert list(top.columns) == ["label", "origin", "t_monotonic", "t_wall", "t_lsl", "frame_left", "frame_right"]
    assert top["t_monotonic"][0] == pytest.approx(marker.t_monotonic_ns / 1e9, abs=1e-9)
    for name in ("left", "right"):
        assert top[f"frame_{name}"][0] == pd.read_csv(folder / name / "markers.csv")["frame"][0]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["complete"] and meta["ended"] == "stopped" and meta["layout"] == "one subfolder per camera"
    assert [(c["name"], c["folder"], c["complete"]) for c in meta["cameras"]] == [("left", "left", True),
                                                                                 ("right", "right", True)]
    assert meta["cameras"][0]["source"]["frame_size"] == [48, 64] and "versions" in meta and "source" not in meta

    loaded = load_session(folder)
    assert loaded.complete and list(loaded.cameras) == ["left", "right"] and loaded.video is None
    assert loaded.frames.columns[0] == "camera" and loaded.frames.groupby("camera").size().to_dict() == {
        "left": 48, "right": 60}
    assert type(loaded.fex).__name__ == "Fex" and loaded.fex.columns[0] == "camera"
    assert len(loaded.fex) == status.cameras["left"].analysed + status.cameras["right"].analysed
    assert loaded.cameras["right"].video == folder / "right" / "video.mp4" and len(loaded.markers) == 1

    from realtime_feat.offline.jobs import jobs_for

    jobs = jobs_for([folder], [])  # `process SESSION_DIR`: one CSV per camera, on its capture clocks
    assert [(j.name, j.session) for j in jobs] == [(f"{folder.name}_left", folder / "left"),
                                                   (f"{folder.name}_right", folder / "right")]


def marker_frame(frames: pd.DataFrame, marker) -> int:
    """The newest frame captured when `marker` came, from frames.csv's stamps."""
    return int(frames.loc[frames["t_monotonic"] * 1e9 <= marker.t_monotonic_ns + 1, "frame"].max())


# -- a camera lost while the other goes on --------------------------------------------------------

class Drops(Synthetic):
    """A live camera (reopenable) that delivers nothing for `lost_s` seconds after frame `at`."""

    reopenable = True

    def __init__(self, at, lost_s, **kw):
        super().__init__(**kw)
        self.id, self.at, self.lost_s, self.until = "camera:7", at, lost_s, None

    def open(self):
        if self.until is None:  # reopened after the loss, it goes on where it was
            super().open()

    def read(self):
        if self.i == self.at and self.until is None:
            self.until = time.monotonic() + self.lost_s
        if self.until is not None and time.monotonic() < self.until:
            time.sleep(0.01)
            return None
        return super().read()


def test_one_camera_lost_mid_session_the_other_goes_on(tmp_path):
    """Fault: camera7 delivers nothing for 2 s; the other camera is captured, analysed and recorded
    throughout, the loss is one line in status().lost, and camera7 comes back into the same recording."""
    lost = Drops(at=20, lost_s=2.0, n=120, interval=0.01)
    steady = Synthetic(n=10**9, interval=0.01)
    session = MultiSession([lost, steady], FakeAnalyser(cost=0.005))
    names = list(session.cameras)
    assert names == ["camera7", "synthetic"]
    folder = session.start_recording(tmp_path)
    session.start()
    try:
        assert eventually(lambda: session.status().cameras["camera7"].state == "lost")
        before = session.status().cameras["synthetic"]
        assert session.status().lost == {"camera7": "camera7 lost (camera:7 delivers no frame); the other cameras go on"}
        time.sleep(0.8)
        during = session.status()
        assert during.cameras["camera7"].state == "lost" and during.error is None
        assert during.cameras["synthetic"].captured > before.captured + 20
        assert during.cameras["synthetic"].analysed > before.analysed + 10
        assert eventually(lambda: session.status().cameras["camera7"].state == "ended")
        assert session.status().lost == {}
    finally:
        session.stop()
    (gap,) = session.cameras["camera7"].gaps
    assert gap.end_ns - gap.start_ns >= 1.9e9 and session.cameras["synthetic"].gaps == []
    for name in names:
        frames = pd.read_csv(folder / name / "frames.csv")
        assert list(frames["frame"]) == list(range(len(frames))) and (frames["in_video"] == 1).all()
        assert len(decode(folder / name / "video.mp4", images=False)[0]) == len(frames)
    assert len(pd.read_csv(folder / "camera7" / "frames.csv")) == 120
    assert json.loads((folder / "metadata.json").read_text())["complete"]


def test_a_multisession_with_one_camera_records_the_one_camera_layout(tmp_path, two_videos):
    """The app keeps a MultiSession when cameras are removed down to one: its recording is then today's
    flat folder, which today's load_session reads."""
    left, _ = two_videos
    session = MultiSession([str(left)], FakeAnalyser())
    folder = session.start_recording(tmp_path)
    session.start()
    assert session.status().recording == folder and session.recording
    assert session.wait(timeout=60)
    session.stop()
    assert sorted(p.name for p in folder.iterdir()) == ["fex.arrays", "fex.csv", "frames.csv", "markers.csv",
                                                        "metadata.json", "video.mp4"]
    loaded = load_session(folder)
    assert loaded.cameras == {} and len(loaded.frames) == 48 and loaded.video == folder / "video.mp4"


# -- people, sources, changes ---------------------------------------------------------------------

def test_an_enrolled_person_is_named_in_every_camera_even_one_added_later():
    from realtime_feat.analysis.tracking import FaceTracker

    analyser = People(n=2)
    a, b = Synthetic(n=10**9, interval=0.005, size=(48, 160)), Synthetic(n=10**9, interval=0.007, size=(48, 160))
    a.id, b.id = "/lab/left/synthetic.mp4", "/lab/right/synthetic.mp4"
    session = MultiSession([a, b], analyser, tracker_factory=FaceTracker)
    assert list(session.cameras) == ["synthetic", "synthetic-2"]  # the same stem twice: the second is numbered
    session.start()
    try:
        session.enrol("Ana", analyser.embeddings[0])
        session.set_threshold(0.4)
        session.update_settings(redetect_every=2)

        def named(camera):
            ids = [t.track_id for t in camera.tracker.tracks if t.track_id > 0]
            return "Ana" in camera.tracker.identities(ids)[0]

        assert eventually(lambda: all(named(c) for c in session.cameras.values()))
        third = Synthetic(n=10**9, interval=0.006, size=(48, 160))
        third.id = "camera:3"
        assert session.add_camera(third) == "camera3"
        assert eventually(lambda: named(session.cameras["camera3"]))
        assert eventually(lambda: all(c.worker.settings.redetect_every == 2 for c in session.cameras.values()))
        session.remove_camera("synthetic-2")
        assert list(session.cameras) == ["synthetic", "camera3"]
        with pytest.raises(ValueError, match="camera:3: the same source is given twice"):
            session.add_camera(third)
    finally:
        session.stop()
    assert analyser.decoder.threshold == 0.4 and analyser.changed_mid_frame == 0


def test_the_same_source_twice_or_one_that_cannot_open_starts_nothing(tmp_path, two_videos):
    left, _ = two_videos
    with pytest.raises(ValueError, match=r"left.mp4: the same source is given twice \(as .*left.mp4 before\)"):
        MultiSession([str(left), os.path.relpath(left)], FakeAnalyser())
    session = MultiSession([str(left), str(tmp_path / "missing.mp4")], FakeAnalyser())
    with pytest.raises(OSError, match="missing.mp4: no such video file"):
        session.start()
    assert session.cameras["left"].capture.state == "stopped" and not session.analysis.alive


def test_cli_refuses_a_source_twice_and_one_that_cannot_open_in_one_line(capsys, tmp_path, two_videos):
    from realtime_feat.cli import main

    left, right = two_videos
    out = tmp_path / "sessions"
    assert main(["record", "--source", str(left), "--source", str(left), "--out", str(out), "--no-analysis"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"realtime-feat: error: {left}: the same source is given twice")
    assert main(["record", "--source", str(left), "--source", str(tmp_path / "nope.mp4"), "--out", str(out),
                 "--no-analysis"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"realtime-feat: error: {tmp_path / 'nope.mp4'}: no such video file"
    assert not out.exists()  # nothing started
    assert main(["live", "--source", str(left), "--source", str(right), "-o", str(tmp_path / "x.csv")]) == 2
    assert "2 sources give 2 CSV files: pass a folder to -o" in capsys.readouterr().err


def test_record_two_sources_from_the_command_line(capsys, tmp_path, two_videos):
    from realtime_feat.cli import main

    left, right = two_videos
    assert main(["record", "--source", str(left), "--source", str(right), "--out", str(tmp_path), "--lsl",
                 "--no-analysis"]) == 0
    err = capsys.readouterr().err
    (folder,) = tmp_path.iterdir()
    assert "left: 48 frames captured" in err and "right: 60 frames captured" in err
    assert f"recorded 48 frames (48 in the video, 0 dropped by the encoder queue) and 0 marker(s) to {folder / 'left'}" in err
    assert "   right: " in err  # a status line per camera
    session = load_session(folder)
    assert session.complete and session.frames.groupby("camera").size().to_dict() == {"left": 48, "right": 60}
    assert session.metadata["lsl"]["outlets"] is True


def test_a_camera_whose_recording_fails_is_named_and_the_other_records_to_its_end(capsys, tmp_path, monkeypatch):
    """Fault: in `record` with two cameras, the second's video encoder fails on its 20th frame. That
    camera is detached and named in one line while the first records on to its file's end; the command
    ends with exit 1 naming it."""
    from realtime_feat.recording import recorder
    from realtime_feat.cli import main

    left, right = write_video(tmp_path / "left.mp4", 24, 96), write_video(tmp_path / "right.mp4", 30, 60)
    real_open_video = recorder.Recorder._open_video

    def open_video(self, frame):
        real_open_video(self, frame)
        if self.folder.name == "right":
            self._stream = BreakingEncoder(self._stream, at=20)

    monkeypatch.setattr(recorder.Recorder, "_open_video", open_video)
    out = tmp_path / "sessions"
    assert main(["record", "--source", str(left), "--source", str(right), "--out", str(out), "--no-analysis"]) == 1
    err = capsys.readouterr().err
    (folder,) = out.iterdir()
    cameras = {c["name"]: c for c in json.loads((folder / "metadata.json").read_text())["cameras"]}
    why = cameras["right"]["error"]
    assert why.startswith("recording stopped: the video encoder libx264 failed")
    assert cameras["left"]["complete"] and not cameras["right"]["complete"]
    frames = pd.read_csv(folder / "left" / "frames.csv")  # the other camera: every frame, to its end
    assert list(frames["frame"]) == list(range(96)) and (frames["in_video"] == 1).all()
    assert [line for line in err.splitlines() if why in line] == [f"realtime-feat: right: {why}",
                                                                  f"realtime-feat: error: right: {why}"]
    assert len(decode(folder / "left" / "video.mp4", images=False)[0]) == 96
    assert json.loads((folder / "left" / "metadata.json").read_text())["complete"]
    assert 0 < len(pd.read_csv(folder / "right" / "frames.csv")) < 60  # what it wrote stays


# -- LSL: outlets per camera -----------------------------------------------------------------------

def test_each_camera_has_its_own_frame_marker_stream_on_the_one_lsl_clock(tmp_path):
    pylsl = pytest.importorskip("pylsl", reason="pylsl not installed (pip install 'realtime-feat[lsl]')")
    from test_lsl import OneFace

    a, b = Synthetic(n=10**9, interval=0.006), Synthetic(n=10**9, interval=0.009)
    a.id, b.id = "camera:11", "camera:12"
    session = MultiSession([a, b], OneFace(), lsl=True)
    folder = session.start_recording(tmp_path)
    session.start()
    got = {}
    try:
        for name in ("camera11", "camera12"):
            (info,) = pylsl.resolve_byprop("name", f"realtime-feat {name} frames", 1, 20)
            (data,) = pylsl.resolve_byprop("name", f"realtime-feat {name} face data", 1, 20)
            assert info.source_id() == f"realtime-feat:realtime-feat {name}:frames" and data.channel_count() == 39
            inlet = pylsl.StreamInlet(info)
            inlet.open_stream(10)
            samples = []
            deadline = time.monotonic() + 30
            while len(samples) < 30 and time.monotonic() < deadline:
                chunk, stamps = inlet.pull_chunk(timeout=0.1)
                samples += zip(chunk, stamps)
            got[name] = samples
    finally:
        session.stop()
    for name, samples in got.items():
        table = pd.read_csv(folder / name / "frames.csv").set_index("frame")
        indices = [int(s[0]) for s, _ in samples]
        assert len(indices) >= 30 and indices == list(range(indices[0], indices[0] + len(indices)))
        for (index,), stamp in samples:  # LabRecorder lines each video up by these capture stamps
            assert stamp == pytest.approx(table.loc[index, "t_lsl"], abs=1e-6)
    t11 = pd.read_csv(folder / "camera11" / "frames.csv")
    t12 = pd.read_csv(folder / "camera12" / "frames.csv")
    # one LSL clock beside the one monotonic clock, for both cameras
    for t in (t11, t12):
        offset = t["t_lsl"] - t["t_monotonic"]
        assert offset.max() - offset.min() < 0.01
    assert abs((t11["t_lsl"] - t11["t_monotonic"]).median() - (t12["t_lsl"] - t12["t_monotonic"]).median()) < 0.01


# -- a killed two-camera recording ----------------------------------------------------------------

def test_a_killed_two_camera_recording_leaves_both_folders_readable(tmp_path, weights_dir, sample_data,
                                                                    fast_analyser):
    """SIGKILL mid-recording of two cameras analysed by the one analyser: both subfolders load (py-feat's
    Fex, frames.csv whole to near the end, video decodable), and so does the session with both cameras."""
    from feat.utils.io import read_feat

    video = sample_data / "WolfgangLanger_Pexels.mp4"
    copy = shutil.copy(video, tmp_path / "second.mp4")
    # frames flow once the second camera's status line came twice
    killed_at = record_then_kill(["--source", str(video), "--source", str(copy), "--out", str(tmp_path / "out"),
                                  "--weights", str(weights_dir), "--backend", "onnxruntime"],
                                 lambda line: " second: " in line and "fps" in line, after_s=2.0)
    (folder,) = (tmp_path / "out").iterdir()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["ended"] is None and not meta["complete"] and [c["name"] for c in meta["cameras"]] == [
        "WolfgangLanger_Pexels", "second"]
    for name in ("WolfgangLanger_Pexels", "second"):
        sub = folder / name
        frames = pd.read_csv(sub / "frames.csv")
        assert len(frames) > 20 and list(frames["frame"]) == list(range(len(frames)))
        # a bound in seconds, as in test_recorder's kill test: what a kill may cost is time
        assert killed_at - frames["t_monotonic"].iloc[-1] < 5.0
        analysed = frames[frames["analysed"] == 1]
        assert len(read_feat(str(sub / "fex.csv"))) >= len(analysed) > 0
        pts, _ = decode(sub / "video.mp4", cut_off=True, images=False)
        assert len(pts) > 20
    markers = pd.read_csv(folder / "markers.csv")
    assert list(markers["label"]) == ["stimulus on"]
    assert (markers[["frame_WolfgangLanger_Pexels", "frame_second"]].to_numpy() >= 0).all()
    session = load_session(folder)
    assert not session.complete and set(session.frames["camera"]) == {"WolfgangLanger_Pexels", "second"}


# -- camera modes, with a stand-in for OpenCV's capture object -------------------------------------

class StubCapture:
    """OpenCV's VideoCapture as a V4L2 webcam behaves: the sizes and rates on offer depend on the pixel
    format; a size or rate not offered gives the nearest; `deliver_fps` paces grab() (a dim room makes
    a camera slower than its mode says); retrieve() takes `decode_s` (MJPEG decoded on a loaded CPU).
    `grabbed_ns` and `decoding_ns` note, per frame, when grab() returned and when retrieve() began."""

    OFFERS = {"YUYV": {(640, 480): 30.0, (1280, 720): 10.0}, "MJPG": {(640, 480): 30.0, (1280, 720): 30.0}}

    def __init__(self, index, offers=None, deliver_fps=None, decode_s=0.0):
        import cv2

        self.cv2, self.offers, self.deliver_fps, self.decode_s = cv2, offers or self.OFFERS, deliver_fps, decode_s
        self.fourcc, (self.width, self.height) = "YUYV", (640, 480)
        self.fps = self.offers[self.fourcc][(self.width, self.height)]
        self.calls, self.next_at = [], None
        self.grabbed_ns, self.decoding_ns = [], []

    def isOpened(self):
        return True

    def set(self, prop, value):
        cv2 = self.cv2
        self.calls.append(prop)
        if prop == cv2.CAP_PROP_FOURCC:
            code = int(value)
            text = "".join(chr((code >> 8 * i) & 0xFF) for i in range(4))
            if text in self.offers:
                self.fourcc = text
        elif prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
            want = value if prop == cv2.CAP_PROP_FRAME_WIDTH else None
            sizes = list(self.offers[self.fourcc])
            if want is not None:
                self.width, self.height = min(sizes, key=lambda s: abs(s[0] - want))
        elif prop == cv2.CAP_PROP_FPS:
            self.fps = min(value, self.offers[self.fourcc].get((self.width, self.height), 30.0))
            return True
        self.fps = min(self.fps, self.offers[self.fourcc].get((self.width, self.height), 30.0)) or self.fps
        return True

    def get(self, prop):
        cv2 = self.cv2
        return {cv2.CAP_PROP_FOURCC: float(cv2.VideoWriter.fourcc(*self.fourcc)), cv2.CAP_PROP_FRAME_WIDTH: self.width,
                cv2.CAP_PROP_FRAME_HEIGHT: self.height, cv2.CAP_PROP_FPS: self.fps}[prop]

    def grab(self):
        if self.deliver_fps:
            now = time.monotonic()
            self.next_at = (self.next_at or now) + 1 / self.deliver_fps
            time.sleep(max(0.0, self.next_at - now))
        self.grabbed_ns.append(time.monotonic_ns())
        return True

    def retrieve(self):
        self.decoding_ns.append(time.monotonic_ns())
        time.sleep(self.decode_s)
        return True, np.zeros((self.height // 8, self.width // 8, 3), np.uint8)

    def read(self):  # as OpenCV's: grab, then retrieve
        return self.retrieve() if self.grab() else (False, None)

    def release(self):
        pass


def test_mjpeg_is_asked_first_and_the_mode_the_driver_gave_is_recorded(tmp_path):
    import cv2

    from realtime_feat.live.live_session import LiveSession
    from realtime_feat.capture.sources import CameraSource

    made = []
    camera = CameraSource(0, 1280, 720, 30, capture=lambda i: made.append(StubCapture(i)) or made[-1])
    session = LiveSession(camera, None)
    folder = session.start_recording(tmp_path)
    session.start()
    try:
        assert eventually(lambda: session.capture.frames > 3)
        assert session.status().mode == "MJPG 1280×720 @ 30 fps" and camera.mode_note is None
    finally:
        session.stop()
    assert made[-1].calls[0] == cv2.CAP_PROP_FOURCC  # the format first: it decides the sizes and rates
    mode = json.loads((folder / "metadata.json").read_text())["source"]["mode"]
    assert mode == {"fourcc": "MJPG", "width": 1280, "height": 720, "fps": 30.0}


def test_a_frame_is_stamped_when_grabbed_before_its_slow_decoding():
    """The capture stamp is when grab() returned, not after retrieve() decoded: the stub's decoding takes
    0.2 s, and every stamp lies between the grab's return and the decoding's start (no speed involved)."""
    from realtime_feat.capture.capture_thread import CaptureThread
    from realtime_feat.capture.sources import CameraSource

    stub = StubCapture(0, decode_s=0.2)
    capture = CaptureThread(CameraSource(0, capture=lambda i: stub))
    sub = capture.subscribe("stamps")
    capture.start()
    try:
        assert eventually(lambda: capture.frames >= 3)
    finally:
        capture.stop()
    frames = list(sub.queue.queue)
    assert [f.index for f in frames] == list(range(len(frames))) and len(frames) >= 3
    for f in frames:  # frame k is the stub's k-th grab
        assert stub.grabbed_ns[f.index] <= f.t_monotonic_ns <= stub.decoding_ns[f.index]


def test_a_camera_without_mjpeg_gives_its_own_mode_said_in_one_line(caplog):
    from realtime_feat.capture.sources import CameraSource

    camera = CameraSource(2, 1280, 720, 30, capture=lambda i: StubCapture(i, offers={"YUYV": StubCapture.OFFERS["YUYV"]}))
    camera.open()
    camera.close()
    assert str(camera.mode) == "YUYV 1280×720 @ 10 fps"
    assert camera.mode_note == ("camera 2: asked for MJPG, 30 fps, the driver gave YUYV 1280×720 @ 10 fps "
                                "(`realtime-feat cameras` lists its modes)")
    assert caplog.text.count("asked for MJPG") == 1
    camera.open()  # reopened after a loss: not said again
    assert caplog.text.count("asked for MJPG") == 1
    made = []
    untouched = CameraSource(0, fourcc=None, capture=lambda i: made.append(StubCapture(i)) or made[-1])
    untouched.open()
    assert made[0].calls == [] and str(untouched.mode) == "YUYV 640×480 @ 30 fps"


def test_a_camera_delivering_fewer_frames_than_asked_is_said_in_one_line():
    from realtime_feat.capture.camera_modes import RateCheck

    now = [0.0]
    check = RateCheck("camera0", 30, clock=lambda: now[0])
    frames = 0
    for second in range(10):  # 30 fps asked, 14 delivered: said once the window holds 3 s
        now[0], frames = float(second), second * 14
        line = check.observe(frames, running=True)
        assert (line is None) == (second < 3)
    assert line == ("camera0 delivers 14.0 frames/s of the 30 asked (dim light lengthens the exposure; a shared "
                    "USB bus limits the rate)")
    assert check.observe(frames, running=False) == line  # lost: not measured
    for second in range(10, 20):  # back at 30 fps: no longer said
        now[0], frames = float(second), frames + 30
        line = check.observe(frames, running=True)
    assert line is None


def test_a_slow_stub_camera_shows_in_the_session_status():
    from realtime_feat.live.live_session import LiveSession
    from realtime_feat.capture.sources import CameraSource

    camera = CameraSource(0, 640, 480, 30, capture=lambda i: StubCapture(i, deliver_fps=10))
    session = LiveSession(camera, None)
    session.start()
    try:
        # the verdict needs no speed: the stand-in never delivers more than 10 of the 30 frames/s asked
        assert eventually(lambda: session.status().slow is not None, timeout=30)
        assert session.status().slow.startswith("camera:0 delivers ")
    finally:
        session.stop()


def test_v4l2_modes_are_listed_from_the_drivers_enumeration():
    """A stand-in for the V4L2 ioctls: MJPG with discrete sizes and rates, YUYV with a stepwise size."""
    import errno

    from realtime_feat.capture import camera_modes as cm

    def code(text):
        return sum(ord(c) << 8 * i for i, c in enumerate(text))

    formats = ["MJPG", "YUYV"]
    sizes = {"MJPG": [(1, [1920, 1080]), (1, [1280, 720])], "YUYV": [(3, [640, 1280, 0, 480, 720, 0])]}
    rates = {(1920, 1080): (1, [1, 30]), (1280, 720): (1, [1, 60]), (640, 480): (1, [1, 30]),
             (1280, 720, "YUYV"): (3, [1, 10, 1, 5])}

    def ioctl(request, s):
        try:
            if request == cm.VIDIOC_ENUM_FMT:
                s.pixelformat = code(formats[s.index])
            elif request == cm.VIDIOC_ENUM_FRAMESIZES:
                kind, values = sizes[cm.fourcc_text(s.pixel_format)][s.index]
                s.type = kind
                s.u[:len(values)] = values
            elif request == cm.VIDIOC_ENUM_FRAMEINTERVALS:
                if s.index > 0:
                    raise IndexError
                fmt = cm.fourcc_text(s.pixel_format)
                kind, values = rates.get((s.width, s.height, fmt)) or rates[(s.width, s.height)]
                s.type = kind
                s.u[:len(values)] = values
        except IndexError:
            raise OSError(errno.EINVAL, "Invalid argument") from None

    assert [str(m) for m in cm.v4l2_modes(ioctl)] == [
        "MJPG 1920×1080 @ 30 fps", "MJPG 1280×720 @ 60 fps", "YUYV 640×480 @ 30 fps",
        "YUYV 1280×720 @ 10 fps", "YUYV 1280×720 @ 5 fps"]


def test_cameras_lists_each_cameras_mode_and_the_modes_it_offers(capsys, monkeypatch):
    import realtime_feat.capture.camera_modes as cm
    import realtime_feat.capture.sources as sources
    from realtime_feat.capture.camera_modes import CameraMode
    from realtime_feat.cli import main

    monkeypatch.setattr(sources, "list_cameras", lambda: [(0, 640, 480), (1, 640, 480)])
    real = sources.CameraSource
    monkeypatch.setattr(sources, "CameraSource", lambda index: real(index, capture=StubCapture))
    monkeypatch.setattr(cm, "list_modes", lambda index: [CameraMode("MJPG", 1280, 720, 30.0)] if index == 0 else None)
    assert main(["cameras"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "camera 0: 640×480; opens as MJPG 640×480 @ 30 fps", "  MJPG 1280×720 @ 30 fps",
        "camera 1: 640×480; opens as MJPG 640×480 @ 30 fps",
        "  modes on offer: this platform does not tell (ask for one with --fourcc, --width, --height, --fps)"]
