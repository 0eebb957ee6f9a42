"""py-feat's networks as plain tensor → tuple-of-tensors modules, the form ONNX export and every
runner share. Pre- and post-processing stay outside (in realtime_feat) so all backends share them."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

MULTITASK_OUTPUTS = ("p_au", "emotion_logits", "va", "gaze", "pose", "mesh", "blendshapes")


class DetectorNet(nn.Module):
    """RetinaFace on uint8 or float RGB pixels [B,3,H,W] (0–255) → loc, conf (softmaxed), landmarks.
    The mean subtraction (py-feat's Retinaface `_RGB_MEAN`) lives in the graph: a uint8 input is 4×
    less to copy."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([123.0, 117.0, 104.0]).view(1, 3, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor):
        return self.net(pixels.float() - self.mean)


class MultitaskNet(nn.Module):
    """MEGraphAUv2 on ImageNet-normalised [N,3,224,224] chips → the 7 outputs py-feat uses.
    Its forward returns a dict with None values, which ONNX export cannot take."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        out = self.net(x)
        return tuple(out[k] for k in MULTITASK_OUTPUTS)


class IdentityNet(nn.Module):
    """ArcFace IResNet-50 on [N,3,112,112] in [-1,1] → [N,512] (not normalised)."""

    def __init__(self, arcface: nn.Module):
        super().__init__()
        self.net = arcface.net

    def forward(self, x: torch.Tensor):
        return (self.net(x),)


@dataclass(frozen=True)
class ModelIO:
    """How a network is exported: its input, dynamic axes and the batches its parity is checked at."""

    wrap: type
    input_name: str
    output_names: tuple
    dynamic: dict            # input axis → name
    check_shapes: tuple      # input shapes used to check an export against torch
    dtype: torch.dtype = torch.float32
    probabilities: tuple = ()  # outputs that are probabilities (softmax/sigmoid, 0–1)


MODELS = {
    "detector": ModelIO(DetectorNet, "pixels", ("loc", "conf", "landmarks"), {0: "batch", 2: "height", 3: "width"},
                        ((1, 3, 360, 640), (2, 3, 250, 333)), torch.uint8, ("conf",)),
    "multitask": ModelIO(MultitaskNet, "chips", MULTITASK_OUTPUTS, {0: "faces"},
                         ((1, 3, 224, 224), (2, 3, 224, 224), (5, 3, 224, 224)), probabilities=("p_au", "blendshapes")),
    "identity": ModelIO(IdentityNet, "chips", ("embedding",), {0: "faces"},
                        ((1, 3, 112, 112), (3, 3, 112, 112))),
}


def wrap(model: str, module: nn.Module) -> nn.Module:
    """The tuple-output module for `model`, in eval mode (see onnx_export for why that matters)."""
    return MODELS[model].wrap(module).eval()
