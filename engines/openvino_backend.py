"""OpenVINO on the CPU (optional extra `realtime-feat[openvino]`), on the same cached, checked ONNX
exports as ONNX Runtime. The inference precision is always set: OpenVINO would otherwise pick bf16 by
itself on CPUs that have it. FP32 (the default) equals py-feat's outputs; bf16 (AMX or AVX-512 BF16)
is several times faster within the tolerances tests/test_bf16.py states. A bf16 model's export is
still checked against torch through an FP32 compile of the same file: the check catches broken
exports, and bf16 rounding is not a defect."""
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

    def __init__(self, device: str = "cpu", threads: int | None = None, precision: str = "fp32"):
        if device != "cpu":
            raise RuntimeError(f"the openvino backend runs on the CPU only, not {device}; use --device cpu")
        import openvino

        self.ov = openvino
        self.core = openvino.Core()
        self.device = device
        self.threads = threads or torch.get_num_threads()
        self.precision = precision

    def compile(self, path: Path, precision: str):
        return self.core.compile_model(str(path), "CPU", {
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads,
            "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision]})

    def load(self, model: str, module: torch.nn.Module, weights_digest: str) -> OvRunner:
        checker = None if self.precision == "fp32" else (lambda path: OvRunner(self.compile(path, "fp32")))
        return onnx_export.load_checked(model, module, weights_digest, self.name,
                                        lambda path: OvRunner(self.compile(path, self.precision)), checker)

    def describe(self) -> str:
        from .cpu_info import describe_cpu

        return (f"openvino {self.ov.__version__.split('-')[0]} {self.precision} on cpu ({self.threads} threads; "
                f"{describe_cpu()})")
