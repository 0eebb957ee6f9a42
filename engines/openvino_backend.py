"""OpenVINO on the CPU (optional extra `realtime-feat[openvino]`), on the same cached, checked ONNX
exports as ONNX Runtime. FP32 inference precision is forced: OpenVINO would otherwise pick bf16 on
CPUs that have it, and outputs must equal py-feat's."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import onnx_export
from .base import NumpyRunner


class OvRunner(NumpyRunner):
    def __init__(self, compiled):
        self.request = compiled.create_infer_request()
        self.n_outputs = len(compiled.outputs)

    def run_numpy(self, x: np.ndarray) -> list[np.ndarray]:
        self.request.infer({0: x})
        return [self.request.get_output_tensor(i).data.copy() for i in range(self.n_outputs)]


class OpenVinoBackend:
    name = "openvino"
    warm_faces = (1,)  # one profile or dynamic shapes cover every face count

    def __init__(self, device: str = "cpu", threads: int | None = None):
        if device != "cpu":
            raise RuntimeError(f"the openvino backend runs on the CPU only, not {device}; use --device cpu")
        import openvino

        self.ov = openvino
        self.core = openvino.Core()
        self.device = device
        self.threads = threads or torch.get_num_threads()

    def compile(self, path: Path):
        return self.core.compile_model(str(path), "CPU", {
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32"})

    def load(self, model: str, module: torch.nn.Module, weights_digest: str) -> OvRunner:
        return onnx_export.load_checked(model, module, weights_digest, self.name,
                                        lambda path: OvRunner(self.compile(path)))

    def describe(self) -> str:
        return f"openvino {self.ov.__version__.split('-')[0]} fp32 on cpu ({self.threads} threads)"
