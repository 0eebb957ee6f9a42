#!/usr/bin/env python
"""Reviewing an hour-long session: the viewer's first frame with its overlays (the first open, with the
copy the recorder writes and with the copy built from fex.csv; a later open), a seek anywhere with overlays,
playing, resident memory, and `epochs` / `report` on the hour. Prints one table.

The session is synthetic and written the way `record` writes one: 30 fps 1280×720 H.264 in fragmented MP4
(libx264 ultrafast, zerolatency, GOP 60, PTS on a 1 µs time base; a 30 s clip encoded once and repeated,
packets copied), frames.csv, a 2,200-column fex.csv with one face per frame (py-feat's column names; values
that move with the face drawn in the video), the fex.arrays/ copy, markers every 60 s, metadata.json. Each
viewer measure runs in a fresh process (Qt offscreen) that opens the folder as `realtime-feat view` does.

    python scripts/bench_viewer.py [--minutes 60] [--seeks 40] [--folder DIR] [--keep]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

FPS, CLIP_S, W, H = 30, 30, 1280, 720


# -- the synthetic session -----------------------------------------------------------------------------------
def face_track(n: int) -> np.ndarray:
    """(n, 4) x, y, w, h of a face moving over the 30 s loop."""
    k = np.arange(n) / (FPS * CLIP_S) * 2 * np.pi
    return np.stack([500 + 250 * np.sin(k), 220 + 80 * np.sin(2 * k), np.full(n, 260.0), np.full(n, 300.0)], 1)


def write_video(path: Path, minutes: float) -> int:
    """A 30 s clip (a textured background, the face as a bright ellipse) encoded as the recorder encodes,
    its packets repeated to fill `minutes`. Returns the number of frames."""
    import av
    import cv2

    clip = FPS * CLIP_S
    boxes = face_track(clip)
    yy, xx = np.mgrid[0:H, 0:W]
    base = (((xx // 40 + yy // 40) % 2) * 60 + 60).astype(np.uint8)
    clip_path = path.with_name("clip.mp4")
    with av.open(str(clip_path), "w") as tmp:
        stream = tmp.add_stream("libx264")
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1_000_000)
        stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        stream.codec_context.gop_size = 60
        rng = np.random.default_rng(0)
        for j in range(clip):
            img = np.repeat(np.roll(base, j * 4, axis=1)[:, :, None], 3, 2)
            x, y, w, h = boxes[j]
            cv2.ellipse(img, (int(x + w / 2), int(y + h / 2)), (int(w / 2), int(h / 2)), 0, 0, 360, (230, 190, 160), -1)
            img = np.clip(img.astype(np.int16) + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)  # sensor noise
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = round(j * 1e6 / FPS), Fraction(1, 1_000_000)
            for packet in stream.encode(frame):
                tmp.mux(packet)
        for packet in stream.encode():
            tmp.mux(packet)
    loops = int(np.ceil(minutes * 60 / CLIP_S))
    with av.open(str(clip_path)) as src, av.open(str(path), "w", format="mp4", options={
            "movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "500000",
            "video_track_timescale": "1000000"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for k in range(loops):
            src.seek(0)
            offset = k * CLIP_S * 1_000_000
            for packet in src.demux(src.streams.video[0]):
                if packet.dts is None:
                    continue
                scale = packet.time_base * 1_000_000  # the clip's own time base, in µs
                packet.pts, packet.dts = round(packet.pts * scale) + offset, round(packet.dts * scale) + offset
                packet.time_base, packet.stream = Fraction(1, 1_000_000), stream
                out.mux(packet)
    clip_path.unlink()
    return loops * clip


def write_tables(folder: Path, n: int) -> None:
    """frames.csv, fex.csv (one face per frame; the values of a 30 s pool of rows), the fex.arrays/ copy as the
    recorder writes it, markers.csv and metadata.json."""
    from realtime_feat.recording.fex import N_VALUES, columns
    from realtime_feat.recording.fex_arrays import FOLDER, ArraysWriter, CORE, MESH, META

    t0, wall0 = 1000.0, 1.8e9
    t = t0 + np.arange(n) / FPS
    video_time = np.round((t - t0) * 1e6) / 1e6
    with open(folder / "frames.csv", "w") as f:
        f.write("frame,t_monotonic,t_wall,t_lsl,analysed,n_faces,in_video,video_time\n")
        f.writelines(f"{i},{t[i]:.9f},{wall0 + t[i] - t0:.9f},,1,1,1,{video_time[i]:.6f}\n" for i in range(n))
    cols = columns(False)
    clip = FPS * CLIP_S
    rng = np.random.default_rng(1)
    box = face_track(clip)
    pool = np.full((clip, N_VALUES), np.nan)
    pool[:, :4], pool[:, 4] = box, rng.uniform(0.95, 1.0, clip)
    pool[:, 5:73] = box[:, :1] + rng.uniform(0.15, 0.85, (clip, 68)) * box[:, 2:3]      # landmarks x
    pool[:, 73:141] = box[:, 1:2] + rng.uniform(0.15, 0.85, (clip, 68)) * box[:, 3:4]   # landmarks y
    pool[:, 141:147] = rng.uniform(-0.4, 0.4, (clip, 6))
    phase = np.arange(clip)[:, None] / clip * 2 * np.pi
    pool[:, 147:167] = 0.5 + 0.45 * np.sin(phase + np.arange(20))                        # AUs
    emo = np.exp(np.sin(phase + np.arange(7)))
    pool[:, 167:174] = emo / emo.sum(1, keepdims=True)
    pool[:, 174:176] = 0.8 * np.sin(phase + np.arange(2))
    pool[:, 176:179] = rng.uniform(-0.3, 0.3, (clip, 3))
    pool[:, 179:691] = rng.normal(size=(clip, 512))
    pool[:, 691:1169] = box[:, :1] + rng.uniform(0.1, 0.9, (clip, 478)) * box[:, 2:3]   # mesh x
    pool[:, 1169:1647] = box[:, 1:2] + rng.uniform(0.1, 0.9, (clip, 478)) * box[:, 3:4]  # mesh y
    pool[:, 1647:2125] = rng.normal(size=(clip, 478))
    pool[:, 2125:2177] = rng.uniform(0, 1, (clip, 52))
    pool[:, 2177:2179] = H, W
    text = [",".join(f"{v:.7g}" for v in row) for row in pool]
    arrays = ArraysWriter(folder / FOLDER, cols[:N_VALUES])
    with open(folder / "fex.csv", "w") as f:
        f.write(",".join(cols) + "\n")
        for start in range(0, n, clip):
            idx = np.arange(start, min(start + clip, n))
            track = np.where(idx < 3, -1, 1)
            f.writelines(f"{text[i % clip]},camera,{i},,,{t[i]:.6f},{wall0 + t[i] - t0:.6f},,1,{track[k]},unknown,"
                         f"0.3\n" for k, i in enumerate(idx))
            meta = np.full((len(idx), len(META)), np.nan)
            meta[:, 0], meta[:, 2], meta[:, 3], meta[:, 5], meta[:, 6], meta[:, 8] = (
                idx, t[idx], wall0 + t[idx] - t0, 1, track, 0.3)
            rows = pool[idx % clip]
            arrays.append_rows(meta, ["unknown"] * len(idx), rows[:, CORE], rows[:, MESH])
    arrays.close(folder / "fex.csv")
    labels = ["stim A", "stim B"]
    with open(folder / "markers.csv", "w") as f:
        f.write("label,origin,t_monotonic,t_wall,t_lsl,frame\n")
        for k, at in enumerate(range(30, int(n / FPS) - 5, 60)):
            f.write(f"{labels[k % 2]},terminal,{t0 + at:.9f},{wall0 + at:.9f},,{at * FPS}\n")
    (folder / "metadata.json").write_text(json.dumps({
        "label": "bench", "complete": True, "codec": "h264", "analyser": {"describe": "synthetic"},
        "fex": {"left_out": []}, "counts": {"captured": n, "encoded": n, "analysed": n, "dropped": {}},
        "video": {"width": W, "height": H, "pts_zero_t_monotonic_ns": int(t0 * 1e9)}}))


def pd_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


# -- one viewer process -----------------------------------------------------------------------------------------
def rss_mb() -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return float(status["VmRSS"].split()[0]) / 1024, float(status["VmHWM"].split()[0]) / 1024


def child(folder: Path, seeks: int, play_s: float) -> None:
    """Open the folder as `realtime-feat view` does; print RESULT first-frame time (monotonic), the copy's
    completion time, seek times, frames shown per second while playing, RSS."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from realtime_feat import load_session
    from realtime_feat.ui.review_window import build_review_window

    imported = time.monotonic()
    app = QApplication([])

    def until(condition, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise SystemExit("timed out")
            app.processEvents()
            time.sleep(0.001)

    win = build_review_window(load_session(folder))
    win.show()
    until(lambda: win.shown_position == 0 and win.video.current.result.n_faces == 1 and len(win.video.landmarks.data))
    first = time.monotonic()
    until(lambda: not win.review.loading)
    until(lambda: win.plots_drawn)  # the people and the whole-session curves
    copied = time.monotonic()
    rng = random.Random(0)
    times = []
    for position in (rng.randrange(len(win.review)) for _ in range(seeks)):
        started = time.perf_counter()
        win.seek(position)
        until(lambda: win.shown_position == position and win.video.current.result.index == win.review.frames[position])
        app.processEvents()  # painted
        times.append((time.perf_counter() - started) * 1e3)
    shown = []
    win.player.shown.connect(lambda s, info: shown.append(info.position))
    win.toggle_play()
    end = time.monotonic() + play_s
    until(lambda: time.monotonic() > end)
    win.toggle_play()
    print("RESULT", json.dumps({"imported": imported, "first": first, "copied": copied, "seeks_ms": times,
                                "play_fps": len(set(shown)) / play_s, "rss": rss_mb()}), flush=True)
    win.close()


def run_child(folder: Path, seeks: int, play_s: float) -> tuple[dict, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, __file__, "--child", str(folder), "--seeks", str(seeks),
                           "--play", str(play_s)], capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit(f"viewer failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[0][7:]), started


def timed_cli(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one `realtime-feat` command in its own process."""
    started = time.perf_counter()
    code = ("import sys; from realtime_feat.cli import main; code = main(sys.argv[1:]); "
            "sys.path.insert(0, %r); from bench_viewer import rss_mb; print('RSS', rss_mb()[1]); sys.exit(code)"
            % str(Path(__file__).resolve().parent))
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed:\n{proc.stderr[-3000:]}")
    rss = float(next(x for x in proc.stdout.splitlines() if x.startswith("RSS ")).split()[1])
    return time.perf_counter() - started, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--seeks", type=int, default=40)
    ap.add_argument("--play", type=float, default=5.0, help="seconds of playing at 1x")
    ap.add_argument("--folder", type=Path, help="the session folder (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the session folder")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.seeks, a.play)
    scratch = None if a.folder else Path(tempfile.mkdtemp(prefix="bench_viewer_"))
    folder = a.folder or scratch / "20261129-120000_bench"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        n = write_video(folder / "video.mp4", a.minutes)
        write_tables(folder, n)
        made = time.perf_counter() - t
        fex_gb = (folder / "fex.csv").stat().st_size / 1e9
        video_gb = (folder / "video.mp4").stat().st_size / 1e9
        opens = {}
        opens["first open, copy written while recording"] = run_child(folder, a.seeks, a.play)
        shutil.rmtree(folder / "fex.arrays")
        opens["first open, no copy (built from fex.csv)"] = run_child(folder, a.seeks, a.play)
        opens["later open"] = run_child(folder, a.seeks, a.play)
        rows = []
        for name, (got, started) in opens.items():
            rows += [[f"{name}: first frame with its overlays",
                      f"{got['first'] - started:.1f} s (imports {got['imported'] - started:.1f} s)",
                      "≤ 2 s" if name == "later open" else "≤ 10 s"],
                     [f"{name}: whole-session plots drawn", f"{got['copied'] - started:.1f} s", ""]]
        seeks = np.concatenate([got["seeks_ms"] for got, _ in opens.values()])
        rows.append([f"seek anywhere with overlays, {W}×{H} ({len(seeks)} seeks: median / p95 / max)",
                     f"{np.median(seeks):.0f} / {np.percentile(seeks, 95):.0f} / {seeks.max():.0f} ms", "≤ 200 ms"])
        rows.append([f"playing at 1× for {a.play:g} s: frames shown per second (median of the opens)",
                     f"{np.median([got['play_fps'] for got, _ in opens.values()]):.1f}", f"{FPS} recorded"])
        rows.append(["viewer peak resident memory (largest of the opens)",
                     f"{max(got['rss'][1] for got, _ in opens.values()):.0f} MB", "≤ 1536 MB"])
        markers = ["--markers", "stim A,stim B", "--window", "-1,3", "--baseline", "-1,0"]
        s, mb = timed_cli(["epochs", str(folder), *markers, "-o", str(folder / "epochs.csv")])
        rows.append([f"`epochs` ({len(pd_lines(folder / 'markers.csv'))} markers, window -1,3, baseline -1,0)",
                     f"{s:.1f} s, peak RSS {mb:.0f} MB", "≤ 60 s"])
        s, mb = timed_cli(["report", str(folder), "-o", str(folder / "report.html")])
        rows.append(["`report`", f"{s:.1f} s, peak RSS {mb:.0f} MB", "≤ 60 s"])
    finally:
        if not a.keep:
            shutil.rmtree(scratch or folder, ignore_errors=True)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchtable import print_table

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), "?")
    print_table(f"bench_viewer: {a.minutes:g} min at {FPS} fps, {W}x{H}, 1 face: {n} rows, fex.csv {fex_gb:.2f} GB, "
                f"video {video_gb:.2f} GB (made in {made:.0f} s); {cpu}, {os.cpu_count()} cores; "
                f"{time.strftime('%Y-%m-%d %H:%M %Z')}",
                ["measure", "value", "target"], rows)


if __name__ == "__main__":
    main()
