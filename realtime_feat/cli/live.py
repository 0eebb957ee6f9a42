"""`realtime-feat live`, `record` and `cameras`: the live pipeline (a `LiveSession`, or a `MultiSession`
for several --source) without a window. A status line once a second (one per camera), the CSV of what
was analysed or the recording, a clean stop on Ctrl-C, --duration or the end of every file."""
from __future__ import annotations

import signal
import sys
import threading
import time

from ..errors import PROG, UserError, first_line
from ..factories import live_session, multi_session, open_checked_sources
from .console import details, err
from .parser import pipeline_options


def status_line(status, backend: str) -> str:
    """The once-a-second line of `live` and `record` (per camera with several)."""
    return (f"{status.state:8s} capture {status.capture_fps:5.1f} fps | analysed {status.analysed_fps:5.1f} fps | "
            f"latency p50 {status.latency_p50_ms:6.1f} ms p99 {status.latency_p99_ms:6.1f} ms | faces {status.faces} | "
            f"skipped {status.skipped} | {backend}" + (f" | {status.mode}" if status.mode else ""))


def open_session(args, csv_path=None, **session_options):
    """The sources checked (before the models take seconds to load: one that cannot be opened, or one
    given twice, is one line), then the LiveSession (several sources: the MultiSession) with the
    analyser and trackers the options ask for; each step said on stderr. `csv_path`: with several
    sources, a folder that gets one CSV per camera."""
    checked = open_checked_sources(args.source, realtime=not args.fast, width=args.width, height=args.height,
                                   fps=args.fps, fourcc=None if args.fourcc.lower() == "any" else args.fourcc)
    sources = [source for source, _ in checked]
    analysis = getattr(args, "analysis", True)
    if len(sources) == 1:
        return live_session(pipeline_options(args), sources[0], progress=_say, analysis=analysis, csv_path=csv_path,
                            **session_options)
    if csv_path is not None and csv_path.suffix.lower() == ".csv":
        raise UserError(f"{len(sources)} sources give {len(sources)} CSV files: pass a folder to -o, not {csv_path}")
    return multi_session(pipeline_options(args), sources, progress=_say, analysis=analysis, csv_dir=csv_path,
                         **session_options)


def named(items: dict) -> dict:
    """`items` by camera name, the name "" when there is one camera (its lines say no name)."""
    return items if len(items) > 1 else {"": value for value in items.values()}


def _named(name: str, line: str) -> str:
    return f"{name}: {line}" if name else line


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
    for name, camera in named(session.cameras).items():
        if camera.frame_size and camera.analyser is not None:
            print(f"{PROG}: {_named(name, '')}ready for {camera.frame_size[0]}x{camera.frame_size[1]} frames in "
                  f"{camera.warm_up_s:.1f} s", file=sys.stderr)
    analyser = session.analyser
    backend = f"{analyser.backend.name}/{analyser.detector_name}" if analyser else "no analysis"
    interrupted = threading.Event()
    # Ctrl-C asks the loop to stop instead of raising KeyboardInterrupt wherever the main thread is.
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    last_t, said = session.started, set()
    try:
        while not interrupted.is_set() and not session.wait(timeout=max(0.0, last_t + 1.0 - time.monotonic())):
            last_t = time.monotonic()
            status = session.status()
            for name, s in named(status.cameras).items():
                print(_named(f"{name:>8s}" if name else "", status_line(s, backend))
                      + (extra_status(s) if extra_status else ""), file=sys.stderr, flush=True)
            for name, line in status.lost.items():
                # a camera that failed while the others go on, once (a lost one: the capture said it; one
                # whose recording failed, detached while the others record on: its recorder said it)
                if status.cameras[name].state == "failed" and line not in said:
                    said.add(line)
                    print(f"{PROG}: {line}", file=sys.stderr, flush=True)
            if args.duration and last_t - session.started >= args.duration:
                break
            # analysis, capture, the recording (in every camera) or the CSV failed: stop with what was
            # written (a sink that is not what the command is for was detached alone, and said so)
            if status.error or session.essential_failure:
                break
    finally:
        signal.signal(signal.SIGINT, previous)
        session.stop(progress=_say)  # the recording's queued frames: how many are left, once a second
    return interrupted.is_set()


