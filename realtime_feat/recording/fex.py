"""The Fex CSV: py-feat Detectorv2's columns in py-feat's order, then ours.

py-feat's `feat.utils.io.read_feat` reads the file into a `Fex` whose `.aus`, `.emotions`,
`.landmarks`, `.poses`, ... work. Its rule `au_columns = [c for c in cols if "AU" in c]` means
none of our own columns may contain "AU".

One row per face per analysed frame; a frame without a face gets one placeholder row (FaceRect
NaN, FaceScore 0, every prediction NaN), as py-feat writes it. Rows go to `<path>.partial` and
reach the disk at least once a second; `close()` renames the file into place, so a file under
its final name is complete. What is known only once every row is in (py-feat's `Identity`, and review's
columns of a re-analysed session) is filled in then, in one pass from `.partial` to the final name.

Clock columns are written as frames.csv writes them, to the nanosecond ("%.9f"), and read back as the
very float64 the live copy holds (`clock_values`), so every reader puts a row on the same side of an
exclusion's edge.
"""
from __future__ import annotations

import contextlib
import csv
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ..errors import first_line
from ..types import FrameResult

if TYPE_CHECKING:
    import pandas as pd

# timestamp: seconds on the source's own clock (video PTS), empty where the source has none (camera,
# images); t_monotonic / t_wall / t_lsl: seconds on the capture clocks (DESIGN.md, "Clocks");
# track_id: the tracker's id (-1 while a track is tentative, empty without a tracker);
# identity / identity_distance: the enrolled name closest to the track, or "unknown".
# FaceRect* are py-feat's: the square chip the networks saw, CHIP_EXPAND × the detector box's longer side
# around its centre (py-feat's EXPAND_BBOX; not imported: it would load torch for a report). So the face's
# longer side is FaceRectWidth / CHIP_EXPAND.
CHIP_EXPAND = 1.2
OUR_COLUMNS = ["timestamp", "t_monotonic", "t_wall", "t_lsl", "n_faces", "track_id", "identity", "identity_distance"]


def pyfeat_columns(video: bool) -> list[str]:
    from feat.multitask import (
        AU_NAMES_V24,
        EMOTION_NAMES_V24,
        MESH_COLUMNS_V2,
        VA_COLUMNS_V2,
    )
    from feat.utils import (
        FEAT_FACEBOX_COLUMNS,
        FEAT_FACEPOSE_COLUMNS_6D,
        FEAT_GAZE_COLUMNS,
        FEAT_IDENTITY_COLUMNS,
        MP_BLENDSHAPE_NAMES,
        openface_2d_landmark_columns,
    )

    return [*FEAT_FACEBOX_COLUMNS, *openface_2d_landmark_columns, *FEAT_FACEPOSE_COLUMNS_6D, *AU_NAMES_V24,
            *EMOTION_NAMES_V24, *VA_COLUMNS_V2, *FEAT_GAZE_COLUMNS, *FEAT_IDENTITY_COLUMNS[1:], *MESH_COLUMNS_V2,
            *MP_BLENDSHAPE_NAMES, "FrameHeight", "FrameWidth", "input", "frame",
            *(["approx_time"] if video else []), "Identity"]


def columns(video: bool) -> list[str]:
    return pyfeat_columns(video) + OUR_COLUMNS


N_VALUES = 5 + 136 + 6 + 20 + 7 + 2 + 3 + 512 + 1434 + 52 + 2  # numeric block before `input`
# Where the identity embedding and the mesh sit in that block: together 90 % of a row, and what a
# recording may leave out (`FexWriter(leave_out=...)`: the columns stay, their cells are empty).
EMBEDDING = slice(179, 691)
MESH = slice(691, 2125)
LEAVE_OUT = {"embedding": EMBEDDING, "mesh": MESH}


