"""The window around one `LiveSession` (several cameras: a `MultiSession`, a grid of their videos): layout
and docks, and the wiring of controls to the controller (which owns the session, the loader, background
jobs, markers, the recording, what the banner says and reading a recorded session for the viewer). It
draws what the controller and the results bus give it and never decides what is written to disk: the
session does. The side panels follow the camera whose video was clicked last; the plots have
one curve per person across cameras (an enrolled person's name joins their tracks in every camera)."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QFileDialog, QGridLayout, QHBoxLayout, QInputDialog, QLabel, QMessageBox,
                               QPlainTextEdit, QProgressBar, QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from realtime_feat import first_line

from . import geometry
from .bridge import Shown
from .camera_pane import CameraPane
from .controller import AppOptions, Banner, SessionController
from .controls import SHORTCUTS, CameraProbe, ControlPanel, SourceDialog, help_text
from .docked_window import DockedWindow
from .logpane import LogQueue
from .panels import FacePanel
from .timeseries import RollingPlot, plot_signals, y_range
from .video_view import OverlayOptions

log = logging.getLogger("realtime_feat.ui")
PLOT_REDRAW_S = 0.2
BANNER_COLOURS = {"error": "#8a1c1c", "warning": "#8a5a1c", "info": "#444"}


def _ms(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.0f}"


class MainWindow(DockedWindow):
    def __init__(self, options: AppOptions, names: dict[str, list[str]], sessions_dir: Path):
        super().__init__()
        self.controller = SessionController(options, self)
        self.sessions_dir = sessions_dir
        self.selected_track: Optional[int] = None
        self._plots_dirty, self._plots_drawn = False, 0.0
        self._closing = False
        self._banner = Banner()   # what the banner shows
        self.review_windows: list = []   # session viewers opened from here
        self.setWindowTitle("realtime-feat")
        # the first camera's pane is the only one with one source; its view and bridge keep their names
        self.primary = self.current_pane = self._new_pane()
        self.panes: list[CameraPane] = [self.primary]
        self.video, self.bridge, self.smoother = self.primary.view, self.primary.bridge, self.primary.smoother
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.restart_button = QPushButton("Restart analysis")
        self.restart_button.clicked.connect(self.restart_analysis)
        self.restart_button.hide()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.hide()
        self.progress_label = QLabel()
        self.progress_label.setWordWrap(True)
        self.progress_label.hide()
        top = QHBoxLayout()
        top.addWidget(self.banner, 1)
        top.addWidget(self.restart_button)
        centre = QWidget()
        box = QVBoxLayout(centre)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(top)
        box.addWidget(self.progress_label)
        box.addWidget(self.progress)
        self.grid = QGridLayout()
        self.grid.setSpacing(2)
        self.grid.addWidget(self.primary, 0, 0)
        box.addLayout(self.grid, 1)
        self.setCentralWidget(centre)

        self.face_panel = FacePanel(names)
        self.au_bars, self.panel_title = self.face_panel.au_bars, self.face_panel.title
        self._dock("Selected face", self.face_panel, Qt.RightDockWidgetArea)

        self.signals = plot_signals(names["au"], names["emotions"])
        self.plots, self.plot_choices = [], []
        plots = QWidget()
        plots.setMinimumHeight(220)
        pl = QHBoxLayout(plots)
        for default in ("AU12", "valence", "Happy"):
            column = QVBoxLayout()
            choice = QComboBox()
            choice.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            choice.setMinimumContentsLength(10)
            choice.addItems(list(self.signals))
            choice.setCurrentText(default)
            plot = RollingPlot(default, y_range=y_range(default))
            choice.currentTextChanged.connect(lambda name, p=plot: self.choose_signal(p, name))
            column.addWidget(choice)
            column.addWidget(plot, 1)
            pl.addLayout(column)
            self.plots.append(plot)
            self.plot_choices.append(choice)
        self._dock("Last 20 s (one curve per person)", plots, Qt.BottomDockWidgetArea)
        self.log_pane = QPlainTextEdit(readOnly=True)
        self.log_pane.setMaximumBlockCount(2000)
        self.log_pane.setMinimumWidth(200)
        self.log_queue = LogQueue()
        logging.getLogger("realtime_feat").addHandler(self.log_queue)
        logging.getLogger("realtime_feat").setLevel(logging.INFO)
        log_dock = self._dock("Log", self.log_pane, Qt.BottomDockWidgetArea)
        self._build_controls()
        self.resizeDocks([self.docks["Last 20 s (one curve per person)"], log_dock], [1100, 380], Qt.Horizontal)
        self.resizeDocks([log_dock], [260], Qt.Vertical)

        self.backend_label = QLabel("no session")
        self.stats_label = QLabel("")
        self.stats_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)  # never widens the window
        self.rec_label = QLabel("")
        self.view_mode = QLabel("locked to analysis")
        self.statusBar().addWidget(self.stats_label, 1)
        self.statusBar().addPermanentWidget(self.rec_label)
        self.statusBar().addPermanentWidget(self.view_mode)
        self.statusBar().addPermanentWidget(self.backend_label)
        self._add_shortcuts(SHORTCUTS, Qt.ApplicationShortcut)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(250)
        self.status_timer.timeout.connect(self.update_status)
        self.status_timer.start()
        self._wire_controller()

    # -- layout ------------------------------------------------------------------------------------

    def _build_controls(self) -> None:
        c = self.controls = ControlPanel(self.controller.options, self.controller.source,
                                         {n: getattr(self.video.options, n) for n in vars(OverlayOptions())})
        for button, slot in ((c.choose, self.choose_source), (c.run_button, self.toggle_running),
                             (c.add_camera, self.choose_camera), (c.remove_camera, self.remove_camera),
                             (c.record_button, self.toggle_recording), (c.enrol, self.enrol_selected),
                             (c.photo, self.enrol_photo), (c.shot, self.screenshot), (c.open_session, self.open_session),
                             (c.open_last, lambda: self.open_review(self.controller.last_folder))):
            button.clicked.connect(slot)
        c.detector.currentTextChanged.connect(
            lambda t: self.controller.update_options(detector=None if t == "auto" else t))
        # refused (enrolled photos need ArcFace): said in the banner, the box back as it was
        c.identity.toggled.connect(lambda on: self.controller.update_options(identity=on)
                                   or c.identity.setChecked(not on))
        c.threshold.valueChanged.connect(self.set_threshold)
        c.redetect.valueChanged.connect(self.set_redetect)
        for name, check in c.overlay_boxes.items():
            check.toggled.connect(lambda on, n=name: self.set_overlay(n, on))
        c.smoothing.valueChanged.connect(lambda v: [setattr(p.smoother, "strength", v / 100) for p in self.panes])
        c.live_video.toggled.connect(self.set_live_video)
        # the widgets the window updates
        self.source_label, self.run_button, self.record_button = c.source_label, c.run_button, c.record_button
        self.threshold, self.label_edit, self.marker_names = c.threshold, c.label_edit, c.marker_names
        self.overlay_boxes = c.overlay_boxes
        self._dock("Controls", c, Qt.LeftDockWidgetArea)

    # -- session life cycle ------------------------------------------------------------------------
    @property
    def session(self):
        return self.controller.session

    def _wire_controller(self) -> None:
        c = self.controller
        c.progress.connect(self.on_progress)
        c.downloaded.connect(lambda done, total: self.on_downloaded(done, total))
        c.loading.connect(self.on_loading)
        c.ready.connect(self.on_ready)
        c.failed.connect(self.on_failed)
        c.weightsMissing.connect(self.on_weights_missing)
        c.stopped.connect(self.on_stopped)
        c.recordingChanged.connect(self.on_recording)
        c.camerasChanged.connect(self.on_cameras_changed)
        c.reviewLoaded.connect(self.on_review_loaded)

    def choose_source(self) -> None:
        """The source picker, non-blocking; a choice replaces the running or loading source."""
        self.source_dialog = SourceDialog(self)
        self.source_dialog.accepted.connect(lambda d=self.source_dialog: self.use_source(d.spec))
        self.source_dialog.open()

    def use_source(self, spec: str) -> None:
        self.source_label.setText(spec)
        self.controller.use_source(spec)

    def first_start(self) -> None:
        """At launch: the given source; else the first camera found; with no camera, the source picker."""
        if self.controller.source:
            return self.start_session()
        self.camera_probe = CameraProbe(self)
        self.camera_probe.found.connect(lambda cameras: self.use_source(str(cameras[0][0])) if cameras
                                        else self.choose_source())
        self.camera_probe.start()

    def toggle_running(self) -> None:
        if self.session is not None:
            self.controller.stop()
        elif self.controller.loader is None:
            self.start_session()

    def start_session(self) -> None:
        if not self.controller.source:
            return self.choose_source()
        self.controller.start()

    def on_loading(self, loading: bool) -> None:
        self.progress.setRange(0, 0)
        self.progress.setVisible(loading)
        self.progress_label.setVisible(loading)
        self.run_button.setEnabled(not loading)

    def on_progress(self, text: str) -> None:
        self.progress_label.setText(text)
        log.info(text)

    def on_downloaded(self, done: int, total: int) -> None:
        """Bytes of the weight file being downloaded; an unknown total keeps the bar busy."""
        if total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * done / total))
            self.progress.setFormat(f"{done / 1e6:.0f} / {total / 1e6:.0f} MB")

    def on_ready(self, session) -> None:
        if self._closing:
            return
        self.show_cameras()
        self.backend_label.setText(f"{session.analyser.backend.describe()} · detector {session.analyser.detector_name}")
        self.backend_label.setToolTip(session.analyser.describe())
        self.threshold.setValue(session.analyser.decoder.threshold)
        self.run_button.setText("Stop  (Space)")
        self.show_banner(Banner())
        log.info("running: %s on %s", ", ".join(c.source.id for c in self.controller.cameras.values()),
                 session.analyser.describe())

    def on_stopped(self) -> None:
        for pane in self.panes:
            pane.bridge.detach()
            pane.camera = None
        self._keep_panes([self.primary])
        self.primary.title.hide()
        self.run_button.setText("Start  (Space)")

    # -- several cameras: a grid of panes -----------------------------------------------------------
    def _new_pane(self, name: str = "") -> CameraPane:
        pane = CameraPane(name)
        if getattr(self, "primary", None) is not None:  # one set of overlay toggles for every camera
            pane.view.options = self.primary.view.options
        pane.bridge.shown.connect(lambda shown, p=pane: self.on_shown(shown, p))
        pane.bridge.results.connect(lambda rows, p=pane: self.on_results(rows, p))
        pane.view.faceClicked.connect(lambda index, p=pane: self.on_face_clicked(index, p))
        return pane

    def _keep_panes(self, panes: list[CameraPane]) -> None:
        """`panes` (the primary first) in the grid, as square as it goes; the others detached and gone."""
        for pane in self.panes:
            if pane not in panes:
                pane.bridge.detach()
                self.grid.removeWidget(pane)
                pane.deleteLater()
        self.panes = panes
        if self.current_pane not in panes:
            self.current_pane, self.selected_track = self.primary, None
        columns = max(1, math.ceil(math.sqrt(len(panes))))
        for i, pane in enumerate(panes):
            self.grid.addWidget(pane, i // columns, i % columns)

    def show_cameras(self) -> None:
        """A pane per camera of the running session (a camera's pane stays its own as others come and
        go; the primary shows the first camera), each attached to its camera once."""
        cameras = self.controller.cameras
        several = len(cameras) > 1
        others = {p.name: p for p in self.panes[1:]}
        panes = [self.primary]
        for name in list(cameras)[1:]:
            pane = others.get(name)
            if pane is None:
                pane = self._new_pane()
                pane.smoother.strength = self.smoother.strength
            panes.append(pane)
        self._keep_panes(panes)
        for pane, (name, camera) in zip(panes, cameras.items()):
            if pane.camera is not camera:
                pane.attach(camera, name if several else "")
            pane.title.setVisible(several)
        self.set_live_video(self.controls.live_video.isChecked())

    def on_cameras_changed(self) -> None:
        if self.session is not None:
            self.show_cameras()

    def choose_camera(self) -> None:
        """The source picker for one more camera in this session."""
        self.camera_dialog = SourceDialog(self)
        self.camera_dialog.accepted.connect(lambda d=self.camera_dialog: self.controller.add_camera(d.spec))
        self.camera_dialog.open()

    def remove_camera(self) -> None:
        """The camera whose video was clicked last leaves the session."""
        self.controller.remove_camera(self.current_pane.name)

    def on_failed(self, message: str) -> None:
        log.error(message)
        self.show_banner(Banner(message))

    def on_weights_missing(self, lines: list) -> None:
        """Offline first run: say which files are missing and offer to pick a weights folder (non-blocking)."""
        for line in lines:
            log.error(line)
        box = QMessageBox(QMessageBox.Warning, "Model weights missing",
                          "These weight files are missing and could not be downloaded (offline?):\n\n"
                          + "\n".join(f"• {line}" for line in lines)
                          + "\n\nChoose a folder that holds them (laid out as in README, \"Weights offline\"), "
                            "or connect to the internet and start again.", parent=self)
        self.pick_weights = box.addButton("Choose weights folder…", QMessageBox.AcceptRole)
        box.addButton(QMessageBox.Cancel)
        box.buttonClicked.connect(self._weights_answer)
        self.weights_dialog = box
        box.open()

    def _weights_answer(self, button) -> None:
        if button is self.pick_weights:
            folder = QFileDialog.getExistingDirectory(self, "Weights folder")
            if folder:
                self.use_weights(Path(folder))

    def use_weights(self, folder: Path) -> None:
        self.controller.update_options(weights=folder)
        log.info("weights folder: %s", folder)
        QTimer.singleShot(0, self.start_session)

    def restart_analysis(self) -> None:
        if self.session is not None:
            self.controller.restart_analysis()
            self.show_banner(Banner())

    def show_banner(self, banner: Banner) -> None:
        """The banner the controller decided on (restyled only when it changes: it is asked every tick)."""
        if banner == self._banner:
            return
        self._banner = banner
        self.banner.setStyleSheet(f"background:{BANNER_COLOURS[banner.level]};color:white;padding:6px;"
                                  "font-weight:bold")
        self.banner.setText(banner.text)
        self.banner.setVisible(bool(banner.text))
        self.restart_button.setVisible(banner.restart)

    # -- results -----------------------------------------------------------------------------------
    def selected_index(self, result) -> Optional[int]:
        return geometry.selected_face(result, self.selected_track)

    def on_shown(self, shown: Shown, pane: Optional[CameraPane] = None) -> None:
        pane = pane or self.primary
        fresh = shown.result.index != pane.panel_index  # live video repeats a result under newer frames
        if fresh:
            pane.panel_index, pane.smoothed = shown.result.index, pane.smoother(shown.result)
        shown = replace(shown, result=pane.smoothed)
        mine = pane is self.current_pane  # the selection and the side panels belong to one camera
        i = self.selected_index(shown.result) if mine else geometry.largest_face(shown.result)
        pane.view.show_result(shown, i if mine else None)
        if pane is self.primary:
            self.view_mode.setText(f"live video · overlays from frame {shown.result.index} "
                                   f"({shown.frame.index - shown.result.index} older)" if shown.live
                                   else "locked to analysis")
        if fresh and mine:
            self.update_panels(shown, i)

    def update_panels(self, shown: Shown, i: Optional[int]) -> None:
        self.face_panel.show_face(shown.result, i, shown.names)

    def on_results(self, results: list, pane: Optional[CameraPane] = None) -> None:
        """Every result goes into the plots' buffers; the plots are redrawn at most every PLOT_REDRAW_S
        (painting them competes with analysis for the CPU; 5 redraws a second read as smooth). With
        several cameras a curve is a person: an enrolled name across cameras, else a camera's track."""
        pane = pane or self.primary
        several = len(self.panes) > 1
        for plot, choice in zip(self.plots, self.plot_choices):
            value = self.signals[choice.currentText()]
            for r in results:
                t = r.t_monotonic_ns / 1e9
                names = pane.bridge.labeller(r.track_ids) if several else ()
                for i, tid in enumerate(r.track_ids):
                    if tid >= 0:
                        named = several and names[i] not in ("", "unknown")
                        key = names[i] if named else (pane.name, int(tid)) if several else int(tid)
                        plot.append(t, key, float(value(r.faces, i)))
        self._plots_dirty = True
        if time.monotonic() - self._plots_drawn >= PLOT_REDRAW_S:
            self.redraw_plots()

    def redraw_plots(self) -> None:
        markers = self.markers()
        for plot in self.plots:
            plot.redraw(markers)
        self._plots_dirty, self._plots_drawn = False, time.monotonic()

    def markers(self) -> list[tuple[float, str]]:
        return [(m.t_monotonic_ns / 1e9, m.label) for m in self.controller.markers]

    def choose_signal(self, plot: RollingPlot, name: str) -> None:
        plot.reset(name, y_range(name))

    def on_face_clicked(self, index: int, pane: Optional[CameraPane] = None) -> None:
        pane = pane or self.primary
        if pane is not self.current_pane:  # the panels now follow this camera
            self.current_pane, self.selected_track = pane, None
        shown = pane.view.current
        if index < 0 or shown is None:
            self.selected_track = None
        else:
            tid = int(shown.result.track_ids[index])
            self.selected_track = tid if tid >= 0 else None
        if shown is not None:
            i = self.selected_index(shown.result)
            pane.view.redraw(i)
            self.update_panels(shown, i)

    def toggle_live_video(self) -> None:
        self.controls.live_video.toggle()

    def set_live_video(self, on: bool) -> None:
        cameras = list(self.controller.cameras.values())
        for pane, camera in zip(self.panes, cameras):
            pane.bridge.set_live_video(camera.capture if on else None)

    # -- controls ----------------------------------------------------------------------------------
    def set_overlay(self, name: str, on: bool) -> None:
        setattr(self.video.options, name, on)  # shared by every pane
        for pane in self.panes:
            shown = pane.view.current
            pane.view.redraw(self.selected_index(shown.result) if shown and pane is self.current_pane else None)

    def toggle_overlay(self, name: str) -> None:
        self.overlay_boxes[name].toggle()

    def set_threshold(self, value: float) -> None:
        self.controller.set_threshold(value)

    def set_redetect(self, value: int) -> None:
        self.controller.set_redetect_every(value)

    def marker(self, key: int) -> None:
        self.controller.mark(self.marker_names.name(key))

    def toggle_recording(self) -> None:
        if self.controller.recording_path is None:
            self.controller.start_recording(self.sessions_dir, self.label_edit.text().strip(),
                                            ("mesh", "embedding") if self.controls.lean.isChecked() else ())
        else:
            self.controller.stop_recording()
        self.on_recording(self.controller.recording_path)  # `clicked` is not emitted by setChecked

    def on_recording(self, folder: Optional[Path]) -> None:
        """The REC indicator and button follow the controller, which follows the session's status."""
        self.record_button.setChecked(folder is not None)
        self.record_button.setText("■ Stop recording  (R)" if folder else "● Record  (R)")
        if folder is None:
            self.rec_label.setText("")

    def enrol_selected(self) -> None:
        pane = self.current_pane
        shown = pane.view.current
        i = self.selected_index(shown.result) if shown else None
        tid = int(shown.result.track_ids[i]) if i is not None else -1
        embedding = pane.bridge.embedding_of(tid) if tid >= 0 else None
        if self.session is None or embedding is None:
            log.warning("to name a person: click a tracked face (with ArcFace on), then press E")
            return
        name, ok = QInputDialog.getText(self, "Name this person", f"Name for face #{tid}:")
        if ok and name.strip():
            try:
                self.controller.enrol(name.strip(), embedding)
                log.info("enrolled %s from face #%d", name.strip(), tid)
            except ValueError as exc:
                log.error("%s", first_line(exc))

    def enrol_photo(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference photo", "", "Images (*.jpg *.jpeg *.png *.bmp)")
        name, ok = QInputDialog.getText(self, "Name this person", "Name:") if path else ("", False)
        if ok and name.strip():
            self.add_reference_photo(name.strip(), Path(path))

    def add_reference_photo(self, name: str, path: Path) -> None:
        """A reference photo is analysed with the models as the session starts (the running analysis
        owns them), as `--enrol NAME=IMAGE` is."""
        if not self.controller.add_reference_photo(name, path):
            return
        log.info("%s will be enrolled from %s %s", name, path.name,
                 "at the next start (Space twice)" if self.session is not None else "when the source starts")

    def screenshot(self) -> Path:
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        path = self.sessions_dir / f"screenshot-{time.strftime('%Y%m%d-%H%M%S')}.png"
        self.grab().save(str(path))
        log.info("screenshot saved: %s", path)
        return path

    def show_help(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", help_text())

    # -- the session viewer --------------------------------------------------------------------------------
    def open_session(self) -> None:
        """Pick a recorded session folder (non-blocking) and open it in the viewer."""
        dialog = QFileDialog(self, "Open a recorded session", str(self.sessions_dir))
        dialog.setFileMode(QFileDialog.Directory)
        dialog.fileSelected.connect(lambda folder: self.open_review(Path(folder)))
        self.session_dialog = dialog
        dialog.open()

    def open_review(self, folder: Path) -> None:
        """The viewer on `folder`, once the controller has read it off the GUI thread (`on_review_loaded`)."""
        self.controller.open_recording(folder)

    def on_review_loaded(self, recorded) -> None:
        """The viewer on a recorded session (one per camera), windows of their own beside this one."""
        from .review_window import review_windows

        if self._closing:
            return
        windows = review_windows(recorded)
        for window in windows:
            window.show()
        self.review_windows = [w for w in self.review_windows if w.isVisible()] + windows
        log.info("opened %s in the viewer", recorded.folder)

    # -- status ------------------------------------------------------------------------------------
    def update_status(self) -> None:
        self.log_queue.drain(self.log_pane)
        self.controls.open_last.setEnabled(self.controller.last_folder is not None)
        if self._plots_dirty:  # the last samples, when results have stopped coming
            self.redraw_plots()
        polled = self.controller.poll()
        if polled is None:
            return
        s, banner = polled
        if hasattr(s, "cameras"):
            self._cameras_status(s)
        else:
            self._camera_status(s)
        self.show_banner(banner)

    def _camera_status(self, s) -> None:
        self.stats_label.setText(
            f"{s.state} | capture {s.capture_fps:4.1f} fps | analysed {s.analysed_fps:4.1f} fps | latency p50 "
            f"{_ms(s.latency_p50_ms)} ms p99 {_ms(s.latency_p99_ms)} ms | faces {s.faces} | skipped {s.skipped} | "
            f"dropped {s.encoder_dropped}")
        if s.recording is not None:
            self.rec_label.setText(f"● REC {s.recording_s:5.1f} s  {s.recording.name}  ({s.encoded} frames)")

    def _cameras_status(self, s) -> None:
        """Several cameras: each pane's title line says its camera's status."""
        for pane, status in zip(self.panes, s.cameras.values()):
            pane.set_status(status)
        cams = list(s.cameras.values())
        self.stats_label.setText(f"{len(cams)} cameras | analysed {sum(c.analysed_fps for c in cams):4.1f} fps in all | "
                                 f"faces {sum(c.faces for c in cams)} | dropped {sum(c.encoder_dropped for c in cams)}")
        if s.recording is not None:
            self.rec_label.setText(f"● REC {s.recording_s:5.1f} s  {s.recording.name}  "
                                   f"({sum(c.encoded for c in cams)} frames)")

    def closeEvent(self, event) -> None:
        self.status_timer.stop()
        self._closing = True
        if getattr(self, "camera_probe", None) is not None:
            self.camera_probe.wait()
        self.controller.close()  # loaders, the session, a recording finalised, background jobs joined
        for window in self.review_windows:
            window.close()
        logging.getLogger("realtime_feat").removeHandler(self.log_queue)
        super().closeEvent(event)
