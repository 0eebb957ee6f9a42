"""Which backends this machine can run, and the best one for a device (DESIGN.md order).

On the CPU, OpenVINO (when its optional extra is installed) measured faster than ONNX Runtime on
these networks (scripts/bench_process.py), so it comes first. TensorRT and the torch-CUDA fast path
arrive with the GPU issue; `--backend` overrides."""
from __future__ import annotations

import importlib.util


def available_backends() -> dict[str, str]:
    """name → "" if usable here, else why not."""
    out = {}
    out["openvino"] = "" if importlib.util.find_spec("openvino") else "openvino not installed (pip install openvino)"
    out["onnxruntime"] = "" if importlib.util.find_spec("onnxruntime") else "onnxruntime not installed"
    out["torch"] = ""
    return out


def select_backend(name: str = "auto", device: str = "cpu", threads: int | None = None):
    """A backend instance and one line saying why it was chosen."""
    available = available_backends()
    if name == "auto":
        order = ("openvino", "onnxruntime", "torch") if device == "cpu" else ("onnxruntime", "torch")
        name = next(n for n in order if not available[n])
        why = f"auto: best available for {device}"
    else:
        if name not in available:
            raise ValueError(f"unknown backend {name!r}; choose from auto, {', '.join(available)}")
        if available[name]:
            raise RuntimeError(f"backend {name} is not usable here: {available[name]}")
        why = "chosen with --backend"
    if name == "openvino":
        from .openvino_backend import OpenVinoBackend

        return OpenVinoBackend(device, threads), why
    if name == "onnxruntime":
        from .ort_backend import OrtBackend

        return OrtBackend(device, threads), why
    from .torch_backend import TorchBackend

    return TorchBackend(device, threads), why
