"""Reading a recorded session for review: fex.csv's memory-mapped copy (written while recording, or built from
fex.csv), annotations.csv and identities.json applied by `load_session`, the lean recording option, and
`epochs` / `report` on a session with known values (real recordings of synthetic frames and faces)."""
from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realtime_feat.review.annotations import Annotation
from realtime_feat.recording.fex_arrays import FOLDER, RECORDING_LOCK, ArraysBuild, FexArrays, build
from realtime_feat.live.live_session import LiveSession
from realtime_feat.review.recorded_session import RecordedSession, load_session
from realtime_feat.types import Detections, FaceAnalysis, FrameResult
from test_recorder import wait_for
from test_session import FakeAnalyser, Synthetic

LEFT = [4, 4, 20, 20]        # face A: always there
RIGHT, MOVED = [40, 4, 56, 20], [40, 26, 56, 42]   # face B: right, away, then back lower (a new track)


def value(frame: int, face: int, j: int) -> float:
    """What KnownFaces puts in column j of a face's AU, emotion and va blocks."""
    return ((frame + 7 * face + j) % 50) / 50


def chip(xyxy: np.ndarray) -> np.ndarray:
    """The square the networks see (as the analyser's face_rect): CHIP_EXPAND × the box's longer side, around its
    centre."""
    from realtime_feat.recording.fex import CHIP_EXPAND

    centre, side = (xyxy[:, :2] + xyxy[:, 2:]) / 2, CHIP_EXPAND * (xyxy[:, 2:] - xyxy[:, :2]).max(1, keepdims=True)
    return np.concatenate([centre - side / 2, centre + side / 2], 1)


class KnownFaces(FakeAnalyser):
    """Face A in every frame; face B in frames < 25, away until 50, then back 22 px lower (the IoU tracker
    gives it a new track). AUs, emotions and valence/arousal follow `value`; the rest is seeded noise."""

    def analyse(self, frames):
        return [self._result(f) for f in frames]

    def analyse_boxes(self, frames, boxes, identity=False):
        return [self._result(f) for f in frames]

    def _result(self, frame) -> FrameResult:
        time.sleep(self.cost)
        i = frame.index
        boxes = [LEFT] + ([RIGHT] if i < 25 else [MOVED] if i >= 50 else [])
        xyxy = np.array(boxes, np.float32)
        n = len(xyxy)
        known = lambda k: np.array([[value(i, f, j) for j in range(k)] for f in range(n)])  # noqa: E731
        rng = np.random.default_rng(i)
        inside = lambda k: xyxy[:, None, :2] + rng.uniform(0, 16, (n, k, 2))  # noqa: E731
        faces = FaceAnalysis(chip(xyxy), known(20), known(7), known(2) * 2 - 1, rng.uniform(-0.3, 0.3, (n, 2)),
                             rng.uniform(-0.3, 0.3, (n, 6)), np.concatenate([inside(478), rng.normal(size=(n, 478, 1))], 2),
                             inside(68), rng.uniform(0, 1, (n, 52)), rng.normal(size=(n, 512)))
        return FrameResult.of(frame, Detections(xyxy, np.full(n, 0.9, np.float32)), faces, {})


def record_known(root: Path, n: int = 90, leave_out=(), marks=(("stim", 0.25), ("other", 0.45), ("stim", 0.7))) -> Path:
    """A real recording (LiveSession → Recorder) of `n` synthetic frames 10 ms apart, KnownFaces analysing
    (all or nearly all frames), markers at the given seconds after the start."""
    return record(LiveSession(Synthetic(n=n, interval=0.01, size=(64, 64)), KnownFaces(cost=0.001)), root, "known",
                  marks, leave_out=leave_out)


def record(session, root: Path, label: str, marks, **options) -> Path:
    """Record `session` (live, one camera or several) into `root` to the end of its sources, with markers
    at the given seconds after the start."""
    folder = session.start_recording(root, label=label, **options)
    session.start()
    t0 = time.monotonic()
    for marker, at in marks:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        session.mark(marker)
    assert session.wait(timeout=60)
    session.stop()
    return folder


@pytest.fixture(scope="module")
def known(tmp_path_factory) -> Path:
    return record_known(tmp_path_factory.mktemp("known"))


@pytest.fixture
def session_copy(known, tmp_path) -> Path:
    """A copy of the known session that a test may annotate."""
    return Path(shutil.copytree(known, tmp_path / known.name))


def test_the_recorder_writes_fex_csv_s_numbers_as_arrays_beside_it(known, tmp_path):
    fex = pd.read_csv(known / "fex.csv")
    arrays = FexArrays(known / FOLDER)
    assert arrays.complete and arrays.n_rows == len(fex) > 80 and arrays.has_mesh
    for name in ["frame", "t_monotonic", "track_id", "FaceRectX", "FaceScore", "x_0", "y_67", "Pitch", "AU12", "Happy",
                 "valence", "gaze_yaw", "_neutral", "FrameWidth"]:
        assert np.allclose(arrays.column(name), fex[name], rtol=1e-6, equal_nan=True), name
    assert list(arrays.identity_labels(arrays.column("identity"))) == fex["identity"].fillna("").tolist()

    # one analysed frame with two faces: its rows, as a FrameResult the overlays draw from
    frame = int(fex.loc[fex["n_faces"] == 2, "frame"].iloc[3])
    rows = fex[fex["frame"] == frame]
    result = arrays.result(frame)
    assert result.index == frame and result.n_faces == 2 and list(result.track_ids) == list(rows["track_id"])
    rect = rows[["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight"]].to_numpy()
    assert np.allclose(result.detections.xyxy, np.c_[rect[:, :2], rect[:, :2] + rect[:, 2:]])
    assert np.allclose(result.faces.landmarks68[:, :, 1], rows.filter(regex=r"^y_\d+$"), rtol=1e-6)
    assert np.allclose(result.faces.mesh[:, :, 2], rows.filter(regex="^mesh_z_"), rtol=1e-6, atol=1e-6)
    assert np.allclose(result.faces.au, [[value(frame, f, j) for j in range(20)] for f in range(2)])
    assert arrays.result(10_000) is None

    # built again from fex.csv: the same numbers (to float32 and fex.csv's 7 digits)
    build(known / "fex.csv", tmp_path / "again")
    again = FexArrays(tmp_path / "again")
    for block in ("meta", "core", "mesh"):
        assert np.allclose(again.blocks[block], arrays.blocks[block], rtol=1e-6, atol=1e-6, equal_nan=True)
    assert again.labels == arrays.labels


