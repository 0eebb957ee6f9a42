"""The session viewer: a recorded session's video with its recorded overlays (the live window's drawing code),
a transport bar, the timeline under it, the selected face's panels, and the people and annotation panels.
Layout and wiring only: what is shown comes from `SessionReview` (library) through `Player`; edits are one
call each on the review, which saves them (annotations.csv, identities.json); exports run off the GUI
thread."""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QInputDialog, QLabel,
                               QMessageBox, QProgressBar, QPushButton, QSlider, QSplitter, QTabWidget, QVBoxLayout,
                               QWidget)

from realtime_feat import first_line
from realtime_feat.review.annotations import Annotation
from realtime_feat.recording.fex_arrays import header_groups
from realtime_feat.review.playback import ReviewFrame, SessionReview

from . import geometry
from .bridge import Shown
from .controls import help_text
from .docked_window import DockedWindow
from .panels import FacePanel
from .player import Player
from .review_controls import SHORTCUTS, AnnotationsPanel, EpochsDialog, PeoplePanel
from .timeline import Timeline
from .video_view import OverlayOptions, VideoView

log = logging.getLogger("realtime_feat.ui")
SPEEDS = ("0.25×", "0.5×", "1×", "2×", "4×")
DEFAULT_SIGNALS = ("AU12", "valence")


