"""Random-init weights for py-feat's three networks, built with py-feat's own classes (py-feat 2.1.x) and
written in py-feat's on-disk format, so the tests need neither the network nor the real 400 MB files;
and py-feat's own Detectorv2 built on such a folder, offline. Predictions are meaningless: these are for
parity (ours against py-feat on the same weights), export and speed.

The layout is realtime_feat.weights.SPECS' (what `--weights DIR` reads): safetensors files, the multitask's
config JSON under the metadata key "config".
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from unittest import mock

import torch
from safetensors.torch import save_file

from realtime_feat.weights import SPECS

# The multitask's config as far as face_multitask_v2's model card tells: 20 AUs, 7 emotions, 52
# blendshapes, v3 heads without the MEFL edge head, mesh in [0,1] over the chip, emotion fed AU probabilities.
MULTITASK_CONFIG = dict(n_au=20, n_emotion=7, n_blendshape=52, mesh_normalized=True, bs_use_mesh=True,
                        use_head_v3=True, drop_mefl=True, emotion_use_au_prob=True)


def _state(module: torch.nn.Module) -> dict:
    # safetensors refuses tensors that share storage: each gets its own
    return {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}


def random_retinaface_state(quiet: bool) -> dict:
    """RetinaFace R34 at its random init (from torch's global generator). Raw random init scores most of
    its ~10^4 anchors as faces; `quiet` biases the face head to background instead (p_face ≈ 0.002, below
    every threshold): the full network runs and finds no face, so a frame costs one placeholder row."""
    from feat.face_detectors.Retinaface.Retinaface_model import RETINAFACE_R34_CFG, RetinaFace

    net = RetinaFace(RETINAFACE_R34_CFG)
    if quiet:
        with torch.no_grad():
            for conv in net.ClassHead._convs:
                conv.weight.zero_()
                conv.bias.view(-1, 2).copy_(torch.tensor([3.0, -3.0]))  # (background, face) per anchor
    return _state(net)


def _arcface_state() -> dict:
    from feat.identity_detectors.arcface.arcface_model import ArcFace

    return _state(ArcFace(backbone="r50").net)


def _multitask_state() -> tuple[dict, dict]:
    from feat.multitask.model_v2 import MEGraphAUv2, ModelV2Config

    config = ModelV2Config(**MULTITASK_CONFIG, pretrained=False)  # pretrained=False: no timm download
    return _state(MEGraphAUv2(config)), {"config": json.dumps(asdict(config))}


def weight_paths(folder: os.PathLike) -> dict[str, Path]:
    return {name: Path(folder) / spec.subdir / spec.filename for name, spec in SPECS.items()}


def write_random_weights(folder: os.PathLike, seed: int = 0, quiet_detector: bool = True) -> dict[str, Path]:
    """All three weight files in `folder`; the same seed writes the same bytes."""
    torch.manual_seed(seed)
    paths = weight_paths(folder)
    # built in this order from one seed: each network's weights depend on the ones drawn before
    for name, (state, metadata) in (("retinaface", (random_retinaface_state(quiet_detector), None)),
                                    ("arcface", (_arcface_state(), None)),
                                    ("multitask", _multitask_state())):
        paths[name].parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(paths[name]), metadata=metadata)
    return paths


def offline_detectorv2(folder: os.PathLike, device: str = "cpu", **kwargs):
    """py-feat's own Detectorv2 on the weight files in `folder`, never touching the network: the multitask's
    through its `multitask_weights` argument, ArcFace's through FEAT_ARCFACE_R50_PATH (read while it is
    built), RetinaFace's, which has no override, by answering py-feat's download helper with the file."""
    import feat.utils
    from feat.detector_v2 import Detectorv2

    paths = {name: str(path) for name, path in weight_paths(folder).items()}
    with mock.patch.dict(os.environ, FEAT_ARCFACE_R50_PATH=paths["arcface"]), \
            mock.patch.object(feat.utils, "hf_hub_download_with_fallback", lambda **_: paths["retinaface"]):
        return Detectorv2(device=device, multitask_weights=paths["multitask"], **kwargs)
