"""torch: eager FP32 on the CPU (the reference), and the CUDA path — FP16 autocast, channels_last,
inputs and outputs staying on the GPU."""
from __future__ import annotations

import contextlib

import torch

from .networks import wrap


class TorchRunner:
    def __init__(self, net: torch.nn.Module, device: str, precision: str):
        self.net, self.device = net, torch.device(device)
        self.fp16 = precision == "fp16"
        self.channels_last = self.device.type == "cuda"

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast(self.device.type, dtype=torch.float16) if self.fp16 else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            return tuple(o.float() for o in self.net(x))


class TorchBackend:
    name = "torch"

    def __init__(self, device: str = "cpu", threads: int | None = None, precision: str | None = None):
        self.device = device
        self.precision = precision or ("fp16" if device.startswith("cuda") else "fp32")
        if self.precision == "fp16" and not device.startswith("cuda"):
            raise ValueError("fp16 runs on CUDA only; use --precision fp32 on the CPU")
        if threads:
            torch.set_num_threads(threads)

    def load(self, model: str, module: torch.nn.Module, weights_digest: str) -> TorchRunner:
        net = wrap(model, module).to(self.device)
        if self.device.startswith("cuda"):
            net = net.to(memory_format=torch.channels_last)
        return TorchRunner(net, self.device, self.precision)

    def describe(self) -> str:
        if self.device.startswith("cuda"):
            return (f"torch {torch.__version__} {self.precision} on {self.device} "
                    f"({torch.cuda.get_device_name(torch.device(self.device))}, channels_last)")
        return f"torch {torch.__version__} eager fp32 on cpu ({torch.get_num_threads()} threads)"
