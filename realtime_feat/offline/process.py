"""Offline processing of one input (a video or a set of images) into one Fex CSV: every frame,
in batches, decoding on its own thread, the detector of one batch overlapping the face networks of
the batch before (`Analyser.analyse_stream`). The same path as live analysis, with nothing dropped."""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from ..capture.media import iter_images, iter_video, probe_video
from ..errors import MediaError, first_line
from ..recording.fex import FexWriter
from ..types import Frame, FrameResult
from .jobs import Job
from .prefetch import prefetch


@dataclass
class JobReport:
    path: Optional[Path]              # the finished CSV, None if nothing usable was written
    frames: int = 0
    rows: int = 0
    error: Optional[str] = None       # why the input failed (rows written before stay in `.partial`)
    skipped: list[str] = field(default_factory=list)  # unreadable images left out of a set


def batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(itertools.islice(it, n)):
        yield batch


def process_job(analyser, job: Job, out: Path, batch_size: int = 1, skip_frames: int = 1,
                progress: Optional[bool] = None, tracker=None,
                on_frames: Optional[Callable[[int], None]] = None) -> JobReport:
    """Analyse `job` into `out`. progress: None shows a bar on a terminal only. With a `tracker`,
    each face gets its track id and identity columns. `on_frames(n)` hears of every analysed batch
    (a cluster worker's progress)."""
    from tqdm import tqdm

    report = JobReport(None)
    if job.kind == "video":
        try:
            info = probe_video(job.source)
        except MediaError as exc:
            report.error = str(exc)
            return report
        total = -(-info.frames // skip_frames) if info.frames else None
        items = ((str(job.source), f) for f in video_frames(job, skip_frames))
    else:
        total = len(job.images)
        items = ((str(p), f) for p, f in iter_images(job.images, report.skipped))
    disable = None if progress is None else not progress
    with tqdm(total=total, unit="frame", desc=job.name[:24], file=sys.stderr, dynamic_ncols=True,
              disable=disable) as bar:
        def analysed() -> Iterator[tuple[str, FrameResult]]:
            batches = ((batch, [f for _, f in batch]) for batch in prefetch(batched(items, batch_size)))
            for batch, results in analyser.analyse_stream(batches):
                yield from ((name, result) for (name, _), result in zip(batch, results))
                bar.update(len(batch))
                if on_frames is not None:
                    on_frames(len(batch))

        return write_results(analysed(), out, job, tracker, analyser.identity, report)


def video_frames(job: Job, skip_frames: int = 1, start: int = 0, stop: Optional[int] = None) -> Iterator[Frame]:
    """Every `skip_frames`-th frame of a video job from frame `start` up to `stop` (numbered as in the
    video); a recorded session's go back on their capture clocks."""
    frames = iter_video(job.source, skip_frames)
    if start or stop is not None:
        frames = itertools.takewhile(lambda f: stop is None or f.index < stop,
                                     itertools.dropwhile(lambda f: f.index < start, frames))
    if job.session is not None:
        from ..review.recorded_session import on_capture_clocks

        frames = on_capture_clocks(frames, job.session)
    return frames


def write_results(pairs: Iterable[tuple[str, FrameResult]], out: Path, job: Job, tracker=None, identity: bool = True,
                  report: Optional[JobReport] = None) -> JobReport:
    """Write (input name, result) pairs in frame order into `out`, under its final name once all are in.
    With a `tracker`, each face gets its track id and identity columns; with `identity`, py-feat's
    `Identity` clustering runs at the end. A recorded session's review (persons, exclusions) is read
    first: one that cannot be read fails the input before anything is analysed."""
    report = report or JobReport(None)
    review = None
    if job.session is not None:
        try:
            review = session_review(job.session)
        except (OSError, ValueError) as exc:
            report.error = f"{job.session}: not analysed, its review cannot be read: {first_line(exc)}"
            return report
    writer = FexWriter(out, video=job.kind == "video", identity=identity, review=review)
    try:
        for name, result in pairs:
            if tracker is None:
                writer.append(result, name)
            else:
                result = replace(result, track_ids=tracker.update(result))
                writer.append(result, name, tracker.identities(result.track_ids))
    except MediaError as exc:
        kept = writer.close(complete=False)
        report.frames, report.rows = writer.frames_written, writer.rows_written
        report.error = f"{exc}; the {writer.frames_written} frames analysed before are in {kept}"
        return report
    except BaseException:  # Ctrl-C, a failing backend: the rows so far stay in `.partial`
        writer.close(complete=False)
        raise
    if writer.frames_written == 0:
        writer.close(complete=False).unlink()
        report.error = f"{job.source}: no readable frame, nothing written"
        return report
    report.path = writer.close()
    report.frames, report.rows = writer.frames_written, writer.rows_written
    return report


def session_review(folder: Path) -> Callable:
    """The reviewer's `person` and `excluded` (annotations.csv, identities.json) for the rows of a new
    analysis of recorded session `folder`; its files (and fex.csv's arrays) are read now."""
    from ..review.recorded_session import load_session

    session = load_session(folder)
    session.arrays  # read now (built from fex.csv if missing): a failure is said before any analysis
    return lambda table: session.label_rows(table)[["person", "excluded"]]
