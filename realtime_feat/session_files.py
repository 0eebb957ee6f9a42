"""Reading a recorded session folder back (recorder.py writes it): `load_session` for analysis in
py-feat, and the capture clocks of each video frame for `realtime-feat process SESSION_DIR`.

A several-camera session (multirecording.py) is a folder of one-camera sessions, one per camera,
under a top metadata.json that lists them: `camera_folders` finds them, and `load_session` reads
each (its `cameras`) and joins their tables with a `camera` column."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Optional

import pandas as pd

from .errors import MediaError
from .types import Frame

log = logging.getLogger(__name__)


def is_session(folder: Path) -> bool:
    return (folder / "frames.csv").is_file() and (folder / "video.mp4").is_file()


def camera_folders(folder: Path) -> dict[str, Path]:
    """{camera name: its subfolder} of a several-camera session, in the order recorded; {} for a
    one-camera session or a folder that is no session."""
    meta = Path(folder) / "metadata.json"
    if is_session(Path(folder)) or not meta.is_file():
        return {}
    cameras = json.loads(meta.read_text()).get("cameras") or []
    return {c["name"]: Path(folder) / c["folder"] for c in cameras if is_session(Path(folder) / c["folder"])}


@dataclass
class RecordedSession:
    folder: Path
    fex: "pd.DataFrame"     # a py-feat Fex: py-feat's columns + frame, t_monotonic, t_wall, t_lsl, track_id, identity
    frames: pd.DataFrame    # frames.csv: one row per captured frame
    markers: pd.DataFrame   # markers.csv
    metadata: dict          # metadata.json
    video: Optional[Path]   # None for several cameras: each camera's own
    # Several cameras: each camera's own session by name; fex and frames above are theirs joined, with a
    # `camera` column first; markers has a frame_<camera> column per camera. {} for one camera.
    cameras: dict[str, "RecordedSession"] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """False when the recording did not end cleanly (killed, disk full): the files hold what was written."""
        return bool(self.metadata.get("complete"))


def load_session(path) -> RecordedSession:
    """A recorded session folder: its Fex (read by py-feat's own reader), per-frame table, markers
    and metadata. A killed recording loads too (`complete` is then False)."""
    from feat.utils.io import read_feat

    folder = Path(path)
    cameras = camera_folders(folder)
    if cameras:
        return _load_cameras(folder, cameras)
    if not is_session(folder):
        raise FileNotFoundError(f"{folder}: not a recorded session (needs frames.csv and video.mp4)")
    return RecordedSession(folder, read_feat(str(folder / "fex.csv")), pd.read_csv(folder / "frames.csv"),
                           pd.read_csv(folder / "markers.csv"), json.loads((folder / "metadata.json").read_text()),
                           folder / "video.mp4")


def _load_cameras(folder: Path, cameras: dict[str, Path]) -> RecordedSession:
    each = {name: load_session(sub) for name, sub in cameras.items()}

    def joined(tables):  # keys → an index level → the first column (a Fex stays a Fex)
        table = pd.concat(tables, keys=list(each), names=["camera", None]).copy()  # copy: consolidated
        table = table.reset_index(level="camera")
        return table.reset_index(drop=True)

    return RecordedSession(folder, joined([s.fex for s in each.values()]), joined([s.frames for s in each.values()]),
                           pd.read_csv(folder / "markers.csv"), json.loads((folder / "metadata.json").read_text()),
                           None, each)


def on_capture_clocks(frames: Iterator[Frame], folder: Path) -> Iterator[Frame]:
    """The recorded video's frames (numbered in the video) as they were captured: frame index and
    t_monotonic / t_wall / t_lsl from frames.csv, checked against the video's PTS. Video frames past
    the last row (a killed recording) have no known clocks and end the iteration, with a warning."""
    table = pd.read_csv(folder / "frames.csv")
    table = table[table["in_video"] == 1].reset_index(drop=True)
    for frame in frames:
        if frame.index >= len(table):  # a killed recording: the video ran ahead of frames.csv's last flush
            log.warning("%s: video frames from %d on have no row in frames.csv (the recording was cut off); "
                        "they are left out", folder, frame.index)
            return
        row = table.iloc[frame.index]
        if frame.pts is None or abs(frame.pts - row["video_time"]) > 2e-6:
            raise MediaError(f"{folder}: video frame {frame.index} at {frame.pts} s does not match frames.csv "
                             f"(frame {row['frame']} at {row['video_time']} s)")
        yield replace(frame, index=int(row["frame"]), t_monotonic_ns=round(row["t_monotonic"] * 1e9),
                      t_wall_ns=round(row["t_wall"] * 1e9), t_lsl=None if pd.isna(row["t_lsl"]) else row["t_lsl"])
