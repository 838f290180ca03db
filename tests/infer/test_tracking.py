import numpy as np

from livus.infer.tracking import LesionTracker, attention_weighted_mean, tracks_from_single_frames
from livus.types import box_iou
from livus.types import Lesion


def _les(x, y, size=20.0, score=0.9, mal=None):
    return Lesion(id=0, score=score, center_px=(x, y), long_axis_px=size, short_axis_px=size * 0.7,
                  angle_deg=0.0, malignancy=mal)


def test_box_iou():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert abs(box_iou([0, 0, 10, 10], [5, 0, 15, 10]) - 1 / 3) < 1e-9


def test_two_moving_lesions_keep_ids_and_gap():
    tr = LesionTracker()
    for f in range(12):
        les = [_les(50 + 4 * f, 100, mal=0.8), _les(300 - 3 * f, 200, size=40, mal=0.2)]
        if f == 5:
            les = les[1:]  # first lesion missed for one frame
        tr.update(f, les)
        if f == 0:
            ids0 = [x.track_id for x in les]
    tracks = tr.finish()
    assert len(tracks) == 2
    assert sorted(len(t.observations) for t in tracks) == [11, 12]
    first = next(t for t in tracks if t.track_id == ids0[0])
    assert abs(first.malignancy - 0.8) < 1e-6


def test_distant_detection_starts_new_track():
    tr = LesionTracker()
    tr.update(0, [_les(50, 50)])
    tr.update(1, [_les(400, 400)])
    assert len(tr.finish()) == 2


def test_attention_weighting_prefers_confident_frames():
    vals, w = [0.9, 0.1, 0.1], [1.0, 0.1, 0.1]
    assert attention_weighted_mean(vals, w) > np.mean(vals)


def test_single_frame_tracks():
    tracks = tracks_from_single_frames([("a.png", [_les(1, 1, mal=0.3)]), ("b.png", [_les(2, 2), _les(5, 5)])])
    assert [t.track_id for t in tracks] == [1, 2, 3]
    assert tracks[0].malignancy == 0.3
