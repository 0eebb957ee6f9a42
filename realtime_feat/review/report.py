"""`realtime-feat report`: one self-contained HTML file about a recorded session (its plots embedded as PNG,
so it opens offline and travels as one file): duration, rates, drops and gaps, faces per frame, people and
their share of frames, quality flags per person, per-person time courses with markers, and marker-locked
averages. Excluded rows (annotations.csv) are left out of every plot and counted in the tables;
identities.json names the people. Plots with matplotlib's Agg canvas (no GUI backend, no pyplot state).
A camera of a several-camera session is reported on the session's time zero, with the session's markers and
session-wide annotations applied too.
"""
from __future__ import annotations

import base64
import html
import io
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import quality

PEOPLE_PLOTTED = 8
PALETTE = ["#ffc400", "#00c8ff", "#ff50a0", "#78e650", "#c88cff", "#ff8c3c", "#50ffd2", "#888888"]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _binned(t: np.ndarray, values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of `values` in each bin of `edges` (NaN where a bin has none); NaN values left out."""
    ok = np.isfinite(values)
    k = np.searchsorted(edges, t[ok], "right") - 1
    inside = (k >= 0) & (k < len(edges) - 1)
    sums = np.bincount(k[inside], values[ok][inside], minlength=len(edges) - 1)
    counts = np.bincount(k[inside], minlength=len(edges) - 1)
    with np.errstate(invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _shade(ax, spans: quality.Spans, t0: float, colour: str, label: str, scale: float) -> None:
    for i, (a, b) in enumerate(zip(spans.start, spans.end)):
        ax.axvspan((a - t0) / scale, max(b - t0, a - t0 + 1e-3) / scale, color=colour, alpha=0.35, lw=0,
                   label=label if i == 0 else None)


def _marker_lines(ax, events: pd.DataFrame, t0: float, scale: float) -> None:
    for row in events.itertuples():
        ax.axvline((row.t_monotonic - t0) / scale, color="#555", lw=0.8, ls="--")


def overview_plot(session, scale: float, unit: str) -> str:
    f = session.frames
    t0, t = session.t0, f["t_monotonic"].to_numpy()
    step = max(1.0, (t[-1] - t0) / 600) if len(t) > 1 else 1.0   # at most ~600 bins
    edges = np.arange(t0, t[-1] + step, step)
    fig = _figure(11, 2.8)
    ax = fig.add_subplot()
    captured = np.histogram(t, edges)[0] / step
    analysed = np.histogram(t[f["analysed"].to_numpy() == 1], edges)[0] / step
    x = (edges[:-1] - t0) / scale
    ax.step(x, captured, where="post", label="captured fps", color="#1f77b4")
    ax.step(x, analysed, where="post", label="analysed fps", color="#2ca02c")
    _shade(ax, quality.capture_gaps(f), t0, "#d62728", "capture gap", scale)
    _shade(ax, quality.encoder_drops(f), t0, "#ff7f0e", "encoder drop", scale)
    _shade(ax, quality.not_analysed(f), t0, "#7f7f7f", "not analysed ≥ 0.5 s", scale)
    _marker_lines(ax, session.events(), t0, scale)
    ax.set_xlabel(f"time ({unit})")
    ax.set_ylabel("frames/s")
    ax.legend(loc="lower right", fontsize=8, ncol=5)
    return _png(fig)


def person_plot(session, table: pd.DataFrame, person: str, signals: list[str], scale: float, unit: str) -> str:
    rows = table[(table["person"] == person) & ~table["excluded"]]
    t0, end = session.t0, float(session.frames["t_monotonic"].iloc[-1])
    step = max(1.0 / 30, (end - t0) / 1500)
    edges = np.arange(t0, end + step, step)
    x = (edges[:-1] - t0) / scale
    fig = _figure(11, 1.5 * len(signals) + 0.5)
    axes = fig.subplots(len(signals), 1, sharex=True, squeeze=False)[:, 0]
    events = session.events()
    for ax, name in zip(axes, signals):
        ax.plot(x, _binned(rows["t_monotonic"].to_numpy(), rows[name].to_numpy(np.float64), edges), lw=0.8)
        ax.set_ylabel(name)
        _marker_lines(ax, events, t0, scale)
        for a in session.exclusions():
            if a.person in ("", person):
                ax.axvspan((a.t_start - t0) / scale, (a.t_end - t0) / scale, color="#999", alpha=0.3, lw=0)
    axes[-1].set_xlabel(f"time ({unit}); dashed: markers; grey: excluded")
    fig.suptitle(person, fontsize=10)
    return _png(fig)


def locked_plot(session, table: pd.DataFrame, label: str, people: list[str], signals: list[str],
                window: tuple[float, float]) -> tuple[str, int]:
    """Per signal, each person's mean time course around the markers labelled `label`."""
    events = session.events()
    times = events.loc[events["label"] == label, "t_monotonic"].to_numpy()
    edges = np.linspace(window[0], window[1], 41)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = _figure(11, 2.6)
    axes = fig.subplots(1, len(signals), squeeze=False)[0]
    kept = table[~table["excluded"]]
    t_all = kept["t_monotonic"].to_numpy()
    for ax, name in zip(axes, signals):
        for colour, person in zip(PALETTE, people):
            mine = (kept["person"] == person).to_numpy()
            t, v = t_all[mine], kept[name].to_numpy(np.float64)[mine]
            curves = []
            for t_marker in times:
                lo, hi = np.searchsorted(t, t_marker + window[0]), np.searchsorted(t, t_marker + window[1], "right")
                curves.append(_binned(t[lo:hi] - t_marker, v[lo:hi], edges))
            if curves:
                with warnings.catch_warnings():  # a bin no occurrence has: NaN, as meant
                    warnings.simplefilter("ignore", RuntimeWarning)
                    ax.plot(centres, np.nanmean(curves, axis=0), color=colour, label=person, lw=1.2)
        ax.axvline(0, color="#555", lw=0.8, ls="--")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("s from marker")
    axes[0].legend(fontsize=7)
    return _png(fig), len(times)


def _table(frame: pd.DataFrame, percent=()) -> str:
    frame = frame.copy()
    for c in percent:
        frame[c] = (100 * frame[c]).map("{:.1f} %".format)
    return frame.to_html(index=False, border=0, float_format="{:.2f}".format, escape=True)


def write_report(session, out: Path, window: tuple[float, float] = (-1.0, 3.0), signals=("valence", "arousal", "AU12",
                 "AU04"), min_score: float = 0.8, max_turn_deg: float = 40.0, min_face_px: float = 48.0) -> Path:
    """Write the report of `session` (load_session) to `out`; returns `out`."""
    started = time.perf_counter()
    signals = list(signals)
    s = quality.summary(session)
    table = session.table([*quality.QC_COLUMNS, *signals])
    qc = quality.person_quality(table, s["analysed"], min_score, max_turn_deg, min_face_px)
    qc = qc.sort_values("rows", ascending=False)
    people = qc["person"].tolist()[:PEOPLE_PLOTTED]
    scale, unit = (60.0, "min") if s["duration_s"] > 300 else (1.0, "s")
    meta = session.metadata
    analyser = (meta.get("analyser") or {}).get("describe", "no analysis")
    name = session.folder.name if session.parent is None else f"{session.parent.folder.name}, {session.camera}"
    facts = [("session", name), ("started", meta.get("started", "?")), ("analyser", analyser),
             ("complete", "yes" if s["complete"] else "no: still being recorded; this covers what was written so far"
              if session.recording else "no: the recording was cut off; the files hold what was written"),
             ("duration", f"{s['duration_s']:.1f} s"),
             ("captured", f"{s['captured']} frames, {s['capture_fps']:.2f} fps"),
             ("analysed", f"{s['analysed']} frames, {s['analysed_fps']:.2f} fps"),
             ("encoder drops", f"{s['encoder_dropped']} frames not in the video"),
             ("results dropped", "unknown (counted when a recording ends)" if s["results_dropped"] is None
              else str(s["results_dropped"])),
             ("capture gaps", f"{s['gaps']} ({s['gap_s']:.2f} s in all, longest {s['longest_gap_s']:.2f} s)"),
             ("not analysed (stretches ≥ 0.5 s)", f"{s['not_analysed_s']:.1f} s"),
             ("faces per analysed frame", ", ".join(f"{k}: {v}" for k, v in s["faces_per_frame"].items())),
             ("excluded (annotations.csv)", f"{len(session.exclusions())} span(s), "
                                            f"{int(table['excluded'].sum())} rows"),
             ("markers and events", f"{len(session.events())}")]
    parts = [f"<h1>Session report: {html.escape(name)}</h1>",
             "<table class=facts>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                                             for k, v in facts) + "</table>",
             "<h2>Capture and analysis over time</h2>", overview_plot(session, scale, unit),
             "<h2>People and quality flags</h2>",
             f"<p>Share of each person's rows with a detection score below {min_score}, the head turned beyond "
             f"±{max_turn_deg:g}° (pitch or yaw), a face (the detector's box, longer side) below {min_face_px:g} px, "
             "or excluded. "
             f"Frames with no face: {s['faces_per_frame'].get('0', 0)} of {s['analysed']} analysed.</p>",
             _table(qc, percent=["share_of_frames", "low_score", "turned", "small", "excluded"]),
             "<h2>Time courses per person</h2>"]
    for person in people:
        parts.append(person_plot(session, table, person, signals, scale, unit))
    parts.append(f"<h2>Marker-locked averages ({window[0]:g} to {window[1]:g} s)</h2>")
    labels = session.events()["label"].unique()
    for label in labels:
        img, n = locked_plot(session, table, label, people, signals, window)
        parts += [f"<h3>{html.escape(str(label))} ({n} occurrence{'s' if n != 1 else ''})</h3>", img]
    if not len(labels):
        parts.append("<p>No markers or events.</p>")
    parts.append(f"<p class=foot>realtime-feat report, {time.strftime('%Y-%m-%d %H:%M')}, "
                 f"{time.perf_counter() - started:.1f} s</p>")
    style = ("body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}img{max-width:100%}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 10px;text-align:left;"
             "border-bottom:1px solid #ddd}.foot{color:#888;font-size:small}")
    out = Path(out)
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(name)}"
                   f"</title><style>{style}</style></head><body>{''.join(parts)}</body></html>", encoding="utf-8")
    return out
