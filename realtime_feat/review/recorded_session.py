"""Reading a recorded session folder back (recording/recorder.py writes it): `load_session` for analysis in
py-feat and for review, and the capture clocks of each video frame for `realtime-feat process SESSION_DIR`.

What review adds to a folder is applied as it is read, never written into the recorded files:
annotations.csv (events; exclusion spans, whose rows are flagged `excluded`) and identities.json (track
renames and merges: each row's `person`).

A several-camera session (recording/multi_recording.py) is a folder of one-camera sessions, one per camera,
under a top metadata.json that lists them: `camera_folders` finds them, and `load_session` reads
each (its `cameras`) and joins their tables with a `camera` column. Its review is one model
(README, "Review a session"):
- persons: each camera's identities.json names its own tracks; an unnamed track is "<camera>#<id>"
  (track 3 of two cameras is two persons), a name (given in review or by enrolment) is one person in
  every camera;
- annotations: a camera's annotations.csv applies to that camera's rows only, the session's top one
  to every camera's; events are the session's markers (its top markers.csv) and both kinds of events;
- time: one t0 for the session, the earliest first frame over the cameras.
A camera's subfolder read alone is that camera of its session, under the same model.
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
from ..recording.fex_arrays import WholeLines, being_recorded
from ..types import Frame
from .annotations import FILE as ANNOTATIONS_FILE
from .annotations import Annotation, Annotations
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
    identities: Optional[Identities]  # identities.json (review's renames and merges)
    # Several cameras: each camera's session by name (its own video, track ids, identities.json and
    # annotations.csv); frames and fex are theirs joined, with a `camera` column first; markers has a
    # frame_<camera> column per camera; annotations are the session-wide ones (applied to every camera)
    # and identities is None (each camera names its own tracks). {} for one camera.
    cameras: dict[str, "RecordedSession"] = field(default_factory=dict)
    camera: str = ""            # one camera of a several-camera session: its name, and that session
    parent: Optional["RecordedSession"] = field(default=None, repr=False, compare=False)
    # Still being recorded when loaded (its recorder holds recording.lock): what it held then, its rows so
    # far; its recorder's files are read, never built over. Load it again for the rows since.
    recording: bool = False

    @property
    def complete(self) -> bool:
        """False when the recording did not end cleanly (killed, disk full) or was still going on when loaded
        (`recording`): the files hold what was written."""
        return bool(self.metadata.get("complete"))

    @property
    def t0(self) -> float:
        """Review's time zero: the first captured frame's t_monotonic; with several cameras the earliest
        camera's, the same for each camera (epochs' t_marker, the report's plots, the viewer's times)."""
        if self.parent is not None:
            return self.parent.t0
        return float(self.frames["t_monotonic"].min()) if len(self.frames) else 0.0

    def excluded(self, t: np.ndarray, person: Optional[np.ndarray] = None) -> np.ndarray:
        """Which samples (capture-clock t, each of `person`) an exclusion covers: this folder's
        annotations.csv's and, for a camera of a several-camera session, the session-wide ones."""
        out = self.annotations.excluded(t, person)
        return out if self.parent is None else out | self.parent.annotations.excluded(t, person)

    def exclusions(self) -> list[Annotation]:
        """The exclusion spans that apply here (see `excluded`)."""
        return self.annotations.exclusions() + (self.parent.annotations.exclusions() if self.parent else [])

    @cached_property
    def fex(self):
        """fex.csv's whole lines as py-feat's Fex (py-feat's own reader), + `person` and `excluded` per row.
        Reads the whole CSV (minutes for an hour); `table()` reads only the columns asked for, from the arrays."""
        from feat.utils.io import read_feat

        if self.cameras:
            return joined_cameras({name: s.fex for name, s in self.cameras.items()})

        path = self.folder / "fex.csv"
        with WholeLines(path) as whole:  # a killed recording's cut-off last row is left out, as everywhere
            fex = read_feat(io.BufferedReader(whole))
        fex.filename = str(path)
        labels = fex["identity"].astype(object).fillna("").astype(str).to_numpy() if "identity" in fex else np.full(len(fex), "")
        track = pd.to_numeric(fex["track_id"], errors="coerce").to_numpy(np.float64)
        person = self.identities.persons(track, enrolled_names(track, labels))
        with warnings.catch_warnings():  # py-feat's Fex is built column by column: pandas warns on any insert
            warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
            fex["person"] = person
            fex["excluded"] = self.excluded(fex["t_monotonic"].to_numpy(), person)
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
            return joined_cameras({name: s.table(columns) for name, s in self.cameras.items()})
        a = self.arrays
        base = a.select(["frame", "t_monotonic", "track_id", "n_faces"])
        table = pd.DataFrame({"frame": base[:, 0].astype(np.int64), "t_monotonic": base[:, 1], "track_id": base[:, 2],
                              "n_faces": base[:, 3].astype(np.int64)})
        table["person"] = self.persons(a)
        table["excluded"] = self.excluded(table["t_monotonic"].to_numpy(), table["person"].to_numpy())
        columns = [c for c in columns if c not in table]
        if columns:
            table = pd.concat([table, pd.DataFrame(a.select(columns), columns=columns)], axis=1)
        return table

    def events(self) -> pd.DataFrame:
        """markers.csv's markers and review's events together: label, t_monotonic, origin, camera (whose
        event it is: "" for markers and for a session's own events), in time order. Several cameras: the
        session has every camera's events, a camera the session's markers and events and its own."""
        if self.parent is not None:
            events = self.parent.events()
            return events[events["camera"].isin(["", self.camera])].reset_index(drop=True)
        columns = ["label", "t_monotonic", "origin", "camera"]
        ours = [(e.label, e.t_start, "review", "") for e in self.annotations.events()]
        ours += [(e.label, e.t_start, "review", name) for name, each in self.cameras.items()
                 for e in each.annotations.events()]
        table = pd.concat([self.markers[["label", "t_monotonic", "origin"]].assign(camera=""),
                           pd.DataFrame(ours, columns=columns)], ignore_index=True)
        table["label"] = table["label"].astype(str)
        return table.sort_values("t_monotonic", kind="stable").reset_index(drop=True)

    def merge_tracks(self, tracks: list[int], camera: str = "") -> int:
        """Merge tracks that are one person (saved to identities.json); refused, in one line, when two of
        them are seen in one frame together (they cannot be one person). Several cameras: tracks of
        `camera` (each camera's track ids are its own; one name makes one person across cameras)."""
        if self.cameras:
            return self._camera(camera, "merge").merge_tracks(tracks)
        self._one_person(self._roots(), {self.identities.root(t) for t in tracks}, "they are not one person")
        return self.identities.merge(tracks)

    def rename_track(self, track: int, name: str, camera: str = "") -> None:
        """Name the person of `track` (saved to identities.json): a name another track has (given or
        enrolled) makes them one person, so it is refused, as a merge, where the two are seen together.
        Several cameras: a track of `camera`."""
        if self.cameras:
            return self._camera(camera, "rename").rename_track(track, name)
        roots, name = self._roots(), name.strip()
        root = self.identities.root(track)
        others = set(roots[(self.persons(self.arrays) == name) & (roots != root)]) if name else set()
        self._one_person(roots, {root, *others}, f"they cannot both be {name!r} (merge or rename them apart)")
        self.identities.rename(track, name)

    def _camera(self, camera: str, what: str) -> "RecordedSession":
        if camera not in self.cameras:
            raise ValueError(f"{self.folder}: several cameras, each with its own track ids: say whose tracks "
                             f"to {what} (camera= one of {', '.join(self.cameras)})")
        return self.cameras[camera]

    def _roots(self) -> np.ndarray:
        """Each arrays row's track after merges (-1 where no confirmed track)."""
        roots = {t: self.identities.root(int(t)) for t in np.unique(self.arrays.column("track_id"))
                 if np.isfinite(t) and t >= 0}
        return np.array([roots.get(t, -1) for t in self.arrays.column("track_id")], np.int64)

    def _one_person(self, roots: np.ndarray, wanted: set[int], why: str) -> None:
        """A ValueError (one line) when two of the tracks `wanted` are seen in one frame together."""
        mine = np.isin(roots, list(wanted))
        both = pd.DataFrame({"frame": self.arrays.frames[mine], "root": roots[mine]}).drop_duplicates() \
            .groupby("frame").size()
        if (both > 1).any():
            seen = sorted({int(r) for r in roots[mine & np.isin(self.arrays.frames, both[both > 1].index)]})
            raise ValueError(f"tracks {', '.join(f'#{t}' for t in seen)} are seen together in {(both > 1).sum()} "
                             f"frame(s) (first: frame {both[both > 1].index[0]}): {why}")

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
        out["excluded"] = self.excluded(table["t_monotonic"].to_numpy(), out["person"].to_numpy())
        return out


