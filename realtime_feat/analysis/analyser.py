"""Frames in, `FrameResult`s out: detect → crop every face of the batch at once → multitask
(+ ArcFace), on one backend. Frames without a face cost no multitask or ArcFace work."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence, TypeVar

import numpy as np
import torch

from ..types import Detections, FaceAnalysis, Frame, FrameResult
from ..weights import file_digest
from . import faces as face_ops
from .detection import RetinaFaceDecoder
from .models import PyFeatModels

T = TypeVar("T")


class Analyser:
    """py-feat's Detectorv2 networks behind one backend.

    backend: "auto" (best for the device), "tensorrt", "openvino", "onnxruntime" or "torch".
    device: "cpu", "cuda", "cuda:N", or "auto" (the first CUDA device where one is usable, else cpu).
    detector: "retinaface" (py-feat's ResNet-34, equal to py-feat) or "fast" (RetinaFace MobileNet-0.25
        with its real weights, on ONNX Runtime: about a tenth of the compute, for live use on a CPU).
    identity: run ArcFace for an embedding per face (needed for tracking by identity).
    threshold: face score a detection must reach (default 0.5, py-feat's; 0.6 for the fast detector).
    cuda_graphs: the torch backend on CUDA replays a CUDA graph per input shape (up to 8 faces).
    """

    DEFAULT_THRESHOLD = {"retinaface": 0.5, "fast": 0.6}

    def __init__(self, backend: str = "auto", device: str = "cpu", *, detector: str = "retinaface",
                 identity: bool = True, threshold: Optional[float] = None, weights_dir=None,
                 threads: Optional[int] = None, precision: Optional[str] = None, cuda_graphs: bool = False,
                 models: Optional[PyFeatModels] = None):
        from realtime_feat.engines import select_backend

        if detector not in self.DEFAULT_THRESHOLD:
            raise ValueError(f"unknown detector {detector!r}; choose retinaface or fast")
        from realtime_feat.engines.onnx_export import ExportMismatch

        models = models or PyFeatModels.load(weights_dir, identity, detector=detector == "retinaface")
        self.identity = identity
        self.detector_name = detector
        self.weight_paths = models.paths
        self.weight_digests = {name: file_digest(path) for name, path in models.paths.items()}
        # With backend "auto", one whose export fails its check against torch is passed over for the
        # next (one line each in `fallbacks`); a backend the user named fails with the check's error.
        self.fallbacks: list[str] = []
        failed: dict[str, str] = {}
        while True:
            self.backend, self.backend_reason = select_backend(backend, device, threads, precision, cuda_graphs,
                                                               skip=failed)
            try:
                self._load_runners(models, threads)
                break
            except ExportMismatch as exc:
                if backend != "auto":
                    raise
                failed[self.backend.name] = f"failed its check against torch: {exc.difference or exc}"
                self.fallbacks.append(f"{self.backend.name} {failed[self.backend.name]}; trying the next backend")
        # Frames go to the backend's device once: the crop runs there and chips never leave it.
        self.device = torch.device(self.backend.device)
        self.decoder = RetinaFaceDecoder(self.DEFAULT_THRESHOLD[detector] if threshold is None else threshold)

    def _load_runners(self, models: PyFeatModels, threads: Optional[int]) -> None:
        digest = self.weight_digests
        if self.detector_name == "fast":
            from realtime_feat.engines.fast_detector import FastDetectorRunner

            self.detector = FastDetectorRunner(threads)
        else:
            self.detector = self.backend.load("detector", models.detector, digest["retinaface"])
        self.multitask = self.backend.load("multitask", models.multitask, digest["multitask"])
        self.arcface = self.backend.load("identity", models.identity, digest["arcface"]) if self.identity else None

    def warm_up(self, height: int, width: int) -> None:
        """Run each network once at this frame size (and, with CUDA graphs, at each face count they
        cover): builds or loads every export, engine and graph now (minutes for TensorRT), instead
        of on the first real frame."""
        frame = Frame(np.zeros((height, width, 3), np.uint8), 0, 0, 0)
        self.analyse([frame])
        side = min(height, width) / 2
        box = [width / 2 - side / 2, height / 2 - side / 2, width / 2 + side / 2, height / 2 + side / 2]
        for n in self.backend.warm_faces:
            self.analyse_boxes([frame], [Detections(np.array([box] * n, np.float32), np.ones(n, np.float32))])

    def describe(self) -> str:
        detector = "" if self.detector_name == "retinaface" else ", fast detector (MobileNet-0.25, onnxruntime)"
        return f"{self.backend.describe()}{detector} [{self.backend_reason}]"

    def analyse(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """Detect and analyse every face of `frames` (one batch; frames may differ in size)."""
        return self._analyse(frames, None, self.identity)

    def analyse_boxes(self, frames: Sequence[Frame], detections: Sequence[Detections],
                      identity: bool = True) -> list[FrameResult]:
        """Analyse faces at given boxes (a tracker's, or a test's), skipping the detector.
        identity=False skips ArcFace for these frames (embedding None)."""
        if len(frames) != len(detections):
            raise ValueError(f"{len(detections)} detections for {len(frames)} frames")
        return self._analyse(frames, detections, identity and self.identity)

    def analyse_stream(self, batches: Iterable[tuple[T, Sequence[Frame]]]) -> Iterator[tuple[T, list[FrameResult]]]:
        """`analyse` over (tag, frames) batches, yielding (tag, results) in order, one batch behind:
        the detector of batch i+1 runs while the face networks of batch i finish. On CUDA these are
        two streams, so the GPU runs both at once; on the CPU the same steps run one after another.
        For offline work; live analysis takes the newest frame instead (latency first)."""
        streams = _Streams(self.device)
        behind = None  # (tag, runs) whose face networks are queued on the face stream

        def finish():
            with streams.faces():
                return behind[0], [r for run in behind[1] for r in self._finish(run)]

        batches = iter(batches)
        while True:
            try:
                tag, frames = next(batches)
            except StopIteration:
                break
            except Exception:  # a broken input: what was analysed before it still comes out
                if behind is not None:
                    yield finish()
                raise
            with streams.detect():
                runs = [self._upload(frames[s], None) for s in _same_size_runs(frames)]
            if behind is not None:
                yield finish()  # the face networks of the batch behind end while the detector runs
            with streams.detect():
                for run in runs:
                    self._decode(run)
            with streams.faces():
                streams.faces_after_detect()
                for run in runs:
                    self._launch(run, self.identity)
            behind = (tag, runs)
        if behind is not None:
            yield finish()

    def _analyse(self, frames, detections, identity: bool) -> list[FrameResult]:
        results = []
        for s in _same_size_runs(frames):
            run = self._upload(frames[s], None if detections is None else detections[s])
            self._decode(run)
            self._launch(run, identity)
            results += self._finish(run)
        return results

    def _upload(self, frames: Sequence[Frame], detections: Optional[Sequence[Detections]]) -> "_Run":
        """Frames to the device and, without given boxes, the detector queued on them."""
        t0 = time.perf_counter()
        pixels = torch.from_numpy(np.stack([f.image for f in frames])).permute(0, 3, 1, 2).contiguous()
        pixels = pixels.to(self.device, non_blocking=True)
        raw = self.detector(pixels) if detections is None else None
        return _Run(frames, pixels, detections, raw, {"detect": time.perf_counter() - t0})

    def _decode(self, run: "_Run") -> None:
        """The detector's outputs → boxes on the host (waits for the detector)."""
        t0 = time.perf_counter()
        if run.detections is None:
            run.detections = self.decoder(*run.raw, run.pixels.shape[2], run.pixels.shape[3])
            run.raw = None
        run.timings["detect"] += time.perf_counter() - t0

    def _launch(self, run: "_Run", identity: bool) -> None:
        """Crop every face of the run at once and queue the multitask model (and ArcFace) on them."""
        counts = [len(d) for d in run.detections]
        run.identity = identity
        if sum(counts) == 0:
            run.timings.update(crop=0.0, multitask=0.0, identity=0.0)
            return
        t0 = time.perf_counter()
        boxes = torch.from_numpy(np.concatenate([d.xyxy for d in run.detections])).float().to(self.device)
        frame_idx = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).to(self.device)
        chips, rects = face_ops.crop_chips(run.pixels.float() / 255.0, boxes, frame_idx)
        t1 = time.perf_counter()
        outputs = self.multitask(face_ops.multitask_input(chips))
        t2 = time.perf_counter()
        embedding = self.arcface(face_ops.identity_input(chips))[0] if identity else None
        t3 = time.perf_counter()
        run.outputs = (outputs, rects, embedding)
        run.timings.update(crop=t1 - t0, multitask=t2 - t1, identity=t3 - t2)

    def _finish(self, run: "_Run") -> list[FrameResult]:
        """The face networks' outputs to the host (waits for them) → one FrameResult per frame."""
        t0 = time.perf_counter()
        analysis = (FaceAnalysis.empty(run.identity) if run.outputs is None
                    else face_ops.decode(*run.outputs))
        run.timings["decode"] = time.perf_counter() - t0
        n = len(run.frames)
        per_frame = {k: v * 1e3 / n for k, v in run.timings.items()}
        per_frame["batch"] = n
        counts = [len(d) for d in run.detections]
        per_face = np.split(np.arange(sum(counts)), np.cumsum(counts)[:-1])
        return [FrameResult.of(f, d, analysis[idx], dict(per_frame))
                for f, d, idx in zip(run.frames, run.detections, per_face)]


