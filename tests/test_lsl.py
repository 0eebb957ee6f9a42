"""LSL on loopback: markers from another outlet land in markers.csv at their times; an inlet receives
our face-data and frame-marker samples, stamped with the capture times, with their channel labels."""
from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pytest

pylsl = pytest.importorskip("pylsl", reason="pylsl not installed (pip install 'realtime-feat[lsl]')")

from realtime_feat.live.live_session import LiveSession  # noqa: E402
from realtime_feat.types import Detections, FaceAnalysis, FrameResult  # noqa: E402
from test_session import FakeAnalyser, Synthetic  # noqa: E402


def wait_for(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def record_lsl_markers(root, source, analyser, send, count: int):
    """A recording of `source` with a marker inlet on a new LSL outlet: once connected, `send(outlet)`
    pushes markers; ends once `count` markers are in (and a few frames after). Returns (folder, stream name)."""
    name = f"stimulus-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, name))
    session = LiveSession(source, analyser, lsl_markers=name)
    folder = session.start_recording(root)
    session.start()
    try:
        (inlet,) = session._sinks
        assert inlet.connected.wait(20)
        time.sleep(0.3)
        send(outlet)
        assert wait_for(lambda: len(session.markers) == count)
        time.sleep(0.2)  # frames after the last marker
    finally:
        session.stop()
        del outlet
    return folder, name


def test_markers_from_another_outlet_are_recorded_at_their_times(tmp_path):
    sent = []

    def send(outlet):
        sent.append(pylsl.local_clock())
        outlet.push_sample(["trial 1 start"], sent[0])
        time.sleep(0.3)
        sent.append(pylsl.local_clock() - 0.05)  # the sender stamps an event 50 ms in its past
        outlet.push_sample(["trial 1 end"], sent[1])

    folder, name = record_lsl_markers(tmp_path, Synthetic(n=10**9, interval=0.004), None, send, 2)
    t_a, t_b = sent
    markers = pd.read_csv(folder / "markers.csv")
    assert list(markers["label"]) == ["trial 1 start", "trial 1 end"]
    assert set(markers["origin"]) == {f"lsl:{name}"}
    assert np.allclose(markers["t_lsl"], [t_a, t_b], atol=1e-3)  # the sender's stamps (+ time correction)
    assert abs((markers["t_monotonic"][1] - markers["t_monotonic"][0]) - (t_b - t_a)) < 2e-3  # on our clock
    # joined to the frames on the capture clock, each marker falls between two captured frames' LSL stamps
    frames = pd.read_csv(folder / "frames.csv")
    joined = pd.merge_asof(markers, frames[["frame", "t_monotonic"]].rename(columns={"frame": "at_frame"}),
                           on="t_monotonic")
    for m in joined.itertuples():
        t_frame = frames.loc[frames["frame"] == m.at_frame, "t_lsl"].iloc[0]
        t_next = frames.loc[frames["frame"] == m.at_frame + 1, "t_lsl"].iloc[0]
        assert t_frame <= m.t_lsl + 1e-3 and m.t_lsl < t_next + 1e-3



def test_marker_codes_come_back_as_the_text_sent_and_epochs_lock_to_them(tmp_path):
    """A stimulus program's codes over LSL ("01", "NA", "1.50", with a comma, with a quote) are what
    load_session, the viewer, the report and a review event give back (not 1, NaN, 1.5), and
    `epochs --markers 01,NA,"cue, left"` locks to them."""
    import html

    from realtime_feat.review.annotations import Annotation
    from realtime_feat.cli import main
    from realtime_feat.review.recorded_session import load_session
    from realtime_feat.review.playback import SessionReview
    from test_review_data import KnownFaces

    codes = ["01", "NA", "1.50", "cue, left", 'say "go"']

    def send(outlet):
        for code in codes:
            outlet.push_sample([code])
            time.sleep(0.1)

    folder, _ = record_lsl_markers(tmp_path, Synthetic(n=10**9, interval=0.01, size=(64, 64)), KnownFaces(cost=0.001),
                                   send, len(codes))
    recorded = load_session(folder)
    recorded.annotations.add(Annotation("event", "007", recorded.t0 + 0.1, recorded.t0 + 0.1))
    recorded = load_session(folder)
    assert list(recorded.markers["label"]) == codes
    assert set(recorded.events()["label"]) == {*codes, "007"}
    review = SessionReview(recorded)
    try:
        assert list(review.markers()["label"]) == codes
    finally:
        review.close()

    out = tmp_path / "epochs.csv"
    assert main(["epochs", str(folder), "--markers", '01,NA,"cue, left",007', "--window", "-0.05,0.05", "-o",
                 str(out)]) == 0
    got = pd.read_csv(out, dtype={"marker": str}, keep_default_na=False).drop_duplicates("marker")
    assert list(got["marker"]) == ["007", "01", "NA", "cue, left"]  # in time order
    times = recorded.markers.set_index("label")["t_monotonic"] - recorded.t0
    assert np.allclose(got["t_marker"].iloc[1:], times[["01", "NA", "cue, left"]], atol=1e-5)
    report = tmp_path / "report.html"
    assert main(["report", str(folder), "-o", str(report)]) == 0
    text = report.read_text()
    assert all(f"<h3>{html.escape(code)} (1 occurrence)</h3>" in text for code in codes)

class OneFace(FakeAnalyser):
    """One face per frame whose AUs carry the frame's number: to find it again at the inlet."""

    def analyse(self, frames):
        frame = frames[0]
        det = Detections(np.array([[4, 4, 20, 20]], np.float32), np.ones(1, np.float32), np.zeros((1, 5, 2), np.float32))
        z = lambda *s: np.zeros((1, *s), np.float32)  # noqa: E731
        faces = FaceAnalysis(z(4) + [4, 4, 20, 20], np.full((1, 20), frame.index / 1000, np.float32), z(7), z(2),
                             z(2), z(6), z(478, 3), z(68, 2) + 10, z(52))
        return [FrameResult.of(frame, det, faces, {})]

    def analyse_boxes(self, frames, boxes, identity=True):
        return self.analyse(frames)


def _labels(info) -> list[str]:
    ch = info.desc().child("channels").child("channel")
    labels = []
    while not ch.empty():
        labels.append(ch.child_value("label"))
        ch = ch.next_sibling()
    return labels


def test_an_inlet_receives_face_data_and_frame_markers_on_the_capture_clock(tmp_path):
    session = LiveSession(Synthetic(n=10**9, interval=0.005), OneFace(), lsl=True)
    folder = session.start_recording(tmp_path)
    session.start()
    try:
        data_info = pylsl.resolve_byprop("name", "realtime-feat synthetic face data", 1, 20)[0]
        frames_info = pylsl.resolve_byprop("name", "realtime-feat synthetic frames", 1, 20)[0]
        data, frames_in = pylsl.StreamInlet(data_info), pylsl.StreamInlet(frames_info)
        data.open_stream(10)
        frames_in.open_stream(10)
        assert data.info(5).type() == "FacialBehaviour" and frames_in.info(5).type() == "VideoFrames"
        labels = _labels(data.info(5))
        assert labels[:3] == ["frame", "track_id", "AU01"] and labels[-6:] == ["Pitch", "Roll", "Yaw", "X", "Y", "Z"]
        assert len(labels) == data_info.channel_count() == 2 + 20 + 7 + 2 + 2 + 6
        assert _labels(frames_in.info(5)) == ["frame"]
        got_data, got_frames = [], []
        deadline = time.monotonic() + 30
        while (len(got_data) < 10 or len(got_frames) < 30) and time.monotonic() < deadline:
            samples, stamps = data.pull_chunk(timeout=0.1)
            got_data += zip(samples, stamps)
            samples, stamps = frames_in.pull_chunk(timeout=0.1)
            got_frames += zip(samples, stamps)
    finally:
        session.stop()
    table = pd.read_csv(folder / "frames.csv").set_index("frame")
    assert len(got_data) >= 10 and len(got_frames) >= 30
    indices = [int(s[0]) for s, _ in got_frames]
    assert indices == list(range(indices[0], indices[0] + len(indices)))  # one sample per captured frame
    for (index,), stamp in got_frames:  # the capture stamp on local_clock, not the push time
        assert stamp == pytest.approx(table.loc[index, "t_lsl"], abs=1e-6)
    for sample, stamp in got_data:
        index = int(sample[0])
        assert table.loc[index, "analysed"] == 1 and stamp == pytest.approx(table.loc[index, "t_lsl"], abs=1e-6)
        assert np.allclose(sample[labels.index("AU01"):labels.index("AU01") + 20], index / 1000, atol=1e-6)


def test_a_failing_outlet_stops_alone_and_is_named_once():
    """Faults: the face-data outlet's push fails (on the analysis thread), then the frame-marker
    outlet's (on its own thread); each is named once and nothing else stops."""
    session = LiveSession(Synthetic(n=10**9, interval=0.005), OneFace(), lsl=True)
    session.start()
    try:
        (outlets,) = session._sinks

        def broken(*args):
            raise RuntimeError("liblsl: outlet buffer gone")

        outlets.data.push_chunk = broken
        assert wait_for(lambda: len(session.sink_failures) == 1)
        sent = outlets.sent_frames
        assert wait_for(lambda: outlets.sent_frames > sent + 10)  # the frame markers go on
        outlets.frames.push_sample = broken
        assert wait_for(lambda: len(session.sink_failures) == 2)
        analysed = session.analysed
        assert wait_for(lambda: session.analysed > analysed + 10)  # and analysis
        status = session.status()
    finally:
        session.stop()
    assert status.sink_errors == ("LSL outlet 'realtime-feat synthetic face data': liblsl: outlet buffer gone",
                                  "LSL outlet 'realtime-feat synthetic frames': liblsl: outlet buffer gone")
    assert status.error is None and session.essential_failure is None
