import numpy as np

import pytest

from livus.infer.tracking import (
    LesionTracker,
    aggregate_values,
    attention_weighted_mean,
    observation_weight,
    tracks_from_single_frames,
)
from livus.types import Lesion, box_iou


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


def test_keyframes_far_apart_keep_one_track():
    """Keyframes 7 frames apart (quality keyframes are unevenly spaced): the gap is counted in
    analysed frames, not frame numbers, so a lesion found in every keyframe keeps its id."""
    tr = LesionTracker()
    for k, f in enumerate([0, 7, 14, 23, 30]):
        tr.update(f, [_les(100 + 6 * k, 100, size=30)])
    assert len(tr.finish()) == 1


def test_track_closes_after_missed_updates():
    tr = LesionTracker(max_missed_updates=2)
    tr.update(0, [_les(100, 100)])
    tr.update(1, [])
    tr.update(2, [])
    tr.update(3, [_les(100, 100)])  # two misses allowed: same track
    for f in (4, 5, 6):
        tr.update(f, [])
    tr.update(7, [_les(100, 100)])  # three misses: closed, a new track
    assert [len(t.observations) for t in tr.finish()] == [2, 1]


def test_aggregations():
    vals, w = [0.2, 0.9, 0.4], [observation_weight(0.9, 1.0), observation_weight(0.9, 0.3), observation_weight(0.5, 1.0)]
    assert aggregate_values(vals, w, "mean") == pytest.approx(0.5)
    assert aggregate_values(vals, w, "max") == 0.9
    # the confident good frame (weight 0.9) dominates the low-quality one (0.27)
    assert aggregate_values(vals, w, "attention") == pytest.approx(attention_weighted_mean(vals, w)) and aggregate_values(vals, w) < 0.4
    with pytest.raises(ValueError):
        aggregate_values(vals, w, "median")


def test_jittery_still_lesion_keeps_its_track():
    """Noisy centres give a spurious velocity; the last position stays a candidate, so the
    overshooting prediction does not split the track."""
    tr = LesionTracker()
    for f, x in enumerate([100, 116, 100, 116, 100]):
        tr.update(f, [_les(x, 100, size=20)])
    assert len(tr.finish()) == 1
