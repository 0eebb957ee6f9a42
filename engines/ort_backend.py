"""ONNX Runtime: the CPU default. Exports are cached per (model, weights digest, torch, opset)
and checked against torch when they are built."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from . import onnx_export


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("REALTIME_FEAT_CACHE") or user_cache_dir("realtime-feat")) / "onnx"


class OrtRunner:
    def __init__(self, session):
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def run_numpy(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x)})

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(o) for o in self.run_numpy(x.detach().cpu().numpy()))


class OrtBackend:
    name = "onnxruntime"

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
        return self.ort.InferenceSession(str(path), opts, providers=self.providers)

    def onnx_path(self, model: str, weights_digest: str) -> Path:
        return cache_dir() / f"{model}-{weights_digest}-torch{torch.__version__.split('+')[0]}-op{onnx_export.OPSET}.onnx"

    def load(self, model: str, module: torch.nn.Module, weights_digest: str) -> OrtRunner:
        path = self.onnx_path(model, weights_digest)
        if path.is_file():
            try:
                return OrtRunner(self.session(path))
            except Exception:  # a truncated or stale cache entry is rebuilt, not crashed on
                path.unlink()
        onnx_export.export(model, module, path)
        runner = OrtRunner(self.session(path))
        try:
            onnx_export.check(model, module, runner.run_numpy, path)
        except Exception:
            path.unlink(missing_ok=True)
            raise
        return runner

    def describe(self) -> str:
        return (f"onnxruntime {self.ort.__version__} fp32 on {self.device} "
                f"({', '.join(p.replace('ExecutionProvider', '') for p in self.providers)}, {self.threads} threads)")
