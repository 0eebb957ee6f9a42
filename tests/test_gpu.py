"""GPU parity: our CUDA path against py-feat's Detectorv2 on the same GPU and weights.
FP32 within the CPU tolerances; FP16 within looser, stated ones. Skips with "no CUDA device"."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pyfeat_weights import offline_detectorv2
from realtime_feat.capture.media import iter_video
from realtime_feat.types import Detections

from test_parity import (ANGLE, SINGLE_FACE_BOX, TOLERANCES, assert_same, fixed_boxes, reduced_precision_tolerances,
                         write_ours)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

# FP16: probabilities ≤ 0.02, mesh and landmarks ≤ 1.5 px, angles ≤ 1.5°; the rest stated here
FP16_TOLERANCES = reduced_precision_tolerances(0.02, 1.5, 3 * ANGLE, 0.02, 0.05)


@pytest.fixture(scope="module")
def cuda_pyfeat(weights_dir):
    return offline_detectorv2(weights_dir, device="cuda", amp=False)  # py-feat's FP32 on CUDA


@pytest.mark.parametrize("backend, precision, cuda_graphs", [
    ("torch", "fp32", False), ("torch", "fp16", False), ("torch", "fp16", True), ("tensorrt", "fp16", False)])
def test_cuda_matches_pyfeat(backend, precision, cuda_graphs, weights_dir, cuda_pyfeat, sample_data, monkeypatch,
                             tmp_path, pyfeat_reads_video):
    from realtime_feat.analysis.analyser import Analyser

    if backend == "tensorrt":
        pytest.importorskip("tensorrt", reason="tensorrt not installed")
    video = sample_data / "single_face.mp4"
    fixed_boxes(monkeypatch, cuda_pyfeat, SINGLE_FACE_BOX)
    ref = cuda_pyfeat.detect(str(video), data_type="video", batch_size=2, skip_frames=24, progress_bar=False)
    analyser = Analyser(backend, "cuda", weights_dir=weights_dir, precision=precision, cuda_graphs=cuda_graphs)
    items = [(str(video), f) for f in iter_video(video, skip_frames=24)]
    dets = [Detections(SINGLE_FACE_BOX, np.array([0.99], np.float32))] * len(items)
    ours = write_ours(tmp_path, items, analyser.analyse_boxes([f for _, f in items], dets), video=True)
    assert_same(ours, ref, FP16_TOLERANCES if precision == "fp16" else TOLERANCES)


def test_two_streams_give_what_one_gives(weights_dir, sample_data, monkeypatch):
    """analyse_stream on two CUDA streams: the same results, in order, as analyse batch by batch."""
    from realtime_feat.analysis.analyser import Analyser

    from test_analyser import CentreFaces, _batches, _same

    analyser = Analyser("torch", "cuda", weights_dir=weights_dir, precision="fp32")
    monkeypatch.setattr(analyser, "decoder", CentreFaces())
    frames = list(iter_video(sample_data / "single_face.mp4", skip_frames=9))[:7]
    batches = _batches(frames)
    got = list(analyser.analyse_stream(batches))
    assert [tag for tag, _ in got] == [tag for tag, _ in batches]
    for (_, frames_in), (_, results) in zip(batches, got):
        for a, b in zip(results, analyser.analyse(frames_in)):
            _same(a, b)
