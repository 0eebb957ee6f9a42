"""Backend selection, and the TensorRT engine cache, profile and CLI logic that needs no TensorRT."""
from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest

from realtime_feat import OptionError
from realtime_feat.engines import select as sel
from realtime_feat.engines import tensorrt_backend as trtb


def test_auto_on_cpu_takes_the_best_installed_and_says_why():
    backend, why = sel.select_backend("auto", "cpu")
    expected = "openvino" if importlib.util.find_spec("openvino") else "onnxruntime"
    assert backend.name == expected and why.startswith("auto on cpu")


def test_cuda_without_a_device_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(sel, "cuda_problem", lambda device: "no CUDA device (torch.cuda.is_available() is False)")
    with pytest.raises(OptionError, match="^device cuda: no backend can run there: no CUDA device"):
        sel.select_backend("auto", "cuda")
    with pytest.raises(OptionError, match="^backend tensorrt is not usable on cpu: TensorRT runs on CUDA"):
        sel.select_backend("tensorrt", "cpu")
    with pytest.raises(ValueError, match="fp16 runs on CUDA only"):
        sel.select_backend("torch", "cpu", precision="fp16")


def test_auto_on_cuda_falls_back_from_tensorrt_to_torch(monkeypatch):
    monkeypatch.setattr(sel, "cuda_problem", lambda device: "")
    real = importlib.util.find_spec
    monkeypatch.setattr(sel.importlib.util, "find_spec", lambda name: None if name == "tensorrt" else real(name))
    backend, why = sel.select_backend("auto", "cuda:0")
    assert backend.name == "torch" and backend.device == "cuda:0" and backend.precision == "fp16"
    assert why == "auto on cuda:0 (tensorrt: tensorrt not installed (pip install 'realtime-feat[tensorrt]'))"
    assert sel.available_backends("cuda:0")["openvino"] == "openvino runs on the CPU only"
    assert sel.select_backend("torch", "cuda:0", precision="fp16")[0].precision == "fp16"
    assert sel.select_backend("torch", "cuda:0", precision="fp32")[0].precision == "fp32"
    assert sel.select_backend("torch", "cuda:0", cuda_graphs=True)[0].cuda_graphs


def test_cuda_graphs_only_with_torch_on_cuda(monkeypatch):
    with pytest.raises(OptionError, match="^cuda_graphs needs a CUDA device; use device cuda$"):
        sel.select_backend("torch", "cpu", cuda_graphs=True)
    monkeypatch.setattr(sel, "cuda_problem", lambda device: "")
    monkeypatch.setattr(sel.importlib.util, "find_spec", lambda name: object())  # as if TensorRT were installed
    with pytest.raises(OptionError, match="^cuda_graphs is for the torch backend, not tensorrt .*add backend torch$"):
        sel.select_backend("auto", "cuda", cuda_graphs=True)


def test_device_auto_takes_cuda_where_there_is_one_and_says_so(monkeypatch):
    monkeypatch.setattr(sel, "cuda_problem", lambda device: "no CUDA device (torch.cuda.is_available() is False); "
                                                            "use --device cpu")
    backend, why = sel.select_backend("auto", "auto")
    assert backend.device == "cpu" and why.startswith("device auto → cpu: no CUDA device (torch.cuda.is_available() "
                                                      "is False); auto on cpu")
    with pytest.raises(ValueError, match="fp16 runs on CUDA only; device auto → cpu: no CUDA device"):
        sel.select_backend("auto", "auto", precision="fp16")
    with pytest.raises(OptionError, match=r"backend tensorrt is not usable on cpu: TensorRT runs on CUDA devices only "
                                           r"\(--device cuda\); device auto → cpu: no CUDA device"):
        sel.select_backend("tensorrt", "auto")
    monkeypatch.setattr(sel, "cuda_problem", lambda device: "")
    real = importlib.util.find_spec
    monkeypatch.setattr(sel.importlib.util, "find_spec", lambda name: None if name == "tensorrt" else real(name))
    backend, why = sel.select_backend("auto", "auto")
    assert (backend.name, backend.device) == ("torch", "cuda:0") and why.startswith("device auto → cuda:0; auto on")
    backend, why = sel.select_backend("onnxruntime", "auto")  # runs where it can: CPU, without onnxruntime-gpu
    assert backend.device == "cpu" and why.startswith("device auto → cpu: onnxruntime has no CUDA provider")
    assert sel.resolve_device("cuda:1", "openvino") == ("cuda:1", "")  # a device given is the device used


def test_profiles():
    det = trtb.profile_for("detector", (1, 3, 720, 1280))
    assert (det.min, det.opt, det.max) == ((1, 3, 720, 1280), (1, 3, 720, 1280), (8, 3, 720, 1280))
    assert det.covers((4, 3, 720, 1280)) and not det.covers((1, 3, 480, 640)) and not det.covers((9, 3, 720, 1280))
    faces = trtb.profile_for("multitask", (5, 3, 224, 224))
    assert (faces.min, faces.max) == ((1, 3, 224, 224), (32, 3, 224, 224)) and faces.input_name == "chips"