def numeric_rows(result: FrameResult) -> np.ndarray:
    """(rows, N_VALUES) float64 in column order; one NaN placeholder row when there is no face."""
    n = result.n_faces
    rows = np.full((max(n, 1), N_VALUES), np.nan)
    rows[:, -2:] = (result.height, result.width)
    if n == 0:
        rows[0, 4] = 0.0  # FaceScore of the placeholder
        return rows
    f = result.faces
    rect = f.face_rect
    gaze_pitch, gaze_yaw = f.gaze[:, 0].astype(np.float64), f.gaze[:, 1].astype(np.float64)
    gaze_angle = np.arccos(np.clip(np.cos(gaze_pitch) * np.cos(gaze_yaw), -1.0, 1.0))
    embedding = f.embedding if f.embedding is not None else np.full((n, 512), np.nan)
    blocks = [rect[:, :2], rect[:, 2:] - rect[:, :2], result.detections.scores[:, None],
              f.landmarks68[:, :, 0], f.landmarks68[:, :, 1], f.pose, f.au, f.emotions, f.va,
              np.stack([gaze_pitch, gaze_yaw, gaze_angle], 1), embedding,
              f.mesh[:, :, 0], f.mesh[:, :, 1], f.mesh[:, :, 2], f.blendshapes]
    col = 0
    for block in blocks:
        rows[:, col:col + block.shape[1]] = block
        col += block.shape[1]
    return rows


def approx_time(seconds: float) -> str:
    from feat.data import VideoDataset

    return VideoDataset.convert_sec_to_min_sec(seconds)


def _fmt(value: float) -> str:
    return "" if value != value else f"{value:.7g}"


def clock_values(result: FrameResult) -> list[Optional[float]]:
    """timestamp, t_monotonic, t_wall, t_lsl as fex.csv holds them: seconds rounded to the nanosecond
    (the capture clocks are integer ns already), None where there is none."""
    return [None if result.pts is None else round(result.pts, 9), result.t_monotonic_ns / 1e9,
            result.t_wall_ns / 1e9, None if result.t_lsl is None else round(result.t_lsl, 9)]


def clock_text(seconds: Optional[float]) -> str:
    """A clock value as frames.csv writes it: "%.9f", which reads back as the same float64."""
    return "" if seconds is None else f"{seconds:.9f}"


IDENTITY_THRESHOLD = 0.8  # py-feat's default cosine-similarity cut-off for one person
# What a `review` callable is given: each row's frame, track, face box and capture time.
REVIEW_KEYS = ["frame", "track_id", "FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight", "t_monotonic"]


