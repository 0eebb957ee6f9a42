"""Which backends this machine can run, and the best one for a device (DESIGN.md order).

TensorRT and the torch-CUDA fast path arrive with the GPU issue; until then the order is
onnxruntime → torch, and `--backend` overrides."""
from __future__ import annotations

import importlib.util


def available_backends() -> dict[str, str]:
    """name → "" if usable here, else why not."""
    out = {}
    out["onnxruntime"] = "" if importlib.util.find_spec("onnxruntime") else "onnxruntime not installed"
    out["torch"] = ""
    return out


def select_backend(name: str = "auto", device: str = "cpu", threads: int | None = None):
    """A backend instance and one line saying why it was chosen."""
    available = available_backends()
    if name == "auto":
        name = next(n for n in ("onnxruntime", "torch") if not available[n])
        why = f"auto: best available for {device}"
    else:
        if name not in available:
            raise ValueError(f"unknown backend {name!r}; choose from auto, {', '.join(available)}")
        if available[name]:
            raise RuntimeError(f"backend {name} is not usable here: {available[name]}")
        why = "chosen with --backend"
    if name == "onnxruntime":
        from .ort_backend import OrtBackend

        return OrtBackend(device, threads), why
    from .torch_backend import TorchBackend

    return TorchBackend(device, threads), why
