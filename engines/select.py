"""Which backends this machine can run, and the best one for a device (DESIGN.md, "Backends").

Order, best first: on CUDA TensorRT → torch CUDA → ONNX Runtime's CUDA provider; on the CPU
OpenVINO (when its optional extra is installed: it measured faster than ONNX Runtime on these
networks, scripts/bench_process.py) → ONNX Runtime → torch eager (the reference). `--backend`
overrides; the choice and why is shown to the user. A choice that cannot run is an `OptionError` naming
the option (`PipelineOptions`' field; the CLI says its flag)."""
from __future__ import annotations

import importlib.util

from ..options import OptionError

ORDER = {"cuda": ("tensorrt", "torch", "onnxruntime"), "cpu": ("openvino", "onnxruntime", "torch")}
BACKENDS = ("tensorrt", "openvino", "onnxruntime", "torch")


def _kind(device: str) -> str:
    if device == "cpu":
        return "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        return "cuda"
    raise OptionError("device", f"must be cpu, cuda or cuda:N, got {device!r}")


def cuda_problem(device: str) -> str:
    """"" if `device` is a usable CUDA device, else why not."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False); use --device cpu"
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return f"no {device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    return ""


def resolve_device(device: str, backend: str = "auto") -> tuple[str, str]:
    """What device "auto" means for `backend`, and why: the first CUDA device where there is one
    the backend can use, else the CPU. Any other device is returned as given, with no reason."""
    if device != "auto":
        return device, ""
    problem = cuda_problem("cuda:0")
    if not problem and backend != "auto":
        problem = available_backends("cuda:0")[backend]  # e.g. OpenVINO runs on the CPU only
    return ("cpu", f"device auto → cpu: {problem.split(';')[0]}") if problem else ("cuda:0", "device auto → cuda:0")


def available_backends(device: str = "cpu") -> dict[str, str]:
    """name → "" if usable on `device` here, else why not."""
    kind = _kind(device)
    cuda = cuda_problem(device) if kind == "cuda" else ""
    out = {}
    if kind == "cpu":
        out["tensorrt"] = "TensorRT runs on CUDA devices only (--device cuda)"
    else:
        out["tensorrt"] = cuda or ("" if importlib.util.find_spec("tensorrt")
                                   else "tensorrt not installed (pip install 'realtime-feat[tensorrt]')")
    out["openvino"] = ("openvino runs on the CPU only" if kind == "cuda" else
                       "" if importlib.util.find_spec("openvino") else "openvino not installed (pip install openvino)")
    if not importlib.util.find_spec("onnxruntime"):
        out["onnxruntime"] = "onnxruntime not installed"
    elif kind == "cuda":
        import onnxruntime

        out["onnxruntime"] = cuda or ("" if "CUDAExecutionProvider" in onnxruntime.get_available_providers()
                                      else "onnxruntime has no CUDA provider (install onnxruntime-gpu)")
    else:
        out["onnxruntime"] = ""
    out["torch"] = cuda
    return out


PRECISIONS = ("fp32", "fp16", "bf16")


def select_backend(name: str = "auto", device: str = "cpu", threads: int | None = None,
                   precision: str | None = None, cuda_graphs: bool = False, skip: dict | None = None):
    """A backend instance and one line saying why it was chosen. device: auto, cpu, cuda or cuda:N.
    precision: None for the backend's default (fp16 on CUDA, fp32 on the CPU), "fp32", "fp16" (CUDA)
    or "bf16" (OpenVINO on a CPU with AMX or AVX-512 BF16).
    cuda_graphs: the torch backend on CUDA replays CUDA graphs.
    skip: backends auto must pass over, name → why (one that failed its check against torch)."""
    from .cpu_info import bf16_problem

    skip = skip or {}
    if precision not in (None, *PRECISIONS):
        raise OptionError("precision", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if name != "auto" and name not in BACKENDS:
        raise OptionError("backend", f"must be one of auto, {', '.join(BACKENDS)}, got {name!r}")
    device, device_why = resolve_device(device, "openvino" if precision == "bf16" and name == "auto" else name)
    if precision == "fp16" and _kind(device) == "cpu":
        raise OptionError("precision", f"fp16 runs on CUDA only{'; ' + device_why if device_why else ''}; use "
                                       "{precision} fp32 on the CPU (or bf16 where the CPU has AMX or AVX-512 BF16)")
    if precision == "bf16":
        if _kind(device) != "cpu":
            raise OptionError("precision", f"bf16 runs on the CPU (OpenVINO); on {device} use {{precision}} fp16")
        if name not in ("auto", "openvino"):
            raise OptionError("precision", f"bf16 runs on OpenVINO only, not {name}; use {{backend}} openvino "
                                           "or {precision} fp32")
        if bf16_problem():
            raise OptionError("precision", f"bf16: {bf16_problem()}; use {{precision}} fp32")
    if cuda_graphs and _kind(device) == "cpu":
        raise OptionError("cuda_graphs", f"needs a CUDA device; {device_why or 'use {device} cuda'}")
    available = {n: skip.get(n) or why for n, why in available_backends(device).items()}
    if name == "auto":
        order = ("openvino",) if precision == "bf16" else ORDER[_kind(device)]
        usable = [n for n in order if not available[n]]
        if not usable:
            raise OptionError("device", f"{device}: no backend can run there: "
                                        f"{available['torch'] or available[order[0]]}")
        name = usable[0]
        passed = [f"{n}: {available[n]}" for n in order[: order.index(name)]]
        why = f"auto on {device}" + (f" ({'; '.join(passed)})" if passed else ": best available")
    else:
        if available[name]:
            raise OptionError("backend", f"{name} is not usable on {device}: {available[name]}"
                                         + (f"; {device_why}" if device_why else ""))
        why = "chosen with --backend"
    why = f"{device_why}; {why}" if device_why else why
    if cuda_graphs and name != "torch":
        raise OptionError("cuda_graphs", f"is for the torch backend, not {name} ({why}); add {{backend}} torch")
    if name == "tensorrt":
        from .tensorrt_backend import TensorRTBackend

        return TensorRTBackend(device, precision), why
    if name == "openvino":
        from .openvino_backend import OpenVinoBackend

        return OpenVinoBackend(device, threads, precision or "fp32"), why
    if name == "onnxruntime":
        if precision == "fp16":
            raise OptionError("precision", "fp16 is not for backend onnxruntime (fp32 only): use {backend} torch "
                                           "or tensorrt")
        from .ort_backend import OrtBackend

        return OrtBackend(device, threads), why
    from .torch_backend import TorchBackend

    return TorchBackend(device, threads, precision, cuda_graphs), why


def default_live_precision(backend: str, device: str) -> tuple[str | None, str]:
    """Live use on a CPU with a bf16 unit runs bf16 (several times faster, within the tolerances the
    tests state); everywhere else the backend's default. Returns (precision, why) for the start line."""
    from .cpu_info import bf16_problem

    if backend not in ("auto", "openvino") or _kind(resolve_device(device, backend)[0]) != "cpu":
        return None, ""
    problem = bf16_problem() or available_backends("cpu")["openvino"]
    if problem:
        return None, f"live precision fp32: {problem}"
    return "bf16", "live precision bf16: this CPU has a bf16 unit (--precision fp32 for py-feat's exact outputs)"