def read_whole_lines(path: Path, text: tuple[str, ...] = ()) -> pd.DataFrame:
    """A CSV up to its last complete line (a killed recording's last row may be cut off mid-way). Only an
    empty cell is missing; the `text` columns are read as written (a marker code "01", "NA" or "1.50"
    stays that text; an empty one is "")."""
    with WholeLines(path) as f:
        table = pd.read_csv(io.BufferedReader(f), dtype=dict.fromkeys(text, str), keep_default_na=False,
                            na_values=[""])
    for column in text:
        table[column] = table[column].fillna("")
    return table


def read_markers(path: Path) -> pd.DataFrame:
    """markers.csv, its labels and origins as text."""
    return read_whole_lines(path, text=("label", "origin"))


def load_session(path) -> RecordedSession:
    """A recorded session folder: its per-frame table, markers, metadata and review's annotations and
    identities, read at once; its Fex (`fex`, py-feat's reader) and arrays (`table()`) when first asked.
    A killed recording loads too (`complete` is then False), every file up to its last whole line; one
    still being recorded loads as far as it is written (`recording`, said once in the log). Several
    cameras: see `RecordedSession.cameras`; a camera's subfolder gives that camera of its session."""
    folder = Path(path)
    cameras = camera_folders(folder)
    if cameras:
        return _several_cameras(folder, cameras)
    camera = next((name for name, sub in camera_folders(folder.parent).items() if sub.resolve() == folder.resolve()), "")
    if camera:
        return load_session(folder.parent).cameras[camera]
    if not is_session(folder):
        raise FileNotFoundError(f"{folder}: not a recorded session (needs frames.csv and video.mp4)")
    session = _one_camera(folder, read_markers(folder / "markers.csv"))
    _flag_frames(session)
    return session


