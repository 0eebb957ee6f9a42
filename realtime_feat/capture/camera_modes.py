"""Camera modes: asking a camera for a pixel format, size and rate through OpenCV, reading back the
mode the driver actually gave, listing the modes a camera offers (Linux: V4L2's own enumeration),
and saying when a camera delivers fewer frames than asked.

USB webcams often give 30 frames/s at 720p or 1080p only in MJPEG (raw YUYV does not fit the USB
bandwidth), so MJPEG is asked for first by default; OpenCV decodes it to BGR as any other format.
The pixel format is set before the size and the rate: on V4L2 the sizes and rates on offer depend on it.
"""
from __future__ import annotations

import collections
import ctypes
import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional

log = logging.getLogger(__name__)

DEFAULT_FOURCC = "MJPG"


@dataclass(frozen=True)
class CameraMode:
    """A pixel format (FourCC, "" where the driver does not say), a size and a rate (0: not said)."""

    fourcc: str
    width: int
    height: int
    fps: float

    def __str__(self) -> str:
        rate = f" @ {self.fps:g} fps" if self.fps > 0 else ""
        return f"{self.fourcc or 'format ?'} {self.width}×{self.height}{rate}"

    def as_dict(self) -> dict:
        return {"fourcc": self.fourcc, "width": self.width, "height": self.height, "fps": self.fps}


def fourcc_text(code: float) -> str:
    """OpenCV's CAP_PROP_FOURCC (a float holding four bytes) as text; "" when it holds none."""
    value = int(code)
    if value <= 0:
        return ""
    text = "".join(chr((value >> 8 * i) & 0xFF) for i in range(4))
    return text.strip() if text.isprintable() and text.strip() else ""


def request_mode(cap, fourcc: Optional[str], width: Optional[int], height: Optional[int],
                 fps: Optional[float]) -> CameraMode:
    """Ask the opened OpenCV capture `cap` for `fourcc` (None: the driver's choice), then the size, then
    the rate; the mode the driver gave (drivers pick the nearest they offer, silently)."""
    import cv2

    if fourcc:
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*fourcc))
    for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                        (cv2.CAP_PROP_FPS, fps)):
        if value:
            cap.set(prop, value)
    return CameraMode(fourcc_text(cap.get(cv2.CAP_PROP_FOURCC)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
                      int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), round(float(cap.get(cv2.CAP_PROP_FPS)), 3))


def mode_mismatch(name: str, mode: CameraMode, fourcc: Optional[str], width: Optional[int], height: Optional[int],
                  fps: Optional[float]) -> Optional[str]:
    """One line when the driver gave another mode than asked (None when it gave what was asked)."""
    asked = []
    if fourcc and mode.fourcc and mode.fourcc != fourcc:
        asked.append(fourcc)
    if (width and mode.width != width) or (height and mode.height != height):
        asked.append(f"{width or mode.width}×{height or mode.height}")
    if fps and mode.fps > 0 and mode.fps < fps * 0.98:
        asked.append(f"{fps:g} fps")
    if not asked:
        return None
    return f"{name}: asked for {', '.join(asked)}, the driver gave {mode} (`realtime-feat cameras` lists its modes)"


class RateCheck:
    """Says, in one line, when a camera delivers fewer frames than asked: over the last `window_s`
    seconds (at least `min_s` of them seen), fewer than `ratio` × `asked` frames per second."""

    def __init__(self, name: str, asked: float, ratio: float = 0.9, window_s: float = 5.0, min_s: float = 3.0,
                 clock: Callable[[], float] = time.monotonic):
        self.name, self.asked, self.ratio, self.window_s, self.min_s, self.clock = name, asked, ratio, window_s, min_s, clock
        self._seen: collections.deque = collections.deque()   # (t, frames captured)
        self.line: Optional[str] = None
        self._said = False

    def observe(self, frames: int, running: bool) -> Optional[str]:
        """Feed the capture count (any rhythm); the line while the camera is slow, else None.
        Stretches where it was not running (lost) are not counted."""
        now = self.clock()
        if not running:
            self._seen.clear()
            return self.line
        self._seen.append((now, frames))
        while len(self._seen) > 2 and self._seen[1][0] <= now - self.window_s:
            self._seen.popleft()
        t0, n0 = self._seen[0]
        if now - t0 >= self.min_s:
            rate = (frames - n0) / (now - t0)
            slow = rate < self.ratio * self.asked
            self.line = (f"{self.name} delivers {rate:.1f} frames/s of the {self.asked:g} asked (dim light lengthens "
                         f"the exposure; a shared USB bus limits the rate)") if slow else None
            if slow and not self._said:
                self._said = True
                log.warning("%s", self.line)
        return self.line