@dataclass
class _Run:
    """Frames of one size on their way through the networks (see Analyser.analyse_stream)."""

    frames: Sequence[Frame]
    pixels: torch.Tensor                          # [B,3,H,W] uint8 on the device
    detections: Optional[Sequence[Detections]]    # None until the detector's outputs are decoded
    raw: Optional[tuple]                          # the detector's outputs, still on the device
    timings: dict                                 # seconds per stage
    outputs: Optional[tuple] = None               # multitask outputs, rects, embedding on the device
    identity: bool = False


class _Streams:
    """Two streams of the analyser's device, one for the detector and one for the face networks.
    torch.cpu's streams are no-ops, so on the CPU the same code runs in order."""

    def __init__(self, device: torch.device):
        self.module = torch.get_device_module(device)
        self._detect, self._faces = self.module.Stream(), self.module.Stream()

    def detect(self):
        return self.module.stream(self._detect)

    def faces(self):
        return self.module.stream(self._faces)

    def faces_after_detect(self) -> None:
        """The face networks read the frames uploaded (and boxes decoded) on the detect stream."""
        self._faces.wait_stream(self._detect)


def _same_size_runs(frames: Sequence[Frame]) -> list[slice]:
    """Consecutive frames of one size: a batch's frames are stacked into one tensor."""
    runs, start = [], 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or frames[i].size != frames[start].size:
            runs.append(slice(start, i))
            start = i
    return runs
