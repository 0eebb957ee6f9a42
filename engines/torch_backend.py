"""torch: eager FP32 on the CPU (the reference), and the CUDA path — FP16 autocast, channels_last,
inputs and outputs staying on the GPU, and optionally CUDA graphs for the fixed shapes of live use."""
from __future__ import annotations

import contextlib
import warnings
from typing import Optional

import torch

from .networks import wrap

# Live use sees one frame size and a few faces: graphs up to this batch; larger batches (offline
# work, where launch overhead is amortised anyway) run eagerly. Each graph holds its own memory.
MAX_GRAPHED_BATCH = 8


class TorchRunner:
    def __init__(self, net: torch.nn.Module, device: str, precision: str, cuda_graphs: bool = False):
        self.net, self.device = net, torch.device(device)
        self.fp16 = precision == "fp16"
        self.channels_last = self.device.type == "cuda"
        # autocast's cast-weight cache would be captured into a graph and go stale outside it
        self.autocast_cache = not cuda_graphs
        self.graphs = _Graphs(self._eager, self.device) if cuda_graphs else None

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.to(self.device, non_blocking=True)
        if self.graphs is not None and x.shape[0] <= MAX_GRAPHED_BATCH:
            return self.graphs(x)
        return self._eager(x)

    def _eager(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        autocast = (torch.autocast(self.device.type, dtype=torch.float16, cache_enabled=self.autocast_cache)
                    if self.fp16 else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            return tuple(o.float() for o in self.net(x))


class _Graphs:
    """One CUDA graph per input shape, captured on first sight: a replay launches the whole network
    at once instead of hundreds of kernels from Python, which is most of its time at batch 1."""

    def __init__(self, run, device: torch.device):
        self.run, self.device = run, device
        self.captured: dict[tuple, Optional[tuple]] = {}  # shape → (input, outputs, graph), None: eager

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        key = (tuple(x.shape), x.dtype)
        if key not in self.captured:
            try:
                self.captured[key] = self._capture(x)
            except RuntimeError as exc:  # an operation capture cannot take: this shape runs eagerly
                warnings.warn(f"CUDA graph capture failed for input {tuple(x.shape)}, running it eagerly: "
                              f"{str(exc).splitlines()[0]}", stacklevel=2)
                self.captured[key] = None
        if self.captured[key] is None:
            return self.run(x)
        static_in, static_out, graph = self.captured[key]
        static_in.copy_(x)
        graph.replay()  # on the current stream, after the copy
        return tuple(o.clone() for o in static_out)  # the next replay overwrites static_out

    def _capture(self, x: torch.Tensor):
        static_in = x.clone()
        # warm up on a side stream first, as capture requires: cuDNN and cuBLAS pick their kernels here
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(2):
                self.run(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.run(static_in)
        return static_in, static_out, graph


class TorchBackend:
    name = "torch"

    def __init__(self, device: str = "cpu", threads: int | None = None, precision: str | None = None,
                 cuda_graphs: bool = False):
        # fp16 and CUDA graphs on the CPU are refused by select_backend, which builds every backend
        self.device = device
        self.precision = precision or ("fp16" if device.startswith("cuda") else "fp32")
        self.cuda_graphs = cuda_graphs
        self.warm_faces = tuple(range(1, MAX_GRAPHED_BATCH + 1)) if cuda_graphs else (1,)
        if threads:
            torch.set_num_threads(threads)

    def load(self, model: str, module: torch.nn.Module, weights_digest: str) -> TorchRunner:
        net = wrap(model, module).to(self.device)
        if self.device.startswith("cuda"):
            net = net.to(memory_format=torch.channels_last)
        return TorchRunner(net, self.device, self.precision, self.cuda_graphs)

    def describe(self) -> str:
        if self.device.startswith("cuda"):
            graphs = f", CUDA graphs up to {MAX_GRAPHED_BATCH}" if self.cuda_graphs else ""
            return (f"torch {torch.__version__} {self.precision} on {self.device} "
                    f"({torch.cuda.get_device_name(torch.device(self.device))}, channels_last{graphs})")
        return f"torch {torch.__version__} eager fp32 on cpu ({torch.get_num_threads()} threads)"
