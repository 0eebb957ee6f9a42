"""FaceTracker on synthetic frames with controlled embeddings: unit vectors from a seeded RNG stand for
people; small noise (and ArcFace's unnormalised scale) stands for the same person in another frame."""
from __future__ import annotations

from typing import Optional

import numpy as np
import pytest

from realtime_feat.analysis.tracking import FaceTracker, TrackerSettings, TrackState
from realtime_feat.types import Detections, FaceAnalysis, Frame, FrameResult

FPS = 30
DIM = 512


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def people(n: int, seed: int = 0) -> np.ndarray:
    """n distinct people: random 512-d unit vectors are nearly orthogonal (cosine distance ≈ 1)."""
    return unit(np.random.default_rng(seed).normal(size=(n, DIM)))


def look_alike(v: np.ndarray, distance: float, seed: int = 1) -> np.ndarray:
    """A unit vector at exactly `distance` (cosine) from unit vector v."""
    u = np.random.default_rng(seed).normal(size=DIM)
    u = unit(u - (u @ v) * v)
    cos = 1.0 - distance
    return cos * v + np.sqrt(1.0 - cos**2) * u


def seen(person: np.ndarray, rng: np.random.Generator, noise: float = 0.01) -> np.ndarray:
    """One frame's embedding of `person`: ~0.03 cosine distance of noise, at ArcFace's ~20× scale."""
    return 20.0 * (person + rng.normal(scale=noise, size=person.shape))


def box(x: float, y: float, size: float = 100.0) -> list[float]:
    return [x, y, x + size, y + size]


def frame_result(i: int, boxes: list, embeddings: Optional[np.ndarray] = None,
                 t_s: Optional[float] = None) -> FrameResult:
    """Frame i (at i/FPS seconds unless t_s is given) with faces at `boxes`; other analysis fields are zeros."""
    n = len(boxes)
    t_ns = int(round((i / FPS if t_s is None else t_s) * 1e9))
    frame = Frame(np.zeros((4, 4, 3), np.uint8), i, t_ns, t_ns)
    detections = Detections(np.asarray(boxes, np.float32).reshape(n, 4), np.ones(n, np.float32))
    zeros = {name: np.zeros((n, *shape[1:]), np.float32)
             for name, shape in FaceAnalysis._SHAPES.items() if name != "embedding"}
    emb = None if embeddings is None else np.asarray(embeddings, np.float32).reshape(n, DIM)
    return FrameResult.of(frame, detections, FaceAnalysis(**zeros, embedding=emb), {})


def run(tracker: FaceTracker, i: int, faces: list[tuple[list, np.ndarray]], rng: np.random.Generator,
        t_s: Optional[float] = None) -> list[int]:
    """Feed (box, person) pairs in a shuffled order (ids must not depend on it); ids in the given order."""
    order = rng.permutation(len(faces))
    boxes = [faces[k][0] for k in order]
    embs = np.array([seen(faces[k][1], rng) for k in order]).reshape(len(faces), DIM)
    ids = tracker.update(frame_result(i, boxes, embs, t_s))
    assert ids.dtype == np.int64 and ids.shape == (len(faces),)
    out = np.empty(len(faces), np.int64)
    out[order] = ids
    return out.tolist()


def test_smooth_motion_keeps_one_id_after_min_hits():
    tracker, rng, (alice,) = FaceTracker(), np.random.default_rng(0), people(1)
    ids = [run(tracker, i, [(box(100 + 3 * i, 50 + i), alice)], rng)[0] for i in range(100)]
    assert ids[:2] == [-1, -1]          # tentative until min_hits = 3 matches
    assert set(ids[2:]) == {1}
    assert tracker.mode == "iou+arcface"
    assert [(t.track_id, t.state, t.hits) for t in tracker.tracks] == [(1, TrackState.CONFIRMED, 100)]
    assert tracker.tracks[0].last_box == tuple(box(100 + 3 * 99, 50 + 99))


def test_one_frame_false_detection_uses_no_visible_id():
    tracker, rng, (alice, ghost) = FaceTracker(), np.random.default_rng(0), people(2)
    run(tracker, 0, [(box(100, 100), alice), (box(600, 400), ghost)], rng)
    ids = [run(tracker, i, [(box(100, 100), alice)], rng)[0] for i in range(1, 5)]
    assert ids == [-1, 1, 1, 1]         # the ghost's tentative track went without taking id 1
    assert len(tracker.tracks) == 1


def crossing(k: int) -> tuple[list, list]:
    """Two faces walking through each other; just after they meet (k = 16) each box overlaps the other's
    previous box more than its own, so box overlap alone swaps their ids."""
    return box(100 + 10 * k, 100), box(405 - 10 * k, 100)


def test_crossing_ids_follow_embeddings():
    tracker, rng, (a, b) = FaceTracker(), np.random.default_rng(0), people(2)
    for i in range(3):
        id_a, id_b = run(tracker, i, list(zip(crossing(0), (a, b))), rng)
    assert {id_a, id_b} == {1, 2}
    for k in range(1, 31):
        assert run(tracker, 2 + k, list(zip(crossing(k), (a, b))), rng) == [id_a, id_b]


