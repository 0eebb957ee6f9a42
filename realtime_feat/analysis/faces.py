"""Crop faces for the networks and turn the networks' outputs into `FaceAnalysis`.

The crop is py-feat's own `extract_face_square_pad_torch` (1.2× square around the box, reflection
padded, one grid_sample for every face of a batch); the preprocessing is py-feat's own
`MultitaskModel.preprocess` / ArcFace's resize. What py-feat does to the outputs afterwards
(Detectorv2.forward) is reproduced here on whole arrays: softmax, sign flips, chip → frame.
"""
from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from feat.multitask.inference import (
    CHIP_SIZE,
    EXPAND_BBOX,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MODEL_INPUT,
)

from ..types import FaceAnalysis

IDENTITY_INPUT = 112  # ArcFace(r50).input_size
_IMAGENET_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_IMAGENET_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def crop_chips(frames_unit: torch.Tensor, boxes: torch.Tensor, frame_idx: torch.Tensor):
    """[B,3,H,W] in [0,1], [N,4] boxes, [N] frame of each box → [N,3,256,256] chips, [N,4] square rects."""
    from feat.utils.image_operations import extract_face_square_pad_torch

    chips, affine = extract_face_square_pad_torch(frames_unit, boxes, face_size=CHIP_SIZE,
                                                  expand_bbox=EXPAND_BBOX, frame_idx=frame_idx)
    ox, oy, side = affine[:, 0], affine[:, 1], affine[:, 2]
    return chips, torch.stack([ox, oy, ox + side, oy + side], dim=-1).float()


def multitask_input(chips: torch.Tensor) -> torch.Tensor:
    """py-feat's MultitaskModel.preprocess: antialiased resize 256 → 224, ImageNet normalisation."""
    import torchvision.transforms.v2.functional as TF

    x = TF.resize(chips, [MODEL_INPUT, MODEL_INPUT], antialias=True)
    return (x - _IMAGENET_MEAN.to(x.device)) / _IMAGENET_STD.to(x.device)


def identity_input(chips: torch.Tensor) -> torch.Tensor:
    """py-feat's ArcFace.forward preprocessing: bilinear resize to 112, [0,1] → [-1,1]."""
    x = F.interpolate(chips, size=(IDENTITY_INPUT, IDENTITY_INPUT), mode="bilinear", align_corners=False)
    return x * 2.0 - 1.0


@functools.cache
def _dlib68() -> np.ndarray:
    from feat.utils.blendshape_to_au import DLIB68_FROM_MP478

    return np.asarray(DLIB68_FROM_MP478, dtype=np.int64)



def decode(outputs: tuple[torch.Tensor, ...], face_rect: torch.Tensor,
           embedding: torch.Tensor | None) -> FaceAnalysis:
    """Multitask outputs (networks.MULTITASK_OUTPUTS order) for N faces → FaceAnalysis in frame pixels."""
    p_au, emotion_logits, va, gaze, pose, mesh, blendshapes = (o.float().cpu() for o in outputs)
    rect = face_rect.float().cpu()
    side = (rect[:, 2] - rect[:, 0])[:, None]
    mesh_px = torch.stack([mesh[..., 0] * side + rect[:, 0:1], mesh[..., 1] * side + rect[:, 1:2], mesh[..., 2]], -1)
    # Detectorv2: Pitch = -head[0], Roll = -head[2], Yaw = +head[1]; gaze pitch made positive-up
    pose_fex = torch.stack([-pose[:, 0], -pose[:, 2], pose[:, 1], pose[:, 3], pose[:, 4], pose[:, 5]], dim=1)
    mesh_np = mesh_px.numpy()
    return FaceAnalysis(
        face_rect=rect.numpy(),
        au=p_au.numpy(),
        emotions=torch.softmax(emotion_logits, dim=-1).numpy(),
        va=va.numpy(),
        gaze=torch.stack([-gaze[:, 1], gaze[:, 0]], dim=1).numpy(),
        pose=pose_fex.numpy(),
        mesh=mesh_np,
        landmarks68=mesh_np[:, _dlib68(), :2],
        blendshapes=blendshapes.numpy(),
        embedding=None if embedding is None else embedding.float().cpu().numpy(),
    )
