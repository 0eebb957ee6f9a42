"""A reviewer's corrections to who is who in a recorded session, `identities.json` in its folder (written
by review only; fex.csv keeps the tracker's ids): tracks renamed, and tracks merged that are one person.
`load_session`, the viewer, `epochs`, `report` and `process SESSION_DIR` read every row's person
through it.

    {"names": {"3": "Ann"}, "merged": {"7": 3}}     track 3 is Ann; track 7 is track 3 (so Ann too)

A track's person is the name given to it (or to the track it was merged into), else the name the live
tracker gave it from an enrolment, else "#<track id>". Nothing is split: a merge is undone only by
`unmerge`, and tracks seen in one frame together cannot be merged (the caller checks, with the rows).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FILE = "identities.json"


@dataclass
class Identities:
    folder: Path
    names: dict[int, str] = field(default_factory=dict)   # a track (the root of its merges) → name
    merged: dict[int, int] = field(default_factory=dict)  # a track → the track it was merged into

    @classmethod
    def load(cls, folder: Path) -> "Identities":
        path = Path(folder) / FILE
        if not path.is_file():
            return cls(Path(folder))
        try:
            data = json.loads(path.read_text())
            return cls(Path(folder), {int(k): str(v) for k, v in data.get("names", {}).items()},
                       {int(k): int(v) for k, v in data.get("merged", {}).items()})
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{path}: not an identities file ({exc}); fix or remove it") from None

    def save(self) -> None:
        path = self.folder / FILE
        tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"names": {str(k): v for k, v in sorted(self.names.items())},
                                   "merged": {str(k): v for k, v in sorted(self.merged.items())}}, indent=2))
        tmp.replace(path)

    def root(self, track: int) -> int:
        seen = set()
        while track in self.merged and track not in seen:  # a cycle (a hand-edited file) ends the walk
            seen.add(track)
            track = self.merged[track]
        return track

    def rename(self, track: int, name: str) -> None:
        """Name the person of `track` (and of every track merged with it); "" removes the name."""
        root = self.root(track)
        if name.strip():
            self.names[root] = name.strip()
        else:
            self.names.pop(root, None)
        self.save()

    def merge(self, tracks: list[int]) -> int:
        """The tracks are one person: each joins the first one's; a name keeps to the person. Returns it."""
        into = self.root(tracks[0])
        for track in tracks[1:]:
            root = self.root(track)
            if root == into:
                continue
            self.merged[root] = into
            name = self.names.pop(root, None)
            if name and into not in self.names:
                self.names[into] = name
        self.save()
        return into

    def unmerge(self, track: int) -> None:
        """Undo the merge of `track` (with the tracks merged into it) into another."""
        self.merged.pop(track, None)
        self.save()

    def person(self, track: int, enrolled: dict[int, str]) -> str:
        """Who `track` is: a given name, else its enrolled name (`enrolled`: root track → name), else #id."""
        root = self.root(track)
        return self.names.get(root) or enrolled.get(root) or f"#{root}"

    def persons(self, track_ids: np.ndarray, enrolled: dict[int, str]) -> np.ndarray:
        """Each row's person ("" for rows without a confirmed track: no face, or a tentative one)."""
        ids = np.asarray(track_ids, np.float64)
        out = np.full(ids.shape, "", object)
        valid = np.isfinite(ids) & (ids >= 0)
        uniques, inverse = np.unique(ids[valid].astype(np.int64), return_inverse=True)
        labels = np.array([self.person(int(t), enrolled) for t in uniques], object)
        out[valid] = labels[inverse] if len(uniques) else []
        return out