@pytest.mark.parametrize("use_embeddings", [True, False])
def test_exchanged_positions_ids_follow_embeddings_not_boxes(use_embeddings):
    """Overlapping faces swap places between two frames: box overlap alone swaps their ids, ArcFace does not."""
    tracker, rng, (a, b) = FaceTracker(use_embeddings=use_embeddings), np.random.default_rng(0), people(2)
    for i in range(4):
        id_a, id_b = run(tracker, i, [(box(100, 100), a), (box(150, 100), b)], rng)
    after = run(tracker, 4, [(box(150, 100), a), (box(100, 100), b)], rng)
    assert after == ([id_a, id_b] if use_embeddings else [id_b, id_a])


@pytest.mark.parametrize("shift", [(20, 5), (700, 300)], ids=["same-place", "elsewhere"])
def test_short_occlusion_keeps_id(shift):
    tracker, rng, (alice,) = FaceTracker(), np.random.default_rng(0), people(1)
    for i in range(10):
        (id_alice,) = run(tracker, i, [(box(100, 100), alice)], rng)
    for i in range(10, 25):              # 0.5 s without a face: the track stays confirmed
        tracker.update(frame_result(i, []))
    assert tracker.tracks[0].state is TrackState.CONFIRMED
    assert run(tracker, 25, [(box(100 + shift[0], 100 + shift[1]), alice)], rng) == [id_alice]


def test_reentry_after_loss_gets_old_id_and_a_stranger_a_new_one():
    tracker, rng, (alice, stranger) = FaceTracker(), np.random.default_rng(0), people(2)
    for i in range(10):
        (id_alice,) = run(tracker, i, [(box(100, 100), alice)], rng)
    tracker.update(frame_result(10, [], t_s=2.0))
    assert [(t.track_id, t.state) for t in tracker.tracks] == [(id_alice, TrackState.LOST)]
    # 10 s later a stranger enters where alice was: a new person, shown once confirmed
    strange = [run(tracker, 11 + k, [(box(100, 100), stranger)], rng, t_s=12.0 + k / FPS)[0] for k in range(3)]
    assert strange == [-1, -1, 2]
    # alice comes back elsewhere in the frame: her old id from the first frame, through the gallery
    assert run(tracker, 14, [(box(100, 100), stranger), (box(800, 400), alice)], rng, t_s=12.1) == [2, id_alice]


def test_forgotten_person_gets_a_new_id():
    settings = TrackerSettings(lost_after_s=1.0, forget_after_s=5.0)
    tracker, rng, (alice,) = FaceTracker(settings), np.random.default_rng(0), people(1)
    for i in range(5):
        run(tracker, i, [(box(100, 100), alice)], rng)
    tracker.update(frame_result(5, [], t_s=7.0))   # lost at ~1.1 s, forgotten 5 s after that
    assert tracker.tracks == []
    assert [run(tracker, 6 + k, [(box(100, 100), alice)], rng, t_s=7.1 + k / FPS)[0] for k in range(3)] == [-1, -1, 2]


def test_look_alikes_are_kept_apart_while_both_visible():
    a = people(1)[0]
    b = look_alike(a, 0.3)
    assert 1.0 - a @ b == pytest.approx(0.3)
    tracker, rng = FaceTracker(), np.random.default_rng(0)
    for i in range(3):
        id_a, id_b = run(tracker, i, list(zip(crossing(0), (a, b))), rng)
    assert id_a != id_b and -1 not in (id_a, id_b)
    for k in range(1, 31):
        assert run(tracker, 2 + k, list(zip(crossing(k), (a, b))), rng) == [id_a, id_b]


def test_joint_assignment_beats_the_cheapest_pair():
    """A look-alike steps into the other's place as the other moves on: the single cheapest pair (b's track,
    a's face) is wrong, the best joint assignment is right. A greedy matcher would swap the ids here."""
    a = people(1)[0]
    b = look_alike(a, 0.3)
    tracker, rng = FaceTracker(), np.random.default_rng(0)
    for i in range(3):
        id_a, id_b = run(tracker, i, [(box(100, 100), a), (box(160, 100), b)], rng)
    assert run(tracker, 3, [(box(160, 100), a), (box(220, 100), b)], rng) == [id_a, id_b]


