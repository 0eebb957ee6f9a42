"""`realtime-feat live`: the live pipeline without a window. A status line once a second, the CSV of
what was analysed, a clean stop on Ctrl-C, --duration or the end of a file."""
from __future__ import annotations

import collections
import signal
import sys
import threading
import time

import numpy as np

PROG = "realtime-feat"


class Status:
    """Counts for the once-a-second line, fed from the results bus (worker thread)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies: collections.deque = collections.deque()   # (t, ms) of the last second
        self.faces = 0

    def on_result(self, result) -> None:
        with self.lock:
            now = time.monotonic()
            self.latencies.append((now, result.timings_ms["latency"]))
            while self.latencies and self.latencies[0][0] < now - 1.0:
                self.latencies.popleft()
            self.faces = result.n_faces

    def line(self, capture, worker, last: tuple[int, int], dt: float, backend: str) -> str:
        with self.lock:
            lat = np.array([ms for _, ms in self.latencies]) if self.latencies else np.array([np.nan])
            faces = self.faces
        cap_fps = (capture.frames - last[0]) / dt
        ana_fps = (worker.analysed - last[1]) / dt
        return (f"{capture.state:8s} capture {cap_fps:5.1f} fps | analysed {ana_fps:5.1f} fps | latency p50 "
                f"{np.nanpercentile(lat, 50):6.1f} ms p99 {np.nanpercentile(lat, 99):6.1f} ms | faces {faces} | "
                f"skipped {capture.slot.skipped} | {backend}")


def cmd_live(args) -> int:
    from .capture import CaptureThread
    from .cli import UserError, enrolments, make_analyser, make_tracker
    from .fex import FexWriter
    from .live import LiveSettings, LiveWorker, ResultsBus
    from .sources import open_source

    source = open_source(args.source, realtime=not args.fast, width=args.width, height=args.height, fps=args.fps)
    try:  # a wrong source is reported before the models take seconds to load; its size is learnt
        source.open()
        first = source.read()
        source.close()
    except OSError as exc:
        raise UserError(str(exc)) from None
    if args.detector is None:
        from realtime_feat.engines import resolve_device
        from realtime_feat.engines.fast_detector import available

        on_cpu = resolve_device(args.device, args.backend)[0] == "cpu"
        args.detector = "fast" if on_cpu and not available() else "retinaface"
    analyser = make_analyser(args)
    people = enrolments(analyser, args.enrol)
    tracker = make_tracker(args, people)
    backend = f"{analyser.backend.name}/{analyser.detector_name}"
    print(f"{PROG}: backend {analyser.describe()}; tracking {'IoU + ArcFace' if args.identity else 'IoU only'}"
          + (f"; enrolled {', '.join(people)}" if people else ""), file=sys.stderr)
    if first is not None:  # engines, graphs and kernels for this frame size, before the first real frame
        t = time.monotonic()
        analyser.warm_up(*first.shape[:2])
        print(f"{PROG}: ready for {first.shape[0]}x{first.shape[1]} frames in {time.monotonic() - t:.1f} s",
              file=sys.stderr)

    capture = CaptureThread(source)
    try:
        capture.start()
    except OSError as exc:
        raise UserError(str(exc)) from None
    bus, status = ResultsBus(), Status()
    writer = FexWriter(args.output, video=False) if args.output else None
    if writer:
        bus.subscribe(lambda r: writer.append(r, source.id, tracker.identities(r.track_ids)))
    bus.subscribe(status.on_result)
    worker = LiveWorker(analyser, capture.slot, bus, tracker, LiveSettings(redetect_every=args.redetect_every))
    worker.start()
    started = last_t = time.monotonic()
    last = (0, 0)
    interrupted = threading.Event()
    # Ctrl-C asks the loop to stop instead of raising KeyboardInterrupt wherever the main thread is.
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        while not interrupted.is_set() and not worker.wait(timeout=max(0.0, last_t + 1.0 - time.monotonic())):
            now = time.monotonic()
            print(status.line(capture, worker, last, now - last_t, backend), file=sys.stderr, flush=True)
            last, last_t = (capture.frames, worker.analysed), now
            if args.duration and now - started >= args.duration:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
        capture.stop()
        worker.stop()
        path = writer.close() if writer else None
    interrupted = interrupted.is_set()
    seconds = time.monotonic() - started
    t0_ns = int(started * 1e9)  # time.monotonic() and monotonic_ns() share one clock
    gaps = "; ".join(f"source lost from {(g.start_ns - t0_ns) / 1e9:.1f} s to "
                     + (f"{(g.end_ns - t0_ns) / 1e9:.1f} s" if g.end_ns else "the end")
                     for g in capture.gaps)
    print(f"{PROG}: {'interrupted; ' if interrupted else ''}{capture.frames} frames captured, {worker.analysed} "
          f"analysed ({capture.slot.skipped} skipped for analysis, {worker.detections_run} full detections) "
          f"in {seconds:.1f} s; tracker: {len(tracker.tracks)} track(s), mode {tracker.mode}"
          + (f"; {gaps}" if gaps else "") + (f"; wrote {writer.rows_written} rows to {path}" if writer else ""),
          file=sys.stderr)
    if worker.error is not None:
        raise UserError(f"analysis stopped: {str(worker.error).splitlines()[0]}")
    if capture.error is not None:
        raise UserError(f"capture stopped: {str(capture.error).splitlines()[0]}")
    return 0


def cmd_cameras(args) -> int:
    from .sources import list_cameras

    cameras = list_cameras()
    for index, width, height in cameras:
        print(f"camera {index}: {width}×{height}")
    if not cameras:
        print("no camera found (checked indices 0-7)")
    return 0
