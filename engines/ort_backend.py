"""ONNX Runtime: the CPU default, on our cached, checked ONNX exports."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import onnx_export
from .base import NumpyRunner


class OrtRunner(NumpyRunner):
    def __init__(self, session):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def run_numpy(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: x})


class OrtBackend:
    name = "onnxruntime"
    warm_faces = (1,)  # one profile or dynamic shapes cover every face count

    def __init__(self, device: str = "cpu", threads: int | None = None):
        import onnxruntime as ort

        self.ort = ort
        self.device = device
        self.threads = threads or torch.get_num_threads()
        want = ["CUDAExecutionProvider"] if device.startswith("cuda") else []
        self.providers = [p for p in want if p in ort.get_available_providers()] + ["CPUExecutionProvider"]
        if want and self.providers == ["CPUExecutionProvider"]:
            raise RuntimeError(f"onnxruntime has no CUDA provider here (device {device}); "
                               "install onnxruntime-gpu or use --device cpu")

    def session(self, path: Path):
        opts = self.ort.SessionOptions()
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # torch runs the crop and resizes between our sessions: spinning ORT workers would hold the
        # cores those need (measured on 2 cores: crop 1 → 23 ms, a frame 155 → 265 ms)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return self.ort.InferenceSession(str(path), opts, providers=self.providers)

    def load(self, model: str, module: torch.nn.Module, weights_digest: str) -> OrtRunner:
        return onnx_export.load_checked(model, module, weights_digest, self.name,
                                        lambda path: OrtRunner(self.session(path)))

    def describe(self) -> str:
        return (f"onnxruntime {self.ort.__version__} fp32 on {self.device} "
                f"({', '.join(p.replace('ExecutionProvider', '') for p in self.providers)}, {self.threads} threads)")
