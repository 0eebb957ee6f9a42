#!/usr/bin/env python
"""Offline throughput: realtime-feat `process` vs py-feat Detectorv2 on the same video, weights,
thread count and face, in one run. Prints one table.

Both sides run RetinaFace in full on every frame at the video's own resolution; the face it reports
is then replaced by one fixed box (random-init RetinaFace finds no real face), as in the fact sheet's
py-feat measurement. ArcFace is on. "max |Δ|" is the largest difference from py-feat's own output
over the AU, emotion, valence/arousal and blendshape columns, and over the 478-point mesh in pixels.

    python scripts/bench_process.py [--weights DIR] [--video FILE] [--threads 2] [--batch-sizes 1 8]
                                    [--backends openvino openvino-bf16 onnxruntime torch]

A backend with "-bf16" runs `--precision bf16` (OpenVINO on a CPU with AMX or AVX-512 BF16; left out,
and said, on a CPU without).

Without --weights, random-init weights are written to a temporary folder with
tests/pyfeat_weights.py.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BOX = [250.0, 80.0, 370.0, 240.0, 0.99]


def _maker():
    """Random-init weights in py-feat's format and py-feat's Detectorv2 on them, as the tests build them."""
    sys.path.insert(0, str(ROOT / "tests"))
    import pyfeat_weights

    return pyfeat_weights


class FixedFace:
    """Stands in for RetinaFace's decoder after the network has run: one face at BOX per frame."""

    def __call__(self, loc, conf, landms, height, width):
        from realtime_feat.types import Detections

        return [Detections(np.array([BOX[:4]], np.float32), np.array([BOX[4]], np.float32),
                           np.zeros((1, 5, 2), np.float32)) for _ in range(conf.shape[0])]


PROBABILITIES = ("AU", "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "valence", "arousal",
                 "_neutral", "browDown", "jawOpen")
PIXELS = ("mesh_x_", "mesh_y_")


def max_diff(ours, ref, prefixes) -> float:
    cols = [c for c in ref.columns if c.startswith(prefixes)]
    return float(np.nanmax(np.abs(ours[cols].to_numpy(float) - ref[cols].to_numpy(float))))


def run_pyfeat(weights, video, batch, out) -> float:
    det = _maker().offline_detectorv2(weights)
    orig = det.face_detector.forward
    det.face_detector.forward = lambda img: [[list(BOX)] for _ in orig(img)]
    det.detect(str(video), data_type="video", batch_size=batch, skip_frames=36, progress_bar=False)  # warm-up
    start = time.perf_counter()
    fex = det.detect(str(video), data_type="video", batch_size=batch, progress_bar=False)
    seconds = time.perf_counter() - start
    fex.to_csv(out, index=False)
    return seconds


def run_ours(spec, weights, video, batch, out) -> float:
    from realtime_feat.analysis.analyser import Analyser
    from realtime_feat.offline.jobs import Job
    from realtime_feat.offline.process import process_job

    backend, _, precision = spec.partition("-")
    analyser = Analyser(backend, weights_dir=weights, precision=precision or None)
    analyser.decoder = FixedFace()
    process_job(analyser, Job("video", video), out, batch, skip_frames=36, progress=False)  # warm-up
    start = time.perf_counter()
    process_job(analyser, Job("video", video), out, batch, progress=False)
    return time.perf_counter() - start


def child(a) -> int:
    """One pipeline in its own process, so each runs in the environment its users give it."""
    import torch

    torch.set_num_threads(a.threads)
    if a.child == "pyfeat":
        seconds = run_pyfeat(a.weights, a.video, a.batch, a.out)
    else:
        seconds = run_ours(a.child, a.weights, a.video, a.batch, a.out)
    print(f"SECONDS {seconds}")
    return 0


def timed(pipeline, a, weights, video, batch, out) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if pipeline not in ("pyfeat", "torch"):  # what `realtime-feat process` sets for these engines
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [sys.executable, __file__, "--child", pipeline, "--weights", str(weights), "--video", str(video),
           "--batch", str(batch), "--out", str(out), "--threads", str(a.threads)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("SECONDS ")]
    if proc.returncode or not line:
        raise SystemExit(f"{pipeline} batch {batch} failed:\n{proc.stderr[-2000:]}")
    return float(line[0].split()[1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--video", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--backends", nargs="+", default=["openvino", "openvino-bf16", "onnxruntime", "torch"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.child:
        return child(a)

    import torch
    from feat.utils.io import get_test_data_path, read_feat

    from realtime_feat.engines import available_backends
    from realtime_feat.engines.cpu_info import bf16_problem, describe_cpu
    from realtime_feat.capture.media import probe_video

    backends = [b for b in a.backends if not available_backends()[b.partition("-")[0]]
                and not (b.endswith("-bf16") and bf16_problem())]
    tmp = Path(tempfile.mkdtemp(prefix="bench_process_"))
    os.environ.setdefault("REALTIME_FEAT_CACHE", str(tmp / "cache"))
    weights = a.weights
    if weights is None:
        weights = tmp / "weights"
        _maker().write_random_weights(weights)
    video = a.video or Path(get_test_data_path()) / "single_face.mp4"
    n = probe_video(video).frames
    rows = []
    for batch in a.batch_sizes:
        ref_s = timed("pyfeat", a, weights, video, batch, tmp / f"pyfeat-{batch}.csv")
        ref = read_feat(str(tmp / f"pyfeat-{batch}.csv"))
        rows.append(("py-feat Detectorv2 (torch eager)", batch, len(ref) / ref_s, 1.0, 0.0, 0.0))
        for backend in backends:
            out = tmp / f"{backend}-{batch}.csv"
            s = timed(backend, a, weights, video, batch, out)
            ours = read_feat(str(out))
            assert len(ours) == len(ref), f"{backend}: {len(ours)} rows, py-feat {len(ref)}"
            rows.append((f"realtime-feat {backend}", batch, len(ours) / s, ref_s / s,
                         max_diff(ours, ref, PROBABILITIES), max_diff(ours, ref, PIXELS)))
    from benchtable import print_table

    print_table(f"bench_process: {video.name} ({n} frames), 1 face/frame, ArcFace on, {a.threads} threads, "
                f"{describe_cpu()}, {os.cpu_count()} cores, torch {torch.__version__}"
                + (f"; bf16 rows left out: {bf16_problem()}" if bf16_problem() else ""),
                ["pipeline", "batch", "frames/s", "× py-feat", "max |Δ| AU/emotion/VA/blendshape", "max |Δ| mesh px"],
                [[name, batch, f"{fps:.2f}", f"{ratio:.2f}", f"{prob:.1e}", f"{px:.1e}"]
                 for name, batch, fps, ratio, prob, px in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