def test_a_killed_recording_reads_to_its_last_whole_row_and_is_rebuilt_from_fex_csv(session_copy):
    folder = session_copy
    (folder / FOLDER / "source.json").unlink()  # no clean end
    core = folder / FOLDER / "core.f32"
    whole = FexArrays(folder / FOLDER).n_rows
    with open(core, "r+b") as f:
        f.truncate(core.stat().st_size - 233 * 4 * 3 - 17)  # three rows and part of one cut off
    assert FexArrays(folder / FOLDER).n_rows == whole - 4
    text = (folder / "fex.csv").read_text()
    (folder / "fex.csv").write_text(text[: len(text) - 900])  # the last row cut mid-way
    json_meta = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps(dict(json_meta, complete=False)))

    session = load_session(folder)
    assert not session.complete
    table = session.table(["AU01"])  # the stale copy is replaced by one built from fex.csv
    assert len(table) == whole - 1 and FexArrays(folder / FOLDER).complete
    assert not list(folder.glob(f"{FOLDER}.*.tmp"))


def test_a_session_being_recorded_is_read_as_far_as_written_and_never_built_over(tmp_path, capsys):
    """Opening a session while it records (`table()`, `report`, `epochs`) reads its rows so far, says so
    once each, and leaves the recorder's own fex.arrays alone: after the end, `table()` holds every row."""
    from realtime_feat.cli import main

    live = LiveSession(Synthetic(n=10**9, interval=0.01, size=(64, 64)), KnownFaces(cost=0.001))
    folder = live.start_recording(tmp_path, label="live")
    live.start()
    try:
        live.mark("stim")
        assert wait_for(lambda: (folder / "video.mp4").is_file() and FexArrays(folder / FOLDER).n_rows > 20
                        and len(pd.read_csv(folder / "frames.csv")) > 20)
        recorders = {p.name: p.stat().st_ino for p in (folder / FOLDER).iterdir()}
        session = load_session(folder)
        assert session.recording and not session.complete
        table = session.table(["AU01"])
        assert len(table) >= 20 and table["frame"].is_monotonic_increasing
        capsys.readouterr()  # this load's own line reaches stderr only where an earlier main() set the console up
        assert main(["report", str(folder), "-o", str(tmp_path / "report.html")]) == 0
        assert main(["epochs", str(folder), "--markers", "stim", "-o", str(tmp_path / "epochs.csv")]) == 0
        assert "still being recorded" in (tmp_path / "report.html").read_text()
        assert {p.name: p.stat().st_ino for p in (folder / FOLDER).iterdir()} == recorders  # nothing built over it
        assert not list(folder.glob(f"{FOLDER}.*"))
    finally:
        live.stop()
    err = capsys.readouterr().err
    assert err.count("is still being recorded: reading the") == 2  # report's and epochs' load, once each
    assert "fex.arrays (once)" not in err
    after = load_session(folder)
    assert not after.recording and after.complete and not (folder / RECORDING_LOCK).exists()
    assert len(after.table()) == len(pd.read_csv(folder / "fex.csv")) == FexArrays(folder / FOLDER).n_rows > len(table)


def test_annotations_and_identity_merges_round_trip_through_the_files_and_load_session(session_copy):
    folder = session_copy
    session = load_session(folder)
    t0 = session.t0
    assert session.annotations.items == [] and session.identities.names == {}
    table = session.table()
    tracks = sorted(int(t) for t in table["track_id"].dropna().unique() if t >= 0)
    assert tracks == [1, 2, 3]  # A; B on the right; B back lower
    a_track = int(table.loc[table["frame"] == 5, "track_id"].min())
    b1, b2 = [t for t in tracks if t != a_track]

    session.annotations.add(Annotation("event", "laugh", t0 + 0.3, t0 + 0.3))
    session.annotations.add(Annotation("exclude", "looked away", t0 + 0.5, t0 + 0.2))  # dragged right to left
    # B is back from frame 50: a span by frames, not seconds (a loaded machine captures them later), its ends
    # between two frames
    captured = session.frames.set_index("frame")["t_monotonic"]
    b_from, b_to = (captured[59] + captured[60]) / 2, (captured[70] + captured[71]) / 2
    session.annotations.add(Annotation("exclude", "B occluded", b_from, b_to, person="Bea"))
    with pytest.raises(ValueError, match="seen together in .* frame"):
        session.merge_tracks([a_track, b1])  # both in frame 0: not one person
    session.merge_tracks([b1, b2])
    session.identities.rename(b2, "Bea")  # a name given to any of the merged tracks is the person's
    session.identities.rename(a_track, "Al")

    again = load_session(folder)
    assert [(a.kind, a.label, a.person) for a in again.annotations] == [
        ("event", "laugh", ""), ("exclude", "looked away", ""), ("exclude", "B occluded", "Bea")]
    assert again.annotations[1].t_start == pytest.approx(t0 + 0.2, abs=1e-6)
    assert json.loads((folder / "identities.json").read_text()) == {"names": {str(a_track): "Al", str(b1): "Bea"},
                                                                    "merged": {str(b2): b1}}
    table = again.table(["AU01"])
    by_track = table[table["track_id"] >= 0].groupby("track_id")["person"].unique()
    assert {t: list(p) for t, p in by_track.items()} == {a_track: ["Al"], b1: ["Bea"], b2: ["Bea"]}
    rel = table["t_monotonic"] - t0
    everyone = (rel >= 0.2 - 1e-6) & (rel <= 0.5 + 1e-6)
    bea_only = table["t_monotonic"].between(b_from - 1e-6, b_to + 1e-6) & (table["person"] == "Bea")
    assert (table["excluded"] == (everyone | bea_only)).all() and bea_only.any()
    frames = again.frames
    assert (frames["excluded"] == ((frames["t_monotonic"] - t0).between(0.2 - 1e-6, 0.5 + 1e-6))).all()
    fex = again.fex  # py-feat's Fex, with the same two columns
    assert type(fex).__name__ == "Fex" and list(fex["person"]) == list(table["person"])
    assert list(fex["excluded"]) == list(table["excluded"])
    events = again.events()
    assert list(events["label"]) == ["stim", "laugh", "other", "stim"] and "review" in set(events["origin"])

    again.identities.unmerge(b2)
    assert set(load_session(folder).table()["person"]) >= {"Al", "Bea", f"#{b2}"}


