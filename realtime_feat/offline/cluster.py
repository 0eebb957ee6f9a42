"""`process --ray`: the same `process`, its inputs spread over the workers of a Ray cluster.

Each worker is a Ray actor (one per GPU, else one per `--threads` CPU cores) that builds one
`Analyser` once and runs `process_job` on whole inputs, largest first, reading the inputs and
writing the CSVs at the paths given: the same file system on every node (the local disk for a local
instance, a shared one on a cluster). A CSV reaches its final name only when complete (`FexWriter`),
so a rerun skips every input whose CSV exists. A worker process that dies mid-input costs only that
attempt: Ray restarts the actor (the models load again) and retries the input, whose `.partial` is
rewritten from the start. With `--split-frames N` a long video goes out as frame ranges instead; the
workers return their ranges' results and the driver writes the CSV, tracking over the merged
timeline (the tracker needs every frame in order). Ray is optional (`pip install
'realtime-feat[cluster]'`) and imported here only.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from ..capture.media import probe_video
from ..errors import PROG, MediaError, UserError, first_line
from ..options import PipelineOptions
from .jobs import Job
from .process import JobReport, batched, process_job, video_frames, write_results

# Restarts of a dead worker, and retries of the input it was running, before that input counts as failed.
RETRIES = 3
POLL_S = 0.5  # how often the driver reads the workers' frame counters for the progress bars


@dataclass(frozen=True)
class RayRun:
    """How `process --ray` spreads the inputs (the CLI's --ray, --workers, --split-frames, --overwrite)."""

    address: str = "local"            # "local" (a Ray instance here), "auto", or HOST:PORT / ray://HOST:PORT
    workers: Optional[int] = None     # at most this many (None: one per GPU, else one per `threads` CPUs)
    split_frames: int = 0             # a video of more than 2N analysed frames goes out as N-frame ranges
    overwrite: bool = False           # analyse again the inputs whose CSV exists (else they are skipped)
    batch_size: int = 1
    skip_frames: int = 1


class AnalyserWorker:
    """One Analyser in one worker process. `process` runs one input, `analyse_range` a frame range
    of a video; `progress` answers meanwhile (the actor has two threads) with the frames analysed and
    the seconds spent analysing."""

    def __init__(self, options: PipelineOptions, run: RayRun, cwd: str):
        import ray

        from ..factories import enrolments, make_analyser

        if os.path.isdir(cwd):  # relative inputs and outputs mean what they mean on the driver
            os.chdir(cwd)
        self.options, self.run, self.frames, self.busy_s, self._since = options, run, 0, 0.0, None
        self.where = f"{ray.util.get_node_ip_address()}:{os.getpid()}"
        try:
            self.analyser = make_analyser(options)
            self.people = enrolments(self.analyser, options.enrol)
            self.error = None
        except UserError as exc:
            self.error = str(exc)

    def ready(self) -> tuple[Optional[str], str]:
        """(why this worker cannot run, or None; the backend it runs)."""
        return self.error, "" if self.error else self.analyser.describe()

    def process(self, job: Job, out: Path) -> JobReport:
        from ..factories import make_tracker

        tracker = make_tracker(self.options, self.people, clock="source") if job.kind == "video" else None
        with self._busy():
            return process_job(self.analyser, job, out, self.run.batch_size, self.run.skip_frames,
                               progress=False, tracker=tracker, on_frames=self.on_frames)

    def analyse_range(self, job: Job, start: int, stop: Optional[int]) -> list:
        """The FrameResults of video frames start..stop (untracked: tracking needs the whole timeline)."""
        from .prefetch import prefetch

        results = []
        with self._busy():
            frames = video_frames(job, self.run.skip_frames, start, stop)
            batches = ((batch, batch) for batch in prefetch(batched(frames, self.run.batch_size)))
            for batch, analysed in self.analyser.analyse_stream(batches):
                results += analysed
                self.on_frames(len(batch))
        return results

    def enrolled(self) -> dict:
        return self.people

    @contextlib.contextmanager
    def _busy(self):
        if self.error:
            raise RuntimeError(self.error)
        self._since = time.perf_counter()
        try:
            yield
        finally:
            self.busy_s += time.perf_counter() - self._since
            self._since = None

    def on_frames(self, n: int) -> None:
        self.frames += n

    def progress(self) -> tuple[str, int, float]:
        running = 0.0 if self._since is None else time.perf_counter() - self._since
        return self.where, self.frames, self.busy_s + running


@dataclass
class _Task:
    """A whole input (parts == 1), written by its worker, or one frame range of a video."""

    job: Job
    out: Path
    part: int = 0
    parts: int = 1
    start: int = 0
    stop: Optional[int] = None


def _tasks(todo: list[tuple[Job, Path]], split: int, skip: int) -> list[_Task]:
    tasks = []
    for job, out in todo:
        n = _expected_frames(job, skip) if split and job.kind == "video" else 0
        if n <= 2 * split:
            tasks.append(_Task(job, out))
            continue
        parts, span = -(-n // split), split * skip  # the last range runs to the end, whatever the header said
        tasks += [_Task(job, out, k, parts, k * span, None if k == parts - 1 else (k + 1) * span) for k in range(parts)]
    return tasks


def _merge(task: _Task, ranges: list[list], people: dict, options: PipelineOptions) -> JobReport:
    """A split video's CSV: its ranges' results in order, tracked over the whole timeline, as `process`
    would have written it."""
    from ..factories import make_tracker

    pairs = ((str(task.job.source), result) for results in ranges for result in results)
    return write_results(pairs, task.out, task.job, make_tracker(options, people, clock="source"), options.identity)


@dataclass
class _Plan:
    workers: int
    threads: int
    resources: dict
    device: str


def _plan(ray, options: PipelineOptions, workers: Optional[int], n_inputs: int) -> _Plan:
    res = ray.cluster_resources()
    gpus, cpus = int(res.get("GPU", 0)), max(1, int(res.get("CPU", 1)))
    if options.device.startswith("cuda") and not gpus:
        raise UserError(f"--device {options.device}: the Ray cluster has no GPU; use --device cpu or auto")
    if gpus and options.device != "cpu":
        threads = options.threads or max(1, cpus // gpus)
        return _Plan(min(workers or gpus, gpus, n_inputs), threads, {"num_gpus": 1, "num_cpus": 1}, "GPU")
    threads = options.threads or 1
    cap = max(1, cpus // threads)
    return _Plan(min(workers or cap, cap, n_inputs), threads, {"num_cpus": threads}, "CPU")


def _connect(ray, address: str) -> bool:
    """Join or start Ray; True when this call started it (and so shuts it down)."""
    import logging

    _check_reachable(address)
    if ray.is_initialized():
        return False
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 logging_level=logging.WARNING)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError or ValueError here
        raise UserError(f"--ray {address}: cannot reach a Ray cluster ({first_line(exc, 160)}); start one with `ray start "
                        f"--head`, or write --ray alone for a local instance") from None
    return True


def _check_reachable(address: str) -> None:
    """A HOST:PORT (or ray://HOST:PORT) that nothing answers on fails here in seconds; Ray itself
    retries for minutes before giving up."""
    import socket

    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if address in ("local", "auto") or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UserError(f"--ray {address}: nothing answers there ({exc.strerror or exc}); start the head with "
                        f"`ray start --head`, or check the address and port") from None


def _size(job: Job) -> int:
    paths = job.images if job.kind == "images" else [job.source]
    return sum(p.stat().st_size for p in paths if p.is_file())


def _expected_frames(job: Job, skip: int) -> int:
    if job.kind == "images":
        return len(job.images)
    try:
        frames = probe_video(job.source).frames or 0
    except MediaError:
        return 0
    return -(-frames // skip)


def _one_line(exc: BaseException) -> str:
    return first_line(getattr(exc, "cause", None) or exc, 200)  # RayTaskError carries the worker's exception


def process_on_ray(options: PipelineOptions, run: RayRun, jobs: list[Job], outputs: list[Path],
                   failures: list[str]) -> int:
    """Run `process` over `jobs` on Ray; the exit code follows `process`. `failures` holds the inputs
    that already failed (missing files) and gets the ones that fail here."""
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray: pip install 'realtime-feat[cluster]'") from None
    pairs = list(zip(jobs, outputs))
    todo = [(j, o) for j, o in pairs if run.overwrite or not o.exists()]
    done = len(pairs) - len(todo)
    if done:
        print(f"{PROG}: {done} input(s) already have their CSV, skipped (--overwrite to analyse them again)",
              file=sys.stderr)
    if not todo:
        print(f"{PROG}: nothing to do", file=sys.stderr)
        return 1 if failures else 0
    todo.sort(key=lambda pair: _size(pair[0]), reverse=True)  # largest first: the long ones start early
    started_ray = _connect(ray, run.address)
    try:
        written = _run(ray, options, run, todo, failures, AnalyserWorker)
    finally:
        if started_ray:
            ray.shutdown()
    if not written and not done:
        return 2
    return 1 if failures else 0


def _err(msg: str) -> None:
    print(f"{PROG}: error: {msg}", file=sys.stderr)


def _run(ray, options: PipelineOptions, run: RayRun, todo: list[tuple[Job, Path]], failures: list[str],
         worker_cls: type) -> list[Path]:
    from tqdm import tqdm

    plan = _plan(ray, options, run.workers, len(todo))
    worker_options = replace(options, threads=plan.threads)
    Worker = ray.remote(max_restarts=RETRIES, max_task_retries=RETRIES, max_concurrency=2,
                        **plan.resources)(worker_cls)
    start = lambda: Worker.remote(worker_options, run, os.getcwd())  # noqa: E731
    started = time.perf_counter()
    actors = [start() for _ in range(plan.workers)]
    states = ray.get([a.ready.remote() for a in actors])
    if all(why for why, _ in states):
        raise UserError(states[0][0])
    for actor, (why, _) in zip(actors, states):
        if why:  # e.g. a node without the weights: the others take its share
            _err(f"a worker cannot run and is left out: {why}")
            ray.kill(actor, no_restart=True)
    actors = [a for a, (why, _) in zip(actors, states) if not why]
    describe = next(d for why, d in states if not why)
    people = ray.get(actors[0].enrolled.remote())
    print(f"{PROG}: ray: {len(todo)} input(s) on {len(actors)} {plan.device} worker(s), {plan.threads} thread(s) "
          f"each, ready in {time.perf_counter() - started:.1f} s: {describe}", file=sys.stderr)

    tasks = _tasks(todo, run.split_frames, run.skip_frames)
    for task in tasks:
        if task.part == 0 and task.parts > 1:
            print(f"{PROG}: ray: {task.job.source} in {task.parts} ranges of {run.split_frames} frames", file=sys.stderr)
    queue, running, idle = deque(tasks), {}, list(actors)
    ranges: dict = {}  # output → the results of each range of its video, as they arrive
    closed: set = set()  # outputs of split videos written or failed
    counts: dict = {}  # actor → (where, frames, busy seconds), as last read
    frames = rows = 0
    written: list[Path] = []
    total = sum(_expected_frames(j, run.skip_frames) for j, _ in todo)
    bars = dict(file=sys.stderr, dynamic_ncols=True, disable=None)
    fail = lambda msg, shown=None: (failures.append(msg), _err(shown or msg))  # noqa: E731
    with tqdm(total=len(todo), unit="file", desc="files", position=0, **bars) as files_bar, \
            tqdm(total=total or None, unit="frame", desc="frames", position=1, **bars) as frames_bar:
        try:
            while queue or running:
                while idle and queue:
                    actor, task = idle.pop(), queue.popleft()
                    ref = actor.process.remote(task.job, task.out) if task.parts == 1 else \
                        actor.analyse_range.remote(task.job, task.start, task.stop)
                    running[ref] = (actor, task)
                finished, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                for ref in finished:
                    actor, task = running.pop(ref)
                    job, out = task.job, task.out
                    idle.append(actor)
                    if out in closed:
                        continue  # a range of a video that already failed
                    try:
                        report = ray.get(ref)
                        if task.parts > 1:
                            ranges.setdefault(out, [None] * task.parts)[task.part] = report
                            if any(r is None for r in ranges[out]):
                                continue
                            report = _merge(task, ranges.pop(out), people, options)
                    except ray.exceptions.RayActorError as exc:
                        fail(f"{job.source}: its worker died {RETRIES + 1} times ({_one_line(exc)})")
                        idle[-1] = actors[actors.index(actor)] = start()  # a fresh one for the rest
                    except ray.exceptions.RayTaskError as exc:
                        fail(f"{job.source}: {_one_line(exc)}")
                    else:
                        for msg in report.skipped:  # an image left out of a set is an input that failed
                            fail(msg, f"skipped {msg}")
                        if report.error:
                            fail(report.error)
                        if report.path:
                            frames, rows = frames + report.frames, rows + report.rows
                            written.append(out)
                    if task.parts > 1:  # the video is done, or failed: its other ranges are not needed
                        ranges.pop(out, None)
                        closed.add(out)
                        queue = deque(t for t in queue if t.out != out)
                    files_bar.update(1)
                _read_progress(ray, actors, counts)
                frames_bar.n = max(frames_bar.n, sum(c[1] for c in counts.values()))
                frames_bar.set_postfix_str(_rates(counts.values()), refresh=True)
        except KeyboardInterrupt:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            _err(f"interrupted: {len(written)} of {len(todo)} input(s) finished ({', '.join(map(str, written)) or 'none'}); "
                 f"run the same command again to analyse the rest")
            raise
    _read_progress(ray, actors, counts, timeout=5.0)
    seconds = time.perf_counter() - started
    print(f"{PROG}: ray: {len(todo)} input(s), {frames} frames, {rows} rows in {len(written)} file(s), "
          f"{len(failures)} failure(s), {seconds:.1f} s wall, {frames / max(seconds, 1e-9):.2f} frames/s; "
          f"per worker: {_rates(counts.values()) or 'none'}", file=sys.stderr)
    for actor in actors:
        ray.kill(actor, no_restart=True)
    return written


def _read_progress(ray, actors, counts: dict, timeout: float = 0.0) -> None:
    """Update `counts` with the workers that answer within `timeout` (a restarting one does not)."""
    refs = {actor.progress.remote(): actor for actor in actors}
    answered, _ = ray.wait(list(refs), num_returns=len(refs), timeout=timeout or POLL_S / 5)
    for ref in answered:
        try:
            counts[refs[ref]] = ray.get(ref)
        except ray.exceptions.RayError:
            pass


def _rates(counts) -> str:
    return ", ".join(f"{where} {n / busy:.2f} frames/s" for where, n, busy in counts if n and busy > 0)
