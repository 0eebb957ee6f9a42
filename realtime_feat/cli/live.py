"""`realtime-feat live`, `record` and `cameras`: the live pipeline (a `LiveSession`) without a window. A
status line once a second, the CSV of what was analysed or the recording, a clean stop on Ctrl-C,
--duration or the end of a file."""
from __future__ import annotations

import signal
import sys
import threading
import time

from ..errors import PROG, UserError, first_line
from ..factories import live_session, open_checked_source
from .parser import pipeline_options


def status_line(status, backend: str) -> str:
    """The once-a-second line of `live` and `record`."""
    return (f"{status.state:8s} capture {status.capture_fps:5.1f} fps | analysed {status.analysed_fps:5.1f} fps | "
            f"latency p50 {status.latency_p50_ms:6.1f} ms p99 {status.latency_p99_ms:6.1f} ms | faces {status.faces} | "
            f"skipped {status.skipped} | {backend}")


def open_session(args, **session_options):
    """The source checked (before the models take seconds to load), then the LiveSession on it with the
    analyser and tracker the options ask for; each step said on stderr."""
    source, _ = open_checked_source(args.source, realtime=not args.fast, width=args.width, height=args.height,
                                    fps=args.fps)
    return live_session(pipeline_options(args), source, progress=_say, analysis=getattr(args, "analysis", True),
                        **session_options)


def _say(line: str) -> None:
    print(f"{PROG}: {line}", file=sys.stderr)


def run_session(session, args, before_start=None, extra_status=None) -> bool:
    """Start `session`, print the status line once a second until Ctrl-C, --duration or the source's
    end, then stop it. True if interrupted. `before_start(session)` runs just before capture starts."""
    if before_start:
        before_start(session)
    try:
        session.start()
    except OSError as exc:
        session.stop()
        raise UserError(str(exc)) from None
    if session.frame_size and session.analyser is not None:
        print(f"{PROG}: ready for {session.frame_size[0]}x{session.frame_size[1]} frames in "
              f"{session.warm_up_s:.1f} s", file=sys.stderr)
    analyser = session.analyser
    backend = f"{analyser.backend.name}/{analyser.detector_name}" if analyser else "no analysis"
    interrupted = threading.Event()
    # Ctrl-C asks the loop to stop instead of raising KeyboardInterrupt wherever the main thread is.
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    last_t = session.started
    try:
        while not interrupted.is_set() and not session.wait(timeout=max(0.0, last_t + 1.0 - time.monotonic())):
            last_t = time.monotonic()
            status = session.status()
            print(status_line(status, backend) + (extra_status(status) if extra_status else ""),
                  file=sys.stderr, flush=True)
            if args.duration and last_t - session.started >= args.duration:
                break
            if status.error:  # analysis, capture or the recording failed: stop with what was written
                break
    finally:
        signal.signal(signal.SIGINT, previous)
        session.stop()
    return interrupted.is_set()


def summary(session, interrupted: bool) -> str:
    seconds = time.monotonic() - session.started
    t0_ns = int(session.started * 1e9)  # time.monotonic() and monotonic_ns() share one clock
    gaps = "; ".join(f"source lost from {(g.start_ns - t0_ns) / 1e9:.1f} s to "
                     + (f"{(g.end_ns - t0_ns) / 1e9:.1f} s" if g.end_ns else "the end")
                     for g in session.gaps)
    s, tracker = session.status(), session.tracker
    return (f"{PROG}: {'interrupted; ' if interrupted else ''}{s.captured} frames captured, {s.analysed} "
            f"analysed ({s.skipped} skipped for analysis, {s.detections_run} full detections) "
            f"in {seconds:.1f} s; tracker: {len(tracker.tracks)} track(s), mode {tracker.mode}"
            + (f"; {gaps}" if gaps else "")
            + (f"; wrote {session.csv_rows} rows to {session.csv_path}" if session.csv_path else ""))


def raise_errors(session) -> None:
    worker = session.worker
    if worker is not None and worker.error is not None:
        raise UserError(f"analysis stopped: {first_line(worker.error)}")
    if session.capture.error is not None:
        raise UserError(f"capture stopped: {first_line(session.capture.error)}")


def cmd_live(args) -> int:
    session = open_session(args, csv_path=args.output)
    interrupted = run_session(session, args)
    print(summary(session, interrupted), file=sys.stderr)
    raise_errors(session)
    return 0


def terminal_markers(session, lines) -> None:
    """Each line typed (label + Enter) is a marker, stamped when Enter arrives."""
    try:
        for line in lines:
            if line.strip():
                marker = session.mark(line.strip(), origin="terminal")
                print(f"{PROG}: marker {marker.label!r} at frame {marker.frame}", file=sys.stderr, flush=True)
    except (OSError, ValueError):  # no terminal (a closed or captured stdin): no typed markers
        pass


def cmd_record(args) -> int:
    session = open_session(args, lsl=args.lsl, lsl_markers=args.lsl_markers)

    def begin(session):
        try:
            folder = session.start_recording(args.out, args.label, args.codec, leave_out=args.leave_out)
        except OSError as exc:
            raise UserError(f"cannot create a session folder in {args.out}: {exc}") from None
        print(f"{PROG}: recording to {folder} (type a label + Enter for a marker; Ctrl-C ends)", file=sys.stderr)
        threading.Thread(target=terminal_markers, args=(session, sys.stdin), name="markers", daemon=True).start()

    def counts(status) -> str:
        return f" | rec {status.recording_s:5.1f} s encoded {status.encoded} dropped {status.encoder_dropped}"

    interrupted = run_session(session, args, before_start=begin, extra_status=counts)
    rec = session.last_recording
    print(summary(session, interrupted) + f"; recorded {rec.rows} frames ({rec.encoded} in the video, {rec.dropped} "
          f"dropped by the encoder queue) and {len(session.markers)} marker(s) to {rec.folder}", file=sys.stderr)
    if rec.error is not None:
        raise UserError(str(rec.error))
    raise_errors(session)
    return 0


def cmd_cameras(args) -> int:
    from ..sources import list_cameras

    cameras = list_cameras()
    for index, width, height in cameras:
        print(f"camera {index}: {width}×{height}")
    if not cameras:
        print("no camera found (checked indices 0-7)")
    return 0
