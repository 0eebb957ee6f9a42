"""Frames in, `FrameResult`s out: detect → crop every face of the batch at once → multitask
(+ ArcFace), on one backend. Frames without a face cost no multitask or ArcFace work."""
from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np
import torch

from . import faces as face_ops
from .detection import RetinaFaceDecoder
from .models import PyFeatModels
from .types import Detections, FaceAnalysis, Frame, FrameResult
from .weights import file_digest


class Analyser:
    """py-feat's Detectorv2 networks behind one backend.

    backend: "auto" (best for the device), "onnxruntime" or "torch".
    identity: run ArcFace for an embedding per face (needed for tracking by identity).
    threshold: RetinaFace score a face must reach (py-feat's default 0.5).
    """

    def __init__(self, backend: str = "auto", device: str = "cpu", *, identity: bool = True,
                 threshold: float = 0.5, weights_dir=None, threads: Optional[int] = None,
                 models: Optional[PyFeatModels] = None):
        from realtime_feat.engines import select_backend

        models = models or PyFeatModels.load(weights_dir, identity)
        self.identity = identity
        self.backend, self.backend_reason = select_backend(backend, device, threads)
        self.weight_paths = models.paths
        digest = {name: file_digest(path) for name, path in models.paths.items()}
        self.weight_digests = digest
        self.detector = self.backend.load("detector", models.detector, digest["retinaface"])
        self.multitask = self.backend.load("multitask", models.multitask, digest["multitask"])
        self.arcface = self.backend.load("identity", models.identity, digest["arcface"]) if identity else None
        self.decoder = RetinaFaceDecoder(threshold)

    def describe(self) -> str:
        return f"{self.backend.describe()} [{self.backend_reason}]"

    def detect(self, pixels: torch.Tensor) -> list[Detections]:
        """[B,3,H,W] uint8 RGB → faces of each frame."""
        loc, conf, landms = self.detector(pixels)
        return self.decoder(loc, conf, landms, pixels.shape[2], pixels.shape[3])

    def analyse(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """Detect and analyse every face of `frames` (one batch; frames may differ in size)."""
        out: list[FrameResult] = []
        start = 0
        while start < len(frames):  # the detector needs one size per batch
            end = start + 1
            while end < len(frames) and frames[end].size == frames[start].size:
                end += 1
            out += self._analyse_same_size(frames[start:end], None)
            start = end
        return out

    def analyse_boxes(self, frames: Sequence[Frame], detections: Sequence[Detections]) -> list[FrameResult]:
        """Analyse faces at given boxes (a tracker's, or a test's), skipping the detector."""
        if len(frames) != len(detections):
            raise ValueError(f"{len(detections)} detections for {len(frames)} frames")
        return [r for f, d in zip(frames, detections) for r in self._analyse_same_size([f], [d])]

    def _analyse_same_size(self, frames: Sequence[Frame], detections: Optional[Sequence[Detections]]):
        t0 = time.perf_counter()
        pixels = torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).contiguous()
        if detections is None:
            detections = self.detect(pixels)
        t1 = time.perf_counter()
        counts = [len(d) for d in detections]
        analysis, timings = self._analyse_faces(pixels, detections, counts)
        timings = {"detect": (t1 - t0) * 1e3, **timings}
        per_frame = {k: v / len(frames) for k, v in timings.items()}
        per_face = np.split(np.arange(sum(counts)), np.cumsum(counts)[:-1])
        return [FrameResult.of(f, d, analysis[idx], dict(per_frame, batch=len(frames)))
                for f, d, idx in zip(frames, detections, per_face)]

    def _analyse_faces(self, pixels: torch.Tensor, detections: Sequence[Detections], counts: list[int]):
        if sum(counts) == 0:
            return FaceAnalysis.empty(self.identity), {"crop": 0.0, "multitask": 0.0, "identity": 0.0}
        t0 = time.perf_counter()
        boxes = torch.from_numpy(np.concatenate([d.xyxy for d in detections])).float()
        frame_idx = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
        chips, rects = face_ops.crop_chips(pixels.float() / 255.0, boxes, frame_idx)
        t1 = time.perf_counter()
        outputs = self.multitask(face_ops.multitask_input(chips))
        t2 = time.perf_counter()
        embedding = self.arcface(face_ops.identity_input(chips))[0] if self.arcface else None
        t3 = time.perf_counter()
        analysis = face_ops.decode(outputs, rects, embedding)
        return analysis, {"crop": (t1 - t0) * 1e3, "multitask": (t2 - t1) * 1e3, "identity": (t3 - t2) * 1e3}