class ReviewWindow(DockedWindow):
    jobDone = Signal(str)   # an export finished (or failed): one line, from its thread

    def __init__(self, session, build=None):
        super().__init__()
        self.review = SessionReview(session, build)
        self.session = session
        self.setWindowTitle(f"realtime-feat · review · {session.folder.name}")
        self.selected_track: Optional[int] = None
        self.span_from: Optional[float] = None   # an exclusion span started with [
        self.jobs: list[threading.Thread] = []
        self.player = Player(self.review, parent=self)
        self.player.shown.connect(self.on_shown)
        self.player.playingChanged.connect(
            lambda on: self.play_button.setText("❚❚  (Space)" if on else "▶  (Space)"))
        self.player.analysisGrew.connect(self.on_analysis_grew)
        self.player.failed.connect(lambda line: (self.note.setText(line), self.status.setText(line)))
        self.jobDone.connect(self.on_job_done)

        self.video = VideoView()
        self.video.faceClicked.connect(self.on_face_clicked)
        self.note = QLabel("")
        self.note.setStyleSheet("color:#ffcc66;padding:2px")
        self.play_button = QPushButton("▶  (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.scrub = QSlider(Qt.Horizontal, minimum=0, maximum=max(len(self.review) - 1, 0))
        self.scrub.valueChanged.connect(self._scrubbed)
        self.time_label = QLabel("")
        self.speed = QComboBox()
        self.speed.addItems(SPEEDS)
        self.speed.setCurrentText("1×")
        self.speed.currentTextChanged.connect(lambda text: self.player.set_speed(float(text.rstrip("×"))))
        transport = QHBoxLayout()
        for widget, stretch in ((self.play_button, 0), (self.scrub, 1), (self.time_label, 0), (self.speed, 0)):
            transport.addWidget(widget, stretch)
        top = QWidget()
        tl = QVBoxLayout(top)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.note)
        tl.addWidget(self.video, 1)
        tl.addLayout(transport)
        self.timeline = Timeline(n_plots=2)
        self.timeline.seekRequested.connect(self.seek_time)
        self.timeline.spanDrawn.connect(lambda a, b: self.add_exclusion(a, b))
        self.timeline.annotationMoved.connect(self.move_annotation)
        self.timeline.annotationClicked.connect(lambda i: self.annotations.select(i))
        split = QSplitter(Qt.Vertical)
        split.addWidget(top)
        split.addWidget(self.timeline)
        split.setSizes([620, 330])
        self.setCentralWidget(split)

        names = header_groups(session.folder / "fex.csv")
        self.face_panel = FacePanel(names)
        self._dock("Selected face", self.face_panel, Qt.RightDockWidgetArea)
        self._build_left()
        self.progress = QProgressBar(maximum=100)
        self.progress.setFormat("reading fex.csv once: %p %")
        self.progress.setMaximumWidth(260)
        self.status = QLabel("")
        self.statusBar().addWidget(self.status, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self._add_shortcuts(SHORTCUTS, Qt.WindowShortcut)

        self.timeline.set_duration(self.review.duration)
        self.timeline.set_spans(self.review.spans())
        markers = self.review.markers()
        self.timeline.set_markers(markers["t"].to_numpy(), markers["label"].tolist())
        self.refresh_annotations()
        self.shown_position = -1
        self.plotted = False      # whole-session plots asked for: after the first frame is on screen, not before
        self.plots_drawn = False  # and drawn (once all of fex.csv is read)
        self.player.seek(0)

    # -- layout ---------------------------------------------------------------------------------------------

    def _build_left(self) -> None:
        view = QWidget()
        grid = QGridLayout(view)
        self.overlay_boxes = {}
        for i, name in enumerate(vars(OverlayOptions())):
            check = self.overlay_boxes[name] = QCheckBox(name)
            check.setChecked(getattr(self.video.options, name))
            check.toggled.connect(lambda on, n=name: self.set_overlay(n, on))
            grid.addWidget(check, i // 3, i % 3)
        self.signal_choices = []
        for i, default in enumerate(DEFAULT_SIGNALS):
            choice = QComboBox()
            choice.setProperty("default", default)
            choice.currentTextChanged.connect(lambda name, k=i: self.choose_signal(k, name))
            grid.addWidget(QLabel(f"plot {i + 1}"), 2 + i, 0)
            grid.addWidget(choice, 2 + i, 1, 1, 2)
            self.signal_choices.append(choice)
        epochs, report = QPushButton("Epochs…  (Ctrl+E)"), QPushButton("Report…  (Ctrl+R)")
        epochs.clicked.connect(self.export_epochs)
        report.clicked.connect(self.export_report)
        grid.addWidget(epochs, 4, 0, 1, 2)
        grid.addWidget(report, 4, 2)
        self.people = PeoplePanel()
        self.people.renamed.connect(self.rename)
        self.people.mergeRequested.connect(self.merge)
        self.people.unmergeRequested.connect(self.unmerge)
        self.people.trackChosen.connect(self.follow_track)
        self.annotations = AnnotationsPanel()
        self.annotations.add_event.clicked.connect(self.add_event)
        self.annotations.start_span.clicked.connect(self.span_start)
        self.annotations.end_span.clicked.connect(self.span_end)
        self.annotations.delete.clicked.connect(self.delete_annotation)
        self.annotations.edited.connect(self.edit_annotation)
        self.annotations.chosen.connect(lambda i: self.seek_time(self._at(i).t_start - self.session.t0))
        tabs = QTabWidget()
        tabs.addTab(self.people, "People")
        tabs.addTab(self.annotations, "Annotations")
        left = QWidget()
        left.setMinimumWidth(330)
        ll = QVBoxLayout(left)
        ll.addWidget(view)
        ll.addWidget(tabs, 1)
        self._dock("Review", left, Qt.LeftDockWidgetArea)

    # -- what is shown ----------------------------------------------------------------------------------------
    def on_shown(self, shown: Shown, info: ReviewFrame) -> None:
        i = self.selected_index(shown.result)
        if not self.player.playing and abs(info.position - self.shown_position) > 1:
            self.face_panel.va.set_value(None)  # a jump: the valence/arousal trail starts again
        self.video.show_result(shown, i)
        self.face_panel.show_face(shown.result if info.result is not None else None, i, shown.names)
        self.shown_position = info.position
        self.scrub.blockSignals(True)
        self.scrub.setValue(info.position)
        self.scrub.blockSignals(False)
        self.timeline.set_cursor(info.t)
        self.time_label.setText(f"{info.t:8.3f} s / {self.review.duration:.1f} s · frame {info.frame}")
        faces = "" if info.result is None else f"{info.result.n_faces} face(s)"
        self.note.setText(info.note or faces)
        if not self.plotted:
            self.plotted = True
            QTimer.singleShot(0, self.on_analysis_grew)

    def selected_index(self, result) -> Optional[int]:
        return geometry.selected_face(result, self.selected_track)

    def on_analysis_grew(self) -> None:
        """More of fex.csv is read (or all of it): plots, people and the progress bar follow."""
        loading = self.review.loading
        self.progress.setVisible(loading)
        self.progress.setValue(int(100 * self.review.build.fraction))
        if self.review.arrays is None:
            return
        signals = self.review.signals()
        for choice in self.signal_choices:
            if choice.count() != len(signals):
                choice.blockSignals(True)
                choice.clear()
                choice.addItems(signals)
                choice.setCurrentText(choice.property("default"))
                choice.blockSignals(False)
        if not loading:  # whole-session plots once all of it is read (not redrawn per chunk)
            self.refresh_people()
        error = self.review.build.error
        if error is not None:
            self.status.setText(f"fex.csv cannot be read: {first_line(error)}")

    def refresh_people(self) -> None:
        self.plots_drawn = True
        colours = self.review.colours()
        self.people.set_people(self.review.people(), colours)
        for k, choice in enumerate(self.signal_choices):
            if choice.currentText():
                self.timeline.set_signal(k, choice.currentText(), self.review.curves(choice.currentText()), colours)

    def choose_signal(self, k: int, name: str) -> None:
        if name and not self.review.loading:
            self.timeline.set_signal(k, name, self.review.curves(name), self.review.colours())

    def refresh_annotations(self) -> None:
        items = [a for layer in self._layers() for a in layer]
        self.timeline.set_annotations(items, self.session.t0)
        self.annotations.set_annotations(items, self.session.t0)

    def _layers(self) -> list:
        """The annotations listed and drawn: this folder's (where new ones go), then, for a camera of a
        several-camera session, the session-wide ones (they apply to every camera; editable here too)."""
        parent = self.session.parent
        return [self.session.annotations] + ([parent.annotations] if parent is not None else [])

    def _where(self, index: int) -> tuple:
        """The annotations holding listed annotation `index`, and its index there."""
        for layer in self._layers():
            if index < len(layer):
                return layer, index
            index -= len(layer)
        raise IndexError(index)

    def _at(self, index: int) -> Annotation:
        layer, i = self._where(index)
        return layer[i]

    # -- transport --------------------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        self.player.toggle()

    def step(self, n: int) -> None:
        self.player.step(n)

    def seek(self, position: int) -> None:
        self.player.pause()
        self.player.seek(position)

    def seek_time(self, t: float) -> None:
        self.player.pause()
        self.player.seek_time(t)

    def jump(self, seconds: float) -> None:
        self.seek_time(self.review.t[max(self.player.position, 0)] + seconds)

    def _scrubbed(self, position: int) -> None:
        self.seek(position)

    def next_marker(self, direction: int) -> None:
        """The next (or previous) marker or event after the cursor."""
        t = self.review.t[max(self.player.position, 0)]
        times = np.sort(self.session.events()["t_monotonic"].to_numpy() - self.session.t0)
        later = times[times > t + 1e-6] if direction > 0 else times[times < t - 1e-6][::-1]
        if len(later):
            self.seek_time(float(later[0]))

    @property
    def cursor_t(self) -> float:
        """The shown frame's own stamp on the capture clock (frames.csv's t_monotonic, exactly)."""
        return float(self.session.frames["t_monotonic"].iat[max(self.player.position, 0)])

    # -- overlays and selection ---------------------------------------------------------------------------------
    def set_overlay(self, name: str, on: bool) -> None:
        setattr(self.video.options, name, on)
        self.player.redescribe()

    def toggle_overlay(self, name: str) -> None:
        self.overlay_boxes[name].toggle()

    def on_face_clicked(self, index: int) -> None:
        shown = self.video.current
        tid = -1 if index < 0 or shown is None else int(shown.result.track_ids[index])
        self.follow_track(tid if tid >= 0 else None)

    def follow_track(self, track: Optional[int]) -> None:
        self.selected_track = None if track is None else self.session.identities.root(track)
        self.player.redescribe()

    # -- annotations --------------------------------------------------------------------------------------------
    def _label(self, title: str, default: str = "") -> Optional[str]:
        text, ok = QInputDialog.getText(self, title, "Label:", text=default)
        return text.strip() if ok else None

    def add_event(self) -> None:
        label = self._label("Event at the cursor")
        if label is not None:
            t = self.cursor_t
            self._annotate(lambda: self.session.annotations.add(Annotation("event", label, t, t)),
                           f"event {label!r} at {t - self.session.t0:.3f} s")

    def span_start(self) -> None:
        self.span_from = self.cursor_t
        self.status.setText(f"exclusion from {self.span_from - self.session.t0:.3f} s: move, then press ]")

    def span_end(self) -> None:
        if self.span_from is None:
            self.status.setText("press [ where the exclusion starts, then ] where it ends")
            return
        start, self.span_from = self.span_from, None
        self.add_exclusion(start - self.session.t0, self.cursor_t - self.session.t0)

    def add_exclusion(self, start: float, end: float) -> None:
        """An exclusion span (times from the first frame), for everyone."""
        label = self._label("Exclude this span", "excluded")
        if label is not None:
            t0 = self.session.t0
            self._annotate(lambda: self.session.annotations.add(Annotation("exclude", label, t0 + start, t0 + end)),
                           f"excluded {min(start, end):.3f}–{max(start, end):.3f} s")

    def move_annotation(self, index: int, start: float, end: float) -> None:
        t0 = self.session.t0
        layer, i = self._where(index)
        self._annotate(lambda: layer.move(i, t0 + start, t0 + end), f"{layer[i].kind} moved to {start:.3f} s",
                       layer)

    def edit_annotation(self, index: int, label: str, person: str) -> None:
        changes = {"label": label.strip()}
        layer, i = self._where(index)
        if layer[i].kind == "exclude":
            changes["person"] = person.strip()
        self._annotate(lambda: layer.edit(i, **changes), f"{label.strip()!r} edited", layer)

    def delete_annotation(self) -> None:
        index = self.annotations.selected()
        if index < 0:
            self.status.setText("select an annotation in the list first")
            return
        layer, i = self._where(index)
        self._annotate(lambda: layer.remove(i), "annotation deleted", layer)

    def _annotate(self, edit, done: str, layer=None) -> None:
        """One edit of an annotations.csv (`layer`: the camera's own by default); the panels and the timeline
        then show what is saved (the edit, or what was there before where it could not be saved)."""
        if self._edit(edit)[0]:
            layer = self.session.annotations if layer is None else layer
            where = "annotations.csv" if self.session.parent is None else (
                f"{self.session.camera}/annotations.csv: this camera's rows only" if layer is self.session.annotations
                else "the session's annotations.csv: every camera's rows")
            self.status.setText(f"{done} (saved to {where})")
        self.refresh_annotations()

    def _edit(self, edit) -> tuple[bool, object]:
        """Run one edit (it saves itself): (True, what it returns), or (False, None) where it was refused
        or could not be saved (a read-only folder), said in one line in the status bar and the log."""
        try:
            return True, edit()
        except (OSError, ValueError) as exc:
            self.status.setText(first_line(exc))
            log.warning("%s", first_line(exc))
            return False, None

    # -- identities ---------------------------------------------------------------------------------------------
    def rename(self, track: int, name: str) -> None:
        if self._edit(lambda: self.review.rename(track, name))[0]:
            said = f"track #{track} is {name.strip()}" if name.strip() else f"track #{track}'s name removed"
            self.status.setText(f"{said} (saved to identities.json)")
        self._identities_changed()

    def merge(self, tracks: list) -> None:
        if len(tracks) < 2:
            self.status.setText("select two or more tracks (Ctrl+click) to merge")
            return
        identities = self.session.identities
        roots = [identities.root(t) for t in tracks]
        merged, into = self._edit(lambda: self.review.merge(tracks))
        if merged:
            kept = [f"#{r} keeps its own name {identities.own_name(r)!r} for an unmerge" for r in dict.fromkeys(roots)
                    if r != into and identities.own_name(r)]
            self.status.setText("; ".join([f"merged tracks {', '.join(map(str, tracks))}: one person, "
                                           f"{self._person(into)}", *kept]) + " (saved to identities.json)")
        self._identities_changed()

    def unmerge(self, track: int) -> None:
        parent = self.session.identities.merged.get(track)
        done, apart = self._edit(lambda: self.review.unmerge(track))
        if done and not apart:
            self.status.setText(f"#{track} is not merged with another track, nor another with it: nothing to unmerge")
        elif apart:
            whose = (f"#{track} from #{parent}" if parent is not None else
                     f"{', '.join(f'#{t}' for t in apart)} from #{track}, the track they were merged into")
            self.status.setText(f"unmerged {whose}: " + ", ".join(f"#{t} is {self._person(t)}" for t in apart)
                                + " again (saved to identities.json)")
        self._identities_changed()

    def _person(self, track: int) -> str:
        people = self.review.people()
        person = people.loc[people["track_id"] == track, "person"]
        return str(person.iloc[0]) if len(person) else f"#{track}"

    def _identities_changed(self) -> None:
        self.refresh_people()
        self.player.redescribe()

    # -- exports (off the GUI thread) -----------------------------------------------------------------------------
    def export_epochs(self) -> None:
        labels = sorted(set(self.session.events()["label"]))
        dialog = EpochsDialog(labels, self)
        if dialog.exec() != EpochsDialog.Accepted:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Epochs CSV", str(self.session.folder / "epochs.csv"),
                                              "CSV (*.csv)")
        if path:
            self.run_epochs(dialog.markers.text(), dialog.window.text(), dialog.baseline.text(), Path(path))

    def run_epochs(self, markers: str, window: str, baseline: str, out: Path) -> None:
        from realtime_feat.review.epochs import epochs, parse_labels, parse_range, write_csv

        def job():
            labels = parse_labels(markers)
            table = epochs(self.session, labels, parse_range(window, "window"),
                           parse_range(baseline, "baseline") if baseline.strip() else None)
            write_csv(table, out)
            return f"epochs: {len(table)} rows to {out}"
        self._in_background("epochs", job)

    def export_report(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Report", str(self.session.folder / "report.html"), "HTML (*.html)")
        if path:
            self.run_report(Path(path))

    def run_report(self, out: Path) -> None:
        from realtime_feat.review.report import write_report

        self._in_background("report", lambda: f"report written to {write_report(self.session, out)}")

    def _in_background(self, what: str, job) -> None:
        if self.review.loading:
            self.status.setText(f"{what}: wait until fex.csv is read (see the progress bar)")
            return
        self.status.setText(f"running {what}…")

        def run():
            try:
                self.jobDone.emit(job())
            except Exception as exc:  # one line where the user looks, never a traceback
                self.jobDone.emit(f"{what} failed: {first_line(exc)}")

        thread = threading.Thread(target=run, name=what, daemon=True)
        self.jobs = [t for t in self.jobs if t.is_alive()] + [thread]
        thread.start()

    def on_job_done(self, line: str) -> None:
        self.status.setText(line)
        log.info("%s", line)

    def show_help(self) -> None:
        QMessageBox.information(self, "Viewer keys", help_text(SHORTCUTS))

    def closeEvent(self, event) -> None:
        self.player.close()
        self.review.close()
        for job in self.jobs:
            job.join()
        super().closeEvent(event)


def build_review_window(session) -> ReviewWindow:
    """The viewer for `session` (load_session), sized; pyqtgraph's options as the app sets them."""
    import pyqtgraph as pg

    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)
    window = ReviewWindow(session)
    window.resize(1500, 950)
    window.resizeDocks([window.docks["Review"], window.docks["Selected face"]], [340, 380], Qt.Horizontal)
    return window


def review_windows(session) -> list[ReviewWindow]:
    """A viewer for `session`, or one per camera of a several-camera session (each camera has its own
    video, tracks and review files; all are on the session's one time axis)."""
    if not session.cameras:
        return [build_review_window(session)]
    windows = []
    for name, each in session.cameras.items():
        window = build_review_window(each)
        window.setWindowTitle(f"realtime-feat · review · {session.folder.name} · {name}")
        windows.append(window)
    return windows
