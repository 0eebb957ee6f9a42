"""What describes an analyser and a live session, as one frozen value: the CLI builds it from its options,
the app from its controls, the cluster ships it to its workers. `factories.py` turns it into objects.
A bad value is an `OptionError` naming the field ("threshold must be in (0, 1], got 1.5"); the CLI says
it with its flag, the app with its control's name."""
from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Optional

from .errors import UserError


class OptionError(UserError, ValueError):
    """A bad option value, said with the library's name of each option (`PipelineOptions`' fields):
    "threshold must be in (0, 1], got 1.5". `problem` may name other options as {field}. `worded(name)`
    says it with the caller's names instead: the CLI's flags, the app's controls."""

    def __init__(self, option: str, problem: str):
        self.option, self.problem = option, problem
        super().__init__(self.worded(str))

    def worded(self, name: Callable[[str], str]) -> str:
        """The line with `name(field)` for each option it names."""
        return f"{name(self.option)} " + re.sub(
            r"\{(\w+)\}", lambda m: name(m.group(1)) if m.group(1) in OPTION_NAMES else m.group(0), self.problem)


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
            raise OptionError("enrol", f"expects NAME=IMAGE, got {spec!r}")
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
            raise OptionError("detector", f"must be {' or '.join(DETECTORS)}, got {self.detector!r}")
        if self.backend not in BACKENDS:
            raise OptionError("backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise OptionError("precision", f"must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.threshold is not None:
            check_threshold(self.threshold)
        if self.threads is not None and self.threads < 1:
            raise OptionError("threads", f"must be at least 1, got {self.threads}")
        if self.redetect_every < 1:
            raise OptionError("redetect_every", f"must be at least 1, got {self.redetect_every}")
        if self.enrol and not self.identity:
            raise OptionError("enrol", NEEDS_IDENTITY)


OPTION_NAMES = tuple(f.name for f in fields(PipelineOptions))
NEEDS_IDENTITY = "needs {identity} on (people are recognised by their ArcFace embeddings)"


def check_threshold(value: float) -> None:
    """A face score a detection must reach: 1 keeps only certain faces, 0 would keep every anchor."""
    if not 0.0 < value <= 1.0:
        raise OptionError("threshold", f"must be in (0, 1], got {value}")
