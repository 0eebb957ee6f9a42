"""`PipelineOptions` → the objects the CLI, the cluster's workers and the app run: the analyser (with the
live defaults filled in), the enrolled people, the tracker, a live session on a checked source.
Everything a user can get wrong ends in one `UserError` line (a bad option: an `OptionError` naming it);
a backend that fails to load is one line too, its traceback kept in the log file."""
from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Callable, Optional

import numpy as np

from .errors import UserError, first_line
from .logfile import log_exception
from .options import NEEDS_IDENTITY, Enrolment, OptionError, PipelineOptions

log = logging.getLogger(__name__)


def set_threads(threads: Optional[int]) -> int:
    import torch  # `import feat` sets OMP_NUM_THREADS=1 when unset: undo that for our work

    n = threads or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def make_analyser(options: PipelineOptions, default_detector: str = "retinaface"):
    """The Analyser `options` describe; `analyser.fallbacks` lists backends passed over (one line each)."""
    from .analysis.analyser import Analyser
    from .weights import WeightsError

    threads = set_threads(options.threads)
    try:
        return Analyser(options.backend, options.device, detector=options.detector or default_detector,
                        identity=options.identity, threshold=options.threshold, weights_dir=options.weights,
                        threads=threads, precision=options.precision, cuda_graphs=options.cuda_graphs)
    except OptionError:  # the CLI and the app word it with their names for the option
        raise
    except WeightsError as exc:
        raise UserError(first_line(exc)) from None
    except (RuntimeError, ValueError) as exc:  # the backend's: its traceback is what a bug report needs
        raise UserError(log_exception(exc, "the models could not be loaded")) from exc


def with_live_defaults(options: PipelineOptions) -> tuple[PipelineOptions, list[str]]:
    """Live's detector and precision where the user left them open, and why (a line each). On a CPU with
    a bf16 unit: py-feat's own RetinaFace R34 in bf16 (py-feat's boxes, live speed); on other CPUs the
    fast detector (MobileNet-0.25) in FP32; on a GPU py-feat's R34 at the GPU's default precision."""
    from .engines import resolve_device
    from .engines.fast_detector import available
    from .engines.select import default_live_precision

    notes, precision, detector = [], options.precision, options.detector
    if precision is None:
        precision, why = default_live_precision(options.backend, options.device)
        notes += [why] if why else []
    if detector is None:
        on_cpu = resolve_device(options.device, options.backend)[0] == "cpu"
        detector = "fast" if on_cpu and precision != "bf16" and not available() else "retinaface"
        notes.append(f"detector {detector}" + (" (no bf16 on this CPU; --detector retinaface for py-feat's boxes)"
                                               if detector == "fast" else ""))
    return replace(options, precision=precision, detector=detector), notes


def enrolments(analyser, people: tuple[Enrolment, ...]) -> dict[str, np.ndarray]:
    """{name: ArcFace embedding of the largest face in its image}."""
    from .capture.media import iter_images, sample_path

    if people and not analyser.identity:
        raise OptionError("enrol", NEEDS_IDENTITY)
    embeddings = {}
    for person in people:
        errors: list[str] = []
        frames = [f for _, f in iter_images([sample_path(person.image)], errors)]
        if errors:
            raise OptionError("enrol", f"{person.name}: {errors[0]}")
        embeddings[person.name] = largest_face_embedding(analyser, frames, person.name)
    return embeddings


def largest_face_embedding(analyser, frames, name: str) -> np.ndarray:
    result = analyser.analyse(frames)[0]
    largest = result.detections.largest()
    if largest is None:
        raise OptionError("enrol", f"{name}: no face found in {result.source_id}")
    return result.faces.embedding[largest]


def make_tracker(options: PipelineOptions, people: dict, clock: str = "capture"):
    """A FaceTracker (ArcFace unless identity is off) that knows the enrolled `people`."""
    from .analysis.tracking import FaceTracker

    tracker = FaceTracker(use_embeddings=options.identity, clock=clock)
    for name, embedding in people.items():
        tracker.enrol(name, embedding)
    return tracker


def open_checked_source(spec: str, realtime: bool = True, **source_options):
    """The source for `spec` (camera index, file, URL, folder, pyfeat:NAME), opened once and read from
    before any model loads, so a wrong source is one line at once. Returns (source, (h, w) or None)."""
    ((source, size),) = open_checked_sources([spec], realtime, **source_options)
    return source, size


def open_checked_sources(specs, realtime: bool = True, **source_options) -> list:
    """`open_checked_source` for several sources: the same source given twice, or one that cannot be
    opened, is one `UserError` line naming it (before any model loads). [(source, (h, w) or None)]."""
    from .capture.sources import open_source
    from .live.live_session import probe_source
    from .live.multi_session import check_distinct

    sources = [open_source(spec, realtime=realtime, **source_options) for spec in specs]
    try:
        check_distinct(sources)
        return [(source, probe_source(source)) for source in sources]
    except (OSError, ValueError) as exc:
        raise UserError(first_line(exc)) from None


def _analysis(options: PipelineOptions, progress: Callable[[str], None], analysis: bool):
    """(analyser, enrolled people, live settings) for `options`; (None, {}, settings) without analysis."""
    from .live.worker import LiveSettings

    settings = LiveSettings(redetect_every=options.redetect_every)
    if not analysis:
        return None, {}, settings
    options, notes = with_live_defaults(options)
    for note in notes:
        progress(note)
    analyser = make_analyser(options)
    for line in analyser.fallbacks:
        progress(f"warning: {line}")
    people = enrolments(analyser, options.enrol)
    progress(f"backend {analyser.describe()}; tracking {'IoU + ArcFace' if options.identity else 'IoU only'}"
             + (f"; enrolled {', '.join(people)}" if people else ""))
    return analyser, people, settings


def live_session(options: PipelineOptions, source, progress: Callable[[str], None] = log.info,
                 analysis: bool = True, **session_options):
    """A LiveSession (not started) on `source`: the live defaults, the analyser, the enrolled people and
    the tracker `options` describe, each step said through `progress`. analysis=False records only."""
    from .live.live_session import LiveSession

    analyser, people, settings = _analysis(options, progress, analysis)
    tracker = make_tracker(options, people) if analyser is not None else None
    try:
        return LiveSession(source, analyser, tracker=tracker, settings=settings, **session_options)
    except OSError as exc:
        raise UserError(first_line(exc)) from None


def multi_session(options: PipelineOptions, sources, progress: Callable[[str], None] = log.info,
                  analysis: bool = True, **session_options):
    """A MultiSession (not started) on several sources: one analyser for all, a tracker per camera that
    knows every enrolled person; as `live_session` otherwise."""
    from .live.multi_session import MultiSession

    analyser, people, settings = _analysis(options, progress, analysis)
    try:
        return MultiSession(sources, analyser, tracker_factory=lambda: make_tracker(options, people),
                            settings=settings, **session_options)
    except (OSError, ValueError) as exc:
        raise UserError(first_line(exc)) from None