def summary(session, interrupted: bool, started: float, name: str = "") -> str:
    """What one source's session did (`name`: the camera's, with several)."""
    seconds = time.monotonic() - started
    t0_ns = int(started * 1e9)  # time.monotonic() and monotonic_ns() share one clock
    gaps = "; ".join(f"source lost from {(g.start_ns - t0_ns) / 1e9:.1f} s to "
                     + (f"{(g.end_ns - t0_ns) / 1e9:.1f} s" if g.end_ns else "the end")
                     for g in session.gaps)
    s, tracker = session.status(), session.tracker
    return (f"{PROG}: {'interrupted; ' if interrupted else ''}{_named(name, '')}{s.captured} frames captured, "
            f"{s.analysed} analysed ({s.skipped} skipped for analysis, {s.detections_run} full detections) "
            f"in {seconds:.1f} s; tracker: {len(tracker.tracks)} track(s), mode {tracker.mode}"
            + (f"; {gaps}" if gaps else "")
            + (f"; wrote {session.csv_rows} rows to {session.csv_path}" if session.csv_path else ""))


def exit_status(session, *failures: str) -> int:
    """0, or 1 after one line for each thing that failed mid-way (what was written stays): analysis,
    capture (each camera's), a sink the command exists for, and `failures` (the recordings)."""
    lines = [*failures, *(f.message for f in [session.essential_failure] if f)]
    if session.analysis_error is not None:  # its thread logged the traceback
        lines.append(f"analysis stopped: {first_line(session.analysis_error)}" + details())
    for name, camera in named(session.cameras).items():
        if camera.capture.error is not None:
            lines.append(_named(name, f"capture stopped: {first_line(camera.capture.error)}") + details())
    for line in lines:
        err(line)
    return 1 if lines else 0


def cmd_live(args) -> int:
    session = open_session(args, csv_path=args.output)
    interrupted = run_session(session, args)
    for name, camera in named(session.cameras).items():
        print(summary(camera, interrupted, session.started, name), file=sys.stderr)
    return exit_status(session)


def terminal_markers(session, lines) -> None:
    """Each line typed (label + Enter) is a marker, stamped when Enter arrives."""
    try:
        for line in lines:
            if line.strip():
                marker = session.mark(line.strip(), origin="terminal")
                # several cameras: each has its own frame then (markers.csv); the session's clock says when
                at = (f"frame {marker.frame}" if marker.frame >= 0 else
                      f"{marker.t_monotonic_ns / 1e9 - (session.started or 0):.2f} s")
                print(f"{PROG}: marker {marker.label!r} at {at}", file=sys.stderr, flush=True)
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
    errors = []
    for name, camera in named(session.cameras).items():
        rec = camera.last_recording
        print(summary(camera, interrupted, session.started, name) + f"; recorded {rec.rows} frames ({rec.encoded} in "
              f"the video, {rec.dropped} dropped by the encoder queue) and {len(camera.markers)} marker(s) to "
              f"{rec.folder}", file=sys.stderr)
        errors += [_named(name, str(rec.error))] if rec.error is not None else []
    return exit_status(session, *errors)


def cmd_cameras(args) -> int:
    from ..capture.camera_modes import list_modes
    from ..capture.sources import CameraSource, list_cameras

    cameras = list_cameras()
    for index, width, height in cameras:
        camera = CameraSource(index)
        try:
            camera.open()  # as live and record open it: MJPEG asked for
            opened = f"opens as {camera.mode}"
        except OSError as exc:
            opened = first_line(exc)
        finally:
            camera.close()
        print(f"camera {index}: {width}×{height}; {opened}")
        modes = list_modes(index)
        if modes is None:
            print("  modes on offer: this platform does not tell (ask for one with --fourcc, --width, --height, --fps)")
        for mode in modes or []:
            print(f"  {mode}")
    if not cameras:
        print("no camera found (checked indices 0-7)")
    return 0
