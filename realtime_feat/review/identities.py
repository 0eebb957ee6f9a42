"""A reviewer's corrections to who is who in a recorded session, `identities.json` in its folder (written
by review only; fex.csv keeps the tracker's ids): tracks renamed, and tracks merged that are one person.
`load_session`, the viewer, `epochs`, `report` and `process SESSION_DIR` read every row's person
through it.

    {"names": {"3": "Ann", "7": "Bo"}, "merged": {"7": 3}}     track 3 is Ann; track 7 is track 3 (so Ann too)

A track's person is the name given to it (or to the track it was merged into), else the name the live
tracker gave it from an enrolment, else "#<track id>"; in a several-camera session each camera keeps its
own file (its tracker's ids) and an unnamed track is "<camera>#<track id>", so track 3 of two cameras is
two persons while one name is one person in every camera. A merged track keeps its own name (7's "Bo"
above, shown again if it is unmerged). Nothing is split: a merge is undone only by `unmerge`, and tracks
seen in one frame together cannot be merged, nor given one name (the caller checks, with the rows). An
edit that cannot be saved (a read-only folder) raises and is not kept.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .annotations import save_whole

FILE = "identities.json"


@dataclass
class Identities:
    folder: Path
    names: dict[int, str] = field(default_factory=dict)   # a track → the name given to it
    merged: dict[int, int] = field(default_factory=dict)  # a track → the track it was merged into
    camera: str = ""  # several cameras: this camera's name, before an unnamed track's "#id"

    @classmethod
    def load(cls, folder: Path, camera: str = "") -> "Identities":
        path = Path(folder) / FILE
        if not path.is_file():
            return cls(Path(folder), camera=camera)
        try:
            data = json.loads(path.read_text())
            return cls(Path(folder), {int(k): str(v) for k, v in data.get("names", {}).items()},
                       {int(k): int(v) for k, v in data.get("merged", {}).items()}, camera)
        except (ValueError, AttributeError) as exc:
            raise ValueError(f"{path}: not an identities file ({exc}); fix or remove it") from None

    def save(self) -> None:
        text = json.dumps({"names": {str(k): v for k, v in sorted(self.names.items())},
                           "merged": {str(k): v for k, v in sorted(self.merged.items())}}, indent=2)
        save_whole(self.folder / FILE, lambda tmp: tmp.write_text(text))

    def _commit(self, names: dict[int, str], merged: dict[int, int]) -> None:
        """Save the new names and merges, then hold them (a failed save leaves both as they were)."""
        replace(self, names=names, merged=merged).save()
        self.names, self.merged = names, merged

    def root(self, track: int) -> int:
        seen = set()
        while track in self.merged and track not in seen:  # a cycle (a hand-edited file) ends the walk
            seen.add(track)
            track = self.merged[track]
        return track

    def rename(self, track: int, name: str) -> None:
        """Name the person of `track` (and of every track merged with it); "" removes the name."""
        root, names = self.root(track), dict(self.names)
        if name.strip():
            names[root] = name.strip()
        else:
            names.pop(root, None)
        self._commit(names, self.merged)

    def merge(self, tracks: list[int]) -> int:
        """The tracks are one person: each joins the first one's. The person's name is the first one's,
        else the first name among the others (moved to it); a merged track keeps any other name of its own
        for an unmerge. Returns the track they joined."""
        into, names, merged = self.root(tracks[0]), dict(self.names), dict(self.merged)
        for track in tracks[1:]:
            root = self.root(track)
            if root == into:
                continue
            merged[root] = into
            if root in names and into not in names:
                names[into] = names.pop(root)
        self._commit(names, merged)
        return into

    def unmerge(self, track: int) -> list[int]:
        """Undo the merge of `track` (with the tracks merged into it) into another; for a track others were
        merged into and that is merged into none, undo theirs. Returns the tracks that are apart again."""
        apart = [track] if track in self.merged else sorted(t for t, into in self.merged.items() if into == track)
        if apart:
            self._commit(self.names, {t: into for t, into in self.merged.items() if t not in apart})
        return apart

    def own_name(self, track: int) -> str:
        """The name given to `track` itself ("" if none): a merged track's, hidden by its person's name."""
        return self.names.get(track, "")

    def person(self, track: int, enrolled: dict[int, str]) -> str:
        """Who `track` is: a given name, else its enrolled name (`enrolled`: root track → name), else
        `unnamed`."""
        root = self.root(track)
        return self.names.get(root) or enrolled.get(root) or self.unnamed(root)

    def unnamed(self, track: int) -> str:
        """The person of a track nobody named: "#3", or "camera0#3" in a several-camera session."""
        return f"{self.camera}#{self.root(track)}"

    def persons(self, track_ids: np.ndarray, enrolled: dict[int, str]) -> np.ndarray:
        """Each row's person ("" for rows without a confirmed track: no face, or a tentative one)."""
        ids = np.asarray(track_ids, np.float64)
        out = np.full(ids.shape, "", object)
        valid = np.isfinite(ids) & (ids >= 0)
        uniques, inverse = np.unique(ids[valid].astype(np.int64), return_inverse=True)
        labels = np.array([self.person(int(t), enrolled) for t in uniques], object)
        out[valid] = labels[inverse] if len(uniques) else []
        return out
