"""A reviewer's annotations of a recorded session, `annotations.csv` in its folder (written by review only;
the recorded files are never rewritten): events (a point in time) and exclusion spans (a range whose rows
are left out of every analysis, for everyone or for one person).

    kind      "event" or "exclude"
    label     free text (an event's label is matched by `epochs --markers`, as a marker's is)
    t_start   seconds on the capture clock (t_monotonic, as in frames.csv and markers.csv; a span made
              from frames starts and ends exactly on their stamps, both included)
    t_end     = t_start for an event
    person    an exclusion's person ("" = everyone); empty for events

The file is replaced whole (written under a temporary name, then renamed) at every change, so a crash
never leaves half of it; an edit that cannot be saved (a read-only folder) raises and is not kept. A file
edited by hand is checked row by row: a fault is one line naming the file and its line.
"""
from __future__ import annotations

import csv
import errno
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from ..atomic_files import replacing

FILE = "annotations.csv"
COLUMNS = ["kind", "label", "t_start", "t_end", "person"]
KINDS = ("event", "exclude")


@dataclass(frozen=True)
class Annotation:
    kind: str
    label: str
    t_start: float
    t_end: float
    person: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"annotation kind {self.kind!r}: choose {' or '.join(KINDS)}")
        if self.kind == "event":
            object.__setattr__(self, "t_end", self.t_start)
        elif self.t_end < self.t_start:  # a span dragged right to left
            start, end = self.t_end, self.t_start
            object.__setattr__(self, "t_start", start)
            object.__setattr__(self, "t_end", end)


class Annotations:
    """The annotations of one session folder, in the order they were made; every change is saved."""

    def __init__(self, folder: Path, items: list[Annotation] = ()):
        self.folder = Path(folder)
        self.items = list(items)

    @classmethod
    def load(cls, folder: Path) -> "Annotations":
        """annotations.csv of `folder` (none: no annotations); a ValueError names the file and the line of
        the first fault (a missing or stray column, a bad kind, a time that is empty or no number)."""
        path = Path(folder) / FILE
        if not path.is_file():
            return cls(folder)
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet may add a BOM
            rows = csv.DictReader(f)
            columns = rows.fieldnames or []
            wrong = sorted(set(COLUMNS) - set(columns)), [c for c in columns if c not in COLUMNS]
            if any(wrong):
                said = "; ".join(f"{what} column(s) {names}"
                                 for what, names in zip(("missing", "unknown"), wrong) if names)
                raise ValueError(f"{path}: {said} (the columns are {', '.join(COLUMNS)}); fix or remove the file")
            items = []
            for row in rows:
                try:
                    items.append(_annotation(row))
                except ValueError as exc:
                    raise ValueError(f"{path}, line {rows.line_num}: {exc}; fix or remove that row") from None
        return cls(folder, items)

    def save(self) -> None:
        self._save(self.items)

    def _save(self, items: list[Annotation]) -> None:
        table = Annotations(self.folder, items).table()
        # the capture stamps' ns, as frames.csv
        save_whole(self.folder / FILE, lambda tmp: table.to_csv(tmp, index=False, float_format="%.9f"))

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{c: getattr(a, c) for c in COLUMNS} for a in self.items], columns=COLUMNS)

    def __iter__(self) -> Iterator[Annotation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Annotation:
        return self.items[i]

    # -- edits (each saved; one that cannot be saved raises and leaves the annotations as they were) ------
    def add(self, annotation: Annotation) -> int:
        self._commit([*self.items, annotation])
        return len(self.items) - 1

    def move(self, i: int, t_start: float, t_end: float | None = None) -> None:
        self.edit(i, t_start=t_start, t_end=t_start if t_end is None else t_end)

    def edit(self, i: int, **changes) -> None:
        """Change fields of annotation `i` (label, person, ...)."""
        items = list(self.items)
        items[i] = replace(items[i], **changes)
        self._commit(items)

    def remove(self, i: int) -> None:
        self._commit(self.items[:i] + self.items[i + 1:])

    def _commit(self, items: list[Annotation]) -> None:
        self._save(items)
        self.items = items

    # -- reading -----------------------------------------------------------------------------------
    def events(self) -> list[Annotation]:
        return [a for a in self.items if a.kind == "event"]

    def exclusions(self) -> list[Annotation]:
        return [a for a in self.items if a.kind == "exclude"]

    def unmatched(self, t: np.ndarray) -> list[Annotation]:
        """The annotations that match no frame captured at times `t` (frames.csv's t_monotonic): an
        exclusion that covers none, an event before the first or after the last (a time typed in seconds
        from the start, not on the capture clock)."""
        t = np.sort(np.asarray(t, np.float64))
        if not len(t):
            return list(self.items)
        covers = np.searchsorted(t, [a.t_end for a in self.items], "right") > np.searchsorted(
            t, [a.t_start for a in self.items], "left")
        return [a for a, ok in zip(self.items, covers)
                if not (t[0] <= a.t_start <= t[-1] if a.kind == "event" else ok)]

    def excluded(self, t: np.ndarray, person: np.ndarray | None = None) -> np.ndarray:
        """Which samples (t in seconds on the capture clock, each of `person`) an exclusion covers."""
        t = np.asarray(t, np.float64)
        out = np.zeros(t.shape, bool)
        for a in self.exclusions():
            inside = (t >= a.t_start) & (t <= a.t_end)
            if a.person:
                inside &= np.zeros(t.shape, bool) if person is None else (np.asarray(person) == a.person)
            out |= inside
        return out


def _annotation(row: dict) -> Annotation:
    """One row of annotations.csv (every cell text); a ValueError says what is wrong with it."""
    if None in row:  # DictReader's key for cells past the header's columns
        raise ValueError(f"{len(row[None])} cell(s) more than the {len(COLUMNS)} columns "
                         f"({', '.join(map(repr, row[None]))}; a comma in a label needs quotes)")
    if any(row[c] is None for c in COLUMNS):
        raise ValueError(f"{sum(row[c] is None for c in COLUMNS)} cell(s) fewer than the {len(COLUMNS)} columns")
    kind = row["kind"].strip()
    t_start = _seconds(row["t_start"], "t_start")
    # an event's end is its start: it may be left empty
    t_end = t_start if kind == "event" and not row["t_end"].strip() else _seconds(row["t_end"], "t_end")
    return Annotation(kind, row["label"], t_start, t_end, row["person"].strip())


def _seconds(text: str, column: str) -> float:
    if not text.strip():
        raise ValueError(f"{column} is empty (seconds on the capture clock, t_monotonic, as in frames.csv)")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{column} {text.strip()!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise ValueError(f"{column} is {text.strip()!r}, not a time")
    return value


def save_whole(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` a review file whole (atomic_files); an OSError says which file could not be saved and
    what to do (a read-only folder)."""
    try:
        with replacing(path) as tmp:
            write(tmp)
    except OSError as exc:
        what = ("the folder is read-only: copy the session folder somewhere writable to review it"
                if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else "the edit is not kept")
        raise OSError(f"{path}: not saved ({exc.strerror or exc}); {what}") from exc
