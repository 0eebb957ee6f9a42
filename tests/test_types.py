import numpy as np
import pytest

from realtime_feat.types import Detections, FaceAnalysis, Frame, FrameResult


def dets(n):
    return Detections(np.arange(n * 4, dtype=np.float32).reshape(n, 4), np.linspace(0.5, 1, n, dtype=np.float32),
                      np.zeros((n, 5, 2), np.float32))


def test_shapes_are_checked_where_made():
    with pytest.raises(ValueError, match=r"Detections.xyxy: expected shape N×4, got 3×5"):
        Detections(np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="Detections.scores: has 2 faces, the other fields have 3"):
        Detections(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="Frame.image"):
        Frame(np.zeros((4, 4), np.uint8), 0, 0, 0)


def test_indexing_applies_to_every_field_and_keeps_the_face_axis():
    d = dets(4)
    one = d[2]
    assert len(one) == 1 and one.xyxy.shape == (1, 4) and one.keypoints.shape == (1, 5, 2)
    assert one.xyxy[0].tolist() == [8, 9, 10, 11]
    strong = d[d.scores > 0.9]
    assert len(strong) == 1 and strong.scores[0] == 1.0
    assert len(Detections.merge([d, d[:1]])) == 5 and len(Detections.merge([])) == 0


def test_merge_needs_optional_fields_everywhere_or_nowhere():
    a = FaceAnalysis.empty(with_embedding=True)
    b = FaceAnalysis.empty(with_embedding=False)
    with pytest.raises(ValueError, match="embedding is None in some items only"):
        FaceAnalysis.merge([a, b])


def test_frame_result_carries_the_frame():
    frame = Frame(np.zeros((6, 8, 3), np.uint8), 7, 123, 456, None, "cam0", 0.25)
    two = FaceAnalysis(*(np.zeros((2, *shape[1:])) for shape in FaceAnalysis._SHAPES.values()))
    r = FrameResult.of(frame, dets(2), two, {"detect": 1.0})
    assert (r.index, r.t_monotonic_ns, r.height, r.width, r.pts, r.n_faces) == (7, 123, 6, 8, 0.25, 2)
    assert r.track_ids.tolist() == [-1, -1]
    with pytest.raises(ValueError, match="2 detections, 0 analysed faces"):
        FrameResult.of(frame, dets(2), FaceAnalysis.empty(), {})
