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
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .networks import MODELS, wrap

OPSET = 18
# FP32 |Δ| allowed between torch and the export, scaled by an output's largest magnitude when that
# is above 1: float32 rounding grows with the size of the values summed, and random-init RetinaFace
# regresses box offsets in the thousands (one float32 ulp at 2048 is already 2.4e-4).
TOLERANCE = 1e-4


class ExportMismatch(RuntimeError):
    pass


def _sample(shape, dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return torch.randn(shape, generator=g)


def export(model: str, module: torch.nn.Module, path: Path) -> Path:
    """Write `module` (a py-feat network) as ONNX to `path` and return it; atomic (tmp + rename)."""
    io_ = MODELS[model]
    net = wrap(model, module)
    sample = _sample(io_.check_shapes[-1], io_.dtype, 0)
    dynamic = {io_.input_name: io_.dynamic, **{name: {0: io_.dynamic[0]} for name in io_.output_names}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.inference_mode(False), \
            torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (sample,), str(tmp), input_names=[io_.input_name],
                          output_names=list(io_.output_names), dynamic_axes=dynamic,
                          opset_version=OPSET, dynamo=False)
    net.eval()
    if any(m.training for m in net.modules()):
        raise RuntimeError(f"{model}: network left in training mode after export")
    tmp.replace(path)
    return path


def max_abs_diff(model: str, module: torch.nn.Module, run_onnx, shapes=None) -> float:
    """Largest |torch − export| / max(1, max|torch|) over every output, at each of `shapes` (default:
    the model's check shapes). `run_onnx(x: np.ndarray) -> list[np.ndarray]`."""
    io_ = MODELS[model]
    net = wrap(model, module)
    worst = 0.0
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
            worst = max(worst, float(np.max(np.abs(r - g))) / max(1.0, float(np.max(np.abs(r)))))
    return worst


def check(model: str, module: torch.nn.Module, run_onnx, path: Path) -> float:
    diff = max_abs_diff(model, module, run_onnx)
    if not diff <= TOLERANCE:
        raise ExportMismatch(f"ONNX export {path} of {model} differs from torch by {diff:.2e} "
                             f"(> {TOLERANCE:g}); delete it and run again, or use --backend torch")
    return diff


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("REALTIME_FEAT_CACHE") or user_cache_dir("realtime-feat")) / "onnx"


def onnx_path(model: str, weights_digest: str) -> Path:
    return cache_dir() / f"{model}-{weights_digest}-torch{torch.__version__.split('+')[0]}-op{OPSET}.onnx"


def load_checked(model: str, module: torch.nn.Module, weights_digest: str, backend: str, open_runner):
    """A runner for `model` from the cached export, exporting it first if needed.

    `open_runner(path)` builds the backend's runner, which has `run_numpy`. Each backend's first
    use of an export is checked against torch, and the pass is remembered beside the file; a
    cache entry that fails to open or to check is removed and rebuilt once."""
    path = onnx_path(model, weights_digest)
    passed = path.with_name(f"{path.name}.{backend}-ok")
    for attempt in range(2):
        if not path.is_file():
            passed.unlink(missing_ok=True)
            export(model, module, path)
        try:
            runner = open_runner(path)
            if not passed.is_file():
                check(model, module, runner.run_numpy, path)
                passed.touch()
            return runner
        except Exception:
            path.unlink(missing_ok=True)
            if attempt:
                raise
