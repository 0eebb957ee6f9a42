"""Export py-feat's networks to ONNX (dynamic batch) and check each export against torch.

Why the wrapper is put in eval mode before export: the legacy exporter runs the trace in eval
mode and then restores the *wrapper's* previous mode with `train(mode)`, which recurses into the
wrapped network. A fresh wrapper (nn.Module starts in training mode) therefore leaves py-feat's
model in training mode afterwards: DropPath (drop_path_rate 0.1 in the shipped config), the
emotion head's dropout (0.25) and the AFG BatchNorms' batch statistics switch on, and the torch
"reference" — not the export — moves by up to ~0.8 in the emotion logits and changes with the
batch. A config without dropout/DropPath/BatchNorm shows ~1e-7 either way. We export from an
eval-mode wrapper, re-assert eval afterwards, and compare in eval mode.
"""
from __future__ import annotations

import contextlib
import glob
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from . import cache_files
from .networks import MODELS, wrap

OPSET = 18


@dataclass(frozen=True)
class Limits:
    """Largest |torch − backend| a check allows per output. Probabilities (0–1, what users read and
    threshold) get an absolute limit: a softmax of large logits moves by |Δlogit|/4 near 0.5, so
    FP32 rounding of a valid detector's logits reaches 4e-4 in its face score. Every other output gets
    a limit relative to its largest magnitude (at least 1): float32 rounding grows with the size of
    the values summed (random-init RetinaFace regresses box offsets in the thousands). A broken export
    (training mode, a wrong weight) is off by 1e-2 to 1 on these scales."""

    probability: float
    value: float


FP32 = Limits(probability=2e-3, value=1e-4)  # worst seen on valid weights: 4e-4 and 4e-6


@dataclass(frozen=True)
class Difference:
    """The output of a network that came closest to (or went over) its limit."""

    output: str    # "detector.conf"
    diff: float    # max |Δ|, divided by max(1, max|torch|) for a value output
    limit: float

    @property
    def ok(self) -> bool:
        return self.diff <= self.limit

    def __str__(self) -> str:
        return f"{self.output} by {self.diff:.2e} (limit {self.limit:g})"


class ExportMismatch(RuntimeError):
    """An export or engine that differs from torch; `difference` says where and by how much."""

    def __init__(self, message: str, difference: Optional[Difference] = None):
        super().__init__(message)
        self.difference = difference


def _sample(shape, dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return torch.randn(shape, generator=g)


def export(model: str, module: torch.nn.Module, path: Path) -> Path:
    """Write `module` (a py-feat network) as ONNX to `path` and return it (the cache writes it through
    `exported` or `load_checked`: under a lock, to a unique temporary name)."""
    io_ = MODELS[model]
    net = wrap(model, module)
    sample = _sample(io_.check_shapes[-1], io_.dtype, 0)
    dynamic = {io_.input_name: io_.dynamic, **{name: {0: io_.dynamic[0]} for name in io_.output_names}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.inference_mode(False), \
            torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (sample,), str(path), input_names=[io_.input_name],
                          output_names=list(io_.output_names), dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False)
    net.eval()
    if any(m.training for m in net.modules()):
        raise RuntimeError(f"{model}: network left in training mode after export")
    return path


def difference(model: str, module: torch.nn.Module, run_onnx, limits: Limits = FP32, shapes=None) -> Difference:
    """The worst output of `run_onnx(x: np.ndarray) -> list[np.ndarray]` against torch, relative to
    its limit, at each of `shapes` (default: the model's check shapes)."""
    io_ = MODELS[model]
    net = wrap(model, module)
    found = []
    for seed, shape in enumerate(shapes or io_.check_shapes, start=1):
        x = _sample(shape, io_.dtype, seed)
        with torch.inference_mode():
            ref = net(x)
        got = run_onnx(x.numpy())
        for name, r, g in zip(io_.output_names, ref, got):
            if r.shape != g.shape:
                raise ExportMismatch(f"{model}.{name}: shape {tuple(g.shape)} from the export, "
                                     f"{tuple(r.shape)} from torch at input {shape}")
            r = r.numpy()
            diff = float(np.max(np.abs(r - g))) if r.size else 0.0
            if name in io_.probabilities:
                found.append(Difference(f"{model}.{name}", diff, limits.probability))
            else:
                scale = max(1.0, float(np.max(np.abs(r), initial=0.0)))
                found.append(Difference(f"{model}.{name}", diff / scale, limits.value))
    return max(found, key=lambda d: d.diff / d.limit if np.isfinite(d.diff) else np.inf)


def check(model: str, module: torch.nn.Module, run_onnx, path: Path) -> Difference:
    diff = difference(model, module, run_onnx)
    if not diff.ok:
        raise ExportMismatch(f"ONNX export {path} of {model} differs from torch: {diff}; "
                             f"delete it and run again, or use --backend torch", diff)
    return diff


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("REALTIME_FEAT_CACHE") or user_cache_dir("realtime-feat")) / "onnx"


def onnx_path(model: str, weights_digest: str) -> Path:
    return cache_dir() / f"{model}-{weights_digest}-torch{torch.__version__.split('+')[0]}-op{OPSET}.onnx"


def exported(model: str, module: torch.nn.Module, weights_digest: str) -> Path:
    """The cached export of `model`, written first if absent; a file onnx cannot read is rebuilt."""
    import onnx

    def load(path: Path) -> Path:
        onnx.checker.check_model(str(path))
        return path

    return cache_files.load_or_build(onnx_path(model, weights_digest), load, lambda tmp: export(model, module, tmp))


def load_checked(model: str, module: torch.nn.Module, weights_digest: str, backend: str, open_runner,
                 open_checker=None):
    """A runner for `model` from the cached export, exporting it first if needed.

    `open_runner(path)` builds the backend's runner, which has `run_numpy`. Each backend's first
    use of an export is checked against torch at FP32 (through `open_checker(path)` where the runner
    itself computes at a lower precision), and the pass is remembered beside the file; a cache entry
    that fails to open or to check is removed and rebuilt once."""
    path = onnx_path(model, weights_digest)
    passed = path.with_name(f"{path.name}.{backend}-ok")

    def load(path: Path):
        runner = open_runner(path)
        if not passed.is_file():
            check(model, module, (open_checker(path) if open_checker else runner).run_numpy, path)
            passed.touch()
        return runner

    def write(tmp: Path) -> None:
        for marker in path.parent.glob(f"{glob.escape(path.name)}.*-ok"):  # every backend checks the new file
            marker.unlink(missing_ok=True)
        export(model, module, tmp)

    return cache_files.load_or_build(path, load, write)
