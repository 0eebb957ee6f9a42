"""RetinaFace outputs → `Detections`, batched and on tensors (no per-face Python loop).

Same rules as py-feat's `Retinaface.forward`, with its own prior/decoder functions: keep
score > 0.02, at most 5000·B candidates by score, `torchvision.ops.batched_nms` at IoU 0.4,
keep score ≥ threshold, at most 750 faces per image. Unlike py-feat we keep the 5 keypoints.

py-feat applies its own 0.5 inside RetinaFace before Detectorv2's threshold, so a threshold
below 0.5 has no effect there; here the threshold given is the one used (0.5 by default).
"""
from __future__ import annotations

import torch
from torchvision.ops import batched_nms

from ..types import Detections

CONFIDENCE = 0.02
NMS_IOU = 0.4
TOP_K = 5000
KEEP_TOP_K = 750


class RetinaFaceDecoder:
    def __init__(self, threshold: float = 0.5):
        from feat.face_detectors.Retinaface.Retinaface_model import RETINAFACE_R34_CFG

        self.cfg = RETINAFACE_R34_CFG
        self.threshold = threshold
        self._priors: dict[tuple[int, int], torch.Tensor] = {}

    def priors(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        from feat.face_detectors.Retinaface.Retinaface_model import generate_priors

        key = (height, width, device)
        if key not in self._priors:
            self._priors[key] = generate_priors(self.cfg["min_sizes"], self.cfg["steps"], (height, width),
                                                clip=self.cfg["clip"], device=device)
        return self._priors[key]

    def __call__(self, loc: torch.Tensor, conf: torch.Tensor, landms: torch.Tensor,
                 height: int, width: int) -> list[Detections]:
        from feat.face_detectors.Retinaface.Retinaface_model import (
            decode_boxes,
            decode_landmarks,
        )

        # on the outputs' device: a GPU detector's outputs are decoded and suppressed on the GPU
        loc, conf, landms = loc.float(), conf.float(), landms.float()
        device = conf.device
        batch, anchors = conf.shape[:2]
        priors = self.priors(height, width, device)
        variance = self.cfg["variance"]
        scale = torch.tensor([width, height, width, height], dtype=torch.float32, device=device)
        boxes = (decode_boxes(loc, priors, variance) * scale).reshape(-1, 4)
        points = (decode_landmarks(landms, priors, variance).reshape(batch, anchors, 5, 2)
                  * scale[:2]).reshape(-1, 5, 2)
        scores = conf[..., 1].reshape(-1)
        image = torch.arange(batch, device=device).repeat_interleave(anchors)

        keep = torch.nonzero(scores > CONFIDENCE).squeeze(1)
        if keep.numel() > TOP_K * batch:
            keep = keep[torch.argsort(scores[keep], descending=True)[: TOP_K * batch]]
        keep = keep[batched_nms(boxes[keep], scores[keep], image[keep], NMS_IOU)]  # sorted by score
        keep = keep[scores[keep] >= self.threshold]
        # at most KEEP_TOP_K per image: rank each face within its image, keeping score order
        keep = keep[torch.sort(image[keep], stable=True).indices]
        counts = torch.bincount(image[keep], minlength=batch)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(keep.numel(), device=device) - starts[image[keep]]
        keep = keep[rank < KEEP_TOP_K]
        counts = torch.bincount(image[keep], minlength=batch).tolist()
        boxes, scores, points = boxes[keep].cpu(), scores[keep].cpu(), points[keep].cpu()
        return [Detections(b.numpy(), s.numpy(), p.numpy()) for b, s, p in
                zip(boxes.split(counts), scores.split(counts), points.split(counts))]
