"""Typed values that flow between the stages (DESIGN.md, "Types at the seams").

Array-of-faces types in the spirit of roboflow/supervision's `Detections`: one
object holds every face of a frame, each field's first axis is the face axis,
shapes are checked where the object is made, and indexing applies to every field.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Optional

import numpy as np


def _check_shape(owner: str, name: str, value: np.ndarray, shape: tuple) -> None:
    """`shape` uses None for "any size" (the face axis is checked separately)."""
    if value.ndim != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        want = "×".join("N" if s is None else str(s) for s in shape)
        raise ValueError(f"{owner}.{name}: expected shape {want}, got {'×'.join(map(str, value.shape))}")


def _index(value: Optional[np.ndarray], key) -> Optional[np.ndarray]:
    if value is None:
        return None
    if isinstance(key, (int, np.integer)):
        key = [int(key)]  # an int keeps the face axis, as in supervision
    return value[key]


class _Faces:
    """Shared behaviour of the per-face array types: shape checks, len, indexing, merge."""

    __slots__ = ()
    _SHAPES: dict = {}

    def __post_init__(self) -> None:
        n = None
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            value = np.asarray(value)
            object.__setattr__(self, f.name, value)
            _check_shape(type(self).__name__, f.name, value, self._SHAPES[f.name])
            if n is None:
                n = value.shape[0]
            elif value.shape[0] != n:
                raise ValueError(
                    f"{type(self).__name__}.{f.name}: has {value.shape[0]} faces, the other fields have {n}")

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))

    def __getitem__(self, key):
        return replace(self, **{f.name: _index(getattr(self, f.name), key) for f in fields(self)})

    @classmethod
    def merge(cls, items: list):
        """Stack faces of several objects; an optional field must be all present or all None."""
        if not items:
            return cls.empty()
        out = {}
        for f in fields(cls):
            values = [getattr(i, f.name) for i in items]
            present = [v is not None for v in values]
            if any(present) and not all(present):
                raise ValueError(f"{cls.__name__}.merge: field {f.name} is None in some items only")
            out[f.name] = np.concatenate(values) if all(present) else None
        return cls(**out)


@dataclass(frozen=True, slots=True)
class Detections(_Faces):
    """Faces found in one frame: boxes in source pixels (x1, y1, x2, y2)."""

    xyxy: np.ndarray                     # (N, 4) float32
    scores: np.ndarray                   # (N,) float32
    keypoints: Optional[np.ndarray] = None  # (N, 5, 2) float32: eyes, nose, mouth corners

    _SHAPES = {"xyxy": (None, 4), "scores": (None,), "keypoints": (None, 5, 2)}

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))

    def largest(self) -> Optional[int]:
        """The index of the face with the largest box (None: no face)."""
        if len(self.xyxy) == 0:
            return None
        b = self.xyxy
        return int(np.argmax((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))


@dataclass(frozen=True, slots=True)
class FaceAnalysis(_Faces):
    """What the multitask model (and ArcFace) says about each face, in source pixels and radians.

    `face_rect` is the 1.2× square chip the networks saw (py-feat writes it as FaceRect*).
    `gaze` is (pitch, yaw) with py-feat's Fex signs (positive pitch = looking up);
    `pose` is py-feat's (Pitch, Roll, Yaw, X, Y, Z).
    """

    face_rect: np.ndarray     # (N, 4) xyxy
    au: np.ndarray            # (N, 20) probabilities
    emotions: np.ndarray      # (N, 7) probabilities, sum 1
    va: np.ndarray            # (N, 2) valence, arousal in [-1, 1]
    gaze: np.ndarray          # (N, 2) pitch, yaw
    pose: np.ndarray          # (N, 6)
    mesh: np.ndarray          # (N, 478, 3) x, y in pixels, z relative depth
    landmarks68: np.ndarray   # (N, 68, 2)
    blendshapes: np.ndarray   # (N, 52)
    embedding: Optional[np.ndarray] = None  # (N, 512) ArcFace, not normalised

    _SHAPES = {
        "face_rect": (None, 4), "au": (None, 20), "emotions": (None, 7), "va": (None, 2),
        "gaze": (None, 2), "pose": (None, 6), "mesh": (None, 478, 3), "landmarks68": (None, 68, 2),
        "blendshapes": (None, 52), "embedding": (None, 512),
    }

    @classmethod
    def empty(cls, with_embedding: bool = False) -> "FaceAnalysis":
        z = lambda *s: np.zeros((0, *s), np.float32)  # noqa: E731
        return cls(z(4), z(20), z(7), z(2), z(2), z(6), z(478, 3), z(68, 2), z(52),
                   z(512) if with_embedding else None)


@dataclass(frozen=True, slots=True)
class Frame:
    """One image from a source, stamped when it left the source (DESIGN.md, "Clocks")."""

    image: np.ndarray            # (H, W, 3) uint8 RGB
    index: int                   # gap-free index within the source
    t_monotonic_ns: int
    t_wall_ns: int
    t_lsl: Optional[float] = None
    source_id: str = ""
    pts: Optional[float] = None  # seconds on the source's own clock (video PTS); None for images

    def __post_init__(self) -> None:
        img = self.image
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"Frame.image: expected H×W×3 uint8 RGB, got {img.shape} {img.dtype}")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)"""
        return self.image.shape[0], self.image.shape[1]


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything known about one analysed frame; what the UI, recorder, LSL and CLI consume."""

    index: int
    t_monotonic_ns: int
    t_wall_ns: int
    t_lsl: Optional[float]
    source_id: str
    pts: Optional[float]
    height: int
    width: int
    detections: Detections
    faces: FaceAnalysis
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # (N,), -1 = none yet
    timings_ms: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not len(self.detections) == len(self.faces) == len(self.track_ids):
            raise ValueError(f"FrameResult: {len(self.detections)} detections, {len(self.faces)} analysed faces, "
                             f"{len(self.track_ids)} track ids")

    @classmethod
    def of(cls, frame: Frame, detections: Detections, faces: FaceAnalysis, timings_ms: dict) -> "FrameResult":
        return cls(frame.index, frame.t_monotonic_ns, frame.t_wall_ns, frame.t_lsl, frame.source_id,
                   frame.pts, frame.size[0], frame.size[1], detections, faces,
                   np.full(len(detections), -1, np.int64), timings_ms)

    @property
    def n_faces(self) -> int:
        return len(self.detections)
