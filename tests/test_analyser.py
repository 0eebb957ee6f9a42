"""Analyser.analyse_stream: the pipelined path `process` uses gives what analyse() gives, batch for
batch and in order, and a broken input still lets out what was analysed before it."""
from __future__ import annotations

import numpy as np
import pytest

from realtime_feat.capture.media import iter_video
from realtime_feat.recording.fex import CHIP_EXPAND
from realtime_feat.types import Detections


class CentreFaces:
    """Stands in for RetinaFace's decoding (random weights find no face): frame i of a same-size run
    gets i+1 boxes, and frames of a size in `empty` none."""

    def __init__(self, empty=()):
        self.empty = set(empty)

    def __call__(self, loc, conf, landms, height, width):
        out = []
        for i in range(conf.shape[0]):
            n = 0 if (height, width) in self.empty else i + 1
            side = min(height, width) / 3
            xyxy = np.array([[k * 4, height / 4, k * 4 + side, height / 4 + side] for k in range(n)], np.float32)
            out.append(Detections(xyxy.reshape(-1, 4), np.full(n, 0.9, np.float32)))
        return out


@pytest.fixture(scope="module")
def frames(sample_data):
    from dataclasses import replace

    frames = list(iter_video(sample_data / "single_face.mp4", skip_frames=9))[:7]
    small = replace(frames[4], image=frames[4].image[::2, ::2].copy())  # a batch mixing two frame sizes
    cut = replace(frames[6], image=frames[6].image[:, :-8].copy())     # a size CentreFaces finds no face in
    return frames[:4] + [small, frames[5], cut]



def _batches(frames):
    sizes = [2, 3, 1, 1]
    starts = np.cumsum([0] + sizes)
    return [(f"b{k}", frames[a:b]) for k, (a, b) in enumerate(zip(starts, starts[1:]))]


def _same(a, b):
    assert (a.index, a.n_faces, a.height, a.width) == (b.index, b.n_faces, b.height, b.width)
    for name in ("face_rect", "au", "emotions", "mesh", "pose", "embedding"):
        np.testing.assert_allclose(getattr(a.faces, name), getattr(b.faces, name), rtol=1e-5, atol=1e-6, err_msg=name)


def test_stream_equals_batch_by_batch(analysers, frames, monkeypatch):
    analyser = analysers["onnxruntime"]
    monkeypatch.setattr(analyser, "decoder", CentreFaces(empty=[frames[6].size]))
    batches = _batches(frames)
    got = list(analyser.analyse_stream(batches))
    assert [tag for tag, _ in got] == [tag for tag, _ in batches]
    for (_, frames_in), (_, results) in zip(batches, got):
        expected = analyser.analyse(frames_in)
        assert len(results) == len(frames_in)
        for a, b in zip(results, expected):
            _same(a, b)
    faces = [r.n_faces for _, results in got for r in results]
    assert faces == [1, 2, 1, 2, 1, 1, 0]
    # face_rect (fex.csv's FaceRect) is the square chip, CHIP_EXPAND × the box's longer side: the report's face size
    for r in (r for _, results in got for r in results):
        box, rect = r.detections.xyxy, r.faces.face_rect
        np.testing.assert_allclose(rect[:, 2:] - rect[:, :2], np.repeat(CHIP_EXPAND * (box[:, 2:] - box[:, :2]).max(1,
                                   keepdims=True), 2, 1), rtol=1e-5)
    assert got[1][1][1].faces.embedding.shape == (2, 512)  # ArcFace ran in the pipeline too
    assert {"detect", "crop", "multitask", "identity", "decode"} <= set(got[0][1][0].timings_ms)


def test_broken_input_lets_out_what_came_before(analysers, frames, monkeypatch):
    analyser = analysers["onnxruntime"]
    monkeypatch.setattr(analyser, "decoder", CentreFaces())

    def source():
        yield from _batches(frames)[:2]
        raise OSError("stream broke off")

    stream = analyser.analyse_stream(source())
    assert [tag for tag, _ in (next(stream), next(stream))] == ["b0", "b1"]  # b1 was one behind
    with pytest.raises(OSError, match="stream broke off"):
        next(stream)
