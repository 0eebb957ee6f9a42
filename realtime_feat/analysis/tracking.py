"""Face tracking: ids that stay with a person across frames, absences and re-entries.

In the spirit of tryolabs/norfair: one small tracker, its design choices written beside the code.

Each `update` runs three stages, each a Hungarian assignment through the one `_match` helper:

1. detections ↔ active (tentative + confirmed) tracks, on a cost mixing box overlap and ArcFace distance;
2. detections still unmatched ↔ lost tracks, on ArcFace distance alone (re-identification: a person
   who left and came back, anywhere in the frame, gets their old id back);
3. detections still unmatched start new tentative tracks.

Track life: tentative → confirmed (after `min_hits` consecutive matches) → lost (unseen for `lost_after_s`)
→ removed (`forget_after_s` later). A tentative track that misses one frame is dropped. There is no motion
model (norfair's Kalman filter): at live frame rates a face moves little between frames, and appearance
covers the jumps; a filter would add state and tuning for little gain.

Named people (face-api.js's FaceMatcher idea): `enrol` reference embeddings under a name, then
`identity_of` / `identities` label tracks with the closest enrolled person, or "unknown".

Threads: `update` and `enrol` belong to one thread at a time (live: the analysis worker, between frames);
`identities`, `identity_of`, `enrolled` and `tracks` may be called from any thread while it runs. What
they read is copy-on-write (the people, the track list and each gallery are replaced, never changed in
place), so they see a consistent snapshot and never "changed size during iteration".

Without embeddings (`use_embeddings=False`, or an analyser run without ArcFace) the tracker works on box
overlap alone: no re-identification, every identity "unknown"; `mode` says which mode ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..types import FrameResult

EMBEDDING_DIM = 512
UNKNOWN = "unknown"

# Cost of a forbidden pair: larger than any sum of allowed costs, so the solver first maximises the number
# of allowed pairs and only then minimises their cost (a forbidden pair is never traded for an allowed one).
_FORBIDDEN = 1e6


@dataclass(frozen=True)
class TrackerSettings:
    """How the tracker associates, confirms, loses, re-identifies and names faces.

    Distances are ArcFace cosine distances (1 − cosine similarity): about 0–0.4 for the same person,
    0.8–1.1 for strangers; head turns, blur and partial faces push the same person upwards.
    The defaults make a pair with no box overlap pass `max_cost` exactly when its distance is within
    `max_embedding_distance` (0.4·1 + 0.6·0.5 = 0.7); keep that in mind when changing one of the three.
    """

    # Share of box overlap (1 − IoU) in the association cost; the rest is ArcFace distance. Higher trusts
    # position: steadier through head turns and blur, but ids can swap when faces cross. Lower trusts
    # appearance: ids follow people through crossings, but look-alikes side by side get harder to separate.
    iou_weight: float = 0.4
    # Largest association cost accepted. Higher keeps tracks through fast motion and poor embeddings but
    # lets a newcomer take over a track; lower starts new tracks (new ids) more readily. Overlap-only mode
    # uses it as 1 − IoU, so the default asks for IoU ≥ 0.3 there.
    max_cost: float = 0.7
    # A track and a detection whose boxes do not overlap are linked only if their ArcFace distance is
    # within this. Higher follows faces that jump (low frame rate, fast motion); lower avoids linking
    # a track to a different person elsewhere in the frame.
    max_embedding_distance: float = 0.5
    # Consecutive matches before a track is confirmed and shows an id. Higher filters detector false
    # positives; lower shows ids sooner (1 = at once).
    min_hits: int = 3
    # Seconds without a match before a confirmed track is lost. Higher rides out occlusions and detector
    # misses by box overlap; lower hands returning faces to re-identification sooner (which needs
    # embeddings, and is stricter).
    lost_after_s: float = 1.0
    # Seconds a lost track stays in the re-identification gallery. Higher recognises people after longer
    # absences; lower keeps memory small and lowers the chance of a look-alike inheriting an old id.
    forget_after_s: float = 60.0
    # Recent embeddings kept per track. More covers more poses and lighting (better re-identification)
    # at a little more compute per frame and a higher chance of matching a look-alike.
    gallery_size: int = 20
    # Largest distance (to the closest gallery embedding) at which a lost track is re-identified. Stricter
    # than `max_embedding_distance`, since a wrong re-identification gives one person another's old id.
    reid_distance: float = 0.45
    # Largest distance at which a track is labelled with an enrolled name instead of "unknown". Higher names
    # more tracks, lower mislabels fewer.
    enrol_distance: float = 0.5

    def __post_init__(self) -> None:
        checks = (
            ("iou_weight", 0.0 <= self.iou_weight <= 1.0, "must be in [0, 1]"),
            ("max_cost", self.max_cost > 0.0, "must be positive"),
            ("max_embedding_distance", 0.0 < self.max_embedding_distance <= 2.0, "is a cosine distance: (0, 2]"),
            ("min_hits", isinstance(self.min_hits, int) and self.min_hits >= 1, "must be an int ≥ 1"),
            ("lost_after_s", self.lost_after_s > 0.0, "must be positive"),
            ("forget_after_s", self.forget_after_s >= 0.0, "must be ≥ 0"),
            ("gallery_size", isinstance(self.gallery_size, int) and self.gallery_size >= 1, "must be an int ≥ 1"),
            ("reid_distance", 0.0 < self.reid_distance <= 2.0, "is a cosine distance: (0, 2]"),
            ("enrol_distance", 0.0 < self.enrol_distance <= 2.0, "is a cosine distance: (0, 2]"),
        )
        for name, ok, reason in checks:
            if not ok:
                raise ValueError(f"TrackerSettings.{name} {reason}, got {getattr(self, name)!r}")


class TrackState(str, Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"


@dataclass(frozen=True)
class TrackView:
    """A read-only snapshot of one track, for the UI and the live worker."""

    track_id: int                                   # -1 while tentative
    state: TrackState
    last_box: tuple[float, float, float, float]     # xyxy, pixels
    last_seen_s: float                              # on the frames' monotonic clock
    hits: int


@dataclass(eq=False)  # identity equality: two tracks are never "the same" because their fields match
class _Track:
    box: np.ndarray
    last_seen_s: float
    gallery: tuple = ()   # unit-norm float32 embeddings, most recent last (at most gallery_size)
    track_id: int = -1
    state: TrackState = TrackState.TENTATIVE
    hits: int = 0


class FaceTracker:
    """Stable face ids from `FrameResult`s. Time comes from the frames, never from a clock read here:
    `clock="capture"` (live) uses `t_monotonic_ns`; `clock="source"` (offline files, analysed faster or
    slower than they play) uses the video's own `pts`."""

    def __init__(self, settings: Optional[TrackerSettings] = None, use_embeddings: bool = True,
                 clock: str = "capture"):
        if clock not in ("capture", "source"):
            raise ValueError(f"FaceTracker clock must be 'capture' or 'source', got {clock!r}")
        self.settings = settings or TrackerSettings()
        self.use_embeddings = use_embeddings
        self.clock = clock
        # Enrolled people outlive `reset`: they are configuration, like the settings, not tracking state.
        self._people: dict[str, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids restart at 1 (enrolled people are kept)."""
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._embeddings_seen = False

    @property
    def mode(self) -> str:
        """"iou+arcface" once a frame brought embeddings the tracker used, else "iou-only"."""
        return "iou+arcface" if self._embeddings_seen else "iou-only"

    @property
    def enrolled(self) -> list[str]:
        return sorted(self._people)

    @property
    def tracks(self) -> list[TrackView]:
        return [TrackView(t.track_id, t.state, tuple(float(v) for v in t.box), t.last_seen_s, t.hits)
                for t in self._tracks]

    def update(self, result: FrameResult) -> np.ndarray:
        """Track ids (N,) int64 for the faces of `result`, in its order; -1 for faces on tentative tracks."""
        s = self.settings
        now = result.pts if self.clock == "source" else result.t_monotonic_ns / 1e9
        if now is None:
            raise ValueError(f"frame {result.index} has no source timestamp for a clock='source' tracker")
        self._age(now)
        boxes = np.asarray(result.detections.xyxy, np.float64)
        emb = self._embeddings(result)
        owner: list[Optional[_Track]] = [None] * len(boxes)

        active = [t for t in self._tracks if t.state is not TrackState.LOST]
        for r, c in _match(self._association_cost(active, boxes, emb), s.max_cost):
            owner[c] = active[r]

        if emb is not None:
            lost = [t for t in self._tracks if t.state is TrackState.LOST and t.gallery]
            free = [d for d, t in enumerate(owner) if t is None and np.isfinite(emb[d, 0])]
            for r, c in _match(_gallery_distances(lost, emb[free]), s.reid_distance):
                owner[free[c]] = lost[r]

        for d, t in enumerate(owner):
            if t is None:
                owner[d] = _Track(boxes[d], now)
        # A tentative track must be seen in consecutive frames: one miss and it goes, id-less.
        self._tracks = [t for t in self._tracks if t.state is not TrackState.TENTATIVE or t in owner] + [
            t for t in owner if t not in self._tracks]
        for d, t in enumerate(owner):
            self._observe(t, boxes[d], None if emb is None else emb[d], now)
        return np.array([t.track_id for t in owner], np.int64)

    def enrol(self, name: str, embeddings: np.ndarray) -> None:
        """Add reference embeddings, (512,) or (k, 512), for a named person (repeat calls add more)."""
        refs = references(name, embeddings)
        people = self._people
        self._people = {**people, name: np.concatenate([people[name], refs]) if name in people else refs}

    def identity_of(self, track_id: int) -> tuple[str, float]:
        """(closest enrolled name, its cosine distance), or ("unknown", distance) beyond `enrol_distance`.

        The distance compares the mean of the track's gallery with each reference of a person and keeps the
        closest reference. The mean, not each gallery embedding, so a label does not flicker with one blurred
        frame; the closest reference, not the references' mean, so a person can be enrolled in several looks
        (glasses on and off, two lightings). ("unknown", NaN) when nobody is enrolled or the track has no
        embeddings (overlap-only mode).
        """
        track = next((t for t in self._tracks if t.track_id == track_id), None) if track_id >= 0 else None
        if track is None:
            raise KeyError(f"no confirmed or lost track with id {track_id}")
        people, gallery = self._people, track.gallery  # one snapshot of each, whatever the tracker does next
        if not people or not gallery:
            return UNKNOWN, float("nan")
        mean = _unit_rows(np.mean(np.stack(gallery), axis=0, keepdims=True))[0]
        name, dist = min(((n, float(np.min(1.0 - refs @ mean))) for n, refs in people.items()),
                         key=lambda pair: pair[1])
        return (name if dist <= self.settings.enrol_distance else UNKNOWN), dist

    def identities(self, track_ids: Sequence[int]) -> tuple[list[str], np.ndarray]:
        """Labels and distances for the CSV columns `identity` and `identity_distance`: "" and NaN for -1."""
        pairs = [self.identity_of(int(i)) if i >= 0 else ("", float("nan")) for i in track_ids]
        return [p[0] for p in pairs], np.array([p[1] for p in pairs], np.float64)

    def _age(self, now: float) -> None:
        s = self.settings
        for t in self._tracks:
            if t.state is TrackState.CONFIRMED and now - t.last_seen_s > s.lost_after_s:
                t.state = TrackState.LOST
        # forget_after_s counts from the moment of loss, which is lost_after_s after the last sighting
        self._tracks = [t for t in self._tracks if not (
            t.state is TrackState.LOST and now - t.last_seen_s > s.lost_after_s + s.forget_after_s)]

    def _embeddings(self, result: FrameResult) -> Optional[np.ndarray]:
        """Unit-norm embeddings (N, 512), NaN rows where a face has none; None when no face has one."""
        emb = result.faces.embedding
        if not self.use_embeddings or emb is None:
            return None
        unit = _unit_rows(emb)
        if np.isnan(unit).all():
            return None
        self._embeddings_seen = True
        return unit

    def _association_cost(self, tracks: list[_Track], boxes: np.ndarray, emb: Optional[np.ndarray]) -> np.ndarray:
        """Stage 1 cost: iou_weight·(1 − IoU) + (1 − iou_weight)·distance, or 1 − IoU where a pair lacks
        an embedding on either side. Pairs with no overlap are allowed only if appearance vouches for them;
        pairs that do overlap are not vetoed by a large distance, since the same face's ArcFace distance
        jumps with head turns and blur, and position continuity is then the better evidence."""
        iou = _iou(np.array([t.box for t in tracks]).reshape(-1, 4), boxes)
        cost = 1.0 - iou
        if emb is None:
            dist = np.full_like(iou, np.nan)
        else:
            dist = _gallery_distances(tracks, emb)
            w = self.settings.iou_weight
            cost = np.where(np.isnan(dist), cost, w * (1.0 - iou) + (1.0 - w) * dist)
        vouched = np.nan_to_num(dist, nan=np.inf) <= self.settings.max_embedding_distance
        cost[(iou <= 0.0) & ~vouched] = np.inf
        return cost

    def _observe(self, t: _Track, box: np.ndarray, emb: Optional[np.ndarray], now: float) -> None:
        t.box, t.last_seen_s, t.hits = box, now, t.hits + 1
        if emb is not None and np.isfinite(emb[0]):
            t.gallery = (*t.gallery, emb)[-self.settings.gallery_size:]
        if t.state is TrackState.LOST:  # re-identified: back with the id it had
            t.state = TrackState.CONFIRMED
        elif t.state is TrackState.TENTATIVE and t.hits >= self.settings.min_hits:
            t.state = TrackState.CONFIRMED
            old = self._returning(t)
            if old is not None:  # a lost person whose first sightings had no usable embedding
                t.track_id = old.track_id
                t.gallery = (*old.gallery, *t.gallery)[:self.settings.gallery_size]
                self._tracks = [o for o in self._tracks if o is not old]
            else:
                # Ids are issued at confirmation, so visible ids run 1, 2, 3… without gaps left by false positives.
                t.track_id = self._next_id
                self._next_id += 1

    def _returning(self, t: _Track) -> Optional[_Track]:
        """The lost track a newly confirmed one re-identifies, if any. Stage 2 of `update` only sees
        detections that no active track took; a returning face first matched by overlap to a fresh
        tentative track (its first frames had no embedding, or it reappeared where a track was born)
        is caught here instead, once that track's gallery has an embedding."""
        lost = [o for o in self._tracks if o.state is TrackState.LOST and o.gallery]
        if not t.gallery or not lost:
            return None
        dist = _gallery_distances(lost, np.stack(t.gallery)).min(axis=1)
        best = int(np.argmin(dist))
        return lost[best] if dist[best] <= self.settings.reid_distance else None


def _match(cost: np.ndarray, max_cost: float) -> list[tuple[int, int]]:
    """(row, col) pairs of a minimum-total-cost assignment, using only pairs with cost ≤ max_cost.

    Hungarian (scipy's linear_sum_assignment), not greedy: greedy takes the cheapest pair first, and when
    two faces are close (crossing, side by side) that pair can take the detection another track needed,
    leaving that track a wrong one or none; minimising the total gives every track its best joint choice.
    Pairs above max_cost (or NaN/inf: explicitly forbidden) are forbidden before solving, not filtered
    after, so the solver never picks a pair that would then be discarded over an allowed one.
    """
    if cost.size == 0:
        return []
    allowed = np.isfinite(cost) & (cost <= max_cost)
    rows, cols = linear_sum_assignment(np.where(allowed, cost, _FORBIDDEN))
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


def references(name: str, embeddings: np.ndarray) -> np.ndarray:
    """`embeddings` checked and made unit-norm (k, 512) references for `name`; ValueError (one line) if
    they or the name cannot be enrolled."""
    if not name or name == UNKNOWN:
        raise ValueError(f"enrol: name must be non-empty and not {UNKNOWN!r}, got {name!r}")
    refs = np.atleast_2d(np.asarray(embeddings, np.float32))
    if refs.ndim != 2 or refs.shape[1] != EMBEDDING_DIM or len(refs) == 0:
        raise ValueError(f"enrol: expected (k, {EMBEDDING_DIM}) embeddings, got {refs.shape}")
    refs = _unit_rows(refs)
    if np.isnan(refs).any():
        raise ValueError("enrol: embeddings must be finite and non-zero")
    return refs


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of xyxy boxes: (A, 4) × (B, 4) → (A, B)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0.0, inter / np.where(union > 0.0, union, 1.0), 0.0)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); NaN rows where a row is non-finite or zero."""
    x = np.asarray(x, np.float32)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 0.0)
    return np.where(ok, x / np.where(ok, norm, 1.0), np.nan).astype(np.float32)


def _gallery_distances(tracks: list[_Track], emb: np.ndarray) -> np.ndarray:
    """(T, D) cosine distance from each track's closest gallery embedding to each detection; NaN where
    the gallery is empty or the detection has no embedding. The closest, not the mean (as DeepSORT does):
    a gallery spans poses, and a returning face need only resemble one of them."""
    out = np.full((len(tracks), len(emb)), np.nan)
    for i, t in enumerate(tracks):
        if t.gallery and len(emb):
            out[i] = np.min(1.0 - np.stack(t.gallery) @ emb.T, axis=0)
    return out
