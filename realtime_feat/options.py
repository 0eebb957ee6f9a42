"""What describes an analyser and a live session, as one frozen value: the CLI builds it from its options,
the app from its controls, the cluster ships it to its workers. `factories.py` turns it into objects."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import UserError

DETECTORS = ("retinaface", "fast")
BACKENDS = ("auto", "tensorrt", "openvino", "onnxruntime", "torch")
PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Enrolment:
    """A person to name: the largest face in `image` is `name`."""

    name: str
    image: Path

    @classmethod
    def parse(cls, spec: str) -> "Enrolment":
        """`NAME=IMAGE`, as `--enrol` takes it."""
        name, sep, image = spec.partition("=")
        if not sep or not name.strip() or not image:
            raise UserError(f"--enrol expects NAME=IMAGE, got {spec!r}")
        return cls(name.strip(), Path(image))


@dataclass(frozen=True)
class PipelineOptions:
    """detector None: the live default (`factories.with_live_defaults`); precision None: the backend's
    default for the device; threshold None: the detector's own (0.5 for retinaface, 0.6 for fast)."""

    detector: Optional[str] = None
    backend: str = "auto"
    device: str = "auto"
    precision: Optional[str] = None
    threads: Optional[int] = None       # CPU threads for inference (None: all cores)
    cuda_graphs: bool = False
    weights: Optional[Path] = None      # a weights folder (else $REALTIME_FEAT_WEIGHTS, else the caches)
    identity: bool = True               # ArcFace embeddings (tracking by identity, enrolment)
    threshold: Optional[float] = None
    redetect_every: int = 5             # live: full detection every N analysed frames
    enrol: tuple[Enrolment, ...] = ()

    def __post_init__(self) -> None:
        if self.detector is not None and self.detector not in DETECTORS:
            raise UserError(f"unknown detector {self.detector!r}; choose {' or '.join(DETECTORS)}")
        if self.backend not in BACKENDS:
            raise UserError(f"unknown backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise UserError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads must be at least 1, got {self.threads}")
        if self.redetect_every < 1:
            raise UserError(f"--redetect-every must be at least 1, got {self.redetect_every}")
        if self.enrol and not self.identity:
            raise UserError("--enrol needs ArcFace: drop --no-identity")
