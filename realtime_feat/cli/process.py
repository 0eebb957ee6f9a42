"""`realtime-feat process`: files (videos, images, folders, recorded sessions) into Fex CSV files, here
or on a Ray cluster."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import PROG, UserError
from ..factories import enrolments, make_analyser, make_tracker
from .console import err
from .parser import pipeline_options


def _output_path(out: Path, job, n_jobs: int) -> Path:
    if n_jobs == 1 and out.suffix.lower() == ".csv":
        return out
    if out.suffix.lower() == ".csv":
        raise UserError(f"{n_jobs} inputs give {n_jobs} CSV files: pass a folder to -o, not {out}")
    return out / f"{job.name}.csv"


def cmd_process(args) -> int:
    from ..offline.jobs import jobs_for
    from ..offline.process import process_job

    if args.batch_size < 1 or args.skip_frames < 1:
        raise UserError("--batch-size and --skip-frames must be at least 1")
    if args.ray is None and (args.workers is not None or args.split_frames or args.overwrite):
        raise UserError("--workers, --split-frames and --overwrite go with --ray (without it every input is analysed)")
    if (args.workers is not None and args.workers < 1) or args.split_frames < 0:
        raise UserError("--workers must be at least 1 and --split-frames at least 0")
    options = pipeline_options(args)
    failures: list[str] = []
    jobs = jobs_for(args.inputs, failures)  # a missing input is reported; the others still run
    for msg in failures:
        err(msg)
    if not jobs:
        raise UserError("no readable input")
    outputs = [_output_path(args.output, job, len(jobs)) for job in jobs]
    if args.ray is not None:
        from ..offline.cluster import RayRun, process_on_ray

        run = RayRun(args.ray, args.workers, args.split_frames, args.overwrite, args.batch_size, args.skip_frames)
        return process_on_ray(options, run, jobs, outputs, failures)

    analyser = make_analyser(options)
    for line in analyser.fallbacks:
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    people = enrolments(analyser, options.enrol)
    print(f"{PROG}: backend {analyser.describe()}", file=sys.stderr)
    started, frames, rows, written = time.perf_counter(), 0, 0, []
    for job, out in zip(jobs, outputs):
        # people across a video's frames: on the video's own clock
        tracker = make_tracker(options, people, clock="source") if job.kind == "video" else None
        report = process_job(analyser, job, out, args.batch_size, args.skip_frames, tracker=tracker)
        for msg in report.skipped:  # an image left out of a set is an input that failed
            failures.append(msg)
            err(f"skipped {msg}")
        if report.error:
            failures.append(report.error)
            err(report.error)
        if report.path:
            frames, rows = frames + report.frames, rows + report.rows
            written.append(report.path)
    seconds = time.perf_counter() - started
    print(f"{PROG}: {frames} frames, {rows} rows in {len(written)} file(s) "
          f"({', '.join(map(str, written)) or 'none'}) in {seconds:.1f} s, {frames / max(seconds, 1e-9):.2f} frames/s"
          + (f"; {len(failures)} input(s) failed" if failures else ""), file=sys.stderr)
    if not written:
        return 2
    return 1 if failures else 0