def test_thirty_wandering_faces_keep_thirty_stable_ids():
    n, rng = 30, np.random.default_rng(0)
    faces = people(n, seed=3)
    pos = np.array([(200.0 * (k % 6), 200.0 * (k // 6)) for k in range(n)])
    tracker, history = FaceTracker(), []
    for i in range(50):
        pos += rng.normal(scale=3.0, size=pos.shape)
        history.append(run(tracker, i, [(box(x, y, 80), p) for (x, y), p in zip(pos, faces)], rng))
    assert all(ids == [-1] * n for ids in history[:2])
    assert sorted(history[2]) == list(range(1, n + 1))
    assert all(ids == history[2] for ids in history[2:])


def test_enrolled_people_are_named_and_strangers_unknown():
    settings = TrackerSettings()
    tracker, rng = FaceTracker(settings), np.random.default_rng(0)
    alice, bob, stranger = people(3)
    tracker.enrol("alice", np.array([seen(alice, rng) for _ in range(3)]))
    tracker.enrol("bob", seen(bob, rng))
    ids = run(tracker, 0, [(box(100, 100), alice), (box(400, 100), stranger)], rng)
    labels, distances = tracker.identities(ids)
    assert labels == ["", ""] and np.isnan(distances).all()
    for i in range(1, 5):
        ids = run(tracker, i, [(box(100, 100), alice), (box(400, 100), stranger)], rng)
    labels, distances = tracker.identities(ids)
    assert labels == ["alice", "unknown"]
    assert distances[0] < settings.enrol_distance < distances[1]
    assert tracker.identity_of(ids[0]) == ("alice", pytest.approx(distances[0]))
    # alice leaves for 5 s and comes back elsewhere: same id, same name
    tracker.update(frame_result(5, [], t_s=2.0))
    back = run(tracker, 6, [(box(700, 300), alice)], rng, t_s=7.0)
    assert back == [ids[0]]
    assert tracker.identities(back)[0] == ["alice"]


def test_nobody_enrolled_means_unknown():
    tracker, rng, (alice,) = FaceTracker(), np.random.default_rng(0), people(1)
    for i in range(3):
        ids = run(tracker, i, [(box(100, 100), alice)], rng)
    labels, distances = tracker.identities(ids + [-1])
    assert labels == ["unknown", ""] and np.isnan(distances).all()


def test_enrol_rejects_bad_input():
    tracker = FaceTracker()
    with pytest.raises(ValueError, match="name"):
        tracker.enrol("unknown", people(1))
    with pytest.raises(ValueError, match="512"):
        tracker.enrol("alice", np.ones((2, 128)))
    with pytest.raises(ValueError, match="finite"):
        tracker.enrol("alice", np.zeros((1, DIM)))


@pytest.mark.parametrize("case", ["use_embeddings=False", "no embeddings", "NaN embeddings"])
def test_overlap_only_mode(case):
    tracker = FaceTracker(use_embeddings=case != "use_embeddings=False")
    tracker.enrol("alice", people(1))
    emb = {"use_embeddings=False": people(1)[0], "no embeddings": None, "NaN embeddings": np.full(DIM, np.nan)}[case]
    ids = [tracker.update(frame_result(i, [box(100 + 5 * i, 100)], emb))[0] for i in range(100)]
    assert ids[:2] == [-1, -1] and set(ids[2:]) == {1}
    assert tracker.mode == "iou-only"
    assert tracker.identities([1])[0] == ["unknown"]
    # no re-identification: after a loss, the same face elsewhere is a new person
    tracker.update(frame_result(100, [], t_s=5.0))
    later = [tracker.update(frame_result(101 + k, [box(800, 400)], emb, t_s=6.0 + k / FPS))[0] for k in range(3)]
    assert later == [-1, -1, 2]


@pytest.mark.parametrize("field, value", [
    ("iou_weight", 1.5), ("max_cost", 0.0), ("max_embedding_distance", -0.1), ("min_hits", 0),
    ("min_hits", 2.5), ("lost_after_s", 0.0), ("forget_after_s", -1.0), ("gallery_size", 0),
    ("reid_distance", 3.0), ("enrol_distance", 0.0),
])
def test_bad_setting_names_its_field(field, value):
    with pytest.raises(ValueError, match=f"TrackerSettings.{field} "):
        TrackerSettings(**{field: value})


def test_reset_clears_tracks_and_restarts_ids():
    tracker, rng, (a, b, c) = FaceTracker(), np.random.default_rng(0), people(3)
    for i in range(4):
        run(tracker, i, [(box(100, 100), a), (box(400, 100), b)], rng)
    tracker.reset()
    assert tracker.tracks == [] and tracker.mode == "iou-only"
    ids = [run(tracker, 10 + i, [(box(700, 100), c)], rng, t_s=i / FPS)[0] for i in range(3)]
    assert ids == [-1, -1, 1]


def test_returning_face_first_seen_without_embedding_gets_its_id_at_confirmation():
    """Live analysis runs ArcFace only on some frames: a returning person's first frames may carry no
    embedding, so stage 2 cannot re-identify them; confirmation does, once one arrives."""
    tracker, rng, (alice, bob) = FaceTracker(), np.random.default_rng(0), people(2)
    for i in range(5):
        alice_id, bob_id = run(tracker, i, [(box(100, 100), alice), (box(400, 100), bob)], rng)
    t = 10.0  # both gone long enough to be lost
    for k in range(2):  # back at another place, no embeddings yet
        tracker.update(frame_result(0, [box(250, 300)], None, t_s=t + k / FPS))
    ids = run(tracker, 0, [(box(250, 300), alice)], rng, t_s=t + 2 / FPS)
    assert ids == [alice_id]
    assert sorted(v.track_id for v in tracker.tracks) == sorted([alice_id, bob_id])  # no second track for alice
