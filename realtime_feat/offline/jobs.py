"""What `process` is given, as jobs: a video, a recorded session (each camera of a several-camera one), an
image folder, or loose images."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..capture.media import IMAGE_SUFFIXES, sample_path
from ..review.recorded_session import camera_folders, is_session


@dataclass
class Job:
    """One unit of `process` output: a video, or a set of images written to one CSV."""

    kind: str                     # "video" | "images"
    source: Path                  # the path the user gave (a recorded session's video.mp4)
    images: list[Path] = field(default_factory=list)
    session: Optional[Path] = None  # a recorded session folder: its frames go back on their capture clocks
    camera: bool = False          # `session` is one camera's subfolder of a several-camera session

    @property
    def name(self) -> str:
        if self.session is not None:
            return f"{self.session.parent.name}_{self.session.name}" if self.camera else self.session.name
        return self.source.stem if self.source.is_file() else self.source.name


def jobs_for(inputs: list[Path], errors: list[str]) -> list[Job]:
    """Videos and recorded session folders give one job each (a several-camera session one per camera),
    an image folder one job, loose images one job together. Inputs that do not exist or hold no image go
    to `errors`."""
    jobs, loose = [], []
    for path in map(sample_path, inputs):
        if path.is_dir() and is_session(path):
            jobs.append(Job("video", path / "video.mp4", session=path))
        elif path.is_dir() and camera_folders(path):
            jobs += [Job("video", sub / "video.mp4", session=sub, camera=True) for sub in camera_folders(path).values()]
        elif path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if images:
                jobs.append(Job("images", path, images))
            else:
                errors.append(f"{path}: folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        elif not path.exists():
            errors.append(f"{path}: no such file or folder")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            loose.append(path)
        else:
            jobs.append(Job("video", path))
    if loose:
        jobs.append(Job("images", loose[0] if len(loose) == 1 else Path("images"), loose))
    return jobs
