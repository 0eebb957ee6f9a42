"""TensorRT engines (optional extra `realtime-feat[tensorrt]`), built from our checked ONNX exports.

- Build: ONNX parser, one optimisation profile per engine (the detector at the frame size in use,
  faces 1…32 for the multitask and ArcFace), FP16 with the layers that need range kept in FP32
  (normalisations, reductions, softmax), a timing cache per GPU and TensorRT version, a progress bar.
- Cache: engines live in the user cache dir under a key of GPU name, compute capability, TensorRT
  version, ONNX hash, precision and profile, so a changed GPU, TensorRT or model builds a new engine
  instead of loading a stale one; an entry that fails to deserialize is rebuilt; processes that
  need the same new engine at once build it once (cache_files). A new engine is checked once
  against torch (as the ONNX exports are) and removed if it differs.
- Run: `execute_async_v3` on torch's current CUDA stream with inputs and outputs in device memory
  (torch tensors), so frames, chips and outputs stay on the GPU between the networks.

The cache and check logic (`EngineKey`, `Profile`, `cached_engine`, `check_engine`) needs no TensorRT
and is tested everywhere;
what needs TensorRT and a GPU skips with "tensorrt not installed" / "no CUDA device".
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ..atomic_files import write_bytes
from . import cache_files, onnx_export
from .base import sha256_file
from .networks import MODELS

MAX_FACES = 32
MAX_FRAMES = 8
# A new engine is checked once against torch FP32 on the CPU, as the ONNX exports are; |Δ| scaled
# by max(1, max|torch|). A guard against a broken build (FP16 overflow, a wrong fusion), not the
# parity test: TF32 is on for FP32 layers, and FP16 parity is tested against py-feat in test_gpu.
ENGINE_LIMITS = {"fp32": onnx_export.Limits(probability=1e-2, value=1e-2),
                 "fp16": onnx_export.Limits(probability=5e-2, value=5e-2)}


@dataclass(frozen=True)
class Profile:
    """One optimisation profile: the input's (min, opt, max) shapes."""

    input_name: str
    min: tuple
    opt: tuple
    max: tuple

    def covers(self, shape: tuple) -> bool:
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))


def profile_for(model: str, shape: tuple) -> Profile:
    """The profile an input of `shape` needs. The detector's is fixed to the frame size in use (a
    camera's or a video's never changes mid-stream; a new size builds another engine) with 1…8 frames;
    the face networks take 1…32 faces, tuned for one (live use)."""
    io = MODELS[model]
    if model == "detector":
        _, c, h, w = shape
        return Profile(io.input_name, (1, c, h, w), (1, c, h, w), (MAX_FRAMES, c, h, w))
    _, *rest = shape
    return Profile(io.input_name, (1, *rest), (1, *rest), (MAX_FACES, *rest))


@dataclass(frozen=True)
class EngineKey:
    model: str
    gpu: str
    compute_capability: str
    tensorrt: str
    onnx_sha: str
    precision: str
    profile: Profile

    def filename(self) -> str:
        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:20]
        return f"{self.model}-{self.precision}-{digest}.engine"


def engine_dir() -> Path:
    return onnx_export.cache_dir().parent / "tensorrt"


def cached_engine(key: EngineKey, build: Callable[[], bytes], deserialize: Callable[[bytes], object]):
    """The engine for `key` from the cache, else built and cached (one process builds, others wait for
    it: cache_files). A cache entry that does not deserialize (truncated, from another TensorRT) is
    rebuilt, not crashed on."""
    path = engine_dir() / key.filename()

    def load(path: Path):
        engine = deserialize(path.read_bytes())
        if engine is None:
            raise RuntimeError(f"TensorRT cannot load the engine {path}")
        return engine

    def write(tmp: Path) -> None:
        _checked_marker(key).unlink(missing_ok=True)  # a rebuilt engine is checked again
        tmp.write_bytes(build())
        # what this engine was built for, for a person looking into the cache
        write_bytes(path.with_suffix(".json"), json.dumps(asdict(key), indent=1).encode())

    return cache_files.load_or_build(path, load, write)


def _checked_marker(key: EngineKey) -> Path:
    return engine_dir() / f"{key.filename()}.ok"


def check_engine(key: EngineKey, module: torch.nn.Module, run) -> None:
    """Compare a cached engine with torch once (remembered beside it); one that differs is removed
    from the cache and refused in one line. run: [B,...] tensor → the engine's output tensors."""
    marker = _checked_marker(key)
    if marker.is_file():
        return
    p = key.profile
    shapes = [p.opt, (min(3, p.max[0]), *p.opt[1:])]

    def run_numpy(x):
        return [o.float().cpu().numpy() for o in run(torch.from_numpy(x))]

    diff = onnx_export.difference(key.model, module, run_numpy, ENGINE_LIMITS[key.precision], shapes)
    if not diff.ok:
        (engine_dir() / key.filename()).unlink(missing_ok=True)
        raise onnx_export.ExportMismatch(
            f"TensorRT {key.precision} engine for {key.model} differs from torch: {diff}; "
            f"try --precision fp32 or --backend torch", diff)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


