"""The app with several cameras (offscreen): a grid of video views each drawing its own camera's frames,
per-camera status, a banner for a lost camera while the others go on, one curve per person across
cameras, cameras added and removed; and, slow, two sample videos and a missing one through the real
pipeline into one recorded session."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("PySide6", reason="the app needs PySide6: pip install -e '.[app]'")
pytest.importorskip("pytestqt", reason="UI tests need pytest-qt")

from realtime_feat.live.multi_session import MultiStatus  # noqa: E402
from test_ui import FakeSession, make_result, window  # noqa: E402,F401  (window: the fixture)


class FakeCameras:
    """What the window uses of a MultiSession: its cameras (FakeSessions publishing from real threads)."""

    def __init__(self, names=("cam0", "cam1")):
        self.cameras = {}
        for name in names:
            self.add_camera(name)
        first = next(iter(self.cameras.values()))
        self.analyser, self.markers = first.analyser, []
        self.analysis = SimpleNamespace(error=None)
        self.lost, self.error, self.recording, self.stopped = {}, None, None, False
        self.added, self.removed = [], []

    def add_camera(self, spec):
        camera = FakeSession()
        camera.source = SimpleNamespace(id=spec)
        self.cameras[spec] = camera
        getattr(self, "added", []).append(spec)
        return spec

    def remove_camera(self, name):
        self.cameras.pop(name).stop()
        self.removed.append(name)

    def status(self):
        return MultiStatus({n: c.status() for n, c in self.cameras.items()}, self.lost, self.error, self.recording, 0.0)

    def mark(self, label):
        for camera in self.cameras.values():
            camera.mark(label)

    def stop(self):
        self.stopped = True
        for camera in self.cameras.values():
            camera.stop()


def test_a_grid_draws_each_camera_on_its_own_frames_with_a_status_line_each(window, qtbot):
    session = FakeCameras()
    window.controller.adopt(session)
    assert [p.name for p in window.panes] == ["cam0", "cam1"] and window.panes[0] is window.primary
    a = make_result(3, [[40, 40, 140, 160]], [1])
    b = make_result(5, [[20, 20, 100, 120], [150, 40, 300, 220]], [1, 2], seed=9)
    session.cameras["cam0"].publish([a])
    session.cameras["cam1"].publish([b])
    qtbot.waitUntil(lambda: all(p.view.current is not None for p in window.panes), timeout=5000)
    for pane, (result, frame) in zip(window.panes, (a, b)):
        assert np.shares_memory(pane.view.image.image, frame.image) and pane.view.current.result.index == result.index
    window.update_status()
    assert window.panes[1].title.text().startswith("cam1 · running · capture 30.0 fps · analysed 15.0 fps · dropped 0")
    assert window.stats_label.text().startswith("2 cameras | analysed 30.0 fps in all")
    # the side panels follow the camera clicked last
    window.on_face_clicked(1, window.panes[1])
    assert window.current_pane is window.panes[1] and window.selected_track == 2
    assert np.allclose(window.au_bars.values, b[0].faces.au[1])
    # one curve per person: "Ann" (track 1 in both cameras) is one curve; track 2 is cam1's own
    keys = {k for k in window.plots[0].owner if k is not None}
    assert keys == {"Ann", ("cam1", 2)}


def test_a_lost_camera_is_a_banner_while_the_others_go_on(window, qtbot):
    session = FakeCameras()
    window.controller.adopt(session)
    session.cameras["cam1"].state = "lost"
    session.lost = {"cam1": "cam1 lost (cam1 delivers no frame); the other cameras go on"}
    window.update_status()
    assert window.banner.isVisible() and window.banner.text() == session.lost["cam1"]
    assert "LOST" in window.panes[1].title.text() and "running" in window.panes[0].title.text()
    assert not window.restart_button.isVisible() and not session.stopped
    session.cameras["cam1"].state, session.lost = "running", {}
    window.update_status()
    assert not window.banner.isVisible()
    session.error, session.analysis.error = "analysis stopped: boom", RuntimeError("boom")
    window.update_status()
    assert window.banner.text() == "analysis stopped: boom" and window.restart_button.isVisible()


def test_the_controller_ranks_a_crash_over_a_failed_sink_over_a_lost_camera(qtbot):
    """No window: with several cameras the controller's banner says a crashed analysis first (a restart
    offered), then a detached sink, then a lost camera, then a camera that could not join."""
    from realtime_feat.ui.controller import AppOptions, Banner, SessionController

    controller = SessionController(AppOptions())
    session = FakeCameras()
    controller.adopt(session)
    controller._others_run("cam2: no such video file")  # as a camera that could not join says it
    session.cameras["cam1"].state, session.lost = "lost", {"cam1": "cam1 lost; the other cameras go on"}
    session.cameras["cam0"].sink_errors = ("LSL outlet 'cam0 face data': lost connection",)
    session.error, session.analysis.error = "analysis stopped: boom", RuntimeError("boom")
    assert controller.poll()[1] == Banner("analysis stopped: boom", "error", restart=True)
    session.error = session.analysis.error = None
    assert controller.poll()[1] == Banner("LSL outlet 'cam0 face data': lost connection (detached; analysis and "
                                          "recording go on)", "warning")
    session.cameras["cam0"].sink_errors = ()
    assert controller.poll()[1] == Banner("cam1 lost; the other cameras go on")
    session.cameras["cam1"].state, session.lost = "running", {}
    assert controller.poll()[1] == Banner("cam2: no such video file; the other cameras run", "warning")
    controller.close()


def test_cameras_are_added_and_removed_in_the_running_session(window, qtbot):
    session = FakeCameras()
    window.controller.adopt(session)
    window.controller._specs = {"cam0": "cam0", "cam1": "cam1"}
    window.controller.source, window.controller.more = "cam0", ("cam1",)
    assert window.controller.add_camera("cam2")
    qtbot.waitUntil(lambda: len(window.panes) == 3, timeout=5000)
    assert session.added[-1] == "cam2" and window.controller.more == ("cam1", "cam2")
    session.cameras["cam2"].publish([make_result(0, [[10, 10, 50, 50]], [4])])
    qtbot.waitUntil(lambda: window.panes[2].view.current is not None, timeout=5000)
    assert not window.controller.add_camera("cam1")  # the same source twice: refused, said in the log
    window.on_face_clicked(-1, window.panes[1])  # the camera clicked last is the one removed
    assert window.controller.remove_camera(window.current_pane.name)
    qtbot.waitUntil(lambda: len(window.panes) == 2, timeout=5000)
    assert session.removed == ["cam1"] and [p.name for p in window.panes] == ["cam0", "cam2"]
    assert window.current_pane is window.primary and window.controller.more == ("cam2",)
    window.controller.recording_path = window.sessions_dir  # while recording: refused
    assert not window.controller.add_camera("cam3") and not window.controller.remove_camera("cam2")
    window.controller.recording_path = None


@pytest.mark.slow
def test_two_sample_videos_and_a_missing_one_record_one_session(window, qtbot, fast_analyser, weights_dir,
                                                                  sample_data, tmp_path):
    """The real pipeline: the missing source is one banner line and the two others run, each in its
    pane; a recording holds both cameras; closing the window finalises it."""
    import shutil

    second = shutil.copy(sample_data / "WolfgangLanger_Pexels.mp4", tmp_path / "second.mp4")
    window.controller.update_options(weights=weights_dir, backend="onnxruntime")
    window.controller.source = str(sample_data / "WolfgangLanger_Pexels.mp4")
    window.controller.more = (str(tmp_path / "missing.mp4"), str(second))
    window.start_session()
    qtbot.waitUntil(lambda: window.session is not None and len(window.panes) == 2
                    and all(p.bridge.shown_index >= 1 for p in window.panes), timeout=180_000)
    assert window.banner.text() == f"{tmp_path / 'missing.mp4'}: no such video file; the other cameras run"
    assert window.controller.more == (str(second),)
    window.toggle_recording()
    qtbot.waitUntil(lambda: window.rec_label.text().startswith("● REC"), timeout=10_000)
    qtbot.wait(1500)
    window.marker(1)
    folder = window.controller.recording_path
    window.close()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["complete"] and [c["name"] for c in meta["cameras"]] == ["WolfgangLanger_Pexels", "second"]
    assert all(c["counts"]["captured"] == c["counts"]["encoded"] > 10 for c in meta["cameras"])
