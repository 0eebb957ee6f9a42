"""What the session viewer shows, without Qt: the captured frames on the recording's own clock, each one's
place in the video and its recorded analysis (a `FrameResult`, drawn by the live overlay code), who each
face is (identities.json applied), whole-session signal curves per person, markers and review's events,
and the spans the timeline shades. Edits go through the session's annotations and identities, which save
themselves; nothing recorded is rewritten.

Times are seconds from the session's first captured frame (t_monotonic − t0; with several cameras the
earliest camera's, so every camera's viewer has one time axis); a position is a row of frames.csv (every
captured frame, analysed or not, in the video or not).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import pandas as pd

from ..recording.fex_arrays import ArraysBuild
from ..types import FrameResult
from . import quality

GAP_S = 1.0  # a person's curve breaks where they were not seen for longer


@dataclass(frozen=True)
class ReviewFrame:
    position: int                    # row of frames.csv
    frame: int                       # capture index
    t: float                         # seconds from the first frame
    pts: Optional[int]               # PTS in the video (µs); None: not in the video (the encoder dropped it)
    result: Optional[FrameResult]    # the recorded analysis; None: not analysed, or not read yet
    names: tuple[str, ...]           # each face's person
    note: str                        # why there is no image or no overlay, else ""


class SessionReview:
    def __init__(self, session, build: Optional[ArraysBuild] = None):
        if not len(session.frames):
            raise ValueError(f"{session.folder}: no frame was recorded (frames.csv has no row)")
        self.session = session
        self.recorded_analysis = session.metadata.get("analyser", {}) is not None  # record --no-analysis: None
        self.build = build if build is not None else ArraysBuild(session.folder, mesh=session.has_mesh).start()
        f = session.frames
        self.frames = f["frame"].to_numpy(np.int64)
        self.t = f["t_monotonic"].to_numpy(np.float64) - session.t0
        self.analysed = f["analysed"].to_numpy() == 1
        in_video = f["in_video"].to_numpy() == 1
        self.pts = np.where(in_video, np.round(f["video_time"].fillna(-1).to_numpy() * 1e6), -1).astype(np.int64)
        self.arrays = None
        self._rows = -1
        self._persons: Optional[np.ndarray] = None
        self.refresh()

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def duration(self) -> float:
        return float(self.t[-1]) if len(self.t) else 0.0

    # -- the analysis, as far as it is read ------------------------------------------------------------
    @property
    def loading(self) -> bool:
        return not self.build.done

    def refresh(self) -> bool:
        """Take the rows read since the last call (fex.csv is read into arrays on a thread the first time);
        True when there are new ones."""
        arrays = self.build.arrays()
        if arrays is None:
            return False
        changed = arrays is not self.arrays or self._rows != arrays.n_rows
        self.arrays, self._rows = arrays, arrays.n_rows
        if changed:
            self._persons = None
        if self.build.done and self.build.error is None:
            self.session.arrays = arrays  # load_session's own, for merges and tables
        return changed

    @property
    def persons(self) -> np.ndarray:
        """Each arrays row's person ("" without a confirmed track)."""
        if self._persons is None:
            self._persons = self.session.persons(self.arrays) if self.arrays is not None else np.zeros(0, object)
        return self._persons

    # -- frames ------------------------------------------------------------------------------------------
    def position_at(self, t: float) -> int:
        """The frame on screen at `t`: the last one captured at or before it."""
        return int(np.clip(np.searchsorted(self.t, t + 1e-9, "right") - 1, 0, len(self.t) - 1))

    def show(self, position: int) -> ReviewFrame:
        position = int(np.clip(position, 0, len(self.frames) - 1))
        frame, pts = int(self.frames[position]), int(self.pts[position])
        pts = pts if pts >= 0 else None
        result, names, note = None, (), "" if pts is not None else "not in the video (the encoder dropped it)"
        if not self.analysed[position]:
            why = "analysis took a newer frame" if self.recorded_analysis else "recorded without analysis"
            note = note or f"not analysed ({why})"
        elif self.arrays is None or (self.loading and (not self.arrays.n_rows or frame > self.arrays.frames[-1])):
            note = f"analysis still being read from fex.csv ({100 * self.build.fraction:.0f} %)"
        else:
            result = self.arrays.result(frame)
            if result is None:
                note = ("analysed; its rows were not written yet when the session was opened (still being "
                        "recorded)" if self.session.recording
                        else "analysed, but its rows are not in fex.csv (the recording was cut off)")
            else:
                result, names = self._as_persons(result, self.persons[self.arrays.rows_of(frame)][:result.n_faces])
        return ReviewFrame(position, frame, float(self.t[position]), pts, result, names, note)

    def _as_persons(self, result: FrameResult, persons: np.ndarray) -> tuple[FrameResult, tuple[str, ...]]:
        """Faces drawn as the people they are: a merged track under the id it was merged into (one colour
        per person), named where a name is known ("" for "#id", which the label shows anyway)."""
        roots = np.array([self.session.identities.root(int(t)) if t >= 0 else t for t in result.track_ids], np.int64)
        names = tuple("" if p == self.session.identities.unnamed(r) else str(p) for p, r in zip(persons, roots))
        return replace(result, track_ids=roots), names

    def colours(self) -> dict[str, int]:
        """Each person's colour slot: that of their lowest track id after merges (as their boxes have)."""
        people = self.people()
        roots = [self.session.identities.root(int(t)) for t in people["track_id"]]
        return people.assign(root=roots).groupby("person")["root"].min().to_dict()

    # -- people -------------------------------------------------------------------------------------------
    def people(self) -> pd.DataFrame:
        """One row per confirmed track: track_id, person, rows, first and last seen (s), the track it is
        merged into (`into`, itself if none) and the name given to it itself (`own`, "" if none)."""
        if self.arrays is None or not self.arrays.n_rows:
            return pd.DataFrame(columns=["track_id", "person", "rows", "first", "last", "into", "own"])
        table = pd.DataFrame({"track_id": self.arrays.column("track_id"), "person": self.persons,
                              "t": self.arrays.column("t_monotonic") - self.session.t0})
        table = table[table["person"] != ""]
        by = table.groupby("track_id")
        out = pd.DataFrame({"person": by["person"].first(), "rows": by.size(), "first": by["t"].min(),
                            "last": by["t"].max()}).reset_index()
        out["track_id"] = out["track_id"].astype(np.int64)
        identities = self.session.identities
        out["into"] = [identities.root(t) for t in out["track_id"]]
        out["own"] = [identities.own_name(t) for t in out["track_id"]]
        return out

    def rename(self, track: int, name: str) -> None:
        """ValueError (one line) when another track of that name is seen with it (as `merge`)."""
        self._whole_analysis("renamed")
        self.session.rename_track(track, name)
        self._persons = None

    def merge(self, tracks: list[int]) -> int:
        """ValueError (one line) when the tracks are seen together (the arrays must be read in full)."""
        self._whole_analysis("merged")
        into = self.session.merge_tracks(tracks)
        self._persons = None
        return into

    def unmerge(self, track: int) -> list[int]:
        """The tracks apart again (see `Identities.unmerge`)."""
        apart = self.session.identities.unmerge(track)
        self._persons = None
        return apart

    def _whole_analysis(self, done: str) -> None:
        if self.loading:
            raise ValueError(f"tracks can be {done} once fex.csv is read (see the progress bar)")

    # -- the timeline ------------------------------------------------------------------------------------
    def curves(self, signal: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """person → (t, values) of `signal` over the whole session, NaN where the person was away > GAP_S."""
        if self.arrays is None or not self.arrays.n_rows:
            return {}
        t = self.arrays.column("t_monotonic") - self.session.t0
        v = self.arrays.column(signal).astype(np.float64)
        persons = self.persons
        out = {}
        for person in sorted(set(persons) - {""}):
            mine = persons == person
            pt, pv = t[mine], v[mine]
            breaks = np.flatnonzero(np.diff(pt) > GAP_S) + 1
            out[person] = (np.insert(pt, breaks, np.nan), np.insert(pv, breaks, np.nan))
        return out

    def signals(self) -> list[str]:
        if self.arrays is None:
            return []
        a = self.arrays
        return [*a.names("au"), *a.names("emotions"), *a.names("va"), "gaze_pitch", "gaze_yaw", "Pitch", "Yaw",
                "Roll", "FaceScore", *a.names("blendshapes")]

    def spans(self) -> dict[str, quality.Spans]:
        """What the timeline shades, in seconds from the first frame."""
        f, t0 = self.session.frames, self.session.t0
        found = {"capture gap": quality.capture_gaps(f), "encoder drop": quality.encoder_drops(f),
                 "not analysed": quality.not_analysed(f)}
        return {k: quality.Spans(s.start - t0, s.end - t0) for k, s in found.items()}

    def markers(self) -> pd.DataFrame:
        """markers.csv's markers: label, t (s from the first frame), origin."""
        m = self.session.markers
        return pd.DataFrame({"label": m["label"].astype(str), "t": m["t_monotonic"] - self.session.t0,
                             "origin": m["origin"]})

    def close(self) -> None:
        self.build.stop()