class _Progress:
    """TensorRT's build phases as tqdm bars (TensorRT ≥ 10 calls these from the builder)."""

    def __init__(self, trt, desc: str):
        from tqdm import tqdm

        outer = self

        class Monitor(trt.IProgressMonitor):
            def __init__(self):
                trt.IProgressMonitor.__init__(self)

            def phase_start(self, phase_name, parent_phase, num_steps):
                outer.bars[phase_name] = tqdm(total=num_steps, desc=f"{desc}: {phase_name}"[:60], leave=False)

            def step_complete(self, phase_name, step):
                bar = outer.bars.get(phase_name)
                if bar is not None:
                    bar.n = step + 1
                    bar.refresh()
                return True  # keep building

            def phase_finish(self, phase_name):
                bar = outer.bars.pop(phase_name, None)
                if bar is not None:
                    bar.close()

        self.bars: dict = {}
        self.monitor = Monitor()


class TrtRunner:
    """One engine and its execution context; called with CUDA tensors, returns CUDA tensors."""

    def __init__(self, trt, engine, device: torch.device):
        self.trt, self.engine, self.device = trt, engine, device
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        dtypes = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16, trt.DataType.UINT8: torch.uint8}
        self.dtype = {n: dtypes[engine.get_tensor_dtype(n)] for n in names}

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.to(self.device, self.dtype[self.input], non_blocking=True).contiguous()
        self.context.set_input_shape(self.input, tuple(x.shape))
        self.context.set_tensor_address(self.input, x.data_ptr())
        outputs = []
        for name in self.outputs:
            out = torch.empty(tuple(self.context.get_tensor_shape(name)), dtype=self.dtype[name], device=self.device)
            self.context.set_tensor_address(name, out.data_ptr())
            outputs.append(out)
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError(f"TensorRT failed to run {self.input} of shape {tuple(x.shape)}")
        return tuple(outputs)


class TensorRTBackend:
    name = "tensorrt"
    warm_faces = (1,)  # one profile or dynamic shapes cover every face count

    def __init__(self, device: str = "cuda", precision: Optional[str] = None):
        import tensorrt as trt

        self.trt = trt
        self.device = device
        self.torch_device = torch.device(device)
        self.precision = precision or "fp16"
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        major, minor = torch.cuda.get_device_capability(self.torch_device)
        self.gpu = torch.cuda.get_device_name(self.torch_device)
        self.capability = f"{major}.{minor}"

    def load(self, model: str, module: torch.nn.Module, weights_digest: str):
        """A runner that builds (or loads) the engine for each new input shape profile it meets."""
        return _LazyRunner(self, model, module, weights_digest)

    def engine(self, model: str, module: torch.nn.Module, weights_digest: str, shape: tuple) -> "TrtRunner":
        """A runner on the (cached, checked) engine whose profile covers `shape`."""
        onnx_path = onnx_export.exported(model, module, weights_digest)
        key = EngineKey(model, self.gpu, self.capability, self.trt.__version__, sha256_file(onnx_path)[:20],
                        self.precision, profile_for(model, shape))
        engine = cached_engine(key, lambda: self.build(onnx_path, key), self.runtime.deserialize_cuda_engine)
        runner = TrtRunner(self.trt, engine, self.torch_device)
        check_engine(key, module, runner)
        return runner

    def build(self, onnx_path: Path, key: EngineKey) -> bytes:
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT ≥ 10
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        if key.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
            config.set_flag(trt.BuilderFlag.PREFER_PRECISION_CONSTRAINTS)
            _keep_ranges_in_fp32(trt, network)
        p = key.profile
        profile = builder.create_optimization_profile()
        profile.set_shape(p.input_name, p.min, p.opt, p.max)
        config.add_optimization_profile(profile)
        timing_path = engine_dir() / f"timing-{_slug(self.gpu)}-{self.capability}-trt{self.trt.__version__}.cache"
        cache = config.create_timing_cache(timing_path.read_bytes() if timing_path.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=True)
        progress = _Progress(trt, f"building {key.model} engine ({key.precision}, minutes)")
        config.progress_monitor = progress.monitor
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise RuntimeError(f"TensorRT could not build an engine from {onnx_path}")
        # replaced whole: a build in another process that wrote it meanwhile loses its new timings, a speed-up only
        write_bytes(timing_path, bytes(config.get_timing_cache().serialize()))
        return bytes(blob)

    def describe(self) -> str:
        return f"tensorrt {self.trt.__version__} {self.precision} on {self.device} ({self.gpu}, sm {self.capability})"


class _LazyRunner:
    """Engines are built per input profile on first use: the detector's depends on the frame size."""

    def __init__(self, backend: TensorRTBackend, model: str, module, weights_digest: str):
        self.backend, self.model, self.module, self.digest = backend, model, module, weights_digest
        self.runners: list[tuple[Profile, TrtRunner]] = []

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        shape = tuple(x.shape)
        runner = next((r for p, r in self.runners if p.covers(shape)), None)
        if runner is None:
            runner = self.backend.engine(self.model, self.module, self.digest, shape)
            self.runners.append((profile_for(self.model, shape), runner))
        return runner(x)


def _keep_ranges_in_fp32(trt, network) -> None:
    """Layers whose intermediate sums overflow or lose too much in FP16 stay FP32."""
    keep = {trt.LayerType.NORMALIZATION, trt.LayerType.REDUCE, trt.LayerType.SOFTMAX}
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type in keep:
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()
