"""Epochs: for each marker (markers.csv, and review's events) × person, the mean and the peak of every AU,
emotion, valence and arousal in a window around it, optionally minus the mean of a baseline window; one
tidy long-format table (`realtime-feat epochs`).

    marker, occurrence (1, 2, ... per label), t_marker (s from the session's first frame), person,
    signal, mean, peak (the largest value), baseline (the mean subtracted from both; empty without one),
    n_rows (rows averaged), n_excluded (rows in the window that an exclusion left out), n_baseline

Rows are the analysed frames' rows of each person (identities.json applied); windows are on the capture
clock (t_monotonic), both ends included. Several cameras: each camera's rows, with a `camera` column first,
around the session's markers and events and that camera's own events; `occurrence` counts a label over
the whole session, so one marker has one number in every camera, and t_marker is from the session's t0.
A marker or event whose window holds no captured frame (a time outside the recording) is said in a
warning, not only counted as 0 rows.
"""
from __future__ import annotations

import csv
import io
import logging
from typing import Optional

import numpy as np
import pandas as pd

from ..recording.fex import clock_text
from .recorded_session import joined_cameras

log = logging.getLogger(__name__)

COLUMNS = ["marker", "occurrence", "t_marker", "person", "signal", "mean", "peak", "baseline", "n_rows",
           "n_excluded", "n_baseline"]


def signal_names(arrays) -> list[str]:
    return [*arrays.names("au"), *arrays.names("emotions"), *arrays.names("va")]


def parse_range(text: str, option: str) -> tuple[float, float]:
    """"-1,3" → (-1.0, 3.0); a ValueError names the option."""
    try:
        start, end = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{option} expects START,END in seconds around the marker (e.g. -1,3), got {text!r}") from None
    if not start < end:
        raise ValueError(f"{option}: START must be before END, got {text!r}")
    return start, end


def parse_labels(text: str) -> list[str]:
    """"stim,01" → ["stim", "01"]: labels separated by commas, as a CSV row (a label with a comma or a
    double quote is quoted: "cue, left"); each read as text, never as a number."""
    return [label.strip() for label in next(csv.reader([text], skipinitialspace=True), []) if label.strip()]


def join_labels(labels: list[str]) -> str:
    """The text `parse_labels` reads back as `labels`."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(labels)
    return out.getvalue()


def events_of(session, labels: list[str]) -> pd.DataFrame:
    """The markers and review events with these labels, numbered per label over the whole session (all
    its cameras); a ValueError lists the labels there are when none matches anywhere in the session. A
    camera of a several-camera session gets those that apply to it (possibly none)."""
    whole = session.parent if session.parent is not None else session
    events = whole.events()
    chosen = events[events["label"].isin(labels)].copy()
    if chosen.empty:
        there = ", ".join(sorted(events["label"].unique())) or "none"
        raise ValueError(f"{whole.folder}: no marker or event labelled {', '.join(labels)} (labels there: {there})")
    chosen["occurrence"] = chosen.groupby("label").cumcount() + 1
    return chosen[chosen["camera"].isin(["", session.camera])] if session.parent is not None else chosen


def epochs(session, labels: list[str], window: tuple[float, float] = (-1.0, 3.0),
           baseline: Optional[tuple[float, float]] = None) -> pd.DataFrame:
    """The epochs table of `session` (load_session); see the module's docstring."""
    events = events_of(session, labels)
    if session.cameras:
        tables = {name: _locked(each, events[events["camera"].isin(["", name])], window, baseline)
                  for name, each in session.cameras.items()}
        tables = {name: table for name, table in tables.items() if len(table)}  # a camera none of them is for
        return joined_cameras(tables) if tables else pd.DataFrame(columns=["camera", *COLUMNS])
    return _locked(session, events, window, baseline)


def _locked(session, events: pd.DataFrame, window: tuple[float, float],
            baseline: Optional[tuple[float, float]]) -> pd.DataFrame:
    """One camera's epochs around `events` (events_of's)."""
    signals = signal_names(session.arrays)
    table = session.table(signals)
    table = table[table["person"] != ""]
    people = sorted(table["person"].unique())
    t = table["t_monotonic"].to_numpy()
    order = np.argsort(t, kind="stable")
    table, t = table.iloc[order], t[order]

    def rows(t_marker: float, span: tuple[float, float]) -> pd.DataFrame:
        lo, hi = np.searchsorted(t, t_marker + span[0], "left"), np.searchsorted(t, t_marker + span[1], "right")
        return table.iloc[lo:hi]

    captured = np.sort(session.frames["t_monotonic"].to_numpy())
    out = []
    for e in events.itertuples():
        lo, hi = e.t_monotonic + window[0], e.t_monotonic + window[1]
        if np.searchsorted(captured, hi, "right") == np.searchsorted(captured, lo, "left"):
            log.warning("%s: %r (%s) #%d at %.3f s from the first frame: no frame was captured in its window "
                        "(%g to %g s), its rows are empty", session.folder, e.label, e.origin, e.occurrence,
                        e.t_monotonic - session.t0, *window)
        win = rows(e.t_monotonic, window)
        kept = win[~win["excluded"]].groupby("person")
        stats = pd.DataFrame({"mean": kept[signals].mean().stack(),
                              "peak": kept[signals].max().stack()})
        stats = stats.reindex(pd.MultiIndex.from_product([people, signals], names=["person", "signal"]))
        n_rows = kept.size().reindex(people, fill_value=0)
        n_excluded = win[win["excluded"]].groupby("person").size().reindex(people, fill_value=0)
        part = stats.reset_index()
        part["baseline"], part["n_baseline"] = np.nan, 0
        if baseline is not None:
            base = rows(e.t_monotonic, baseline)
            base = base[~base["excluded"]].groupby("person")
            level = base[signals].mean().stack().reindex(stats.index).to_numpy()
            part["baseline"] = level
            part["mean"] -= level
            part["peak"] -= level
            part["n_baseline"] = base.size().reindex(people, fill_value=0).reindex(part["person"]).to_numpy()
        part["n_rows"] = n_rows.reindex(part["person"]).to_numpy()
        part["n_excluded"] = n_excluded.reindex(part["person"]).to_numpy()
        part["marker"], part["occurrence"], part["t_marker"] = e.label, e.occurrence, e.t_monotonic - session.t0
        out.append(part)
    return pd.concat(out, ignore_index=True)[COLUMNS] if out else pd.DataFrame(columns=COLUMNS)


def write_csv(table: pd.DataFrame, path) -> None:
    """An epochs table as CSV: t_marker to the nanosecond (a capture-clock time, as frames.csv writes
    them), the signals' values to 6 digits."""
    table.assign(t_marker=table["t_marker"].map(clock_text)).to_csv(path, index=False, float_format="%.6g")
