"""The one small interface every backend implements (DESIGN.md, "Backends")."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

import numpy as np
import torch


class Runner(Protocol):
    """One network on one backend: a batch in, that network's output tensors out (CPU or device)."""

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


class Backend(Protocol):
    name: str     # "torch", "onnxruntime", ...
    device: str   # "cpu", "cuda:0", ...
    warm_faces: tuple[int, ...]  # face counts Analyser.warm_up runs (a CUDA graph is captured per count)

    def load(self, model: str, module: torch.nn.Module, weights_digest: str) -> Runner:
        """A runner for `module` (one of networks.MODELS), built or fetched from a cache keyed by
        the weights' digest."""
        ...

    def describe(self) -> str:
        """One line for the user: backend, device, threads or providers."""
        ...


class NumpyRunner:
    """A runner whose engine takes and gives NumPy arrays (ONNX Runtime, OpenVINO)."""

    def run_numpy(self, x: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(o) for o in self.run_numpy(np.ascontiguousarray(x.detach().cpu().numpy())))


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in blocks (weights and exports are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