def _one_camera(folder: Path, markers: pd.DataFrame, camera: str = "") -> RecordedSession:
    recording = being_recorded(folder)  # asked first: one that ends meanwhile has said so in metadata.json
    metadata = json.loads((folder / "metadata.json").read_text())
    recording = recording and metadata.get("ended") is None
    frames = read_whole_lines(folder / "frames.csv")
    if recording:
        log.warning("%s is still being recorded: reading the %d frames written so far", folder, len(frames))
    annotations = Annotations.load(folder)
    _say_unmatched(annotations, frames["t_monotonic"].to_numpy(), folder)
    return RecordedSession(folder, frames, markers, metadata, folder / "video.mp4", annotations,
                           Identities.load(folder, camera), camera=camera, recording=recording)


def _say_unmatched(annotations: Annotations, t: np.ndarray, folder: Path) -> None:
    """Annotations that match no frame are said, not silently applied to no row."""
    for a in annotations.unmatched(t):
        span = f"at {a.t_start:.6f}" if a.kind == "event" else f"from {a.t_start:.6f} to {a.t_end:.6f}"
        log.warning("%s: the %s %r %s matches no frame (frames.csv's t_monotonic runs %s): it applies to no row; "
                    "times are seconds on the capture clock", folder / ANNOTATIONS_FILE, a.kind, a.label, span,
                    f"from {np.min(t):.6f} to {np.max(t):.6f}" if len(t) else "empty")


def _flag_frames(session: RecordedSession) -> None:
    """frames' `excluded`: the exclusions for everyone (once the session-wide ones are known)."""
    session.frames["excluded"] = session.excluded(session.frames["t_monotonic"].to_numpy())


def _several_cameras(folder: Path, cameras: dict[str, Path]) -> RecordedSession:
    if (folder / "identities.json").is_file():  # each camera's track ids are its own: a top file names nobody
        log.warning("%s: not applied: a several-camera session's renames and merges are each camera's "
                    "(<camera>/identities.json, as the viewer saves them); move them there", folder / "identities.json")
    markers = read_markers(folder / "markers.csv")
    each = {}
    for name, sub in cameras.items():
        # the session's markers (the top markers.csv), with this camera's newest frame as `frame`
        own = markers.drop(columns=[c for c in markers if c.startswith("frame_") and c != f"frame_{name}"])
        each[name] = _one_camera(sub, own.rename(columns={f"frame_{name}": "frame"}), name)
    session = RecordedSession(folder, pd.DataFrame(), markers, json.loads((folder / "metadata.json").read_text()), None,
                              Annotations.load(folder), None, each, recording=any(s.recording for s in each.values()))
    for camera in each.values():
        camera.parent = session
        _flag_frames(camera)
    session.frames = joined_cameras({name: camera.frames for name, camera in each.items()})
    _say_unmatched(session.annotations, session.frames["t_monotonic"].to_numpy(), folder)
    return session


def joined_cameras(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The cameras' tables one after another, with a `camera` column first (a Fex stays a Fex)."""
    table = pd.concat(list(tables.values()), keys=list(tables), names=["camera", None]).copy()  # copy: consolidated
    return table.reset_index(level="camera").reset_index(drop=True)


def on_capture_clocks(frames: Iterator[Frame], folder: Path) -> Iterator[Frame]:
    """The recorded video's frames (numbered in the video) as they were captured: frame index and
    t_monotonic / t_wall / t_lsl from frames.csv, checked against the video's PTS. Video frames past
    the last row (a killed recording) have no known clocks and end the iteration, with a warning."""
    table = read_whole_lines(folder / "frames.csv")
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
