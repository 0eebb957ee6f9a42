"""py-feat's own networks, built with py-feat's classes and loaded from py-feat's weight files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from ..weights import WeightsError, load_state_dict, multitask_config, resolve


def _load_strict(module: torch.nn.Module, state: dict, path: Path, tolerated: str = "num_batches_tracked") -> None:
    missing, unexpected = module.load_state_dict(state, strict=False)
    missing = [k for k in missing if tolerated not in k]
    if missing or unexpected:
        raise WeightsError(f"weight file {path} does not fit {type(module).__name__}: "
                           f"{len(missing)} missing, {len(unexpected)} unexpected tensors")


def build_retinaface(path: Path) -> torch.nn.Module:
    from feat.face_detectors.Retinaface.Retinaface_model import (
        RETINAFACE_R34_CFG,
        RetinaFace,
    )

    net = RetinaFace(RETINAFACE_R34_CFG)
    _load_strict(net, load_state_dict(path)[0], path)
    return net.eval()


def build_multitask(path: Path) -> torch.nn.Module:
    """MEGraphAUv2 with the config stored in the file, filtered as py-feat's MultitaskModel does."""
    from feat.multitask.model_v2 import MEGraphAUv2, ModelV2Config

    state, metadata = load_state_dict(path)
    saved = multitask_config(metadata, path)
    valid = set(ModelV2Config.__dataclass_fields__)
    cfg = ModelV2Config(**{k: v for k, v in saved.items() if k in valid and k not in ("pretrained", "use_head_v2")},
                        pretrained=False, use_head_v2=saved.get("use_head_v2", False))
    if (cfg.n_au, cfg.n_emotion, cfg.n_blendshape) != (20, 7, 52):
        raise WeightsError(f"weight file {path} is a multitask model with {cfg.n_au} AUs, {cfg.n_emotion} emotions, "
                           f"{cfg.n_blendshape} blendshapes; realtime-feat needs face_multitask_v2 (20/7/52)")
    net = MEGraphAUv2(cfg)
    _load_strict(net, state, path, tolerated="\0")
    return net.eval()


def build_arcface(path: Path) -> torch.nn.Module:
    """py-feat's ArcFace wrapper; the weights belong to its `.net` (IResNet-50)."""
    from feat.identity_detectors.arcface.arcface_model import ArcFace

    model = ArcFace(backbone="r50")
    _load_strict(model.net, load_state_dict(path)[0], path)
    return model.eval()


@dataclass
class PyFeatModels:
    """The three torch networks plus where their weights came from."""

    detector: Optional[torch.nn.Module]   # None when another detector (the fast one) is used
    multitask: torch.nn.Module
    identity: Optional[torch.nn.Module]
    paths: dict

    @classmethod
    def load(cls, weights_dir=None, identity: bool = True, detector: bool = True) -> "PyFeatModels":
        names = ("retinaface",) * detector + ("multitask",) + ("arcface",) * identity
        paths = {name: resolve(name, weights_dir) for name in names}
        return cls(build_retinaface(paths["retinaface"]) if detector else None, build_multitask(paths["multitask"]),
                   build_arcface(paths["arcface"]) if identity else None, paths)