# -- the modes a camera offers (Linux: V4L2's enumeration ioctls; elsewhere OpenCV cannot tell) --------

class _FmtDesc(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("type", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("description", ctypes.c_char * 32), ("pixelformat", ctypes.c_uint32),
                ("mbus_code", ctypes.c_uint32), ("reserved", ctypes.c_uint32 * 3)]


class _FrmSize(ctypes.Structure):
    # discrete: width, height in the union's first two words; stepwise: min_w, max_w, step_w, min_h, max_h, step_h
    _fields_ = [("index", ctypes.c_uint32), ("pixel_format", ctypes.c_uint32), ("type", ctypes.c_uint32),
                ("u", ctypes.c_uint32 * 6), ("reserved", ctypes.c_uint32 * 2)]


class _FrmIval(ctypes.Structure):
    # discrete: numerator, denominator of the frame interval; stepwise: min, max, step intervals
    _fields_ = [("index", ctypes.c_uint32), ("pixel_format", ctypes.c_uint32), ("width", ctypes.c_uint32),
                ("height", ctypes.c_uint32), ("type", ctypes.c_uint32), ("u", ctypes.c_uint32 * 6),
                ("reserved", ctypes.c_uint32 * 2)]


def _iowr(nr: int, struct) -> int:
    return (3 << 30) | (ctypes.sizeof(struct) << 16) | (ord("V") << 8) | nr


VIDIOC_ENUM_FMT = _iowr(2, _FmtDesc)
VIDIOC_ENUM_FRAMESIZES = _iowr(74, _FrmSize)
VIDIOC_ENUM_FRAMEINTERVALS = _iowr(75, _FrmIval)
_CAPTURE, _DISCRETE = 1, 1


def _enumerate(ioctl: Callable, request: int, struct):
    """Every answer to an enumeration ioctl (index 0, 1, ... until the driver says no more)."""
    index = 0
    while True:
        struct.index = index
        try:
            ioctl(request, struct)
        except OSError:  # EINVAL: past the last one
            return
        yield struct
        index += 1


def v4l2_modes(ioctl: Callable) -> list[CameraMode]:
    """The discrete modes a V4L2 device offers, through `ioctl(request, struct)` on its file: each
    pixel format, its sizes and, for each size, its rates (a stepwise range gives its two ends)."""
    modes = []
    for fmt in _enumerate(ioctl, VIDIOC_ENUM_FMT, _FmtDesc(type=_CAPTURE)):
        code = fmt.pixelformat
        fourcc = fourcc_text(code)
        sizes = []
        for size in _enumerate(ioctl, VIDIOC_ENUM_FRAMESIZES, _FrmSize(pixel_format=code)):
            u = list(size.u)
            sizes += [(u[0], u[1])] if size.type == _DISCRETE else [(u[0], u[3]), (u[1], u[4])]
        for width, height in sizes:
            rates = []
            for ival in _enumerate(ioctl, VIDIOC_ENUM_FRAMEINTERVALS,
                                   _FrmIval(pixel_format=code, width=width, height=height)):
                u = list(ival.u)
                fractions = [(u[0], u[1])] if ival.type == _DISCRETE else [(u[0], u[1]), (u[2], u[3])]
                rates += [round(den / num, 3) for num, den in fractions if num]
            modes += [CameraMode(fourcc, width, height, fps) for fps in sorted(set(rates), reverse=True)] or \
                [CameraMode(fourcc, width, height, 0.0)]
    return modes


def list_modes(index: int) -> Optional[list[CameraMode]]:
    """The modes camera `index` offers, or None where the platform cannot tell (not Linux, no device)."""
    import os

    try:
        import fcntl
    except ImportError:  # not POSIX; and OpenCV has no way to enumerate modes
        return None
    path = f"/dev/video{index}"
    if not os.path.exists(path):
        return None
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    try:
        return v4l2_modes(lambda request, struct: fcntl.ioctl(fd, request, struct))
    finally:
        os.close(fd)
