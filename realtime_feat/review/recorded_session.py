"""Reading a recorded session folder back (recording/recorder.py writes it): `load_session` for analysis in
py-feat and for review, and the capture clocks of each video frame for `realtime-feat process SESSION_DIR`.

What review adds to a folder is applied as it is read, never written into the recorded files:
annotations.csv (events; exclusion spans, whose rows are flagged `excluded`) and identities.json (track
renames and merges: each row's `person`).

A several-camera session (recording/multi_recording.py) is a folder of one-camera sessions, one per camera,
under a top metadata.json that lists them: `camera_folders` finds them, and `load_session` reads
each (its `cameras`) and joins their tables with a `camera` column.
"""
from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import pandas as pd

from ..errors import MediaError
from ..recording.fex_arrays import WholeLines
from ..types import Frame
from .annotations import Annotations
from .identities import Identities

log = logging.getLogger(__name__)

RECT = ["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight"]


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


def enrolled_names(track_ids: np.ndarray, labels: np.ndarray) -> dict[int, str]:
    """Each track's name from the live enrolment: its most frequent label other than "unknown"."""
    named = pd.DataFrame({"track": track_ids, "label": labels})
    named = named[np.isfinite(named["track"].astype(float)) & ~named["label"].isin(["", "unknown"])]
    if named.empty:
        return {}
    counts = named.groupby(["track", "label"]).size().reset_index(name="n").sort_values("n", kind="stable")
    return {int(t): str(label) for t, label in counts.drop_duplicates("track", keep="last")[["track", "label"]].values}


@dataclass
class RecordedSession:
    folder: Path
    frames: pd.DataFrame        # frames.csv: one row per captured frame, + `excluded` (an exclusion for everyone)
    markers: pd.DataFrame       # markers.csv
    metadata: dict              # metadata.json
    video: Optional[Path]       # None for several cameras: each camera's own
    annotations: Annotations    # annotations.csv (review's events and exclusion spans)
    identities: Identities      # identities.json (review's renames and merges)
    # Several cameras: each camera's own session by name (its own review files, track ids and video);
    # frames and fex are theirs joined, with a `camera` column first; markers has a frame_<camera>
    # column per camera. {} for one camera.
    cameras: dict[str, "RecordedSession"] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """False when the recording did not end cleanly (killed, disk full): the files hold what was written."""
        return bool(self.metadata.get("complete"))

    @property
    def t0(self) -> float:
        """The first captured frame's t_monotonic: review's time zero."""
        return float(self.frames["t_monotonic"].iloc[0]) if len(self.frames) else 0.0

    @cached_property
    def fex(self):
        """fex.csv as py-feat's Fex (py-feat's own reader), + `person` and `excluded` per row. Reads the
        whole CSV (minutes for an hour); `table()` reads only the columns asked for, from the arrays."""
        from feat.utils.io import read_feat

        if self.cameras:
            return _joined({name: s.fex for name, s in self.cameras.items()})

        fex = read_feat(str(self.folder / "fex.csv"))
        labels = fex["identity"].astype(object).fillna("").astype(str).to_numpy() if "identity" in fex else np.full(len(fex), "")
        track = pd.to_numeric(fex["track_id"], errors="coerce").to_numpy(np.float64)
        person = self.identities.persons(track, enrolled_names(track, labels))
        with warnings.catch_warnings():  # py-feat's Fex is built column by column: pandas warns on any insert
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            fex["person"] = person
            fex["excluded"] = self.annotations.excluded(fex["t_monotonic"].to_numpy(), person)
        return fex

    @cached_property
    def arrays(self):
        """fex.csv's memory-mapped copy (`FexArrays`), built from fex.csv first where it is missing or
        stale (a killed recording's): about a minute per GB, once."""
        from ..recording.fex_arrays import ArraysBuild

        if self.cameras:
            raise ValueError(f"{self.folder}: several cameras, each with its own arrays: use .cameras[name]")

        return ArraysBuild(self.folder, mesh=self.has_mesh).start().wait()

    @property
    def has_mesh(self) -> bool:
        return "mesh" not in self.metadata.get("fex", {}).get("left_out", [])

    def persons(self, arrays) -> np.ndarray:
        """Each row's person in `arrays` ("" where no confirmed track)."""
        track = arrays.column("track_id")
        return self.identities.persons(track, enrolled_names(track, arrays.identity_labels(arrays.column("identity"))))

    def table(self, columns=()) -> pd.DataFrame:
        """fex.csv's rows as a DataFrame of `frame`, `t_monotonic`, `track_id`, `person`, `excluded` and
        the `columns` asked for (any of fex.csv's numeric ones but the embedding), from the arrays; with
        several cameras, theirs joined with a `camera` column first."""
        if self.cameras:
            return _joined({name: s.table(columns) for name, s in self.cameras.items()})
        a = self.arrays
        base = a.select(["frame", "t_monotonic", "track_id", "n_faces"])
        table = pd.DataFrame({"frame": base[:, 0].astype(np.int64), "t_monotonic": base[:, 1], "track_id": base[:, 2],
                              "n_faces": base[:, 3].astype(np.int64)})
        table["person"] = self.persons(a)
        table["excluded"] = self.annotations.excluded(table["t_monotonic"].to_numpy(), table["person"].to_numpy())
        columns = [c for c in columns if c not in table]
        if columns:
            table = pd.concat([table, pd.DataFrame(a.select(columns), columns=columns)], axis=1)
        return table

    def events(self) -> pd.DataFrame:
        """markers.csv's markers and review's events together: label, t_monotonic, origin, in time order."""
        ours = [(e.label, e.t_start, "review") for e in self.annotations.events()]
        table = pd.concat([self.markers[["label", "t_monotonic", "origin"]],
                           pd.DataFrame(ours, columns=["label", "t_monotonic", "origin"])], ignore_index=True)
        table["label"] = table["label"].astype(str)
        return table.sort_values("t_monotonic", kind="stable").reset_index(drop=True)

    def merge_tracks(self, tracks: list[int]) -> int:
        """Merge tracks that are one person (saved to identities.json); refused, in one line, when two of
        them are seen in one frame together (they cannot be one person)."""
        a = self.arrays
        track, frames = a.column("track_id"), a.frames
        roots = np.array([self.identities.root(int(t)) if np.isfinite(t) and t >= 0 else -1 for t in track])
        wanted = {self.identities.root(t) for t in tracks}
        mine = np.isin(roots, list(wanted))
        both = pd.DataFrame({"frame": frames[mine], "root": roots[mine]}).drop_duplicates().groupby("frame").size()
        if (both > 1).any():
            raise ValueError(f"tracks {', '.join(f'#{t}' for t in tracks)} are seen together in {(both > 1).sum()} "
                             f"frame(s) (first: frame {both[both > 1].index[0]}): they are not one person")
        return self.identities.merge(tracks)

    def label_rows(self, table: pd.DataFrame) -> pd.DataFrame:
        """`person` and `excluded` for the rows of another analysis of this session's video (`process
        SESSION_DIR`, with its own track ids): each of its tracks is the recorded track whose faces it
        overlaps most (IoU ≥ 0.5 in frames both analysed); a track that overlaps none gets no person."""
        ours = self.table(RECT)
        ours = ours[ours["person"] != ""]
        new = table[["frame", "track_id", *RECT]].reset_index()
        pairs = new.merge(ours[["frame", "person", *RECT]], on="frame", suffixes=("", "_rec"))
        a, b = pairs[RECT].to_numpy(), pairs[[f"{c}_rec" for c in RECT]].to_numpy()
        x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
        x2, y2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]), np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
        hits = pairs[inter / union >= 0.5]
        votes = hits.groupby(["track_id", "person"]).size().reset_index(name="n").sort_values("n", kind="stable")
        person_of = dict(votes.drop_duplicates("track_id", keep="last")[["track_id", "person"]].values)
        out = table.copy()
        out["person"] = [person_of.get(t, "") for t in table["track_id"]]
        out["excluded"] = self.annotations.excluded(table["t_monotonic"].to_numpy(), out["person"].to_numpy())
        return out


