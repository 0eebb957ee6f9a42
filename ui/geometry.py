"""What the overlays draw, as plain arrays: a `FrameResult` becomes line segments and points in image
pixels (x right, y down). No Qt here, so every shape is tested without a window.

Segments are (2K, 2) arrays of point pairs, drawn with `connect="pairs"`: one item draws any number
of faces. Pose axes and gaze follow py-feat's own plotting conventions (radians; +pitch looks up,
+yaw looks to the camera's right).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from realtime_feat.types import FrameResult

_EMPTY = np.zeros((0, 2), np.float32)


def boxes(xyxy: np.ndarray) -> np.ndarray:
    """Four edges per box."""
    if len(xyxy) == 0:
        return _EMPTY
    x1, y1, x2, y2 = (xyxy[:, i] for i in range(4))
    corners = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                        np.stack([x1, y2], 1)], 1)                        # (N, 4, 2) clockwise
    return np.stack([corners, np.roll(corners, -1, axis=1)], 2).reshape(-1, 2).astype(np.float32)


def _centre_size(xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (xyxy[:, :2] + xyxy[:, 2:]) / 2, np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])


def pose_axes(result: FrameResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head-pose x (right), y (down) and z (towards the camera) axes from the face centre, half the face long."""
    rect = result.faces.face_rect
    if len(rect) == 0:
        return _EMPTY, _EMPTY, _EMPTY
    centre, size = _centre_size(rect)
    half = size / 2
    pitch, roll, yaw = (result.faces.pose[:, i] for i in range(3))
    yaw = -yaw
    ends = [np.stack([np.cos(yaw) * np.cos(roll),
                      np.cos(pitch) * np.sin(roll) + np.cos(roll) * np.sin(pitch) * np.sin(yaw)], 1),
            np.stack([-np.cos(yaw) * np.sin(roll),
                      np.cos(pitch) * np.cos(roll) - np.sin(pitch) * np.sin(yaw) * np.sin(roll)], 1),
            np.stack([np.sin(yaw), -np.cos(yaw) * np.sin(pitch)], 1)]
    return tuple(np.stack([centre, centre + e * half[:, None]], 1).reshape(-1, 2).astype(np.float32) for e in ends)


def gaze_arrows(result: FrameResult) -> np.ndarray:
    """Per face: a shaft from between the eyes along the gaze, and two strokes of an arrow head."""
    if result.n_faces == 0:
        return _EMPTY
    f = result.faces
    start = f.landmarks68[:, 36:48].mean(axis=1)                          # both eyes' outlines
    length = _centre_size(f.face_rect)[1]
    pitch, yaw = f.gaze[:, 0], f.gaze[:, 1]
    d = np.stack([np.sin(yaw) * np.cos(pitch), -np.sin(pitch)], 1) * length[:, None]
    tip = start + d
    norm = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    u = d / norm
    head = np.minimum(norm * 0.3, length[:, None] * 0.15)
    side = np.stack([-u[:, 1], u[:, 0]], 1)
    left, right = tip - u * head + side * head * 0.6, tip - u * head - side * head * 0.6
    return np.stack([start, tip, tip, left, tip, right], 1).reshape(-1, 2).astype(np.float32)


def points(values: np.ndarray) -> np.ndarray:
    """(N, K, ≥2) landmarks or mesh → (N·K, 2) x, y."""
    return np.ascontiguousarray(values[..., :2].reshape(-1, 2), np.float32)


def face_at(result: Optional[FrameResult], x: float, y: float) -> Optional[int]:
    """Index of the smallest face box that contains (x, y), or None."""
    if result is None or result.n_faces == 0:
        return None
    b = result.detections.xyxy
    inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
    if not inside.any():
        return None
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return int(np.argmin(np.where(inside, area, np.inf)))


def largest_face(result: FrameResult) -> Optional[int]:
    return result.detections.largest()


def selected_face(result: FrameResult, track_id: Optional[int]) -> Optional[int]:
    """The face of the selected track in `result`, else the largest (None: no face)."""
    if track_id is not None:
        hits = np.flatnonzero(result.track_ids == track_id)
        if len(hits):
            return int(hits[0])
    return largest_face(result)


def label_of(track_id: int, name: str) -> str:
    """What a face box is labelled with: the enrolled name, else the track id, else '…' while tentative."""
    if name and name != "unknown":
        return f"{name} #{track_id}"
    return f"#{track_id}" if track_id >= 0 else "…"


class DisplaySmoother:
    """Exponential smoothing of each tracked face's boxes and points, for display only: what is
    written to disk never passes through here. `strength` 0 = off, towards 1 = smoother (more lag)."""

    FIELDS = ("face_rect", "landmarks68", "mesh", "pose", "gaze")

    def __init__(self, strength: float = 0.0):
        self.strength = strength
        self._state: dict[int, dict[str, np.ndarray]] = {}

    def __call__(self, result: FrameResult) -> FrameResult:
        if self.strength <= 0 or result.n_faces == 0:
            self._state.clear()
            return result
        a = self.strength
        f = result.faces
        out = {name: getattr(f, name).copy() for name in self.FIELDS}
        xyxy = result.detections.xyxy.copy()
        seen = {}
        for i, tid in enumerate(int(t) for t in result.track_ids):
            if tid < 0:
                continue
            old = self._state.get(tid)
            if old is not None:
                for name in self.FIELDS:
                    out[name][i] = a * old[name] + (1 - a) * out[name][i]
                xyxy[i] = a * old["xyxy"] + (1 - a) * xyxy[i]
            seen[tid] = {**{name: out[name][i] for name in self.FIELDS}, "xyxy": xyxy[i]}
        self._state = seen
        return replace(result, detections=replace(result.detections, xyxy=xyxy), faces=replace(f, **out))
