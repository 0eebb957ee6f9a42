"""ONNX exports of py-feat's networks: checked against torch at several batch sizes, cached, rebuilt."""
from __future__ import annotations

import onnxruntime as ort
import pytest
import torch

from realtime_feat.engines import onnx_export
from realtime_feat.engines.networks import MODELS
from realtime_feat.models import PyFeatModels


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
    diff = onnx_export.max_abs_diff(model, module, lambda x: session.run(None, {session.get_inputs()[0].name: x}))
    assert diff <= onnx_export.TOLERANCE
    assert len({shape[0] for shape in MODELS[model].check_shapes}) >= 2  # several batch sizes


def test_a_corrupt_cache_entry_is_rebuilt(models):
    from realtime_feat.engines.ort_backend import OrtBackend

    backend = OrtBackend(threads=2)
    backend.load("identity", models.identity, "rebuild")
    path = onnx_export.onnx_path("identity", "rebuild")
    path.write_bytes(path.read_bytes()[:1000])  # a crash mid-write, a full disk
    runner = backend.load("identity", models.identity, "rebuild")
    x = torch.randn(2, 3, 112, 112)
    with torch.inference_mode():
        ref = models.identity.net(x)
    assert float((runner(x)[0] - ref).abs().max()) <= 1e-4
    assert path.stat().st_size > 1000
