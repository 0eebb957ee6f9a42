"""One camera in the window's grid of videos: a title line (the camera's name and status), its video
view with overlays, the bridge that feeds it from that camera's session, and the display smoothing of
its tracks (track ids are per camera). With one source the window has one pane and no title."""
from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from . import geometry
from .bridge import LiveBridge
from .video_view import VideoView


class CameraPane(QWidget):
    def __init__(self, name: str = "", parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.name = name
        self.title = QLabel(name)
        self.title.setStyleSheet("color:#ddd;background:#222;padding:2px 6px")
        self.title.setVisible(bool(name))
        self.view = VideoView()
        self.bridge = LiveBridge(parent=self)
        self.smoother = geometry.DisplaySmoother()
        self.panel_index, self.smoothed = -1, None   # the result the side panels show, and as drawn
        self.camera = None                             # the LiveSession feeding it
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.title)
        layout.addWidget(self.view, 1)

    def attach(self, camera, name: str) -> None:
        """Fed by `camera` (a LiveSession) from now on."""
        self.name, self.camera = name, camera
        self.title.setText(name)
        self.bridge.labeller = lambda ids: camera.tracker.identities(ids)[0]
        self.bridge.attach(camera)
        self.panel_index = -1

    def set_status(self, status) -> None:
        """The title line: the camera's state, captured / analysed fps and frames dropped from its video."""
        state = "LOST" if status.state == "lost" else status.state
        self.title.setText(f"{self.name} · {state} · capture {status.capture_fps:4.1f} fps · analysed "
                           f"{status.analysed_fps:4.1f} fps · dropped {status.encoder_dropped}"
                           + (f" · {status.mode}" if status.mode else ""))
        colour = "#8a1c1c" if status.state in ("lost", "failed") else "#222"
        self.title.setStyleSheet(f"color:#ddd;background:{colour};padding:2px 6px")