def _key(**changes):
    key = trtb.EngineKey("multitask", "NVIDIA H100 80GB HBM3", "9.0", "10.13.0", "abc", "fp16",
                         trtb.profile_for("multitask", (1, 3, 224, 224)))
    return replace(key, **changes)


def test_engine_key_changes_with_everything_it_depends_on():
    base = _key().filename()
    assert _key().filename() == base
    changed = [_key(gpu="NVIDIA L4"), _key(compute_capability="8.9"), _key(tensorrt="10.14.0"), _key(onnx_sha="abd"),
               _key(precision="fp32"), _key(profile=trtb.profile_for("multitask", (1, 3, 112, 112)))]
    names = {k.filename() for k in changed}
    assert base not in names and len(names) == len(changed)


class FakeTrt:
    """Stands in for TensorRT's build and deserialize, counting calls."""

    def __init__(self):
        self.builds = 0

    def build(self):
        self.builds += 1
        return b"engine-%d" % self.builds

    @staticmethod
    def deserialize(blob):
        return blob.decode() if blob.startswith(b"engine-") else None


def test_engine_cache_builds_once_reloads_and_rebuilds_a_corrupt_entry():
    fake, key = FakeTrt(), _key(onnx_sha="cache-test")
    assert trtb.cached_engine(key, fake.build, fake.deserialize) == "engine-1"
    assert trtb.cached_engine(key, fake.build, fake.deserialize) == "engine-1" and fake.builds == 1
    path = trtb.engine_dir() / key.filename()
    assert path.with_suffix(".json").read_text().count("cache-test") == 1
    path.write_bytes(b"\x00garbage")  # truncated by a crash, or from another TensorRT
    assert trtb.cached_engine(key, fake.build, fake.deserialize) == "engine-2" and fake.builds == 2
    newer = replace(key, tensorrt="10.99")  # an upgraded TensorRT never loads the old engine
    assert trtb.cached_engine(newer, fake.build, fake.deserialize) == "engine-3"


def test_a_new_engine_is_checked_once_and_a_wrong_one_removed(weights_dir):
    """check_engine with torch itself standing in for an engine: equal passes (remembered), a broken
    FP16 build (here: outputs off by a fifth of their range) is removed from the cache and refused in one line."""
    import torch

    from realtime_feat.engines.networks import wrap
    from realtime_feat.analysis.models import PyFeatModels

    identity = PyFeatModels.load(weights_dir).identity
    net = wrap("identity", identity)
    calls = []

    def engine(x):
        calls.append(tuple(x.shape))
        with torch.inference_mode():
            return net(x)

    key = _key(model="identity", onnx_sha="check-test", profile=trtb.profile_for("identity", (1, 3, 112, 112)))
    trtb.check_engine(key, identity, engine)
    assert calls == [(1, 3, 112, 112), (3, 3, 112, 112)]
    trtb.check_engine(key, identity, engine)  # passed before: not run again
    assert len(calls) == 2

    broken = replace(key, onnx_sha="check-broken")
    path = trtb.engine_dir() / broken.filename()
    path.write_bytes(b"engine")
    with pytest.raises(RuntimeError, match=r"TensorRT fp16 engine for identity differs from torch: identity\.embedding "
                                           r"by 2\.00e-01 \(limit 0\.05\); try --precision fp32 or --backend torch"):
        trtb.check_engine(broken, identity, lambda x: tuple(o + 0.2 * max(1.0, float(o.abs().max()))
                                                            for o in engine(x)))
    assert not path.exists()  # the next run builds it again instead of loading it


def test_export_command(capsys, weights_dir):
    from realtime_feat.cli import main

    assert main(["export", "--backend", "onnxruntime", "--size", "90x160", "--weights", str(weights_dir)]) == 0
    assert "ready for 90x160 frames" in capsys.readouterr().out
    assert main(["export", "--backend", "tensorrt", "--device", "cpu", "--weights", str(weights_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["realtime-feat: error: --backend tensorrt is not usable on cpu: TensorRT runs on CUDA devices only "
                   "(--device cuda)"]


@pytest.mark.parametrize("precision, tolerance", [("fp32", 1e-3), ("fp16", 0.05)])
def test_tensorrt_engine_matches_torch(precision, tolerance, weights_dir):
    """Needs TensorRT and a GPU: the ArcFace engine against torch on the same device."""
    pytest.importorskip("tensorrt", reason="tensorrt not installed")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from realtime_feat.analysis.models import PyFeatModels

    models = PyFeatModels.load(weights_dir)
    runner = trtb.TensorRTBackend("cuda", precision).load("identity", models.identity, f"trt-{precision}")
    x = torch.randn(3, 3, 112, 112, device="cuda")
    with torch.inference_mode():
        ref = models.identity.net.cuda()(x)
        got = runner(x)[0]
    torch.cuda.synchronize()
    assert got.device.type == "cuda"
    assert float((got - ref).abs().max()) / max(1.0, float(ref.abs().max())) <= tolerance
