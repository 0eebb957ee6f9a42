"""A failing sink fails alone (DESIGN.md, "Faults"): detached, named once, and analysis, the other
subscribers and the session's `error` go on untouched."""
from __future__ import annotations

import logging
import os

import pytest

from realtime_feat.live.worker import ResultsBus
from realtime_feat.live.live_session import LiveSession
from test_session import FakeAnalyser, Synthetic, eventually


def test_a_raising_subscriber_is_detached_named_once_and_analysis_goes_on(caplog):
    """Fault: a user's callback raises on its third result."""
    session = LiveSession(Synthetic(n=10**9, interval=0.002), FakeAnalyser())
    before, bad_calls, after = [], [], []

    def plot(result, frame):
        bad_calls.append(result.index)
        if len(bad_calls) == 3:
            raise RuntimeError("plot widget is gone\nsecond line")

    session.subscribe(lambda result, frame: before.append(result.index), name="before")
    session.subscribe(plot, name="plot window")
    session.subscribe(lambda result, frame: after.append(result.index))  # named after the callable
    with caplog.at_level(logging.ERROR, logger="realtime_feat"):
        session.start()
        try:
            assert eventually(lambda: session.sink_failures)
            analysed = session.analysed
            assert eventually(lambda: session.analysed >= analysed + 10)  # analysis goes on
            status = session.status()
        finally:
            session.stop()
    assert len(bad_calls) == 3  # detached: never called again
    (failure,) = session.sink_failures
    assert failure.name == "plot window" and failure.frame == bad_calls[-1] and not failure.essential
    assert status.sink_errors == ("plot window: plot widget is gone",)
    assert status.error is None and session.error is None and session.worker.error is None
    assert session.essential_failure is None
    assert after == before and bad_calls[-1] in after  # the others got every result, the failed one's too
    named = [r for r in caplog.records if "plot window" in r.getMessage()]
    assert len(named) == 1 and named[0].exc_info[1] is failure.error  # once, with the traceback for the file


def test_a_subscriber_given_by_bound_method_is_unsubscribed():
    bus = ResultsBus()
    got = []

    class Sink:
        def on_result(self, result, frame):
            got.append(result)

    sink = Sink()
    bus.subscribe(sink.on_result)
    bus.unsubscribe(sink.on_result)  # another bound-method object, equal to the subscribed one
    bus.publish("result", None)
    assert got == []


FULL_DISK = """
import json, resource, signal, sys, time
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
sys.path.insert(0, sys.argv[1])
from realtime_feat.live.live_session import LiveSession
from test_session import FakeAnalyser, Synthetic, eventually

session = LiveSession(Synthetic(n=10**9, interval=0.001), FakeAnalyser(cost=0.0), csv_path=sys.argv[2])
results = []
session.subscribe(lambda result, frame: results.append(result.index), name="counter")
session.start()
failed = eventually(lambda: session.essential_failure is not None, timeout=60)
analysed = session.analysed
went_on = eventually(lambda: session.analysed >= analysed + 10, timeout=60)
status = session.status()
session.stop()  # closing the failed file raises nothing more
print(json.dumps({"failed": failed, "went_on": went_on, "sink_errors": status.sink_errors, "error": status.error,
                  "essential": session.essential_failure.message, "failures": len(session.sink_failures),
                  "delivered": len(results), "analysed": session.analysed, "csv_path": str(session.csv_path)}))
"""


def test_the_live_csv_on_a_full_disk_is_named_with_its_file_and_cause_and_analysis_goes_on(tmp_path):
    """Fault: the disk under `live -o` fills up mid-session (a file size limit stands in for it)."""
    import json
    import subprocess
    import sys

    path = tmp_path / "session.csv"
    proc = subprocess.run([sys.executable, "-c", FULL_DISK, os.path.dirname(__file__), str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    line = f"CSV writer: writing {path} failed (File too large)"
    assert out["failed"] and out["went_on"]  # analysis went on after the CSV failed
    assert out["essential"] == line and out["sink_errors"] == [line] and out["error"] is None
    assert out["failures"] == 1  # named once, though closing the file failed again
    assert out["delivered"] == out["analysed"]  # the other subscriber got every result
    assert out["csv_path"] == f"{path}.partial"  # the rows written before stay, marked incomplete
    rows = (tmp_path / "session.csv.partial").read_text().splitlines()
    assert len(rows) > 1 and rows[0].startswith("FaceRectX,")  # the header and the rows up to the limit


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to stand in for a full disk")
def test_a_csv_that_cannot_be_written_at_start_is_one_line_naming_it(tmp_path):
    """Fault: the disk is already full when `live -o` starts (the CSV's file is /dev/full)."""
    path = tmp_path / "session.csv"
    (tmp_path / "session.csv.partial").symlink_to("/dev/full")
    session = LiveSession(Synthetic(n=10), FakeAnalyser(), csv_path=path)
    with pytest.raises(OSError) as caught:
        session.start()
    session.stop()
    assert str(caught.value) == f"writing {path} failed (No space left on device)"


class _FillsUp:
    """A file whose disk fills up after `room` characters."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def write(self, text: str) -> int:
        import errno

        self.room -= len(text)
        if self.room < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.file.write(text)

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_live_o_on_a_full_disk_ends_with_exit_1_and_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    """Fault: the disk under `realtime-feat live -o` fills up: the CSV is what the command exists for."""
    import builtins

    from realtime_feat.recording import fex
    from realtime_feat.cli import live as live_cli, main

    path = tmp_path / "session.csv"
    monkeypatch.setattr(fex, "open", lambda p, *a, **k: _FillsUp(builtins.open(p, *a, **k), 50_000), raising=False)
    monkeypatch.setattr(live_cli, "open_session", lambda args, **options: LiveSession(
        Synthetic(n=10**9, interval=0.002), FakeAnalyser(), **options))
    assert main(["live", "--source", "0", "-o", str(path), "--duration", "600"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"realtime-feat: error: CSV writer: writing {path} failed (No space left on device)"
    assert "wrote" in err[-2] and f"{path}.partial" in err[-2]  # the rows written before the disk filled stay
    assert (tmp_path / "session.csv.partial").read_text().startswith("FaceRectX,")
