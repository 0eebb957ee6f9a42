"""Where the networks' weights come from: py-feat's own Hugging Face repos and file names.

Order of precedence for each model:
1. a weights folder (`--weights DIR` or $REALTIME_FEAT_WEIGHTS), laid out as
   `retinaface_r34/model.safetensors`, `face_multitask_v2/face_multitask_v28.safetensors`,
   `arcface_r50/arcface_r50.safetensors` (what the tests write: tests/pyfeat_weights.py);
2. a copy py-feat already downloaded into its own cache (`feat/resources`), so a lab that
   runs py-feat does not download 400 MB twice;
3. the normal Hugging Face cache, downloading with a progress bar when online.

safetensors only: a weight file is never unpickled.
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import first_line

ENV_WEIGHTS_DIR = "REALTIME_FEAT_WEIGHTS"


class WeightsError(RuntimeError):
    """A weight file is missing or unreadable; the message is one line meant for the user."""


@dataclass(frozen=True)
class WeightSpec:
    name: str
    repo_id: str
    filename: str
    subdir: str
    licence: str
    fallback_filename: Optional[str] = None

    def hint(self) -> str:
        return (f"download it once with network access (`realtime-feat download`), or pass "
                f"--weights DIR / set {ENV_WEIGHTS_DIR}=DIR with DIR/{self.subdir}/{self.filename}")


SPECS = {
    "retinaface": WeightSpec("retinaface", "py-feat/retinaface_r34", "model.safetensors", "retinaface_r34",
                             "MIT (yakhyo/retinaface-pytorch port, WIDER FACE)", "retinaface_r34.safetensors"),
    "multitask": WeightSpec("multitask", "py-feat/face_multitask_v2", "face_multitask_v28.safetensors",
                            "face_multitask_v2", "research / non-commercial only (py-feat model card)"),
    "arcface": WeightSpec("arcface", "py-feat/arcface_r50", "arcface_r50.safetensors", "arcface_r50",
                          "InsightFace non-commercial research (WebFace600K)"),
}


def weights_dir_from_env(weights_dir: Optional[os.PathLike] = None) -> Optional[Path]:
    value = weights_dir or os.environ.get(ENV_WEIGHTS_DIR)
    return Path(value).expanduser() if value else None


def _pyfeat_cache() -> Optional[str]:
    try:
        from feat.utils.io import get_resource_path
    except ImportError:
        return None
    return get_resource_path()


def _cached(spec: WeightSpec) -> Optional[Path]:
    from huggingface_hub import try_to_load_from_cache

    for cache_dir in (_pyfeat_cache(), None):
        for filename in filter(None, (spec.filename, spec.fallback_filename)):
            hit = try_to_load_from_cache(spec.repo_id, filename, cache_dir=cache_dir)
            if isinstance(hit, str):
                return Path(hit)
    return None


def resolve(name: str, weights_dir: Optional[os.PathLike] = None, download: bool = True,
            tqdm_class=None) -> Path:
    """Path of one model's weight file, downloading it if allowed and needed (`tqdm_class`: the
    download's progress bar, e.g. one that reports to a window)."""
    spec = SPECS[name]
    folder = weights_dir_from_env(weights_dir)
    if folder is not None:
        path = folder / spec.subdir / spec.filename
        if not path.is_file():
            raise WeightsError(f"weights for {spec.repo_id} not found at {path} (weights folder {folder}); "
                               f"expected DIR/{spec.subdir}/{spec.filename}")
        return path
    hit = _cached(spec)
    if hit is not None:
        return hit
    if not download:
        raise WeightsError(f"weights {spec.repo_id}/{spec.filename} are not in the cache; {spec.hint()}")
    from huggingface_hub import hf_hub_download

    unreachable = hub_unreachable()
    if unreachable:
        raise WeightsError(f"could not get {spec.repo_id}/{spec.filename} from Hugging Face ({unreachable}); "
                           f"{spec.hint()}")
    try:  # the hub's own tqdm bar shows progress
        return Path(hf_hub_download(spec.repo_id, spec.filename, tqdm_class=tqdm_class))
    except Exception as exc:  # offline, DNS, 404, disk: all end the same way for the user
        raise WeightsError(f"could not get {spec.repo_id}/{spec.filename} from Hugging Face "
                           f"({type(exc).__name__}); {spec.hint()}") from None


def hub_unreachable(timeout_s: float = 5.0) -> str:
    """"" if Hugging Face's endpoint accepts a connection, else why not. Asked before a download so that a
    machine without network gets the one-line error at once, not after the hub client's ~25 s of retries.
    Not asked behind a proxy (only the proxy is reachable there) or in offline mode (the client fails at once)."""
    import socket
    import urllib.request
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or urllib.request.getproxies():
        return ""
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout_s).close()
    except OSError as exc:
        return f"{url.hostname} unreachable: {exc.strerror or exc}"
    return ""


def load_state_dict(path: Path, device: str = "cpu") -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file; a corrupt or truncated file is one WeightsError."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
        return load_file(str(path), device=device), metadata
    except Exception as exc:
        raise WeightsError(f"weight file {path} is corrupt or truncated ({first_line(exc, 120)}); "
                           f"delete it and download it again") from None


def multitask_config(metadata: dict, path: Path) -> dict:
    try:
        return json.loads(metadata["config"])
    except (KeyError, ValueError):
        raise WeightsError(f"weight file {path} has no multitask config in its metadata: "
                           f"not a py-feat face_multitask_v2 file") from None


def file_digest(path: Path, length: int = 16) -> str:
    """Short sha256 of a weight file, for caches of exported models and for session metadata."""
    st = Path(path).stat()
    return _digest(str(path), st.st_size, st.st_mtime_ns)[:length]


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a rewritten file is hashed again
    from realtime_feat.engines.base import sha256_file

    return sha256_file(Path(path))


def status(weights_dir: Optional[os.PathLike] = None) -> dict[str, str]:
    """For `doctor`: where each model's weights are, or why they are not usable."""
    out = {}
    for name in SPECS:
        try:
            out[name] = str(resolve(name, weights_dir, download=False))
        except WeightsError as exc:
            out[name] = f"missing: {exc}"
    return out
