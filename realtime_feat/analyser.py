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

    backend: "auto" (best for the device), "tensorrt", "openvino", "onnxruntime" or "torch".
    detector: "retinaface" (py-feat's ResNet-34, equal to py-feat) or "fast" (RetinaFace MobileNet-0.25
        with its real weights, on ONNX Runtime: about a tenth of the compute, for live use on a CPU).
    identity: run ArcFace for an embedding per face (needed for tracking by identity).
    threshold: face score a detection must reach (default 0.5, py-feat's; 0.6 for the fast detector).
    """

    DEFAULT_THRESHOLD = {"retinaface": 0.5, "fast": 0.6}

    def __init__(self, backend: str = "auto", device: str = "cpu", *, detector: str = "retinaface",
                 identity: bool = True, threshold: Optional[float] = None, weights_dir=None,
                 threads: Optional[int] = None, precision: Optional[str] = None,
                 models: Optional[PyFeatModels] = None):
        from realtime_feat.engines import select_backend

        if detector not in self.DEFAULT_THRESHOLD:
            raise ValueError(f"unknown detector {detector!r}; choose retinaface or fast")
        models = models or PyFeatModels.load(weights_dir, identity, detector=detector == "retinaface")
        self.identity = identity
        self.detector_name = detector
        self.backend, self.backend_reason = select_backend(backend, device, threads, precision)
        # Frames go to the backend's device once: the crop runs there and chips never leave it.
        self.device = torch.device(self.backend.device)
        self.weight_paths = models.paths
        digest = {name: file_digest(path) for name, path in models.paths.items()}
        self.weight_digests = digest
        if detector == "fast":
            from realtime_feat.engines.fast_detector import FastDetectorRunner

            self.detector = FastDetectorRunner(threads)
        else:
            self.detector = self.backend.load("detector", models.detector, digest["retinaface"])
        self.multitask = self.backend.load("multitask", models.multitask, digest["multitask"])
        self.arcface = self.backend.load("identity", models.identity, digest["arcface"]) if identity else None
        self.decoder = RetinaFaceDecoder(self.DEFAULT_THRESHOLD[detector] if threshold is None else threshold)

    def warm_up(self, height: int, width: int) -> None:
        """Run each network once at this frame size: builds or loads every export and engine now
        (minutes for TensorRT), instead of on the first real frame."""
        frame = Frame(np.zeros((height, width, 3), np.uint8), 0, 0, 0)
        self.analyse([frame])
        side = min(height, width) / 2
        box = np.array([[width / 2 - side / 2, height / 2 - side / 2, width / 2 + side / 2, height / 2 + side / 2]],
                       np.float32)
        self.analyse_boxes([frame], [Detections(box, np.ones(1, np.float32))])

    def describe(self) -> str:
        detector = "" if self.detector_name == "retinaface" else ", fast detector (MobileNet-0.25, onnxruntime)"
        return f"{self.backend.describe()}{detector} [{self.backend_reason}]"

    def detect(self, pixels: torch.Tensor) -> list[Detections]:
        """[B,3,H,W] uint8 RGB → faces of each frame."""
        loc, conf, landms = self.detector(pixels)
        return self.decoder(loc, conf, landms, pixels.shape[2], pixels.shape[3])

    def analyse(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """Detect and analyse every face of `frames` (one batch; frames may differ in size)."""
        return [r for s in _same_size_runs(frames) for r in self._analyse_same_size(frames[s], None)]

    def analyse_boxes(self, frames: Sequence[Frame], detections: Sequence[Detections],
                      identity: bool = True) -> list[FrameResult]:
        """Analyse faces at given boxes (a tracker's, or a test's), skipping the detector.
        identity=False skips ArcFace for these frames (embedding None)."""
        if len(frames) != len(detections):
            raise ValueError(f"{len(detections)} detections for {len(frames)} frames")
        return [r for s in _same_size_runs(frames)
                for r in self._analyse_same_size(frames[s], detections[s], identity)]

    def _analyse_same_size(self, frames: Sequence[Frame], detections: Optional[Sequence[Detections]],
                           identity: bool = True):
        t0 = time.perf_counter()
        pixels = torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).contiguous()
        pixels = pixels.to(self.device, non_blocking=True)
        if detections is None:
            detections = self.detect(pixels)
        t1 = time.perf_counter()
        counts = [len(d) for d in detections]
        analysis, timings = self._analyse_faces(pixels, detections, counts, identity and self.identity)
        timings = {"detect": (t1 - t0) * 1e3, **timings}
        per_frame = {k: v / len(frames) for k, v in timings.items()}
        per_face = np.split(np.arange(sum(counts)), np.cumsum(counts)[:-1])
        return [FrameResult.of(f, d, analysis[idx], dict(per_frame, batch=len(frames)))
                for f, d, idx in zip(frames, detections, per_face)]

    def _analyse_faces(self, pixels: torch.Tensor, detections: Sequence[Detections], counts: list[int],
                       identity: bool):
        if sum(counts) == 0:
            return FaceAnalysis.empty(identity), {"crop": 0.0, "multitask": 0.0, "identity": 0.0}
        t0 = time.perf_counter()
        boxes = torch.from_numpy(np.concatenate([d.xyxy for d in detections])).float().to(self.device)
        frame_idx = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).to(self.device)
        chips, rects = face_ops.crop_chips(pixels.float() / 255.0, boxes, frame_idx)
        t1 = time.perf_counter()
        outputs = self.multitask(face_ops.multitask_input(chips))
        t2 = time.perf_counter()
        embedding = self.arcface(face_ops.identity_input(chips))[0] if identity else None
        t3 = time.perf_counter()
        analysis = face_ops.decode(outputs, rects, embedding)
        return analysis, {"crop": (t1 - t0) * 1e3, "multitask": (t2 - t1) * 1e3, "identity": (t3 - t2) * 1e3}


def _same_size_runs(frames: Sequence[Frame]) -> list[slice]:
    """Consecutive frames of one size: a batch's frames are stacked into one tensor."""
    runs, start = [], 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or frames[i].size != frames[start].size:
            runs.append(slice(start, i))
            start = i
    return runs
