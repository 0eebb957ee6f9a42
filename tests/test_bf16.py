"""bf16 on the CPU (OpenVINO, on processors with AMX or AVX-512 BF16) against py-feat's own FP32 on
the same weights: the tolerances below are what bf16 is promised to hold, as FP16 is on the GPU
(tests/test_gpu.py). `process` stays FP32 by default (equal outputs); `live` uses bf16 where the CPU
has it."""
from __future__ import annotations

import re

import numpy as np
import pytest

from realtime_feat.engines.cpu_info import bf16_problem
from test_parity import ANGLE, assert_same, firing_retinaface, multi_face_rows, reduced_precision_tolerances

needs_bf16 = pytest.mark.skipif(bool(bf16_problem()), reason=bf16_problem() or "")

# Measured (random-init weights, Intel Xeon with AMX, OpenVINO 2026.4): on multi_face.jpg (5 faces)
# AU/emotion/VA 0.009, mesh and landmarks 0.05 px, angles 0.2°, X/Y/Z 2e-4, ArcFace 0.002; over the 72
# frames of single_face.mp4 (scripts/bench_process.py) probabilities 0.024 and mesh 0.09 px.
BF16_TOLERANCES = reduced_precision_tolerances(0.05, 1.5, 3 * ANGLE, 0.03, 0.05)


@pytest.fixture(scope="module")
def bf16_analyser(weights_dir):
    from realtime_feat.analysis.analyser import Analyser

    return Analyser("openvino", "cpu", precision="bf16", weights_dir=weights_dir)


@needs_bf16
def test_multi_face_image_within_the_bf16_tolerances(bf16_analyser, pyfeat_detector, sample_data, monkeypatch,
                                                      tmp_path):
    ours, ref = multi_face_rows(bf16_analyser, pyfeat_detector, sample_data, monkeypatch, tmp_path)
    assert ours["n_faces"].tolist() == [5] * 5
    assert_same(ours, ref, BF16_TOLERANCES)


# A detection whose FP32 score is this close to the threshold may be found on one side only.
SCORE_MARGIN = 0.05


@needs_bf16
def test_detections_agree_except_near_the_threshold(weights_dir, sample_data, tmp_path):
    """RetinaFace R34 that fires a score spread of realistically sized boxes on multi_face.jpg: bf16 finds every FP32 detection that is clear of the threshold, in the same place, and vice versa."""
    import torch
    from safetensors.torch import save_file

    from realtime_feat.analysis.analyser import Analyser
    from realtime_feat.capture.media import read_image
    from realtime_feat.analysis.models import PyFeatModels, build_retinaface
    from realtime_feat.types import Frame
    from torchvision.ops import box_iou

    path = tmp_path / "retinaface.safetensors"
    save_file(firing_retinaface(), str(path))
    base = PyFeatModels.load(weights_dir, identity=False)
    models = PyFeatModels(build_retinaface(path), base.multitask, None, {**base.paths, "retinaface": path})
    frame = Frame(read_image(sample_data / "multi_face.jpg"), 0, 0, 0)
    found = {precision: Analyser("openvino", "cpu", precision=precision, identity=False, models=models)
             .analyse([frame])[0].detections for precision in ("fp32", "bf16")}
    fp32, bf16 = found["fp32"], found["bf16"]
    assert len(fp32) >= 5, "the test weights must fire several faces"
    iou = box_iou(torch.from_numpy(fp32.xyxy), torch.from_numpy(bf16.xyxy)).numpy()
    same_anchor = 0
    for ours, theirs, overlap in ((fp32, bf16, iou), (bf16, fp32, iou.T)):
        for i, score in enumerate(ours.scores):
            j = int(np.argmax(overlap[i])) if overlap.shape[1] else -1
            if j < 0 or overlap[i, j] < 0.5:
                assert score < 0.5 + SCORE_MARGIN, f"a clear detection ({score:.3f}) found on one side only"
                continue
            if overlap[i, j] >= 0.9:  # the same anchor won NMS (near-tied neighbours may swap)
                same_anchor += 1
                assert abs(score - theirs.scores[j]) <= 0.03
                # bf16 keeps 8 bits of mantissa, so a regressed position moves with the face's size: 2.06 px
                # (0.6 %) on a 344 px face seen on an AMD EPYC's AVX-512 BF16, within 2 px on an AMX Xeon
                limit = max(2.0, 0.01 * float(np.max(ours.xyxy[i, 2:] - ours.xyxy[i, :2])))
                assert np.abs(ours.xyxy[i] - theirs.xyxy[j]).max() <= limit
                assert np.abs(ours.keypoints[i] - theirs.keypoints[j]).max() <= limit
    assert same_anchor >= len(fp32)  # most faces, counted from both sides


NO_UNIT = "this CPU has no bf16 unit (AMX or AVX-512 BF16): Test CPU"


@pytest.mark.parametrize("has_bf16", [True, False])
def test_live_defaults_follow_the_cpu(has_bf16, monkeypatch):
    """With a bf16 unit, live runs py-feat's R34 in bf16; without, the fast detector in FP32; process and
    an explicit --precision are left alone; bf16 where it cannot run is one clear error."""
    from realtime_feat import PipelineOptions
    from realtime_feat.engines import cpu_info, select
    from realtime_feat.engines.fast_detector import available
    from realtime_feat.factories import with_live_defaults

    pytest.importorskip("openvino", reason="openvino not installed")
    monkeypatch.setattr(cpu_info, "bf16_problem", lambda: "" if has_bf16 else NO_UNIT)
    options, notes = with_live_defaults(PipelineOptions(device="cpu"))
    if has_bf16:
        assert (options.precision, options.detector) == ("bf16", "retinaface")
        assert notes[0].startswith("live precision bf16: this CPU has a bf16 unit")
    else:
        assert options.precision is None and options.detector == ("retinaface" if available() else "fast")
        assert notes[0] == f"live precision fp32: {NO_UNIT}"
        with pytest.raises(ValueError, match=re.escape(f"precision bf16: {NO_UNIT}; use precision fp32")):
            select.select_backend("auto", "cpu", precision="bf16")
    explicit, _ = with_live_defaults(PipelineOptions(backend="onnxruntime", device="cpu", detector="retinaface"))
    assert explicit.precision is None  # bf16 is OpenVINO's
    with pytest.raises(ValueError, match="bf16 runs on OpenVINO only, not onnxruntime"):
        select.select_backend("onnxruntime", "cpu", precision="bf16")
