#!/usr/bin/env python
"""GPU speed: realtime-feat's best CUDA backend vs py-feat Detectorv2 on the same GPU, weights and video,
in one run. Prints one table.

Live rows: latency per frame at batch 1 (a decoded frame in host memory → its FrameResult on the host),
p50 and p99 over the video, with 1 and with 8 faces (fixed boxes replace what random-init RetinaFace
reports, as in bench_process.py; RetinaFace still runs in full), for the chosen backend and for
torch with CUDA graphs. Offline rows: frames/s of `process` (ours) and `detect()` (py-feat) at each
batch size; the table marks py-feat's best batch. A last row shows what the detector/face-network
stream overlap (`Analyser.analyse_stream`) adds on frames already decoded.

    python scripts/bench_gpu.py [--weights DIR] [--backend auto] [--batch-sizes 1 8 32]

Needs a CUDA device. Targets on an H100 (issue 4): p99 ≤ 8 ms with 1 face, ≤ 15 ms with 8 faces;
offline ≥ 10× py-feat's batch-1 frames/s and ≥ 3× its best-batch frames/s.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_process import _maker  # noqa: E402


def boxes_for(n: int, height: int, width: int) -> np.ndarray:
    """n face boxes on a grid over the frame."""
    cols = int(np.ceil(np.sqrt(n * width / height)))
    rows = int(np.ceil(n / cols))
    side = min(width / cols, height / rows) * 0.7
    out = [[(c + 0.5) * width / cols - side / 2, (r + 0.5) * height / rows - side / 2,
            (c + 0.5) * width / cols + side / 2, (r + 0.5) * height / rows + side / 2]
           for r in range(rows) for c in range(cols)][:n]
    return np.asarray(out, np.float32)


class Fixed:
    def __init__(self, boxes):
        self.boxes = boxes

    def __call__(self, loc, conf, landms, height, width):
        from realtime_feat.types import Detections

        n = len(self.boxes)
        return [Detections(self.boxes, np.full(n, 0.99, np.float32)) for _ in range(conf.shape[0])]


def pyfeat_detector(weights, boxes, device):
    det = _maker().offline_detectorv2(weights, device=device)
    orig = det.face_detector.forward
    rows = [[*b.tolist(), 0.99] for b in boxes]
    det.face_detector.forward = lambda img: [list(rows) for _ in orig(img)]
    return det


def latencies_pyfeat(det, frames) -> np.ndarray:
    import torch

    pad = {k: torch.zeros(1) for k in ("Left", "Top", "Right", "Bottom")}
    out = []
    for frame in frames:
        t = time.perf_counter()
        x = torch.from_numpy(frame.image).permute(2, 0, 1)[None]
        det.forward(det.detect_faces(x), {"Image": x, "Scale": torch.ones(1), "Padding": pad})
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        out.append((time.perf_counter() - t) * 1e3)
    return np.array(out[5:])


def latencies_ours(analyser, frames) -> np.ndarray:
    out = []
    for frame in frames:
        t = time.perf_counter()
        analyser.analyse([frame])  # results come back to the host: the GPU work is done
        out.append((time.perf_counter() - t) * 1e3)
    return np.array(out[5:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--video", type=Path)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--device", default="cuda", help="cuda (default); cpu only to check the script runs")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("bench_gpu: no CUDA device")
    from feat.utils.io import get_test_data_path

    from realtime_feat.analysis.analyser import Analyser
    from realtime_feat.capture.media import iter_video
    from realtime_feat.offline.jobs import Job
    from realtime_feat.offline.process import process_job

    tmp = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    os.environ.setdefault("REALTIME_FEAT_CACHE", str(tmp / "cache"))
    weights = a.weights or tmp / "weights"
    if a.weights is None:
        _maker().write_random_weights(weights)
    video = a.video or Path(get_test_data_path()) / "WolfgangLanger_Pexels.mp4"
    frames = list(iter_video(video))
    h, w = frames[0].size
    rows = []
    analyser = Analyser(a.backend, a.device, weights_dir=weights)
    analyser.warm_up(h, w)
    contenders = [("", analyser)]
    if a.device.startswith("cuda"):  # CUDA graphs are opt-in until these rows show they pay
        contenders.append((", torch + CUDA graphs", Analyser("torch", a.device, weights_dir=weights, cuda_graphs=True)))
    for n in (1, 8):
        boxes = boxes_for(n, h, w)
        det = pyfeat_detector(weights, boxes, a.device)
        ref = latencies_pyfeat(det, frames[:120])
        del det
        for label, ours_analyser in contenders:
            ours_analyser.decoder = Fixed(boxes)
            ours = latencies_ours(ours_analyser, frames[:120])
            rows.append((f"live latency, {n} face(s), batch 1{label}", "ms p50 / p99",
                         f"{np.percentile(ref, 50):.1f} / {np.percentile(ref, 99):.1f}",
                         f"{np.percentile(ours, 50):.1f} / {np.percentile(ours, 99):.1f}",
                         f"{np.percentile(ref, 99) / np.percentile(ours, 99):.1f}×"))
    boxes = boxes_for(1, h, w)
    det = pyfeat_detector(weights, boxes, a.device)
    analyser.decoder = Fixed(boxes)
    pyfeat_fps, ours_fps = {}, {}
    for batch in a.batch_sizes:
        det.detect(str(video), data_type="video", batch_size=batch, skip_frames=50, progress_bar=False)
        t = time.perf_counter()
        n = len(det.detect(str(video), data_type="video", batch_size=batch, progress_bar=False))
        pyfeat_fps[batch] = n / (time.perf_counter() - t)
        t = time.perf_counter()
        report = process_job(analyser, Job("video", video), tmp / f"ours-{batch}.csv", batch, progress=False)
        ours_fps[batch] = report.frames / (time.perf_counter() - t)
    # what the stream overlap adds: the same decoded frames, batch by batch vs analyse_stream
    overlap = max(a.batch_sizes)
    batches = [frames[i:i + overlap] for i in range(0, len(frames), overlap)]
    t = time.perf_counter()
    for batch in batches:
        analyser.analyse(batch)
    in_order = len(frames) / (time.perf_counter() - t)
    t = time.perf_counter()
    for _ in analyser.analyse_stream(enumerate(batches)):
        pass
    streamed = len(frames) / (time.perf_counter() - t)
    best = max(pyfeat_fps, key=pyfeat_fps.get)
    for batch in a.batch_sizes:
        mark = " (py-feat's best)" if batch == best else ""
        rows.append((f"offline, batch {batch}{mark}", "frames/s", f"{pyfeat_fps[batch]:.1f}",
                     f"{ours_fps[batch]:.1f}", f"{ours_fps[batch] / pyfeat_fps[batch]:.1f}×"))
    rows.append(("offline, ours best vs py-feat batch 1", "ratio", "", "",
                 f"{max(ours_fps.values()) / pyfeat_fps[1]:.1f}×"))
    rows.append(("offline, ours best vs py-feat best", "ratio", "", "",
                 f"{max(ours_fps.values()) / pyfeat_fps[best]:.1f}×"))
    rows.append((f"decoded frames, batch {overlap}: in order → overlapped", "frames/s", "",
                 f"{in_order:.1f} → {streamed:.1f}", f"{streamed / in_order:.2f}× (overlap)"))
    from benchtable import print_table

    gpu = torch.cuda.get_device_name() if a.device.startswith("cuda") else "CPU (script check only)"
    from realtime_feat.engines.cpu_info import describe_cpu

    print_table(f"bench_gpu: {video.name} ({len(frames)} frames, {w}×{h}), {gpu}, CUDA {torch.version.cuda}, "
                f"torch {torch.__version__}, host CPU {describe_cpu()}, ours: {analyser.describe()}",
                ["measure", "unit", "py-feat", "realtime-feat", "ours vs py-feat"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
