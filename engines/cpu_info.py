"""What this CPU can do for inference: its model and whether it computes bf16 in hardware (Intel AMX
or AVX-512 BF16), which makes OpenVINO's bf16 path several times faster than FP32 (docs/BENCHMARKS.md).
Machines of the same kind differ here (AMD EPYC without, Intel Xeon with), so it is detected, never
assumed, and shown in `doctor`, on the start line and beside every benchmark figure."""
from __future__ import annotations

import functools
import importlib.util
import platform
from pathlib import Path

BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX-512 BF16"}


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset]:
    """(model name, flags) from /proc/cpuinfo; ("", {}) where there is none (not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "", frozenset()
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not model:
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = frozenset(value.split())
    return model, flags


def cpu_model() -> str:
    return _cpuinfo()[0] or platform.processor() or platform.machine()


def bf16_units() -> list[str]:
    """The bf16 units this CPU has, e.g. ["AMX", "AVX-512 BF16"]; empty where it has none."""
    flags = _cpuinfo()[1]
    return [name for flag, name in BF16_FLAGS.items() if flag in flags]


def describe_cpu() -> str:
    """One line for doctor and benchmark tables: the model and its bf16 units."""
    units = bf16_units()
    return f"{cpu_model()} ({', '.join(units) if units else 'no AMX, no AVX-512 BF16'})"


@functools.lru_cache(maxsize=1)
def bf16_problem() -> str:
    """"" if OpenVINO computes bf16 in hardware on this CPU, else why not: OpenVINO must list BF16 in
    its OPTIMIZATION_CAPABILITIES and, where /proc/cpuinfo tells, the CPU must have AMX or AVX-512
    BF16 (emulated bf16 would be slower than FP32, not faster)."""
    if importlib.util.find_spec("openvino") is None:
        return "bf16 runs on OpenVINO, which is not installed (pip install openvino)"
    import openvino

    if (_cpuinfo()[1] and not bf16_units()) or "BF16" not in openvino.Core().get_property(
            "CPU", "OPTIMIZATION_CAPABILITIES"):
        return f"this CPU has no bf16 unit (AMX or AVX-512 BF16): {cpu_model()}"
    return ""