def test_rows_of_another_analysis_get_the_recorded_persons(session_copy):
    """process SESSION_DIR has its own track ids: each is mapped to the recorded track it overlaps."""
    session = load_session(session_copy)
    session.identities.rename(1, "Al")
    session.annotations.add(Annotation("exclude", "", session.t0, session.t0 + 0.1))
    ours = session.table(["FaceRectX", "FaceRectY", "FaceRectWidth", "FaceRectHeight"])
    other = ours.assign(track_id=ours["track_id"] + 100)  # the same faces under other ids
    labelled = session.label_rows(other)
    assert list(labelled["person"]) == list(ours["person"]) and "Al" in set(labelled["person"])
    assert list(labelled["excluded"]) == list(ours["excluded"]) and labelled["excluded"].any()


CLOCKS = ["t_monotonic", "t_wall"]


class StreamingFaces(KnownFaces):
    """KnownFaces as `process` drives an analyser (batches in, their results out in order), ArcFace on;
    the batch of frame `crash_at` raises (a backend that falls over mid-video)."""

    identity, fallbacks = True, ()

    def __init__(self, crash_at=None):
        super().__init__(cost=0.0)
        self.crash_at = crash_at

    def analyse_stream(self, batches):
        for tag, frames in batches:
            if any(f.index == self.crash_at for f in frames):
                raise RuntimeError("backend fell over")
            yield tag, self.analyse(frames)


def process_sessions(monkeypatch, folders, out, analyser=None) -> int:
    """`realtime-feat process FOLDERS -o OUT`, StreamingFaces in place of the models."""
    from realtime_feat.cli import main

    monkeypatch.setattr("realtime_feat.cli.process.make_analyser", lambda options: analyser or StreamingFaces())
    return main(["process", *map(str, folders), "-o", str(out)])


def test_process_session_dir_keeps_frames_csv_s_clocks_to_the_nanosecond(session_copy, tmp_path, monkeypatch):
    """Every row of the recorded fex.csv and of `process SESSION_DIR`'s CSV has its frame's clocks as
    frames.csv writes them (fex.csv held µs; a rewrite at 7 digits turned t_wall into 1.764412e+09), and the
    CSV has py-feat's Identity and review's person and excluded filled in."""
    session = load_session(session_copy)
    start, end = session.t0 + 0.2, session.t0 + 0.4
    session.annotations.add(Annotation("exclude", "", start, end))
    out = tmp_path / "offline.csv"
    assert process_sessions(monkeypatch, [session_copy], out) == 0
    as_text = {clock: str for clock in CLOCKS}
    frames = pd.read_csv(session_copy / "frames.csv", dtype=as_text).set_index("frame")
    offline = pd.read_csv(out, dtype=as_text)
    assert set(offline["frame"]) == set(frames.index)  # every recorded frame (a row per face)
    for table in (offline, pd.read_csv(session_copy / "fex.csv", dtype=as_text)):
        for clock in CLOCKS:
            want = frames.loc[table["frame"], clock]
            assert np.abs(table[clock].astype(float).to_numpy() - want.astype(float).to_numpy()).max() <= 1e-6, clock
            assert list(table[clock]) == list(want), clock  # the very text: the same float64 once read
    assert offline["Identity"].str.startswith("Person_").all() and offline["person"].notna().any()
    t = offline["t_monotonic"].astype(float)
    assert (offline["excluded"] == ((t >= start) & (t <= end))).all() and offline["excluded"].any()


def test_live_and_rebuilt_arrays_and_the_fex_put_a_row_at_an_exclusion_edge_alike(session_copy):
    """An exclusion starting exactly on a frame's stamp (as the viewer makes one) covers that frame's row
    whether the times come from the recorder's arrays, arrays rebuilt from fex.csv or py-feat's reader
    (with fex.csv in µs, a stamp rounded down fell outside in the last two)."""
    live = FexArrays(session_copy / FOLDER)
    clocks = {name: live.column(name) for name in ["timestamp", "t_monotonic", "t_wall", "t_lsl"]}
    ns = np.round(clocks["t_monotonic"] * 1e9).astype(np.int64)
    edge = float(clocks["t_monotonic"][np.flatnonzero((ns % 1000 > 0) & (ns % 1000 < 500))[0]])  # µs rounds it down
    load_session(session_copy).annotations.add(Annotation("exclude", "", edge, edge + 0.05))
    from_live = load_session(session_copy).table()
    shutil.rmtree(session_copy / FOLDER)
    again = load_session(session_copy)
    rebuilt = again.table()
    for name, values in clocks.items():
        assert np.array_equal(again.arrays.column(name), values, equal_nan=True), name
    for table in (rebuilt, again.fex):
        assert np.array_equal(table["t_monotonic"], from_live["t_monotonic"])
        assert list(table["excluded"]) == list(from_live["excluded"])
    at_edge = from_live["t_monotonic"] == edge
    assert at_edge.any() and from_live.loc[at_edge, "excluded"].all()