class FexWriter:
    """Append `FrameResult`s to a Fex CSV. Use as a context manager; `input_name` fills `input`."""

    def __init__(self, path: os.PathLike, video: bool, flush_seconds: float = 1.0, partial: bool = True,
                 leave_out: tuple[str, ...] = (), identity: bool = False,
                 review: Optional[Callable[[pd.DataFrame], pd.DataFrame]] = None):
        """partial=False writes under the final name from the start (a recorded session, whose
        completeness metadata.json states). `leave_out`: "mesh" and/or "embedding", written as empty
        cells (py-feat reads them as NaN). Both of the following need partial=True and are applied by
        `close()`: `identity` fills `Identity` with py-feat's clustering of every embedding, as
        Detectorv2.detect does at the end of a run; `review(table of REVIEW_KEYS, a row per row)`
        returns columns appended to every row (`process SESSION_DIR`'s person and excluded)."""
        unknown = set(leave_out) - set(LEAVE_OUT)
        if unknown:
            raise ValueError(f"FexWriter.leave_out: unknown {sorted(unknown)}; choose from {sorted(LEAVE_OUT)}")
        if (identity or review) and not partial:
            raise ValueError("FexWriter: identity and review are filled in on the way to the final name: need partial=True")
        self.path = Path(path)
        self.left_out = [LEAVE_OUT[name] for name in leave_out]
        self.partial = self.path.with_name(self.path.name + ".partial") if partial else self.path
        self.video = video
        self.flush_seconds = flush_seconds
        self.rows_written = 0
        self.frames_written = 0
        self.review = review
        # kept in memory for close(): the embeddings (2 kB a row) and review's keys (56 B a row)
        self._embeddings: Optional[list] = [] if identity and "embedding" not in leave_out else None
        self._keys: Optional[list] = [] if review is not None else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.partial, "w", newline="")
        self._csv = csv.writer(self._file)
        with self._writing():
            self._csv.writerow(columns(video))
        self._last_flush = time.monotonic()

    def append(self, result: FrameResult, input_name: str, identities: Optional[tuple] = None) -> None:
        """One row per face (a placeholder row without faces). `identities`: (labels, distances) per
        face from the tracker, given when a tracker ran: then track ids are written too."""
        tail = [input_name, result.index]
        if self.video:
            tail.append(approx_time(result.pts or 0.0))
        tail.append("")  # Identity: filled in by close() once every embedding is known
        times = clock_values(result)
        clocks = [*map(clock_text, times), result.n_faces]
        tracked = identities is not None
        labels, distances = identities if tracked else ([""] * result.n_faces, [np.nan] * result.n_faces)
        numeric = numeric_rows(result)
        for block in self.left_out:
            numeric[:, block] = np.nan
        if self._embeddings is not None:
            self._embeddings.append(numeric[:, EMBEDDING].astype(np.float32))
        if self._keys is not None:
            track = np.asarray(result.track_ids, np.float64) if tracked and result.n_faces else np.nan
            keys = np.empty((len(numeric), len(REVIEW_KEYS)))
            keys[:, 0], keys[:, 1], keys[:, 2:6], keys[:, 6] = result.index, track, numeric[:, :4], times[1]
            self._keys.append(keys)
        with self._writing():
            for i, row in enumerate(numeric):
                face = [result.track_ids[i] if tracked else "", labels[i], _fmt(distances[i])] if result.n_faces \
                    else ["", "", ""]
                self._csv.writerow([*map(_fmt, row.tolist()), *tail, *clocks, *face])
        self.rows_written += max(result.n_faces, 1)
        self.frames_written += 1
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        with self._writing():
            self._file.flush()
        self._last_flush = time.monotonic()

    def close(self, complete: bool = True) -> Path:
        """Finish the file: under its final name if complete (with `Identity` and review's columns),
        else kept as `<path>.partial`. The file is closed even when its last rows cannot be written
        (OSError naming it); if filling in fails, `.partial` keeps every row and nothing has the final name."""
        with self._writing():
            self._file.close()
        if not complete or self.partial == self.path:
            return self.partial
        identity = self._identities()
        appended = None
        if self.review is not None:
            import pandas as pd

            appended = self.review(pd.DataFrame(np.concatenate(self._keys), columns=REVIEW_KEYS))
        if identity is None and appended is None:
            self.partial.replace(self.path)
        else:
            self._fill_in(identity, appended)
        return self.path

    def _identities(self) -> Optional[list]:
        """Each row's `Identity` ("Person_k", "" without a face), or None when no row has an embedding."""
        if not self._embeddings:
            return None
        embeddings = np.concatenate(self._embeddings)
        if not np.isfinite(embeddings).all(axis=1).any():
            return None
        from feat.utils.stats import cluster_identities

        return [label if isinstance(label, str) else "" for label in
                cluster_identities(embeddings, threshold=IDENTITY_THRESHOLD)]

    def _fill_in(self, identity: Optional[list], appended: Optional[pd.DataFrame]) -> None:
        """`.partial` to the final name, a line at a time: `Identity` filled in, `appended`'s columns
        added; every other cell is copied as written (no number is read and written again)."""
        at = len(pyfeat_columns(self.video)) - 1  # Identity: py-feat's last column
        n = self.rows_written
        labels = [None] * n if identity is None else identity
        extra = [[]] * n if appended is None else appended.astype(object).to_numpy().tolist()
        finishing = self.path.with_name(self.path.name + ".finishing")
        try:
            with self._writing(), open(self.partial, newline="") as src, open(finishing, "w", newline="") as dst:
                rows, out = csv.reader(src), csv.writer(dst)
                out.writerow(next(rows) + ([] if appended is None else list(appended.columns)))
                for row, label, more in zip(rows, labels, extra, strict=True):  # strict: a row count that differs raises
                    if label is not None:
                        row[at] = label
                    out.writerow(row + more)
            finishing.replace(self.path)
        except BaseException:
            finishing.unlink(missing_ok=True)
            raise
        self.partial.unlink()

    @contextlib.contextmanager
    def _writing(self):
        """An OSError (full disk, file too large, folder gone) as one line naming the file and the cause."""
        try:
            yield
        except OSError as exc:
            raise OSError(f"writing {self.path} failed ({exc.strerror or first_line(exc)})") from exc

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._file.closed:
            self.close(complete=exc_type is None)
