"""The Fex CSV: py-feat Detectorv2's columns in py-feat's order, then ours.

py-feat's `feat.utils.io.read_feat` reads the file into a `Fex` whose `.aus`, `.emotions`,
`.landmarks`, `.poses`, ... work. Its rule `au_columns = [c for c in cols if "AU" in c]` means
none of our own columns may contain "AU".

One row per face per analysed frame; a frame without a face gets one placeholder row (FaceRect
NaN, FaceScore 0, every prediction NaN), as py-feat writes it. Rows go to `<path>.partial` and
reach the disk at least once a second; `close()` renames the file into place, so a file under
its final name is complete.
"""
from __future__ import annotations

import contextlib
import csv
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import first_line
from ..types import FrameResult

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


class FexWriter:
    """Append `FrameResult`s to a Fex CSV. Use as a context manager; `input_name` fills `input`."""

    def __init__(self, path: os.PathLike, video: bool, flush_seconds: float = 1.0, partial: bool = True,
                 leave_out: tuple[str, ...] = ()):
        """partial=False writes under the final name from the start (a recorded session, whose
        completeness metadata.json states). `leave_out`: "mesh" and/or "embedding", written as empty
        cells (py-feat reads them as NaN)."""
        unknown = set(leave_out) - set(LEAVE_OUT)
        if unknown:
            raise ValueError(f"FexWriter.leave_out: unknown {sorted(unknown)}; choose from {sorted(LEAVE_OUT)}")
        self.path = Path(path)
        self.left_out = [LEAVE_OUT[name] for name in leave_out]
        self.partial = self.path.with_name(self.path.name + ".partial") if partial else self.path
        self.video = video
        self.flush_seconds = flush_seconds
        self.rows_written = 0
        self.frames_written = 0
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
        tail.append("")  # Identity: filled by finish_identities once every embedding is known
        clocks = ["" if result.pts is None else f"{result.pts:.6f}", f"{result.t_monotonic_ns / 1e9:.6f}",
                  f"{result.t_wall_ns / 1e9:.6f}", "" if result.t_lsl is None else f"{result.t_lsl:.6f}",
                  result.n_faces]
        tracked = identities is not None
        labels, distances = identities if tracked else ([""] * result.n_faces, [np.nan] * result.n_faces)
        numeric = numeric_rows(result)
        for block in self.left_out:
            numeric[:, block] = np.nan
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
        """Finish the file: under its final name if complete, else kept as `<path>.partial`. The file is
        closed even when its last rows cannot be written (OSError naming it)."""
        with self._writing():
            self._file.close()
        if not complete or self.partial == self.path:
            return self.partial
        self.partial.replace(self.path)
        return self.path

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


def finish_identities(path: Path, threshold: float = 0.8) -> None:
    """Fill `Identity` ("Person_k") with py-feat's own clustering of the embeddings, as
    Detectorv2.detect does at the end of a run; rewrites the file atomically."""
    from feat.utils.io import read_feat

    fex = read_feat(str(path))
    if fex[fex.identity_columns].isna().all().all():
        return
    fex.compute_identities(threshold=threshold, inplace=True)
    tmp = path.with_name(path.name + ".tmp")
    fex.to_csv(tmp, index=False, float_format="%.7g")
    tmp.replace(path)