BAD_ANNOTATIONS = "kind,label,t_start\nexclude,,1.0\n"  # hand-edited: t_end and person gone


def test_a_session_whose_review_cannot_be_read_is_not_analysed_and_the_others_are(known, tmp_path, monkeypatch,
                                                                                   capsys):
    bad, good = (Path(shutil.copytree(known, tmp_path / name)) for name in ("bad", "good"))
    (bad / "annotations.csv").write_text(BAD_ANNOTATIONS)
    out = tmp_path / "out"
    assert process_sessions(monkeypatch, [bad, good], out) == 1
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "bad" in line]
    assert line.startswith(f"realtime-feat: error: {bad}: not analysed") and str(bad / "annotations.csv") in line
    assert sorted(p.name for p in out.iterdir()) == ["good.csv"]  # nothing of bad's, not even a .partial
    assert {"person", "excluded"} <= set(pd.read_csv(out / "good.csv").columns)


def test_a_crash_mid_way_leaves_no_csv_under_its_final_name(session_copy, tmp_path, monkeypatch):
    """The backend falling over mid-video, or applying the review failing once every row is in: the rows
    stay in `.partial`, and no CSV has the final name (which a `--ray` rerun takes as done)."""
    out = tmp_path / "offline.csv"
    partial = tmp_path / "offline.csv.partial"
    with pytest.raises(RuntimeError, match="backend fell over"):
        process_sessions(monkeypatch, [session_copy], out, StreamingFaces(crash_at=40))
    assert not out.exists() and partial.is_file()

    def fails(self, table):
        raise RuntimeError("review failed")

    monkeypatch.setattr(RecordedSession, "label_rows", fails)
    with pytest.raises(RuntimeError, match="review failed"):
        process_sessions(monkeypatch, [session_copy], out)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("offline")) == [
        partial.name]
    assert set(pd.read_csv(partial)["frame"]) == set(range(len(load_session(session_copy).frames)))


def test_a_lean_recording_leaves_the_mesh_and_embedding_out(tmp_path):
    from feat.utils.io import read_feat

    folder = record_known(tmp_path, n=30, leave_out=("mesh", "embedding"), marks=())
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["fex"]["left_out"] == ["mesh", "embedding"]
    fex = read_feat(str(folder / "fex.csv"))
    assert fex.filter(regex="^mesh_").isna().all().all() and fex.filter(regex=r"^Identity_\d").isna().all().all()
    assert fex.aus.notna().all().all() and len(fex) > 20
    size = (folder / "fex.csv").stat().st_size / len(fex)
    assert size < 6000  # a full row is about 25 kB of text
    arrays = load_session(folder).arrays
    assert not arrays.has_mesh and not (folder / FOLDER / "mesh.f32").exists()
    result = arrays.result(int(fex["frame"].iloc[0]))
    assert result.faces.mesh.shape == (result.n_faces, 478, 3) and np.isnan(result.faces.mesh).all()


def test_a_build_in_progress_is_readable_and_one_build_serves_two_readers(known, tmp_path):
    folder = Path(shutil.copytree(known, tmp_path / "s"))
    shutil.rmtree(folder / FOLDER)
    first, second = ArraysBuild(folder, chunk_rows=10), ArraysBuild(folder, chunk_rows=10)
    first.start()
    seen = []
    while not first.done:
        partial = first.arrays()
        if partial is not None:
            seen.append(partial.n_rows)
        time.sleep(0.001)
    second.start()  # current by now: nothing to build
    assert second.done and second.wait().n_rows == first.wait().n_rows == len(pd.read_csv(folder / "fex.csv"))
    assert seen == sorted(seen)


# -- hand-edited and read-only review files --------------------------------------------------------------------
GOOD_ROWS = "kind,label,t_start,t_end,person\nevent,laugh,{t},{t},\n"


@pytest.mark.parametrize("row, says", [
    ("exclude,away,,{t},\n", "line 3: t_start is empty (seconds on the capture clock, t_monotonic, as in frames.csv)"),
    ("evnt,laugh,{t},{t},\n", "line 3: annotation kind 'evnt': choose event or exclude"),
    ("exclude,away,{t},{t},Bea,x\n",
     "line 3: 1 cell(s) more than the 5 columns ('x'; a comma in a label needs quotes)"),
    ("exclude,away,{t},12:30,\n", "line 3: t_end '12:30' is not a number of seconds"),
])
def test_a_hand_edited_annotations_csv_fails_in_one_line_naming_its_file_and_line(session_copy, row, says, capsys):
    from realtime_feat.cli import main

    t = load_session(session_copy).t0 + 0.2
    path = session_copy / "annotations.csv"
    path.write_text((GOOD_ROWS + row).format(t=t))
    with pytest.raises(ValueError) as raised:
        load_session(session_copy)
    assert str(raised.value) == f"{path}, {says}; fix or remove that row"
    assert main(["epochs", str(session_copy), "--markers", "stim", "-o", str(session_copy / "e.csv")]) == 2
    assert capsys.readouterr().err.strip() == f"realtime-feat: error: {raised.value}"