def read_whole_lines(path: Path) -> pd.DataFrame:
    """A CSV up to its last complete line (a killed recording's last row may be cut off mid-way)."""
    with WholeLines(path) as f:
        return pd.read_csv(io.BufferedReader(f))


def load_session(path) -> RecordedSession:
    """A recorded session folder: its per-frame table, markers, metadata and review's annotations and
    identities, read at once; its Fex (`fex`, py-feat's reader) and arrays (`table()`) when first asked.
    A killed recording loads too (`complete` is then False). Several cameras: see `RecordedSession.cameras`."""
    folder = Path(path)
    cameras = camera_folders(folder)
    if cameras:
        each = {name: load_session(sub) for name, sub in cameras.items()}
        return RecordedSession(folder, _joined({name: s.frames for name, s in each.items()}),
                               read_whole_lines(folder / "markers.csv"), json.loads((folder / "metadata.json").read_text()),
                               None, Annotations.load(folder), Identities.load(folder), each)
    if not is_session(folder):
        raise FileNotFoundError(f"{folder}: not a recorded session (needs frames.csv and video.mp4)")
    metadata = json.loads((folder / "metadata.json").read_text())
    annotations = Annotations.load(folder)
    frames = read_whole_lines(folder / "frames.csv")
    frames["excluded"] = annotations.excluded(frames["t_monotonic"].to_numpy())
    return RecordedSession(folder, frames, read_whole_lines(folder / "markers.csv"), metadata, folder / "video.mp4",
                           annotations, Identities.load(folder))


def _joined(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The cameras' tables one after another, with a `camera` column first (a Fex stays a Fex)."""
    table = pd.concat(list(tables.values()), keys=list(tables), names=["camera", None]).copy()  # copy: consolidated
    return table.reset_index(level="camera").reset_index(drop=True)


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
