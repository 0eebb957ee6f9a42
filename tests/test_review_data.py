"""Reading a recorded session for review: fex.csv's memory-mapped copy (written while recording, or built from
fex.csv), annotations.csv and identities.json applied by `load_session`, the lean recording option, and
`epochs` / `report` on a session with known values (real recordings of synthetic frames and faces)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from realtime_feat.review.annotations import Annotation
from realtime_feat.recording.fex_arrays import FOLDER, ArraysBuild, FexArrays, build
from realtime_feat.live.live_session import LiveSession
from realtime_feat.review.recorded_session import RecordedSession, load_session
from realtime_feat.types import Detections, FaceAnalysis, FrameResult
from test_session import FakeAnalyser, Synthetic

LEFT = [4, 4, 20, 20]        # face A: always there
RIGHT, MOVED = [40, 4, 56, 20], [40, 26, 56, 42]   # face B: right, away, then back lower (a new track)


def value(frame: int, face: int, j: int) -> float:
    """What KnownFaces puts in column j of a face's AU, emotion and va blocks."""
    return ((frame + 7 * face + j) % 50) / 50


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
        faces = FaceAnalysis(xyxy, known(20), known(7), known(2) * 2 - 1, rng.uniform(-0.3, 0.3, (n, 2)),
                             rng.uniform(-0.3, 0.3, (n, 6)), np.concatenate([inside(478), rng.normal(size=(n, 478, 1))], 2),
                             inside(68), rng.uniform(0, 1, (n, 52)), rng.normal(size=(n, 512)))
        return FrameResult.of(frame, Detections(xyxy, np.full(n, 0.9, np.float32)), faces, {})


def record_known(root: Path, n: int = 90, leave_out=(), marks=(("stim", 0.25), ("other", 0.45), ("stim", 0.7))) -> Path:
    """A real recording (LiveSession → Recorder) of `n` synthetic frames 10 ms apart, KnownFaces analysing
    (all or nearly all frames), markers at the given seconds after the start."""
    session = LiveSession(Synthetic(n=n, interval=0.01, size=(64, 64)), KnownFaces(cost=0.001))
    folder = session.start_recording(root, label="known", leave_out=leave_out)
    session.start()
    t0 = time.monotonic()
    for label, at in marks:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        session.mark(label)
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
    session.annotations.add(Annotation("exclude", "B occluded", t0 + 0.6, t0 + 0.7, person="Bea"))
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
    bea_only = (rel >= 0.6 - 1e-6) & (rel <= 0.7 + 1e-6) & (table["person"] == "Bea")
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


def test_epochs_and_report_of_a_two_camera_session_cover_each_camera(tmp_path, capsys):
    """Several cameras: `epochs` gives each camera's rows with a `camera` column, `report` one file per
    camera, both from the session's top folder."""
    from realtime_feat.cli import main
    from realtime_feat.live.multi_session import MultiSession

    sources = [Synthetic(n=60, interval=0.01, size=(64, 64)) for _ in range(2)]
    sources[0].id, sources[1].id = "left", "right"
    session = MultiSession(sources, KnownFaces(cost=0.001))
    folder = session.start_recording(tmp_path, label="pair")
    session.start()
    time.sleep(0.3)
    session.mark("stim")
    assert session.wait(timeout=60)
    session.stop()
    out = tmp_path / "epochs.csv"
    assert main(["epochs", str(folder), "--markers", "stim", "--window", "-0.1,0.1", "-o", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["camera", "marker"] and set(table["camera"]) == {"left", "right"}
    for camera, rows in table.groupby("camera"):  # each camera's own people, the one marker in each
        assert set(rows["occurrence"]) == {1} and rows["n_rows"].max() > 0, camera
    assert main(["report", str(folder), "-o", str(tmp_path / "report.html")]) == 0
    assert sorted(p.name for p in tmp_path.glob("report*.html")) == ["report-left.html", "report-right.html"]