def test_a_stray_column_in_annotations_csv_is_named(session_copy):
    path = session_copy / "annotations.csv"
    path.write_text("kind,label,t_start,t_end,person,note\n")
    with pytest.raises(ValueError, match=r"annotations.csv: unknown column\(s\) \['note'\] \(the columns are kind, "
                                         r"label, t_start, t_end, person\); fix or remove the file$"):
        load_session(session_copy)


def test_annotation_times_that_match_no_frame_are_said(session_copy, caplog, capsys):
    """Times typed as seconds from the start, not on the capture clock: said when the session loads, and by
    `epochs` for the event whose window then holds no frame."""
    from realtime_feat.cli import main

    session = load_session(session_copy)
    t0 = session.t0
    session.annotations.add(Annotation("exclude", "away", 0.2, 0.4))
    session.annotations.add(Annotation("event", "laugh", 0.3, 0.3))
    session.annotations.add(Annotation("exclude", "kept", t0 + 0.2, t0 + 0.4))
    with caplog.at_level(logging.WARNING, logger="realtime_feat"):
        session = load_session(session_copy)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and all(line.startswith(f"{session_copy / 'annotations.csv'}: the ") for line in said)
    assert "exclude 'away' from 0.200000 to 0.400000 matches no frame" in said[0]
    assert "event 'laugh' at 0.300000 matches no frame" in said[1] and "it applies to no row" in said[1]
    assert session.frames["excluded"].sum() > 0  # the third one, on the capture clock, applies

    out = session_copy / "e.csv"
    assert main(["epochs", str(session_copy), "--markers", "laugh,stim", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "'laugh' (review) #1 at " in err and "no frame was captured in its window (-1 to 3 s)" in err
    assert "'stim' (" not in err  # its windows hold frames
    table = pd.read_csv(out)
    assert (table.loc[table["marker"] == "laugh", "n_rows"] == 0).all()
    assert (table.loc[table["marker"] == "stim", "n_rows"] > 0).any()


@contextmanager
def read_only(folder: Path):
    """`folder` made read-only for real, as a shared or archived session folder is: its mode, and where the
    tests run as root (whom modes do not stop) the immutable attribute."""
    import os
    import subprocess

    mode = folder.stat().st_mode
    folder.chmod(0o555)
    immutable = os.geteuid() == 0
    if immutable and subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        folder.chmod(mode)
        pytest.skip("running as root where chattr +i does not work: no folder is read-only to this test")
    try:
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(mode)


def tracks_seen(session) -> tuple[tuple[int, int, list[int]], tuple[int, int]]:
    """Two tracks seen together (and the frames they share), and two never seen together (B before and after
    its absence at least), whatever tracks a loaded machine's pace gave."""
    table = session.table()
    frames = table[table["track_id"] >= 0].groupby("track_id")["frame"].apply(set)
    pairs = [(int(a), int(b), sorted(frames[a] & frames[b])) for a, b in combinations(frames.index, 2)]
    return next(p for p in pairs if p[2]), next(p[:2] for p in pairs if not p[2])


def test_an_edit_in_a_read_only_folder_raises_names_the_file_and_is_not_kept(session_copy):
    session = load_session(session_copy)
    apart = tracks_seen(session)[1]
    session.annotations.add(Annotation("event", "laugh", session.t0 + 0.3, session.t0 + 0.3))
    session.identities.rename(1, "Al")
    session.identities.merged = {apart[1]: apart[0]}
    session.identities.save()
    before = {name: (session_copy / name).read_bytes() for name in ("annotations.csv", "identities.json")}
    with read_only(session_copy):
        for edit in (lambda: session.annotations.add(Annotation("event", "cry", session.t0, session.t0)),
                     lambda: session.annotations.remove(0),
                     lambda: session.annotations.move(0, session.t0 + 0.5),
                     lambda: session.annotations.edit(0, label="cry"),
                     lambda: session.identities.rename(1, "Bo"),
                     lambda: session.rename_track(1, "Bo"),
                     lambda: session.merge_tracks(list(apart)),
                     lambda: session.identities.unmerge(apart[1])):
            with pytest.raises(OSError, match=r"(annotations.csv|identities.json): not saved \(.*\); the folder is "
                                              r"read-only: copy the session folder somewhere writable to review it$"):
                edit()
    assert [(a.label, a.t_start) for a in session.annotations] == [("laugh", session.t0 + 0.3)]
    assert session.identities.names == {1: "Al"} and session.identities.merged == {apart[1]: apart[0]}
    assert {name: (session_copy / name).read_bytes() for name in before} == before
    assert not [p.name for p in session_copy.iterdir() if p.name.endswith(".tmp")]


# -- identities: one name is one person -------------------------------------------------------------------------
def test_two_tracks_seen_together_cannot_be_given_one_name(session_copy):
    session = load_session(session_copy)
    (a, b, shared), apart = tracks_seen(session)
    session.rename_track(b, "Bea")
    with pytest.raises(ValueError, match=rf"^tracks #{a}, #{b} are seen together in {len(shared)} frame\(s\) \(first: "
                                         rf"frame {shared[0]}\): they cannot both be 'Bea' \(merge or rename them "
                                         r"apart\)$"):
        session.rename_track(a, " Bea ")
    assert session.identities.names == {b: "Bea"}
    session.rename_track(apart[0], "Cy")
    session.rename_track(apart[1], "Cy")  # never seen together: one person by name
    table = load_session(session_copy).table()
    assert set(table.loc[table["track_id"].isin(apart), "person"]) == {"Cy"}


def test_a_merge_keeps_the_merged_tracks_own_name_and_an_unmerge_of_the_base_says_what_it_undid(session_copy):
    session = load_session(session_copy)
    _, (c, d) = tracks_seen(session)
    session.identities.rename(c, "Bea")
    session.identities.rename(d, "Bo")
    assert session.merge_tracks([c, d]) == c
    assert json.loads((session_copy / "identities.json").read_text()) == {"names": {str(c): "Bea", str(d): "Bo"},
                                                                          "merged": {str(d): c}}
    table = load_session(session_copy).table()
    assert set(table.loc[table["track_id"].isin([c, d]), "person"]) == {"Bea"}
    assert session.identities.own_name(d) == "Bo"
    free = next(t for t in table["track_id"].unique() if t >= 0 and t not in (c, d))
    assert session.identities.unmerge(int(free)) == []   # merged with nothing
    assert session.identities.unmerge(c) == [d]          # the base: the track merged into it is apart again
    table = load_session(session_copy).table()
    assert set(table.loc[table["track_id"] == d, "person"]) == {"Bo"}


# -- epochs and report -------------------------------------------------------------------------------------
def expected_epochs(folder: Path, labels, window, baseline, persons: dict, excluded_span) -> pd.DataFrame:
    """The epochs table computed by hand with pandas from fex.csv and markers.csv."""
    fex = pd.read_csv(folder / "fex.csv")
    markers = pd.read_csv(folder / "markers.csv")
    t0 = pd.read_csv(folder / "frames.csv")["t_monotonic"].iloc[0]
    fex = fex[fex["track_id"] >= 0].copy()
    fex["person"] = fex["track_id"].map(persons)
    rel = fex["t_monotonic"] - t0
    fex["excluded"] = (rel >= excluded_span[0]) & (rel <= excluded_span[1])
    signals = [c for c in fex.columns if c.startswith("AU")] + ["Neutral", "Happy", "Sad", "Surprise", "Fear",
                                                                 "Disgust", "Anger", "valence", "arousal"]
    out = []
    for _, m in markers[markers["label"].isin(labels)].iterrows():
        def part(span):
            return fex[(fex["t_monotonic"] >= m.t_monotonic + span[0]) & (fex["t_monotonic"] <= m.t_monotonic + span[1])]

        win = part(window)
        kept = win[~win["excluded"]]
        base = part(baseline)
        base = base[~base["excluded"]]
        for person in sorted(set(persons.values())):
            level = base.loc[base["person"] == person, signals].mean()
            mine = kept[kept["person"] == person]
            for s in signals:
                out.append({"marker": m.label, "t_marker": m.t_monotonic - t0, "person": person, "signal": s,
                            "mean": mine[s].mean() - level[s],
                            "peak": mine[s].max() - level[s], "baseline": level[s], "n_rows": len(mine),
                            "n_excluded": int((win["excluded"] & (win["person"] == person)).sum())})
    return pd.DataFrame(out)


def test_epochs_equal_a_pandas_computation_and_leave_excluded_rows_out(session_copy, capsys):
    from realtime_feat.cli import main

    session = load_session(session_copy)
    session.merge_tracks([2, 3])
    session.annotations.add(Annotation("exclude", "away", session.t0 + 0.3, session.t0 + 0.35))
    out = session_copy / "epochs.csv"
    assert main(["epochs", str(session_copy), "--markers", "stim", "--window", "-0.2,0.15", "--baseline",
                 "-0.2,0", "-o", str(out)]) == 0
    got = pd.read_csv(out)
    want = expected_epochs(session_copy, ["stim"], (-0.2, 0.15), (-0.2, 0), {1: "#1", 2: "#2", 3: "#2"}, (0.3, 0.35))
    assert len(got) == len(want) == 2 * 2 * 29  # two "stim" markers × two people × 29 signals
    assert list(got["occurrence"].unique()) == [1, 2] and set(got["person"]) == {"#1", "#2"}
    for col in ("mean", "peak", "baseline"):
        assert np.allclose(got[col], want[col], atol=2e-6, equal_nan=True), col
    assert np.abs(got["t_marker"] - want["t_marker"]).max() <= 1e-9  # a capture-clock time: to the ns, not 6 digits
    assert list(got["n_rows"]) == list(want["n_rows"]) and list(got["n_excluded"]) == list(want["n_excluded"])
    assert got["n_excluded"].sum() > 0  # the exclusion fell inside a window: its rows were counted, not used
    assert "excluded row(s) left out" in capsys.readouterr().err


def test_epochs_without_the_labels_and_with_a_bad_window_fail_in_one_line(known, capsys):
    from realtime_feat.cli import main

    assert main(["epochs", str(known), "--markers", "nothing", "-o", str(known.parent / "x.csv")]) == 2
    assert main(["epochs", str(known), "--markers", "stim", "--window", "2,-1", "-o", str(known.parent / "x.csv")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"realtime-feat: error: {known}: no marker or event labelled nothing (labels there: other, stim)",
                     "realtime-feat: error: --window: START must be before END, got '2,-1'"]


def test_report_writes_one_self_contained_file_with_its_plots(session_copy, capsys):
    import base64
    import re

    from realtime_feat.cli import main

    load_session(session_copy).identities.rename(1, "Al")
    out = session_copy / "report.html"
    assert main(["report", str(session_copy), "-o", str(out)]) == 0
    text = out.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    # overview, a time course per person (Al, #2, #3), and one marker-locked plot per label (stim, other)
    assert len(images) == 1 + 3 + 2
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "src=\"http" not in text and "<script" not in text  # nothing to fetch: opens offline
    assert ">Al<" in text and "stim (2 occurrences)" in text and "captured" in text


# -- several cameras: one review model ---------------------------------------------------------------------
def record_pair(root: Path) -> Path:
    """A real two-camera recording (MultiSession → a subfolder per camera), cameras "left" and "right"
    seeing the same KnownFaces (so the same track numbers), one "stim" marker 0.3 s in."""
    from realtime_feat.live.multi_session import MultiSession

    sources = [Synthetic(n=60, interval=0.01, size=(64, 64)) for _ in range(2)]
    sources[0].id, sources[1].id = "left", "right"
    return record(MultiSession(sources, KnownFaces(cost=0.001)), root, "pair", [("stim", 0.3)])


@pytest.fixture
def pair_copy(tmp_path_factory, tmp_path) -> Path:
    """A copy, that a test may annotate, of one two-camera recording made for the module."""
    cache = tmp_path_factory.getbasetemp() / "pair"
    if not cache.exists():
        record_pair(tmp_path_factory.mktemp("pair", numbered=False))
    (recorded,) = cache.iterdir()
    return Path(shutil.copytree(recorded, tmp_path / recorded.name))


def test_epochs_and_report_of_a_two_camera_session_cover_each_camera(pair_copy, capsys):
    """Several cameras: `epochs` gives each camera's rows with a `camera` column, `report` one file per
    camera, both from the session's top folder."""
    from realtime_feat.cli import main

    folder, out = pair_copy, pair_copy / "epochs.csv"
    assert main(["epochs", str(folder), "--markers", "stim", "--window", "-0.1,0.1", "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["camera", "marker"] and set(table["camera"]) == {"left", "right"}
    for camera, rows in table.groupby("camera"):  # each camera's own people, the one marker in each
        assert set(rows["occurrence"]) == {1} and rows["n_rows"].max() > 0, camera
    assert main(["report", str(folder), "-o", str(folder / "report.html")]) == 0
    assert sorted(p.name for p in folder.glob("report*.html")) == ["report-left.html", "report-right.html"]


def test_a_session_wide_exclusion_leaves_out_rows_of_every_camera_a_cameras_own_only_its(pair_copy, capsys):
    """annotations.csv at the top applies to every camera, a camera's own to it alone: in load_session
    (top or a camera's folder), `epochs`, `report` and the rows `process SESSION_DIR` writes."""
    from realtime_feat.cli import main
    from realtime_feat.offline.jobs import jobs_for
    from realtime_feat.offline.process import video_frames, write_results
    from realtime_feat.analysis.tracking import FaceTracker

    session = load_session(pair_copy)
    t = np.unique(session.table()["t_monotonic"])  # spans where the rows are, however fast they came

    def edge(q: float) -> float:
        """A time between two rows (the widest gap near quantile q): no row sits on a span's edge."""
        k = int(q * len(t))
        gaps = np.diff(t[k - 5:k + 5])
        return float(t[k - 5 + np.argmax(gaps)] + gaps.max() / 2)

    wide, left = (edge(0.2), edge(0.4)), (edge(0.6), edge(0.8))
    session.annotations.add(Annotation("exclude", "everyone looked away", *wide))
    session.cameras["left"].annotations.add(Annotation("exclude", "left lens covered", *left))
    mid = (wide[1] + left[0]) / 2
    session.annotations.add(Annotation("event", "mid", mid, mid))  # a session-wide event: every camera's
    assert (pair_copy / "annotations.csv").is_file() and (pair_copy / "left" / "annotations.csv").is_file()

    def expected(t: pd.Series, camera: pd.Series) -> pd.Series:
        return t.between(*wide) | (t.between(*left) & (camera == "left"))

    again = load_session(pair_copy)
    table = again.table()
    assert (table["excluded"] == expected(table["t_monotonic"], table["camera"])).all()
    right = table["camera"] == "right"
    assert (table["t_monotonic"].between(*wide) & right).any() and (table["t_monotonic"].between(*left) & right).any()
    assert (again.frames["excluded"] == expected(again.frames["t_monotonic"], again.frames["camera"])).all()
    alone = load_session(pair_copy / "left").table()  # a camera's folder read alone: the same rows excluded
    assert list(alone["excluded"]) == list(table.loc[table["camera"] == "left", "excluded"])

    out = pair_copy / "epochs.csv"  # a window over both spans: left's rows in both are excluded, right's in one
    window = f"{wide[0] - mid - 1e-3:.6f},{left[1] - mid + 1e-3:.6f}"
    assert main(["epochs", str(pair_copy), "--markers", "mid", "--window", window, "-o", str(out)]) == 0
    got = pd.read_csv(out).drop_duplicates(["camera", "person"]).groupby("camera")["n_excluded"].sum().to_dict()
    left_out = table["excluded"] & (table["person"] != "")
    assert got == {c: int((left_out & (table["camera"] == c)).sum()) for c in ("left", "right")}
    assert got["left"] > got["right"] > 0

    assert main(["report", str(pair_copy), "-o", str(pair_copy / "r.html")]) == 0
    for camera, spans in (("left", 2), ("right", 1)):
        assert f"<td>{spans} span(s)," in (pair_copy / f"r-{camera}.html").read_text(), camera

    for job in jobs_for([pair_copy], []):  # process SESSION_DIR: one CSV per camera, the same spans excluded
        faces, tracker = KnownFaces(cost=0), FaceTracker(use_embeddings=False, clock="source")
        pairs = ((job.name, faces._result(f)) for f in video_frames(job))
        offline = pd.read_csv(write_results(pairs, pair_copy / f"{job.name}.csv", job, tracker, identity=False).path)
        camera = job.session.name
        stamps = offline["frame"].map(session.cameras[camera].frames.set_index("frame")["t_monotonic"])
        assert (offline["excluded"] == expected(stamps, pd.Series(camera, offline.index))).all()
        assert offline["excluded"].any() and set(offline["person"].dropna()) == {f"{camera}#{i}" for i in (1, 2, 3)}


def test_merge_tracks_works_on_a_several_camera_session_one_camera_at_a_time(pair_copy):
    session = load_session(pair_copy)
    with pytest.raises(ValueError, match="say whose tracks to merge .camera= one of left, right"):
        session.merge_tracks([2, 3])
    with pytest.raises(ValueError, match="seen together"):  # both in frame 0 of left
        session.merge_tracks([1, 2], camera="left")
    assert session.merge_tracks([2, 3], camera="left") == 2
    assert json.loads((pair_copy / "left" / "identities.json").read_text())["merged"] == {"3": 2}
    assert not (pair_copy / "identities.json").exists() and not (pair_copy / "right" / "identities.json").exists()
    table = load_session(pair_copy).table()
    persons = table[table["person"] != ""].groupby(["camera", "track_id"])["person"].first().to_dict()
    assert persons == {("left", 1): "left#1", ("left", 2): "left#2", ("left", 3): "left#2",
                       ("right", 1): "right#1", ("right", 2): "right#2", ("right", 3): "right#3"}


def test_the_same_track_number_in_two_cameras_is_two_persons_unless_named(pair_copy, capsys, caplog):
    from realtime_feat.cli import main

    (pair_copy / "identities.json").write_text('{"names": {"1": "Al"}}')  # track 1 of which camera?
    with caplog.at_level("WARNING", logger="realtime_feat"):
        session = load_session(pair_copy)
    assert "identities.json: not applied: a several-camera session's renames and merges are each camera's" in caplog.text
    table = session.table()
    assert set(table.loc[table["track_id"] == 1, "person"]) == {"left#1", "right#1"}
    session.cameras["left"].identities.rename(1, "Al")  # a name is one person in every camera
    session.cameras["right"].identities.rename(1, "Al")
    table = load_session(pair_copy).table()
    assert set(table.loc[table["track_id"] == 1, "person"]) == {"Al"}
    assert set(table.loc[table["track_id"] == 2, "person"]) == {"left#2", "right#2"}
    out = pair_copy / "epochs.csv"
    assert main(["epochs", str(pair_copy), "--markers", "stim", "-o", str(out)]) == 0
    people = pd.read_csv(out).groupby("camera")["person"].unique()
    assert {camera: sorted(p) for camera, p in people.items()} == {"left": ["Al", "left#2", "left#3"],
                                                                    "right": ["Al", "right#2", "right#3"]}


def test_epochs_with_a_label_in_one_camera_only_works_for_all(pair_copy, capsys):
    """An event only the left camera's review has: epochs of the session gives left's rows (no camera
    fails); occurrence counts a label over the whole session."""
    from realtime_feat.cli import main

    session = load_session(pair_copy)
    stim = session.events().query("label == 'stim'")["t_monotonic"].iloc[0]
    session.cameras["left"].annotations.add(Annotation("event", "stim", stim + 0.1, stim + 0.1))
    session.cameras["left"].annotations.add(Annotation("event", "laugh", stim - 0.1, stim - 0.1))
    out = pair_copy / "epochs.csv"
    assert main(["epochs", str(pair_copy), "--markers", "laugh", "-o", str(out)]) == 0
    assert set(pd.read_csv(out)["camera"]) == {"left"}
    assert main(["epochs", str(pair_copy), "--markers", "stim,laugh", "-o", str(out)]) == 0
    table = pd.read_csv(out)
    seen = table.groupby("camera")[["marker", "occurrence"]].apply(lambda t: sorted(set(map(tuple, t.values))))
    assert seen.to_dict() == {"left": [("laugh", 1), ("stim", 1), ("stim", 2)], "right": [("stim", 1)]}
    assert main(["epochs", str(pair_copy / "right"), "--markers", "laugh", "-o", str(out)]) == 0  # a camera alone
    assert pd.read_csv(out).empty
    assert main(["epochs", str(pair_copy), "--markers", "nothing", "-o", str(out)]) == 2
    assert "no marker or event labelled nothing (labels there: laugh, stim)" in capsys.readouterr().err


def test_t_marker_and_every_cameras_times_are_from_the_sessions_first_frame(pair_copy):
    from realtime_feat.review.epochs import epochs
    from realtime_feat.review.playback import SessionReview

    session = load_session(pair_copy)
    firsts = {name: float(c.frames["t_monotonic"].iloc[0]) for name, c in session.cameras.items()}
    assert firsts["left"] != firsts["right"]  # the cameras started apart: each own t0 would differ
    t0 = min(firsts.values())
    assert session.t0 == t0 and all(c.t0 == t0 for c in session.cameras.values())
    assert load_session(pair_copy / "right").t0 == t0
    stim = float(session.markers["t_monotonic"].iloc[0])
    table = epochs(session, ["stim"], (-0.1, 0.1))
    assert np.allclose(table["t_marker"], stim - t0, atol=1e-9, rtol=0) and set(table["camera"]) == {"left", "right"}
    for name, camera in session.cameras.items():  # the viewer's time axis is the session's too
        review = SessionReview(camera)
        try:
            assert review.t[0] == pytest.approx(firsts[name] - t0, abs=1e-9)
            assert list(review.markers()["t"]) == pytest.approx([stim - t0], abs=1e-9)
        finally:
            review.close()


def test_the_small_face_flag_measures_the_face_not_the_chip_around_it(known):
    """KnownFaces' faces are 16 px boxes: fex.csv's FaceRect holds the 19.2 px chip around each."""
    from realtime_feat.review import quality

    table = load_session(known).table(quality.QC_COLUMNS)
    assert np.allclose(table.loc[table["person"] != "", ["FaceRectWidth", "FaceRectHeight"]], 16 * 1.2)
    small = lambda px: quality.person_quality(table, 90, min_face_px=px)["small"]  # noqa: E731
    assert (small(17) == 1).all() and (small(15.5) == 0).all()
