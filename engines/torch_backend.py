"""Eager torch: the reference backend (CPU), and the base of the CUDA path."""
from __future__ import annotations

import torch

from .networks import wrap


class TorchRunner:
    def __init__(self, net: torch.nn.Module, device: str):
        self.net, self.device = net, torch.device(device)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode():
            return self.net(x.to(self.device))


class TorchBackend:
    name = "torch"

    def __init__(self, device: str = "cpu", threads: int | None = None):
        self.device = device
        if threads:
            torch.set_num_threads(threads)

    def load(self, model: str, module: torch.nn.Module, weights_digest: str) -> TorchRunner:
        return TorchRunner(wrap(model, module).to(self.device), self.device)

    def describe(self) -> str:
        return f"torch {torch.__version__} eager fp32 on {self.device} ({torch.get_num_threads()} threads)"
