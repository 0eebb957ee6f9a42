"""The top of a several-camera session folder (DESIGN.md, "With several cameras"); each camera's
`Recorder` writes its own subfolder (video.mp4, frames.csv, fex.csv, and its markers.csv and
metadata.json: each a complete one-camera session). At the top:

  markers.csv    label, origin, t_monotonic, t_wall, t_lsl, then frame_<camera> for each camera: the
                 newest frame of that camera when the marker came (one row per marker, flushed at once)
  metadata.json  what the cameras share (versions, analyser, settings, clocks, LSL) and "cameras": one
                 entry each with its "name", "folder", "source" (id, kind, frame size, options, the
                 camera's "mode" as its driver gave it), and once it ended, "complete", "error", "counts";
                 "complete": true only when every camera's recording ended cleanly. Written at the start
                 ("ended": null, as a killed process leaves it) and at the end.
"""
from __future__ import annotations

import csv
import threading
import time
from pathlib import Path
from typing import Optional

from ..atomic_files import write_json
from .recorder import MARKERS_COLUMNS, marker_fields

LAYOUT = "one subfolder per camera"


class MultiRecording:
    def __init__(self, folder: Path, common: dict, cameras: list[str], codec: str):
        self.folder, self.cameras = Path(folder), list(cameras)
        self.started_ns = time.monotonic_ns()
        self.metadata = dict(common, layout=LAYOUT, codec=codec)
        self._lock = threading.Lock()
        self._markers_file = open(self.folder / "markers.csv", "w", newline="")
        self._markers = csv.writer(self._markers_file)
        self._markers.writerow(MARKERS_COLUMNS[:-1] + [f"frame_{name}" for name in self.cameras])
        self._markers_file.flush()
        self._write(None, [])

    @property
    def elapsed_s(self) -> float:
        return (time.monotonic_ns() - self.started_ns) / 1e9

    def describe(self, cameras: list[dict]) -> None:
        """metadata.json again with the cameras as now known (sizes and modes are known once started)."""
        self._write(None, cameras)

    def mark(self, marker, frames: dict[str, int]) -> None:
        with self._lock:
            if self._markers_file.closed:
                return
            self._markers.writerow([*marker_fields(marker), *(frames.get(name, "") for name in self.cameras)])
            self._markers_file.flush()

    def finish(self, cameras: list[dict]) -> None:
        """After every camera's recording ended: markers.csv closed, metadata.json final."""
        with self._lock:
            self._markers_file.close()
        self._write("stopped" if all(c.get("complete") for c in cameras) else "failed", cameras)

    def _write(self, ended: Optional[str], cameras: list[dict]) -> None:
        write_json(self.folder / "metadata.json", dict(self.metadata, cameras=cameras, ended=ended,
                                                       complete=ended == "stopped"))
