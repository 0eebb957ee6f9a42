"""What a recorded session's own files say about its quality: the spans the viewer's timeline shades and the
report lists (capture gaps, frames the encoder dropped, stretches analysis skipped), rates and counts, and
per-person quality flags. Times are seconds on the capture clock (t_monotonic)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..recording.fex import CHIP_EXPAND


@dataclass(frozen=True)
class Spans:
    start: np.ndarray   # (K,) seconds
    end: np.ndarray     # (K,)

    def __len__(self) -> int:
        return len(self.start)

    @property
    def seconds(self) -> float:
        return float((self.end - self.start).sum())


def runs(mask: np.ndarray, t: np.ndarray, min_s: float = 0.0) -> Spans:
    """Runs of consecutive True in `mask` (one per frame at times `t`), each from its first frame to the
    frame after its last (its last frame's own time at the end); runs shorter than `min_s` left out."""
    mask = np.asarray(mask, bool)
    if not mask.any():
        return Spans(np.zeros(0), np.zeros(0))
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    first, last = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    start, end = t[first], t[np.minimum(last + 1, len(t) - 1)]
    keep = end - start >= min_s
    return Spans(start[keep], end[keep])


def capture_gaps(frames: pd.DataFrame, factor: float = 3.0, min_s: float = 0.2) -> Spans:
    """Intervals between captured frames longer than `factor` × the median interval (and `min_s`): the
    source delivered nothing (a camera lost and reopened, a stalled stream)."""
    t = frames["t_monotonic"].to_numpy()
    if len(t) < 3:
        return Spans(np.zeros(0), np.zeros(0))
    dt = np.diff(t)
    long = np.flatnonzero(dt > max(min_s, factor * np.median(dt)))
    return Spans(t[long], t[long + 1])


def encoder_drops(frames: pd.DataFrame) -> Spans:
    """Captured frames that are not in the video (the encoder's queue was full)."""
    return runs(frames["in_video"].to_numpy() == 0, frames["t_monotonic"].to_numpy())


def not_analysed(frames: pd.DataFrame, min_s: float = 0.5) -> Spans:
    """Stretches of at least `min_s` with no analysed frame (analysis takes the newest frame, so single
    skipped frames are its normal pace, not a fault)."""
    return runs(frames["analysed"].to_numpy() == 0, frames["t_monotonic"].to_numpy(), min_s)


def summary(session) -> dict:
    """Duration, rates, drops and gaps, faces per frame, from frames.csv and metadata.json."""
    f = session.frames
    t = f["t_monotonic"].to_numpy()
    duration = float(t[-1] - t[0]) if len(t) > 1 else 0.0
    analysed = f[f["analysed"] == 1]
    gaps = capture_gaps(f)
    faces = analysed["n_faces"].fillna(0).astype(int).clip(upper=3).value_counts().reindex(range(4), fill_value=0)
    counts = session.metadata.get("counts") or {}
    # None: unknown (metadata.json's counts are null until the recording ends; a killed one's stay null)
    results_dropped = [v for k, v in (counts.get("dropped") or {}).items() if k.startswith("results")]
    return {"duration_s": duration, "captured": len(f), "analysed": len(analysed),
            "capture_fps": (len(f) - 1) / duration if duration else float("nan"),
            "analysed_fps": (len(analysed) - 1) / duration if duration and len(analysed) else float("nan"),
            "encoder_dropped": int((f["in_video"] == 0).sum()),
            "results_dropped": None if None in results_dropped or not results_dropped else sum(results_dropped),
            "gaps": len(gaps), "gap_s": gaps.seconds,
            "longest_gap_s": float((gaps.end - gaps.start).max()) if len(gaps) else 0.0,
            "not_analysed_s": not_analysed(f).seconds,
            "faces_per_frame": {("3+" if k == 3 else str(k)): int(v) for k, v in faces.items()},
            "excluded_frames": int(f["excluded"].sum()) if "excluded" in f else 0,
            "complete": session.complete}


QC_COLUMNS = ["FaceRectWidth", "FaceRectHeight", "FaceScore", "Pitch", "Yaw"]


def person_quality(table: pd.DataFrame, analysed_frames: int, min_score: float = 0.8, max_turn_deg: float = 40.0,
                   min_face_px: float = 48.0) -> pd.DataFrame:
    """Per person (rows of `table`: `session.table(QC_COLUMNS)`): rows, share of analysed frames present,
    and the share of their rows with a low detection score, the head turned beyond ±max_turn_deg (pitch
    or yaw), a face smaller than min_face_px (the detector's box, longer side: fex.csv's FaceRect is the
    CHIP_EXPAND× square chip around it), or excluded."""
    rows = table[table["person"] != ""]
    turn = np.radians(max_turn_deg)
    flags = pd.DataFrame({
        "person": rows["person"],
        "low_score": rows["FaceScore"] < min_score,
        "turned": (rows["Pitch"].abs() > turn) | (rows["Yaw"].abs() > turn),
        "small": np.maximum(rows["FaceRectWidth"], rows["FaceRectHeight"]) / CHIP_EXPAND < min_face_px,
        "excluded": rows["excluded"]})
    by = flags.groupby("person")
    out = by[["low_score", "turned", "small", "excluded"]].mean()
    out.insert(0, "rows", by.size())
    out.insert(1, "share_of_frames", out["rows"] / max(analysed_frames, 1))
    return out.reset_index()
