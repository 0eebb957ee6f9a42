"""A video file that breaks mid-way (a damaged block, a copy cut short) ends with one line naming the
file and the frame: played up to there once, never reopened and replayed as a lost camera."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from realtime_feat.capture.capture_thread import CaptureThread
from realtime_feat.errors import first_line
from realtime_feat.live.live_session import LiveSession
from realtime_feat.capture.sources import SourceError, VideoSource
from test_session import FakeAnalyser


@pytest.fixture(scope="module")
def damaged_video(faststart_video, tmp_path_factory):
    """single_face.mp4 with 4 KiB overwritten in its middle: FFmpeg's decoder rejects a packet there."""
    data = bytearray(faststart_video.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = b"\xff" * 4096
    path = tmp_path_factory.mktemp("damaged") / "damaged.mp4"
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def cut_video(faststart_video, tmp_path_factory):
    """single_face.mp4 cut short between two packets: it ends cleanly after 40 of the 72 frames its
    header declares (a copy that stopped)."""
    import av

    with av.open(str(faststart_video)) as container:
        starts = [p.pos for p in container.demux(container.streams.video[0]) if p.size]
    path = tmp_path_factory.mktemp("cut") / "cut.mp4"
    path.write_bytes(faststart_video.read_bytes()[:starts[40]])
    return path


def played(sub) -> list:
    return [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]


@pytest.mark.parametrize("loop", [False, True], ids=["once", "loop"])
@pytest.mark.parametrize("broken", ["damaged_video", "cut_video"])
def test_a_broken_video_file_ends_where_it_breaks_and_is_never_replayed(request, broken, loop):
    path = request.getfixturevalue(broken)
    states = []
    capture = CaptureThread(VideoSource(str(path), realtime=False, loop=loop), retry_initial_s=0.01,
                            on_state=states.append)
    sub = capture.subscribe("all", maxsize=100)
    capture.start()
    assert capture.wait(timeout=60)  # hang guard: a file reopened as a lost camera plays again and again
    frames = played(sub)
    line = first_line(capture.error)
    assert isinstance(capture.error, SourceError) and str(capture.error) == line  # one line
    n = len(frames)
    assert line.startswith(f"{path}: video breaks off at frame {n} ") and line.endswith("it was played up to there")
    assert 0 < n < 72 and [f.index for f in frames] == list(range(n))  # each frame once, indices never restart
    assert np.all(np.diff([f.pts for f in frames]) > 0)  # the file's own time never goes back either
    assert states == ["running", "failed"] and capture.gaps == [] and capture.slot.closed
    if broken == "cut_video":
        assert n == 40 and "of the 72 its header declares (cut short)" in line


def test_a_session_on_a_damaged_file_ends_and_status_names_the_file_and_frame(damaged_video):
    session = LiveSession(str(damaged_video), FakeAnalyser(), realtime=False)
    analysed = []
    session.subscribe(lambda result, frame: analysed.append(result.index))
    session.start()
    assert session.wait(timeout=60)
    session.stop()
    s = session.status()
    assert s.state == "failed" and 0 < s.captured < 72
    assert s.error.startswith(f"{damaged_video}: video breaks off at frame {s.captured} (")
    assert analysed == sorted(set(analysed)) and analysed[-1] < s.captured


def test_record_on_a_damaged_file_keeps_what_was_played_and_exits_with_the_line(capsys, tmp_path, damaged_video):
    from realtime_feat.cli import main

    code = main(["record", "--source", str(damaged_video), "--fast", "--no-analysis", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "Traceback" not in "\n".join(err)  # 1: partly done, what was played is kept
    (folder,) = tmp_path.iterdir()
    frames = pd.read_csv(folder / "frames.csv")
    n = len(frames)
    assert err[-1].startswith(f"realtime-feat: error: capture stopped: {damaged_video}: "
                              f"video breaks off at frame {n} (")
    assert 0 < n < 72 and list(frames["frame"]) == list(range(n)) and (frames["in_video"] == 1).all()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["complete"] is True and meta["counts"]["encoded"] == n  # the recording itself ended well
