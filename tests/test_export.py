"""ONNX exports of py-feat's networks: checked against torch at several batch sizes (the cache: test_cache)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pyfeat_weights import random_retinaface_state
from realtime_feat.engines import onnx_export
from realtime_feat.engines.networks import MODELS
from realtime_feat.analysis.models import PyFeatModels


@pytest.fixture(scope="module")
def models(weights_dir):
    return PyFeatModels.load(weights_dir)


@pytest.mark.parametrize("model", ["multitask", "identity", "detector"])
def test_export_matches_torch_at_several_batch_sizes(model, models, tmp_path):
    module = {"detector": models.detector, "multitask": models.multitask, "identity": models.identity}[model]
    path = onnx_export.export(model, module, tmp_path / f"{model}.onnx")
    # The exporter restores the wrapper's mode with train(); a wrapper left in training mode would
    # switch py-feat's DropPath, dropout and BatchNorm on and move the torch reference itself.
    assert not any(m.training for m in module.modules())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    diff = onnx_export.difference(model, module, lambda x: session.run(None, {session.get_inputs()[0].name: x}))
    assert diff.ok, diff
    assert len({shape[0] for shape in MODELS[model].check_shapes}) >= 2  # several batch sizes


def _detector(variant: str):
    """RetinaFace R34 in py-feat's format, as valid weight files can differ: raw random init (outputs in
    the thousands), the heads scaled down to trained ranges, or the face-class bias shifted (many
    confident faces per frame)."""
    from feat.face_detectors.Retinaface.Retinaface_model import RETINAFACE_R34_CFG, RetinaFace

    torch.manual_seed(3)
    net = RetinaFace(RETINAFACE_R34_CFG)
    net.load_state_dict(random_retinaface_state(quiet=False))
    with torch.no_grad():
        if variant == "scaled":
            for conv in [*net.BboxHead._convs, *net.LandmarkHead._convs, *net.ClassHead._convs]:
                conv.weight.mul_(0.01)
                conv.bias.mul_(0.01)
        if variant == "shifted":
            for conv in net.ClassHead._convs:
                conv.bias.view(-1, 2)[:, 1] += 2.0
    return net.eval()


def _runners(path):
    import openvino

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return {"onnxruntime": lambda x: session.run(None, {"pixels": x}),
            "openvino": lambda x: list(compiled({0: x}).values())}


@pytest.mark.parametrize("variant", ["random", "scaled", "shifted"])
def test_the_check_passes_valid_detectors_and_catches_a_broken_export(variant, tmp_path):
    """FP32 rounding of a valid network never fails the check, on either CPU backend; a wrong weight
    in the export (here: one head's bias off by 0.05) always does."""
    import onnx
    from onnx import numpy_helper

    pytest.importorskip("openvino", reason="openvino not installed")
    net = _detector(variant)
    path = onnx_export.export("detector", net, tmp_path / "detector.onnx")
    for backend, run in _runners(path).items():
        diff = onnx_export.difference("detector", net, run)
        assert diff.ok, f"{backend}: {diff}"
    model = onnx.load(str(path))
    (bias,) = [i for i in model.graph.initializer if i.name == "net.ClassHead._convs.0.bias"]
    face_logits = np.array([0, 0.05, 0, 0.05], np.float32)  # (background, face) × 2 anchors
    bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + face_logits, bias.name))
    onnx.save(model, str(path))
    for backend, run in _runners(path).items():
        diff = onnx_export.difference("detector", net, run)
        assert not diff.ok and diff.output == "detector.conf", f"{backend}: {diff}"
        with pytest.raises(onnx_export.ExportMismatch, match="differs from torch: detector.conf by"):
            onnx_export.check("detector", net, run, path)


def test_auto_passes_over_a_backend_that_fails_its_check(weights_dir, monkeypatch, tmp_path):
    """--backend auto: a backend whose export differs from torch is passed over for the next, with one
    line saying by how much; named with --backend, the same failure is the error."""
    pytest.importorskip("openvino", reason="openvino not installed")
    from realtime_feat.analysis.analyser import Analyser
    from realtime_feat.engines import openvino_backend

    monkeypatch.setenv("REALTIME_FEAT_CACHE", str(tmp_path))  # no check remembered from other tests
    real = openvino_backend.OvRunner.run_numpy
    monkeypatch.setattr(openvino_backend.OvRunner, "run_numpy", lambda self, x: [o + 0.01 for o in real(self, x)])
    analyser = Analyser("auto", "cpu", identity=False, weights_dir=weights_dir)
    assert analyser.backend.name == "onnxruntime"
    (line,) = analyser.fallbacks
    assert line.startswith("openvino failed its check against torch: detector.conf by 1.00e-02 (limit 0.002)")
    assert "openvino: failed its check against torch" in analyser.describe()
    with pytest.raises(onnx_export.ExportMismatch, match="of detector differs from torch: detector.conf by 1.00e-02"):
        Analyser("openvino", "cpu", identity=False, weights_dir=weights_dir)
