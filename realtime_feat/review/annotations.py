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
never leaves half of it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

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
        path = Path(folder) / FILE
        if not path.is_file():
            return cls(folder)
        table = pd.read_csv(path, dtype={"label": str, "person": str}, keep_default_na=False)
        missing = set(COLUMNS) - set(table.columns)
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; fix or remove the file")
        return cls(folder, [Annotation(r.kind, r.label, float(r.t_start), float(r.t_end), r.person)
                            for r in table.itertuples()])

    def save(self) -> None:
        path = self.folder / FILE
        tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
        self.table().to_csv(tmp, index=False, float_format="%.9f")  # the capture stamps' ns, as frames.csv
        tmp.replace(path)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{c: getattr(a, c) for c in COLUMNS} for a in self.items], columns=COLUMNS)

    def __iter__(self) -> Iterator[Annotation]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Annotation:
        return self.items[i]

    # -- edits (each saved) ------------------------------------------------------------------------
    def add(self, annotation: Annotation) -> int:
        self.items.append(annotation)
        self.save()
        return len(self.items) - 1

    def move(self, i: int, t_start: float, t_end: float | None = None) -> None:
        a = self.items[i]
        self.items[i] = replace(a, t_start=t_start, t_end=t_start if t_end is None else t_end)
        self.save()

    def edit(self, i: int, **changes) -> None:
        """Change fields of annotation `i` (label, person, ...)."""
        self.items[i] = replace(self.items[i], **changes)
        self.save()

    def remove(self, i: int) -> None:
        del self.items[i]
        self.save()

    # -- reading -----------------------------------------------------------------------------------
    def events(self) -> list[Annotation]:
        return [a for a in self.items if a.kind == "event"]

    def exclusions(self) -> list[Annotation]:
        return [a for a in self.items if a.kind == "exclude"]

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

