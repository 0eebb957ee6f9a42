"""`realtime-feat doctor`, `export`, `download` and `app`: the installation, the models and the window."""
from __future__ import annotations

import os
import sys
import time

from ..errors import PROG, UserError
from .parser import pipeline_options


def cmd_doctor(args) -> int:
    import platform

    import torch

    from .. import __version__, weights
    from ..engines import available_backends, select_backend
    from ..engines.onnx_export import cache_dir

    lines = [f"realtime-feat {__version__}", f"python {platform.python_version()} ({sys.executable})",
             f"torch {torch.__version__}"]
    try:
        from importlib.metadata import version

        lines.append(f"py-feat {version('py-feat')}")
    except Exception:
        lines.append("py-feat: not installed")
    cuda = torch.cuda.is_available()
    for device in ("cpu",) + (("cuda",) if cuda else ()):
        for name, why in available_backends(device).items():
            lines.append(f"backend {name} on {device}: {'available' if not why else why}")
    from ..engines.cpu_info import bf16_problem, describe_cpu

    lines.append(f"cpu: {describe_cpu()}; bf16: {bf16_problem() or 'available (--precision bf16, the default of live)'}")
    lines.append("devices: cpu ({} cores){}".format(
        os.cpu_count(), "".join(f", cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count()))
        if cuda else ", no CUDA device"))
    for device in ("cpu",) + (("cuda",) if cuda else ()):
        try:
            backend, why = select_backend("auto", device)
            lines.append(f"auto on {device}: {backend.describe()} [{why}]")
        except Exception as exc:
            lines.append(f"auto on {device}: none ({exc})")
    from huggingface_hub.constants import HF_HUB_CACHE

    folder = weights.weights_dir_from_env() or f"not set (--weights or ${weights.ENV_WEIGHTS_DIR})"
    lines += [f"cache: Hugging Face {HF_HUB_CACHE}", f"cache: exported models {cache_dir()}",
              f"weights folder: {folder}"]
    from ..logfile import log_path

    lines.append(f"log file: {log_path()} (full tracebacks of the errors shown in one line)")
    for name, where in weights.status().items():
        spec = weights.SPECS[name]
        lines.append(f"weights {spec.repo_id}: {where}  [licence: {spec.licence}]")
    print("\n".join(lines))
    return 0


def cmd_app(args) -> int:
    import importlib.util

    if importlib.util.find_spec("PySide6") is None or importlib.util.find_spec("pyqtgraph") is None:
        raise UserError("the app needs PySide6 and pyqtgraph: pip install -e '.[app]' (or use `realtime-feat live`)")
    from ..ui.app import AppOptions, has_display
    from ..ui.app import main as app_main

    if not has_display():
        raise UserError("no display to open a window on (DISPLAY is unset): run it under `xvfb-run -a "
                        "realtime-feat app ...`, or use `realtime-feat live` without a window")
    first, *more = args.source or [None]
    return app_main(AppOptions(pipeline_options(args), first, args.sessions, realtime=not args.fast, more=tuple(more)))


def cmd_export(args) -> int:
    try:
        height, width = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UserError(f"--size expects HxW, e.g. 720x1280, got {args.size!r}") from None
    from ..factories import make_analyser

    analyser = make_analyser(pipeline_options(args))
    for line in analyser.fallbacks:
        print(f"{PROG}: warning: {line}", file=sys.stderr)
    started = time.perf_counter()
    analyser.warm_up(height, width)
    print(f"{PROG}: {analyser.describe()}: ready for {height}x{width} frames in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_download(args) -> int:
    from .. import weights

    for name in ("retinaface", "multitask") + (("arcface",) if args.identity else ()):
        try:
            print(f"{weights.SPECS[name].repo_id}: {weights.resolve(name)}")
        except weights.WeightsError as exc:
            raise UserError(str(exc)) from None
    return 0
